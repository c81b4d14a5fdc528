/**
 * A heap's delayed list (`HP_DELAYED_FREE`, mimalloc's `thread_delayed_free`): the push any
 * thread makes, and the walks that read it without taking it. Taking and freeing its blocks
 * is the owner's drain (`delayed.ts`). Every walk checks each link (it must lead to a freed
 * block of a paged segment) and stops at a cycle, so a write after free into a delayed
 * block's link is reported or ends a figure, and is never followed.
 */

import { heapCorrupted, hex } from '@heaplab/core/backend';

import type { MiContext } from './context.js';
import { pageOfBlock } from './internal.js';
import {
  BACKEND_NAME,
  BLOCK_ALIGN,
  BLOCK_MARKER,
  HP_DELAYED_FREE,
  HP_DELAYED_KEY0,
  HP_DELAYED_KEY1,
  MAP_KIND_MASK,
  PG_BLOCK_SIZE,
  PG_CAPACITY,
  PG_START,
  SEGMENT_PAGED_MAX,
} from './layout.js';
import { decodeLink, encodeLink, freedMarker } from './secure.js';

/**
 * Pushes `block` onto the delayed list of the heap record at `heap` (any thread). In secure
 * mode the link is encoded with that heap's keys.
 */
export function pushDelayed(t: MiContext, heap: number, block: number): void {
  const u32 = t.u32;
  const dw = (heap + HP_DELAYED_FREE) >>> 2;
  for (;;) {
    const head = Atomics.load(u32, dw);
    u32[block >>> 2] = t.secure ? encodeLink(head, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : head;
    if (Atomics.compareExchange(u32, dw, head, block) === head) return;
  }
}

/**
 * The next block after `block` on the delayed list of the heap at `heap`. The link (decoded
 * in secure mode) must lead to a freed block of a paged segment, or end the list: a write
 * after free into a delayed block's link is reported, never followed.
 * @throws AllocError `HeapCorrupted` for a link that does not
 */
export function delayedNext(t: MiContext, heap: number, block: number): number {
  const u32 = t.u32;
  const link = u32[block >>> 2]!;
  const next = t.secure ? decodeLink(link, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : link;
  if (next !== 0 && !isFreedBlock(t, next)) {
    throw heapCorrupted(
      BACKEND_NAME,
      `the delayed-free list of the heap at ${hex(heap)} is corrupted: the block at ${hex(block)} ` +
        `links to ${hex(next)}, which is no freed block (a write after free?)`,
    );
  }
  return next;
}

/** Whether `address` starts an extended block of a page in use that carries its freed marker. */
export function isFreedBlock(t: MiContext, address: number): boolean {
  const kind = t.mapOf(address) & MAP_KIND_MASK;
  if (kind === 0 || kind > SEGMENT_PAGED_MAX || (address & (BLOCK_ALIGN - 1)) !== 0) return false;
  const u32 = t.u32;
  const w = pageOfBlock(t, address) >>> 2;
  const blockSize = u32[w + (PG_BLOCK_SIZE >>> 2)]!;
  const at = address - u32[w + (PG_START >>> 2)]!;
  return (
    at >= 0 &&
    at < u32[w + (PG_CAPACITY >>> 2)]! * blockSize &&
    at % blockSize === 0 &&
    t.i32[(address + BLOCK_MARKER) >>> 2] === freedMarker(address, t.cookie)
  );
}

/**
 * Blocks and bytes on the delayed list of the heap at `heap`, for figures: a walk that never
 * throws, stops at a link that is no freed block of a paged segment, and stops at a cycle
 * (Brent's method, as `delayedListHas`), so a list drained meanwhile or corrupted costs a
 * bounded walk and a wrong figure.
 */
export function delayedListTotals(t: MiContext, heap: number): { blocks: number; bytes: number } {
  const u32 = t.u32;
  let blocks = 0;
  let bytes = 0;
  let at = Atomics.load(u32, (heap + HP_DELAYED_FREE) >>> 2);
  let marker = at;
  for (let steps = 1, power = 1; at !== 0 && isFreedBlock(t, at); steps++) {
    blocks++;
    bytes += u32[(pageOfBlock(t, at) + PG_BLOCK_SIZE) >>> 2]!;
    const link = u32[at >>> 2]!;
    at = t.secure ? decodeLink(link, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : link;
    if (at === marker) break;
    if (steps === power) {
      marker = at;
      power *= 2;
      steps = 0;
    }
  }
  return { blocks, bytes };
}

/**
 * Whether the delayed list of the heap at `heap` holds `block`: a walk that never throws,
 * stops at a link that is no freed block, and at a cycle (for resolvers).
 */
export function delayedListHolds(t: MiContext, heap: number, block: number): boolean {
  const u32 = t.u32;
  let at = Atomics.load(u32, (heap + HP_DELAYED_FREE) >>> 2);
  let marker = at;
  for (let steps = 1, power = 1; at !== 0 && isFreedBlock(t, at); steps++) {
    if (at === block) return true;
    const link = u32[at >>> 2]!;
    at = t.secure ? decodeLink(link, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : link;
    if (at === marker) return false;
    if (steps === power) {
      marker = at;
      power *= 2;
      steps = 0;
    }
  }
  return false;
}

/**
 * Whether this thread's delayed list holds `block`. Its length has no bound but the heap's,
 * so a cycle (a write after free into a delayed block's link) is found as Brent's method
 * does: a marker block moves to the walker at each power of two of steps, and meeting it
 * again means a cycle, within twice the list's length.
 * @throws AllocError `HeapCorrupted` when the list has a cycle, or (secure mode) a bad link
 */
export function delayedListHas(t: MiContext, block: number): boolean {
  let at = Atomics.load(t.u32, (t.heap + HP_DELAYED_FREE) >>> 2);
  let marker = at;
  for (let steps = 1, power = 1; at !== 0; steps++) {
    if (at === block) return true;
    if (at < t.arenaStart || at >= t.arenaEnd || (at & (BLOCK_ALIGN - 1)) !== 0) return false;
    at = delayedNext(t, t.heap, at);
    if (at === marker) {
      throw heapCorrupted(BACKEND_NAME, `the delayed-free list of the heap at ${hex(t.heap)} has a cycle through ${hex(at)}`);
    }
    if (steps === power) {
      marker = at;
      power *= 2;
      steps = 0;
    }
  }
  return false;
}
