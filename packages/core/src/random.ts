/**
 * heaplab's one seeded generator for generic randomness (workloads, tests, tools). The
 * benchmarks that port a C program keep that program's own generator (glibc's `rand()`,
 * libax's LCG) exactly; everything else draws from this.
 */

/**
 * A small seeded generator (mulberry32): the same seed gives the same sequence on every
 * thread and run, so a failing scenario can be replayed.
 */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  nextU32(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** A uniform integer in `[low, high)`. */
  int(low: number, high: number): number {
    return low + Math.floor((this.nextU32() / 0x1_0000_0000) * (high - low));
  }

  /** A size biased toward small blocks: mostly under 256 bytes, sometimes up to `max`. */
  size(max: number): number {
    const roll = this.nextU32() & 15;
    if (roll < 10) return this.int(0, 129);
    if (roll < 14) return this.int(129, 2049);
    return this.int(2049, max + 1);
  }
}
