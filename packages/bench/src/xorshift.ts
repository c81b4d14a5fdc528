/**
 * A seeded 32-bit xorshift generator (Marsaglia): small, fast, allocation-free, and the
 * same sequence on every run for a seed, so workloads other than bench-malloc-thread (which
 * uses glibc's `rand()`) can be repeated exactly.
 */
export class Xorshift32 {
  private state: number;

  /** @param seed any integer; 0 is replaced by 1, since 0 is xorshift's fixed point */
  constructor(seed: number) {
    this.state = seed >>> 0 || 1;
  }

  /** The next value in [1, 2^32). */
  nextU32(): number {
    let state = this.state;
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    this.state = state >>> 0;
    return this.state;
  }

  /** A uniform integer in [low, high), for spans below 2^32 (modulo bias is under 2^-20 for the spans used here). */
  between(low: number, high: number): number {
    return low + (this.nextU32() % (high - low));
  }
}
