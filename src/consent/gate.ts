/**
 * The send gate: the one decision every send path asks before handing a
 * message to a transport (DESIGN.md, "The one invariant"). Pure: callers
 * load the state and suppressions in the same read as their claim.
 */
export type SendPurpose =
  /** Double opt-in request after a form submission. */
  | 'confirmation'
  /** The signed receipt after a confirmation. */
  | 'receipt'
  /** A marketing campaign for a topic. */
  | 'campaign'
  /** A re-permission request to an imported contact. */
  | 'repermission'
  /**
   * A mail the person asked for themselves, carrying no marketing: their
   * preference-centre link, or the confirmation of a topic they chose in
   * their own preference centre. Their own objection or unsubscription does
   * not stop it (they may undo it: GDPR Art. 7(3), 21; Art. 12(2) eases their
   * rights); a complaint, bounce, erasure or restriction does.
   */
  | 'self_service';

export interface GateInput {
  purpose: SendPurpose;
  /** Current projected state for the topic, or null when none. */
  topicState: string | null;
  /** Any suppression (all scope or this topic) matching the address. */
  suppressed: boolean;
  /** The contact's address is gone (erased). */
  erased: boolean;
  /** Reasons of the matching suppressions, when the caller loaded them; needed by 'self_service'. */
  suppressionReasons?: readonly string[];
}

export type GateDecision = { allowed: true } | { allowed: false; reason: string };

const requiredState: Record<SendPurpose, string | null> = {
  confirmation: 'requested',
  receipt: 'confirmed',
  campaign: 'confirmed',
  repermission: 'imported',
  self_service: null,
};

/** Suppressions that the person's own later, confirmed choice may undo (DESIGN.md, suppression list). */
export const selfLiftableReasons: readonly string[] = ['objected', 'unsubscribed'];

export function decideSend(input: GateInput): GateDecision {
  if (input.erased) return { allowed: false, reason: 'erased' };
  if (input.suppressed && !selfLifted(input)) return { allowed: false, reason: 'suppressed' };
  const needed = requiredState[input.purpose];
  if (needed === null) return { allowed: true };
  if (input.topicState !== needed) {
    return { allowed: false, reason: input.topicState === null ? 'no_consent' : `state_${input.topicState}` };
  }
  return { allowed: true };
}

/** Unknown reasons refuse: suppression errs towards not sending. */
function selfLifted(input: GateInput): boolean {
  const reasons = input.suppressionReasons;
  return input.purpose === 'self_service' && reasons !== undefined && reasons.length > 0 && reasons.every((r) => selfLiftableReasons.includes(r));
}
