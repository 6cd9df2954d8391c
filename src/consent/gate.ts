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
  | 'repermission';

export interface GateInput {
  purpose: SendPurpose;
  /** Current projected state for the topic, or null when none. */
  topicState: string | null;
  /** Any suppression (all scope or this topic) matching the address. */
  suppressed: boolean;
  /** The contact's address is gone (erased). */
  erased: boolean;
}

export type GateDecision = { allowed: true } | { allowed: false; reason: string };

const requiredState: Record<SendPurpose, string> = {
  confirmation: 'requested',
  receipt: 'confirmed',
  campaign: 'confirmed',
  repermission: 'imported',
};

export function decideSend(input: GateInput): GateDecision {
  if (input.erased) return { allowed: false, reason: 'erased' };
  if (input.suppressed) return { allowed: false, reason: 'suppressed' };
  const needed = requiredState[input.purpose];
  if (input.topicState !== needed) {
    return { allowed: false, reason: input.topicState === null ? 'no_consent' : `state_${input.topicState}` };
  }
  return { allowed: true };
}
