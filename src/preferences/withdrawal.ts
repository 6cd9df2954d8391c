/**
 * Withdrawal decisions, pure. GDPR Art. 7(3): withdrawing is as easy as
 * consenting, so every way in ends in the same small rules; the ledger
 * records which way it came.
 */
export type WithdrawalChannel = 'one_click_header' | 'footer_page' | 'preference_centre';

export const withdrawalChannels: readonly WithdrawalChannel[] = ['one_click_header', 'footer_page', 'preference_centre'];

/** States a withdrawal ends; any other state is already "not subscribed", so nothing changes. */
const withdrawable: readonly string[] = ['requested', 'confirmed', 'imported'];

export function isWithdrawable(state: string | null | undefined): boolean {
  return state != null && withdrawable.includes(state);
}

/** The topics an objection (Art. 21(3)) withdraws with it, so that lifting it later revives none of them. */
export function topicsToWithdraw(states: readonly { topic_id: string; state: string }[]): string[] {
  return states.filter((s) => isWithdrawable(s.state)).map((s) => s.topic_id);
}

/**
 * RFC 8058 §3.2: a one-click request is a POST whose body holds
 * `List-Unsubscribe=One-Click`. The same POST without it is the button on
 * our own unsubscribe page.
 */
export function oneClickChannel(fields: Record<string, unknown> | null | undefined): WithdrawalChannel {
  const value = fields?.['List-Unsubscribe'];
  const values = Array.isArray(value) ? value : [value];
  return values.some((v) => typeof v === 'string' && v.trim() === 'One-Click') ? 'one_click_header' : 'footer_page';
}
