/**
 * Issue 3, point 6: campaign throughput and memory.
 *
 * A. Throughput, side by side in one run, every sender to the same smtp-sink:
 *    smtp-source (the machine's limit), Assent's real worker (DKIM off, then
 *    RSA-2048 DKIM on), and a plain nodemailer pooled loop.
 * B. Peak RSS with a large audience: materialisation and the first sends of
 *    a 1,000,000-recipient campaign on SQLite (one `assent worker`) and on
 *    PostgreSQL (two `assent worker` processes), via the real CLI.
 */
import { cpSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import type { CampaignChildResult, ChildTask, NodemailerChildResult } from './lib/child.js';
import { benchResult, expectSuccess, spawnNode, spawnTracked, type Finished, type Tracked } from './lib/procs.js';
import { SMTP_SOURCE, startSink, type Sink } from './lib/sink.js';
import { childEnv, FROM, makeInstance, prepareCampaign, SUBJECT, type Instance, type PreparedCampaign } from './lib/setup.js';
import { createDatabase } from './lib/postgres.js';
import { fixed, int, kib, mb, secs, table, verdict } from './lib/table.js';
import { profileFlags, summariseProfile } from './lib/profile.js';
import type { BenchContext } from './run.js';

const RSS_TARGET_KB = 300 * 1024;

interface SenderRow {
  sender: string;
  messages: number;
  ms: number;
  cpuUs: number;
  maxRssKb: number;
  sinkCpuUs: number;
  note?: string;
  /** The run stopped making progress and was abandoned; rate is up to the last progress. */
  stalled?: boolean;
}

const rate = (r: { messages: number; ms: number }) => (r.messages * 1000) / r.ms;

export async function runCampaignBench(ctx: BenchContext): Promise<void> {
  const n = ctx.quick ? 10_000 : 100_000;
  const nodemailerCount = Math.min(n, ctx.quick ? 5_000 : 20_000);
  const big = ctx.quick ? 50_000 : 1_000_000;
  const bigSends = ctx.quick ? 10_000 : 100_000;
  // The large-audience runs measure memory; if sending is slow they stop at this cap and say so.
  const capMs = Number(process.env.BENCH_SEND_CAP_SECONDS ?? (ctx.quick ? 60 : 300)) * 1000;

  const sink = await startSink();
  ctx.log(`smtp-sink running on 127.0.0.1:${sink.port} (pid ${sink.pid})`);
  try {
    await throughput(ctx, sink, { n, nodemailerCount });
    await bigAudience(ctx, sink, { big, bigSends, capMs });
  } finally {
    await sink.stop();
    ctx.log('smtp-sink stopped');
  }
}

async function throughput(ctx: BenchContext, sink: Sink, sizes: { n: number; nodemailerCount: number }): Promise<void> {
  const { n, nodemailerCount } = sizes;
  ctx.log(`A. throughput: seeding ${int(n)} confirmed contacts on SQLite`);
  const base = makeInstance({ dir: join(ctx.tmp, 'throughput-base'), smtpPort: sink.port });
  const prepared = await prepareCampaign(base, { recipients: n });
  ctx.log(`   seeded in ${secs(prepared.seedMs)} s; one message is ${int(prepared.messageBytes)} bytes`);

  const dkimKeyFile = join(ctx.tmp, 'dkim-rsa2048.pem');
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  writeFileSync(dkimKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });

  // Each Assent run gets an identical copy of the seeded database and data dir.
  const copy = (name: string, dkim: boolean): Instance => {
    const dir = join(ctx.tmp, name);
    cpSync(base.dataDir, dir, { recursive: true });
    return makeInstance({ dir, smtpPort: sink.port, ...(dkim ? { dkimKeyFile } : {}) });
  };

  const rows: SenderRow[] = [];
  const settings: string[] = [];

  ctx.log(`   smtp-source: ${int(n)} messages of ${int(prepared.messageBytes)} bytes, 20 sessions`);
  rows.push(await smtpSource(sink, n, prepared.messageBytes));

  ctx.log(`   Assent worker, DKIM off: campaign of ${int(n)}`);
  const off = await assentCampaign(ctx, sink, copy('run-dkim-off', false), prepared, 'Assent worker, DKIM off');
  rows.push(off.row);
  settings.push(off.settings);

  ctx.log(`   Assent, 2 worker processes, DKIM off: campaign of ${int(n)}`);
  const twoOff = await assentCampaignTwoWorkers(ctx, sink, copy('run-two-dkim-off', false), prepared, 'Assent, 2 worker processes, DKIM off');
  rows.push(twoOff);

  ctx.log(`   nodemailer pool loop: ${int(nodemailerCount)} messages`);
  rows.push(await nodemailerLoop(ctx, sink, prepared, nodemailerCount, n));

  ctx.log(`   Assent worker, DKIM RSA-2048: campaign of ${int(n)}`);
  const on = await assentCampaign(ctx, sink, copy('run-dkim-rsa', true), prepared, 'Assent worker, DKIM RSA-2048');
  rows.push(on.row);

  const [source, assentOff, assentTwo, nodemailerRow, assentOn] = rows as [SenderRow, SenderRow, SenderRow, SenderRow, SenderRow];
  ctx.out(`\nCampaign throughput: ${int(n)} recipients on SQLite, ${kib(prepared.messageBytes)} messages, all senders to one smtp-sink on loopback`);
  ctx.out(
    table(
      ['sender', 'messages', 'seconds', 'msg/s', 'CPU s', 'CPU ms/msg', 'peak RSS', 'sink CPU s'],
      rows.map((r) => [
        r.sender + (r.note ? ` ${r.note}` : ''),
        int(r.messages),
        secs(r.ms),
        int(rate(r)),
        fixed(r.cpuUs / 1e6, 1),
        fixed(r.cpuUs / 1000 / r.messages, 3),
        mb(r.maxRssKb),
        fixed(r.sinkCpuUs / 1e6, 1),
      ]),
    ),
  );
  ctx.out(`Assent settings: ${settings[0]}`);
  const vsSource = rate(assentOff) / rate(source);
  const vsNodemailer = rate(assentOff) / rate(nodemailerRow);
  // A stalled run's rate is only up to its stall: shown, but no verdict is drawn from it.
  const judge = (value: number, target: number, ...used: SenderRow[]) =>
    used.some((r) => r.stalled) ? 'n/a (stalled run)' : verdict(value, target, 'min');
  ctx.out(
    table(
      ['ratio', 'value', 'target', 'verdict'],
      [
        ['Assent (DKIM off) / smtp-source', fixed(vsSource, 2), '>= 0.5', judge(vsSource, 0.5, assentOff)],
        ['Assent (DKIM off) / nodemailer loop', fixed(vsNodemailer, 2), '>= 3', judge(vsNodemailer, 3, assentOff)],
        ['Assent, 2 worker processes (DKIM off) / smtp-source', fixed(rate(assentTwo) / rate(source), 2), '-', ''],
        ['Assent, 2 worker processes (DKIM off) / nodemailer loop', fixed(rate(assentTwo) / rate(nodemailerRow), 2), '-', ''],
        ['Assent (DKIM RSA-2048) / smtp-source', fixed(rate(assentOn) / rate(source), 2), '-', ''],
        ['Assent (DKIM RSA-2048) / nodemailer loop', fixed(rate(assentOn) / rate(nodemailerRow), 2), '-', ''],
        ['Assent DKIM on / DKIM off', fixed(rate(assentOn) / rate(assentOff), 2), '-', ''],
      ],
    ),
  );
  if (rows.some((r) => r.stalled)) ctx.out('A stalled run\'s msg/s counts only up to its last progress (see the problems listed at the end).');
  ctx.summary.push(
    `campaign ${int(n)}: Assent ${int(rate(assentOff))} msg/s (DKIM ${int(rate(assentOn))}), smtp-source ${int(rate(source))}, ` +
      `nodemailer ${int(rate(nodemailerRow))}; ratios ${fixed(vsSource, 2)} (>= 0.5 ${judge(vsSource, 0.5, assentOff)}), ` +
      `${fixed(vsNodemailer, 2)} (>= 3 ${judge(vsNodemailer, 3, assentOff)}); 2 worker processes ${int(rate(assentTwo))} msg/s = ` +
      `${fixed(rate(assentTwo) / rate(source), 2)} x smtp-source`,
  );
  ctx.peakRss.push(
    { what: 'Assent worker, DKIM off', kb: assentOff.maxRssKb },
    { what: 'Assent, 2 worker processes', kb: assentTwo.maxRssKb },
    { what: 'Assent worker, DKIM RSA-2048', kb: assentOn.maxRssKb },
  );
}

