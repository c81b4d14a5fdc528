/**
 * Block orders: a block of order k is 2^k bytes at an address that is a multiple of 2^k.
 */

import { highestBit, log2, lowestBit, PAGE_SIZE } from '@heaplab/core/backend';

/** The smallest block is 16 bytes: room for the three words of a free block, 8-byte aligned. */
export const MIN_ORDER = 4;
export const MIN_BLOCK_BYTES = 1 << MIN_ORDER;

/**
 * The largest block is 1 GiB. The arena lies in [4 MiB, 4 GiB - 4 MiB), so no 2 GiB block
 * aligned to 2 GiB fits in it: 2^30 is the largest order any heap can hold, and every size
 * and address sum below stays under 2^32.
 */
export const MAX_ORDER = 30;
export const MAX_BLOCK_BYTES = 2 ** MAX_ORDER;

/** The order of one page (4 KiB): page runs are built of blocks of this order and above. */
export const PAGE_ORDER = log2(PAGE_SIZE);

/** The order of the smallest block holding `size` bytes, for `size <= MAX_BLOCK_BYTES`. */
export function orderForSize(size: number): number {
  return size <= MIN_BLOCK_BYTES ? MIN_ORDER : 32 - Math.clz32(size - 1);
}

/**
 * The order of the block for `size` bytes (`size <= MAX_BLOCK_BYTES`) aligned to
 * 2^`alignLog` (at least 8): the larger of the size's order and the alignment's, except
 * that a request of 0 or 1 byte aligned to 16 takes 32 bytes, because a 16-byte block's one
 * entry has no code for that pair (see `layout.ts`). A live block's order is always
 * this function of its recorded request and alignment, which `check()` verifies.
 */
export function orderFor(size: number, alignLog: number): number {
  const order = orderForSize(size);
  if (alignLog > order) return alignLog;
  if (alignLog === MIN_ORDER && size < 2) return MIN_ORDER + 1;
  return order;
}

/**
 * The order of the largest block that starts at `at` (not 0), is aligned to its size and
 * ends by `end`: how a pool is cut into blocks, and how a page run is.
 */
export function largestBlockAt(at: number, end: number): number {
  return Math.min(lowestBit(at), highestBit(end - at), MAX_ORDER);
}
