/**
 * The "design minimum" importer: plain better-sqlite3 writing, into Assent's
 * own schema (its migrations, its pragmas), only the rows DESIGN.md requires
 * for each imported person, with no checks, no sealing and no application
 * code. Per CSV row: a ledger event with its evidence and its SHA-256 link in
 * the hash chain, and the consent-state projection; per new person also the
 * contact (address, match key) and the contact's key row that crypto-shredding
 * needs; per restrictive row a suppression entry. Batches of 1,000 rows, each
 * one transaction that moves the chain head, as the import commits.
 *
 * It is what any importer that keeps the design's proof must at least write,
 * so its rate beside the plain bulk insert (the issue's floor) shows how much
 * of the floor the design itself leaves, and Assent's rate beside it shows
 * what Assent's own work costs on top.
 */
import { createHash, randomFillSync, randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { forEachDataLine } from './csv-lines.js';

export interface MinimumResult {
  rows: number;
  people: number;
  events: number;
  elapsedMs: number;
}

const BATCH = 1000;

const RESTRICTIVE: Record<string, string> = { unsubscribed: 'objected', cleaned: 'bounced', complained: 'complained' };

export async function designMinimum(csvFile: string, sqliteFile: string, topicId: string): Promise<MinimumResult> {
  const t0 = performance.now();
  const db = new Database(sqliteFile);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('synchronous = NORMAL');
  db.pragma('secure_delete = ON');
  const insertContact = db.prepare('insert into contacts (id, address, match_key, provider_key, locale, created_at) values (?, ?, ?, null, null, ?)');
  const insertKey = db.prepare('insert into contact_keys (contact_id, wrapped_key, created_at) values (?, ?, ?)');
  const insertEvent = db.prepare(
    'insert into consent_events (seq, id, contact_id, topic_id, type, occurred_at, evidence, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  );
  const upsertState = db.prepare(
    'insert into consent_states (contact_id, topic_id, state, since, event_seq) values (?, ?, ?, ?, ?) ' +
      'on conflict (contact_id, topic_id) do update set state = excluded.state, since = excluded.since, event_seq = excluded.event_seq',
  );
  const insertSuppression = db.prepare(
    'insert into suppressions (key_hash, key_version, scope, reason, created_at, event_seq) values (?, 1, ?, ?, ?, ?) on conflict do nothing',
  );
  const readHead = db.prepare('select seq, hash from ledger_head where id = 1');
  const writeHead = db.prepare('update ledger_head set seq = ?, hash = ? where id = 1');

  const contacts = new Map<string, string>();
  const importId = randomUUID();
  let rows = 0;
  let events = 0;
  let pending: string[] = [];

  const flush = db.transaction((lines: string[]) => {
    const head = readHead.get() as { seq: number; hash: string };
    let seq = Number(head.seq);
    let prev = head.hash;
    const at = new Date().toISOString();
    const prefix = randomUUID().slice(0, 14);
    const id = () => prefix + randomUUID().slice(14);
    // Each new person's key: 76 random bytes, drawn for the whole batch in one call.
    const keyBytes = randomFillSync(Buffer.alloc(76 * lines.length));
    let keys = 0;
    for (const line of lines) {
      rows += 1;
      const [email = '', , , status = '', optinTime = '', ip = ''] = line.split(',');
      const matchKey = email.toLowerCase();
      let contactId = contacts.get(matchKey);
      if (contactId === undefined) {
        contactId = id();
        contacts.set(matchKey, contactId);
        insertContact.run(contactId, email, matchKey, at);
        insertKey.run(contactId, `1:${keyBytes.subarray(76 * keys, 76 * ++keys).toString('base64url')}`, at);
      }
      const restrictive = RESTRICTIVE[status];
      const type = restrictive ?? 'imported';
      const evidence =
        `{"actor":"operator","declared_basis":"consent","declared_status":${JSON.stringify(status)},"import_id":"${importId}","line":${rows + 1}` +
        `,"method":"import:bench.csv","optin_time":${JSON.stringify(optinTime)},"personal":${JSON.stringify(`{"address":${JSON.stringify(email)},"ip":${JSON.stringify(ip)}}`)}` +
        `,"row":${rows},"source_file":"bench.csv"}`;
      seq += 1;
      const eventId = id();
      const topic = restrictive ? null : topicId;
      const hash = createHash('sha256')
        .update(`{"contact_id":"${contactId}","evidence":${JSON.stringify(evidence)},"id":"${eventId}","occurred_at":"${at}","prev_hash":"${prev}","seq":${seq},"topic_id":${JSON.stringify(topic)},"type":"${type}","v":1}`)
        .digest('hex');
      insertEvent.run(seq, eventId, contactId, topic, type, at, evidence, prev, hash);
      prev = hash;
      events += 1;
      upsertState.run(contactId, topicId, restrictive ? 'withdrawn' : 'imported', at, seq);
      if (restrictive) insertSuppression.run(createHash('sha256').update(matchKey).digest('hex'), '*', status, at, seq);
    }
    writeHead.run(seq, prev);
  });

  await forEachDataLine(csvFile, (line) => {
    pending.push(line);
    if (pending.length === BATCH) {
      flush(pending);
      pending = [];
    }
  });
  if (pending.length > 0) flush(pending);
  db.close();
  return { rows, people: contacts.size, events, elapsedMs: performance.now() - t0 };
}
