/**
 * mstress: mimalloc's stress test as mimalloc-bench runs it (`mstress THREADS 50 25`), as
 * rounds repeated until the run is over (docs/workloads/mstress.md). Threads hand blocks to
 * each other through a shared transfer array, so every row but the one-thread ones frees
 * blocks across threads; every block is checked before it is freed.
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { MSTRESS_SCALE, mstressRunState, roundAllocations, runMstressLoop, TRANSFER_SLOT_COUNT } from './loop.js';
import { runNativeMstress } from './native.js';

/** One thread's rounds; the run's shared buffer holds the transfer array. */
export const mstressLoop: ThreadLoop = {
  workload: 'mstress',
  sharedInput: () => null,
  runState: mstressRunState,
  run: (allocator, memory, _input, limits, thread) => runMstressLoop(allocator, memory, limits, thread),
};

/**
 * Heap bytes per load unit (a thread of the lightest kind: thread t carries `t % 8 + 1`
 * units). A unit's round holds 2500 retained blocks of about 1.3 KB on average, so 3 to 6 MB
 * are live per unit at a round's end in most backends; the mimalloc backend's highest
 * address reached 20 MB per unit (61 MB with two threads), hence the margin.
 */
const HEAP_BYTES_PER_LOAD = 32 << 20;

/**
 * The heap of a run with `threads` threads: the bench's heap, or more when the threads' load
 * needs it (at scale 50: 64 MiB for one thread, 96 MiB for two, 320 MiB for four).
 */
export function mstressHeapBytes(threads: number, heapBytes: number): number {
  let loads = 0;
  for (let thread = 0; thread < threads; thread++) loads += roundAllocations(thread) / roundAllocations(0);
  return Math.max(heapBytes, loads * HEAP_BYTES_PER_LOAD);
}

export const mstressWorkload: Workload<ThroughputRow, 'mstress'> = {
  name: 'mstress',
  resultKey: 'mstress',
  summary: `mimalloc's stress test (mimalloc-bench mstress, scale ${MSTRESS_SCALE}): allocations per second, blocks handed between threads`,
  // Not `system`: threads free each other's blocks. Not `bump`: a round's retained blocks
  // (megabytes per thread) outlive a bump region's wrap.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing' || contender.kind === 'native',
  stepsPerContender: throughputSteps,
  threadLoop: mstressLoop,
  heapBytesFor: (settings, threads) => mstressHeapBytes(threads, settings.heapBytes),

  /** Row by row, so that each thread count gets a heap its load fits in (see `mstressHeapBytes`). */
  async run(contenders, settings, progress) {
    const rows: ThroughputRow[] = [];
    for (const contender of contenders) {
      for (const threads of settings.threads) {
        const rowSettings = { ...settings, threads: [threads], heapBytes: mstressHeapBytes(threads, settings.heapBytes) };
        rows.push(
          ...(await runThroughputRows(mstressLoop, [contender], rowSettings, progress, {
            native: (native, nativeThreads, durationSeconds) => runNativeMstress(native, nativeThreads, durationSeconds),
          })),
        );
      }
    }
    return rows;
  },

  section(rows, run) {
    return {
      title: `mstress (mimalloc's stress test, scale ${MSTRESS_SCALE}, ${TRANSFER_SLOT_COUNT} transfer slots, ${run.meta.durationSeconds} s per run)`,
      table: throughputTable('allocations/s', rows, run.width),
      notes: sampledPeakNotes(rows),
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'mstress',
        title: 'mstress: allocations per second',
        caption: `mimalloc's stress test at scale ${MSTRESS_SCALE}: each allocation may be followed by a free and a swap through the shared transfer array. Higher is better.`,
        rows,
        unit: 'allocations',
      }),
    ];
  },
};
