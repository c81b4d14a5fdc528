/**
 * The row runner of every workload that runs on threads: one row per contender and thread
 * count, each the median of `settings.repeat` runs of `runThreaded` (one-thread rows in a
 * process of their own unless told not to), after one shorter warm-up run whose figures are
 * dropped.
 */

import type { LockFigures, ThreadCacheFigures } from '@heaplab/core';

import type { Contender, NativeContender } from '../contenders/contender.js';
import { runThreadedIsolated } from './isolated-run.js';
import { LineRoundTripTimeout, measureLineRoundTrip } from './line-round-trip.js';
import type { Progress } from './progress.js';
import type { ThreadLoop } from './thread-loop.js';
import { runThreaded, type ThreadedRun } from './threaded-run.js';
import type { BenchSettings, WorkloadRow } from './workload.js';

/** One row of a workload that runs on threads. */
export interface ThroughputRow extends WorkloadRow {
  threads: number;
  /** Iterations (or what the workload counts), all threads. */
  iterations: number;
  /** From the clock start to the last thread's end (of the median run). */
  wallSeconds: number;
  /** CPU time of the median run's process over the same span; absent where not measured. */
  cpuSeconds?: number;
  /**
   * Each thread's iterations, loop time, CPU time and wait for a CPU in the median run (see
   * `ThreadedRun`); absent where not measured. Iterations over loop time is a thread's own
   * rate, which tells a run where one thread was slow from one where both were.
   */
  threadIterations?: number[];
  threadSeconds?: number[];
  threadCpuSeconds?: number[];
  threadWaitSeconds?: number[];
  /**
   * A cache line's round trip between two threads' cores (run/line-round-trip.ts), in ns,
   * measured just before the row's runs and just after them: both near 100 ns or both near
   * 400 ns on the machine heaplab is developed on. Multi-thread rows of workloads that ask
   * for it (`lineRoundTrip`) only.
   */
  lineRoundTripNs?: number[];
  /** Peak resident size of the median run's process, in KiB; absent where not measured. */
  maxRssKiB?: number;
  /** Iterations per second while the threads ran (see `ThreadedRun.perSecond`): the median of the runs. */
  perSecond: number;
  /** Every run's `perSecond`, in the order they ran (one entry without repeats). */
  runs?: number[];
  /** The slowest and fastest of `runs`. */
  perSecondMin?: number;
  perSecondMax?: number;
  peakUsedBytes: number | null;
  /** True when `peakUsedBytes` is sampled by the backend, so a lower bound (mimalloc). */
  peakUsedSampled?: boolean;
  /**
   * Highest byte any block reached, from the arena's start; null when not tracked, and for a
   * heap of several pools, as a heap of several arenas has (a thread's highest block says
   * nothing of how far into the other arenas blocks went). Where blocks went, not memory used.
   */
  peakFootprintBytes: number | null;
  /**
   * Memory touched: bytes of the arena's 4 KiB pages holding a non-zero byte after the run
   * (a lower bound on the pages written); null or absent without a heap (system, bump, native).
   */
  touchedBytes?: number | null;
  /** The heap's locks taken during the median run, with their contention (heaplab backends). */
  locks?: LockFigures[] | null;
  /** What the thread caches of a locked backend did in the median run. */
  threadCache?: ThreadCacheFigures | null;
}

/** How a workload's rows differ from the common ones. */
export interface ThroughputRowOptions<Row extends ThroughputRow> {
  /**
   * Runs a `native` contender's row (a program of its own) for `durationSeconds`; required
   * when the workload applies to native. A failure is a row with `error`.
   */
  native?: (contender: NativeContender, threads: number, durationSeconds: number) => Promise<Row>;
  /** Fields the workload adds to a successful row. */
  extraFields?: (run: ThreadedRun, threads: number) => Partial<Row>;
  /** Measure a cache line's round trip between two cores around each multi-thread row. */
  lineRoundTrip?: boolean;
}

/**
 * Runs `loop` for each contender and thread count, one row per run. A failed run becomes a
 * row with `error` set; it never stops the others. With `settings.interleave` the rows' timed
 * runs go in rounds, each round one run of every row in order (a row's warm-up just before
 * its first run); a multi-thread row's round trips are then those measured around the run
 * that gave its median.
 */
