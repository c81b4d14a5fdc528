/**
 * ArceOS libax's `rand`: a 64-bit linear congruential generator (Knuth's MMIX multiplier,
 * increment 1) whose 32-bit output is the state's top 31 bits. `srand(s)` sets the state to
 * `s - 1` (wrapping in 32 bits), so the first draw after `srand(2333)` is the step from 2332.
 * The ArceOS allocator tests seed it with 2333; reproducing it exactly gives this suite and
 * its C port (native/arceos.c) the same sizes, alignments and free orders as the original.
 *
 * The state is kept as two 32-bit halves: a multiply in doubles would lose the low bits, and
 * BigInt is an order of magnitude slower in a loop that draws millions of times.
 */

/** The seed every ArceOS allocator test starts from. */
export const ARCEOS_SEED = 2333;

/** 6364136223846793005, split in 32-bit halves. */
const MULTIPLIER_HIGH = 0x5851_f42d;
const MULTIPLIER_LOW = 0x4c95_7f2d;
const MULTIPLIER_LOW_0 = MULTIPLIER_LOW & 0xffff;
const MULTIPLIER_LOW_1 = MULTIPLIER_LOW >>> 16;
const TWO_32 = 0x1_0000_0000;

/** One libax generator. */
export class LibaxRandom {
  private high = 0;
  private low: number;

  /** As `srand(seed)` (a u32). */
  constructor(seed: number) {
    this.low = (seed - 1) >>> 0;
  }

  /** `rand_u32()`: the state steps to `state * 6364136223846793005 + 1 (mod 2^64)`, and its bits 33..63 come out. */
  u32(): number {
    const low = this.low;
    // low * MULTIPLIER_LOW exactly, from 16-bit halves: every partial product stays below 2^53.
    const low0 = low & 0xffff;
    const low1 = low >>> 16;
    const middle = low1 * MULTIPLIER_LOW_0 + low0 * MULTIPLIER_LOW_1;
    const bottom = low0 * MULTIPLIER_LOW_0 + (middle % 0x1_0000) * 0x1_0000;
    const carry = Math.floor(bottom / TWO_32);
    let nextLow = (bottom % TWO_32) + 1;
    let nextHigh = low1 * MULTIPLIER_LOW_1 + Math.floor(middle / 0x1_0000) + carry + Math.imul(this.high, MULTIPLIER_LOW) + Math.imul(low, MULTIPLIER_HIGH);
    if (nextLow === TWO_32) {
      nextLow = 0;
      nextHigh += 1;
    }
    this.low = nextLow;
    this.high = nextHigh >>> 0;
    return this.high >>> 1;
  }

  /**
   * `rand_usize() % modulus` for a modulus below 2^21: `rand_usize` is `(rand_u32() << 32) |
   * rand_u32()`, the first draw the high half, and the remainder of that 64-bit value is
   * taken in two steps that stay exact in doubles.
   */
  usizeModulo(modulus: number): number {
    const high = this.u32();
    const low = this.u32();
    return ((high % modulus) * TWO_32 + low) % modulus;
  }
}
