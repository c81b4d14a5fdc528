/**
 * `check()` for the slab heap: walks the page map run by run, every slab's header, every
 * class's three lists, and compares all of it with the counters and the page allocator.
 *
 * Invariants verified (each is kept where the code that changes it lives):
 * 1. Page map: every page is unmanaged, free, or in exactly one run (the page map itself, a
 *    slab, a large run). A run's pages all carry its owner word; only its first page carries
 *    its length. Free and unmanaged pages carry no start, class or length. A slab run is its
 *    class's slab size.
 * 2. Slab: its tag matches its address and class; its bitmap has no bit at or beyond its
 *    object count; its free count equals the bitmap's set bits; no bitmap word below its hint
 *    has a free bit; free objects have alignment code 0, live ones a code the class gives.
 *    A large run's alignment code is at most that of `MAX_ALIGN`.
 * 3. Lists: each slab is on exactly one list of its class, the one its fill state names
 *    (partial: some free, full: none free, empty: all free); links agree both ways; each
 *    list's length word is its length; no class caches more than `emptySlabs` empty slabs.
 * 4. Pools: the managed pages are exactly the whole pages of the pools in core's table.
 * 5. Counters: core's total, used, granted, requested (0), live and metadata bytes, and each
 *    class's objects with alignment codes, agree with the walk; the page allocator passes
 *    its own check, manages exactly the mapped pages and has allocated exactly the page
 *    map, slab and run pages.
 */

import { alignDown, alignUp, type CheckReport, HeapChecker, hex, PAGE_SIZE, popcount } from '@heaplab/core/backend';

import type { SlabHeap } from './heap.js';

import {
  CLASS_ALIGN,
  CLASS_BITMAP_WORDS,
  CLASS_CODE_BIT_SHIFT,
  CLASS_CODE_INDEX_SHIFT,
  CLASS_CODE_MASK,
  CLASS_CODE_WORD,
  CLASS_COUNT,
  CLASS_HEADER_BYTES,
  CLASS_HEADER_OFFSET,
  CLASS_OBJECTS,
  CLASS_PAGES,
  CLASS_SIZE,
} from './size-classes.js';
import {
  alignCode,
  CL_CODED,
  CLASS_RECORD_WORDS,
  MAX_ALIGN_CODE,
  OWNER_KIND_MASK,
  ownerClass,
  ownerStart,
  PAGE_ENTRY_WORDS,
  PAGE_FREE,
  PAGE_KIND_NAMES,
  PAGE_LARGE,
  PAGE_META,
  PAGE_SLAB,
  PAGE_UNMANAGED,
  PM_RUN_PAGES,
  SH_BITMAP,
  SH_FREE,
  SH_HINT,
  SH_NEXT,
  SH_PREV,
  SH_TAG,
  SLAB_LIST_NAMES,
  SLAB_MAGIC,
  SlabList,
  slabTag,
} from './layout.js';

const RUN_PAGES = PM_RUN_PAGES >>> 2;

const checker = new HeapChecker('slab heap');

function corrupt(message: string): never {
  throw checker.corrupt(message);
}

/** What the walk learns of one slab. */
interface SlabFound {
  cls: number;
  free: number;
  listed: boolean;
}

/** What the walk learns of one slab's header. */
interface HeaderFound {
  free: number;
  /** Live objects with a non-zero alignment code. */
  coded: number;
}

/** Totals of the page-map walk. */
interface WalkTotals {
  managedPages: number;
  allocatedPages: number;
  freePages: number;
  freeRuns: number;
  largeRuns: number;
  usedBytes: number;
  /** The page map's pages and every slab's header, in bytes. */
  metadataBytes: number;
  freeObjects: number;
  freeObjectBytes: number;
  codedObjects: number[];
  slabs: Map<number, SlabFound>;
}

/**
 * Verifies every invariant of `heap` (listed at the top of this file).
 * @throws AllocError `HeapCorrupted` naming the first violation and its address
 */
