// Worker-thread entry for seed-worker.ts: worker threads do not inherit the
// parent's `--import tsx`, so the TypeScript loader is registered here.
import { register } from 'tsx/esm/api';

register();
await import('./seed-worker.ts');
