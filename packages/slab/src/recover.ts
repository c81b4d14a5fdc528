/**
 * `recover()` for the slab heap: after a thread died holding the heap lock, rebuilds every
 * structure that can be derived from the three records the store orders keep right at every
 * instant (see "What a dead thread leaves, and how `recover` rebuilds" in layout.ts):
 * the page map, each slab's bitmap (with its header's tag), and the addMemory record.
 *
 * 1. An addMemory a thread died in is undone: managed pages that no pool of core's table
 *    covers go back to unmanaged (core records a range only after addMemory returns).
 * 2. The page map is walked run by run. Runs whose first page has no length (a new run that
 *    died before it was published) and pages that name a start which is no run (the rest of
 *    a run being freed or shrunk, or pages a grow did not publish) become free pages. A
 *    published run must be whole: every page carries its owner word, a slab's header its tag
 *    and a bitmap with no bit past the last object; anything else is damage, not a death,
 *    and recovery refuses it, except a slab whose tag was retired with every object free:
 *    its give-back died half done, and is finished. A freed page that holds a dead slab's
 *    header has its tag retired.
 * 3. Each slab's free count and hint are recomputed from its bitmap, and the alignment codes
 *    of its free objects cleared; the slab goes on the list its free count names, in address
 *    order; empty slabs past `emptySlabs` go back to the pages.
 * 4. The counts of objects with alignment codes, core's counters, and the page allocator
 *    (formatted again through its own `init`, `addMemory` and `allocPagesAt`) are rebuilt
 *    from the result.
 *
 * Recovery only derives, so it can itself be cut short and run again.
 */

import { alignDown, alignUp, type BackendRepair, hex, PAGE_SIZE, popcount, type RepairCause } from '@heaplab/core/backend';

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
  CL_COUNT,
  CL_HEAD,
  CLASS_RECORD_WORDS,
  corrupt,
  MAX_ALIGN_CODE,
  OWNER_KIND_MASK,
  ownerClass,
  ownerStart,
  PAGE_ENTRY_WORDS,
  PAGE_FREE,
  PAGE_KIND_NAMES,
  PAGE_LARGE,
  PAGE_META,
  PAGE_SHIFT,
  PAGE_SLAB,
  PAGE_UNMANAGED,
  PM_RUN_PAGES,
  retiredTag,
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
import { PageMap } from './page-map.js';

const RUN_PAGES = PM_RUN_PAGES >>> 2;
const LIST_COUNT = SLAB_LIST_NAMES.length;

/** Writes `value` at word `index` unless it is there already, so a sound heap is left as it was. */
function put(u32: Uint32Array, index: number, value: number): void {
  if (u32[index] !== value) u32[index] = value;
}

/**
 * Rebuilds `heap` (see the top of this file).
 * @throws AllocError `HeapCorrupted` when the page map, a slab header or the control state is
 *   damaged in a way no death leaves: then nothing sound can be rebuilt from them
 */