export function checkSlabHeap(heap: SlabHeap): CheckReport {
  const u32 = heap.u32;
  checker.expect(u32[heap.sMagic] === SLAB_MAGIC, () => `control state at ${hex(heap.stateOffset)} is not formatted (magic ${hex(u32[heap.sMagic]!)})`);
  const pageReport = heap.pages.check();
  const walk = walkPageMap(heap);
  checkLists(heap, walk.slabs);
  checkPools(heap);

  const expect = (field: string, counter: number, actual: number): void => {
    checker.expect(counter === actual, () => `counter ${field} is ${counter} but the walk finds ${actual}`);
  };
  let liveObjects = 0;
  for (let cls = 0; cls < CLASS_COUNT; cls++) {
    const coded = u32[heap.sClasses + cls * CLASS_RECORD_WORDS + (CL_CODED >>> 2)]!;
    expect(`objects with an alignment code of class ${CLASS_SIZE[cls]}`, coded, walk.codedObjects[cls]!);
  }
  for (const slab of walk.slabs.values()) liveObjects += CLASS_OBJECTS[slab.cls]! - slab.free;
  const live = liveObjects + walk.largeRuns;
  const mismatch = heap.counters.mismatch({
    totalBytes: (walk.managedPages - u32[heap.sPageMapPages]!) * PAGE_SIZE,
    usedBytes: walk.usedBytes,
    requestedBytes: 0,
    grantedBytes: walk.usedBytes,
    liveBlocks: live,
    metadataBytes: walk.metadataBytes,
  });
  if (mismatch !== null) corrupt(`counter ${mismatch}`);
  expect("the page allocator's managed pages", pageReport.totalPages, walk.managedPages);
  expect("the page allocator's allocated pages", pageReport.usedPages, walk.allocatedPages);
  const freeBlocks = walk.freeRuns + walk.freeObjects;
  return {
    blocks: live + freeBlocks,
    liveBlocks: live,
    freeBlocks,
    usedBytes: walk.usedBytes,
    freeBytes: walk.freePages * PAGE_SIZE + walk.freeObjectBytes,
    pools: heap.pools.count(),
  };
}

/**
 * Invariant 4: walks the page map once more, pool by pool (in address order): every whole
 * page of a listed pool is managed, and no page outside them is.
 */
function checkPools(heap: SlabHeap): void {
  const pools = heap.pools.list().sort((a, b) => a.start - b.start);
  checker.expect(pools.length >= 1, 'no pool is recorded');
  let page = heap.arenaStart;
  const expectUnmanaged = (end: number): void => {
    for (; page < end; page += PAGE_SIZE) {
      const owner = heap.map.ownerOf(page);
      checker.expect(owner === PAGE_UNMANAGED, () => `page ${hex(page)} lies in no pool of core's table but has owner word ${hex(owner)}`);
    }
  };
  for (const pool of pools) {
    const first = alignUp(pool.start, PAGE_SIZE);
    const end = alignDown(pool.end, PAGE_SIZE);
    expectUnmanaged(first);
    for (; page < end; page += PAGE_SIZE) {
      checker.expect(heap.map.ownerOf(page) !== PAGE_UNMANAGED, () => `page ${hex(page)} of the pool ${hex(pool.start)}..${hex(pool.end)} is unmanaged`);
    }
  }
  expectUnmanaged(heap.arenaEnd);
}

