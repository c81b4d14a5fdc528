/**
 * Deciding whether an address is the payload of a live block, before any header is trusted.
 *
 * The header is two words (prevPhys and size) and has no room for a tag word like basic's,
 * and adding one would cost 8 bytes per block (a third of a minimum block), so the check is
 * structural: a live block must be consistent with both physical neighbours. Every header a
 * block ever had stops looking live when the block stops being live: `release` clears the
 * USED bit of a header that disappears inside a merged block (whose next block no longer
 * points back at it either), and headers absorbed by a split, a merge or an in-place resize
 * belong to free blocks, whose USED bit is clear. So the only words that pass are real live
 * headers, or user data forged on purpose to mimic one: random data must hit the USED bit, a
 * sane size, and two exact 29-bit address matches.
 */

import { B_PREV_PHYS, B_SIZE, EXTENDED_SLACK, HEADER_BYTES, MAX_SLACK, MIN_BLOCK_BYTES, USED, addressOfWord, sizeOfWord, slackOfWords } from './layout.js';

/**
 * The block whose payload is at `address` when it is live, else 0 (never a block). It is
 * live when all of these hold:
 * - `address` is an 8-aligned u32 whose header lies in the arena after some front sentinel;
 * - the size word has USED set, the size is at least a minimum block, and the next header
 *   fits in the arena;
 * - the next block's prevPhys points back at this block (a sentinel's does too);
 * - the previous block (by prevPhys, a front sentinel for a pool's first block) lies before
 *   it in the arena and its size ends exactly here;
 * - the slack is at most MAX_SLACK and the usable size, or the slack field is EXTENDED (the
 *   block's trailer, checked by the callers that read it, holds the slack).
 */
export function findLiveBlock(u32: Uint32Array, address: number, arenaStart: number, arenaEnd: number): number {
  if (address >>> 0 !== address || (address & 7) !== 0) return 0;
  const b = address - HEADER_BYTES;
  if (b < arenaStart + HEADER_BYTES || address > arenaEnd) return 0;
  const sizeWord = u32[(b + B_SIZE) >>> 2]!;
  const size = sizeOfWord(sizeWord);
  const next = b + size;
  if ((sizeWord & USED) === 0 || size < MIN_BLOCK_BYTES || next + HEADER_BYTES > arenaEnd) return 0;
  if (addressOfWord(u32[(next + B_PREV_PHYS) >>> 2]!) !== b) return 0;
  const prevWord = u32[(b + B_PREV_PHYS) >>> 2]!;
  const prev = addressOfWord(prevWord);
  if (prev < arenaStart || prev >= b) return 0;
  if (prev + sizeOfWord(u32[(prev + B_SIZE) >>> 2]!) !== b) return 0;
  const slack = slackOfWords(prevWord, sizeWord);
  if ((slack > MAX_SLACK || slack > size - HEADER_BYTES) && slack !== EXTENDED_SLACK) return 0;
  return b;
}
