/**
 * latency: how long single malloc and free calls take (docs/workloads/latency.md), on a
 * fresh heap and on a fragmented one, for every contender with addresses. Each call (or
 * batch of k calls, when one is shorter than the clock resolves) is a sample of an HDR
 * histogram per (contender, level, op); a row reports its p50, p99, p99.9 and max in ns.
 */

import type { Contender } from '../../contenders/contender.js';
import { CHART_PALETTE, CHART_WIDTH, VEGA_LITE_SCHEMA } from '../../report/chart.js';
import { formatBytes } from '../../report/format.js';
import { figureColumns, renderTable } from '../../report/text-table.js';
import type { BenchSettings, Workload, WorkloadRow } from '../../run/workload.js';
import { type ClockCalibration, chooseClock } from './clock.js';
import {
  createLatencyTarget,
  FRAGMENT_BLOCKS,
  LATENCY_LEVELS,
  LATENCY_OPS,
  type LatencyFigures,
  type LatencyHistograms,
  type LatencyLevel,
  type LatencyOp,
  type LevelRunFigures,
  latencyFigures,
  latencyHistograms,
  runLevel,
  TRANSIENT_BLOCKS,
} from './measure.js';
import { LATENCY_MAX_SIZE, LATENCY_MIN_SIZE, meanLatencySize } from './sizes.js';

/** Timed steps per run at most under `bench all`, whatever the duration. */
export const ALL_LATENCY_STEPS = 20_000;
/** The warm-up run's length, as a share of a timed run's, and at most. */
const WARMUP_SHARE = 0.25;
const MAX_WARMUP_SECONDS = 0.5;

/** One row: one op of one contender on one level, over all its timed runs. */
export interface LatencyRow extends WorkloadRow, LatencyFigures {
  level: LatencyLevel;
  op: LatencyOp;
  /** Calls per sample: `count` samples timed `count × batch` calls. */
  batch: number;
  /** Calls timed. */
  calls: number;
  /** Samples recorded as 0 ns: the interval was no longer than the clock's cost. */
  zeroSamples: number;
  /** The allocator's own count of free blocks when the first timed run began and when it ended. */
  freeBlocks: number;
  freeBlocksAtEnd: number;
  /** The clock, its resolution (an upper bound) and its cost (subtracted from every interval), in ns. */
  clock: string;
  clockResolutionNs: number;
  timerCostNs: number;
  /** Timed runs, each on a fresh heap, all recorded into one histogram. */
  runs: number;
  /** Wall time of the timed steps over all runs (both ops). */
  seconds: number;
  seed: number;
}

/** The two rows of a (contender, level), from its histograms and runs. */
function levelRows(
  contender: Contender,
  level: LatencyLevel,
  histograms: LatencyHistograms,
  runs: readonly LevelRunFigures[],
  calibration: ClockCalibration,
  settings: BenchSettings,
): LatencyRow[] {
  const first = runs[0]!;
  const notes: string[] = [];
  if (first.batch > 1) notes.push(`each sample is the mean call of a batch of ${first.batch} (one call is shorter than the clock resolves)`);
  if (!settings.warmup) notes.push('no warm-up: the first samples include compiling the calls');
  if (contender.kind === 'thing') notes.push('its free walks its live blocks');
  return LATENCY_OPS.map((op) => {
    const figures = latencyFigures(histograms[op]);
    return {
      label: contender.label,
      kind: contender.kind,
      level,
      op,
      ...figures,
      batch: first.batch,
      calls: figures.count * first.batch,
      zeroSamples: runs.reduce((sum, run) => sum + run.zeroSamples[op], 0),
      freeBlocks: first.freeBlocksAtStart,
      freeBlocksAtEnd: first.freeBlocksAtEnd,
      clock: calibration.clock.name,
      clockResolutionNs: calibration.resolutionNs,
      timerCostNs: calibration.costNs,
      runs: runs.length,
      seconds: runs.reduce((sum, run) => sum + run.seconds, 0),
      seed: settings.seed,
      ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
    };
  });
}

