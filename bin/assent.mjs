#!/usr/bin/env node
// The `assent` command: loads the TypeScript sources through tsx so that one
// tree serves `npm start`, the CLI and the tests without a build step.
import { setFlagsFromString } from 'node:v8';
import { register } from 'tsx/esm/api';

// Peak memory stays bounded whatever the audience or file size (issue 3 and 5
// targets: under 300 MB). A worker or an import drops the messages, rows and
// events of each batch once it is done with them; V8 by default lets the old
// generation grow to several times what survived its last full collection
// before collecting again, so that garbage alone could reach 100 MB. Growth
// by half at most keeps the heap near what is actually live, at a small cost
// in collections. Set before anything is loaded, so it holds from the start.
setFlagsFromString('--heap-growing-percent=50');
register();
const { runCli } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv);
