/**
 * The alloc-pairs workload over every contender: alloc+free pairs per second, on one thread
 * and on N workers sharing the heap (see alloc-pairs-loop.ts). It generalises core's
 * `tools/alloc-pairs` from the basic strategies to every backend and the baselines.
 */

import type { Contender } from './contenders.js';
import { failedRow, noteFor, type ThroughputSettings } from './glibc-thread.js';
import type { Progress } from './progress.js';
import type { ThroughputRow } from './results.js';
import { sharedTables } from './tables.js';
import { runThreaded } from './threaded-run.js';

/** Runs alloc-pairs for each contender (native excluded: the C port runs glibc-thread only). */
export async function runAllocPairsBench(
  contenders: readonly Contender[],
  settings: ThroughputSettings,
  progress: Progress,
): Promise<ThroughputRow[]> {
  // The pairs loop reads no tables, but a task carries the buffer either way.
  const { buffer: tablesBuffer } = sharedTables();
  const rows: ThroughputRow[] = [];
  for (const contender of contenders) {
    if (contender.kind === 'native') continue;
    for (const threads of settings.threads) {
      progress.step(`alloc-pairs  ${contender.label}  ${threads} thread${threads === 1 ? '' : 's'}`, settings.durationSeconds);
      try {
        const run = await runThreaded({
          contender,
          workload: 'alloc-pairs',
          threads,
          durationSeconds: settings.durationSeconds,
          maxIterations: settings.maxIterations ?? Infinity,
          verify: false,
          heapBytes: settings.heapBytes,
          tablesBuffer,
        });
        rows.push({
          label: contender.label,
          kind: contender.kind,
          threads,
          iterations: run.iterations,
          wallSeconds: run.wallSeconds,
          perSecond: run.perSecond,
          peakUsedBytes: run.peakUsedBytes,
          peakFootprintBytes: null,
          ...noteFor(contender, threads),
        });
      } catch (error) {
        rows.push(failedRow(contender, threads, error));
      }
    }
  }
  return rows;
}
