/**
 * alloc-test: node-dot-cpp's allocator tester as mimalloc-bench runs it (alloc-test1 and
 * alloc-testN), as alloc/free operations per second (docs/workloads/alloc-test.md).
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import { runNativeRateRow } from '../../run/native-rate-row.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { ALLOC_TEST_MAX_SIZE_EXPONENT, ALLOC_TEST_TOTAL_SLOTS, runAllocTestLoop } from './loop.js';
import { ALLOC_TEST_PORT } from './native.js';

/** One thread's loop; every thread draws from the original's one seed. */
export const allocTestLoop: ThreadLoop = {
  workload: 'alloc-test',
  setsUp: true,
  sharedInput: () => null,
  run: (allocator, memory, _input, limits, thread) => runAllocTestLoop(allocator, memory, limits, thread),
};

const SIZES = `5..${1 << ALLOC_TEST_MAX_SIZE_EXPONENT} bytes`;

export const allocTestWorkload: Workload<ThroughputRow, 'allocTest'> = {
  name: 'alloc-test',
  resultKey: 'allocTest',
  summary: `alloc-test (mimalloc-bench): Pareto-chosen slots freed or filled, ${SIZES}, ${ALLOC_TEST_TOTAL_SLOTS} slots over all threads`,
  // Long-lived blocks (bump would hand their bytes out again) and no loop for V8's allocation.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing' || contender.kind === 'native',
  stepsPerContender: throughputSteps,
  threadLoop: allocTestLoop,

  run(contenders, settings, progress) {
    return runThroughputRows(allocTestLoop, contenders, settings, progress, {
      native: (contender, threads, durationSeconds) => runNativeRateRow(ALLOC_TEST_PORT, contender, threads, durationSeconds, settings.fill),
    });
  },

  section(rows, run) {
    return {
      title: `alloc-test (${ALLOC_TEST_TOTAL_SLOTS} slots shared out among the threads, ${SIZES}, ${run.meta.durationSeconds} s per run)`,
      table: throughputTable('ops/s', rows, run.width),
      notes: sampledPeakNotes(rows),
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'alloc-test',
        title: 'alloc-test: operations per second',
        caption: `An allocation (${SIZES}, filled) or a free (after reading the block) per operation, slots chosen by the Pareto 80/20 rule. Higher is better.`,
        rows,
        unit: 'operations',
      }),
    ];
  },
};
