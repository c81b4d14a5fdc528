/**
 * Signing blocks: the validity pass writes a pattern seeded by the block's id over every
 * requested byte when it gets the block, and reads it back before the block is resized or
 * freed and at the end of the trace. A backend that hands out overlapping blocks, writes its
 * own bookkeeping into a live block or loses bytes in a move breaks some block's pattern,
 * whichever thread owns the other block; the pattern depends on the id, so two blocks that
 * overlap hold different bytes.
 *
 * Blocks are 8-aligned, so the pattern is written a 32-bit word at a time, its last bytes one
 * at a time; byte j of a block is byte j % 4 (little-endian, as the typed arrays are) of
 * word j / 4.
 */

/** Word `index` of `id`'s pattern: a multiplicative hash of both, so neighbouring ids and words differ. */
function patternWord(seed: number, index: number): number {
  const mixed = Math.imul(seed ^ Math.imul(index + 1, 0x9e3779b1), 0x85ebca6b);
  return (mixed ^ (mixed >>> 15)) >>> 0;
}

function seedOf(id: number): number {
  return Math.imul(id + 1, 0xc2b2ae35);
}

/** Writes `id`'s pattern over `bytes` bytes at `address` (8-aligned). */
export function signBlock(u8: Uint8Array, u32: Uint32Array, address: number, bytes: number, id: number): void {
  const seed = seedOf(id);
  const words = bytes >>> 2;
  const base = address >>> 2;
  for (let index = 0; index < words; index++) u32[base + index] = patternWord(seed, index);
  for (let at = words << 2; at < bytes; at++) u8[address + at] = (patternWord(seed, at >>> 2) >>> ((at & 3) << 3)) & 0xff;
}

/**
 * The offset of the first of `bytes` bytes at `address` that does not hold `id`'s pattern,
 * or -1 when all do.
 */
export function firstBadByte(u8: Uint8Array, u32: Uint32Array, address: number, bytes: number, id: number): number {
  const seed = seedOf(id);
  const words = bytes >>> 2;
  const base = address >>> 2;
  for (let index = 0; index < words; index++) {
    const expected = patternWord(seed, index);
    const found = u32[base + index]!;
    if (found !== expected) {
      // The first differing byte of the word (the lowest bits come first in memory).
      let at = 0;
      while (at < 3 && (((found ^ expected) >>> (at << 3)) & 0xff) === 0) at++;
      return (index << 2) + at;
    }
  }
  for (let at = words << 2; at < bytes; at++) {
    if (u8[address + at] !== ((patternWord(seed, at >>> 2) >>> ((at & 3) << 3)) & 0xff)) return at;
  }
  return -1;
}

/** The offset of the first non-zero of `bytes` bytes at `address`, or -1 when all are zero. */
export function firstNonZeroByte(u8: Uint8Array, address: number, bytes: number): number {
  for (let at = 0; at < bytes; at++) if (u8[address + at] !== 0) return at;
  return -1;
}
