/**
 * rptest: rpmalloc's benchmark as mimalloc-bench runs it (`rptest THREADS 0 1 2 500 1000 100
 * 8 16000`), as rounds repeated until the run is over (docs/workloads/rptest.md). With more
 * than one thread, every other loop sends a batch of blocks to another thread, which frees
 * them. The rate is memory operations (mallocs and frees) per second.
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { rptestRunState, runRptestLoop } from './loop.js';
import { runNativeRptest } from './native.js';
import { buildRptestTables, MIMALLOC_BENCH_PARAMETERS, type RptestTables } from './tables.js';

/** mimalloc-bench's tables, built once per process on first use. */
let tables: RptestTables | null = null;
function mimallocBenchTables(): RptestTables {
  tables ??= buildRptestTables(MIMALLOC_BENCH_PARAMETERS);
  return tables;
}

/** One thread's rounds with mimalloc-bench's parameters; the run's shared buffer holds the inboxes. */
export const rptestLoop: ThreadLoop = {
  workload: 'rptest',
  sharedInput: () => null,
  runState: rptestRunState,
  run: (allocator, memory, _input, limits, thread) => runRptestLoop(allocator, memory, mimallocBenchTables(), MIMALLOC_BENCH_PARAMETERS, limits, thread),
};

const { crossRate, loops, allocCount, opCount, minSize, maxSize } = MIMALLOC_BENCH_PARAMETERS;

export const rptestWorkload: Workload<ThroughputRow, 'rptest'> = {
  name: 'rptest',
  resultKey: 'rptest',
  summary: `rpmalloc's benchmark (mimalloc-bench rptest): memory ops per second, ${minSize}..${maxSize} bytes, batches freed by other threads`,
  // Not `system`: threads free each other's blocks. Not `bump`: the 1000 live blocks per
  // thread (2.7 MB on average) are freed and refilled for the whole run.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing' || contender.kind === 'native',
  stepsPerContender: throughputSteps,
  threadLoop: rptestLoop,
  largestBlock: MIMALLOC_BENCH_PARAMETERS.maxSize,

  run(contenders, settings, progress) {
    return runThroughputRows(rptestLoop, contenders, settings, progress, {
      native: (contender, threads, durationSeconds) => runNativeRptest(contender, threads, durationSeconds, settings.fill),
    });
  },

  section(rows, run) {
    return {
      title:
        `rptest (rpmalloc's benchmark: ${allocCount} slots per thread, ${minSize}..${maxSize} bytes linear dropoff, ` +
        `${opCount} ops scale, a batch to another thread every ${crossRate} of ${loops} loops, ${run.meta.durationSeconds} s per run)`,
      table: throughputTable('ops/s', rows, run.width),
      notes: [
        ...sampledPeakNotes(rows),
        "note: rptest's ops/s sums the threads' rates; rpmalloc's own figure (memory ops per CPU second) is about it divided by the threads",
      ],
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'rptest',
        title: 'rptest: memory operations per second',
        caption: `rpmalloc's benchmark with mimalloc-bench's arguments: mallocs and frees of ${minSize}..${maxSize} bytes, some freed by another thread. Higher is better.`,
        rows,
        unit: 'memory ops',
      }),
    ];
  },
};
