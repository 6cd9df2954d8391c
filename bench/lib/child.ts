/**
 * The measured side of each benchmark, one process per run so that CPU and
 * peak RSS belong to that sender alone. The task comes as JSON in BENCH_TASK;
 * the result goes to stdout on one line starting `BENCH_RESULT `.
 *
 *   campaign   Assent's real runtime (buildRuntime from ASSENT_* env) and
 *              real worker (startWorker): start the campaign (materialise
 *              the audience), run until its status is 'sent'.
 *   nodemailer The loop a user would write instead: a pooled nodemailer
 *              transport, one sendMail per recipient composing the message.
 *   floor      A plain better-sqlite3 bulk insert of a CSV's rows in one
 *              transaction: what an import cannot beat.
 *   minimum    Plain better-sqlite3 writing only the rows DESIGN.md requires
 *              per imported person into Assent's schema (design-minimum.ts).
 */
import { createHmac, randomBytes } from 'node:crypto';
import { setFlagsFromString } from 'node:v8';
import { forEachDataLine } from './csv-lines.js';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export type ChildTask =
  | {
      kind: 'campaign';
      campaignId: string;
      timeoutMs: number;
      stallMs: number;
      /** false: another process starts the campaign; this one waits for it to be sending, then only runs a worker. */
      start?: boolean;
    }
  | {
      kind: 'nodemailer';
      host: string;
      port: number;
      count: number;
      maxConnections: number;
      inFlight: number;
      htmlFile: string;
      textFile: string;
      tokenLength: number;
      from: string;
      subject: string;
    }
  | { kind: 'floor'; csvFile: string; sqliteFile: string }
  | { kind: 'minimum'; csvFile: string; sqliteFile: string; topicId: string };

export interface CampaignChildResult {
  /** Campaign start (materialisation included) to status 'sent'. */
  elapsedMs: number;
  materialiseMs: number;
  /** process.cpuUsage over that window (user + system). */
  cpuUs: number;
  maxRssKb: number;
  status: string;
  sent: number;
  failed: number;
  skipped: number;
  queued: number;
  claimed: number;
  /** No message sent for `stallMs` while deliveries were left: the run was abandoned (see `elapsedMs`, `sent`). */
  stalled: boolean;
  /** Start to the last time the sent count was seen growing (the stall watch's 5 s resolution). */
  lastProgressMs: number;
  /** Open SMTP sessions / messages in flight / queued in the transport when the run ended, if it reports them. */
  transport?: { open: number; inFlight: number; queued: number };
  settings: { connections: number; batch: number; concurrency: number; dkim: string | null };
}

export interface NodemailerChildResult {
  elapsedMs: number;
  cpuUs: number;
  maxRssKb: number;
  sent: number;
  failed: number;
  firstError?: string;
}

export interface MinimumChildResult {
  rows: number;
  people: number;
  events: number;
  elapsedMs: number;
  cpuUs: number;
}

export interface FloorChildResult {
  elapsedMs: number;
  cpuUs: number;
  rows: number;
}

const task = JSON.parse(process.env.BENCH_TASK ?? 'null') as ChildTask | null;
if (!task) throw new Error('BENCH_TASK is not set');

function result(value: unknown): void {
  process.stdout.write(`BENCH_RESULT ${JSON.stringify(value)}\n`);
}

const cpuTotal = (u: NodeJS.CpuUsage) => u.user + u.system;

/**
 * Peak RSS in KiB from /proc/self/status (VmHWM). Not resourceUsage().maxRSS:
 * on Linux that survives fork+exec and starts at the parent's RSS (probe.mjs).
 */
function peakRssKb(): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) : 0;
}

/** The pipelining transport's own counters, when it has them (a diagnostic for stalls). */
function transportStats(transport: object): { transport?: { open: number; inFlight: number; queued: number } } {
  const stats = (transport as { stats?: () => { open: number; inFlight: number; queued: number } }).stats;
  return typeof stats === 'function' ? { transport: stats.call(transport) } : {};
}

