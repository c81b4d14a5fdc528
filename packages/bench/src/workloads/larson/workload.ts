/**
 * larson: Larson and Krishnan's server-like benchmark as mimalloc-bench runs it
 * (docs/workloads/larson.md): each thread churns an array of chunks, then hands the array
 * on, so later threads free blocks earlier threads allocated. Free+malloc operations per
 * second, over heaplab backends, @thi.ng/malloc and the C port.
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { LARSON_PARAMETERS, larsonRunState, runLarsonLoop } from './loop.js';
import { runNativeLarson } from './native.js';

/** One thread's share; the arrays, their generators and the parameters are in the run state. */
export const larsonLoop: ThreadLoop = {
  workload: 'larson',
  setsUp: true,
  sharedInput: () => null,
  runState: (threads) => larsonRunState(threads),
  run: (allocator, memory, _input, limits, thread) => runLarsonLoop(allocator, memory, limits, thread),
};

const { minSize, maxSize, chunksPerThread, rounds } = LARSON_PARAMETERS;
const DESCRIPTION = `${chunksPerThread} chunks per thread, ${minSize}..${maxSize - 1} bytes, arrays change threads every ${rounds} x ${chunksPerThread} operations`;

/**
 * A note for each row that timed nothing: the duration counts from before the threads
 * start, and a slow allocator's warm-up (5000 blocks and 20,000 operations per thread,
 * behind one lock for @thi.ng/malloc) can outlast a short run.
 */
function idleRowNotes(rows: readonly ThroughputRow[]): string[] {
  return rows
    .filter((row) => row.kind !== 'native' && row.iterations === 0)
    .map(
      (row) =>
        `note: larson: ${row.label} with ${row.threads} thread${row.threads === 1 ? '' : 's'} timed no operation: ` +
        'it was stopped before its threads were past their warm-up (a thread failed?)',
    );
}

export const larsonWorkload: Workload<ThroughputRow, 'larson'> = {
  name: 'larson',
  resultKey: 'larson',
  summary: 'Larson & Krishnan server benchmark (mimalloc-bench larson): free+malloc per second, blocks freed by later threads',
  // Threads free each other's blocks, so no `system` copy; the bump allocator never frees a
  // working set that lives for the whole run.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing' || contender.kind === 'native',
  stepsPerContender: throughputSteps,
  threadLoop: larsonLoop,
  largestBlock: maxSize - 1,

  run(contenders, settings, progress) {
    return runThroughputRows(larsonLoop, contenders, settings, progress, {
      native: (contender, threads, durationSeconds) => runNativeLarson(contender, threads, durationSeconds),
    });
  },

  section(rows, run) {
    return {
      title: `larson (${DESCRIPTION})`,
      table: throughputTable('ops/s', rows, run.width),
      notes: [...sampledPeakNotes(rows), 'note: larson ops/s: one op is a free of a random chunk and a malloc in its place', ...idleRowNotes(rows)],
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'larson',
        title: 'larson: operations per second',
        caption: `Free one random chunk, allocate ${minSize}..${maxSize - 1} bytes in its place; ${DESCRIPTION}. Higher is better.`,
        rows,
        unit: 'operations',
      }),
    ];
  },
};
