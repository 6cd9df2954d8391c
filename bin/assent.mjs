#!/usr/bin/env node
// The `assent` command: loads the TypeScript sources through tsx so that one
// tree serves `npm start`, the CLI and the tests without a build step.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv);
