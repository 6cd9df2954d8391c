/**
 * How a receipt names the way a consent was collected (Kantara CR v1.1
 * `collectionMethod`; EDPB 05/2020 §5.1: how consent was obtained), read
 * from the ledger. One table for every path, so a receipt mailed on
 * confirmation and the one the preference centre issues again later name
 * the same method for the same event.
 */

/** Evidence method of a confirmation by the click on a re-permission request. */
export const REPERMISSION_METHOD = 're_permission';
/** Evidence method of a request made in the person's own preference centre. */
export const CENTRE_METHOD = 'preference_centre';

/** A confirmation that answers a mail of ours directly: the `confirmed` event is its own request. */
const DIRECT: Readonly<Record<string, string>> = {
  [REPERMISSION_METHOD]: 're_permission_email_confirmation',
};

/** A double opt-in: named after the `requested` event the confirmation link answered. */
const BY_REQUEST: Readonly<Record<string, string>> = {
  web_form: 'web_form_double_opt_in',
  [CENTRE_METHOD]: 'preference_centre_double_opt_in',
};

/**
 * The collection method of a `confirmed` event, given its evidence's
 * `method` and, for a double opt-in, the method of the request it confirms.
 * The confirmed event's own method decides first, so a re-permission
 * confirmation is never labelled after some other event; a method not in
 * the tables is named as recorded rather than passed off as a web form.
 */
export function collectionMethodOf(confirmedMethod: unknown, requestMethod?: unknown): string {
  const direct = typeof confirmedMethod === 'string' ? DIRECT[confirmedMethod] : undefined;
  if (direct) return direct;
  const viaRequest = typeof requestMethod === 'string' ? BY_REQUEST[requestMethod] : undefined;
  if (viaRequest) return viaRequest;
  return typeof confirmedMethod === 'string' && confirmedMethod !== '' ? confirmedMethod : 'unknown';
}