/** Walks the page map run by run (invariants 1 and 2), collecting every slab. */
function walkPageMap(heap: SlabHeap): WalkTotals {
  const u32 = heap.u32;
  const map = heap.map.word;
  const mapAddress = u32[heap.sPageMap]!;
  const mapPages = u32[heap.sPageMapPages]!;
  if (mapAddress !== map * 4 || mapAddress < heap.arenaStart || mapAddress % PAGE_SIZE !== 0) {
    corrupt(`the page map is recorded at ${hex(mapAddress)}, which is not the page-aligned arena address ${hex(map * 4)}`);
  }
  const totals: WalkTotals = {
    managedPages: 0,
    allocatedPages: 0,
    freePages: 0,
    freeRuns: 0,
    largeRuns: 0,
    usedBytes: 0,
    metadataBytes: mapPages * PAGE_SIZE,
    freeObjects: 0,
    freeObjectBytes: 0,
    codedObjects: new Array<number>(CLASS_COUNT).fill(0),
    slabs: new Map(),
  };
  let metaRuns = 0;
  let previousKind = PAGE_UNMANAGED;
  for (let page = 0; page < heap.map.pages; ) {
    const address = heap.arenaStart + page * PAGE_SIZE;
    const entry = map + page * PAGE_ENTRY_WORDS;
    const owner = u32[entry]!;
    const length = u32[entry + RUN_PAGES]!;
    const kind = owner & OWNER_KIND_MASK;
    const where = `page ${hex(address)}`;
    if (kind === PAGE_UNMANAGED || kind === PAGE_FREE) {
      if (owner !== kind || length !== 0) {
        corrupt(`${where}: a ${PAGE_KIND_NAMES[kind]} page has owner word ${hex(owner)} and run length ${length}`);
      }
      if (kind === PAGE_FREE) {
        totals.managedPages++;
        totals.freePages++;
        if (previousKind !== PAGE_FREE) totals.freeRuns++;
      }
      previousKind = kind;
      page++;
      continue;
    }
    if (kind !== PAGE_META && kind !== PAGE_SLAB && kind !== PAGE_LARGE) {
      corrupt(`${where}: owner word ${hex(owner)} has the unknown kind ${kind}`);
    }
    // Runs are entered at their first page: anything else means a run overlaps another.
    if (ownerStart(owner) !== address) {
      corrupt(`${where} starts a ${PAGE_KIND_NAMES[kind]} run but names ${hex(ownerStart(owner))} as its start`);
    }
    if (length < 1 || page + length > heap.map.pages) {
      corrupt(`${where}: ${PAGE_KIND_NAMES[kind]} run of ${length} pages does not fit the arena`);
    }
    for (let next = 1; next < length; next++) {
      const other = entry + next * PAGE_ENTRY_WORDS;
      if (u32[other] !== owner || u32[other + RUN_PAGES] !== 0) {
        corrupt(
          `page ${hex(address + next * PAGE_SIZE)} in the run at ${hex(address)} has owner word ` +
            `${hex(u32[other]!)} and run length ${u32[other + RUN_PAGES]!}, not ${hex(owner)} and 0`,
        );
      }
    }
    totals.managedPages += length;
    totals.allocatedPages += length;
    if (kind === PAGE_META) {
      if (address !== mapAddress || length !== mapPages || ++metaRuns > 1) {
        corrupt(`${where}: a metadata run of ${length} pages that is not the page map ` + `(${mapPages} pages at ${hex(mapAddress)})`);
      }
    } else if (kind === PAGE_LARGE) {
      if (ownerClass(owner) > MAX_ALIGN_CODE) corrupt(`${where}: large run owner word ${hex(owner)} has alignment code ${ownerClass(owner)}`);
      totals.largeRuns++;
      totals.usedBytes += length * PAGE_SIZE;
    } else {
      const cls = ownerClass(owner);
      if (cls >= CLASS_COUNT) corrupt(`${where}: slab of unknown class ${cls}`);
      if (length !== CLASS_PAGES[cls]) {
        corrupt(`${where}: slab of class ${CLASS_SIZE[cls]} is ${length} pages, not ${CLASS_PAGES[cls]}`);
      }
      const { free, coded } = checkSlab(heap, address, cls);
      totals.codedObjects[cls]! += coded;
      const live = CLASS_OBJECTS[cls]! - free;
      totals.slabs.set(address, { cls, free, listed: false });
      totals.metadataBytes += CLASS_HEADER_BYTES[cls]!;
      totals.usedBytes += live * CLASS_SIZE[cls]!;
      totals.freeObjects += free;
      totals.freeObjectBytes += free * CLASS_SIZE[cls]!;
    }
    previousKind = kind;
    page += length;
  }
  if (metaRuns !== 1) corrupt(`the page map at ${hex(mapAddress)} is not marked in itself`);
  return totals;
}