export async function runThroughputRows<Row extends ThroughputRow>(
  loop: ThreadLoop,
  contenders: readonly Contender[],
  settings: BenchSettings,
  progress: Progress,
  options: ThroughputRowOptions<Row> = {},
): Promise<Row[]> {
  const repeat = Math.max(1, settings.repeat);
  const cells: RowCell<Row>[] = contenders.flatMap((contender) => settings.threads.map((threads) => ({ contender, threads, runs: [], roundTrips: [] })));
  const label = (cell: RowCell<Row>): string => `${loop.workload}  ${cell.contender.label}  ${cell.threads} thread${cell.threads === 1 ? '' : 's'}`;
  if (settings.interleave === true) {
    for (let round = 0; round < repeat; round++) {
      for (const cell of cells) {
        const warmup = round === 0 && settings.warmup;
        progress.step(`${label(cell)}  (run ${round + 1} of ${repeat})`, settings.durationSeconds * (1 + (warmup ? WARMUP_SHARE : 0)));
        await runSpan(loop, cell, 1, warmup, settings, options);
      }
    }
  } else {
    for (const cell of cells) {
      progress.step(label(cell), settings.durationSeconds * (repeat + (settings.warmup ? WARMUP_SHARE : 0)));
      await runSpan(loop, cell, repeat, settings.warmup, settings, options);
    }
  }
  return cells.map((cell) => {
    const row = medianRow(cell.runs);
    // One span of runs, or one span per run (interleaved): the median run's.
    const trips = cell.roundTrips.length === cell.runs.length ? cell.roundTrips[medianRunIndex(cell.runs)] : cell.roundTrips[0];
    if (trips !== undefined && trips !== null && row.error === undefined) row.lineRoundTripNs = trips;
    return row;
  });
}

/** One row being run: its contender and thread count, its runs so far, and the round trips around each span of them. */
interface RowCell<Row extends ThroughputRow> {
  contender: Contender;
  threads: number;
  runs: Row[];
  /** Per span of runs, the round trips before and after it; null when one could not be measured. */
  roundTrips: (number[] | null)[];
}

/**
 * `count` timed runs of `cell`'s row, after its warm-up when `warmup`, and, for a multi-thread
 * row of a workload that asks (`lineRoundTrip`), the round trip measured just before and just
 * after them.
 */
async function runSpan<Row extends ThroughputRow>(
  loop: ThreadLoop,
  cell: RowCell<Row>,
  count: number,
  warmup: boolean,
  settings: BenchSettings,
  options: ThroughputRowOptions<Row>,
): Promise<void> {
  const once = (durationSeconds: number): Promise<Row> => runOnce(loop, cell.contender, cell.threads, durationSeconds, settings, options);
  const roundTrip = options.lineRoundTrip === true && cell.threads > 1;
  const before = roundTrip ? await roundTripIfMeasurable() : null;
  if (warmup) await once(Math.min(settings.durationSeconds * WARMUP_SHARE, MAX_WARMUP_SECONDS));
  for (let index = 0; index < count; index++) cell.runs.push(await once(settings.durationSeconds));
  if (roundTrip) {
    const after = await roundTripIfMeasurable();
    cell.roundTrips.push(before === null || after === null ? null : [before, after]);
  }
}

/**
 * The line round trip, or null when it cannot be measured: on a machine so loaded that the
 * answering thread gets no core for seconds, the ball does not come back in time. The figure
 * only annotates a row (which rows ran far apart), so the row stands without it. Any other
 * error is not the machine's and goes on.
 */
export async function roundTripIfMeasurable(measure: () => Promise<number> = measureLineRoundTrip): Promise<number | null> {
  try {
    return await measure();
  } catch (error) {
    if (error instanceof LineRoundTripTimeout) return null;
    throw error;
  }
}

/**
 * Progress steps a workload of throughput rows takes per contender (its `stepsPerContender`):
 * one per row, or one per run when the runs are interleaved; `threadCounts` rows, one per
 * thread count of `--threads` unless the workload has its own.
 */
