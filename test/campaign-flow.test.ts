/**
 * Issue 3 acceptance, end to end on each database: a campaign goes through a
 * real worker (startWorker over a runtime whose ASSENT_SMTP_URL names a real
 * SMTP peer) and the peer's captured bytes are checked: who received it, the
 * headers of point 2, DKIM with an independent verifier (mailauth, offline
 * DNS), and a withdrawal committed while the campaign runs.
 */
import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { simpleParser } from 'mailparser';
import { dkimVerify } from 'mailauth/lib/dkim/verify.js';
import { eraseContact } from '../src/dsr/index.js';
import { recordSendRefusal } from '../src/feedback/index.js';
import { signLinkToken, verifyLinkToken } from '../src/preferences/link-token.js';
import type { VersionedKey } from '../src/config/secrets.js';
import { newId } from '../src/shared/ids.js';
import type { Runtime } from '../src/main.js';
import { startWorker } from '../src/worker-root.js';
import { databaseTargets } from './support/databases.js';
import { startTestRuntime, type TestRuntime } from './support/runtime.js';
import { runAssent } from './support/server-process.js';
import { decodedMessage } from './support/http.js';
import { startSmtpPeer, type PeerMessage, type SmtpPeer } from './support/smtp-peer.js';
import {
  addNewsletterTemplate,
  addTopicWithForm,
  deliveriesOf,
  deriveRuntime,
  seedConfirmedContacts,
  sendToCompletion,
  signUp,
  startNewCampaign,
  topicIdOf,
  waitFor,
  waitUntilSent,
} from './support/campaign.js';

const DOMAIN = 'assent.example.org';
const corpusPath = (path: string) => fileURLToPath(new URL(`../../shared/corpora/dkim/${path}`, import.meta.url));
const RSA_KEY_FILE = corpusPath('dkimpy/test.private');
const RSA_RECORD = readFileSync(corpusPath('dkimpy/test.txt'), 'latin1').trim();
// RFC 8463 Appendix A: the Ed25519 seed the corpus stores raw, and its published record.
const ED_SEED = readFileSync(corpusPath('dkimpy/rfc8032_7_1.key'), 'latin1').trim();
const ED_RECORD = 'v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=';
const dns: Record<string, string> = { [`test._domainkey.${DOMAIN}`]: RSA_RECORD, [`brisbane._domainkey.${DOMAIN}`]: ED_RECORD };
const SIGNED_AT_LEAST = ['from', 'subject', 'date', 'message-id', 'list-unsubscribe', 'list-unsubscribe-post'];