/** Checks one slab's header (invariant 2) and returns its free count and coded objects. */
function checkSlab(heap: SlabHeap, slab: number, cls: number): HeaderFound {
  const u32 = heap.u32;
  const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
  const where = `slab ${hex(slab)} (class ${CLASS_SIZE[cls]})`;
  const tag = u32[header + (SH_TAG >>> 2)]!;
  if (tag !== slabTag(slab, cls, heap.cookie)) {
    corrupt(`${where}: header tag ${hex(tag)} is wrong (its last object overflowed?)`);
  }
  const objects = CLASS_OBJECTS[cls]!;
  const words = CLASS_BITMAP_WORDS[cls]!;
  const hint = u32[header + (SH_HINT >>> 2)]!;
  if (hint >= words) corrupt(`${where}: bitmap hint ${hint} is past its ${words} words`);
  let set = 0;
  for (let word = 0; word < words; word++) {
    const bits = u32[header + (SH_BITMAP >>> 2) + word]!;
    const beyond = objects - word * 32 >= 32 ? 0 : bits >>> (objects - word * 32);
    if (beyond !== 0) corrupt(`${where}: bitmap word ${word} ${hex(bits)} marks objects past the last, ${objects - 1}`);
    if (word < hint && bits !== 0) corrupt(`${where}: bitmap word ${word} has free objects but the hint is ${hint}`);
    set += popcount(bits);
  }
  const free = u32[header + (SH_FREE >>> 2)]!;
  if (free !== set) corrupt(`${where}: free count ${free} but the bitmap marks ${set} objects free`);
  let coded = 0;
  const mask = CLASS_CODE_MASK[cls]!;
  if (mask !== 0) {
    const largest = alignCode(CLASS_ALIGN[cls]!);
    const indexShift = CLASS_CODE_INDEX_SHIFT[cls]!;
    for (let index = 0; index < objects; index++) {
      const shift = (index & ((1 << indexShift) - 1)) << CLASS_CODE_BIT_SHIFT[cls]!;
      const code = (u32[header + CLASS_CODE_WORD[cls]! + (index >>> indexShift)]! >>> shift) & mask;
      const isFree = (u32[header + (SH_BITMAP >>> 2) + (index >>> 5)]! & (1 << (index & 31))) !== 0;
      if (isFree ? code !== 0 : code > largest) {
        corrupt(`${where}: ${isFree ? 'free' : 'live'} object ${index} has alignment code ${code}`);
      }
      if (code !== 0) coded++;
    }
  }
  return { free, coded };
}

/** Walks every list of every class (invariant 3), marking the slabs it meets. */
function checkLists(heap: SlabHeap, slabs: Map<number, SlabFound>): void {
  const u32 = heap.u32;
  const found = new Array<number>(CLASS_COUNT).fill(0);
  for (const slab of slabs.values()) found[slab.cls]!++;
  for (let cls = 0; cls < CLASS_COUNT; cls++) {
    const objects = CLASS_OBJECTS[cls]!;
    const offset = CLASS_HEADER_OFFSET[cls]!;
    let listed = 0;
    for (let list = 0; list < SLAB_LIST_NAMES.length; list++) {
      const name = `the ${SLAB_LIST_NAMES[list]} list of class ${CLASS_SIZE[cls]}`;
      let length = 0;
      let prev = 0;
      for (let slab = heap.caches.lists.head(cls, list); slab !== 0; ) {
        const record = slabs.get(slab);
        if (record === undefined || record.cls !== cls) {
          corrupt(`${name} holds ${hex(slab)} (after ${hex(prev)}), which is no slab of that class`);
        }
        if (record.listed) corrupt(`${name} meets slab ${hex(slab)} a second time (a cycle, or it is on two lists)`);
        record.listed = true;
        const state = record.free === 0 ? SlabList.full : record.free === objects ? SlabList.empty : SlabList.partial;
        if (state !== list) {
          corrupt(`slab ${hex(slab)} with ${record.free} of ${objects} objects free is on ${name}, ` + `not the ${SLAB_LIST_NAMES[state]} list`);
        }
        const header = (slab + offset) >>> 2;
        const back = u32[header + (SH_PREV >>> 2)]!;
        if (back !== prev) corrupt(`slab ${hex(slab)} on ${name}: previous link ${hex(back)} should be ${hex(prev)}`);
        length++;
        prev = slab;
        slab = u32[header + (SH_NEXT >>> 2)]!;
      }
      const counted = heap.caches.lists.count(cls, list);
      if (counted !== length) corrupt(`${name} has length word ${counted} but ${length} slabs`);
      listed += length;
    }
    if (listed !== found[cls]) {
      corrupt(`the lists of class ${CLASS_SIZE[cls]} hold ${listed} slabs but the page map has ${found[cls]}`);
    }
    const cached = heap.caches.lists.count(cls, SlabList.empty);
    if (cached > heap.emptySlabs) {
      corrupt(`class ${CLASS_SIZE[cls]} caches ${cached} empty slabs, more than emptySlabs = ${heap.emptySlabs}`);
    }
  }
}
