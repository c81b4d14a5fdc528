/**
 * The TLSF backend's heap walk and per-class statistics (issue #15). Each pool of core's
 * table is walked block by block from its front sentinel, as check() walks it, and reported
 * region by region:
 *
 * ```text
 *  pool [start, end)
 *  |pad|front|hdr| live (usable) |hdr| free (fl 3 sl 17) |hdr| live |trl|...|end|pad|
 *   ^ header: the 8-byte rounding of the pool's bounds      metadata: sentinels ^
 *        ^ metadata: front sentinel   ^ header: each block's prevPhys and size words
 *                                                  header: an over-aligned block's trailer ^
 * ```
 *
 * A live region spans the usable bytes (`usableSize`: size - 8, less the 8-byte trailer of
 * an over-aligned block) and carries the requested size its slack gives; a free region spans
 * the free block past its header (links included), with the list it is on as its detail.
 *
 * The free lists are read first, every link checked before it is followed and the total
 * bounded by the free-block count, and the pools' free blocks must be exactly the listed
 * ones, each on the list its size maps to: a damaged chain becomes `HeapCorrupted`. The block
 * walk moves forward by at least `MIN_BLOCK_BYTES` a step and stops at each end sentinel.
 */

import type { HeapRegion, StatsTable } from '@heaplab/core';
import { hex, popcount } from '@heaplab/core/backend';

import { expectListedCount, listName, readFreeLists } from './check.js';
import { checker } from './errors.js';
import {
  addressOfWord,
  B_PREV_PHYS,
  B_SIZE,
  END_SENTINEL_BYTES,
  EXTENDED_SLACK,
  FL_COUNT,
  FRONT_SENTINEL_BYTES,
  GRANULARITY_LOG2,
  HEADER_BYTES,
  type HeapView,
  MAX_SLACK,
  MIN_BLOCK_BYTES,
  MIN_POOL_BYTES,
  poolBounds,
  SL_COUNT,
  SL_COUNT_LOG2,
  sizeOfWord,
  slackOfWords,
  T_INFO_FROM_END,
  TRAILER_ALIGN_MASK,
  TRAILER_ALIGN_SHIFT,
  TRAILER_BYTES,
  TRAILER_SLACK_MASK,
  trailerValid,
  USED,
} from './layout.js';
import { listMinSize } from './size-classes.js';

/** The pools of core's table, TLSF-rounded, in address order (the walk reports in order). */
function poolsInOrder(heap: HeapView): { start: number; end: number; rawStart: number; rawEnd: number; index: number }[] {
  return heap.pools.inAddressOrder().map(({ index, start, end }) => ({ ...poolBounds(start, end), rawStart: start, rawEnd: end, index }));
}

/**
 * Reports every region of every pool to `visit`, in address order.
 * @throws AllocError `HeapCorrupted` for a damaged header, trailer, sentinel, list or bitmap
 */
