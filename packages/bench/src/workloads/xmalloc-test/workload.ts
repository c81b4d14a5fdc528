/**
 * xmalloc-test: Lever and Boreham's producer/consumer test as mimalloc-bench runs it
 * (docs/workloads/xmalloc-test.md): producers allocate batches of 64-byte objects, consumers
 * free them, so every free is of another thread's block. Frees per second, over heaplab
 * backends, @thi.ng/malloc and the C port.
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { farPlacementNotes, sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { runXmallocLoop, XMALLOC_PARAMETERS, xmallocRunState } from './loop.js';
import { runNativeXmalloc } from './native.js';

/** One thread's share; the stack, its lock and the parameters are in the run state. */
export const xmallocLoop: ThreadLoop = {
  workload: 'xmalloc-test',
  sharedInput: () => null,
  runState: (threads) => xmallocRunState(threads),
  run: (allocator, memory, _input, limits, thread) => runXmallocLoop(allocator, memory, limits, thread),
};

const { objectSize, batchObjects, stackLimit } = XMALLOC_PARAMETERS;
const DESCRIPTION = `${objectSize}-byte objects in batches of ${batchObjects}, at most ${stackLimit} batches waiting`;

export const xmallocWorkload: Workload<ThroughputRow, 'xmallocTest'> = {
  name: 'xmalloc-test',
  resultKey: 'xmallocTest',
  summary: 'Lever & Boreham producer/consumer test (mimalloc-bench xmalloc-test): frees per second, every free remote',
  // Threads free each other's blocks, so no `system` copy; the bump allocator would wrap
  // under batches that live until a consumer takes them.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing' || contender.kind === 'native',
  stepsPerContender: throughputSteps,
  threadLoop: xmallocLoop,

  run(contenders, settings, progress) {
    return runThroughputRows(xmallocLoop, contenders, settings, progress, {
      native: (contender, threads, durationSeconds) => runNativeXmalloc(contender, threads, durationSeconds),
      // Every free moves a block's line from the producer's core to the consumer's, so a
      // row's rate follows how far apart the host placed the two CPUs (docs/speed.md).
      lineRoundTrip: true,
    });
  },

  section(rows, run) {
    return {
      title: `xmalloc-test (${DESCRIPTION}; 1 thread alternates, N threads: even producers, odd consumers)`,
      table: throughputTable('frees/s', rows, run.width),
      notes: [
        ...sampledPeakNotes(rows),
        ...farPlacementNotes(rows),
        // The duration counts from before the workers start, and the clocks from the start line.
        ...rows
          .filter((row) => row.kind !== 'native' && row.iterations === 0)
          .map(
            (row) =>
              `note: xmalloc-test: ${row.label} with ${row.threads} thread${row.threads === 1 ? '' : 's'} freed nothing: ` +
              'the run ended before every thread had started',
          ),
      ],
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'xmalloc-test',
        title: 'xmalloc-test: frees per second',
        caption: `Producers allocate, consumers free: ${DESCRIPTION}. Higher is better.`,
        rows,
        unit: 'frees',
      }),
    ];
  },
};
