/**
 * The preference centre's receipt download issues again, for any
 * confirmation, the receipt that was mailed for it: same claims but `iat`.
 * A confirmation given by answering a re-permission campaign is labelled
 * as one (`re_permission_email_confirmation`), on the page and in the
 * re-issued receipt, never as a web-form double opt-in. On every database.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { createRepermissionCampaign, confirmRepermission } from '../src/campaigns/index.js';
import { publicKeySet, verifyReceipt, withLedger, type ReceiptClaims } from '../src/consent/index.js';
import { createContactKey, insertContact, insertContactKey } from '../src/contacts/index.js';
import type { OutgoingMessage } from '../src/delivery/transport.js';
import { signLinkToken } from '../src/preferences/index.js';
import { newId } from '../src/shared/ids.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { confirmLinkFrom, openConfirm, submitForm } from './support/http.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const DAY_MS = 86_400_000;

for (const target of await databaseTargets()) {
  describe(`receipts issued again by the preference centre (${target.name})`, { skip: target.skip }, () => {
    let rt: TestRuntime;
    const db = () => rt.runtime.storage.db;
    const keys = () => publicKeySet(rt.runtime.secrets.receiptKeys).keys;
    const centre = (contactId: string) => `/p/${signLinkToken(rt.runtime.secrets.linkKeys, { purpose: 'preferences', contactId })}`;

    async function mailedClaims(mail: OutgoingMessage): Promise<ReceiptClaims> {
      const jws = (await simpleParser(mail.raw)).attachments.find((a) => a.filename === 'consent-receipt.jws')!.content.toString('utf8');
      const verified = await verifyReceipt(jws, keys());
      assert.ok(verified.ok);
      return verified.claims;
    }

    /** The receipt the centre issues now for one confirmed event, and the centre page's line for it. */
    async function reissued(contactId: string): Promise<{ claims: ReceiptClaims; line: string }> {
      const event = await db().selectFrom('consent_events').select('id').where('contact_id', '=', contactId).where('type', '=', 'confirmed').executeTakeFirstOrThrow();
      const download = await rt.app.inject({ method: 'GET', url: `${centre(contactId)}/receipts/${event.id}` });
      assert.equal(download.statusCode, 200);
      const verified = await verifyReceipt(download.body, keys());
      assert.ok(verified.ok);
      const page = await rt.app.inject({ method: 'GET', url: centre(contactId) });
      const line = [...page.body.matchAll(/<li>([^]*?)<\/li>/g)].map((m) => m[1]!).find((l) => l.includes(`/receipts/${event.id}`))!;
      return { claims: verified.claims, line };
    }

    before(async () => {
      rt = await startTestRuntime(target, { start: T0 });
    });
    after(async () => {
      await rt?.close();
    });

    test('a re-permission confirmation: the re-issued receipt equals the mailed one but for iat, labelled re-permission', async () => {
      const topic = await db().selectFrom('topics').select('id').where('slug', '=', 'newsletter').executeTakeFirstOrThrow();
      const contactId = newId();
      await withLedger(db(), async (trx, ledger) => {
        await insertContact(trx, { id: contactId, address: 'imported@example.org', match_key: 'imported@example.org', provider_key: null, locale: 'en', created_at: T0.toISOString(), erased_at: null });
        await insertContactKey(trx, { contact_id: contactId, wrapped_key: createContactKey(rt.runtime.secrets.masterKeys, contactId).wrapped, created_at: T0.toISOString() });
        await ledger.append([{ id: newId(), contactId, topicId: topic.id, type: 'imported', occurredAt: T0, evidence: { method: 'import', actor: 'operator', source: 'legacy.csv' } }]);
      });
      const { campaign } = await createRepermissionCampaign(
        { db: db(), clock: rt.clock, newId },
        { topicSlug: 'newsletter', deadline: new Date(T0.getTime() + 14 * DAY_MS), fromAddress: 'Example Ltd <news@assent.example.org>' },
      );
      const token = signLinkToken(rt.runtime.secrets.linkKeys, { purpose: 'repermission', contactId, topicId: topic.id, campaignId: campaign.id });
      const sent = rt.transport.sent.length;
      rt.clock.advance(60_000);
      const answer = await confirmRepermission({ ...rt.runtime.signup, linkKeys: rt.runtime.secrets.linkKeys }, { token, textVersion: 1, ip: '203.0.113.9', userAgent: 'Browser' });
      assert.deepEqual(answer, { kind: 'confirmed', locale: 'en', receiptSent: true });
      const mailed = await mailedClaims(rt.transport.sent[sent]!);
      assert.equal(mailed.collectionMethod, 're_permission_email_confirmation');

      rt.clock.advance(DAY_MS);
      const again = await reissued(contactId);
      assert.deepEqual({ ...again.claims, iat: 0 }, { ...mailed, iat: 0 });
      assert.equal(again.claims.iat, Math.floor(rt.clock.now().getTime() / 1000));
      assert.match(again.line, /by confirming our re-permission email/);
      assert.doesNotMatch(again.line, /sign-up form/);
    });

    test('a web-form double opt-in: the re-issued receipt equals the mailed one but for iat, labelled web form', async () => {
      const response = await submitForm(rt.app, 'newsletter', { email: 'signed@example.org', topics: 'newsletter' }, { remoteAddress: '203.0.113.10' });
      assert.equal(response.statusCode, 200);
      const sent = rt.transport.sent.length;
      assert.equal((await openConfirm(rt.app, 'POST', confirmLinkFrom(rt.transport.sent[sent - 1]!).token)).statusCode, 200);
      const mailed = await mailedClaims(rt.transport.sent[sent]!);
      assert.equal(mailed.collectionMethod, 'web_form_double_opt_in');
      const contact = await db().selectFrom('contacts').select('id').where('match_key', '=', 'signed@example.org').executeTakeFirstOrThrow();
      rt.clock.advance(DAY_MS);
      const again = await reissued(contact.id);
      assert.deepEqual({ ...again.claims, iat: 0 }, { ...mailed, iat: 0 });
      assert.equal(again.claims.iat, Math.floor(rt.clock.now().getTime() / 1000));
      assert.match(again.line, /through the sign-up form/);
      assert.doesNotMatch(again.line, /re-permission/);
    });
  });
}
