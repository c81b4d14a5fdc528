/**
 * glibc-thread: glibc's bench-malloc-thread as mimalloc-bench runs it, over every contender
 * and thread count (docs/workloads/glibc-thread.md). One row per run, with the mimalloc-bench
 * line and glibc's upstream JSON.
 */

import { memoryChart, TOUCHED_MEANING, throughputChart } from '../../report/throughput-chart.js';
import { formatBytes, formatThreadCpuShares } from '../../report/format.js';
import { farPlacementNotes, sampledPeakNotes, throughputTable } from '../../report/throughput-columns.js';
import type { ThreadLoop } from '../../run/thread-loop.js';
import { heapEfficiencyWorkload } from '../heap-efficiency/workload.js';
import { runThroughputRows, throughputSteps } from '../../run/throughput-rows.js';
import type { Workload } from '../../run/workload.js';
import { runGlibcThreadLoop } from './loop.js';
import { runNativeGlibcThread } from './native.js';
import type { GlibcThreadRow, GlibcUpstreamJson } from './row.js';
import { DECLARED_RANDOM_SEED, MAX_ALLOCATION_SIZE, MIN_ALLOCATION_SIZE, requestTablesOver, sharedRequestTables } from './request-tables.js';
import { runSystemGlibcThreadLoop } from './system-loop.js';

/** The tables of a run, which every thread reads. */
function tablesIn(input: SharedArrayBuffer | null): ReturnType<typeof requestTablesOver> {
  if (input === null) throw new Error('the glibc-thread loop needs its request tables');
  return requestTablesOver(input);
}

/** One thread's loop: the tables are built once per process and shared with the workers. */
export const glibcThreadLoop: ThreadLoop = {
  workload: 'glibc-thread',
  sharedInput: sharedRequestTables,
  run: (allocator, memory, input, limits, thread) => runGlibcThreadLoop(allocator, memory, tablesIn(input), limits, thread.verify),
  runSystem: (input, limits, thread) => runSystemGlibcThreadLoop(tablesIn(input), limits, thread.verify),
};

/**
 * glibc's JSON for one run; `durationNs` is the sum of the threads' elapsed times, `maxRssKiB`
 * the peak resident size of the process that ran it (this one's by default).
 */
export function upstreamJson(
  durationNs: number,
  iterations: number,
  threads: number,
  timingType: string,
  maxRssKiB: number = process.resourceUsage().maxRSS,
): GlibcUpstreamJson {
  return {
    timing_type: timingType,
    functions: {
      malloc: {
        '': {
          duration: durationNs,
          iterations,
          time_per_iteration: iterations === 0 ? 0 : durationNs / iterations,
          max_rss: maxRssKiB,
          threads,
          min_size: MIN_ALLOCATION_SIZE,
          max_size: MAX_ALLOCATION_SIZE,
          random_seed: DECLARED_RANDOM_SEED,
        },
      },
    },
  };
}

export const glibcThreadWorkload: Workload<GlibcThreadRow, 'glibcThread'> = {
  name: 'glibc-thread',
  resultKey: 'glibcThread',
  summary: 'glibc bench-malloc-thread (mimalloc-bench glibc-thread), 1 thread in this thread, N in workers',
  // The native row is the C port of this very benchmark.
  appliesTo: () => true,
  stepsPerContender: throughputSteps,
  threadLoop: glibcThreadLoop,
  largestBlock: MAX_ALLOCATION_SIZE,

  run(contenders, settings, progress) {
    return runThroughputRows<GlibcThreadRow>(glibcThreadLoop, contenders, settings, progress, {
      native: (contender, threads, durationSeconds) => runNativeGlibcThread(contender, threads, durationSeconds, settings.fill),
      // Whether a multi-thread row ran with its cores near or far apart (docs/speed.md).
      lineRoundTrip: true,
      extraFields: (run, threads) => {
        const durationNs = run.threadSeconds.reduce((sum, seconds) => sum + seconds, 0) * 1e9;
        return {
          mimallocBenchLine: `${run.iterations} iterations`,
          upstream: upstreamJson(durationNs, run.iterations, threads, 'performance.now', run.maxRssKiB),
        };
      },
    });
  },

  /** The table a user compares backends with; heap efficiency joins it when it ran too. */
  section(rows, run) {
    const efficiencyRows = run.rowsOf(heapEfficiencyWorkload);
    const efficiencyOf = new Map(efficiencyRows.map((row) => [row.label, row.efficiencyPercent]));
    // Memory touched (pages written), not the highest address reached: buddy places its
    // first block high in its arena, which made that figure tens of MiB for a few KiB live.
    // CPU time per iteration beside the rate: the process's CPU time (every thread) over all
    // threads' iterations, so a row whose threads took turns shows it as well as cpu/wall.
    // 'thread cpu': each thread's own CPU time over its loop time, which tells a run whose
    // threads each had a core from one where they shared one with each other or other work.
    const table = throughputTable('iterations/s', rows, run.width, {
      cost: {
        headers: ['cpu ns/it', 'thread cpu'],
        cells: (row) => [
          row.cpuSeconds === undefined || row.iterations === 0 ? '-' : ((row.cpuSeconds * 1e9) / row.iterations).toFixed(1),
          formatThreadCpuShares(row.threadCpuSeconds, row.threadSeconds),
        ],
      },
      memory: {
        headers: ['touched', 'heap efficiency'],
        cells: (row) => {
          const efficiency = efficiencyOf.get(row.label);
          return [formatBytes(row.touchedBytes ?? null), efficiency !== undefined ? `${efficiency.toFixed(1)} %` : '-'];
        },
      },
    });
    return {
      title: `glibc-thread (bench-malloc-thread, ${run.meta.durationSeconds} s per run)`,
      table,
      notes: [...sampledPeakNotes(rows), ...farPlacementNotes(rows)],
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    const charts = [
      throughputChart({
        id: 'throughput',
        title: 'glibc-thread: iterations per second',
        caption: 'bench-malloc-thread: each iteration frees a random block and allocates one of 16..32768 bytes. Higher is better.',
        rows,
        unit: 'iterations',
      }),
    ];
    const withHeap = rows.filter((row) => row.peakUsedBytes !== null || (row.touchedBytes ?? null) !== null);
    if (withHeap.length > 0) {
      charts.push(
        memoryChart({
          id: 'memory',
          title: 'glibc-thread: peak used and memory touched',
          caption: `${TOUCHED_MEANING} Lower is better; the axis is logarithmic.`,
          rows: withHeap,
        }),
      );
    }
    return charts;
  },

  rawFormats: {
    mimalloc: 'glibc-thread: N iterations, as mimalloc-bench reads it (a line per row, after a # line naming the row)',
    glibc: "glibc-thread: glibc's upstream JSON (an object per line and row, after a # line naming the row)",
  },

  rawOutput(rows, format) {
    return rows.flatMap((row) => [
      `# ${row.label}, ${row.threads} thread${row.threads === 1 ? '' : 's'}`,
      format === 'mimalloc' ? (row.mimallocBenchLine ?? '') : JSON.stringify(row.upstream),
    ]);
  },
};