/** The two rows of a (contender, level) whose run failed. */
function failedRows(
  contender: Contender,
  level: LatencyLevel,
  calibration: ClockCalibration | undefined,
  settings: BenchSettings,
  error: unknown,
): LatencyRow[] {
  return LATENCY_OPS.map((op) => ({
    label: contender.label,
    kind: contender.kind,
    level,
    op,
    count: 0,
    p50Ns: 0,
    p90Ns: 0,
    p99Ns: 0,
    p999Ns: 0,
    p9999Ns: 0,
    maxNs: 0,
    meanNs: 0,
    batch: 0,
    calls: 0,
    zeroSamples: 0,
    freeBlocks: 0,
    freeBlocksAtEnd: 0,
    clock: calibration?.clock.name ?? '',
    clockResolutionNs: calibration?.resolutionNs ?? 0,
    timerCostNs: calibration?.costNs ?? 0,
    runs: 0,
    seconds: 0,
    seed: settings.seed,
    error: error instanceof Error ? error.message : String(error),
  }));
}

/**
 * One run of `level` on a fresh heap of `contender`, recorded into `histograms`.
 * @throws Error from the run (the heap is given back either way)
 */
function runOnce(
  contender: Contender,
  level: LatencyLevel,
  calibration: ClockCalibration,
  settings: BenchSettings,
  durationSeconds: number,
  batch: number | undefined,
  histograms: LatencyHistograms,
): LevelRunFigures {
  const target = createLatencyTarget(contender);
  try {
    const maxSteps = settings.maxIterations ?? (settings.inAll ? ALL_LATENCY_STEPS : Infinity);
    return runLevel(target, { level, calibration, durationSeconds, maxSteps, seed: settings.seed, ...(batch !== undefined ? { batch } : {}) }, histograms);
  } finally {
    target.close();
  }
}

/** Nanoseconds as `48 ns`, `1.27 µs`, `3.10 ms`. */
export function formatNs(ns: number): string {
  if (ns < 1000) return `${Math.round(ns)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toPrecision(3)} µs`;
  return `${(ns / 1e6).toPrecision(3)} ms`;
}

/** The points of the percentile chart, in order: the classic ticks and the max. */
const CHART_POINTS: readonly { label: string; figure: keyof LatencyFigures }[] = [
  { label: '50%', figure: 'p50Ns' },
  { label: '90%', figure: 'p90Ns' },
  { label: '99%', figure: 'p99Ns' },
  { label: '99.9%', figure: 'p999Ns' },
  { label: '99.99%', figure: 'p9999Ns' },
  { label: 'max', figure: 'maxNs' },
];

/** The lowest latency drawn on the chart's log axis (a 0 ns sample has no place on it). */
const CHART_FLOOR_NS = 1;

