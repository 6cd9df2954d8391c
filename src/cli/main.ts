/**
 * The `assent` command table. Each command parses its arguments, calls a
 * service through the runtime, prints, and returns an exit code:
 * 0 done, 1 the check failed (a broken ledger, a bad receipt), 2 bad input
 * or configuration.
 */
import { Command, CommanderError } from 'commander';
import { isAppError } from '../shared/errors.js';
import { readConfig, serve } from '../main.js';
import { registerCatalogCommands } from './catalog.commands.js';
import { registerTemplateCommands } from './template.commands.js';
import { registerProofCommands } from './proof.commands.js';
import { registerCampaignCommands } from './campaign.commands.js';
import { registerRepermissionCommands } from './repermission.commands.js';
import { registerDedupeCommands } from './dedupe.commands.js';
import { registerImportCommands } from './import.commands.js';
import { withRuntime, type Io } from './runtime.js';
import { migrateToLatest } from '../storage/index.js';
import { startWorker } from '../worker-root.js';

export async function runCli(argv: string[], io: Io = defaultIo()): Promise<number> {
  const program = new Command('assent')
    .description('Self-hosted email campaigns with provable consent')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) });
  let code = 0;
  const setCode = (c: number) => {
    code = c;
  };

  program
    .command('serve')
    .alias('start')
    .description('run the HTTP server (migrates first; creates the default form on an empty database)')
    .action(async () => {
      const server = await serve(readConfig(io.env), io.out);
      await new Promise<void>((resolve) => {
        const onSignal = () => {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
          server.stop().then(resolve, resolve);
        };
        process.on('SIGINT', onSignal);
        process.on('SIGTERM', onSignal);
      });
    });

  program
    .command('worker')
    .description('run a sending worker without the HTTP server; any number can share one PostgreSQL database')
    .action(async () => {
      await withRuntime(io, {}, async (rt) => {
        const worker = startWorker(rt);
        io.out(`worker ${worker.id} running on ${rt.storage.describe}`);
        await new Promise<void>((resolve) => {
          const onSignal = () => {
            process.off('SIGINT', onSignal);
            process.off('SIGTERM', onSignal);
            resolve();
          };
          process.on('SIGINT', onSignal);
          process.on('SIGTERM', onSignal);
        });
        const report = await worker.stop();
        io.out(`worker stopped: sent ${report.sent}, retried ${report.retried}, failed ${report.failed}`);
      });
    });

  program
    .command('migrate')
    .description('apply pending database migrations')
    .action(async () => {
      await withRuntime(io, { migrate: false }, async (rt) => {
        const report = await migrateToLatest(rt.storage.db);
        io.out(report.applied.length ? `applied: ${report.applied.join(', ')}` : 'database is up to date');
      });
    });

  registerCatalogCommands(program, io);
  registerTemplateCommands(program, io);
  registerProofCommands(program, io, setCode);
  registerCampaignCommands(program, io);
  registerRepermissionCommands(program, io);
  registerDedupeCommands(program, io);
  registerImportCommands(program, io);

  try {
    await program.parseAsync(argv);
    return code;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (isAppError(error)) {
      io.err(`error: ${error.message}`);
      return 2;
    }
    io.err(`error: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

function defaultIo(): Io {
  return {
    out: (line) => process.stdout.write(line + '\n'),
    err: (line) => process.stderr.write(line + '\n'),
    env: process.env,
    cwd: process.cwd(),
  };
}