export function recoverSlabHeap(heap: SlabHeap, _cause: RepairCause): BackendRepair {
  const u32 = heap.u32;
  const map = heap.map;
  if (u32[heap.sMagic] !== SLAB_MAGIC) throw corrupt('cannot recover: the control state is not formatted');
  const mapAddress = u32[heap.sPageMap]!;
  const mapPages = u32[heap.sPageMapPages]!;
  if (mapAddress !== map.word * 4 || mapPages !== PageMap.pagesFor(map.pages)) {
    throw corrupt(`cannot recover: the page map is recorded as ${mapPages} pages at ${hex(mapAddress)}`);
  }
  const notes: string[] = [];
  dropUnrecordedPages(heap, notes);

  // 2. The page map, run by run; slabs are collected per class in address order.
  const slabs: number[][] = Array.from({ length: CLASS_COUNT }, () => []);
  /** Per slab: its live objects with an alignment code. */
  const codedOf: number[][] = Array.from({ length: CLASS_COUNT }, () => []);
  const frees: number[][] = Array.from({ length: CLASS_COUNT }, () => []);
  let orphanPages = 0;
  let unpublished = 0;
  let largeRuns = 0;
  let largePages = 0;
  let clearedCodes = 0;
  let recounted = 0;
  let finishedGiveBacks = 0;
  for (let page = 0; page < map.pages; ) {
    const address = heap.arenaStart + page * PAGE_SIZE;
    const entry = map.word + page * PAGE_ENTRY_WORDS;
    const owner = u32[entry]!;
    const length = u32[entry + RUN_PAGES]!;
    const kind = owner & OWNER_KIND_MASK;
    const where = `cannot recover: page ${hex(address)}`;
    if (kind === PAGE_UNMANAGED || kind === PAGE_FREE) {
      if (owner !== kind) throw corrupt(`${where}: a ${PAGE_KIND_NAMES[kind]} page has owner word ${hex(owner)}`);
      // The first page of a run being freed whose length was not cleared yet.
      put(u32, entry + RUN_PAGES, 0);
      page++;
      continue;
    }
    if (kind !== PAGE_META && kind !== PAGE_SLAB && kind !== PAGE_LARGE) {
      throw corrupt(`${where}: owner word ${hex(owner)} has the unknown kind ${kind}`);
    }
    const start = ownerStart(owner);
    if (kind !== PAGE_META && start !== address) {
      // A page after the first of a run taken apart, shrunk, or grown without publishing.
      if (length !== 0 || start > address) {
        throw corrupt(`${where}: owner word ${hex(owner)} names ${hex(start)}, and the page has run length ${length}`);
      }
      u32[entry] = PAGE_FREE;
      clearDeadTag(heap, owner, page);
      orphanPages++;
      page++;
      continue;
    }
    if (kind !== PAGE_META && length === 0) {
      // A new run that died before its length published it: its pages are free again (the
      // others are orphans now, and freed as the walk meets them).
      u32[entry] = PAGE_FREE;
      clearDeadTag(heap, owner, page);
      unpublished++;
      page++;
      continue;
    }
    if (start !== address || length < 1 || page + length > map.pages) {
      throw corrupt(`${where}: a ${PAGE_KIND_NAMES[kind]} run of ${length} pages at ${hex(start)} does not fit the arena`);
    }
    for (let next = 1; next < length; next++) {
      const other = entry + next * PAGE_ENTRY_WORDS;
      if (u32[other] !== owner || u32[other + RUN_PAGES] !== 0) {
        throw corrupt(`${where}: page ${next} of the run has owner word ${hex(u32[other]!)} and length ${u32[other + RUN_PAGES]!}`);
      }
    }
    if (kind === PAGE_META) {
      if (address !== mapAddress || length !== mapPages) throw corrupt(`${where}: a metadata run that is not the page map`);
    } else if (kind === PAGE_LARGE) {
      if (ownerClass(owner) > MAX_ALIGN_CODE) throw corrupt(`${where}: large run owner word ${hex(owner)} has alignment code ${ownerClass(owner)}`);
      largeRuns++;
      largePages += length;
    } else {
      const cls = ownerClass(owner);
      if (cls >= CLASS_COUNT || length !== CLASS_PAGES[cls]) {
        throw corrupt(`${where}: a slab run of ${length} pages of class ${cls}, which has ${CLASS_PAGES[cls] ?? 'no'} pages`);
      }
      const tagWord = ((address + CLASS_HEADER_OFFSET[cls]!) >>> 2) + (SH_TAG >>> 2);
      if (u32[tagWord] === retiredTag(address, cls, heap.cookie)) {
        // A give-back that died between retiring the tag and freeing the run: finished here
        // once the bitmap confirms the slab held nothing (only an empty slab is given back).
        if (recountSlab(heap, address, cls, true).free !== CLASS_OBJECTS[cls]) {
          throw corrupt(`${where}: a slab with a retired tag still has live objects`);
        }
        map.freeRun(address, length);
        finishedGiveBacks++;
        page += length;
        continue;
      }
      const repaired = recountSlab(heap, address, cls, false);
      if (repaired.recounted) recounted++;
      clearedCodes += repaired.clearedCodes;
      slabs[cls]!.push(address);
      frees[cls]!.push(repaired.free);
      codedOf[cls]!.push(repaired.coded);
    }
    page += length;
  }
  if (orphanPages > 0) notes.push(`freed ${orphanPages} page(s) of runs that were being taken apart, shrunk or grown`);
  if (finishedGiveBacks > 0) notes.push(`finished giving ${finishedGiveBacks} empty slab(s) back to the pages`);
  if (unpublished > 0) notes.push(`freed the pages of ${unpublished} run(s) that were being made`);
  if (recounted > 0) notes.push(`recounted the free objects of ${recounted} slab(s) from their bitmaps`);
  if (clearedCodes > 0) notes.push(`cleared ${clearedCodes} alignment code(s) of free objects`);

  // 3. The lists, the counts of coded objects and the counters.
  let liveBlocks = largeRuns;
  let usedBytes = largePages * PAGE_SIZE;
  let metadataBytes = mapPages * PAGE_SIZE;
  let slabCount = 0;
  let gaveBack = 0;
  for (let cls = 0; cls < CLASS_COUNT; cls++) {
    const objects = CLASS_OBJECTS[cls]!;
    const lists: number[][] = [[], [], []];
    let live = 0;
    let coded = 0;
    const starts = slabs[cls]!;
    for (let i = 0; i < starts.length; i++) {
      const free = frees[cls]![i]!;
      const list = free === 0 ? SlabList.full : free === objects ? SlabList.empty : SlabList.partial;
      if (list === SlabList.empty && lists[SlabList.empty]!.length >= heap.emptySlabs) {
        // An emptied slab whose give-back died, or more than this handle caches.
        u32[((starts[i]! + CLASS_HEADER_OFFSET[cls]!) >>> 2) + (SH_TAG >>> 2)] = retiredTag(starts[i]!, cls, heap.cookie);
        map.freeRun(starts[i]!, CLASS_PAGES[cls]!);
        gaveBack++;
        continue;
      }
      lists[list]!.push(starts[i]!);
      live += objects - free;
      coded += codedOf[cls]![i]!;
    }
    const record = heap.sClasses + cls * CLASS_RECORD_WORDS;
    for (let list = 0; list < LIST_COUNT; list++) {
      const chain = lists[list]!;
      for (let i = 0; i < chain.length; i++) {
        const header = (chain[i]! + CLASS_HEADER_OFFSET[cls]!) >>> 2;
        put(u32, header + (SH_PREV >>> 2), i === 0 ? 0 : chain[i - 1]!);
        put(u32, header + (SH_NEXT >>> 2), i === chain.length - 1 ? 0 : chain[i + 1]!);
      }
      put(u32, record + (CL_HEAD >>> 2) + list, chain.length === 0 ? 0 : chain[0]!);
      put(u32, record + (CL_COUNT >>> 2) + list, chain.length);
      slabCount += chain.length;
      metadataBytes += chain.length * CLASS_HEADER_BYTES[cls]!;
    }
    put(u32, record + (CL_CODED >>> 2), coded);
    liveBlocks += live;
    usedBytes += live * CLASS_SIZE[cls]!;
  }
  if (gaveBack > 0) notes.push(`gave ${gaveBack} empty slab(s) beyond emptySlabs = ${heap.emptySlabs} back to the pages`);

  // 4. The page allocator, from the managed ranges and the runs of the page map; then the
  // counters, the total from the pages it now manages.
  rebuildPageAllocator(heap);
  heap.counters.restore({
    totalBytes: (heap.pages.totalPages() - mapPages) * PAGE_SIZE,
    usedBytes,
    requestedBytes: 0,
    grantedBytes: usedBytes,
    liveBlocks,
    freeBlocks: 0,
    metadataBytes,
  });
  notes.push(
    `rebuilt the lists of ${slabCount} slabs, the counters of ${liveBlocks} live blocks (${largeRuns} large runs) ` +
      'and the page allocator from the page map',
  );
  return { lostBytes: 0, lostBlocks: 0, notes };
}

