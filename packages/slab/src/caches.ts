/**
 * The object caches: one per size class, each a set of slabs on three lists (partial, full,
 * empty), and the page layer they draw slabs from. Layouts are in layout.ts.
 *
 * Invariants kept here:
 * - A slab's free count equals the set bits of its bitmap, and no bitmap word below its hint
 *   has a free bit: allocation takes the lowest free bit at or above the hint and moves the
 *   hint there; a free lowers the hint to the freed object's word.
 * - A free object's alignment code is 0; a live one's is the code of the alignment it was
 *   allocated with (0 for 8): allocation writes a non-zero code, a free clears it. The class
 *   record counts its live objects with a non-zero code, so a free looks at codes only while
 *   there are any (most programs never ask a small block for more than 8-byte alignment).
 * - A slab is on the list its fill state names: it moves to the full list when its last
 *   free object is taken, back to the partial list when one is freed, and off the partial
 *   list when its last live object is freed.
 * - A class caches at most `emptySlabs` empty slabs; further emptied slabs go back to the
 *   page allocator at once, and cached ones when a page request would otherwise fail.
 *
 * Every slab reached through a list head or a page's owner word is checked before it is used
 * (page aligned, with the tag of its start and class, which only a slab the page map holds
 * carries, and a free count within its objects),
 * and every bitmap scan stops at the class's bitmap words; checked mode (`ctx.checked`) also
 * verifies the whole slab an operation touches (`verifySlab`).
 */

import { AllocError, type BitmapPageAllocator, hex, PAGE_SIZE, popcount, type StateCounters } from '@heaplab/core/backend';

import type { PageMap } from './page-map.js';
import {
  CLASS_ALIGN,
  CLASS_BITMAP_WORDS,
  CLASS_CODE_BIT_SHIFT,
  CLASS_CODE_INDEX_SHIFT,
  CLASS_CODE_MASK,
  CLASS_CODE_WORD,
  CLASS_CODE_WORDS,
  CLASS_COUNT,
  CLASS_HEADER_BYTES,
  CLASS_HEADER_OFFSET,
  CLASS_OBJECTS,
  CLASS_PAGES,
  CLASS_RUN_GROUP,
  CLASS_RUN_GROUP_STARTS,
  CLASS_SIZE,
} from './size-classes.js';
import {
  alignCode,
  CL_CODED,
  CLASS_RECORD_WORDS,
  corrupt,
  notLive,
  ownerClass,
  ownerStart,
  OWNER_TAG_MASK,
  retiredTag,
  SH_BITMAP,
  SH_FREE,
  SH_HINT,
  SH_NEXT,
  SH_PREV,
  SH_TAG,
  SLAB_LIST_NAMES,
  SlabList,
  slabOwner,
  slabTag,
} from './layout.js';
import { SlabLists } from './lists.js';

const TAG = SH_TAG >>> 2;
const HINT = SH_HINT >>> 2;
const FREE = SH_FREE >>> 2;
const NEXT = SH_NEXT >>> 2;
const PREV = SH_PREV >>> 2;
const BITMAP = SH_BITMAP >>> 2;
const CODED = CL_CODED >>> 2;
const PARTIAL = SlabList.partial;
const FULL = SlabList.full;
const EMPTY = SlabList.empty;
/**
 * Partial slabs a refill run looks at (from the head of the list) for free objects in whole
 * line groups before it takes a cached empty slab or a new one: bounded, so a class whose
 * partial slabs are all fragmented costs a run a few bitmap scans, not one per slab.
 */
const RUN_SEARCH_SLABS = 4;

