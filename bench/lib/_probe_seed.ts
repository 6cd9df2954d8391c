import { mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { makeInstance, prepareCampaign } from './setup.js';
const dir = mkdtempSync(join(tmpdir(), 'seedprobe-'));
const inst = makeInstance({ dir, ...(process.argv[2] ? { databaseUrl: process.argv[2] } : {}) });
const t = performance.now();
const p = await prepareCampaign(inst, { recipients: 100_000, onProgress: (d) => console.log(d, ((performance.now() - t) / 1000).toFixed(1)) });
console.log('seedMs', p.seedMs, 'cpu', process.cpuUsage());