async function smtpSource(sink: Sink, n: number, bytes: number): Promise<SenderRow> {
  const sink0 = sink.cpuUs();
  const args = ['-s', '20', '-m', String(n), '-l', String(bytes), '-d', `127.0.0.1:${sink.port}`];
  const finished = expectSuccess(await spawnTracked('smtp-source', SMTP_SOURCE, args, { gnuTime: true }).done);
  return {
    sender: `smtp-source -s 20 -l ${bytes} -d`,
    messages: n,
    ms: finished.wallMs,
    cpuUs: finished.cpuUs,
    maxRssKb: finished.maxRssKb,
    sinkCpuUs: sink.cpuUs() - sink0,
  };
}

/**
 * The same campaign with two worker processes sharing the SQLite file (the
 * scale-out a 2-core machine allows: `npm start` plus one `assent worker`).
 * One process starts the campaign, the other waits for it and only sends.
 * Time is the starter's (campaign start to status 'sent'); CPU is both.
 */
async function assentCampaignTwoWorkers(ctx: BenchContext, sink: Sink, instance: Instance, prepared: PreparedCampaign, label: string): Promise<SenderRow> {
  const base = { kind: 'campaign' as const, campaignId: prepared.campaignId, timeoutMs: 30 * 60_000, stallMs: ctx.quick ? 30_000 : 60_000 };
  const sink0 = sink.cpuUs();
  const spawnChild = (name: string, task: ChildTask) =>
    spawnNode(name, ['--import', 'tsx', 'bench/lib/child.ts'], { env: childEnv(instance, { BENCH_TASK: JSON.stringify(task) }) }).done;
  const [starter, helper] = await Promise.all([spawnChild(`${label} #1`, base), spawnChild(`${label} #2`, { ...base, start: false })]);
  const a = benchResult<CampaignChildResult>(expectSuccess(starter));
  const b = benchResult<CampaignChildResult>(expectSuccess(helper));
  const stalled = a.stalled || b.stalled;
  if (stalled) ctx.problems.push(`${label}: STALLED at ${int(a.sent)} sent`);
  else if (a.status !== 'sent') throw new Error(`${label}: campaign ended ${a.status} with ${a.sent} sent`);
  ctx.log(`   ${label}: ${int(a.sent)} sent in ${secs(a.elapsedMs)} s`);
  return {
    sender: label,
    messages: a.sent,
    ms: stalled ? a.lastProgressMs : a.elapsedMs,
    cpuUs: a.cpuUs + b.cpuUs,
    maxRssKb: Math.max(a.maxRssKb, b.maxRssKb, starter.maxRssKb, helper.maxRssKb),
    sinkCpuUs: sink.cpuUs() - sink0,
    ...(stalled ? { stalled: true, note: `(STALLED after ${int(a.sent)} sent)` } : {}),
  };
}