/** RFC 8410 §7: the PKCS#8 wrapping of a raw Ed25519 seed, written to a PEM file. */
function writeEd25519Pem(dir: string): string {
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(ED_SEED, 'base64')]);
  const file = join(dir, 'dkim-ed25519.pem');
  writeFileSync(file, createPrivateKey({ key: der, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString());
  return file;
}

/** mailauth's verdicts, with DNS answered from the corpus records only (never the network). */
async function dkimResults(raw: Buffer): Promise<{ result: string; comment: string; algo: string; domain: string }[]> {
  const resolver = async (name: string, type: string) => {
    const record = type === 'TXT' ? dns[name] : undefined;
    if (record === undefined) throw Object.assign(new Error(`no ${type} for ${name}`), { code: 'ENOTFOUND' });
    return [[record]];
  };
  const verdict = await dkimVerify(raw, { resolver, strict: true });
  return verdict.results.map((r) => ({ result: r.status.result, comment: String(r.status.comment ?? ''), algo: String(r.algo), domain: String(r.signingDomain) }));
}

/** Every instance of a header field, unfolded (RFC 5322 §2.2.3). */
function fields(raw: Buffer, name: string): string[] {
  const text = raw.toString('latin1');
  const head = text.slice(0, text.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
  return head
    .split('\r\n')
    .filter((line) => line.toLowerCase().startsWith(`${name.toLowerCase()}:`))
    .map((line) => line.slice(name.length + 1).trim());
}

function dkimTags(raw: Buffer): Record<string, string> {
  const [signature] = fields(raw, 'DKIM-Signature');
  assert.ok(signature, 'the message carries a DKIM-Signature');
  return Object.fromEntries(
    signature.replace(/\s+/g, '').split(';').filter(Boolean).map((tag) => [tag.slice(0, tag.indexOf('=')), tag.slice(tag.indexOf('=') + 1)]),
  );
}

/** The same message with one body byte changed (the first "garden" of the example template). */
function tamperBody(raw: Buffer): Buffer {
  const text = raw.toString('latin1');
  const bodyStart = text.indexOf('\r\n\r\n') + 4;
  const at = text.indexOf('garden', bodyStart);
  assert.ok(at > bodyStart, 'the body has the word to change');
  const copy = Buffer.from(raw);
  copy[at] = 'G'.charCodeAt(0);
  return copy;
}

interface Expectation {
  campaignId: string;
  topicId: string;
  contactId: string;
  address: string;
  messageId: string | null;
  linkKeys: VersionedKey[];
  algo: 'rsa-sha256' | 'ed25519-sha256';
  mailto?: string;
}

/** Point 2 of the issue, on one captured message: the list headers, the links, the Message-ID and the DKIM verdict. */
async function assertCampaignMessage(message: PeerMessage, e: Expectation): Promise<void> {
  const { raw } = message;
  assert.deepEqual(message.rcptTo, [e.address]);
  assert.equal(message.messageId, `<c.${e.campaignId}.${e.contactId}@${DOMAIN}>`);
  assert.equal(message.messageId, e.messageId, 'the delivery row records the Message-ID that went out');
  const [listUnsubscribe, ...more] = fields(raw, 'List-Unsubscribe');
  assert.equal(more.length, 0, 'one List-Unsubscribe field');
  const match = /^<(https:\/\/assent\.example\.org\/u\/([A-Za-z0-9._-]+))>(?:, <mailto:([^?>]+)\?subject=unsubscribe%20([A-Za-z0-9._-]+)>)?$/.exec(listUnsubscribe ?? '');
  assert.ok(match, `List-Unsubscribe: ${listUnsubscribe}`);
  const [, unsubscribeUrl, token, mailbox, mailtoToken] = match;
  assert.equal(mailbox, e.mailto);
  if (e.mailto) assert.equal(mailtoToken, token);
  assert.deepEqual(verifyLinkToken(e.linkKeys, token, 'unsubscribe'), {
    ok: true,
    claims: { purpose: 'unsubscribe', contactId: e.contactId, topicId: e.topicId, campaignId: e.campaignId },
  });
  assert.deepEqual(fields(raw, 'List-Unsubscribe-Post'), ['List-Unsubscribe=One-Click']);
  assert.deepEqual(fields(raw, 'List-Id'), [`Newsletter <newsletter.${DOMAIN}>`]);

  const parsed = await simpleParser(raw);
  assert.equal(parsed.subject, `News for ${e.address}`);
  const html = typeof parsed.html === 'string' ? parsed.html : '';
  assert.ok(html.includes(`href="${unsubscribeUrl}"`), 'the HTML body links the same unsubscribe URL');
  const preferences = [...html.matchAll(/href="(https:\/\/assent\.example\.org\/p\/([A-Za-z0-9._-]+))"/g)];
  assert.equal(new Set(preferences.map((m) => m[1])).size, 1, 'one preference-centre link in the HTML body');
  assert.deepEqual(verifyLinkToken(e.linkKeys, preferences[0]![2], 'preferences'), { ok: true, claims: { purpose: 'preferences', contactId: e.contactId } });
  assert.ok((parsed.text ?? '').includes(unsubscribeUrl!) && (parsed.text ?? '').includes(preferences[0]![1]!), 'the text part carries both links');

  assert.deepEqual(await dkimResults(raw), [{ result: 'pass', comment: '', algo: e.algo, domain: DOMAIN }]);
  const signed = dkimTags(raw).h!.toLowerCase().split(':');
  for (const name of SIGNED_AT_LEAST) assert.ok(signed.includes(name), `h= covers ${name}: ${signed.join(':')}`);
}

const ofCampaign = (peer: SmtpPeer, campaignId: string) => peer.messages.filter((m) => m.messageId?.startsWith(`<c.${campaignId}.`));

async function oneClick(rt: TestRuntime, unsubscribeUrl: string): Promise<number> {
  const response = await rt.app.inject({
    method: 'POST',
    url: new URL(unsubscribeUrl).pathname,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: 'List-Unsubscribe=One-Click',
  });
  return response.statusCode;
}

for (const target of await databaseTargets()) {
  describe(`campaign delivery end to end (${target.name})`, { skip: target.skip }, () => {
    let peer: SmtpPeer;
    let rt: TestRuntime;
    let keyDir: string;
    const extra: Runtime[] = [];
    let first: { campaignId: string; audience: Map<string, string> } | undefined;

    /** The newest confirmation mail the peer received for an address. */
    const inbox = (address: string) =>
      waitFor(`a confirmation mail to ${address}`, () =>
        [...peer.messages].reverse().find((m) => m.rcptTo.includes(address) && decodedMessage(m.raw).includes('/confirm/'))?.raw,
      );

    before(async () => {
      keyDir = mkdtempSync(join(tmpdir(), 'assent-dkim-'));
      peer = await startSmtpPeer();
      rt = await startTestRuntime(target, {
        env: { ASSENT_SMTP_URL: peer.url, ASSENT_DKIM_DOMAIN: DOMAIN, ASSENT_DKIM_SELECTOR: 'test', ASSENT_DKIM_KEY_FILE: RSA_KEY_FILE },
        realTransport: true,
      });
      await addTopicWithForm(rt.runtime, { slug: 'announcements', name: 'Announcements' });
      await addNewsletterTemplate(rt.runtime);
    });
    after(async () => {
      for (const runtime of extra) await runtime.close();
      await rt?.close();
      await peer?.close();
      rmSync(keyDir, { recursive: true, force: true });
    });

    test('EML-12 / GDPR-06 / GDPR-21: a campaign reaches exactly the confirmed, unsuppressed contacts of its topic; `campaign status --json` counts it', async () => {
      const R = rt.runtime;
      const db = R.storage.db;
      const newsletter = await topicIdOf(db, 'newsletter');
      const join = (address: string, confirm = true) => signUp(R, { address, form: 'newsletter', topics: ['newsletter'], inbox, confirm });
      const unsubscribeUrl = (contactId: string, campaignId?: string) =>
        `${R.config.publicUrl}/u/${signLinkToken(R.secrets.linkKeys, { purpose: 'unsubscribe', contactId, topicId: newsletter, ...(campaignId ? { campaignId } : {}) })}`;
      const dsr = { db, clock: R.clock, newId, logger: R.logger, keys: { masterKeys: R.secrets.masterKeys, suppressionKeys: R.secrets.suppressionKeys } };

      // Confirmed for the topic: three through the real double opt-in, five appended to the ledger in bulk.
      const audience = new Map<string, string>();
      for (const address of ['ada@one.example.org', 'Ben.Ng@two.example.net', 'cy@three.example.com']) audience.set(await join(address), address);
      for (const c of await seedConfirmedContacts(R, { topicSlug: 'newsletter', addresses: [1, 2, 3, 4, 5].map((i) => `bulk${i}@four.example.org`) })) {
        audience.set(c.id, c.address);
      }
      // Never in the audience: pending, withdrawn (one-click), confirmed for another topic, erased.
      await join('pat.pending@one.example.org', false);
      assert.equal(await oneClick(rt, unsubscribeUrl(await join('wes.withdrawn@one.example.org'))), 200);
      await signUp(R, { address: 'oli.other@one.example.org', form: 'announcements', topics: ['announcements'], inbox });
      await eraseContact(dsr, { contactId: await join('eve.erased@one.example.org'), channel: 'operator' });
      // Materialised but held back in the claim: a hard bounce suppressed before the start...
      const bounced = await join('bob.bounced@one.example.org');
      const feedback = { db, clock: R.clock, newId, logger: R.logger, suppressionKeys: R.secrets.suppressionKeys };
      assert.equal(await recordSendRefusal(feedback, { contactId: bounced, campaignId: 'an-earlier-campaign', response: '550 5.1.1 <bob.bounced@one.example.org>: user unknown' }), 'suppressed');
      // ...and a withdrawal and an erasure that commit after the start, before the first claim.
      const withdrawnLater = await join('wil.later@one.example.org');
      const erasedLater = await join('ern.later@one.example.org');

      const campaignId = await startNewCampaign(R, { topicSlug: 'newsletter' });
      assert.deepEqual((await deliveriesOf(db, campaignId)).map((d) => d.contact_id).sort(), [...audience.keys(), bounced, withdrawnLater, erasedLater].sort());
      assert.equal(await oneClick(rt, unsubscribeUrl(withdrawnLater, campaignId)), 200);
      await eraseContact(dsr, { contactId: erasedLater, channel: 'operator' });

      await sendToCompletion(R, campaignId);
      const received = ofCampaign(peer, campaignId);
      assert.deepEqual(received.map((m) => m.rcptTo.join(',')).sort(), [...audience.values()].sort(), 'each confirmed contact exactly once, nobody else');

      const rows = new Map((await deliveriesOf(db, campaignId)).map((d) => [d.contact_id, d]));
      for (const id of audience.keys()) assert.equal(rows.get(id)?.status, 'sent');
      // The gate's precedence is erased > suppressed > topic state; a one-click withdrawal also writes a
      // topic-scoped suppression (GDPR-21), so it is recorded as 'suppressed'.
      assert.deepEqual([bounced, withdrawnLater, erasedLater].map((id) => [rows.get(id)?.status, rows.get(id)?.skip_reason]), [
        ['skipped', 'suppressed'],
        ['skipped', 'suppressed'],
        ['skipped', 'erased'],
      ]);

      const cli = await runAssent(['campaign', 'status', campaignId, '--json'], { ...rt.env, ASSENT_LOG_LEVEL: 'warn' });
      assert.equal(cli.code, 0, cli.stderr);
      assert.deepEqual(JSON.parse(cli.stdout.trim().split('\n').at(-1)!), {
        id: campaignId,
        status: 'sent',
        queued: 0,
        claimed: 0,
        sent: 8,
        failed: 0,
        skipped: 3,
        skipped_by_reason: { suppressed: 2, erased: 1 },
      });
      first = { campaignId, audience };
    });

    test('EML-10 / EML-11 / EML-18: every message carries List-Unsubscribe (signed token), One-Click, List-Id, its own Message-ID, both links, and an rsa-sha256 DKIM signature mailauth accepts', async () => {
      assert.ok(first, 'needs the campaign of the previous test');
      const R = rt.runtime;
      const rows = new Map((await deliveriesOf(R.storage.db, first.campaignId)).map((d) => [d.contact_id, d]));
      const received = ofCampaign(peer, first.campaignId);
      assert.equal(received.length, first.audience.size);
      const topicId = await topicIdOf(R.storage.db, 'newsletter');
      for (const message of received) {
        const contactId = [...first.audience].find(([, address]) => address === message.rcptTo[0])![0];
        await assertCampaignMessage(message, {
          campaignId: first.campaignId,
          topicId,
          contactId,
          address: message.rcptTo[0]!,
          messageId: rows.get(contactId)!.message_id,
          linkKeys: R.secrets.linkKeys,
          algo: 'rsa-sha256',
        });
      }
      assert.equal(new Set(received.map((m) => m.messageId)).size, received.length, 'Message-IDs are unique');
      const tampered = await dkimResults(tamperBody(received[0]!.raw));
      assert.equal(tampered.length, 1);
      assert.notEqual(tampered[0]!.result, 'pass');
      assert.match(tampered[0]!.comment, /body hash did not verify/);
    });

    test('EML-11 / EML-18: with an Ed25519 key and an unsubscribe mailbox, a second campaign is signed ed25519-sha256, carries the mailto: form, and gets new Message-IDs', async () => {
      assert.ok(first, 'needs the campaign of the first test');
      const R = await deriveRuntime(rt, {
        ASSENT_DKIM_SELECTOR: 'brisbane',
        ASSENT_DKIM_KEY_FILE: writeEd25519Pem(keyDir),
        ASSENT_UNSUBSCRIBE_MAILTO: `unsubscribe@${DOMAIN}`,
      });
      extra.push(R);
      const campaignId = await startNewCampaign(R, { topicSlug: 'newsletter' });
      await sendToCompletion(R, campaignId);
      const received = ofCampaign(peer, campaignId);
      assert.deepEqual(received.map((m) => m.rcptTo[0]).sort(), [...first.audience.values()].sort());
      const rows = new Map((await deliveriesOf(R.storage.db, campaignId)).map((d) => [d.contact_id, d]));
      const topicId = await topicIdOf(R.storage.db, 'newsletter');
      for (const message of received) {
        const contactId = [...first.audience].find(([, address]) => address === message.rcptTo[0])![0];
        await assertCampaignMessage(message, {
          campaignId,
          topicId,
          contactId,
          address: message.rcptTo[0]!,
          messageId: rows.get(contactId)!.message_id,
          linkKeys: R.secrets.linkKeys,
          algo: 'ed25519-sha256',
          mailto: `unsubscribe@${DOMAIN}`,
        });
      }
      const ids = [...ofCampaign(peer, first.campaignId), ...received].map((m) => m.messageId);
      assert.equal(new Set(ids).size, ids.length, 'one Message-ID per campaign x contact');
      const tampered = await dkimResults(tamperBody(received[0]!.raw));
      assert.deepEqual(tampered.map((r) => [r.result === 'pass', /body hash did not verify/.test(r.comment)]), [[false, true]]);
    });

    test('GDPR-06 / GDPR-21 / EML-12: a one-click withdrawal that commits while a campaign runs (batches of 5) stops every later message to that person', async () => {
      const R = await deriveRuntime(rt, { ASSENT_WORKER_BATCH: '5', ASSENT_WORKER_CONCURRENCY: '5' });
      extra.push(R);
      const db = R.storage.db;
      await addTopicWithForm(R, { slug: 'weekly', name: 'Weekly' });
      const people = await seedConfirmedContacts(R, { topicSlug: 'weekly', addresses: Array.from({ length: 30 }, (_, i) => `reader${String(i).padStart(2, '0')}@weekly.example.org`) });
      const byId = new Map(people.map((p) => [p.id, p.address]));

      // An earlier campaign: every reader gets a mail whose List-Unsubscribe URL the leaver will use.
      const earlier = await startNewCampaign(R, { topicSlug: 'weekly', subject: 'Week 1' });
      await sendToCompletion(R, earlier);
      assert.equal(ofCampaign(peer, earlier).length, 30);

      // The running campaign: ten messages go out, then the peer holds its replies, freezing the worker's lanes.
      peer.holdAfter(10);
      const running = await startNewCampaign(R, { topicSlug: 'weekly', subject: 'Week 2' });
      const worker = startWorker(R, { idleMs: 25 });
      try {
        await waitFor('the third batch to reach the held peer', async () => {
          const rows = await deliveriesOf(db, running);
          return peer.pending === 5 && rows.filter((d) => d.status === 'claimed').length === 5 && rows.filter((d) => d.status === 'sent').length === 10;
        });
        // Five lanes, all held: the worker claims nothing more until one is free.
        const queued = (await deliveriesOf(db, running)).filter((d) => d.status === 'queued');
        assert.equal(queued.length, 15);
        const leaver = queued.at(-1)!.contact_id;
        const mail = ofCampaign(peer, earlier).find((m) => m.rcptTo[0] === byId.get(leaver))!;
        const url = /^<(https:[^>]+)>$/.exec(fields(mail.raw, 'List-Unsubscribe')[0]!)![1]!;
        assert.equal(await oneClick(rt, url), 200);
        const committedAt = Date.now();
        peer.release();
        await waitUntilSent(R, running);

        const received = ofCampaign(peer, running);
        assert.equal(received.filter((m) => m.rcptTo[0] === byId.get(leaver)).length, 0, 'the leaver receives nothing of the running campaign');
        assert.ok(received.filter((m) => m.acceptedAt < committedAt).length >= 10, 'some batches went out before the withdrawal');
        assert.deepEqual(received.map((m) => m.rcptTo[0]).sort(), people.filter((p) => p.id !== leaver).map((p) => p.address).sort());
        const row = (await deliveriesOf(db, running)).find((d) => d.contact_id === leaver)!;
        // A withdrawal writes a topic-scoped suppression too (GDPR-21), and the gate reports suppression first.
        assert.deepEqual([row.status, row.skip_reason, row.message_id], ['skipped', 'suppressed', null]);
        const state = await db.selectFrom('consent_states').select('state').where('contact_id', '=', leaver).executeTakeFirstOrThrow();
        assert.equal(state.state, 'withdrawn');
        const withdrawal = await db.selectFrom('consent_events').select('evidence').where('contact_id', '=', leaver).where('type', '=', 'withdrawn').executeTakeFirstOrThrow();
        assert.deepEqual(
          (({ method, campaign_id }) => ({ method, campaign_id }))(JSON.parse(withdrawal.evidence) as { method: string; campaign_id: string }),
          { method: 'one_click_header', campaign_id: earlier },
        );
      } finally {
        peer.release();
        await worker.stop();
      }
    });
  });
}
