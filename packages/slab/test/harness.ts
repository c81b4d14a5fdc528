/**
 * Helpers for the slab backend's own tests: a backend instance over a bare buffer, and a
 * reader of its shared state that sees every object slot and run, so tests can compare the
 * allocator's idea of each block with a model's.
 */

import type { BackendContext } from '@heaplab/core/backend';
import { BackendFixture } from '@heaplab/test-kit';

import { slabBackend } from '../src/index.js';
import type { SlabOptions } from '../src/options.js';
import { CLASS_HEADER_OFFSET, CLASS_OBJECTS, CLASS_SIZE } from '../src/size-classes.js';
import type { SlabAllocator } from '../src/slab.js';
import { OWNER_KIND_MASK, ownerClass, ownerStart, PAGE_ENTRY_WORDS, PAGE_LARGE, PAGE_SLAB, PM_RUN_PAGES, SH_BITMAP, SH_FREE, SlabList } from '../src/layout.js';

export const MiB = 1024 * 1024;
export const PAGE = 4096;

/**
 * A formatted slab backend over a fresh buffer; its pools are recorded in core's table as a
 * heap records them (`fixture.addMemory` adds one the same way).
 */
export function makeSlab(
  options: Record<string, unknown> = {},
  arenaBytes = 8 * MiB,
  initBytes = arenaBytes,
): { slab: SlabAllocator; ctx: BackendContext; fixture: BackendFixture<SlabOptions, SlabAllocator> } {
  const fixture = new BackendFixture(slabBackend, options, { arenaBytes });
  fixture.init(fixture.context.arenaStart, initBytes);
  return { slab: fixture.backend, ctx: fixture.context, fixture };
}

/** What the page map says of the page holding `address`. */
export function pageOwner(slab: SlabAllocator, address: number): { kind: number; start: number; cls: number; runPages: number } {
  const entry = slab.map.word + ((address - slab.arenaStart) >>> 12) * PAGE_ENTRY_WORDS;
  const owner = slab.u32[entry]!;
  const start = ownerStart(owner);
  const first = slab.map.word + ((start - slab.arenaStart) >>> 12) * PAGE_ENTRY_WORDS;
  return {
    kind: owner & OWNER_KIND_MASK,
    start,
    cls: ownerClass(owner),
    runPages: slab.u32[first + (PM_RUN_PAGES >>> 2)]!,
  };
}

/** Word index of the header of the slab starting at `start`, of class `cls`. */
export function headerWord(start: number, cls: number): number {
  return (start + CLASS_HEADER_OFFSET[cls]!) >>> 2;
}

/** Every block the allocator holds, and whether it is live, read from shared memory alone. */
export interface BlockCensus {
  /** Start of every live object or run, with its usable size. */
  live: Map<number, number>;
  /** Free object slots, by address. */
  freeSlots: Set<number>;
  /** Slabs by class index. */
  slabsPerClass: number[];
  /** Empty slabs by class index. */
  emptyPerClass: number[];
}

/** Walks the page map and every slab bitmap: each slot is counted live or free, never both. */
export function census(slab: SlabAllocator): BlockCensus {
  const u32 = slab.u32;
  const result: BlockCensus = {
    live: new Map(),
    freeSlots: new Set(),
    slabsPerClass: new Array<number>(CLASS_SIZE.length).fill(0),
    emptyPerClass: new Array<number>(CLASS_SIZE.length).fill(0),
  };
  for (let page = 0; page < slab.map.pages; ) {
    const entry = slab.map.word + page * PAGE_ENTRY_WORDS;
    const owner = u32[entry]!;
    const kind = owner & OWNER_KIND_MASK;
    const length = Math.max(1, u32[entry + (PM_RUN_PAGES >>> 2)]!);
    const start = slab.arenaStart + page * PAGE;
    if (kind === PAGE_LARGE) result.live.set(start, length * PAGE);
    if (kind === PAGE_SLAB) {
      const cls = ownerClass(owner);
      const header = headerWord(start, cls);
      result.slabsPerClass[cls]!++;
      if (u32[header + (SH_FREE >>> 2)] === CLASS_OBJECTS[cls]) result.emptyPerClass[cls]!++;
      for (let index = 0; index < CLASS_OBJECTS[cls]!; index++) {
        const free = (u32[header + (SH_BITMAP >>> 2) + (index >>> 5)]! & (1 << (index & 31))) !== 0;
        const address = start + index * CLASS_SIZE[cls]!;
        if (free) result.freeSlots.add(address);
        else result.live.set(address, CLASS_SIZE[cls]!);
      }
    }
    page += kind === PAGE_LARGE || kind === PAGE_SLAB ? length : 1;
  }
  return result;
}

/** Slabs on each list of class `cls`, as the list length words say. */
export function listCounts(slab: SlabAllocator, cls: number): { partial: number; full: number; empty: number } {
  return {
    partial: slab.caches.lists.count(cls, SlabList.partial),
    full: slab.caches.lists.count(cls, SlabList.full),
    empty: slab.caches.lists.count(cls, SlabList.empty),
  };
}
