/**
 * Refill runs of the buddy heap (`Backend.allocateRun` in core's contract.ts, for core's
 * thread cache: docs/thread-cache.md, "Refill runs"): `count` blocks of one size, one after
 * another in address order, on cache lines that no other block shares.
 *
 * Buddy blocks are powers of two aligned to their size, so a run is one free block, the
 * region, cut into blocks of the size's order from its start:
 * - The region is found with one look at the non-empty mask: the smallest free block that
 *   holds the whole run (the placement `allocate` uses), else the largest free block of at
 *   least a line, which holds fewer blocks. A region starts on a line (it is aligned to its
 *   size, at least `RUN_LINE_BYTES`).
 * - Blocks of a line or more cover whole lines by themselves. Blocks under a line (16 and 32
 *   bytes) are carved in line-fulls: the count is rounded down to whole lines, so the run
 *   stops at a line boundary and the rest of the region stays free on lines of its own. A
 *   count below one line-full gives no run (0: the cache falls back to `allocate`). No block
 *   takes slack: each is the block `allocate(size, 8)` gives, with the same order, digits
 *   and requested size.
 * - Each block is taken from the region's free remainder as `allocate` takes a list's head
 *   (`BuddyBlocks.takeBytesAt`: the free block at the run's next address is split down, its
 *   upper halves freed, its start entry commits), counted, and handed to `take` before the
 *   next one is carved. Cut from a block of order f aligned to 2^f, the free block at
 *   `region + i * 2^k` (i > 0) is the order-(k + ctz i) half the earlier splits left there, so
 *   no list is searched: the map says where every block is.
 *
 * Between two blocks the heap is one that `allocate` calls could have left (the blocks made
 * are live and counted, the rest of the region is free, maximal and listed), so a `take` that
 * throws needs nothing undone. A death inside a carve is a death inside an `allocate`'s take
 * (see "What a dead thread leaves" in `layout.ts`): recovery rebuilds from the order map.
 */

import { hex, lowestBit } from '@heaplab/core/backend';

import type { BuddyBlocks } from './blocks.js';
import { ALIGN_BASE_LOG, corrupt, FB_MAP_START } from './layout.js';
import { MAX_ORDER, orderFor, orderForSize, RUN_LINE_ORDER } from './orders.js';

/**
 * Carves up to `count` live blocks of `size` bytes (a multiple of 8, at most
 * `TC_MAX_REQUEST`) as one run, handing each to `take` as soon as it is live and counted.
 * Returns how many it made: 0 when no free block of a line or more is left, or when `count`
 * is under one line-full of blocks smaller than a line.
 * @throws AllocError `HeapCorrupted` when the region's list head or a link a carve writes
 *   through is damaged (the blocks made before are live and taken); whatever `take` throws
 */
export function allocateBuddyRun(blocks: BuddyBlocks, size: number, count: number, take: (block: number) => void): number {
  const order = orderFor(size, ALIGN_BASE_LOG);
  const perLine = 2 ** Math.max(0, RUN_LINE_ORDER - order);
  let made = Math.min(count - (count % perLine), 2 ** (MAX_ORDER - order));
  if (made <= 0) return 0;
  const lists = blocks.lists;
  let found = lists.smallestAtLeast(orderForSize(made * 2 ** order));
  if (found < 0) {
    // No block holds the whole run: the largest one holds fewer blocks, a multiple of a line-full.
    found = lists.largest();
    if (found < Math.max(order, RUN_LINE_ORDER)) return 0;
    made = 2 ** (found - order);
  }
  const region = blocks.checkedHead(found);
  const mapStart = blocks.u32[(region + FB_MAP_START) >>> 2]!;
  const bytes = 2 ** order;
  const slack = bytes - size;
  for (let index = 0; index < made; index++) {
    const block = region + index * bytes;
    const from = index === 0 ? found : order + lowestBit(index);
    // The half an earlier carve left here; checked as a list head is before it is written through.
    if (index > 0 && !blocks.isFreeBlock(block, from)) {
      throw corrupt(`refill run at ${hex(region)}: ${hex(block)} is not the free block of order ${from} its carve left there`);
    }
    blocks.takeBytesAt(block, from, order, slack, ALIGN_BASE_LOG, mapStart);
    // Blocks have no header: what a block takes is what it grants (as `allocate` counts).
    blocks.counters.allocated(bytes, size, bytes);
    take(block);
  }
  return made;
}
