/**
 * The two-level map from block sizes to free lists, after Masmano et al.'s TLSF: the first
 * level is the power of two (found with `Math.clz32`), the second level splits it into
 * SL_COUNT equal ranges. Sizes below SMALL_BLOCK_BYTES form level 0, whose lists each hold
 * one exact size. A list index is `fl * SL_COUNT + sl`, one number, so nothing is allocated.
 *
 * Sizes here are block sizes (header included) below 2^32.
 */

import { FL_SHIFT, GRANULARITY_LOG2, SL_COUNT, SL_COUNT_LOG2, SMALL_BLOCK_BYTES } from './layout.js';

/**
 * The list a free block of `size` bytes belongs on: the list whose size range holds `size`
 * (rounding down). `size` must be at least 1 and below 2^32.
 */
export function listOf(size: number): number {
  if (size < SMALL_BLOCK_BYTES) return size >>> GRANULARITY_LOG2;
  const log2 = 31 - Math.clz32(size);
  const fl = log2 - FL_SHIFT + 1;
  // The SL_COUNT_LOG2 bits below the leading one are the second level.
  const sl = (size >>> (log2 - SL_COUNT_LOG2)) - SL_COUNT;
  return (fl << SL_COUNT_LOG2) | sl;
}

/**
 * The size a good-fit search looks up instead of `size`: rounded up to the next list
 * boundary, so every block on the list it maps to, and on every list above, is at least
 * `size`. The first non-empty list from there serves the request in constant time.
 *
 * The waste bound: a free block on `size`'s own list may be big enough yet be passed over,
 * but only one that is less than one list width (1/SL_COUNT of the power of two, at most
 * ~3.1 % of the size) above `size`; the block taken is split, so the rest is not wasted.
 * Below SMALL_BLOCK_BYTES lists are exact and nothing is passed over.
 *
 * The result may exceed 2^32 - 1 for sizes near 4 GiB; callers treat that as "no list".
 */
export function goodFitSearchSize(size: number): number {
  if (size < SMALL_BLOCK_BYTES) return size;
  // 1 << (log2 - SL_COUNT_LOG2) is the width of the lists of this power of two.
  return size + (1 << (31 - Math.clz32(size) - SL_COUNT_LOG2)) - 1;
}

/** The smallest block size of list `list` (sizes on it are at least this). */
export function listMinSize(list: number): number {
  const fl = list >>> SL_COUNT_LOG2;
  const sl = list & (SL_COUNT - 1);
  if (fl === 0) return sl << GRANULARITY_LOG2;
  // Multiplication, not a shift: the largest lists start above 2^31.
  return (SL_COUNT + sl) * 2 ** (fl + FL_SHIFT - 1 - SL_COUNT_LOG2);
}