async function assentCampaign(
  ctx: BenchContext,
  sink: Sink,
  instance: Instance,
  prepared: PreparedCampaign,
  label: string,
): Promise<{ row: SenderRow; maxRssKb: number; settings: string }> {
  const task: ChildTask = { kind: 'campaign', campaignId: prepared.campaignId, timeoutMs: 30 * 60_000, stallMs: ctx.quick ? 30_000 : 60_000 };
  const sink0 = sink.cpuUs();
  const profileDir = ctx.profileDir ? join(ctx.profileDir, label.replace(/[^A-Za-z0-9]+/g, '-').toLowerCase()) : null;
  const finished = expectSuccess(
    await spawnNode(label, [...(profileDir ? profileFlags(profileDir) : []), '--import', 'tsx', 'bench/lib/child.ts'], {
      env: childEnv(instance, { BENCH_TASK: JSON.stringify(task) }),
    }).done,
  );
  if (profileDir) ctx.out(`\n${label}: ${summariseProfile(profileDir)}`);
  const r = benchResult<CampaignChildResult>(finished);
  if (r.stalled) {
    const t = r.transport ? `; transport: ${r.transport.open} sessions open, ${r.transport.inFlight} in flight, ${r.transport.queued} queued` : '';
    const diagnosis =
      `${label}: STALLED: no message sent for ${secs(task.stallMs)} s; deliveries sent ${int(r.sent)}, claimed ${int(r.claimed)}, ` +
      `queued ${int(r.queued)}${t}. The run was abandoned; its rate is up to the last progress.`;
    ctx.log(`   ${diagnosis}`);
    ctx.problems.push(diagnosis);
  } else if (r.status !== 'sent' || r.sent === 0) {
    throw new Error(`${label}: campaign ended ${r.status} with ${r.sent} sent`);
  } else {
    ctx.log(`   ${label}: ${int(r.sent)} sent in ${secs(r.elapsedMs)} s (materialise ${secs(r.materialiseMs)} s)`);
  }
  const notes = [r.failed || r.skipped ? `failed ${r.failed}, skipped ${r.skipped}` : '', r.stalled ? `STALLED after ${int(r.sent)} sent` : ''].filter(Boolean);
  const note = notes.length ? `(${notes.join('; ')})` : undefined;
  return {
    row: {
      sender: label,
      messages: r.sent,
      ms: r.stalled ? r.lastProgressMs : r.elapsedMs,
      cpuUs: r.cpuUs,
      maxRssKb: Math.max(r.maxRssKb, finished.maxRssKb),
      sinkCpuUs: sink.cpuUs() - sink0,
      ...(note ? { note } : {}),
      ...(r.stalled ? { stalled: true } : {}),
    },
    maxRssKb: Math.max(r.maxRssKb, finished.maxRssKb),
    settings:
      `${r.settings.connections} SMTP connections (ASSENT_SMTP_CONNECTIONS), batch ${r.settings.batch}, concurrency ${r.settings.concurrency}; ` +
      `time = campaign start (materialisation ${secs(r.materialiseMs)} s included) to status 'sent'; CPU = process.cpuUsage over that window`,
  };
}