/** The error for damage found in slab `slab` of class `cls`; the message is built only here. */
function slabDamage(slab: number, cls: number, what: string): AllocError {
  return corrupt(`slab ${hex(slab)} (class ${CLASS_SIZE[cls]}): ${what}`);
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
  private readonly checked: boolean;
  /** Word index of the first class record. */
  private readonly sClasses: number;
  /** Core's counters: a slab's header is metadata while the slab exists. */
  private readonly counters: StateCounters;

  constructor(
    u32: Uint32Array,
    map: PageMap,
    pages: BitmapPageAllocator,
    classesWord: number,
    counters: StateCounters,
    cookie: number,
    emptySlabs: number,
    checked: boolean,
  ) {
    this.u32 = u32;
    this.map = map;
    this.pages = pages;
    this.cookie = cookie;
    this.emptySlabs = emptySlabs;
    this.checked = checked;
    this.sClasses = classesWord;
    this.counters = counters;
    this.lists = new SlabLists(u32, classesWord, cookie);
  }

  /**
   * An object of class `cls` recorded with alignment code `code` (0 for 8-byte alignment), or
   * 0 when no slab can be had.
   * @throws AllocError `HeapCorrupted` when the slab at the head of the partial list is not a
   *   whole slab of the class with a free object
   */
  allocate(cls: number, code: number): number {
    const u32 = this.u32;
    let slab = this.lists.head(cls, PARTIAL);
    if (slab === 0) {
      slab = this.refill(cls);
      if (slab === 0) return 0;
    }
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    const objects = CLASS_OBJECTS[cls]!;
    const free = u32[header + FREE]!;
    // The head is followed only once it is a slab of this class the page map holds (its
    // aligned start and its tag say so) with a free object: a damaged head or header is
    // reported, and nothing handed out.
    if ((slab & OWNER_TAG_MASK) !== 0 || u32[header + TAG] !== slabTag(slab, cls, this.cookie) || free === 0 || free > objects) {
      throw this.badSlab(cls, slab, PARTIAL);
    }
    if (this.checked) this.verifySlab(cls, slab, PARTIAL);
    const bitmap = header + BITMAP;
    const words = CLASS_BITMAP_WORDS[cls]!;
    const hint = u32[header + HINT]!;
    if (hint >= words) throw this.noFreeBit(slab, cls);
    let word = hint;
    let bits = u32[bitmap + word]!;
    while (bits === 0) {
      if (++word >= words) throw this.noFreeBit(slab, cls);
      bits = u32[bitmap + word]!;
    }
    const index = (word << 5) + (31 - Math.clz32(bits & -bits));
    if (index >= objects) throw this.noFreeBit(slab, cls);
    if (this.checked) this.verifyCode(header, cls, index, true);
    // The code before the bit: once the object is live its record is whole. (A free object
    // left with a code by a death here is put right by recovery.)
    if (code !== 0) this.setCode(header, cls, index, code);
    if (word !== hint) u32[header + HINT] = word;
    u32[bitmap + word] = bits & (bits - 1);
    u32[header + FREE] = free - 1;
    if (free === 1) this.lists.move(cls, PARTIAL, FULL, slab);
    return slab + index * CLASS_SIZE[cls]!;
  }

  /**
   * A refill run (`Backend.allocateRun`) of up to `count` objects of class `cls`, handed to
   * `take` one by one in address order, each live and counted in core's counters before its
   * `take`; returns how many. The run is whole groups (`CLASS_RUN_GROUP`: from an object on a
   * line to one that ends on a line) of free objects of one slab, so its lines hold its
   * objects alone, or it ends at the slab's last object, whose line the header holds the rest
   * of. Found in the first partial slabs with a whole free group (`RUN_SEARCH_SLABS`), else
   * from the start of a cached empty slab or a new one (`refill`), which fits any `count` of
   * at least one group. Returns 0, changing nothing, for a `count` below one group or when no
   * slab can be had.
   * @throws AllocError `HeapCorrupted` when a partial slab it looks at is damaged; whatever
   *   `take` throws, with the objects taken so far live and the rest free
   */
  allocateRun(cls: number, count: number, take: (block: number) => void): number {
    if (count < CLASS_RUN_GROUP[cls]!) return 0;
    const u32 = this.u32;
    let slab = this.lists.head(cls, PARTIAL);
    let start = -1;
    for (let searched = 0; slab !== 0 && searched < RUN_SEARCH_SLABS; searched++) {
      const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
      const free = u32[header + FREE]!;
      // Each slab met is checked as allocate checks the head: a link is followed, and its
      // bitmap read, only once its tag and free count say it is a partial slab of the class.
      if (!this.lists.isSlab(slab, cls) || free === 0 || free > CLASS_OBJECTS[cls]!) throw this.badSlab(cls, slab, PARTIAL);
      start = this.freeGroupIn(cls, header);
      if (start >= 0) break;
      slab = u32[header + NEXT]!;
    }
    if (start < 0) {
      slab = this.refill(cls);
      if (slab === 0) return 0;
      start = 0;
    }
    return this.carveRun(cls, slab, start, count, take);
  }

  /**
   * The first object of the lowest group (`CLASS_RUN_GROUP`) of the slab whose header is at
   * word `header` whose objects are all free, or -1. Groups never straddle a bitmap word, and
   * the bits past the last object are clear, so a group cut short by the header never shows.
   */
  private freeGroupIn(cls: number, header: number): number {
    const u32 = this.u32;
    const group = CLASS_RUN_GROUP[cls]!;
    if (u32[header + FREE]! < group) return -1;
    const bitmap = header + BITMAP;
    const starts = CLASS_RUN_GROUP_STARTS[cls]!;
    for (let word = u32[header + HINT]!, words = CLASS_BITMAP_WORDS[cls]!; word < words; word++) {
      // After the shifts, bit i is set when bits i to i + group - 1 all are.
      let whole = u32[bitmap + word]!;
      for (let span = 1; span < group; span <<= 1) whole &= whole >>> span;
      whole &= starts;
      if (whole !== 0) return (word << 5) + (31 - Math.clz32(whole & -whole));
    }
    return -1;
  }

  /**
   * Carves the run from object `start` (the first of a free group) of `slab`: the free
   * objects from there, at most `count`, cut back to whole groups unless they reach the
   * slab's last object. Each object goes live in one store (its bit), then its free count,
   * list and counters follow before `take` sees it, so a `take` that throws leaves a slab
   * `allocate` calls could have left; a death between the stores leaves what recovery
   * recounts from the bitmap (layout.ts).
   */
  private carveRun(cls: number, slab: number, start: number, count: number, take: (block: number) => void): number {
    const u32 = this.u32;
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    const bitmap = header + BITMAP;
    const objects = CLASS_OBJECTS[cls]!;
    if (this.checked) this.verifySlab(cls, slab, PARTIAL);
    let end = start;
    for (const limit = Math.min(objects, start + count); end < limit && (u32[bitmap + (end >>> 5)]! & (1 << (end & 31))) !== 0; ) end++;
    if (end !== objects) end -= (end - start) % CLASS_RUN_GROUP[cls]!;
    let free = u32[header + FREE]!;
    // The bitmap marks more objects free than the count says: damage, reported before a store
    // could take the count below 0.
    if (end - start > free) throw slabDamage(slab, cls, `free count ${free} but objects ${start} to ${end - 1} are free in its bitmap`);
    const size = CLASS_SIZE[cls]!;
    for (let index = start; index < end; index++) {
      if (this.checked) this.verifyCode(header, cls, index, true);
      const word = bitmap + (index >>> 5);
      u32[word] = u32[word]! & ~(1 << (index & 31));
      u32[header + FREE] = --free;
      if (free === 0) this.lists.move(cls, PARTIAL, FULL, slab);
      this.counters.allocated(size, 0, size);
      take(slab + index * size);
    }
    return end - start;
  }

  /**
   * Frees the object at `address`, in the slab that the page owner word `owner` names, and
   * returns its size. An emptied slab is cached or given back.
   * @throws AllocError `NotAllocated` when `address` is not a live object of that slab;
   *   `HeapCorrupted` when the slab is damaged
   */
  release(address: number, owner: number): number {
    // One straight run of loads and compares before the first store: the rare steps (list
    // moves, codes, checked mode, errors) are calls, so this stays small enough for the JIT
    // to inline it whole into free().
    const u32 = this.u32;
    const cls = ownerClass(owner);
    const slab = ownerStart(owner);
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    // The owner word is a link: followed only to a header that carries the tag of that start
    // and class, which only a slab the page map holds has.
    if (cls >= CLASS_COUNT || u32[header + TAG] !== slabTag(slab, cls, this.cookie)) throw this.damagedOwner(slab, cls, owner);
    const offset = address - slab;
    const size = CLASS_SIZE[cls]!;
    const index = offset / size;
    // `offset >>> 0` makes an address below the slab (damage) a huge offset, refused too.
    if (offset >>> 0 >= CLASS_HEADER_OFFSET[cls]! || offset % size !== 0) throw notLive(address);
    const bitWord = header + BITMAP + (index >>> 5);
    const bits = u32[bitWord]!;
    const bit = 1 << (index & 31);
    if ((bits & bit) !== 0) throw notLive(address);
    const objects = CLASS_OBJECTS[cls]!;
    const free = u32[header + FREE]!;
    // A slab with a live object has fewer free objects than objects.
    if (free >= objects) throw this.badSlab(cls, slab, free === 0 ? FULL : PARTIAL);
    if (this.checked) this.verifyRelease(cls, slab, header, index, free);
    // This one store frees the object; everything after it can be recomputed from the bitmap.
    u32[bitWord] = bits | bit;
    const record = this.sClasses + cls * CLASS_RECORD_WORDS;
    if (u32[record + CODED] !== 0) this.clearCode(header, cls, index, record);
    if (index >>> 5 < u32[header + HINT]!) u32[header + HINT] = index >>> 5;
    u32[header + FREE] = free + 1;
    if (free === 0 || free + 1 === objects) this.relist(cls, slab, free + 1);
    return size;
  }

  /**
   * After a free left slab `slab` of class `cls` with `free` free objects: a full slab that
   * got one goes to the partial list; one that got all goes off it (`retire`).
   */
  private relist(cls: number, slab: number, free: number): void {
    if (free === 1) this.lists.move(cls, FULL, PARTIAL, slab);
    if (free === CLASS_OBJECTS[cls]) this.retire(cls, slab);
  }

  /** Checked mode, for a free of object `index`: the whole slab, and the object's code. */
  private verifyRelease(cls: number, slab: number, header: number, index: number, free: number): void {
    this.verifySlab(cls, slab, free === 0 ? FULL : PARTIAL);
    this.verifyCode(header, cls, index, false);
  }

  /**
   * The size of the live object at `address` in the slab `owner` names.
   * @throws AllocError `NotAllocated` when `address` is not a live object of that slab;
   *   `HeapCorrupted` when the slab is damaged
   */
  objectSize(address: number, owner: number): number {
    const cls = ownerClass(owner);
    const slab = ownerStart(owner);
    this.liveObjectIndex(address, slab, cls, this.slabHeader(slab, cls, owner));
    return CLASS_SIZE[cls]!;
  }

  /**
   * The alignment code of the live object at `address` in the slab `owner` names.
   * @throws AllocError as `objectSize`
   */
  objectCode(address: number, owner: number): number {
    const cls = ownerClass(owner);
    const slab = ownerStart(owner);
    const header = this.slabHeader(slab, cls, owner);
    const index = this.liveObjectIndex(address, slab, cls, header);
    if (CLASS_CODE_MASK[cls] === 0) return 0;
    const indexShift = CLASS_CODE_INDEX_SHIFT[cls]!;
    const shift = (index & ((1 << indexShift) - 1)) << CLASS_CODE_BIT_SHIFT[cls]!;
    return (this.u32[header + CLASS_CODE_WORD[cls]! + (index >>> indexShift)]! >>> shift) & CLASS_CODE_MASK[cls]!;
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
    if (start !== 0 && this.checked && !this.map.allFree(start, count)) {
      throw corrupt(`the page allocator gave ${count} pages at ${hex(start)} that the page map does not hold free`);
    }
    return start;
  }

  /**
   * Gives every cached empty slab's pages back to the page allocator; returns how many. Each
   * list is walked at most as far as its length word says.
   * @throws AllocError `HeapCorrupted` when a cached slab is damaged or not empty, or a list
   *   and its length word disagree
   */
  releaseEmptySlabs(): number {
    let released = 0;
    for (let cls = 0; cls < CLASS_COUNT; cls++) {
      for (let left = this.lists.count(cls, EMPTY); left > 0; left--) {
        const slab = this.lists.head(cls, EMPTY);
        if (slab === 0) throw corrupt(`the empty list of class ${CLASS_SIZE[cls]} is shorter than its length word, ${left} more`);
        this.checkEmpty(cls, slab);
        this.lists.remove(cls, EMPTY, slab);
        this.freeSlab(cls, slab);
        released += CLASS_PAGES[cls]!;
      }
      if (this.lists.head(cls, EMPTY) !== 0) {
        throw corrupt(`the empty list of class ${CLASS_SIZE[cls]} is longer than its length word (a cycle?)`);
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

  /**
   * Checked mode: verifies slab `slab` of class `cls`, which the caller found on list `list`
   * (or is about to): its run in the page map, its tag, its bitmap against its free count
   * and hint, and its links (neighbours of the class that link back, or the head of `list`
   * when it has no previous one). The alignment codes are checked for the one object the
   * operation touches (`verifyCode`), so the cost stays that of a few bitmap words.
   * @throws AllocError `HeapCorrupted` naming the first thing wrong
   */
  verifySlab(cls: number, slab: number, list: number): void {
    const u32 = this.u32;
    if (!this.map.isRun(slab, CLASS_PAGES[cls]!, slabOwner(slab, cls))) {
      throw slabDamage(slab, cls, `its pages are not one run of ${CLASS_PAGES[cls]} slab pages of its class in the page map`);
    }
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    if (u32[header + TAG] !== slabTag(slab, cls, this.cookie)) throw slabDamage(slab, cls, `header tag ${hex(u32[header + TAG]!)} is wrong`);
    const objects = CLASS_OBJECTS[cls]!;
    const words = CLASS_BITMAP_WORDS[cls]!;
    const hint = u32[header + HINT]!;
    if (hint >= words) throw slabDamage(slab, cls, `bitmap hint ${hint} is past its ${words} words`);
    let set = 0;
    for (let word = 0; word < words; word++) {
      const bits = u32[header + BITMAP + word]!;
      if (objects - word * 32 < 32 && bits >>> (objects - word * 32) !== 0) {
        throw slabDamage(slab, cls, `bitmap word ${word} ${hex(bits)} marks objects past the last, ${objects - 1}`);
      }
      if (word < hint && bits !== 0) throw slabDamage(slab, cls, `bitmap word ${word} has free objects below the hint ${hint}`);
      set += popcount(bits);
    }
    const free = u32[header + FREE]!;
    if (free !== set) throw slabDamage(slab, cls, `free count ${free} but the bitmap marks ${set} objects free`);
    const offset = CLASS_HEADER_OFFSET[cls]!;
    const next = u32[header + NEXT]!;
    const prev = u32[header + PREV]!;
    if (next !== 0 && (!this.lists.isSlab(next, cls) || u32[((next + offset) >>> 2) + PREV] !== slab)) {
      throw slabDamage(slab, cls, `next link ${hex(next)} names no slab of its class linking back`);
    }
    if (prev === 0 ? this.lists.head(cls, list) !== slab : !this.lists.isSlab(prev, cls) || u32[((prev + offset) >>> 2) + NEXT] !== slab) {
      throw slabDamage(slab, cls, `previous link ${hex(prev)} is not a slab linking to it, nor is it the head of the ${SLAB_LIST_NAMES[list]} list`);
    }
  }

  /**
   * Checked mode: object `index` of the slab whose header is at word `header` has an
   * alignment code its class can give, and 0 when it is free.
   * @throws AllocError `HeapCorrupted` otherwise
   */
  private verifyCode(header: number, cls: number, index: number, isFree: boolean): void {
    const mask = CLASS_CODE_MASK[cls]!;
    if (mask === 0) return;
    const indexShift = CLASS_CODE_INDEX_SHIFT[cls]!;
    const shift = (index & ((1 << indexShift) - 1)) << CLASS_CODE_BIT_SHIFT[cls]!;
    const code = (this.u32[header + CLASS_CODE_WORD[cls]! + (index >>> indexShift)]! >>> shift) & mask;
    if (isFree ? code !== 0 : code > alignCode(CLASS_ALIGN[cls]!)) {
      throw slabDamage(((header << 2) - CLASS_HEADER_OFFSET[cls]!) >>> 0, cls, `${isFree ? 'free' : 'live'} object ${index} has alignment code ${code}`);
    }
  }

  /** A slab with a free object for class `cls`: a cached empty one, else a new one; 0 when none. */
  private refill(cls: number): number {
    const cached = this.lists.head(cls, EMPTY);
    if (cached !== 0) {
      this.checkEmpty(cls, cached);
      this.lists.move(cls, EMPTY, PARTIAL, cached);
      return cached;
    }
    const pages = CLASS_PAGES[cls]!;
    const slab = this.takePages(pages, PAGE_SIZE);
    if (slab === 0) return 0;
    const u32 = this.u32;
    const objects = CLASS_OBJECTS[cls]!;
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    const words = CLASS_BITMAP_WORDS[cls]!;
    // The header is written while the page map still says the pages are free, then the
    // owner words, the tag, and the length that publishes the run: recovery meets only slabs
    // whose header is whole, and finds the header of any slab whose tag was written.
    u32[header + FREE] = objects;
    u32[header + HINT] = 0;
    u32.fill(0xffff_ffff, header + BITMAP, header + BITMAP + words);
    // Bits at and beyond `objects` stay clear, so a search never finds an object past the end.
    const tail = objects & 31;
    if (tail !== 0) u32[header + BITMAP + words - 1] = (1 << tail) - 1;
    if (CLASS_CODE_MASK[cls] !== 0) {
      const codes = header + CLASS_CODE_WORD[cls]!;
      u32.fill(0, codes, codes + CLASS_CODE_WORDS[cls]!);
    }
    this.map.markOwners(slab, slab + pages * PAGE_SIZE, slabOwner(slab, cls));
    u32[header + TAG] = slabTag(slab, cls, this.cookie);
    this.map.setRunPages(slab, pages);
    this.lists.push(cls, PARTIAL, slab);
    this.counters.addMemory(0, CLASS_HEADER_BYTES[cls]!);
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
    // The tag is retired first, so no stale link to these pages passes for a slab; recovery
    // finishes the give-back of a published, empty slab with a retired tag.
    this.u32[((slab + CLASS_HEADER_OFFSET[cls]!) >>> 2) + TAG] = retiredTag(slab, cls, this.cookie);
    this.map.freeRun(slab, pages);
    this.pages.deallocPages(slab, pages);
    // Its header is no longer metadata (a negative amount: the slab's header goes away).
    this.counters.addMemory(0, -CLASS_HEADER_BYTES[cls]!);
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
   * The header word of the slab at `slab` of class `cls`, which the page owner word `owner`
   * names, once the header carries the tag of that start and class (as in `release`).
   * @throws AllocError `HeapCorrupted` otherwise
   */
  private slabHeader(slab: number, cls: number, owner: number): number {
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    if (cls >= CLASS_COUNT || this.u32[header + TAG] !== slabTag(slab, cls, this.cookie)) throw this.damagedOwner(slab, cls, owner);
    return header;
  }

  /**
   * The index of the live object at `address` in `slab` of class `cls`: the address must be
   * an object boundary below the header, and its free bit must be clear.
   * @throws AllocError `NotAllocated` otherwise
   */
  private liveObjectIndex(address: number, slab: number, cls: number, header: number): number {
    const offset = address - slab;
    const objectSize = CLASS_SIZE[cls]!;
    const index = offset / objectSize;
    // `offset >>> 0` makes an address below the slab (damage) a huge offset, refused too.
    if (offset >>> 0 >= CLASS_HEADER_OFFSET[cls]! || offset % objectSize !== 0) throw notLive(address);
    const bits = this.u32[header + BITMAP + (index >>> 5)]!;
    if ((bits & (1 << (index & 31))) !== 0) throw notLive(address);
    return index;
  }

  /**
   * Writes `code` as the alignment code of object `index` (still free) of the slab whose
   * header is at word `header`, and counts it in the class's coded objects.
   */
  private setCode(header: number, cls: number, index: number, code: number): void {
    const u32 = this.u32;
    const indexShift = CLASS_CODE_INDEX_SHIFT[cls]!;
    const shift = (index & ((1 << indexShift) - 1)) << CLASS_CODE_BIT_SHIFT[cls]!;
    const word = header + CLASS_CODE_WORD[cls]! + (index >>> indexShift);
    u32[word] = (u32[word]! & ~(CLASS_CODE_MASK[cls]! << shift)) | (code << shift);
    u32[this.sClasses + cls * CLASS_RECORD_WORDS + CODED]!++;
  }

  /**
   * Clears object `index`'s alignment code, if it has one, and uncounts it from the coded
   * objects of the class (whose record is at word `record`).
   */
  private clearCode(header: number, cls: number, index: number, record: number): void {
    if (CLASS_CODE_MASK[cls] === 0) return;
    const u32 = this.u32;
    const indexShift = CLASS_CODE_INDEX_SHIFT[cls]!;
    const shift = (index & ((1 << indexShift) - 1)) << CLASS_CODE_BIT_SHIFT[cls]!;
    const word = header + CLASS_CODE_WORD[cls]! + (index >>> indexShift);
    const bits = u32[word]!;
    const field = CLASS_CODE_MASK[cls]! << shift;
    if ((bits & field) === 0) return;
    u32[word] = bits & ~field;
    u32[record + CODED]!--;
  }

  /**
   * A slab taken from the empty list must be a whole slab of the class with every object
   * free (checked mode verifies the rest).
   * @throws AllocError `HeapCorrupted` otherwise
   */
  private checkEmpty(cls: number, slab: number): void {
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    if (!this.lists.isSlab(slab, cls) || this.u32[header + FREE] !== CLASS_OBJECTS[cls]) {
      throw this.badSlab(cls, slab, EMPTY);
    }
    if (this.checked) this.verifySlab(cls, slab, EMPTY);
  }

  private badSlab(cls: number, slab: number, list: number): AllocError {
    const isSlab = this.lists.isSlab(slab, cls);
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    return corrupt(
      `the ${SLAB_LIST_NAMES[list]} list of class ${CLASS_SIZE[cls]} holds ${hex(slab)}, ` +
        (isSlab
          ? `whose header is damaged (tag ${hex(this.u32[header + TAG] ?? 0)}, free count ${this.u32[header + FREE] ?? 0} of ${CLASS_OBJECTS[cls]})`
          : `which carries no tag of a slab of that class (tag ${hex(this.u32[header + TAG] ?? 0)})`),
    );
  }

  private damagedOwner(slab: number, cls: number, owner: number): AllocError {
    if (cls >= CLASS_COUNT) return corrupt(`page owner word ${hex(owner)} names the unknown class ${cls}`);
    return corrupt(
      `page owner word ${hex(owner)} names slab ${hex(slab)} of class ${CLASS_SIZE[cls]}, but its header tag ` +
        `${hex(this.u32[(slab + CLASS_HEADER_OFFSET[cls]!) >>> 2] ?? 0)} is wrong (its last object overflowed, or the word is damaged?)`,
    );
  }

  private noFreeBit(slab: number, cls: number): AllocError {
    const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
    return corrupt(
      `slab ${hex(slab)} (class ${CLASS_SIZE[cls]}) is on the partial list with free count ` +
        `${this.u32[header + FREE]} but no free object at or above its hint ${this.u32[header + HINT]} ` +
        `within its ${CLASS_OBJECTS[cls]} objects`,
    );
  }
}
