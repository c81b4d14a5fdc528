/**
 * A test-side reading of a TLSF heap, written independently of `check.ts`: it derives
 * list indices with plain arithmetic (no `Math.clz32`), walks pools and lists from the
 * layout, and states the TLSF invariants as expectations. Tests use it to check the heap
 * after every step and to predict which block a search must return.
 */

import type { PoolView } from '@heaplab/core/backend';
import { expect } from 'vitest';

import {
  B_NEXT_FREE,
  B_PREV_FREE,
  B_PREV_PHYS,
  B_SIZE,
  END_SENTINEL_BYTES,
  FL_COUNT,
  FRONT_SENTINEL_BYTES,
  SL_COUNT,
  ST_FL_BITMAP,
  ST_LIST_HEADS,
  ST_SL_BITMAPS,
  USED,
} from '../src/layout.js';

/** Fails the test with `message()` unless `condition` holds. */
function holds(condition: boolean, message: () => string): void {
  if (!condition) expect.fail(message());
}

/** One block as a pool walk finds it. */
export interface WalkedBlock {
  address: number;
  size: number;
  free: boolean;
  /** The block after it (the end sentinel's address for the last block of a pool). */
  next: number;
  /** True when the next block is free. */
  nextFree: boolean;
  nextSize: number;
}

/** The list a free block of `size` bytes must be on, by the definition of the two levels. */
export function expectedList(size: number): number {
  if (size < 256) return size / 8;
  let log2 = 8;
  while (2 ** (log2 + 1) <= size) log2++;
  const width = 2 ** (log2 - 5);
  return (log2 - 7) * SL_COUNT + Math.floor((size - 2 ** log2) / width);
}

/** The smallest size on list `list`, by the same definition. */
export function expectedListMin(list: number): number {
  const fl = Math.floor(list / SL_COUNT);
  const sl = list % SL_COUNT;
  if (fl === 0) return sl * 8;
  const log2 = fl + 7;
  return 2 ** log2 + sl * 2 ** (log2 - 5);
}

/** Reads the TLSF heap whose state is at `stateOffset`, over the pools of core's table. */
export class TlsfWalk {
  constructor(
    readonly u32: Uint32Array,
    readonly stateOffset: number,
    readonly poolTable: PoolView,
  ) {}

  private state(offset: number): number {
    return this.u32[(this.stateOffset + offset) >>> 2]!;
  }

  sizeOf(b: number): number {
    const word = this.u32[(b + B_SIZE) >>> 2]!;
    return word - (word & 7);
  }

  isUsed(b: number): boolean {
    return (this.u32[(b + B_SIZE) >>> 2]! & USED) !== 0;
  }

  prevPhysOf(b: number): number {
    const word = this.u32[(b + B_PREV_PHYS) >>> 2]!;
    return word - (word & 7);
  }

  /** The TLSF pools: core's ranges with their bounds rounded in to multiples of 8. */
  pools(): { start: number; end: number }[] {
    return this.poolTable.list().map(({ start, end }) => ({ start: Math.ceil(start / 8) * 8, end: Math.floor(end / 8) * 8 }));
  }

  /** Every block of every pool, in address order within each pool. */
  blocks(): WalkedBlock[] {
    const blocks: WalkedBlock[] = [];
    for (const { start, end } of this.pools()) {
      const endSentinel = end - END_SENTINEL_BYTES;
      for (let b = start + FRONT_SENTINEL_BYTES; b < endSentinel; ) {
        const size = this.sizeOf(b);
        holds(size > 0, () => `block ${b} has size 0`);
        const next = b + size;
        const nextFree = next < endSentinel && !this.isUsed(next);
        blocks.push({ address: b, size, free: !this.isUsed(b), next, nextFree, nextSize: next < endSentinel ? this.sizeOf(next) : 0 });
        b = next;
      }
    }
    return blocks;
  }

  listHead(list: number): number {
    return this.state(ST_LIST_HEADS + list * 4);
  }

  /** The blocks on list `list`, head first (bounded, so a cycle fails instead of hanging). */
  list(list: number, bound = 1 << 20): number[] {
    const entries: number[] = [];
    for (let b = this.listHead(list); b !== 0; b = this.u32[(b + B_NEXT_FREE) >>> 2]!) {
      entries.push(b);
      if (entries.length > bound) throw new Error(`list ${list} does not end`);
    }
    return entries;
  }

