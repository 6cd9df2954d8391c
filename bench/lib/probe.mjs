// Preloaded into every Node child the benchmark starts (`node --import
// ./bench/lib/probe.mjs …`): when the process exits, however it got there
// (normal end, process.exit, SIGTERM handled by the CLI), it writes its own
// peak RSS and CPU time to the file named by BENCH_PROBE_FILE. That is exact
// where polling /proc would miss a peak in the last moments before exit.
import { writeFileSync } from 'node:fs';

const file = process.env.BENCH_PROBE_FILE;
if (file) {
  const started = Date.now();
  process.on('exit', () => {
    const usage = process.resourceUsage();
    try {
      writeFileSync(
        file,
        JSON.stringify({
          pid: process.pid,
          maxRssKb: usage.maxRSS,
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
