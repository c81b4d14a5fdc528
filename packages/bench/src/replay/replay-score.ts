/**
 * The score of a backend over a set of traces: CS:APP's performance index, with the
 * throughput measured against a reference backend replayed in the same run (the driver
 * compares against a fixed libc figure, which holds on one machine only):
 *
 *   U     = mean over traces of peak live payload / high-water footprint
 *   T     = total operations / total seconds (each trace's median timed pass)
 *   index = 100 × (0.6 × U + 0.4 × min(1, T / T_ref))
 *
 * and 0 when any trace was invalid, as the driver gives no score to an allocator that
 * answered a request wrongly.
 */

import type { TraceReplay } from './replay-engine.js';

/** The driver's weight of utilization. */
export const UTILIZATION_WEIGHT = 0.6;
/** The driver's weight of throughput. */
export const THROUGHPUT_WEIGHT = 0.4;

/** A backend's figures over the traces, and its index. */
export interface BackendScore {
  traces: number;
  validTraces: number;
  /** U: mean utilization over the valid traces; null when none was valid. */
  utilization: number | null;
  /** Operations and median seconds summed over the valid traces. */
  operations: number;
  seconds: number;
  /** T: operations / seconds; null when no valid trace took measurable time. */
  throughput: number | null;
  /** min(1, T / T_ref); null without both throughputs. */
  throughputRatio: number | null;
  /** 100 × 0.6 × U (0 when invalid anywhere). */
  utilizationPoints: number;
  /** 100 × 0.4 × min(1, T / T_ref) (0 when invalid anywhere). */
  throughputPoints: number;
  /** Their sum, out of 100. */
  index: number;
}

/** T over `replays`: total operations over total seconds of the valid ones. */
export function throughputOf(replays: readonly TraceReplay[]): { operations: number; seconds: number; throughput: number | null } {
  let operations = 0;
  let seconds = 0;
  for (const replay of replays) {
    if (!replay.valid || replay.seconds === null) continue;
    operations += replay.operations;
    seconds += replay.seconds;
  }
  return { operations, seconds, throughput: seconds > 0 ? operations / seconds : null };
}

/**
 * The score of one backend's `replays`.
 * @param referenceThroughput T_ref, the reference backend's `throughputOf` in the same run;
 *   null when it has none (then the throughput part counts 0)
 */
export function scoreBackend(replays: readonly TraceReplay[], referenceThroughput: number | null): BackendScore {
  const valid = replays.filter((replay) => replay.valid);
  const utilization = valid.length === 0 ? null : valid.reduce((sum, replay) => sum + replay.utilization!, 0) / valid.length;
  const { operations, seconds, throughput } = throughputOf(replays);
  const throughputRatio =
    throughput === null || referenceThroughput === null || referenceThroughput <= 0 ? null : Math.min(1, throughput / referenceThroughput);
  const allValid = valid.length === replays.length;
  const utilizationPoints = allValid ? 100 * UTILIZATION_WEIGHT * (utilization ?? 0) : 0;
  const throughputPoints = allValid ? 100 * THROUGHPUT_WEIGHT * (throughputRatio ?? 0) : 0;
  return {
    traces: replays.length,
    validTraces: valid.length,
    utilization,
    operations,
    seconds,
    throughput,
    throughputRatio,
    utilizationPoints,
    throughputPoints,
    index: utilizationPoints + throughputPoints,
  };
}
