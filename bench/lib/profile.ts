/**
 * `--profile`: Assent's measured children run with `node --cpu-prof`; this
 * reads the main thread's .cpuprofile and prints where the CPU went (self
 * time by function, and by source area), so a slow figure comes with its
 * first lead.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Node's flags for a profiled child writing into `dir`. */
export function profileFlags(dir: string): string[] {
  return ['--cpu-prof', '--cpu-prof-dir', dir];
}

function area(url: string): string {
  if (url === '') return '(native / VM)';
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  const src = /\/(src|bench)\/(.+?)\/?[^/]*$/.exec(url);
  if (src) return `${src[1]}/${src[2]}`;
  if (url.startsWith('node:')) return url;
  return url.split('/').slice(-2).join('/');
}

/** A text summary of the largest profile in `dir` (the main thread; tsx's loader thread writes a small one). */
export function summariseProfile(dir: string, top = 15): string {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f))
    .sort((a, b) => statSync(b).size - statSync(a).size);
  if (!files[0]) return '(no profile written)';
  const profile = JSON.parse(readFileSync(files[0], 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    const node = byId.get(id);
    if (!node) return;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') return;
    total += dt;
    const place = url ? `${url.replace(/^.*\/(node_modules|src|bench)\//, '$1/')}:${lineNumber + 1}` : '';
    const fn = `${functionName || '(anonymous)'} ${place}`.trim();
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + dt);
    const a = area(url);
    byArea.set(a, (byArea.get(a) ?? 0) + dt);
  });
  const fmt = (entries: Map<string, number>) =>
    [...entries]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, t]) => `  ${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}`)
      .join('\n');
  return `profile ${files[0]} (${(total / 1000).toFixed(0)} ms on CPU)\nself time by area:\n${fmt(byArea)}\nself time by function:\n${fmt(byFunction)}`;
}
