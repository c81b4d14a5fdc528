/**
 * glibc's `rand()` with its default seed, as bench-malloc-thread uses it: the additive
 * lagged-Fibonacci generator glibc calls TYPE_3 (degree 31, separation 3). Reproducing it
 * exactly makes the size and offset tables identical to the C benchmark's, so figures from
 * this port and from native runs describe the same workload.
 */

/** The largest value `rand()` returns: 2^31 - 1. */
export const RAND_MAX = 0x7fff_ffff;

/** The seed glibc uses when `srand` was never called. */
export const GLIBC_DEFAULT_SEED = 1;

const DEGREE = 31;
const SEPARATION = 3;
/** Outputs glibc discards after seeding, so the state forgets the linear seeding. */
const DISCARDED = 310;
const PARK_MILLER_MODULUS = 0x7fff_ffff;
const PARK_MILLER_MULTIPLIER = 16807;

/** A glibc TYPE_3 `rand()` stream. */
export class GlibcRandom {
  /** The last 31 values of the recurrence, as a ring; `cursor` is the oldest. */
  private readonly ring = new Uint32Array(DEGREE);
  private cursor = 0;

  /** @param seed as `srand(seed)`; glibc treats 0 as 1 */
  constructor(seed: number = GLIBC_DEFAULT_SEED) {
    const seeded = new Uint32Array(DEGREE);
    seeded[0] = seed === 0 ? 1 : seed >>> 0;
    for (let i = 1; i < DEGREE; i++) {
      // 16807 * r fits below 2^46, so this double product is exact, as glibc's Schrage
      // decomposition is in 32-bit integers.
      seeded[i] = (PARK_MILLER_MULTIPLIER * seeded[i - 1]!) % PARK_MILLER_MODULUS;
    }
    // r[31..33] are copies of r[0..2], not values of the recurrence, so the first value the
    // recurrence makes is r[34] = r[3] + r[31]. The ring therefore starts as r[3..33].
    for (let i = 0; i < DEGREE; i++) this.ring[i] = seeded[(i + SEPARATION) % DEGREE]!;
    for (let i = 0; i < DISCARDED; i++) this.step();
  }

  /** The next `rand()` value, in [0, RAND_MAX]. */
  next(): number {
    return this.step() >>> 1;
  }

  /**
   * One step of `r[i] = r[i-31] + r[i-3] (mod 2^32)`. The ring holds r[i-31] at `cursor`
   * and r[i-3] at `cursor + 28`; the new value replaces the oldest.
   */
  private step(): number {
    const ring = this.ring;
    const oldest = this.cursor;
    let recent = oldest + (DEGREE - SEPARATION);
    if (recent >= DEGREE) recent -= DEGREE;
    const value = (ring[oldest]! + ring[recent]!) >>> 0;
    ring[oldest] = value;
    this.cursor = oldest + 1 === DEGREE ? 0 : oldest + 1;
    return value;
  }
}
