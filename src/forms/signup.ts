/**
 * Sign-up decisions, pure. Whatever they decide, the person sees the same
 * page, so the form never reveals whether an address is known (ABU-04).
 */
export type SignupSkip = 'suppressed' | 'throttled' | 'nothing_new';

export type SignupPlan = { send: true; topicIds: string[] } | { send: false; reason: SignupSkip };

export function planSignup(input: {
  requestedTopicIds: string[];
  /** Current projected state per topic id. */
  states: Map<string, string>;
  /** Topics with an outstanding confirmation link. */
  pending: Set<string>;
  /** Suppressed for all marketing. */
  suppressed: boolean;
  /** Topics the address is suppressed for (a per-topic withdrawal); never offered again by a form. */
  suppressedTopics: Set<string>;
  confirmationsToday: number;
  confirmationsPerDay: number;
}): SignupPlan {
  // A suppressed person is re-admitted only through an explicit, confirmed
  // path of their own; a form submission sends nothing (ABU-04, Art. 21(3)).
  if (input.suppressed) return { send: false, reason: 'suppressed' };
  // At most one outstanding confirmation per address and topic; no second
  // confirmation for a topic already confirmed.
  const topicIds = input.requestedTopicIds.filter(
    (id) => input.states.get(id) !== 'confirmed' && !input.pending.has(id) && !input.suppressedTopics.has(id),
  );
  if (topicIds.length === 0) return { send: false, reason: 'nothing_new' };
  if (input.confirmationsToday >= input.confirmationsPerDay) return { send: false, reason: 'throttled' };
  return { send: true, topicIds };
}

export interface SignupInput {
  formSlug: string;
  address: string;
  /** Topic slugs whose box was ticked. */
  topics: string[];
  ip: string;
  userAgent: string;
  locale: string;
}

export type SignupResult =
  | { kind: 'accepted'; sent: boolean; skipped?: SignupSkip }
  | { kind: 'invalid'; errors: { field: 'address' | 'topics'; messageKey: string }[] }
  | { kind: 'form_not_found' };
