/**
 * Bit helpers the backends share: bitmaps of free lists (TLSF, buddy), slab occupancy words,
 * size-class arithmetic. Each works on unsigned 32-bit words.
 */

/** Number of set bits of `word`. */
export function popcount(word: number): number {
  let bits = word >>> 0;
  bits -= (bits >>> 1) & 0x5555_5555;
  bits = (bits & 0x3333_3333) + ((bits >>> 2) & 0x3333_3333);
  return (Math.imul((bits + (bits >>> 4)) & 0x0f0f_0f0f, 0x0101_0101) >>> 24) & 0xff;
}

/** Index of the lowest set bit of `word`; -1 when it is 0. */
export function lowestBit(word: number): number {
  return word === 0 ? -1 : 31 - Math.clz32(word & -word);
}

/** Index of the highest set bit of `word` (floor of log2); -1 when it is 0. */
export function highestBit(word: number): number {
  return 31 - Math.clz32(word);
}

/** log2 of a power of two up to 2^31 (the index of its only set bit). */
export function log2(powerOfTwo: number): number {
  return 31 - Math.clz32(powerOfTwo);
}
