/**
 * Size classes (bins), as mimalloc's `_mi_bin`: one bin per word size up to 8 words, then
 * four bins per power of two, so above 64 bytes a block is less than 25 % larger than the
 * request (65 bytes get an 80-byte block), and less the nearer the request is to its bin's
 * size. A bin's block size is the largest size that maps to it.
 *
 * ```text
 *  bin   1..8   block sizes 8, 16, ..., 64           (one per 8-byte word)
 *  bin   9..12  80, 96, 112, 128                     (four per doubling from here on)
 *  bin  13..16  160, 192, 224, 256
 *  ...
 *  bin  68      2 MiB                                 (LARGE_OBJ_SIZE_MAX)
 * ```
 *
 * Page kinds follow the block size, as in mimalloc v1: at least four blocks per small or
 * medium page; blocks above 128 KiB get a whole segment (a large page); above 2 MiB a
 * request is huge and gets contiguous segments of its own.
 */

import { SEGMENT_LARGE, SEGMENT_MEDIUM, SEGMENT_SMALL } from './layout.js';

/** Blocks up to 16 KiB live in 64 KiB small pages. */
export const SMALL_OBJ_SIZE_MAX = 16 * 1024;
/** Blocks up to 128 KiB live in 512 KiB medium pages. */
export const MEDIUM_OBJ_SIZE_MAX = 128 * 1024;
/** Blocks up to 2 MiB live in large pages (a segment each); beyond is huge. */
export const LARGE_OBJ_SIZE_MAX = 2 * 1024 * 1024;

/**
 * The bin of a request of `wsize` 8-byte words, `1 <= wsize <= LARGE_OBJ_SIZE_MAX / 8`.
 * `wsize` 0 (a 0-byte request) is served as 1 by the callers.
 */
export function binOfWords(wsize: number): number {
  if (wsize <= 8) return Math.max(1, wsize);
  const w = wsize - 1;
  const b = 31 - Math.clz32(w);
  return (b << 2) + ((w >>> (b - 2)) & 3) - 3;
}

/** The bin of a request of `size` bytes, `size <= LARGE_OBJ_SIZE_MAX`. */
export function binOfSize(size: number): number {
  return binOfWords((size + 7) >>> 3);
}

/** The largest bin: 2 MiB blocks. */
export const BIN_MAX = binOfSize(LARGE_OBJ_SIZE_MAX);
/** The queue index of a heap's full-page queue, after every bin. */
export const BIN_FULL = BIN_MAX + 1;
/** Page queues per heap: bins 0..BIN_MAX (bin 0 unused) and the full queue. */
export const BIN_QUEUES = BIN_FULL + 1;

/** Block size of a bin: the largest size mapping to it. */
export function blockSizeOfBin(bin: number): number {
  if (bin <= 8) return bin * 8;
  const b = (bin + 3) >>> 2;
  const m = (bin + 3) & 3;
  return ((5 + m) << (b - 2)) * 8;
}

/** Block sizes by bin, computed once. */
export const BIN_BLOCK_SIZE: Uint32Array = (() => {
  const table = new Uint32Array(BIN_QUEUES);
  for (let bin = 1; bin <= BIN_MAX; bin++) table[bin] = blockSizeOfBin(bin);
  return table;
})();

/**
 * The block-grid test of `blockSize` (mimalloc has none: it trusts the pointer). An offset
 * `x` is a multiple of `d = odd * 2^k` (odd `odd`) exactly when `rotr(x * odd^-1, k) <=
 * floor((2^32 - 1) / d)` in 32-bit arithmetic (Hacker's Delight, 10-17): multiplying by the
 * inverse maps the multiples of `odd` onto `0..floor((2^32 - 1) / odd)` and everything else
 * above, and the rotate moves any of the `k` low bits that are set to the top. One multiply
 * instead of a division, which the free path would otherwise pay on every call.
 */
export interface BlockGrid {
  /** `odd^-1` modulo 2^32, as an int32. */
  inverse: number;
  /** `k`, the trailing zero bits of the block size. */
  shift: number;
  /** `floor((2^32 - 1) / blockSize)`, as an int32 (compare it unsigned). */
  limit: number;
}

/** The grid test's constants for `blockSize` (a positive integer below 2^32). */
export function blockGrid(blockSize: number): BlockGrid {
  const shift = 31 - Math.clz32(blockSize & -blockSize);
  const odd = blockSize >>> shift;
  // Newton's iteration doubles the correct low bits each step; odd * odd = 1 (mod 8) gives 3.
  let inverse = odd;
  for (let i = 0; i < 4; i++) inverse = Math.imul(inverse, 2 - Math.imul(odd, inverse));
  return { inverse: inverse | 0, shift, limit: Math.floor(0xffffffff / blockSize) | 0 };
}

/** Whether `offset` (a uint32) is a multiple of the block size whose grid constants are given. */
export function onBlockGrid(offset: number, inverse: number, shift: number, limit: number): boolean {
  const product = Math.imul(offset, inverse);
  return ((product >>> shift) | (product << (32 - shift))) >>> 0 <= limit >>> 0;
}

/** The segment kind whose pages hold blocks of `blockSize`. */
export function segmentKindFor(blockSize: number): number {
  if (blockSize <= SMALL_OBJ_SIZE_MAX) return SEGMENT_SMALL;
  if (blockSize <= MEDIUM_OBJ_SIZE_MAX) return SEGMENT_MEDIUM;
  return SEGMENT_LARGE;
}

/** The first word size that maps to `bin` (for updating a bin's direct-table entries). */
export function firstWordsOfBin(bin: number): number {
  return bin <= 1 ? 0 : blockSizeOfBin(bin - 1) / 8 + 1;
}

/**
 * The bin for a request of `size` bytes aligned to `align` (a power of two, 16 or more):
 * the smallest bin whose blocks hold `size` and whose block size is a multiple of `align`.
 * Pages start at a multiple of the largest power of two dividing their block size (see
 * `pageStartFor`), so every block of such a bin is aligned. Powers of two are block sizes
 * (the last bin of each doubling), so the search ends within four bins. Returns 0 when the
 * block would be larger than `LARGE_OBJ_SIZE_MAX` (a huge allocation).
 */
export function binForAligned(size: number, align: number): number {
  const want = size <= align ? align : size + ((align - (size % align)) % align);
  if (want > LARGE_OBJ_SIZE_MAX) return 0;
  let bin = binOfSize(want);
  while (BIN_BLOCK_SIZE[bin]! % align !== 0) bin++;
  return bin;
}

/** The largest power of two dividing `blockSize`, at most `limit`. */
export function naturalAlignment(blockSize: number, limit: number): number {
  const lowest = blockSize & -blockSize;
  return Math.min(lowest, limit);
}
