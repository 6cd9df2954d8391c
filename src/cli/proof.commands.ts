import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import type { JWK } from 'jose';
import { AppError } from '../shared/errors.js';
import { loadConfig } from '../config/config.js';
import { loadSecrets } from '../config/secrets.js';
import { extractReceiptJws, publicKeySet, verifyLedger, verifyReceipt } from '../consent/index.js';
import { withRuntime, type Io } from './runtime.js';

/** `assent ledger verify` and `assent receipt verify`: the proofs, checked. */
export function registerProofCommands(program: Command, io: Io, setCode: (code: number) => void): void {
  const ledger = program.command('ledger').description('the consent ledger');
  ledger
    .command('verify')
    .description('check the hash chain; exits 1 naming the first bad event')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      await withRuntime(io, {}, async (rt) => {
        const report = await verifyLedger(rt.storage.db);
        if (opts.json) io.out(JSON.stringify(report));
        else if (report.ok) io.out(`ledger intact: ${report.events} events, head ${report.head.seq} ${report.head.hash}`);
        else io.err(`ledger broken at event ${report.fault!.seq}: ${report.fault!.detail} (${report.events} events verified before it)`);
        setCode(report.ok ? 0 : 1);
      });
    });

  const receipt = program.command('receipt').description('signed consent receipts');
  receipt
    .command('verify <file>')
    .description('check a receipt (.jws, or the .eml it came in) offline; exits 1 on any change')
    .option('--key <file>', 'JWK set file (from /.well-known/assent-receipt-key.json); default: this data directory\'s keys')
    .action(async (file: string, opts: { key?: string }) => {
      const text = readInput(io, file);
      const jws = extractReceiptJws(text);
      const keys = opts.key ? readKeySet(io, opts.key) : await localKeys(io);
      const result = jws ? await verifyReceipt(jws, keys) : { ok: false as const, reason: 'no consent receipt found in the file' };
      if (result.ok) {
        const c = result.claims;
        io.out(`receipt valid: ${c.consentReceiptID} signed by key ${result.kid}`);
        io.out(`  topic ${c.assent.topic}, consent text v${c.assent.consentTextVersion} sha256:${c.assent.consentTextSha256}`);
        io.out(`  confirmed ${new Date(c.assent.confirmedAt * 1000).toISOString()}, ledger event ${c.assent.ledgerEventSeq} ${c.assent.ledgerEventHash}`);
      } else {
        io.err(`receipt NOT valid: ${result.reason}`);
      }
      setCode(result.ok ? 0 : 1);
    });
}

function readInput(io: Io, file: string): string {
  try {
    return readFileSync(resolve(io.cwd, file), 'utf8');
  } catch {
    throw new AppError('validation_failed', `cannot read ${file}`);
  }
}

function readKeySet(io: Io, file: string): JWK[] {
  try {
    const parsed = JSON.parse(readInput(io, file)) as { keys?: JWK[] } | JWK;
    return 'keys' in parsed && Array.isArray(parsed.keys) ? parsed.keys : [parsed as JWK];
  } catch (error) {
    if (error instanceof AppError) throw error;
    throw new AppError('validation_failed', `${file} is not a JWK set`);
  }
}

async function localKeys(io: Io): Promise<JWK[]> {
  const config = loadConfig(io.env, { cwd: io.cwd });
  return publicKeySet((await loadSecrets(config)).receiptKeys).keys;
}
