/**
 * The preference centre's picture of one person, pure: every public topic
 * with their state, and when and how each consent was given, read from the
 * ledger (GDPR Art. 7(1): the controller can show it; Art. 15: so can they).
 */
import type { ConsentEventRow, ConsentStateRow, ConsentText, Topic } from '../storage/index.js';
import { isWithdrawable } from './withdrawal.js';

export type TopicStatus = 'confirmed' | 'pending' | 'imported' | 'withdrawn' | 'none';

export interface ConsentRecord {
  eventId: string;
  type: 'confirmed' | 'imported';
  at: string;
  /** The request's method: 'web_form', 'preference_centre', or an import's. */
  method: string;
  formSlug: string | null;
  formVersion: number | null;
  textVersion: number | null;
  /** A signed receipt can be issued for it. */
  receipt: boolean;
}

export interface CentreTopic {
  id: string;
  slug: string;
  name: string;
  description: string;
  status: TopicStatus;
  since: string | null;
  consents: ConsentRecord[];
  /** The newest consent text: what subscribing from the centre agrees to. */
  text: { id: string; version: number; body: string } | null;
  /** Public with a consent text: the centre may offer it. */
  offered: boolean;
  canWithdraw: boolean;
  canSubscribe: boolean;
}

export interface CentreView {
  contactId: string;
  locale: string | null;
  /** Unsubscribed from everything: an objection, complaint, bounce or the like (scope 'all'). */
  suppressedAll: boolean;
  topics: CentreTopic[];
}

const statusByState: Record<string, TopicStatus> = { confirmed: 'confirmed', requested: 'pending', imported: 'imported', withdrawn: 'withdrawn' };

export function buildCentreView(input: {
  contactId: string;
  locale: string | null;
  topics: Topic[];
  texts: ConsentText[];
  states: ConsentStateRow[];
  events: ConsentEventRow[];
  suppressions: { scope: string; reason: string }[];
  /** Reasons the person may undo themselves (consent/gate.ts). */
  liftable: readonly string[];
}): CentreView {
  const blocked = input.suppressions.some((s) => !input.liftable.includes(s.reason));
  const stateOf = new Map(input.states.map((s) => [s.topic_id, s]));
  const eventById = new Map(input.events.map((e) => [e.id, e]));
  const topics = input.topics.map((topic): CentreTopic => {
    const state = stateOf.get(topic.id);
    const status = statusByState[state?.state ?? ''] ?? 'none';
    const newest = input.texts.find((t) => t.topic_id === topic.id);
    const offered = topic.is_public === 1 && newest !== undefined;
    return {
      id: topic.id,
      slug: topic.slug,
      name: topic.name,
      description: topic.description,
      status,
      since: state?.since ?? null,
      consents: input.events.filter((e) => e.topic_id === topic.id).flatMap((e) => consentRecord(e, eventById)),
      text: newest ? { id: newest.id, version: newest.version, body: newest.body } : null,
      offered,
      canWithdraw: isWithdrawable(state?.state),
      canSubscribe: offered && !blocked && (status === 'none' || status === 'withdrawn'),
    };
  });
  return { contactId: input.contactId, locale: input.locale, suppressedAll: input.suppressions.some((s) => s.scope === 'all'), topics };
}

function consentRecord(event: ConsentEventRow, byId: Map<string, ConsentEventRow>): ConsentRecord[] {
  if (event.type !== 'confirmed' && event.type !== 'imported') return [];
  const evidence = JSON.parse(event.evidence) as Record<string, unknown>;
  const requested = typeof evidence.requested_event === 'string' ? byId.get(evidence.requested_event) : undefined;
  const requestEvidence = requested ? (JSON.parse(requested.evidence) as Record<string, unknown>) : evidence;
  return [
    {
      eventId: event.id,
      type: event.type,
      at: event.occurred_at,
      method: typeof requestEvidence.method === 'string' ? requestEvidence.method : 'unknown',
      formSlug: typeof evidence.form_slug === 'string' ? evidence.form_slug : null,
      formVersion: typeof evidence.form_version === 'number' ? evidence.form_version : null,
      textVersion: typeof evidence.consent_text_version === 'number' ? evidence.consent_text_version : null,
      receipt: event.type === 'confirmed' && typeof evidence.consent_text_id === 'string',
    },
  ];
}

/** The newest consent confirmed or imported first, for display. */
export function newestFirst(records: ConsentRecord[]): ConsentRecord[] {
  return [...records].sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0));
}
