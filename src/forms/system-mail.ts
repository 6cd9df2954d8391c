/**
 * The one way system mails (confirmation links, receipts, preference links)
 * leave Assent: through the send gate, then the transport, logged against
 * the contact (DESIGN.md: every send path asks the gate).
 */
import { checkGate, type SendPurpose } from '../consent/index.js';
import { composeMessage } from '../delivery/compose.js';
import type { Contact } from '../storage/index.js';
import type { SignupDeps } from './deps.js';

/**
 * Composes and hands a system mail to the transport, logging it against the
 * contact. The send gate is asked first, like every send path: the mail goes
 * only if some topic it concerns is in the state its purpose needs. A
 * transport failure is logged, not thrown: the ledger already holds the
 * truth, and the person can ask again.
 */
export async function deliverSystemMail(
  deps: SignupDeps,
  v: {
    contact: Contact;
    gate: { purpose: SendPurpose; topicIds: string[] };
    kind: string;
    messageId: string;
    mail: { subject: string; text: string; html: string };
    locale: string;
    attachments?: { filename: string; contentType: string; content: string }[];
  },
): Promise<boolean> {
  const decisions = await Promise.all(
    v.gate.topicIds.map((topicId) => checkGate(deps.db, deps.keys.suppressionKeys, { contact: v.contact, topicId, purpose: v.gate.purpose })),
  );
  const refused = decisions.find((d) => !d.allowed);
  if (!decisions.some((d) => d.allowed)) {
    deps.logger.warn({ kind: v.kind, reason: refused && !refused.allowed ? refused.reason : 'no_topic' }, 'system mail stopped by the send gate');
    return false;
  }
  const message = await composeMessage({
    from: deps.settings.mailFrom,
    to: v.contact.address!,
    subject: v.mail.subject,
    text: v.mail.text,
    html: v.mail.html,
    messageId: v.messageId,
    date: deps.clock.now(),
    locale: v.locale,
    attachments: v.attachments,
  });
  const result = await deps.transport.send(message);
  await deps.db
    .insertInto('mail_log')
    .values({ id: deps.newId(), contact_id: v.contact.id, kind: v.kind, message_id: v.messageId, created_at: deps.clock.now().toISOString() })
    .execute();
  if (result.status !== 'sent') {
    // Relays echo the recipient in their replies ("550 5.1.1 <a@b>: …"); addresses are never logged.
    const response = result.response.replace(/[^\s<>"'(),;:]+@[^\s<>"'(),;:]+/g, '[address]');
    deps.logger.warn({ kind: v.kind, status: result.status, response }, 'system mail not delivered');
    return false;
  }
  return true;
}