/**
 * A page of a dead slab (one never published, or one being given back) was just freed: when
 * it holds that slab's header and the tag is still live, the tag is retired, so only slabs the
 * page map holds carry one (what link checks rely on).
 */
function clearDeadTag(heap: SlabHeap, owner: number, page: number): void {
  const cls = ownerClass(owner);
  if ((owner & OWNER_KIND_MASK) !== PAGE_SLAB || cls >= CLASS_COUNT) return;
  const start = ownerStart(owner);
  const header = start + CLASS_HEADER_OFFSET[cls]!;
  if ((header - heap.arenaStart) >>> PAGE_SHIFT !== page) return;
  const tagWord = (header >>> 2) + (SH_TAG >>> 2);
  if (heap.u32[tagWord] === slabTag(start, cls, heap.cookie)) heap.u32[tagWord] = retiredTag(start, cls, heap.cookie);
}

/**
 * Step 1: pages that no pool of core's table covers were being added by a thread that died
 * in addMemory (core records a range after it returns): they go back to unmanaged. Nothing
 * can have been allocated from them, as core records the range before the lock is let go.
 */
function dropUnrecordedPages(heap: SlabHeap, notes: string[]): void {
  const pools = heap.pools.list().sort((a, b) => a.start - b.start);
  let dropped = 0;
  let page = heap.arenaStart;
  const drop = (end: number): void => {
    for (; page < end; page += PAGE_SIZE) {
      const owner = heap.map.ownerOf(page);
      if (owner === PAGE_UNMANAGED) continue;
      if (owner !== PAGE_FREE) throw corrupt(`cannot recover: page ${hex(page)} lies in no pool but has owner word ${hex(owner)}`);
      heap.map.markUnmanaged(page, page + PAGE_SIZE);
      dropped++;
    }
  };
  for (const pool of pools) {
    drop(alignUp(pool.start, PAGE_SIZE));
    page = Math.max(page, alignDown(pool.end, PAGE_SIZE));
  }
  drop(heap.arenaEnd);
  if (dropped > 0) notes.push(`gave back ${dropped} page(s) of an addMemory that was under way (no pool lists them)`);
}

