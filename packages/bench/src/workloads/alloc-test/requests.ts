/**
 * What alloc-test draws (docs/workloads/alloc-test.md): its 64-bit generator, the size of a
 * new block and the Pareto 80/20 choice of a slot, reproduced from the behaviour of
 * node-dot-cpp's allocator tester so that this port, the C port and the original request
 * the same sizes at the same slots.
 *
 * The generator's state is 64 bits; JavaScript keeps it as two 32-bit halves, so nothing in
 * the timed loop makes a BigInt.
 */

/** The multiplier whose product with the state gives each output (its high 32 bits). */
const MULTIPLIER_HIGH = 0xd989bcac;
const MULTIPLIER_LOW = 0xc137dcd5;
const TWO_TO_16 = 0x1_0000;
const TWO_TO_32 = 0x1_0000_0000;

/**
 * The tester's generator: each output is bits 32..63 of `state * 0xd989bcacc137dcd5`
 * (mod 2^64), taken before the state moves on by a xorshift (>> 11, << 31, >> 18).
 */
export class AllocTestRandom {
  private high: number;
  private low: number;

  /** @param seed the 64-bit seed's value (below 2^53) */
  constructor(seed: number) {
    this.high = Math.floor(seed / TWO_TO_32) >>> 0;
    this.low = seed >>> 0;
  }

  /** The next 32-bit output. */
  next32(): number {
    const high = this.high;
    const low = this.low;
    const output = (highProduct(low, MULTIPLIER_LOW) + Math.imul(high, MULTIPLIER_LOW) + Math.imul(low, MULTIPLIER_HIGH)) >>> 0;
    // state ^= state >> 11
    let nextLow = (low ^ ((low >>> 11) | (high << 21))) >>> 0;
    let nextHigh = (high ^ (high >>> 11)) >>> 0;
    // state ^= state << 31
    const shiftedHigh = ((nextHigh << 31) | (nextLow >>> 1)) >>> 0;
    nextLow = (nextLow ^ (nextLow << 31)) >>> 0;
    nextHigh = (nextHigh ^ shiftedHigh) >>> 0;
    // state ^= state >> 18
    this.low = (nextLow ^ ((nextLow >>> 18) | (nextHigh << 14))) >>> 0;
    this.high = (nextHigh ^ (nextHigh >>> 18)) >>> 0;
    return output;
  }

  /**
   * A block size as the tester draws it from a 64-bit output (two 32-bit ones, the first
   * the high half): only the low half's bits matter; see `sizeFromWord`.
   */
  nextSize(maxSizeExponent: number): number {
    this.next32();
    return sizeFromWord(this.next32(), maxSizeExponent);
  }
}

/** Bits 32..63 of the 64-bit product of two 32-bit values, in exact double arithmetic (16-bit halves). */
function highProduct(a: number, b: number): number {
  const a0 = a & 0xffff;
  const a1 = a >>> 16;
  const b0 = b & 0xffff;
  const b1 = b >>> 16;
  const middle = a1 * b0 + a0 * b1;
  const carry = Math.floor(((middle % TWO_TO_16) * TWO_TO_16 + a0 * b0) / TWO_TO_32);
  return (a1 * b1 + Math.floor(middle / TWO_TO_16) + carry) >>> 0;
}

/**
 * The tester's size distribution for sizes up to 2^`maxSizeExponent`: the lowest
 * `maxSizeExponent - 3` bits of `word` pick a class k (the count of their trailing zeros, once
 * 1 is added to them: class 0 with probability 1/2, class 1 with 1/4, ..., the last two
 * classes alike), the next bits a size in (2^(k+2), 2^(k+3)]. With exponent 10: 5..8 bytes
 * half the time, 9..16 a quarter, up to 513..1024 one time in 128.
 */
export function sizeFromWord(word: number, maxSizeExponent: number): number {
  const classBits = maxSizeExponent - 3;
  const classBase = (word & ((1 << classBits) - 1)) + 1;
  const sizeClass = 31 - Math.clz32(classBase & -classBase) + 2;
  return ((word >>> classBits) & ((1 << sizeClass) - 1)) + 1 + (1 << sizeClass);
}

/**
 * The 80/20 rule applied six times over: the probability of each of seven groups of slots
 * (the most used first). Group g holds the share `PARETO_SHARES[6 - g]` of the slots, so a
 * quarter of the accesses go to 0.0064 % of the slots.
 */
const PARETO_SHARES = [0.262144, 0.393216, 0.24576, 0.08192, 0.01536, 0.001536, 0.000064] as const;
const PARETO_GROUPS = PARETO_SHARES.length;
const UINT32_MAX = 0xffff_ffff;

/** The slot groups of one thread's table, as the tester lays them out. */
export class ParetoSlots {
  /** Upper bounds of the draw for groups 0..5 (group 6 takes the rest). */
  private readonly bounds = new Uint32Array(PARETO_GROUPS - 1);
  /** First slot of each group, and the slot count at the end. */
  private readonly starts = new Uint32Array(PARETO_GROUPS + 1);

  /**
   * @param slots the table's slots (at least 15625, so that the smallest group is not empty)
   * @throws Error when a group would be empty (the original then divides by zero)
   */
  constructor(readonly slots: number) {
    this.bounds[0] = Math.trunc(UINT32_MAX * PARETO_SHARES[0]);
    for (let i = 1; i < PARETO_GROUPS - 2; i++) this.bounds[i] = this.bounds[i - 1]! + Math.trunc(UINT32_MAX * PARETO_SHARES[i]!);
    this.bounds[PARETO_GROUPS - 2] = Math.trunc(UINT32_MAX * (1 - PARETO_SHARES[PARETO_GROUPS - 1]));
    for (let i = 0; i < PARETO_GROUPS - 1; i++) this.starts[i + 1] = this.starts[i]! + Math.trunc(slots * PARETO_SHARES[PARETO_GROUPS - 1 - i]!);
    this.starts[PARETO_GROUPS] = slots;
    for (let i = 0; i < PARETO_GROUPS; i++) {
      if (this.starts[i + 1]! <= this.starts[i]!) throw new Error(`alloc-test needs at least 15625 slots per thread; ${slots} leave a slot group empty`);
    }
  }

  /** The slot that two draws pick: `groupDraw` chooses the group, `slotDraw` the slot in it. */
  pick(groupDraw: number, slotDraw: number): number {
    const bounds = this.bounds;
    let group = PARETO_GROUPS - 1;
    for (let i = 0; i < PARETO_GROUPS - 1; i++) {
      if (groupDraw < bounds[i]!) {
        group = i;
        break;
      }
    }
    const start = this.starts[group]!;
    return start + (slotDraw % (this.starts[group + 1]! - start));
  }
}
