/**
 * The object caches: one per size class, each a set of slabs on three lists (partial, full,
 * empty), and the page layer they draw slabs from. Layouts are in slab-layout.ts.
 *
 * Invariants kept here:
 * - A slab's free count equals the set bits of its bitmap, and no bitmap word below its hint
 *   has a free bit: allocation takes the lowest free bit at or above the hint and moves the
 *   hint there; a free lowers the hint to the freed object's word.
 * - A slab is on the list its fill state names: it moves to the full list when its last
 *   free object is taken, back to the partial list when one is freed, and off the partial
 *   list when its last live object is freed.
 * - A class caches at most `emptySlabs` empty slabs; further emptied slabs go back to the
 *   page allocator at once, and cached ones when a page request would otherwise fail.
 */

import { AllocError, type BitmapPageAllocator, hex, PAGE_SIZE } from '@heaplab/core';

import type { PageMap } from './page-map.js';
import {
  CLASS_BITMAP_WORDS,
  CLASS_COUNT,
  CLASS_HEADER_OFFSET,
  CLASS_OBJECTS,
  CLASS_PAGES,
  CLASS_SIZE,
} from './size-classes.js';
import {
  CL_LIVE,
  CLASS_RECORD_WORDS,
  OWNER_CLASS_SHIFT,
  ownerClass,
  ownerStart,
  PAGE_SLAB,
  SH_BITMAP,
  SH_FREE,
  SH_HINT,
  SH_TAG,
  SlabList,
  slabTag,
} from './slab-layout.js';
import { SlabLists } from './slab-lists.js';

const HINT = SH_HINT >>> 2;
const FREE = SH_FREE >>> 2;
const BITMAP = SH_BITMAP >>> 2;
const LIVE = CL_LIVE >>> 2;
const PARTIAL = SlabList.partial;
const FULL = SlabList.full;
const EMPTY = SlabList.empty;

/** The error for an address that is not the start of a live block. */
export function notAllocated(address: number): AllocError {
  return new AllocError(
    'NotAllocated',
    `${hex(address)} is not the start of a live block (double free, interior pointer, or never allocated)`,
  );
}

/** Word indices of the control-state fields the caches keep. */
export interface CacheStateWords {
  /** The first class record. */
  classes: number;
  /** Slabs in existence. */
  slabs: number;
  /** Pages those slabs take. */
  slabPages: number;
}

/** The size-class caches of one slab heap, as one thread sees them. */
export class SlabCaches {
  readonly lists: SlabLists;
  /** Empty slabs each class keeps (the `emptySlabs` option). */
  readonly emptySlabs: number;
  private readonly u32: Uint32Array;
  private readonly map: PageMap;
  private readonly pages: BitmapPageAllocator;
  private readonly cookie: number;
  private readonly sClasses: number;
  private readonly sSlabs: number;
  private readonly sSlabPages: number;

  constructor(
    u32: Uint32Array,
    map: PageMap,
    pages: BitmapPageAllocator,
    words: CacheStateWords,
    cookie: number,
    emptySlabs: number,
  ) {
    this.u32 = u32;
    this.map = map;
    this.pages = pages;
    this.cookie = cookie;
    this.emptySlabs = emptySlabs;
    this.sClasses = words.classes;
    this.sSlabs = words.slabs;
    this.sSlabPages = words.slabPages;
    this.lists = new SlabLists(u32, words.classes);
  }

  /** An object of class `cls`, or 0 when no slab can be had. */
  allocate(cls: number): number {
    const u32 = this.u32;
    let slab = this.lists.head(cls, PARTIAL);
    if (slab === 0) {
      slab = this.refill(cls);
      if (slab === 0) return 0;
    }
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    const bitmap = header + BITMAP;
    let word = u32[header + HINT]!;
    let bits = u32[bitmap + word]!;
    while (bits === 0) {
      if (++word >= CLASS_BITMAP_WORDS[cls]!) throw this.noFreeBit(slab, cls);
      bits = u32[bitmap + word]!;
    }
    u32[header + HINT] = word;
    u32[bitmap + word] = bits & (bits - 1);
    const free = u32[header + FREE]! - 1;
    u32[header + FREE] = free;
    if (free === 0) this.lists.move(cls, PARTIAL, FULL, slab);
    u32[this.sClasses + cls * CLASS_RECORD_WORDS + LIVE]!++;
    return slab + ((word << 5) + (31 - Math.clz32(bits & -bits))) * CLASS_SIZE[cls]!;
  }

  /**
   * Frees the object at `address`, in the slab that the page owner word `owner` names, and
   * returns its size. An emptied slab is cached or given back.
   * @throws AllocError `NotAllocated` when `address` is not a live object of that slab
   */
  release(address: number, owner: number): number {
    const u32 = this.u32;
    const cls = ownerClass(owner);
    const slab = ownerStart(owner);
    const index = this.liveObjectIndex(address, slab, cls);
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    const word = index >>> 5;
    u32[header + BITMAP + word] = u32[header + BITMAP + word]! | (1 << (index & 31));
    if (word < u32[header + HINT]!) u32[header + HINT] = word;
    const free = u32[header + FREE]! + 1;
    u32[header + FREE] = free;
    if (free === 1) this.lists.move(cls, FULL, PARTIAL, slab);
    if (free === CLASS_OBJECTS[cls]!) this.retire(cls, slab);
    u32[this.sClasses + cls * CLASS_RECORD_WORDS + LIVE]!--;
    return CLASS_SIZE[cls]!;
  }

