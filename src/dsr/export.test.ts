import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ConsentEventRow } from '../storage/index.js';
import { buildExport, type ExportRows } from './export.js';

const at = '2026-03-01T10:00:00.000Z';
const event = (seq: number, type: string, method: string): ConsentEventRow => ({
  seq, id: `e${seq}`, contact_id: 'c', topic_id: null, type, occurred_at: at, evidence: JSON.stringify({ method, actor: 'subject' }), prev_hash: '0', hash: String(seq),
});
const rows = (events: ConsentEventRow[], merged: ConsentEventRow[] = []): ExportRows => ({
  now: new Date(at),
  contact: { id: 'c', address: 'a@example.org', match_key: 'a@example.org', provider_key: null, locale: 'en', created_at: at, erased_at: null },
  contactKey: null,
  names: null,
  keyState: 'opened',
  events,
  states: [],
  topics: [],
  mailLog: [],
  deliveries: [],
  suppressions: [],
  merged: merged.length === 0 ? [] : [{
    contact: { id: 'm', address: 'b@example.org', match_key: 'b@example.org', provider_key: null, locale: 'en', created_at: at, erased_at: null },
    contactKey: null, names: null, keyState: 'opened', mergedInto: 'c', mergedAt: at, events: merged, mailLog: [], deliveries: [],
  }],
});

test('GDPR-15 (Art. 14(2)(f)): every way data was collected is described, an import by its file, records merged in included', () => {
  const exported = buildExport(rows(
    [event(1, 'requested', 'web_form'), event(2, 'confirmed', 'double_opt_in'), event(3, 'requested', 'preference_centre'), event(4, 'confirmed', 're_permission'), event(5, 'withdrawn', 'one_click_header')],
    [event(6, 'imported', 'import:legacy.csv'), event(7, 'requested', 'api_v9')],
  ));
  const described = Object.fromEntries(exported.information.source.map((s) => [s.method, s.description]));
  assert.deepEqual(Object.keys(described), ['web_form', 'double_opt_in', 'preference_centre', 're_permission', 'import:legacy.csv', 'api_v9'], 'acquiring events only, merged records included');
  assert.match(described['import:legacy.csv']!, /^Imported by the controller/);
  assert.match(described.preference_centre!, /preference centre/);
  assert.match(described.re_permission!, /renew your consent/);
  assert.equal(described.api_v9, 'Recorded by the controller; see the event evidence.');
  assert.deepEqual(exported.merged_records.map((m) => m.consent_events.map((e) => e.id)), [['e6', 'e7']]);
});
