import type { BenchMeta } from '../src/run/workload.js';

/** The meta of a made-up one-second glibc-thread run on `host`, for report and merge tests. */
export function benchMetaOn(host: string): BenchMeta {
  return {
    version: '0.1.0',
    command: 'heaplab bench glibc-thread',
    host,
    date: '2026-01-01T00:00:00Z',
    node: 'v20',
    cpus: 2,
    cpuModel: 'cpu',
    durationSeconds: 1,
    repeat: 1,
    warmup: false,
    threads: [1],
    heapBytes: 64 << 20,
    verify: false,
    isolate: false,
  };
}
