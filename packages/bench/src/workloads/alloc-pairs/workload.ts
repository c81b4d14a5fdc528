/**
 * alloc-pairs: alloc+free pairs per second, on one thread and on N workers sharing the heap
 * (docs/workloads/alloc-pairs.md), for every backend (each basic strategy is a spec of its
 * own) and the baselines.
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { PAIRS_LIVE_BLOCKS, PAIRS_MAX_SIZE, PAIRS_MIN_SIZE, runPairsLoop, runSystemPairsLoop } from './loop.js';

/**
 * One thread's pairs. Each thread draws from its own seed (its index + 1), so every run of a
 * backend does the same work; the loop writes nothing into its blocks, so there is nothing
 * to verify.
 */
export const allocPairsLoop: ThreadLoop = {
  workload: 'alloc-pairs',
  sharedInput: () => null,
  run: (allocator, _memory, _input, limits, thread) => runPairsLoop(allocator, limits, thread.threadIndex + 1, thread.leaveLive),
  runSystem: (_input, limits, thread) => runSystemPairsLoop(limits, thread.threadIndex + 1),
};

export const allocPairsWorkload: Workload<ThroughputRow, 'allocPairs'> = {
  name: 'alloc-pairs',
  resultKey: 'allocPairs',
  summary: `alloc+free pairs per second, ${PAIRS_LIVE_BLOCKS} live blocks per thread`,
  // The C port runs bench-malloc-thread only.
  appliesTo: (contender) => contender.kind !== 'native',
  stepsPerContender: throughputSteps,
  threadLoop: allocPairsLoop,

  run(contenders, settings, progress) {
    return runThroughputRows(allocPairsLoop, contenders, { ...settings, verify: false }, progress);
  },

  section(rows, run) {
    return {
      title: `alloc-pairs (${PAIRS_LIVE_BLOCKS} live blocks per thread, ${PAIRS_MIN_SIZE}..${PAIRS_MAX_SIZE} bytes)`,
      table: throughputTable('pairs/s', rows, run.width),
      notes: sampledPeakNotes(rows),
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'alloc-pairs',
        title: 'alloc-pairs: pairs per second',
        caption: `A random free and an allocation of ${PAIRS_MIN_SIZE}..${PAIRS_MAX_SIZE} bytes per pair, ${PAIRS_LIVE_BLOCKS} live blocks per thread. Higher is better.`,
        rows,
        unit: 'pairs',
      }),
    ];
  },
};