async function nodemailerLoop(ctx: BenchContext, sink: Sink, prepared: PreparedCampaign, count: number, n: number): Promise<SenderRow> {
  const htmlFile = join(ctx.tmp, 'nodemailer.html');
  const textFile = join(ctx.tmp, 'nodemailer.txt');
  writeFileSync(htmlFile, prepared.html);
  writeFileSync(textFile, prepared.text);
  const task: ChildTask = {
    kind: 'nodemailer',
    host: '127.0.0.1',
    port: sink.port,
    count,
    maxConnections: 20,
    inFlight: 100,
    htmlFile,
    textFile,
    tokenLength: prepared.tokenLength,
    from: FROM,
    subject: SUBJECT,
  };
  const sink0 = sink.cpuUs();
  const finished = expectSuccess(await spawnNode('nodemailer loop', ['--import', 'tsx', 'bench/lib/child.ts'], { env: { BENCH_TASK: JSON.stringify(task) } }).done);
  const r = benchResult<NodemailerChildResult>(finished);
  if (r.failed > 0) throw new Error(`nodemailer loop: ${r.failed} failed (${r.firstError})`);
  return {
    sender: 'nodemailer pool, 20 connections',
    messages: r.sent,
    ms: r.elapsedMs,
    cpuUs: r.cpuUs,
    maxRssKb: Math.max(r.maxRssKb, finished.maxRssKb),
    sinkCpuUs: sink.cpuUs() - sink0,
    ...(count < n ? { note: `(subset of ${int(n)}; rate holds for all)` } : {}),
  };
}

// --- B. Large audience -------------------------------------------------------

