/**
 * cache-thrash: Hoard's active false-sharing test as mimalloc-bench runs it
 * (docs/workloads/cache-thrash.md): rounds per second of allocate a 1-byte object, write it
 * many times, free it, on each thread.
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { runThrashLoop, THRASH_OBJECT_SIZE, THRASH_REPETITIONS } from './loop.js';
import { runNativeCacheThrash } from './native.js';

/** One thread's rounds; the threads share nothing but the heap. */
export const cacheThrashLoop: ThreadLoop = {
  workload: 'cache-thrash',
  sharedInput: () => null,
  run: (allocator, memory, _input, limits, thread) => runThrashLoop(allocator, memory.u8, limits, thread),
};

export const cacheThrashWorkload: Workload<ThroughputRow, 'cacheThrash'> = {
  name: 'cache-thrash',
  resultKey: 'cacheThrash',
  summary: `Hoard cache-thrash (active false sharing): rounds/s of malloc(${THRASH_OBJECT_SIZE}), ${THRASH_REPETITIONS} writes, free per thread`,
  // No `system` (V8 has no addresses to share a line), no `bump` (the task is where a
  // freeing allocator puts the next object; bump's answer is only "further on").
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing' || contender.kind === 'native',
  stepsPerContender: throughputSteps,
  threadLoop: cacheThrashLoop,

  run(contenders, settings, progress) {
    return runThroughputRows(cacheThrashLoop, contenders, settings, progress, {
      native: (contender, threads, durationSeconds) => runNativeCacheThrash(contender, threads, durationSeconds, settings.fill),
    });
  },

  section(rows, run) {
    return {
      title: `cache-thrash (Hoard: each thread mallocs a ${THRASH_OBJECT_SIZE}-byte object, writes it ${THRASH_REPETITIONS} times, frees it)`,
      table: throughputTable('rounds/s', rows, run.width),
      notes: sampledPeakNotes(rows),
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'cache-thrash',
        title: 'cache-thrash: rounds per second',
        caption: `Each round allocates ${THRASH_OBJECT_SIZE} byte, writes it ${THRASH_REPETITIONS} times and frees it. Ideal: N threads make N times the one-thread rate. Higher is better.`,
        rows,
        unit: 'rounds',
      }),
    ];
  },
};
