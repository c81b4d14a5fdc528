/**
 * sh6bench: MicroQuill's SmartHeap benchmark as mimalloc-bench runs it (sh6benchN, on twice
 * the thread count), as allocations per second (docs/workloads/sh6bench.md).
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import { runNativeRateRow } from '../../run/native-rate-row.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { runSh6Loop, SH6_MAX_SIZE, SH6_MIN_SIZE, SH6_TOTAL_SLOTS } from './loop.js';
import { SH6_PORT } from './native.js';

/** mimalloc-bench runs sh6bench on twice its thread count: each `--threads` count is run doubled. */
export const SH6_THREADS_FACTOR = 2;

/** One thread's loop; the threads do the same work, each on its own slots. */
export const sh6Loop: ThreadLoop = {
  workload: 'sh6bench',
  setsUp: true,
  sharedInput: () => null,
  run: (allocator, memory, _input, limits, thread) => runSh6Loop(allocator, memory, limits, thread),
};

const SIZES = `${SH6_MIN_SIZE}..${SH6_MAX_SIZE - 1} bytes`;

export const sh6Workload: Workload<ThroughputRow, 'sh6bench'> = {
  name: 'sh6bench',
  resultKey: 'sh6bench',
  summary: `sh6bench (mimalloc-bench sh6benchN): batches of ${SIZES}, a fifth kept per cycle; runs ${SH6_THREADS_FACTOR} x each --threads count`,
  // A fifth of each thread's blocks outlives a cycle (bump would hand their bytes out again); no loop for V8's allocation.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing' || contender.kind === 'native',
  stepsPerContender: throughputSteps,
  threadLoop: sh6Loop,

  run(contenders, settings, progress) {
    const threads = settings.threads.map((count) => count * SH6_THREADS_FACTOR);
    return runThroughputRows(sh6Loop, contenders, { ...settings, threads }, progress, {
      native: (contender, count, durationSeconds) => runNativeRateRow(SH6_PORT, contender, count, durationSeconds, settings.fill),
    });
  },

  section(rows, run) {
    return {
      title: `sh6bench (${SH6_TOTAL_SLOTS} slots shared out among ${SH6_THREADS_FACTOR} x --threads threads, ${SIZES}, ${run.meta.durationSeconds} s per run)`,
      table: throughputTable('allocs/s', rows, run.width),
      notes: sampledPeakNotes(rows),
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'sh6bench',
        title: 'sh6bench: allocations per second',
        caption: `Blocks of ${SIZES} allocated in runs of one size, freed in batches (four fifths of each thread's ring at a time). Higher is better.`,
        rows,
        unit: 'allocations',
      }),
    ];
  },
};
