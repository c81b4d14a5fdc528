/**
 * The latency workload's request sizes (docs/workloads/latency.md): octaves from 16 B to
 * 64 KiB, each two thirds as likely as the one below, uniform within an octave. Most requests
 * are small, as in most programs, yet every octave comes up often enough that each backend's
 * larger paths (slab's and mimalloc's large blocks, TLSF's upper levels, buddy's high orders)
 * are timed too: the top octave is about one request in 260 (the mean request is about 740 B).
 */

import type { Random } from '@heaplab/core';

/** The smallest and the largest request. */
export const LATENCY_MIN_SIZE = 16;
export const LATENCY_MAX_SIZE = 64 << 10;
/** Octaves [16, 32), [32, 64), ... [32 KiB, 64 KiB]. */
export const LATENCY_OCTAVES = Math.log2(LATENCY_MAX_SIZE / LATENCY_MIN_SIZE);
/** How much less likely each octave is than the one below. */
export const LATENCY_OCTAVE_RATIO = 2 / 3;

/**
 * The probability of each octave, smallest first: a geometric series cut at the top octave
 * and scaled to sum to 1.
 */
export const LATENCY_OCTAVE_WEIGHTS: readonly number[] = (() => {
  const raw = Array.from({ length: LATENCY_OCTAVES }, (_, octave) => LATENCY_OCTAVE_RATIO ** octave);
  const total = raw.reduce((sum, weight) => sum + weight, 0);
  return raw.map((weight) => weight / total);
})();

/** Upper ends of the octaves' shares of [0, 2^32), for one draw per octave choice. */
const OCTAVE_THRESHOLDS: Float64Array = (() => {
  const thresholds = new Float64Array(LATENCY_OCTAVES);
  let cumulative = 0;
  LATENCY_OCTAVE_WEIGHTS.forEach((weight, octave) => {
    cumulative += weight;
    thresholds[octave] = cumulative * 0x1_0000_0000;
  });
  // Rounding must not leave a draw above the last threshold.
  thresholds[LATENCY_OCTAVES - 1] = Infinity;
  return thresholds;
})();

/** One request size from `random`: two draws, the octave and the size within it. */
export function drawLatencySize(random: Random): number {
  const roll = random.nextU32();
  let octave = 0;
  while (roll >= OCTAVE_THRESHOLDS[octave]!) octave++;
  const low = LATENCY_MIN_SIZE << octave;
  // The top octave includes its upper end, so 64 KiB itself is asked for.
  const high = octave === LATENCY_OCTAVES - 1 ? LATENCY_MAX_SIZE + 1 : low * 2;
  return random.int(low, high);
}

/** The mean request size of the mix, in bytes (for the page and the table's title). */
export function meanLatencySize(): number {
  return LATENCY_OCTAVE_WEIGHTS.reduce((sum, weight, octave) => {
    const low = LATENCY_MIN_SIZE << octave;
    const high = octave === LATENCY_OCTAVES - 1 ? LATENCY_MAX_SIZE + 1 : low * 2;
    return sum + weight * ((low + high - 1) / 2);
  }, 0);
}