if (task.kind === 'campaign') {
  // As bin/assent.mjs sets it for `npm start` and `assent worker`, before Assent is loaded.
  setFlagsFromString('--heap-growing-percent=50');
  // Imported here, not at the top: the other tasks must not pay for loading Assent.
  const { buildRuntime, readConfig } = await import('../../src/main.js');
  const { startWorker } = await import('../../src/worker-root.js');
  const { campaignStatus, findCampaign, startCampaign } = await import('../../src/campaigns/index.js');
  const { newId } = await import('../../src/shared/ids.js');
  const config = readConfig(process.env, process.cwd());
  const runtime = await buildRuntime(config);
  try {
    const deps = { db: runtime.storage.db, clock: runtime.clock, newId };
    if (task.start === false) {
      const waitUntil = performance.now() + 120_000;
      while ((await findCampaign(runtime.storage.db, task.campaignId))?.status !== 'sending') {
        if (performance.now() > waitUntil) throw new Error('the campaign was not started by the other process');
        await sleep(10);
      }
    }
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    const wall0 = Date.now();
    if (task.start !== false) await startCampaign(deps, task.campaignId);
    const materialiseMs = performance.now() - t0;
    const worker = startWorker(runtime);
    let status = 'sending';
    let elapsedMs = 0;
    let cpuUs = 0;
    let stalled = false;
    // Stall watch: a cheap indexed count every 5 s; no new sent row for stallMs ends the run.
    const countSent = async () =>
      Number(
        (
          await runtime.storage.db
            .selectFrom('deliveries')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .where('campaign_id', '=', task.campaignId)
            .where('status', '=', 'sent')
            .executeTakeFirstOrThrow()
        ).n,
      );
    let lastSent = 0;
    let lastChange = t0;
    let nextCheck = t0 + 5000;
    try {
      while (status !== 'sent') {
        if (performance.now() - t0 > task.timeoutMs) throw new Error(`campaign not sent after ${task.timeoutMs} ms`);
        await sleep(25);
        status = (await findCampaign(runtime.storage.db, task.campaignId))?.status ?? 'missing';
        const now = performance.now();
        if (status !== 'sent' && now >= nextCheck) {
          nextCheck = now + 5000;
          const sent = await countSent();
          if (sent > lastSent) {
            lastSent = sent;
            lastChange = now;
          } else if (now - lastChange > task.stallMs) {
            stalled = true;
            break;
          }
        }
      }
    } finally {
      elapsedMs = performance.now() - t0;
      cpuUs = cpuTotal(process.cpuUsage(cpu0));
      if (stalled) {
        // The exact time of the last send, rather than the 5 s resolution of the watch.
        const last = await runtime.storage.db
          .selectFrom('deliveries')
          .select((eb) => eb.fn.max('sent_at').as('at'))
          .where('campaign_id', '=', task.campaignId)
          .executeTakeFirst();
        if (last?.at) lastChange = t0 + (Date.parse(last.at) - wall0);
      }
      // A stalled worker may never finish its batch: do not wait for it for long.
      await Promise.race([worker.stop(), sleep(stalled ? 5000 : 600_000, undefined, { ref: false })]);
    }
    const counts = await campaignStatus(deps, task.campaignId);
    const out: CampaignChildResult = {
      elapsedMs,
      materialiseMs,
      cpuUs,
      maxRssKb: peakRssKb(),
      status: counts.status,
      sent: counts.sent,
      failed: counts.failed,
      skipped: counts.skipped,
      queued: counts.queued,
      claimed: counts.claimed,
      stalled,
      lastProgressMs: lastChange - t0,
      ...transportStats(runtime.transport),
      settings: {
        connections: config.relays[0]?.connections ?? 0,
        batch: config.worker.batchSize,
        concurrency: config.worker.concurrency,
        dkim: config.dkim ? `${config.dkim.selector}._domainkey.${config.dkim.domain}` : null,
      },
    };
    result(out);
    if (stalled) process.exit(0); // the stuck send would keep the process (and runtime.close) waiting
  } finally {
    await runtime.close();
  }
} else if (task.kind === 'nodemailer') {
  const nodemailer = (await import('nodemailer')).default;
  const html = readFileSync(task.htmlFile, 'utf8');
  const text = readFileSync(task.textFile, 'utf8');
  const key = randomBytes(32);
  // A signed token of the same length as Assent's, so the messages are the same size.
  const token = (purpose: string, i: number) => {
    const mac = createHmac('sha256', key).update(`${purpose}:${i}`).digest('base64url');
    return (mac + mac + mac + mac + mac + mac + mac + mac).slice(0, task.tokenLength);
  };
  const transporter = nodemailer.createTransport({
    pool: true,
    maxConnections: task.maxConnections,
    host: task.host,
    port: task.port,
    secure: false,
    ignoreTLS: true,
  });
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let next = 0;
  let sent = 0;
  let failed = 0;
  let firstError: string | undefined;
  const lane = async () => {
    while (next < task.count) {
      const i = next++;
      const to = `bench.${i}@example.com`;
      const u = token('u', i);
      const p = token('p', i);
      const unsubscribe = `https://news.example.org/u/${u}`;
      const personal = (s: string) => s.replaceAll('__EMAIL__', to).replaceAll('__UNSUB__', u).replaceAll('__PREFS__', p);
      try {
        await transporter.sendMail({
          from: task.from,
          to,
          subject: task.subject,
          html: personal(html),
          text: personal(text),
          headers: {
            'List-Unsubscribe': `<${unsubscribe}>`,
            'List-Unsubscribe-Post': 'List-Unsubscribe=One-Click',
            'List-Id': 'Example News <bench-news.news.example.org>',
          },
          messageId: `<c.bench.${i}@news.example.org>`,
        });
        sent += 1;
      } catch (error) {
        failed += 1;
        firstError ??= error instanceof Error ? error.message : String(error);
      }
    }
  };
  await Promise.all(Array.from({ length: task.inFlight }, lane));
  const elapsedMs = performance.now() - t0;
  const cpuUs = cpuTotal(process.cpuUsage(cpu0));
  transporter.close();
  const out: NodemailerChildResult = { elapsedMs, cpuUs, maxRssKb: peakRssKb(), sent, failed, ...(firstError ? { firstError } : {}) };
  result(out);
} else if (task.kind === 'floor') {
  const Database = (await import('better-sqlite3')).default;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const db = new Database(task.sqliteFile);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('create table rows (email text, first_name text, last_name text, status text, optin_time text, optin_ip text)');
  const insert = db.prepare('insert into rows (email, first_name, last_name, status, optin_time, optin_ip) values (?, ?, ?, ?, ?, ?)');
  let rows = 0;
  db.exec('begin');
  await forEachDataLine(task.csvFile, (line) => {
    const f = line.split(',');
    insert.run(f[0], f[1], f[2], f[3], f[4], f[5]);
    rows += 1;
  });
  db.exec('commit');
  db.close();
  const out: FloorChildResult = { elapsedMs: performance.now() - t0, cpuUs: cpuTotal(process.cpuUsage(cpu0)), rows };
  result(out);
} else if (task.kind === 'minimum') {
  const { designMinimum } = await import('./design-minimum.js');
  const cpu0 = process.cpuUsage();
  const out = await designMinimum(task.csvFile, task.sqliteFile, task.topicId);
  result({ ...out, cpuUs: cpuTotal(process.cpuUsage(cpu0)) });
}