  flBitmap(): number {
    return this.state(ST_FL_BITMAP);
  }

  slBitmap(fl: number): number {
    return this.state(ST_SL_BITMAPS + fl * 4);
  }

  /**
   * Expects every TLSF invariant: blocks tile each pool between its sentinels, headers and
   * predecessor links agree, no two physically adjacent blocks are free, every free block is
   * on exactly the list its size maps to (doubly linked), and a bitmap bit is set if and only
   * if its list (or second-level word) is not empty. Plain comparisons, failing with a
   * message: this runs after every step of the model tests.
   */
  expectInvariants(): void {
    const u32 = this.u32;
    const free = new Map<number, number>();
    for (const { start, end } of this.pools()) {
      holds(u32[(start + B_PREV_PHYS) >>> 2] === 0 && u32[(start + B_SIZE) >>> 2] === (FRONT_SENTINEL_BYTES | USED), () => `front sentinel of pool ${start}`);
      const endSentinel = end - END_SENTINEL_BYTES;
      let prev = start;
      let prevFree = false;
      let b = start + FRONT_SENTINEL_BYTES;
      while (b < endSentinel) {
        holds(this.prevPhysOf(b) === prev, () => `prevPhys of ${b} is ${this.prevPhysOf(b)}, not the block before, ${prev}`);
        const size = this.sizeOf(b);
        holds(size % 8 === 0 && size >= 16, () => `block ${b} has size ${size}`);
        const isFree = !this.isUsed(b);
        if (isFree) {
          holds(!prevFree, () => `free block ${b} right after free block ${prev}`);
          free.set(b, expectedList(size));
        }
        prevFree = isFree;
        prev = b;
        b += size;
      }
      holds(b === endSentinel, () => `pool ${start} ends its walk at ${b}, not ${endSentinel}`);
      holds(u32[(endSentinel + B_PREV_PHYS) >>> 2] === prev && u32[(endSentinel + B_SIZE) >>> 2] === USED, () => `end sentinel of pool ${start}`);
    }
    const seen = new Set<number>();
    for (let fl = 0; fl < FL_COUNT; fl++) {
      let anyList = false;
      for (let sl = 0; sl < SL_COUNT; sl++) {
        const list = fl * SL_COUNT + sl;
        let prev = 0;
        for (let b = this.listHead(list); b !== 0; b = u32[(b + B_NEXT_FREE) >>> 2]!) {
          holds(free.get(b) === list, () => `list ${list} holds ${b}, whose list is ${free.get(b)}`);
          holds(!seen.has(b), () => `${b} is on a list twice`);
          holds(u32[(b + B_PREV_FREE) >>> 2] === prev, () => `previous link of ${b} is not ${prev}`);
          seen.add(b);
          prev = b;
        }
        const bit = (this.slBitmap(fl) >>> sl) & 1;
        holds(bit === (prev !== 0 ? 1 : 0), () => `second-level bit (${fl}, ${sl}) is ${bit}; the list is ${prev === 0 ? '' : 'not '}empty`);
        anyList ||= prev !== 0;
      }
      holds(((this.flBitmap() >>> fl) & 1) === (anyList ? 1 : 0), () => `first-level bit ${fl} disagrees with its lists`);
    }
    holds(this.flBitmap() >>> FL_COUNT === 0, () => `first-level bitmap ${this.flBitmap()} has bits above level ${FL_COUNT - 1}`);
    holds(seen.size === free.size, () => `${free.size - seen.size} free blocks are on no list`);
  }

  /**
   * The block a request needing `wanted` bytes of free block must get: the head of its own
   * list when that head is big enough, else the head of the lowest non-empty list whose
   * every block is at least `wanted`; 0 when there is none.
   */
  expectedFit(wanted: number): number {
    const own = expectedList(wanted);
    const head = this.listHead(own);
    if (head !== 0 && this.sizeOf(head) >= wanted) return head;
    for (let list = own; list < FL_COUNT * SL_COUNT; list++) {
      if (expectedListMin(list) >= wanted && this.listHead(list) !== 0) return this.listHead(list);
    }
    return 0;
  }
}