/**
 * Step 3 for one published slab: checks its tag and bitmap (which a death leaves whole),
 * then recomputes its free count and hint and clears the codes of its free objects.
 */
function recountSlab(heap: SlabHeap, slab: number, cls: number, retired: boolean): { free: number; recounted: boolean; clearedCodes: number; coded: number } {
  const u32 = heap.u32;
  const header = (slab + CLASS_HEADER_OFFSET[cls]!) >>> 2;
  const where = `cannot recover: slab ${hex(slab)} (class ${CLASS_SIZE[cls]})`;
  if (!retired && u32[header + (SH_TAG >>> 2)] !== slabTag(slab, cls, heap.cookie)) {
    throw corrupt(`${where}: header tag ${hex(u32[header + (SH_TAG >>> 2)]!)} is wrong`);
  }
  const objects = CLASS_OBJECTS[cls]!;
  const words = CLASS_BITMAP_WORDS[cls]!;
  const bitmap = header + (SH_BITMAP >>> 2);
  let free = 0;
  let hint = -1;
  for (let word = 0; word < words; word++) {
    const bits = u32[bitmap + word]!;
    if (objects - word * 32 < 32 && bits >>> (objects - word * 32) !== 0) {
      throw corrupt(`${where}: bitmap word ${word} ${hex(bits)} marks objects past the last`);
    }
    if (bits !== 0 && hint < 0) hint = word;
    free += popcount(bits);
  }
  if (retired) return { free, recounted: false, clearedCodes: 0, coded: 0 };
  const recounted = u32[header + (SH_FREE >>> 2)] !== free;
  put(u32, header + (SH_FREE >>> 2), free);
  put(u32, header + (SH_HINT >>> 2), Math.max(hint, 0));
  let clearedCodes = 0;
  let coded = 0;
  const mask = CLASS_CODE_MASK[cls]!;
  if (mask !== 0) {
    const largest = alignCode(CLASS_ALIGN[cls]!);
    const indexShift = CLASS_CODE_INDEX_SHIFT[cls]!;
    for (let index = 0; index < objects; index++) {
      const shift = (index & ((1 << indexShift) - 1)) << CLASS_CODE_BIT_SHIFT[cls]!;
      const word = header + CLASS_CODE_WORD[cls]! + (index >>> indexShift);
      const code = (u32[word]! >>> shift) & mask;
      if (code === 0) continue;
      if ((u32[bitmap + (index >>> 5)]! & (1 << (index & 31))) !== 0) {
        // A free whose code was not cleared yet, or an allocation that died before its bit.
        u32[word] = u32[word]! & ~(mask << shift);
        clearedCodes++;
      } else if (code > largest) {
        throw corrupt(`${where}: live object ${index} has alignment code ${code}, more than its class gives`);
      } else {
        coded++;
      }
    }
  }
  return { free, recounted, clearedCodes, coded };
}

/**
 * Step 4: formats the page allocator again and gives it the managed ranges of the page map,
 * then allocates every run in it. Its own stores are not ordered for a death between them
 * (a counter after a bitmap), so it is rebuilt rather than trusted.
 */
function rebuildPageAllocator(heap: SlabHeap): void {
  const u32 = heap.u32;
  const map = heap.map;
  const pages = heap.pages;
  let formatted = false;
  let rangeStart = -1;
  const closeRange = (end: number): void => {
    if (rangeStart < 0) return;
    if (formatted) pages.addMemory(rangeStart, end - rangeStart);
    else pages.init(rangeStart, end - rangeStart);
    formatted = true;
    rangeStart = -1;
  };
  for (let page = 0; page < map.pages; page++) {
    const address = heap.arenaStart + page * PAGE_SIZE;
    if (u32[map.word + page * PAGE_ENTRY_WORDS] === PAGE_UNMANAGED) closeRange(address);
    else if (rangeStart < 0) rangeStart = address;
  }
  closeRange(heap.arenaEnd);
  for (let page = 0; page < map.pages; ) {
    const entry = map.word + page * PAGE_ENTRY_WORDS;
    const length = u32[entry + RUN_PAGES]!;
    if (length === 0) {
      page++;
      continue;
    }
    pages.allocPagesAt(heap.arenaStart + page * PAGE_SIZE, length, PAGE_SIZE);
    page += length;
  }
}