interface ProcRow {
  database: string;
  process: string;
  work: string;
  ms: number;
  rate?: number;
  cpuUs: number;
  maxRssKb: number;
}

async function bigAudience(ctx: BenchContext, sink: Sink, sizes: { big: number; bigSends: number; capMs: number }): Promise<void> {
  const rows: ProcRow[] = [];
  rows.push(...(await bigRun(ctx, sink, { ...sizes, database: 'sqlite', workers: 1 })));
  if (ctx.postgresSkip) {
    ctx.log(`   PostgreSQL skipped: ${ctx.postgresSkip}`);
  } else {
    rows.push(...(await bigRun(ctx, sink, { ...sizes, database: 'postgres', workers: 2 })));
  }
  ctx.out(
    `\nLarge audience: ${int(sizes.big)} recipients, materialise, then send until ${int(sizes.bigSends)} are sent ` +
      `or ${secs(sizes.capMs)} s have passed (real CLI processes: \`assent campaign start\`, \`assent worker\`)`,
  );
  ctx.out(
    table(
      ['database', 'process', 'work', 'seconds', 'msg/s', 'CPU s', 'peak RSS'],
      rows.map((r) => [r.database, r.process, r.work, secs(r.ms), r.rate === undefined ? '-' : int(r.rate), fixed(r.cpuUs / 1e6, 1), mb(r.maxRssKb)]),
    ),
  );
  const worst = Math.max(...rows.map((r) => r.maxRssKb), ...ctx.peakRss.map((p) => p.kb));
  ctx.out(`Peak RSS of any Assent process in this suite: ${mb(worst)} (target < 300 MB whatever the audience size: ${verdict(worst, RSS_TARGET_KB, 'max')})`);
  ctx.summary.push(`large audience ${int(sizes.big)}: worst peak RSS ${mb(worst)} (< 300 MB ${verdict(worst, RSS_TARGET_KB, 'max')})`);
}

