/**
 * The latency workload's rows, and the measurement of one (contender, level) that makes two
 * of them (docs/workloads/latency.md): a warm-up, then `repeat` timed runs, each on a fresh
 * heap, all recorded into one histogram per op. It runs here or in a process of its own
 * (isolated.ts); either way the same code makes the rows.
 */

import type { Contender } from '../../contenders/contender.js';
import type { BenchSettings, WorkloadRow } from '../../run/workload.js';
import type { ClockCalibration } from './clock.js';
import {
  type BatchChoice,
  batchFor,
  createLatencyTarget,
  LATENCY_OPS,
  type LatencyFigures,
  type LatencyHistograms,
  type LatencyLevel,
  type LatencyOp,
  type LevelRunFigures,
  latencyFigures,
  latencyHistograms,
  runLevel,
} from './measure.js';

/** Timed steps per run at most under `bench all`, whatever the duration. */
export const ALL_LATENCY_STEPS = 20_000;
/** The warm-up run's length, as a share of a timed run's, and at most. */
export const WARMUP_SHARE = 0.25;
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
  /** Whether the row ran in a process of its own. */
  isolated: boolean;
}

/** The two rows of a (contender, level), from its histograms and runs. */
function levelRows(
  contender: Contender,
  level: LatencyLevel,
  histograms: LatencyHistograms,
  runs: readonly LevelRunFigures[],
  calibration: ClockCalibration,
  settings: BenchSettings,
  isolated: boolean,
): LatencyRow[] {
  const first = runs[0]!;
  const notes: string[] = [];
  if (first.batch > 1) notes.push(`each sample is the mean call of a batch of ${first.batch} (one call is shorter than the clock resolves)`);
  if (!settings.warmup) notes.push('no warm-up: the first samples include compiling the calls');
  if (contender.kind === 'thing') notes.push('its malloc walks its free list, its free its live blocks');
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
      isolated,
      ...(notes.length > 0 ? { note: notes.join('; ') } : {}),
    };
  });
}

/** The two rows of a (contender, level) whose measurement failed. */
export function failedLevelRows(contender: Contender, level: LatencyLevel, settings: BenchSettings, error: unknown): LatencyRow[] {
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
    clock: '',
    clockResolutionNs: 0,
    timerCostNs: 0,
    runs: 0,
    seconds: 0,
    seed: settings.seed,
    isolated: false,
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
  batch: BatchChoice,
  histograms: LatencyHistograms,
): LevelRunFigures {
  const target = createLatencyTarget(contender);
  try {
    const maxSteps = settings.maxIterations ?? (settings.inAll ? ALL_LATENCY_STEPS : Infinity);
    return runLevel(target, { level, calibration, batch, durationSeconds, maxSteps, seed: settings.seed }, histograms);
  } finally {
    target.close();
  }
}

/**
 * The malloc and free rows of `contender` on `level`: with `settings.warmup`, a shorter run
 * of one call per sample whose samples are dropped: it compiles the calls, and the faster
 * op's median call in it picks the batch. Then `settings.repeat` timed runs into one
 * histogram per op, all with the same batch (without a warm-up, a pilot in the first one
 * picks it, before its steps, from calls not yet compiled).
 * @throws Error from a run (the caller makes failed rows of it)
 */
export function measureLevel(
  contender: Contender,
  level: LatencyLevel,
  settings: BenchSettings,
  calibration: ClockCalibration,
  isolated: boolean,
): LatencyRow[] {
  const warmupSeconds = Math.min(settings.durationSeconds * WARMUP_SHARE, MAX_WARMUP_SECONDS);
  let batch: BatchChoice = 'pilot';
  if (settings.warmup) {
    const warm = latencyHistograms();
    runOnce(contender, level, calibration, settings, warmupSeconds, 1, warm);
    batch = batchFor(Math.min(warm.malloc.getValueAtPercentile(50), warm.free.getValueAtPercentile(50)), calibration.resolutionNs);
  }
  const histograms = latencyHistograms();
  const runs: LevelRunFigures[] = [];
  for (let index = 0; index < Math.max(1, settings.repeat); index++) {
    const run = runOnce(contender, level, calibration, settings, settings.durationSeconds, batch, histograms);
    batch = run.batch;
    runs.push(run);
  }
  return levelRows(contender, level, histograms, runs, calibration, settings, isolated);
}
