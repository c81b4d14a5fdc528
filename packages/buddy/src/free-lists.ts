/**
 * The per-order free lists. Each is doubly linked through the first words of its blocks
 * (`FB_NEXT`, `FB_PREV`), so a block found through the order map, a buddy about to merge,
 * leaves its list in constant time. The common buddy crates keep singly linked lists and
 * scan them for the buddy; that scan is what makes ArceOS's buddy backend take seconds on a
 * workload that frees in random order.
 *
 * A bitmask of the non-empty lists lets `smallestAtLeast` find the order to split from with
 * one `Math.clz32`, whatever the number of orders.
 *
 * Invariants kept here: list k is acyclic, its `FB_PREV` links mirror its `FB_NEXT` links,
 * its head's `FB_PREV` is 0, its length word counts its blocks, and bit k of the mask is set
 * exactly when it is not empty. The lengths are also the heap's free-block count (core's
 * counter for it is not kept, see `layout.ts`).
 *
 * These are the raw edits: they write through the links they find. `BuddyBlocks` checks
 * every link an edit will write through (and every head a push will) before the operation's
 * first store, so a corrupted link is reported instead of followed (see "Corruption" in
 * `layout.ts`).
 */

import { highestBit, lowestBit } from '@heaplab/core/backend';

import { FB_MAP_START, FB_NEXT, FB_PREV, LIST_SLOTS, ST_HEADS, ST_LENGTHS, ST_NON_EMPTY } from './layout.js';

/** The free lists of one buddy heap, over its shared control state. Not thread-safe. */
export class FreeLists {
  private readonly u32: Uint32Array;
  /** Word index of the head of order 0; order k's head is `heads + k`. */
  private readonly heads: number;
  private readonly lengths: number;
  private readonly nonEmpty: number;

  /** Binds to the lists in the control state at `stateOffset` (a multiple of 4). */
  constructor(u32: Uint32Array, stateOffset: number) {
    this.u32 = u32;
    const base = stateOffset >>> 2;
    this.heads = base + (ST_HEADS >>> 2);
    this.lengths = base + (ST_LENGTHS >>> 2);
    this.nonEmpty = base + (ST_NON_EMPTY >>> 2);
  }

  /** Puts the free block `block` of `order`, in the pool whose map starts at `mapStart`, first on its list. */
  push(block: number, order: number, mapStart: number): void {
    const u32 = this.u32;
    const head = u32[this.heads + order]!;
    u32[(block + FB_NEXT) >>> 2] = head;
    u32[(block + FB_PREV) >>> 2] = 0;
    u32[(block + FB_MAP_START) >>> 2] = mapStart;
    if (head !== 0) u32[(head + FB_PREV) >>> 2] = block;
    else u32[this.nonEmpty] = u32[this.nonEmpty]! | (1 << order);
    u32[this.heads + order] = block;
    u32[this.lengths + order] = u32[this.lengths + order]! + 1;
  }

  /** Takes `block` off the list of `order`, wherever it is on it. */
  remove(block: number, order: number): void {
    const u32 = this.u32;
    const next = u32[(block + FB_NEXT) >>> 2]!;
    const prev = u32[(block + FB_PREV) >>> 2]!;
    if (prev !== 0) u32[(prev + FB_NEXT) >>> 2] = next;
    else {
      u32[this.heads + order] = next;
      if (next === 0) u32[this.nonEmpty] = u32[this.nonEmpty]! & ~(1 << order);
    }
    if (next !== 0) u32[(next + FB_PREV) >>> 2] = prev;
    u32[this.lengths + order] = u32[this.lengths + order]! - 1;
  }

  /** The smallest order from `order` up whose list is not empty; -1 when there is none. */
  smallestAtLeast(order: number): number {
    return lowestBit(this.u32[this.nonEmpty]! & (-1 << order));
  }

  /** The largest order whose list is not empty; -1 when every list is empty. */
  largest(): number {
    return highestBit(this.u32[this.nonEmpty]!);
  }

  /** The first block of the list of `order` (0 when empty). */
  head(order: number): number {
    return this.u32[this.heads + order]!;
  }

  /** The length word of the list of `order`. */
  length(order: number): number {
    return this.u32[this.lengths + order]!;
  }

  /** Empties every list (recovery relinks them from the order map). */
  clear(): void {
    this.u32.fill(0, this.heads, this.heads + LIST_SLOTS);
    this.u32.fill(0, this.lengths, this.lengths + LIST_SLOTS);
    this.u32[this.nonEmpty] = 0;
  }

  /**
   * Puts the free block `block` of `order` last on its list, after `tail` (its current last
   * block, 0 when empty): recovery links each list in address order this way.
   */
  append(block: number, order: number, mapStart: number, tail: number): void {
    const u32 = this.u32;
    u32[(block + FB_NEXT) >>> 2] = 0;
    u32[(block + FB_PREV) >>> 2] = tail;
    u32[(block + FB_MAP_START) >>> 2] = mapStart;
    if (tail !== 0) u32[(tail + FB_NEXT) >>> 2] = block;
    else {
      u32[this.heads + order] = block;
      u32[this.nonEmpty] = u32[this.nonEmpty]! | (1 << order);
    }
    u32[this.lengths + order] = u32[this.lengths + order]! + 1;
  }

  /** The mask of non-empty lists, as stored. */
  nonEmptyMask(): number {
    return this.u32[this.nonEmpty]!;
  }

  /** Blocks on every list: the heap's free blocks. */
  total(): number {
    let blocks = 0;
    for (let order = 0; order < LIST_SLOTS; order++) blocks += this.u32[this.lengths + order]!;
    return blocks;
  }
}