export function throughputSteps(settings: BenchSettings, threadCounts: number = settings.threads.length): number {
  return threadCounts * (settings.interleave === true ? Math.max(1, settings.repeat) : 1);
}

/** The warm-up run's length, as a share of a timed run's. */
const WARMUP_SHARE = 0.25;
/** The warm-up run's length at most. */
const MAX_WARMUP_SECONDS = 0.5;

/** One run as a row (a failure as a row with `error`). */
async function runOnce<Row extends ThroughputRow>(
  loop: ThreadLoop,
  contender: Contender,
  threads: number,
  durationSeconds: number,
  settings: BenchSettings,
  options: ThroughputRowOptions<Row>,
): Promise<Row> {
  if (contender.kind === 'native') {
    return options.native !== undefined
      ? await options.native(contender, threads, durationSeconds)
      : (failedRow(contender, threads, `${loop.workload} has no native program`) as Row);
  }
  try {
    const request = {
      contender,
      threads,
      durationSeconds,
      maxIterations: settings.maxIterations ?? Infinity,
      verify: settings.verify,
      heapBytes: settings.heapBytes,
    };
    const run =
      threads === 1 && settings.isolate ? await runThreadedIsolated({ ...request, workload: loop.workload }) : await runThreaded({ ...request, loop });
    return {
      label: contender.label,
      kind: contender.kind,
      threads,
      iterations: run.iterations,
      wallSeconds: run.wallSeconds,
      cpuSeconds: run.cpuSeconds,
      threadIterations: run.perThreadIterations,
      threadSeconds: run.threadSeconds,
      ...(run.threadCpuSeconds === null ? {} : { threadCpuSeconds: run.threadCpuSeconds }),
      ...(run.threadWaitSeconds === null ? {} : { threadWaitSeconds: run.threadWaitSeconds }),
      maxRssKiB: run.maxRssKiB,
      perSecond: run.perSecond,
      peakUsedBytes: run.peakUsedBytes,
      ...(run.peakUsedSampled ? { peakUsedSampled: true } : {}),
      peakFootprintBytes: run.peakFootprintBytes,
      touchedBytes: run.touchedBytes,
      locks: run.locks,
      threadCache: run.threadCache,
      ...noteFor(contender, threads),
      ...options.extraFields?.(run, threads),
    } as Row;
  } catch (error) {
    return failedRow(contender, threads, error) as Row;
  }
}

/**
 * The row of repeated runs: the run with the median rate (the lower middle one of an even
 * count), with every run's rate, the minimum and the maximum. A failed run fails the row.
 */
export function medianRow<Row extends ThroughputRow>(runs: readonly Row[]): Row {
  const failed = runs.find((run) => run.error !== undefined);
  if (failed !== undefined) return failed;
  const rates = runs.map((run) => run.perSecond);
  const median = runs[medianRunIndex(runs)]!;
  return { ...median, runs: rates, perSecondMin: Math.min(...rates), perSecondMax: Math.max(...rates) };
}

/** The index in `runs` of the run `medianRow` takes: the lower middle one by rate. */
export function medianRunIndex(runs: readonly ThroughputRow[]): number {
  const byRate = runs.map((_, index) => index).sort((a, b) => runs[a]!.perSecond - runs[b]!.perSecond);
  return byRate[Math.floor((byRate.length - 1) / 2)]!;
}

/** The note a baseline's row needs. */
function noteFor(contender: Contender, threads: number): { note?: string } {
  if (contender.kind === 'thing' && threads > 1) return { note: "not thread-safe: serialised by core's shared mutex" };
  if (contender.kind === 'system') return { note: "V8's allocator and garbage collector, one heap per worker" };
  if (contender.kind === 'bump') return { note: 'never frees: the cost of the loop and the fill alone' };
  return {};
}

/** A row for a run that failed. */
export function failedRow(contender: Contender, threads: number, error: unknown): ThroughputRow {
  return {
    label: contender.label,
    kind: contender.kind,
    threads,
    iterations: 0,
    wallSeconds: 0,
    perSecond: 0,
    peakUsedBytes: null,
    peakFootprintBytes: null,
    error: error instanceof Error ? error.message : String(error),
  };
}
