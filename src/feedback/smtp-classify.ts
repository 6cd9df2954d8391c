/**
 * Classifies a permanent SMTP refusal met while sending: is it a hard bounce
 * (the address will never work: suppress it) or a refusal of this message
 * (policy, content, temporary trouble reported as 5xx: fail only this one)?
 * Hard means what sisimai calls userunknown, hostunknown, hasmoved and
 * notaccept (RFC 3463 subjects x.1.x addressing; RFC 7505 null MX).
 */
export type BounceClass = 'hard' | 'soft';

export interface Classification {
  class: BounceClass;
  /** The enhanced status code (RFC 3463) when the reply carried one. */
  status: string | null;
  reason: 'user_unknown' | 'host_unknown' | 'has_moved' | 'not_accept' | 'policy' | 'mailbox_full' | 'other';
}

const userUnknownText =
  /user unknown|unknown user|no such (user|mailbox|recipient)|does not exist|doesn't exist|unknown recipient|recipient (address )?rejected|invalid (recipient|mailbox)|mailbox (not found|unavailable)|address rejected|not a valid mailbox|account (has been )?disabled/i;
const hostUnknownText = /host unknown|domain not found|no mx|name or service not known|null mx/i;

export function classifyRefusal(input: { code?: number; response: string }): Classification {
  const status = /\b([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(input.response);
  const enhanced = status ? `${status[1]}.${status[2]}.${status[3]}` : null;
  if (enhanced?.startsWith('5.')) return byEnhanced(enhanced, input.response);
  if (input.code !== undefined && input.code >= 500) {
    if (hostUnknownText.test(input.response)) return { class: 'hard', status: null, reason: 'host_unknown' };
    if (userUnknownText.test(input.response)) return { class: 'hard', status: null, reason: 'user_unknown' };
  }
  return { class: 'soft', status: enhanced, reason: 'other' };
}

function byEnhanced(status: string, response: string): Classification {
  const [, subject, detail] = status.split('.');
  if (subject === '1') {
    if (detail === '2' || detail === '10') return { class: 'hard', status, reason: 'host_unknown' };
    if (detail === '6') return { class: 'hard', status, reason: 'has_moved' };
    if (detail === '1' || detail === '0' || detail === '3') return { class: 'hard', status, reason: 'user_unknown' };
  }
  // 5.2.1 "mailbox disabled, not accepting messages".
  if (subject === '2' && detail === '1') return { class: 'hard', status, reason: 'not_accept' };
  if (subject === '2' && detail === '2') return { class: 'soft', status, reason: 'mailbox_full' };
  if (subject === '7') return { class: 'soft', status, reason: 'policy' };
  if (userUnknownText.test(response)) return { class: 'hard', status, reason: 'user_unknown' };
  return { class: 'soft', status, reason: 'other' };
}
