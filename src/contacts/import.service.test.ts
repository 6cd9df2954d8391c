/**
 * The import service on every database: the acceptance (one person
 * three times → one suppressed contact no campaign reaches), imports never
 * raising consent, suppressed and erased addresses never re-added, evidence
 * and names sealed, and the per-row report.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { databaseTargets, type TestDatabase } from '../../test/support/databases.js';
import { checkGate, findSuppressions, lookupHashes, readContactEvents, verifyLedger, withLedger, type SuppressionKey } from '../consent/index.js';
import { createCampaign, mergeProbableDuplicates, startCampaign } from '../campaigns/index.js';
import { claimBatch } from '../delivery/claim.service.js';
import { eraseContact, exportContactData } from '../dsr/index.js';
import { fixedClock } from '../shared/clock.js';
import { isAppError } from '../shared/errors.js';
import { newId } from '../shared/ids.js';
import { silentLogger } from '../shared/logger.js';
import type { Contact, Db } from '../storage/index.js';
import { createContactKey, findContactByMatchKey, findContactKey, insertContact, insertContactKey, openPersonal, unwrapContactKey } from './index.js';
import { readContactNames } from './contact-names.js';
import { importContacts, type ImportInput, type ImportSummary } from './import.service.js';

const T0 = new Date('2026-03-01T10:00:00.000Z');
const keys = { masterKeys: [{ version: 1, key: Buffer.alloc(32, 3) }], suppressionKeys: [{ version: 1, key: Buffer.alloc(32, 7) }] as SuppressionKey[] };
const HEADER = 'Email Address,First Name,Last Name,status,OPTIN_TIME,OPTIN_IP\r\n';

for (const target of await databaseTargets()) {
  describe(`contact import (${target.name})`, { skip: target.skip }, () => {
    let database: TestDatabase;
    let db: Db;
    let dir: string;
    let topicId: string;
    const clock = fixedClock(T0);
    const deps = () => ({ db, clock, newId, keys, logger: silentLogger });

    before(async () => {
      database = await target.open();
      db = database.storage.db;
      dir = mkdtempSync(join(tmpdir(), 'assent-import-'));
      topicId = 'topic-news';
      await db.insertInto('topics').values({ id: topicId, slug: 'news', name: 'News', description: 'Monthly', is_public: 1, created_at: T0.toISOString() }).execute();
    });
    after(async () => {
      await database.cleanup();
      rmSync(dir, { recursive: true, force: true });
    });

    let files = 0;
    async function run(csv: string | Buffer, extra: Partial<ImportInput> = {}): Promise<ImportSummary> {
      const path = join(dir, `list-${++files}.csv`);
      writeFileSync(path, typeof csv === 'string' ? HEADER + csv : csv);
      return importContacts(deps(), { path, topicSlug: 'news', reportPath: `${path}.report.csv`, ...extra });
    }
    const contactOf = async (matchKey: string) => findContactByMatchKey(db, matchKey);
    const stateOf = async (contactId: string) =>
      (await db.selectFrom('consent_states').select('state').where('contact_id', '=', contactId).where('topic_id', '=', topicId).executeTakeFirst())?.state ?? null;
    const suppressionsOf = (matchKey: string) => findSuppressions(db, lookupHashes(keys.suppressionKeys, matchKey), [topicId]);
    const typesOf = async (contactId: string) => (await readContactEvents(db, contactId)).map((e) => e.type);

    /** A contact holding `events` for the topic, as the sign-up flow would leave it. */
    async function seed(address: string, events: ('requested' | 'confirmed' | 'withdrawn')[]): Promise<Contact> {
      const contact: Contact = { id: newId(), address, match_key: address, provider_key: null, locale: 'en', created_at: T0.toISOString(), erased_at: null };
      await insertContact(db, contact);
      await insertContactKey(db, { contact_id: contact.id, wrapped_key: createContactKey(keys.masterKeys, contact.id).wrapped, created_at: T0.toISOString() });
      await withLedger(db, (_trx, ledger) =>
        ledger.append(events.map((type) => ({ id: newId(), contactId: contact.id, topicId, type, occurredAt: T0, evidence: { method: 'test', actor: 'subject' } }))),
      );
      return contact;
    }

    test('issue 5 acceptance (GDPR-21, ADR-03): subscribed, unsubscribed, subscribed for one person → one suppressed contact no campaign reaches', async () => {
      const confirmed = await seed('confirmed.reader@example.org', ['requested', 'confirmed']);
      const summary = await run('trio@example.org,Tri,O,subscribed,,\r\nx@example.org,X,,subscribed,,\r\nTRIO@Example.org,,,unsubscribed,,\r\ny@example.org,Y,,subscribed,,\r\nTrio@example.org,Tri,O,subscribed,2019-05-01,203.0.113.9\r\n');
      assert.deepEqual(
        { rows: summary.rows, contacts_created: summary.contacts_created, imported: summary.imported, suppressed: summary.suppressed, merged: summary.merged, unchanged: summary.unchanged, errors: summary.errors },
        { rows: 5, contacts_created: 3, imported: 2, suppressed: 1, merged: 1, unchanged: 2, errors: 0 },
      );
      const trio = (await db.selectFrom('contacts').selectAll().where('match_key', '=', 'trio@example.org').execute());
      assert.equal(trio.length, 1, 'one contact');
      assert.equal(trio[0]!.address, 'trio@example.org', 'the first row\'s address, as entered');
      assert.deepEqual(await suppressionsOf('trio@example.org'), [{ scope: 'all', reason: 'unsubscribed' }]);
      assert.equal(await stateOf(trio[0]!.id), null, 'no consent state at all, certainly not confirmed');
      assert.deepEqual(await typesOf(trio[0]!.id), ['objected', 'merged']);
      const merged = JSON.parse((await readContactEvents(db, trio[0]!.id))[1]!.evidence);
      assert.deepEqual(
        { rule: merged.rule, from: merged.from, to: merged.to, records: merged.records.map((r: Record<string, unknown>) => [r.row, r.declared_status, r.outcome]) },
        { rule: 'most_restrictive_wins', from: null, to: 'suppressed', records: [[1, 'subscribed', 'merged'], [3, 'unsubscribed', 'suppressed'], [5, 'subscribed', 'merged']] },
      );
      assert.equal(merged.records[2].optin_time, '2019-05-01', 'a losing row keeps its evidence');
      const campaign = await createCampaign({ db, clock, newId }, { topicSlug: 'news', templateName: 't', subject: 's', fromAddress: 'news@assent.example.org' });
      await startCampaign({ db, clock, newId }, campaign.id);
      const claimed = await claimBatch({ db, capabilities: database.storage.capabilities, suppressionKeys: keys.suppressionKeys }, { campaignId: campaign.id, workerId: 'w', batchSize: 100, leaseMs: 60_000, now: T0 });
      assert.deepEqual(claimed.map((d) => d.contactId), [confirmed.id], 'only the confirmed reader; no imported or suppressed person');
      assert.deepEqual(await checkGate(db, keys.suppressionKeys, { contact: trio[0]!, topicId, purpose: 'repermission' }), { allowed: false, reason: 'suppressed' });
      assert.equal((await verifyLedger(db)).ok, true);
    });

    test('the rule holds across batches: a later unsubscribe still wins, a later subscribe of a suppressed key is skipped', async () => {
      const summary = await run('far@example.org,,,subscribed,,\r\nfar@example.org,,,unsubscribed,,\r\nfar@example.org,,,subscribed,,\r\n', { batchSize: 1 });
      assert.deepEqual([summary.imported, summary.suppressed, summary.suppressed_skipped, summary.merged, summary.contacts_created], [1, 1, 1, 1, 1]);
      const far = (await contactOf('far@example.org'))!;
      assert.deepEqual(await typesOf(far.id), ['imported', 'objected', 'merged']);
      assert.deepEqual(await suppressionsOf('far@example.org'), [{ scope: 'all', reason: 'unsubscribed' }]);
      assert.deepEqual(await checkGate(db, keys.suppressionKeys, { contact: far, topicId, purpose: 'repermission' }), { allowed: false, reason: 'suppressed' });
    });

    test('ABU-01: importing "subscribed" never makes anyone campaign-eligible: state imported, evidence declared and sealed', async () => {
      await run('eve@example.org,Eve,Émile,subscribed,2018-02-03 04:05:06,192.0.2.44\r\n');
      const eve = (await contactOf('eve@example.org'))!;
      assert.equal(await stateOf(eve.id), 'imported');
      assert.deepEqual(await checkGate(db, keys.suppressionKeys, { contact: eve, topicId, purpose: 'campaign' }), { allowed: false, reason: 'state_imported' });
      assert.deepEqual(await checkGate(db, keys.suppressionKeys, { contact: eve, topicId, purpose: 'repermission' }), { allowed: true });
      const [event] = await readContactEvents(db, eve.id);
      const evidence = JSON.parse(event!.evidence);
      const importId = (await db.selectFrom('imports').select('id').orderBy('created_at', 'desc').execute()).map((r) => r.id);
      assert.ok(importId.includes(evidence.import_id));
      assert.deepEqual({ ...evidence, personal: undefined, import_id: undefined }, {
        method: `import:list-${files}.csv`, actor: 'operator', source_file: `list-${files}.csv`, row: 1, line: 2, declared_status: 'subscribed',
        declared_basis: 'consent', optin_time: '2018-02-03 04:05:06', personal: undefined, import_id: undefined,
      });
      assert.doesNotMatch(event!.evidence, /192\.0\.2\.44|eve@example/, 'IP and address only sealed');
      const key = unwrapContactKey(keys.masterKeys, eve.id, (await findContactKey(db, eve.id))!);
      assert.deepEqual(openPersonal(key, evidence.personal), { address: 'eve@example.org', ip: '192.0.2.44' });
      assert.deepEqual([...(await readContactNames(db, keys.masterKeys, [eve.id])).values()], [{ first_name: 'Eve', last_name: 'Émile' }]);
      // GDPR-15 (Art. 14(2)(f)): the person's export names the import as the source of their data.
      const exported = await exportContactData({ db, clock, newId, logger: silentLogger, keys }, eve.id);
      assert.deepEqual(exported.information.source, [
        { method: `import:list-${files}.csv`, description: 'Imported by the controller from an earlier mailing list; the declared source is in the event evidence (Art. 14(2)(f)).' },
      ]);
    });

    test('GDPR-21, EPR-06: Mailchimp\'s unsubscribed and cleaned exports (no status column, only UNSUB_TIME / CLEAN_TIME) suppress everyone in them, even with --status subscribed', async () => {
      const unsubscribedExport =
        'Email Address,First Name,MEMBER_RATING,OPTIN_TIME,OPTIN_IP,UNSUB_TIME,UNSUB_CAMPAIGN_TITLE,UNSUB_REASON,LEID\r\n' +
        'left.one@example.org,Lee,2,2020-01-02 03:04:05,203.0.113.1,2023-05-06 07:08:09,Spring news,NORMAL,11\r\n' +
        'left.two@example.org,Lou,2,2020-01-02 03:04:05,203.0.113.2,2023-06-07 08:09:10,Summer news,NORMAL,12\r\n';
      const cleanedExport =
        'Email Address,MEMBER_RATING,OPTIN_TIME,CLEAN_TIME,CLEAN_CAMPAIGN_TITLE,CLEAN_CAMPAIGN_ID,LEID\r\n' + 'bounced.away@example.org,1,2020-01-02 03:04:05,2022-01-01 00:00:00,Winter news,abc,13\r\n';
      for (const [csv, extra] of [[unsubscribedExport, {}], [cleanedExport, { defaultStatus: 'subscribed' }]] as const) {
        const path = join(dir, `mailchimp-${++files}.csv`);
        writeFileSync(path, csv);
        const summary = await importContacts(deps(), { path, topicSlug: 'news', ...extra });
        assert.equal(summary.imported, 0, 'nobody becomes imported, so nobody is asked to opt in again');
        assert.equal(summary.suppressed, summary.rows);
      }
      const expected: [string, string, string][] = [
        ['left.one@example.org', 'unsubscribed', 'objected'],
        ['left.two@example.org', 'unsubscribed', 'objected'],
        ['bounced.away@example.org', 'bounced', 'bounced'],
      ];
      for (const [address, reason, type] of expected) {
        const contact = (await contactOf(address))!;
        assert.deepEqual(await suppressionsOf(address), [{ scope: 'all', reason }], address);
        assert.equal(await stateOf(contact.id), null);
        assert.deepEqual(await typesOf(contact.id), [type]);
        assert.deepEqual(await checkGate(db, keys.suppressionKeys, { contact, topicId, purpose: 'repermission' }), { allowed: false, reason: 'suppressed' });
      }
      const [objected] = await readContactEvents(db, (await contactOf('left.one@example.org'))!.id);
      assert.equal(JSON.parse(objected!.evidence).declared_status, 'subscribed; unsub_time=2023-05-06 07:08:09', 'the evidence says what the file declared');
    });

    test('GDPR-15/20: the export opens every sealed value an import stored (opt-in and confirmation IPs, each merged record\'s), never handing back ciphertext', async () => {
      const path = join(dir, `ips-${++files}.csv`);
      writeFileSync(
        path,
        'Email,Status,OPTIN_IP,CONFIRM_TIME,CONFIRM_IP\r\n' +
          'ip.person@example.org,subscribed,203.0.113.11,2020-01-02 03:04:05,198.51.100.12\r\n' +
          'ip.merged@example.org,subscribed,203.0.113.21,2020-01-02 03:04:05,198.51.100.22\r\n' +
          'ip.merged@example.org,unsubscribed,203.0.113.31,,\r\n',
      );
      await importContacts(deps(), { path, topicSlug: 'news' });
      const dsr = { db, clock, newId, logger: silentLogger, keys };
      const person = await exportContactData(dsr, (await contactOf('ip.person@example.org'))!.id);
      const merged = await exportContactData(dsr, (await contactOf('ip.merged@example.org'))!.id);
      for (const exported of [person, merged]) assert.doesNotMatch(JSON.stringify(exported), /enc:v1:/, 'no ciphertext in the export');
      const imported = person.consent_events.find((e) => e.type === 'imported')!;
      assert.deepEqual([imported.evidence.personal?.ip, (imported.evidence.confirm_personal as { ip: string }).ip], ['203.0.113.11', '198.51.100.12']);
      const mergeEvent = merged.consent_events.find((e) => e.type === 'merged')!;
      const records = mergeEvent.evidence.records as { row: number; personal?: { ip: string | null }; confirm_personal?: { ip: string | null } }[];
      const losing = records.find((r) => r.personal !== undefined)!;
      assert.deepEqual([losing.personal?.ip, losing.confirm_personal?.ip], ['203.0.113.21', '198.51.100.22'], 'the losing subscribed row\'s evidence, opened');
    });

    test('GDPR-21: a complaint imported for someone already unsubscribed is recorded and holds for good; for an erased address nothing is', async () => {
      await run('late.complaint@example.org,,,unsubscribed,,\r\n');
      const late = (await contactOf('late.complaint@example.org'))!;
      assert.deepEqual(await checkGate(db, keys.suppressionKeys, { contact: late, topicId, purpose: 'self_service' }), { allowed: true }, 'an unsubscribe the person may lift');
      const summary = await run('late.complaint@example.org,,,complained,,\r\nlate.complaint@example.org,,,subscribed,,\r\n');
      assert.deepEqual([summary.suppressed, summary.suppressed_skipped, summary.imported, summary.contacts_created], [1, 1, 0, 0]);
      assert.deepEqual(await typesOf(late.id), ['objected', 'complained']);
      assert.deepEqual(await suppressionsOf('late.complaint@example.org'), [{ scope: 'all', reason: 'complained' }]);
      assert.deepEqual(await checkGate(db, keys.suppressionKeys, { contact: late, topicId, purpose: 'self_service' }), { allowed: false, reason: 'suppressed' });
      // Erased: the complaint row adds nothing at all.
      await run('erased.then.complaint@example.org,,,unsubscribed,,\r\n');
      const erased = (await contactOf('erased.then.complaint@example.org'))!;
      await eraseContact({ db, clock, newId, logger: silentLogger, keys }, { contactId: erased.id, channel: 'operator' });
      const events = (await readContactEvents(db, erased.id)).length;
      const after = await run('erased.then.complaint@example.org,,,complained,,\r\n');
      assert.deepEqual([after.suppressed, after.suppressed_skipped], [0, 1]);
      assert.equal((await readContactEvents(db, erased.id)).length, events);
      assert.equal((await verifyLedger(db)).ok, true);
    });

    test('EDPB-02: declared opt-in times and IPs that cannot be read are kept as written and warned about by row and column, never by value', async () => {
      const summary = await run(
        'odd.evidence@example.org,Odd,,subscribed,2024-13-45 10:00:00,999.1.1.1\r\n' +
          'fine.evidence@example.org,Fine,,subscribed,2024-01-02 10:00:00,192.0.2.8\r\n' +
          'odd.evidence.gone@example.org,,,subscribed,yesterday,\r\n',
      );
      assert.deepEqual([summary.imported, summary.errors, summary.warnings], [3, 0, 2]);
      const report = readFileSync(summary.report!, 'utf8');
      assert.match(report, /^1,2,declared_evidence_unreadable,"optin_time, optin_ip: kept as written"\r$/m);
      assert.match(report, /^3,4,declared_evidence_unreadable,optin_time: kept as written\r$/m);
      assert.doesNotMatch(report, /999\.1\.1\.1|2024-13-45|odd\.evidence/);
      const odd = (await contactOf('odd.evidence@example.org'))!;
      assert.equal(JSON.parse((await readContactEvents(db, odd.id))[0]!.evidence).optin_time, '2024-13-45 10:00:00', 'the evidence keeps what was declared');
    });

    test('GDPR-21: a CRM export\'s opt-out flag ("Email Opt Out" true) suppresses that row; a false flag leaves the row to its status', async () => {
      const path = join(dir, `crm-${++files}.csv`);
      writeFileSync(path, 'Email,First Name,Email Opt Out\r\noptout.crm@example.org,Cy,true\r\nstays.crm@example.org,Di,false\r\n');
      const summary = await importContacts(deps(), { path, topicSlug: 'news' });
      assert.deepEqual([summary.imported, summary.suppressed], [1, 1]);
      assert.deepEqual(await suppressionsOf('optout.crm@example.org'), [{ scope: 'all', reason: 'unsubscribed' }]);
      assert.equal(await stateOf((await contactOf('stays.crm@example.org'))!.id), 'imported');
    });

    test('imports never override a stronger or more restrictive stored state; an unsubscribe row still suppresses a confirmed person', async () => {
      const conf = await seed('conf@example.org', ['requested', 'confirmed']);
      const gone = await seed('gone@example.org', ['requested', 'confirmed', 'withdrawn']);
      const pend = await seed('pend@example.org', ['requested']);
      const quit = await seed('quit@example.org', ['requested', 'confirmed']);
      const summary = await run('conf@example.org,,,subscribed,,\r\ngone@example.org,,,subscribed,,\r\npend@example.org,,,subscribed,,\r\nquit@example.org,,,unsubscribed,,\r\n');
      assert.deepEqual([summary.unchanged, summary.imported, summary.suppressed, summary.merged, summary.contacts_created], [3, 0, 1, 1, 0]);
      assert.deepEqual([await stateOf(conf.id), await stateOf(gone.id), await stateOf(pend.id)], ['confirmed', 'withdrawn', 'requested']);
      assert.deepEqual(await typesOf(conf.id), ['requested', 'confirmed'], 'nothing recorded for a confirmed person');
      assert.deepEqual(await typesOf(quit.id), ['requested', 'confirmed', 'objected', 'merged']);
      const merged = JSON.parse((await readContactEvents(db, quit.id))[3]!.evidence);
      assert.deepEqual([merged.from, merged.to, merged.contact_existed], ['confirmed', 'suppressed', true]);
    });

    test('GDPR-17, EPR-06: an erased address is never re-imported; the report says "suppressed" and never prints it', async () => {
      await run('erin@example.org,Erin,,subscribed,,\r\n');
      const erin = (await contactOf('erin@example.org'))!;
      await eraseContact({ db, clock, newId, logger: silentLogger, keys }, { contactId: erin.id, channel: 'operator' });
      const events = await db.selectFrom('consent_events').select('seq').execute();
      const contacts = await db.selectFrom('contacts').select('id').execute();
      const summary = await run('Erin@Example.org,Erin,,subscribed,,\r\nerin@example.org,,,unsubscribed,,\r\n');
      assert.deepEqual([summary.suppressed_skipped, summary.contacts_created, summary.imported, summary.suppressed], [2, 0, 0, 0]);
      assert.equal((await db.selectFrom('consent_events').select('seq').execute()).length, events.length, 'no event');
      assert.equal((await db.selectFrom('contacts').select('id').execute()).length, contacts.length, 'no contact');
      const report = readFileSync(summary.report!, 'utf8');
      assert.equal(report, 'row,line,reason,detail\r\n1,2,suppressed,\r\n2,3,suppressed,\r\n');
      assert.doesNotMatch(report, /erin/i);
    });

    test('ADR-07: a provider alias suppressed in the same batch keeps its variant out too', async () => {
      const summary = await run('jo.doe+news@gmail.com,,,subscribed,,\r\njodoe@gmail.com,,,subscribed,,\r\nj.o.doe@gmail.com,,,unsubscribed,,\r\n');
      assert.deepEqual([summary.imported, summary.suppressed, summary.suppressed_skipped], [0, 1, 2]);
      assert.equal(await contactOf('jodoe@gmail.com'), undefined);
    });

    test('per-row errors go to the report (row, line, reason) and are counted; they never stop the import', async () => {
      const csv = HEADER + 'ok1@example.org,,,subscribed,,\r\nnot-an-address,,,subscribed,,\r\n\r\nok2@example.org,too,few\r\n' +
        'ok3@example.org,"bad"quote,,subscribed,,\r\nok4@example.org,,,whatever,,\r\nok5@example.org,,,pending,,\r\n"multi\r\nline@example.org",,,subscribed,,\r\nok6@example.org,,,subscribed,,\r\n';
      const summary = await run(Buffer.from(csv));
      assert.deepEqual([summary.rows, summary.imported, summary.errors, summary.skipped], [9, 2, 6, 1]);
      assert.equal(summary.rows, summary.imported + summary.suppressed + summary.unchanged + summary.skipped + summary.suppressed_skipped + summary.errors);
      assert.equal(readFileSync(summary.report!, 'utf8'), [
        'row,line,reason,detail', '2,3,bad_address,no_at_sign', '3,4,empty_row,', '4,5,column_count,"expected 6 fields, found 3"',
        '5,6,bad_quoting,', '6,7,unknown_status,whatever', '7,8,not_subscribed,pending', '8,9,bad_address,whitespace_or_control', '',
      ].join('\r\n'));
    });

    test('Windows-1252 on request: "René" arrives intact; read as UTF-8 the same bytes are an undecodable row', async () => {
      const bytes = Buffer.concat([Buffer.from(`${HEADER}rene@example.org,Ren`, 'latin1'), Buffer.from([0xe9]), Buffer.from(',Dupr\xe9,subscribed,,\r\n', 'latin1')]);
      const asUtf8 = await run(bytes);
      assert.deepEqual([asUtf8.errors, asUtf8.imported], [1, 0]);
      assert.match(readFileSync(asUtf8.report!, 'utf8'), /^1,2,undecodable,/m);
      const summary = await run(bytes, { encoding: 'windows-1252' });
      assert.deepEqual([summary.imported, summary.errors, summary.encoding], [1, 0, 'windows-1252']);
      const rene = (await contactOf('rene@example.org'))!;
      assert.deepEqual([...(await readContactNames(db, keys.masterKeys, [rene.id])).values()], [{ first_name: 'René', last_name: 'Dupré' }]);
    });

    test('the same file again changes nothing and returns the stored summary; the ledger still verifies', async () => {
      const first = await run('again@example.org,,,subscribed,,\r\n');
      const path = join(dir, `list-${files}.csv`);
      const events = (await db.selectFrom('consent_events').select('seq').execute()).length;
      const again = await importContacts(deps(), { path, topicSlug: 'news' });
      assert.deepEqual({ ...again, delimiter: first.delimiter, report: first.report }, { ...first, resumed_from_row: 1, already_completed: true });
      assert.equal((await db.selectFrom('consent_events').select('seq').execute()).length, events);
      assert.equal((await verifyLedger(db)).ok, true);
    });

    test('a byte stream imports the same way (the API path); without a hash it is never matched for resumption', async () => {
      const csv = Buffer.from(`${HEADER}stream.one@example.org,S,O,subscribed,,\r\n`);
      const first = await importContacts(deps(), { stream: Readable.from([csv.subarray(0, 20), csv.subarray(20)]), fileName: 'upload.csv', topicSlug: 'news' });
      assert.deepEqual([first.imported, first.file_name, first.already_completed], [1, 'upload.csv', false]);
      const run = await db.selectFrom('imports').select(['file_sha256', 'status']).where('id', '=', first.import_id).executeTakeFirstOrThrow();
      assert.deepEqual(run, { file_sha256: `stream:${first.import_id}`, status: 'completed' });
      const second = await importContacts(deps(), { stream: Readable.from([csv]), fileName: 'upload.csv', topicSlug: 'news' });
      assert.notEqual(second.import_id, first.import_id);
      assert.deepEqual([second.imported, second.contacts_created], [1, 0], 'a second imported event with its own evidence, no new contact');
    });

    test('an address an operator merged into another contact acts on the kept one (contact_merges.merged_into), never on the merged-away one', async () => {
      const person = async (address: string) => {
        const contact: Contact = { id: newId(), address, match_key: address, provider_key: 'kept.merge@gmail.com'.replace('.', ''), locale: null, created_at: T0.toISOString(), erased_at: null };
        await insertContact(db, contact);
        await insertContactKey(db, { contact_id: contact.id, wrapped_key: createContactKey(keys.masterKeys, contact.id).wrapped, created_at: T0.toISOString() });
        return contact;
      };
      const kept = await person('kept.merge@gmail.com');
      const gone = await person('keptmerge+old@gmail.com');
      await mergeProbableDuplicates({ db, clock, newId }, { keepId: kept.id, otherId: gone.id });
      const goneEvents = await typesOf(gone.id);

      const first = await run('KeptMerge+Old@gmail.com,Old,Name,subscribed,2019-01-01,192.0.2.7\r\n');
      assert.deepEqual([first.imported, first.contacts_created, first.suppressed], [1, 0, 0]);
      assert.deepEqual([await stateOf(kept.id), await stateOf(gone.id)], ['imported', null], 'the kept contact holds the import; the merged-away one gets no state back');
      assert.deepEqual(await typesOf(gone.id), goneEvents, 'no event on the merged-away contact');
      const [imported] = (await readContactEvents(db, kept.id)).filter((e) => e.type === 'imported');
      const key = unwrapContactKey(keys.masterKeys, kept.id, (await findContactKey(db, kept.id))!);
      assert.deepEqual(openPersonal(key, JSON.parse(imported!.evidence).personal), { address: 'KeptMerge+Old@gmail.com', ip: '192.0.2.7' }, 'sealed under the kept contact\'s key');
      assert.deepEqual(await readContactNames(db, keys.masterKeys, [kept.id, gone.id]), new Map(), 'names are only stored for new contacts');

      const second = await run('keptmerge+old@gmail.com,,,unsubscribed,,\r\nkept.merge@gmail.com,,,subscribed,,\r\n');
      assert.deepEqual([second.suppressed, second.imported, second.unchanged, second.merged, second.contacts_created], [1, 0, 1, 1, 0], 'both addresses are one person: the opt-out wins');
      assert.deepEqual((await typesOf(kept.id)).slice(-3), ['imported', 'objected', 'merged']);
      assert.deepEqual(await typesOf(gone.id), goneEvents);
      const keptHash = lookupHashes(keys.suppressionKeys, 'kept.merge@gmail.com')[0]!;
      assert.deepEqual(await db.selectFrom('suppressions').select(['scope', 'reason']).where('key_hash', '=', keptHash).execute(), [{ scope: 'all', reason: 'unsubscribed' }], 'the kept address itself, not only its alias');
      assert.deepEqual(await checkGate(db, keys.suppressionKeys, { contact: kept, topicId, purpose: 'repermission' }), { allowed: false, reason: 'suppressed' });
      assert.equal((await verifyLedger(db)).ok, true);
    });

    test('a batch refuses to commit when another process moved the import on (no row applied twice)', async () => {
      const rows = Array.from({ length: 6 }, (_, i) => `race${i}@example.org,,,subscribed,,`).join('\r\n');
      await assert.rejects(
        run(rows, {
          batchSize: 2,
          onProgress: async (p) => {
            if (p.rowsDone === 2) await db.updateTable('imports').set({ rows_done: 4 }).where('file_name', '=', `list-${files}.csv`).execute();
          },
        }),
        (e) => isAppError(e, 'conflict') && /moved on by another process \(row 4; this batch starts at 3\)/.test(e.message),
      );
      assert.equal((await db.selectFrom('contacts').select('id').where('match_key', 'like', 'race%').execute()).length, 2, 'only the first batch');
    });
  });
}
