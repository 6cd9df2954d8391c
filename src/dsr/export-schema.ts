/**
 * The published JSON Schema (draft 2020-12) of `assent-export/1`, so another
 * controller can read a portability export without our code (GDPR Art.
 * 20(1): "structured, commonly used and machine-readable"; COMPLIANCE.md
 * GDPR-20). A small validator for the subset of keywords the schema uses
 * keeps the promise testable without a new dependency.
 */
export type JsonSchema = {
  $schema?: string;
  $id?: string;
  title?: string;
  description?: string;
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
};

const str: JsonSchema = { type: 'string' };
const strOrNull: JsonSchema = { type: ['string', 'null'] };
const time: JsonSchema = { type: 'string', description: 'ISO-8601 UTC timestamp' };

function object(properties: Record<string, JsonSchema>, extra: { open?: boolean; nullable?: boolean } = {}): JsonSchema {
  return {
    type: extra.nullable ? ['object', 'null'] : 'object',
    properties,
    required: Object.keys(properties),
    additionalProperties: extra.open ?? false,
  };
}

const array = (items: JsonSchema): JsonSchema => ({ type: 'array', items });

const topicRef = object({ id: str, slug: str, name: str });
const topicRefOrNull = object({ id: str, slug: str, name: str }, { nullable: true });

const profileProperties: Record<string, JsonSchema> = {
  id: str,
  address: strOrNull,
  first_name: strOrNull,
  last_name: strOrNull,
  locale: strOrNull,
  created_at: time,
  erased_at: strOrNull,
};

const personalData: JsonSchema = { enum: ['opened', 'erased', 'unreadable'] };

const consentEvents = array(
  object({
    seq: { type: 'integer' },
    id: str,
    type: str,
    topic: topicRefOrNull,
    occurred_at: time,
    evidence: {
      ...object({ method: str, actor: str, personal: object({ address: strOrNull, ip: strOrNull, user_agent: strOrNull }, { nullable: true }) }, { open: true }),
      description: 'The evidence stored with the event; `personal` opened with the person\'s key, null once erased',
    },
    hash: { type: 'string', description: 'SHA-256 of the event in the hash-chained ledger' },
  }),
);

const messages = object({
  system: array(object({ kind: str, message_id: str, created_at: time })),
  campaigns: array(
    object({ campaign_id: str, subject: str, status: str, sent_at: strOrNull, message_id: strOrNull, skip_reason: strOrNull }),
  ),
});

const exportSchema: JsonSchema = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  $id: 'urn:assent:schema:export:1',
  title: 'Assent personal data export (GDPR Art. 15 and 20)',
  ...object({
    format: { const: 'assent-export/1' },
    generated_at: time,
    personal_data: personalData,
    profile: object(profileProperties),
    consent_events: consentEvents,
    consent_states: array(object({ topic: topicRef, state: str, since: time })),
    messages,
    suppressions: array(object({ scope: str, topic: topicRefOrNull, reason: str, created_at: time })),
    merged_records: {
      ...array(
        object({
          personal_data: personalData,
          profile: object({ ...profileProperties, merged_into: str, merged_at: time }),
          consent_events: consentEvents,
          messages,
        }),
      ),
      description: 'Records an operator merged into this contact as the same person (probable duplicates), each with its own history',
    },
    information: object({
      purposes: array(object({ topic: str, name: str, description: str })),
      categories: array(str),
      recipients: str,
      retention: str,
      rights: array(str),
      source: array(object({ method: str, description: str })),
      automated_decisions: str,
    }),
  }),
};

/** The JSON Schema of the export document, as published. */
export function exportJsonSchema(): JsonSchema {
  return structuredClone(exportSchema);
}

/** The schema as the JSON text to publish beside the export (served or written to a file). */
export function renderExportJsonSchema(): string {
  return `${JSON.stringify(exportSchema, null, 2)}\n`;
}

/** Errors of `value` against `schema` ("/path: problem"); empty when valid. */
export function validateJson(schema: JsonSchema, value: unknown, path = ''): string[] {
  const at = path || '/';
  if (schema.const !== undefined && value !== schema.const) return [`${at}: must be ${JSON.stringify(schema.const)}`];
  if (schema.enum && !schema.enum.includes(value)) return [`${at}: must be one of ${JSON.stringify(schema.enum)}`];
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? schema.type : [schema.type];
    if (!types.some((t) => hasType(value, t))) return [`${at}: must be ${types.join(' or ')}`];
  }
  if (Array.isArray(value) && schema.items) return value.flatMap((v, i) => validateJson(schema.items!, v, `${path}/${i}`));
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) return validateObject(schema, value as Record<string, unknown>, path);
  return [];
}

function validateObject(schema: JsonSchema, value: Record<string, unknown>, path: string): string[] {
  const errors = (schema.required ?? []).filter((k) => !(k in value)).map((k) => `${path}/${k}: is required`);
  for (const [key, v] of Object.entries(value)) {
    const sub = schema.properties?.[key];
    if (sub) errors.push(...validateJson(sub, v, `${path}/${key}`));
    else if (schema.additionalProperties === false) errors.push(`${path}/${key}: is not allowed`);
    else if (typeof schema.additionalProperties === 'object') errors.push(...validateJson(schema.additionalProperties, v, `${path}/${key}`));
  }
  return errors;
}

function hasType(value: unknown, type: string): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return value !== null && typeof value === 'object' && !Array.isArray(value);
    case 'integer':
      return Number.isInteger(value);
    case 'number':
      return typeof value === 'number' && Number.isFinite(value);
    default:
      return typeof value === type;
  }
}