export function walkTlsfHeap(heap: HeapView, visit: (region: HeapRegion) => void): void {
  const u32 = heap.u32;
  const listed = readFreeLists(heap);
  expectListedCount(heap, listed);
  let seenFree = 0;
  for (const pool of poolsInOrder(heap)) {
    const { start, end, index } = pool;
    if (pool.rawStart < heap.arenaStart || pool.rawEnd > heap.arenaEnd || end - start < MIN_POOL_BYTES) {
      throw checker.corrupt(`walk: pool ${index} ${hex(pool.rawStart)}..${hex(pool.rawEnd)} is outside the arena or too small`);
    }
    if (start > pool.rawStart) visit({ address: pool.rawStart, bytes: start - pool.rawStart, kind: 'header', detail: 'pool start padding (8-byte rounding)' });
    if (u32[(start + B_PREV_PHYS) >>> 2] !== 0 || u32[(start + B_SIZE) >>> 2] !== (FRONT_SENTINEL_BYTES | USED)) {
      throw checker.corrupt(`walk: pool ${index}: the front sentinel at ${hex(start)} is damaged`);
    }
    visit({ address: start, bytes: FRONT_SENTINEL_BYTES, kind: 'metadata', detail: `pool ${index} front sentinel` });
    const endSentinel = end - END_SENTINEL_BYTES;
    let prev = start;
    let b = start + FRONT_SENTINEL_BYTES;
    while (b < endSentinel) {
      const prevWord = u32[(b + B_PREV_PHYS) >>> 2]!;
      const sizeWord = u32[(b + B_SIZE) >>> 2]!;
      const size = sizeOfWord(sizeWord);
      const where = `walk: block ${hex(b)} (pool ${index})`;
      if (size < MIN_BLOCK_BYTES || b + size > endSentinel) {
        throw checker.corrupt(`${where}: size ${size} is below the minimum block or runs past the end sentinel at ${hex(endSentinel)}`);
      }
      if (addressOfWord(prevWord) !== prev) throw checker.corrupt(`${where}: prevPhys ${hex(addressOfWord(prevWord))} should be ${hex(prev)}`);
      if ((sizeWord & USED) !== 0) {
        const slack = slackOfWords(prevWord, sizeWord);
        visit({ address: b, bytes: HEADER_BYTES, kind: 'header', detail: 'block header (prevPhys, size, slack)' });
        if (slack === EXTENDED_SLACK) {
          const trailer = size >= MIN_BLOCK_BYTES + TRAILER_BYTES ? u32[(b + size - T_INFO_FROM_END) >>> 2]! : 0;
          if (!trailerValid(trailer, b, size)) throw checker.corrupt(`${where}: over-aligned block has a damaged trailer ${hex(trailer)}`);
          const usable = size - HEADER_BYTES - TRAILER_BYTES;
          const alignLog2 = (trailer >>> TRAILER_ALIGN_SHIFT) & TRAILER_ALIGN_MASK;
          // Alignment 8 in a trailer: the last block of a refill run, padded to its line's end.
          const padded = alignLog2 === GRANULARITY_LOG2;
          visit({
            address: b + HEADER_BYTES,
            bytes: usable,
            kind: 'live',
            requested: usable - (trailer & TRAILER_SLACK_MASK),
            detail: padded ? `${size} B block, padded to a line's end` : `${size} B block, aligned to ${2 ** alignLog2}`,
          });
          visit({ address: b + size - TRAILER_BYTES, bytes: TRAILER_BYTES, kind: 'header', detail: padded ? 'slack trailer' : 'alignment trailer' });
        } else {
          const usable = size - HEADER_BYTES;
          if (slack > MAX_SLACK || slack > usable) throw checker.corrupt(`${where}: slack ${slack} exceeds ${MAX_SLACK} or the usable size ${usable}`);
          visit({ address: b + HEADER_BYTES, bytes: usable, kind: 'live', requested: usable - slack, detail: `${size} B block` });
        }
      } else {
        const list = listed.blocks.get(b);
        if (list === undefined) throw checker.corrupt(`${where}: free block of ${size} bytes is on no free list`);
        seenFree++;
        visit({ address: b, bytes: HEADER_BYTES, kind: 'header', detail: 'block header (prevPhys, size)' });
        visit({ address: b + HEADER_BYTES, bytes: size - HEADER_BYTES, kind: 'free', detail: `${size} B free block, list ${listName(list)}` });
      }
      prev = b;
      b += size;
    }
    if (b !== endSentinel) throw checker.corrupt(`walk: pool ${index}: the block walk ends at ${hex(b)}, not at the end sentinel ${hex(endSentinel)}`);
    if (u32[(endSentinel + B_SIZE) >>> 2] !== USED) throw checker.corrupt(`walk: pool ${index}: the end sentinel at ${hex(endSentinel)} is damaged`);
    visit({ address: endSentinel, bytes: END_SENTINEL_BYTES, kind: 'metadata', detail: `pool ${index} end sentinel` });
    if (pool.rawEnd > end) visit({ address: end, bytes: pool.rawEnd - end, kind: 'header', detail: 'pool end padding (8-byte rounding)' });
  }
  if (seenFree !== listed.blocks.size) {
    throw checker.corrupt(`walk: the free lists hold ${listed.blocks.size} blocks but the pools hold ${seenFree} free blocks`);
  }
}

/** `word` in binary, `digits` wide, most significant bit first. */
function binary(word: number, digits: number): string {
  return (word >>> 0).toString(2).padStart(digits, '0');
}

/**
 * TLSF's tables: every occupied free list (its levels, the block sizes it holds, its blocks
 * and bytes), and the bitmaps that find them (the first level, and each occupied second level).
 * @throws AllocError `HeapCorrupted` for a damaged list or bitmap
 */
export function tlsfClassStats(heap: HeapView): StatsTable[] {
  const listed = readFreeLists(heap);
  expectListedCount(heap, listed);
  const lists: StatsTable = {
    name: 'lists',
    description: 'each occupied free list: its first and second level, the block sizes it holds (header included), its blocks and bytes',
    columns: [
      { key: 'fl', label: 'fl' },
      { key: 'sl', label: 'sl' },
      { key: 'range', label: 'sizes' },
      { key: 'blocks', label: 'blocks' },
      { key: 'bytes', label: 'bytes' },
    ],
    rows: listed.lists.map(({ fl, sl, blocks, bytes }) => {
      const list = (fl << SL_COUNT_LOG2) | sl;
      const low = listMinSize(list);
      // Level 0 lists hold one size each; above, a list's sizes end where the next list's begin
      // (the last list ends at 4 GiB).
      const high = list + 1 < FL_COUNT * SL_COUNT ? listMinSize(list + 1) - 1 : 2 ** 32 - 1;
      return { fl, sl, range: fl === 0 ? `${low} B` : `${low}-${high} B`, blocks, bytes };
    }),
  };
  const bitmapRows: Record<string, number | string>[] = [{ bitmap: 'first level', bits: binary(listed.flBitmap, FL_COUNT), set: popcount(listed.flBitmap) }];
  for (const [fl, word] of listed.slBitmaps.entries()) {
    if (word !== 0) bitmapRows.push({ bitmap: `second level ${fl}`, bits: binary(word, SL_COUNT), set: popcount(word) });
  }
  const bitmaps: StatsTable = {
    name: 'bitmaps',
    description:
      'the first-level bitmap (bit f: some list of level f is occupied) and each occupied second-level bitmap (bit s: list (f, s) is occupied), most significant bit first',
    columns: [
      { key: 'bitmap', label: 'bitmap' },
      { key: 'bits', label: 'bits' },
      { key: 'set', label: 'set' },
    ],
    rows: bitmapRows,
  };
  return [lists, bitmaps];
}