  /**
   * The size of the live object at `address` in the slab `owner` names.
   * @throws AllocError `NotAllocated` when `address` is not a live object of that slab
   */
  objectSize(address: number, owner: number): number {
    const cls = ownerClass(owner);
    this.liveObjectIndex(address, ownerStart(owner), cls);
    return CLASS_SIZE[cls]!;
  }

  /**
   * `count` pages at a multiple of `alignBytes` from the page allocator, giving it the
   * cached empty slabs back first when that is what it takes; 0 when no run fits.
   */
  takePages(count: number, alignBytes: number): number {
    const pages = this.pages;
    if (count > pages.availablePages()) {
      if (count > pages.availablePages() + this.cachedEmptyPages()) return 0;
      this.releaseEmptySlabs();
    }
    let start = this.tryAllocPages(count, alignBytes);
    // Enough pages may be free but not in one run; cached slabs may join them into one.
    if (start === 0 && this.releaseEmptySlabs() > 0) start = this.tryAllocPages(count, alignBytes);
    return start;
  }

  /** Gives every cached empty slab's pages back to the page allocator; returns how many. */
  releaseEmptySlabs(): number {
    let released = 0;
    for (let cls = 0; cls < CLASS_COUNT; cls++) {
      for (let slab = this.lists.head(cls, EMPTY); slab !== 0; slab = this.lists.head(cls, EMPTY)) {
        this.lists.remove(cls, EMPTY, slab);
        this.freeSlab(cls, slab);
        released += CLASS_PAGES[cls]!;
      }
    }
    return released;
  }

  /** Pages held by cached empty slabs. */
  cachedEmptyPages(): number {
    let pages = 0;
    for (let cls = 0; cls < CLASS_COUNT; cls++) pages += this.lists.count(cls, EMPTY) * CLASS_PAGES[cls]!;
    return pages;
  }

  /** A slab with a free object for class `cls`: a cached empty one, else a new one; 0 when none. */
  private refill(cls: number): number {
    const cached = this.lists.head(cls, EMPTY);
    if (cached !== 0) {
      this.lists.move(cls, EMPTY, PARTIAL, cached);
      return cached;
    }
    const pages = CLASS_PAGES[cls]!;
    const slab = this.takePages(pages, PAGE_SIZE);
    if (slab === 0) return 0;
    this.map.markRun(slab, pages, slab + ((cls << OWNER_CLASS_SHIFT) | PAGE_SLAB));
    const u32 = this.u32;
    const objects = CLASS_OBJECTS[cls]!;
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    const words = CLASS_BITMAP_WORDS[cls]!;
    u32[header + (SH_TAG >>> 2)] = slabTag(slab, this.cookie);
    u32[header + FREE] = objects;
    u32[header + HINT] = 0;
    u32.fill(0xffff_ffff, header + BITMAP, header + BITMAP + words);
    // Bits at and beyond `objects` stay clear, so a search never finds an object past the end.
    const tail = objects & 31;
    if (tail !== 0) u32[header + BITMAP + words - 1] = (1 << tail) - 1;
    this.lists.push(cls, PARTIAL, slab);
    u32[this.sSlabs]!++;
    u32[this.sSlabPages] = u32[this.sSlabPages]! + pages;
    return slab;
  }

  /** Takes an emptied slab off the partial list: cached on the empty list, or given back. */
  private retire(cls: number, slab: number): void {
    const lists = this.lists;
    lists.remove(cls, PARTIAL, slab);
    if (lists.count(cls, EMPTY) < this.emptySlabs) lists.push(cls, EMPTY, slab);
    else this.freeSlab(cls, slab);
  }

  private freeSlab(cls: number, slab: number): void {
    const pages = CLASS_PAGES[cls]!;
    this.map.markFree(slab, slab + pages * PAGE_SIZE);
    this.pages.deallocPages(slab, pages);
    const u32 = this.u32;
    u32[this.sSlabs]!--;
    u32[this.sSlabPages] = u32[this.sSlabPages]! - pages;
  }

  /**
   * The page allocator reports a run it cannot find by throwing; here, on the way to
   * running out of memory and never on the hot path, that becomes 0.
   */
  private tryAllocPages(count: number, alignBytes: number): number {
    try {
      return this.pages.allocPages(count, alignBytes);
    } catch (error) {
      if (error instanceof AllocError && error.kind === 'NoMemory') return 0;
      throw error;
    }
  }

  /**
   * The index of the live object at `address` in `slab` of class `cls`: the address must be
   * an object boundary below the header, and its free bit must be clear.
   * @throws AllocError `NotAllocated` otherwise
   */
  private liveObjectIndex(address: number, slab: number, cls: number): number {
    const offset = address - slab;
    const objectSize = CLASS_SIZE[cls]!;
    const index = offset / objectSize;
    if (offset % objectSize !== 0 || index >= CLASS_OBJECTS[cls]!) throw notAllocated(address);
    const bits = this.u32[((slab + CLASS_HEADER_OFFSET[cls]!) >>> 2) + BITMAP + (index >>> 5)]!;
    if ((bits & (1 << (index & 31))) !== 0) throw notAllocated(address);
    return index;
  }

  private noFreeBit(slab: number, cls: number): AllocError {
    return new AllocError(
      'HeapCorrupted',
      `slab heap: slab ${hex(slab)} (class ${CLASS_SIZE[cls]}) is on the partial list with free count ` +
        `${this.u32[((slab + CLASS_HEADER_OFFSET[cls]!) >>> 2) + FREE]} but no free bit at or above its hint`,
    );
  }
}
