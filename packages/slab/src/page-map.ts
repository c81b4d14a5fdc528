/**
 * The page map: one entry per arena page saying what the page is (layout in layout.ts).
 * It is what makes `free(address)` constant time: the page of any address names the start
 * of its slab or run, and the slab's class, in one read.
 *
 * Invariant kept here: every page of a run carries the run's owner word and run length 0,
 * except the first, which carries the length; free and unmanaged pages carry only their kind
 * (and length 0). Each change is ordered so that a thread dying between two stores leaves a
 * map that recovery reads right (see "What a dead thread leaves" in layout.ts).
 */

import { PAGE_SIZE } from '@heaplab/core/backend';

import { PAGE_ENTRY_BYTES, PAGE_ENTRY_WORDS, PAGE_FREE, PAGE_META, PAGE_SHIFT, PAGE_UNMANAGED, PM_RUN_PAGES } from './layout.js';

const RUN_PAGES = PM_RUN_PAGES >>> 2;

/** One thread's view of the page map of a slab heap. */
export class PageMap {
  private readonly u32: Uint32Array;
  private readonly arenaStart: number;
  /** Pages in the arena, and entries in the map. */
  readonly pages: number;
  /** Word index of the first entry; 0 until the map is placed. */
  private firstWord: number;

  /** Pages a map for `arenaPages` pages takes. */
  static pagesFor(arenaPages: number): number {
    return Math.ceil((arenaPages * PAGE_ENTRY_BYTES) / PAGE_SIZE);
  }

  /**
   * @param u32 the heap's word view
   * @param arenaStart the arena's first page
   * @param pages pages in the arena
   * @param mapAddress where the map is, or 0 when `place` will say
   */
  constructor(u32: Uint32Array, arenaStart: number, pages: number, mapAddress: number) {
    this.u32 = u32;
    this.arenaStart = arenaStart;
    this.pages = pages;
    this.firstWord = mapAddress >>> 2;
  }

  /** Makes the `mapPages` pages at `mapAddress` the map: itself marked, every other page unmanaged. */
  place(mapAddress: number, mapPages: number): void {
    this.firstWord = mapAddress >>> 2;
    this.u32.fill(PAGE_UNMANAGED, this.firstWord, this.firstWord + this.pages * PAGE_ENTRY_WORDS);
    this.markRun(mapAddress, mapPages, mapAddress + PAGE_META);
  }

  /** Word index of the first entry, for the walkers. */
  get word(): number {
    return this.firstWord;
  }

  /** Word index of the entry of the page holding `address` (an arena address). */
  entryWord(address: number): number {
    return this.firstWord + ((address - this.arenaStart) >>> PAGE_SHIFT) * PAGE_ENTRY_WORDS;
  }

  /** The owner word of the page holding `address`; `PAGE_UNMANAGED` outside the arena. */
  ownerOf(address: number): number {
    // An address below the arena wraps to a huge page number here, and is refused with it.
    const page = (address - this.arenaStart) >>> PAGE_SHIFT;
    return page < this.pages ? this.u32[this.firstWord + page * PAGE_ENTRY_WORDS]! : PAGE_UNMANAGED;
  }

  /** Length in pages of the run starting at `start`. */
  runPages(start: number): number {
    return this.u32[this.entryWord(start) + RUN_PAGES]!;
  }

  /** True when the `count` pages from `start` are all inside the arena and free. */
  allFree(start: number, count: number): boolean {
    const first = (start - this.arenaStart) >>> PAGE_SHIFT;
    if (first + count > this.pages) return false;
    for (let entry = this.entryWord(start), n = 0; n < count; n++, entry += PAGE_ENTRY_WORDS) {
      if (this.u32[entry] !== PAGE_FREE) return false;
    }
    return true;
  }

  /**
   * Writes `owner` into the entries of `count` pages from `start`, then the run length into
   * the first: every page carries the owner, so any address in the run leads to its start;
   * only the first carries the length, so a walk meets each run once. The length is the last
   * store, so a run whose first page has a length is marked whole (what recovery relies on);
   * the other pages' lengths are 0 already, as on every free page.
   */
  markRun(start: number, count: number, owner: number): void {
    const u32 = this.u32;
    const first = this.entryWord(start);
    const end = first + count * PAGE_ENTRY_WORDS;
    for (let entry = first; entry < end; entry += PAGE_ENTRY_WORDS) u32[entry] = owner;
    u32[first + RUN_PAGES] = count;
  }

  /**
   * Gives the `count` pages of the run at `start` back to the free kind. The first page goes
   * first, so from the first store on there is no run at `start`: the pages after it name a
   * start that is no run, which recovery frees too.
   */
  freeRun(start: number, count: number): void {
    const u32 = this.u32;
    const first = this.entryWord(start);
    const end = first + count * PAGE_ENTRY_WORDS;
    u32[first] = PAGE_FREE;
    u32[first + RUN_PAGES] = 0;
    for (let entry = first + PAGE_ENTRY_WORDS; entry < end; entry += PAGE_ENTRY_WORDS) u32[entry] = PAGE_FREE;
  }

  /** Writes the length of the run at `start`, which publishes its new size (see `markRun`). */
  setRunPages(start: number, count: number): void {
    this.u32[this.entryWord(start) + RUN_PAGES] = count;
  }

  /**
   * Writes `owner` into the entries of the pages of `[start, end)` (page aligned), leaving
   * their lengths, which are 0: pages that are unmanaged, or a run's pages after its first.
   */
  markOwners(start: number, end: number, owner: number): void {
    const u32 = this.u32;
    const last = this.entryWord(end);
    for (let entry = this.entryWord(start); entry < last; entry += PAGE_ENTRY_WORDS) u32[entry] = owner;
  }

  /** Marks the pages of `[start, end)` free; their lengths must be 0 already (see `markOwners`). */
  markFree(start: number, end: number): void {
    this.markOwners(start, end, PAGE_FREE);
  }

  /** Marks the pages of `[start, end)` (page aligned) unmanaged again, as recovery undoes an addMemory. */
  markUnmanaged(start: number, end: number): void {
    const u32 = this.u32;
    const last = this.entryWord(end);
    for (let entry = this.entryWord(start); entry < last; entry += PAGE_ENTRY_WORDS) {
      u32[entry] = PAGE_UNMANAGED;
      u32[entry + RUN_PAGES] = 0;
    }
  }

  /**
   * True when the `count` pages from `start` lie in the arena and form the run `owner` says:
   * each carries `owner`, the first carries `count` and the others 0. For checked mode.
   */
  isRun(start: number, count: number, owner: number): boolean {
    const first = (start - this.arenaStart) >>> PAGE_SHIFT;
    if (count < 1 || first + count > this.pages || this.u32[this.entryWord(start) + RUN_PAGES] !== count) return false;
    const u32 = this.u32;
    for (let entry = this.entryWord(start), n = 0; n < count; n++, entry += PAGE_ENTRY_WORDS) {
      if (u32[entry] !== owner || (n !== 0 && u32[entry + RUN_PAGES] !== 0)) return false;
    }
    return true;
  }
}