async function bigRun(
  ctx: BenchContext,
  sink: Sink,
  input: { big: number; bigSends: number; capMs: number; database: 'sqlite' | 'postgres'; workers: number },
): Promise<ProcRow[]> {
  const { big, bigSends, capMs, database, workers } = input;
  let url: string | undefined;
  let drop: (() => Promise<void>) | undefined;
  if (database === 'postgres') {
    const created = await createDatabase();
    url = created.url;
    drop = created.drop;
  }
  try {
    const instance = makeInstance({ dir: join(ctx.tmp, `big-${database}`), smtpPort: sink.port, ...(url ? { databaseUrl: url } : {}) });
    ctx.log(`B. ${database}: seeding ${int(big)} confirmed contacts`);
    let lastLog = 0;
    const prepared = await prepareCampaign(instance, {
      recipients: big,
      onProgress: (done) => {
        if (performance.now() - lastLog > 10_000 || done === big) {
          lastLog = performance.now();
          ctx.log(`   seeded ${int(done)} / ${int(big)}`);
        }
      },
    });
    ctx.log(`   seeded in ${secs(prepared.seedMs)} s (${int((big * 1000) / prepared.seedMs)} contacts/s, 2 ledger events each)`);

    const rows: ProcRow[] = [];
    ctx.log(`   assent campaign start (materialises ${int(big)} deliveries)`);
    const start = expectSuccess(
      await spawnNode(`${database}: campaign start`, ['bin/assent.mjs', 'campaign', 'start', prepared.campaignId], { env: childEnv(instance) }).done,
    );
    rows.push({ database, process: 'assent campaign start', work: `materialise ${int(big)}`, ms: start.wallMs, cpuUs: start.cpuUs, maxRssKb: start.maxRssKb });

    const counter = await sentCounter(instance, prepared.campaignId);
    try {
      ctx.log(`   ${workers} x assent worker until ${int(bigSends)} sent`);
      const procs: Tracked[] = [];
      for (let i = 1; i <= workers; i++) {
        procs.push(spawnNode(`${database}: worker ${i}`, ['bin/assent.mjs', 'worker'], { env: childEnv(instance) }));
      }
      const t0 = performance.now();
      let sent = 0;
      let lastProgress = t0;
      let lastSent = 0;
      let lastLogAt = t0;
      let capped = false;
      let stalled = false;
      while (sent < bigSends) {
        if (performance.now() - t0 > capMs) {
          capped = true;
          ctx.log(`   time cap reached at ${int(sent)} sent`);
          break;
        }
        await sleep(250);
        for (const p of procs) {
          if (p.child.exitCode !== null) throw new Error(`${p.label} exited early:\n${(await p.done).stderr.slice(-3000)}`);
        }
        sent = await counter.count();
        const now = performance.now();
        if (sent > lastSent) {
          lastSent = sent;
          lastProgress = now;
        } else if (now - lastProgress > 60_000) {
          stalled = true;
          const diagnosis = `${database}: STALLED: no message sent for 60 s at ${int(sent)} sent (${workers} worker(s)); run abandoned`;
          ctx.log(`   ${diagnosis}`);
          ctx.problems.push(diagnosis);
          break;
        }
        if (now - lastLogAt > 10_000) {
          lastLogAt = now;
          ctx.log(`   ${int(sent)} sent`);
        }
      }
      const reachedMs = stalled ? lastProgress - t0 : performance.now() - t0;
      // SIGTERM lets each worker finish its batch; a stuck one is killed after 30 s (usage then from /proc).
      for (const p of procs) p.sample();
      const finished: Finished[] = await Promise.all(procs.map((p) => p.stop(30_000)));
      const finalSent = await counter.count();
      ctx.log(`   ${int(sent)} sent after ${secs(reachedMs)} s; ${int(finalSent)} once the workers finished their batches`);
      // `assent worker` prints "worker stopped: sent N, …" when it stops cleanly; '?' if it had to be killed.
      const ownSent = (f: Finished) => {
        const n = /sent (\d+)/.exec(f.stdout)?.[1];
        return n === undefined ? '?' : int(Number(n));
      };
      if (workers === 1) {
        const f = finished[0]!;
        rows.push({
          database,
          process: 'assent worker',
          work: `first ${int(sent)} sent${capped ? ' (time cap)' : stalled ? ' (STALLED)' : ''}, ${ownSent(f)} when stopped`,
          ms: reachedMs,
          rate: (sent * 1000) / reachedMs,
          cpuUs: f.cpuUs,
          maxRssKb: f.maxRssKb,
        });
      } else {
        finished.forEach((f, i) => {
          rows.push({ database, process: `assent worker #${i + 1}`, work: `sent ${ownSent(f)} when stopped`, ms: f.wallMs, cpuUs: f.cpuUs, maxRssKb: f.maxRssKb });
        });
        rows.push({
          database,
          process: `${workers} workers together`,
          work: `first ${int(sent)} sent${capped ? ' (time cap)' : stalled ? ' (STALLED)' : ''}`,
          ms: reachedMs,
          rate: (sent * 1000) / reachedMs,
          cpuUs: finished.reduce((sum, f) => sum + f.cpuUs, 0),
          maxRssKb: Math.max(...finished.map((f) => f.maxRssKb)),
        });
      }
    } finally {
      await counter.close();
    }
    return rows;
  } finally {
    await drop?.();
  }
}

/** Counts a campaign's sent deliveries from outside the workers (a read-only connection). */
async function sentCounter(instance: Instance, campaignId: string): Promise<{ count(): Promise<number>; close(): Promise<void> }> {
  if (instance.databaseUrl.startsWith('postgres')) {
    const client = new pg.Client({ connectionString: instance.databaseUrl });
    await client.connect();
    return {
      count: async () =>
        Number((await client.query<{ n: string }>(`select count(*) as n from deliveries where campaign_id = $1 and status = 'sent'`, [campaignId])).rows[0]!.n),
      close: () => client.end(),
    };
  }
  const db = new Database(instance.databaseUrl, { readonly: true });
  db.pragma('busy_timeout = 10000');
  const stmt = db.prepare(`select count(*) as n from deliveries where campaign_id = ? and status = 'sent'`);
  return {
    count: async () => (stmt.get(campaignId) as { n: number }).n,
    close: async () => {
      db.close();
    },
  };
}
