/**
 * The clocks the latency workload can time calls with, and what each one costs and resolves
 * on this machine, measured when the workload starts (docs/workloads/latency.md).
 */

/** A clock read as nanoseconds since an arbitrary origin. */
export interface LatencyClock {
  /** `performance.now()` or `process.hrtime.bigint()`, as the rows name it. */
  readonly name: string;
  now(): number;
}

/** What a clock was measured to do. */
export interface ClockCalibration {
  readonly clock: LatencyClock;
  /**
   * The smallest positive difference between two readings taken back to back, in ns. It is
   * an upper bound on the clock's resolution: no difference can be shorter than one reading.
   */
  readonly resolutionNs: number;
  /**
   * The median difference between two readings taken back to back, in ns: what an interval
   * with nothing in it measures, so what is subtracted from every timed interval.
   */
  readonly costNs: number;
}

/** `performance.now()` in ns: a double of milliseconds, so reading it allocates nothing. */
export const PERFORMANCE_NOW_CLOCK: LatencyClock = {
  name: 'performance.now()',
  now: () => performance.now() * 1e6,
};

/**
 * The BigInt clock, as a difference from its first reading: the raw value counts from an
 * arbitrary origin (often boot) and would lose nanoseconds in a double after 104 days.
 */
const HRTIME_ORIGIN = process.hrtime.bigint();

/** `process.hrtime.bigint()` in ns: exact, but each reading makes a BigInt (and garbage). */
export const HRTIME_CLOCK: LatencyClock = {
  name: 'process.hrtime.bigint()',
  now: () => Number(process.hrtime.bigint() - HRTIME_ORIGIN),
};

/** The clocks considered, in order of preference when they cost the same. */
export const LATENCY_CLOCKS: readonly LatencyClock[] = [PERFORMANCE_NOW_CLOCK, HRTIME_CLOCK];

/** Back-to-back pairs of readings per calibration; the first half warms the clock's code up. */
const CALIBRATION_PAIRS = 20_000;

/** Measures `clock`'s resolution and cost (see `ClockCalibration`). */
export function calibrateClock(clock: LatencyClock): ClockCalibration {
  const deltas = new Float64Array(CALIBRATION_PAIRS);
  for (let round = 0; round < 2; round++) {
    for (let index = 0; index < CALIBRATION_PAIRS; index++) {
      const start = clock.now();
      deltas[index] = clock.now() - start;
    }
  }
  let resolutionNs = Infinity;
  for (const delta of deltas) if (delta > 0 && delta < resolutionNs) resolutionNs = delta;
  deltas.sort();
  return { clock, resolutionNs, costNs: deltas[CALIBRATION_PAIRS >> 1]! };
}

/**
 * How much dearer than the cheapest the preferred clock may be and still be chosen: the
 * BigInt clock leaves garbage at every reading, and a collection it triggers lands in some
 * timed interval, so it has to be clearly cheaper to be worth it. Both clocks' medians move
 * by a clock step (about 10 ns under KVM) from one process to the next, so the margin is
 * wider than one step over their ~50 ns cost.
 */
const PREFERENCE_MARGIN = 1.5;

/**
 * Every clock calibrated, and the one to time with: the first of `LATENCY_CLOCKS` (in order)
 * that costs at most `PREFERENCE_MARGIN` times the cheapest usable one. The timer's cost is
 * subtracted, but the less it is the less its own jitter adds to each sample.
 * @throws Error when no clock ever advanced between two readings (no usable clock)
 */
export function chooseClock(): { chosen: ClockCalibration; all: ClockCalibration[] } {
  const all = LATENCY_CLOCKS.map(calibrateClock);
  const usable = all.filter((calibration) => Number.isFinite(calibration.resolutionNs));
  if (usable.length === 0) throw new Error('no clock advanced between two readings: nothing to time calls with');
  const cheapest = Math.min(...usable.map((calibration) => calibration.costNs));
  const chosen = usable.find((calibration) => calibration.costNs <= cheapest * PREFERENCE_MARGIN)!;
  return { chosen, all };
}
