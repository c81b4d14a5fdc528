/**
 * mid-large: heaplab's own workload of mid-size and large blocks (8..32 KiB), a working set
 * per thread whose blocks are replaced at random, as replacements per second
 * (docs/workloads/mid-large.md).
 */

import { throughputChart } from '../../report/throughput-chart.js';
import { formatBytes } from '../../report/format.js';
import { sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import { runNativeRateRow } from '../../run/native-rate-row.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { runThroughputRows, throughputSteps, type ThroughputRow } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { MID_LARGE_MAX_SIZE, MID_LARGE_MIN_SIZE, MID_LARGE_WORKING_SET, runMidLargeLoop, runSystemMidLargeLoop } from './loop.js';
import { MID_LARGE_PORT } from './native.js';

/**
 * The heap of its runs at least (a larger `--heap-mib` is kept). Four threads need at most
 * about 50 MiB of it (mimalloc: twelve 4 MiB segments); with twice the working set mimalloc
 * no longer fits in 64 MiB, so 128 MiB leaves room for longer runs and up to 8 threads
 * (docs/workloads/mid-large.md has the figures).
 */
export const MID_LARGE_HEAP_BYTES = 128 << 20;

/** One thread's loop; each thread draws from its own seed (its number + 1). */
export const midLargeLoop: ThreadLoop = {
  workload: 'mid-large',
  setsUp: true,
  sharedInput: () => null,
  run: (allocator, memory, _input, limits, thread) => runMidLargeLoop(allocator, memory, limits, thread),
  runSystem: (_input, limits, thread) => runSystemMidLargeLoop(limits, thread),
};

const SIZES = `${MID_LARGE_MIN_SIZE >> 10}..${MID_LARGE_MAX_SIZE >> 10} KiB`;

export const midLargeWorkload: Workload<ThroughputRow, 'midLarge'> = {
  name: 'mid-large',
  resultKey: 'midLarge',
  summary: `replacements per second of ${SIZES} blocks, ${MID_LARGE_WORKING_SET} live per thread (meant for --threads 1,4)`,
  // A working set that outlives bump's wrap.
  appliesTo: (contender) => contender.kind !== 'bump',
  stepsPerContender: throughputSteps,
  threadLoop: midLargeLoop,
  heapBytesFor: (settings) => Math.max(settings.heapBytes, MID_LARGE_HEAP_BYTES),

  run(contenders, settings, progress) {
    const heapBytes = Math.max(settings.heapBytes, MID_LARGE_HEAP_BYTES);
    return runThroughputRows(midLargeLoop, contenders, { ...settings, heapBytes }, progress, {
      native: (contender, threads, durationSeconds) => runNativeRateRow(MID_LARGE_PORT, contender, threads, durationSeconds, settings.fill),
    });
  },

  section(rows, run) {
    const heap = formatBytes(Math.max(run.meta.heapBytes, MID_LARGE_HEAP_BYTES));
    return {
      title: `mid-large (${MID_LARGE_WORKING_SET} blocks of ${SIZES} per thread, a ${heap} heap, ${run.meta.durationSeconds} s per run)`,
      table: throughputTable('replacements/s', rows, run.width),
      notes: sampledPeakNotes(rows),
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    return [
      throughputChart({
        id: 'mid-large',
        title: 'mid-large: replacements per second',
        caption: `A free and an allocation of ${SIZES} (its first and last bytes written) per replacement, ${MID_LARGE_WORKING_SET} live blocks per thread. Higher is better.`,
        rows,
        unit: 'replacements',
      }),
    ];
  },
};
