// Preloaded into every Node child the benchmark starts (`node --import
// ./bench/lib/probe.mjs …`): when the process exits, however it got there
// (normal end, process.exit, SIGTERM handled by the CLI), it writes its own
// peak RSS and CPU time to the file named by BENCH_PROBE_FILE. That is exact
// where polling /proc would miss a peak in the last moments before exit.
//
// Peak RSS is VmHWM from /proc/self/status, NOT process.resourceUsage().maxRSS:
// on Linux ru_maxrss survives fork+exec, so a child's maxRSS starts at its
// parent's RSS at spawn time (the benchmark's own process, which has just
// seeded a million contacts). VmHWM belongs to the process's own memory map.
import { readFileSync, writeFileSync } from 'node:fs';

const file = process.env.BENCH_PROBE_FILE;

/** Peak RSS of this process in KiB (VmHWM), or null where /proc is missing. */
export function peakRssKb() {
  try {
    const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

if (file) {
  const started = Date.now();
  process.on('exit', () => {
    const usage = process.resourceUsage();
    try {
      writeFileSync(
        file,
        JSON.stringify({
          pid: process.pid,
          maxRssKb: peakRssKb() ?? usage.maxRSS,
          userUs: usage.userCPUTime,
          systemUs: usage.systemCPUTime,
          wallMs: Date.now() - started,
        }),
      );
    } catch {
      // The benchmark falls back to what it polled from /proc.
    }
  });
}
