/**
 * The import's hand-written evidence encoders give exactly the bytes of
 * canonicalJson over the evidence objects: the ledger hashes these bytes, so
 * the two must never drift apart.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalJson } from '../shared/crypto.js';
import { encodeContext, importedEvidence, importedEvidenceJson, suppressionEvidence, suppressionEvidenceJson, type EvidenceContext } from './import-evidence.js';
import type { ImportRow } from './import-row.js';

const ctx: EvidenceContext = {
  importId: 'imp-1',
  fileName: 'Liste "alt"\\2024 é.csv',
  actor: 'operator',
  declaredBasis: 'consent',
  seal: (data) => `enc:v1:${Buffer.from(JSON.stringify(data)).toString('base64url')}`,
};

const base: ImportRow = {
  row: 12,
  line: 14,
  address: 'anna@example.org',
  matchKey: 'anna@example.org',
  providerKey: null,
  status: 'subscribed',
  declaredStatus: 'Subscribed',
  firstName: 'Anna',
  lastName: null,
  locale: null,
  optinTime: null,
  optinIp: null,
  confirmTime: null,
  confirmIp: null,
};

const variants: ImportRow[] = [
  base,
  { ...base, optinTime: '2019-05-01 10:00', optinIp: '192.0.2.1' },
  { ...base, confirmTime: '2019-05-02', confirmIp: '2001:db8::1', declaredStatus: 'opted "in" \u0001' },
  { ...base, optinTime: 'ünïcödé ☃', confirmTime: '\\', status: 'unsubscribed', declaredStatus: 'unsub' },
];

test('importedEvidenceJson is canonicalJson(importedEvidence) for every combination of optional fields', () => {
  for (const row of variants) {
    const personal = ctx.seal(row.optinIp === null ? { address: row.address } : { address: row.address, ip: row.optinIp });
    const confirmPersonal = row.confirmIp === null ? null : ctx.seal({ ip: row.confirmIp });
    assert.equal(importedEvidenceJson(encodeContext(ctx), row, { personal, confirmPersonal }), canonicalJson(importedEvidence(ctx, row)));
  }
});

test('suppressionEvidenceJson is canonicalJson(suppressionEvidence)', () => {
  for (const row of variants) {
    const personal = ctx.seal({ address: row.address });
    assert.equal(suppressionEvidenceJson(encodeContext(ctx), row, personal), canonicalJson(suppressionEvidence(ctx, row)));
  }
});
