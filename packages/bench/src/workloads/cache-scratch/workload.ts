/**
 * cache-scratch: Hoard's passive false-sharing test as mimalloc-bench runs it
 * (docs/workloads/cache-scratch.md): thread 0 hands each thread a 1-byte object, each
 * thread frees it (remotely) and then runs rounds of malloc, many writes, free.
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { runScratchLoop, SCRATCH_OBJECT_SIZE, SCRATCH_REPETITIONS, scratchRunState } from './loop.js';
import { runNativeCacheScratch } from './native.js';

/** One thread's hand-over and rounds; the run state carries the handed objects. */
export const cacheScratchLoop: ThreadLoop = {
  workload: 'cache-scratch',
  sharedInput: () => null,
  runState: scratchRunState,
  run: (allocator, memory, _input, limits, thread) => runScratchLoop(allocator, memory.u8, limits, thread),
};

export const cacheScratchWorkload: Workload<ThroughputRow, 'cacheScratch'> = {
  name: 'cache-scratch',
  resultKey: 'cacheScratch',
  summary: `Hoard cache-scratch (passive false sharing): a handed-over object freed remotely, then rounds/s of malloc(${SCRATCH_OBJECT_SIZE}), ${SCRATCH_REPETITIONS} writes, free`,
  // Not `system` (threads free each other's blocks), not `bump` (it never reuses a freed
  // block, which is what the test is about).
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing' || contender.kind === 'native',
  stepsPerContender: throughputSteps,
  threadLoop: cacheScratchLoop,

  run(contenders, settings, progress) {
    return runThroughputRows(cacheScratchLoop, contenders, settings, progress, {
      native: (contender, threads, durationSeconds) => runNativeCacheScratch(contender, threads, durationSeconds, settings.fill),
    });
  },

  section(rows, run) {
    return {
      title: `cache-scratch (Hoard: each thread frees a ${SCRATCH_OBJECT_SIZE}-byte object thread 0 allocated, then mallocs one, writes it ${SCRATCH_REPETITIONS} times, frees it)`,
      table: throughputTable('rounds/s', rows, run.width),
      notes: sampledPeakNotes(rows),
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'cache-scratch',
        title: 'cache-scratch: rounds per second',
        caption: `After freeing an object another thread allocated, each round allocates ${SCRATCH_OBJECT_SIZE} byte, writes it ${SCRATCH_REPETITIONS} times and frees it. Ideal: N threads make N times the one-thread rate. Higher is better.`,
        rows,
        unit: 'rounds',
      }),
    ];
  },
};