export const latencyWorkload: Workload<LatencyRow, 'latency'> = {
  name: 'latency',
  resultKey: 'latency',
  summary: 'single malloc and free times (p50, p99, p99.9, max) on a fresh and a fragmented heap',
  allNote: `at most ${ALL_LATENCY_STEPS} timed steps per run`,
  // Only allocators with addresses in a heap the workload builds can be timed call by call:
  // system's allocation is V8's and its free is the garbage collector's, bump never frees (so
  // has no fragmented level), and the native ports run as programs of their own.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing',
  stepsPerContender: () => LATENCY_LEVELS.length,

  async run(contenders, settings, progress) {
    const rows: LatencyRow[] = [];
    if (contenders.length === 0) return rows;
    let calibration: ClockCalibration | undefined;
    try {
      calibration = chooseClock().chosen;
    } catch (error) {
      for (const contender of contenders) for (const level of LATENCY_LEVELS) rows.push(...failedRows(contender, level, undefined, settings, error));
      return rows;
    }
    const repeat = Math.max(1, settings.repeat);
    const warmupSeconds = Math.min(settings.durationSeconds * WARMUP_SHARE, MAX_WARMUP_SECONDS);
    for (const contender of contenders) {
      for (const level of LATENCY_LEVELS) {
        progress.step(`latency  ${contender.label}  ${level}`, settings.durationSeconds * (repeat + (settings.warmup ? WARMUP_SHARE : 0)));
        try {
          // The warm-up compiles the calls and picks the batch; its samples are dropped.
          let batch = settings.warmup ? runOnce(contender, level, calibration, settings, warmupSeconds, undefined, latencyHistograms()).batch : undefined;
          const histograms = latencyHistograms();
          const runs: LevelRunFigures[] = [];
          for (let index = 0; index < repeat; index++) {
            const run = runOnce(contender, level, calibration, settings, settings.durationSeconds, batch, histograms);
            batch ??= run.batch;
            runs.push(run);
          }
          rows.push(...levelRows(contender, level, histograms, runs, calibration, settings));
        } catch (error) {
          rows.push(...failedRows(contender, level, calibration, settings, error));
        }
      }
    }
    return rows;
  },

  section(rows) {
    const headers = ['backend', 'level', 'free blocks', 'malloc p50', 'p99', 'p99.9', 'max', 'free p50', 'p99', 'p99.9', 'max', 'samples', 'batch'];
    const body: string[][] = [];
    const seen = new Set<string>();
    for (const row of rows) {
      const key = `${row.label}\u0000${row.level}`;
      if (seen.has(key)) continue;
      seen.add(key);
      const malloc = rows.find((other) => other.label === row.label && other.level === row.level && other.op === 'malloc');
      const free = rows.find((other) => other.label === row.label && other.level === row.level && other.op === 'free');
      const figures = (of: LatencyRow | undefined): string[] =>
        of === undefined ? ['-', '-', '-', '-'] : [formatNs(of.p50Ns), formatNs(of.p99Ns), formatNs(of.p999Ns), formatNs(of.maxNs)];
      body.push([row.label, row.level, String(row.freeBlocks), ...figures(malloc), ...figures(free), String(row.count), String(row.batch)]);
    }
    const first = rows[0];
    const clock =
      first === undefined
        ? ''
        : `; clock ${first.clock}: resolution <= ${formatNs(first.clockResolutionNs)}, ${formatNs(first.timerCostNs)} per reading subtracted`;
    return {
      title:
        `latency (one call, ns; ${formatBytes(LATENCY_MIN_SIZE)}..${formatBytes(LATENCY_MAX_SIZE)}, mean ${Math.round(meanLatencySize())} B; ` +
        `${TRANSIENT_BLOCKS} transient blocks; fragmented: ${FRAGMENT_BLOCKS} blocks, every other freed${clock})`,
      table: renderTable(headers, body, new Set([...figureColumns(headers)].filter((column) => column !== 1))),
      notes: ["note: latency free blocks: the allocator's own count when timing began; samples: per op; batch > 1: each sample is the mean call of a batch"],
    };
  },

  charts(rows) {
    if (rows.length === 0) return [];
    const values = rows.flatMap((row) =>
      CHART_POINTS.map((point) => ({
        backend: row.label,
        panel: `${row.op}, ${row.level}`,
        percentile: point.label,
        ns: Math.max(CHART_FLOOR_NS, row[point.figure]),
      })),
    );
    const first = rows[0]!;
    return [
      {
        id: 'latency',
        title: 'latency: one call, by percentile',
        caption:
          `Time of one malloc or free at each percentile of its calls (log axis), on a fresh heap and after ${FRAGMENT_BLOCKS} blocks with every other one freed; ` +
          `${first.clock}'s cost (${formatNs(first.timerCostNs)}) subtracted, 0 drawn as ${CHART_FLOOR_NS} ns. Lower and flatter is better.`,
        spec: {
          $schema: VEGA_LITE_SCHEMA,
          data: { values },
          facet: { field: 'panel', type: 'nominal', title: null, sort: ['malloc, fresh', 'malloc, fragmented', 'free, fresh', 'free, fragmented'] },
          columns: 2,
          spec: {
            width: CHART_WIDTH / 2 - 20,
            height: 200,
            mark: { type: 'line', point: true },
            encoding: {
              x: { field: 'percentile', type: 'ordinal', sort: CHART_POINTS.map((point) => point.label), title: 'percentile' },
              y: { field: 'ns', type: 'quantitative', scale: { type: 'log' }, title: 'ns per call' },
              color: { field: 'backend', type: 'nominal', scale: CHART_PALETTE, title: null },
            },
          },
        },
      },
    ];
  },
};
