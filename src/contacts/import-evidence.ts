/**
 * The evidence an import records with each event (GDPR Art. 5(2), 7(1)):
 * where the record came from (file, row, import run), what it declared
 * (status, basis, opt-in time and IP) and who ran it. Personal data (the
 * address, the IPs) is only present sealed under the contact's key, so
 * erasure shreds it (Art. 17). Pure apart from the sealing function passed in.
 */
import type { ContactEventType, Evidence, SuppressionReason } from '../consent/index.js';
import type { PersonalData } from './contact-keys.js';
import type { MergeDecision, RestrictiveStatus } from './import-merge.js';
import type { ImportRow } from './import-row.js';

export interface EvidenceContext {
  importId: string;
  fileName: string;
  actor: string;
  /** The lawful basis the operator declares for the legacy list ("consent" unless told). */
  declaredBasis: string;
  /** Seals personal data under the contact's key. */
  seal: (data: PersonalData) => string;
}

/**
 * How a restrictive row is recorded: an unsubscribe is an objection to all
 * marketing (Art. 21(2)-(3)); a Mailchimp "cleaned" address bounced hard; a
 * complaint is a complaint. Every one suppresses for all purposes.
 */
export const suppressionOf: Record<RestrictiveStatus, { event: ContactEventType; reason: SuppressionReason }> = {
  unsubscribed: { event: 'objected', reason: 'unsubscribed' },
  bounced: { event: 'bounced', reason: 'bounced' },
  complained: { event: 'complained', reason: 'complained' },
};

/** EDPB 05/2020 §5.1 (COMPLIANCE.md EDPB-02): the method names the source, `import:<source>`. */
const method = (ctx: EvidenceContext) => `import:${ctx.fileName}`;

function source(ctx: EvidenceContext, row: ImportRow) {
  return { import_id: ctx.importId, source_file: ctx.fileName, row: row.row, line: row.line, declared_status: row.declaredStatus };
}

/** What a row declares about its opt-in, as declared: times in the clear, IPs sealed. */
function declared(ctx: EvidenceContext, row: ImportRow) {
  return {
    optin_time: row.optinTime ?? undefined,
    confirm_time: row.confirmTime ?? undefined,
    confirm_personal: row.confirmIp === null ? undefined : ctx.seal({ ip: row.confirmIp }),
  };
}

/** An `imported` event: a legacy opt-in, which allows a re-permission request only. */
export function importedEvidence(ctx: EvidenceContext, row: ImportRow): Evidence {
  return {
    method: method(ctx),
    actor: ctx.actor,
    ...source(ctx, row),
    declared_basis: ctx.declaredBasis,
    ...declared(ctx, row),
    personal: ctx.seal(row.optinIp === null ? { address: row.address } : { address: row.address, ip: row.optinIp }),
  };
}

/** An `objected` / `bounced` / `complained` event for a restrictive row. */
export function suppressionEvidence(ctx: EvidenceContext, row: ImportRow): Evidence {
  return { method: method(ctx), actor: ctx.actor, ...source(ctx, row), personal: ctx.seal({ address: row.address }) };
}

/**
 * A `merged` event: every record that went into the person, what each said
 * and what became of it, the state before and after, and the rule applied.
 * Rows whose own state lost keep their evidence here.
 */
export function mergedEvidence(
  ctx: EvidenceContext,
  input: { rows: readonly ImportRow[]; decision: MergeDecision; contactExisted: boolean },
): Evidence {
  const merged = input.decision.merged;
  return {
    method: method(ctx),
    actor: ctx.actor,
    import_id: ctx.importId,
    source_file: ctx.fileName,
    rule: 'most_restrictive_wins',
    from: merged?.from ?? null,
    to: merged?.to ?? null,
    contact_existed: input.contactExisted,
    records: input.rows.map((row, i) => {
      const outcome = input.decision.outcomes[i];
      const own = outcome === 'merged' ? { declared_basis: ctx.declaredBasis, ...declared(ctx, row), personal: ctx.seal(row.optinIp === null ? {} : { ip: row.optinIp }) } : {};
      return { row: row.row, line: row.line, declared_status: row.declaredStatus, outcome, ...own };
    }),
  };
}

/** The run's constant evidence fields, JSON-encoded once for the per-row encoders below. */
export interface EncodedContext {
  actor: string;
  declaredBasis: string;
  importId: string;
  method: string;
  sourceFile: string;
}

export function encodeContext(ctx: Omit<EvidenceContext, 'seal'>): EncodedContext {
  const j = JSON.stringify;
  return { actor: j(ctx.actor), declaredBasis: j(ctx.declaredBasis), importId: j(ctx.importId), method: j(method(ctx as EvidenceContext)), sourceFile: j(ctx.fileName) };
}

/**
 * `canonicalJson(importedEvidence(...))` written out, keys in canonical
 * order, for the import's hot path (tests hold the two equal). `personal`
 * and `confirmPersonal` are the sealed values importedEvidence would seal.
 */
export function importedEvidenceJson(enc: EncodedContext, row: ImportRow, sealed: { personal: string; confirmPersonal: string | null }): string {
  const j = JSON.stringify;
  let out = `{"actor":${enc.actor}`;
  if (sealed.confirmPersonal !== null) out += `,"confirm_personal":${j(sealed.confirmPersonal)}`;
  if (row.confirmTime !== null) out += `,"confirm_time":${j(row.confirmTime)}`;
  out += `,"declared_basis":${enc.declaredBasis},"declared_status":${j(row.declaredStatus)},"import_id":${enc.importId},"line":${row.line},"method":${enc.method}`;
  if (row.optinTime !== null) out += `,"optin_time":${j(row.optinTime)}`;
  return `${out},"personal":${j(sealed.personal)},"row":${row.row},"source_file":${enc.sourceFile}}`;
}

/** `canonicalJson(suppressionEvidence(...))` written out, likewise. */
export function suppressionEvidenceJson(enc: EncodedContext, row: ImportRow, personal: string): string {
  const j = JSON.stringify;
  return (
    `{"actor":${enc.actor},"declared_status":${j(row.declaredStatus)},"import_id":${enc.importId},"line":${row.line},"method":${enc.method}` +
    `,"personal":${j(personal)},"row":${row.row},"source_file":${enc.sourceFile}}`
  );
}
