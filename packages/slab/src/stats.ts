/**
 * The slab heap's figures: core's counters, and one walk of the page map for what counters
 * cannot say (the largest block one request could get, the free blocks).
 */

import { type BackendStats, PAGE_SIZE } from '@heaplab/core/backend';

import type { SlabHeap } from './heap.js';
import { OWNER_KIND_MASK, ownerClass, ownerStart, PAGE_ENTRY_WORDS, PAGE_FREE, PAGE_SLAB, PM_RUN_PAGES, SH_FREE, SlabList } from './layout.js';
import { CLASS_COUNT, CLASS_HEADER_OFFSET, CLASS_OBJECTS, CLASS_SIZE } from './size-classes.js';

const RUN_PAGES = PM_RUN_PAGES >>> 2;
const FREE = SH_FREE >>> 2;

/**
 * The backend's figures for `heap`.
 *
 * `largestFreeBlock` is what `allocate(size, 8)` would really get: the longest run of pages
 * that are free or belong to a cached empty slab (a request that needs them gets the cached
 * slabs back from their classes first), and at least the largest class with a free object
 * on a partial slab. Any size up to the longest run is served, by a slab or, failing one, by
 * a page run. `requestedBytes` is null: objects carry no header, and a per-object size would
 * cost up to a quarter of an 8-byte object's slab.
 */
export function slabStats(heap: SlabHeap): BackendStats {
  const u32 = heap.u32;
  const map = heap.map.word;
  let longestRun = 0;
  let run = 0; // reclaimable pages running up to the current page
  let freeRuns = 0;
  let inFreeRun = false;
  let freeObjects = 0;
  for (let page = 0; page < heap.map.pages; ) {
    const entry = map + page * PAGE_ENTRY_WORDS;
    const owner = u32[entry]!;
    const kind = owner & OWNER_KIND_MASK;
    if (kind === PAGE_FREE) {
      if (!inFreeRun) freeRuns++;
      inFreeRun = true;
      run++;
      page++;
      continue;
    }
    inFreeRun = false;
    // A run is met at its first page; a zero length would be damage (check() names it).
    const length = Math.max(1, u32[entry + RUN_PAGES]!);
    let reclaimable = false;
    const cls = ownerClass(owner);
    // A class past the last is damage (check() names it): such a run is counted as live.
    if (kind === PAGE_SLAB && cls < CLASS_COUNT) {
      const free = u32[((ownerStart(owner) + CLASS_HEADER_OFFSET[cls]!) >>> 2) + FREE]!;
      freeObjects += free;
      reclaimable = free === CLASS_OBJECTS[cls];
    }
    if (reclaimable) {
      run += length;
    } else {
      if (run > longestRun) longestRun = run;
      run = 0;
    }
    page += length;
  }
  if (run > longestRun) longestRun = run;
  let largest = longestRun * PAGE_SIZE;
  for (let cls = 0; cls < CLASS_COUNT; cls++) {
    if (heap.caches.lists.count(cls, SlabList.partial) > 0 && CLASS_SIZE[cls]! > largest) largest = CLASS_SIZE[cls]!;
  }
  const counted = heap.counters.values();
  return {
    totalBytes: counted.totalBytes,
    usedBytes: counted.usedBytes,
    peakUsedBytes: counted.peakUsedBytes,
    peakUsedSampled: false,
    requestedBytes: null,
    grantedBytes: counted.grantedBytes,
    metadataBytes: counted.metadataBytes,
    largestFreeBlock: largest,
    liveBlocks: counted.liveBlocks,
    freeBlocks: freeRuns + freeObjects,
  };
}
