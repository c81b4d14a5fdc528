/**
 * The slab heap's walk (`Backend.walk`) and its tables (`Backend.classStats`), read from the
 * page map run by run, as `check()` reads it, and from each slab's header. What each region
 * is, with a drawn example, is in `docs/walks/slab.md`.
 *
 * ```text
 *  arena page:  page map  | slab of class c (CLASS_PAGES[c] pages)                | free pages | large run
 *  regions:     metadata  | live|free|live|...|live | metadata | header           | free       | live
 *               "page map"| one region per object    | "slab     | "slab tail":     | one region | "large run,
 *                         | "slab of N B objects"    |  header"  | what no object   | per run of | N pages"
 *                         |                          |           | or header fills  | free pages |
 * ```
 *
 * Unmanaged pages (no pool covers them) are left out: the facade reports them `untouched`,
 * with the parts of a pool's range that are no whole page. So the regions agree with
 * `stats()` (`stats.ts`): one `live` region per live object and large run, at its usable
 * size; one `free` region per free object (cached empty slabs' included) and per maximal run
 * of free pages, as `stats().freeBlocks` counts them. No region carries `requested`: objects
 * keep no requested size (`stats().requestedBytes` is null).
 *
 * Bounded and checked as `check()` is for what it reads: a run must start where its owner
 * word says, fit the arena, and have every page carry its owner word; a slab must be its
 * class's size, carry its tag, have no bitmap bit past its last object and a free count equal
 * to its bitmap's bits. Anything else is `HeapCorrupted`, so no region is drawn from a
 * damaged record and no walk goes past the page map's last entry.
 */

import { type HeapRegion, hex, PAGE_SIZE, popcount, type StatsTable } from '@heaplab/core/backend';

import type { SlabHeap } from './heap.js';
import {
  corrupt,
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
  SH_TAG,
  SLAB_MAGIC,
  slabTag,
} from './layout.js';
import { CLASS_BITMAP_WORDS, CLASS_COUNT, CLASS_HEADER_BYTES, CLASS_HEADER_OFFSET, CLASS_OBJECTS, CLASS_PAGES, CLASS_SIZE } from './size-classes.js';

const RUN_PAGES = PM_RUN_PAGES >>> 2;

/** What the page-map walk meets: a run of pages of one kind. */
interface Run {
  /** `PAGE_FREE` (a maximal run of free pages), `PAGE_META`, `PAGE_SLAB` or `PAGE_LARGE`. */
  kind: number;
  address: number;
  pages: number;
  /** A slab's class (else -1). */
  cls: number;
  /** A slab's free objects (else 0). */
  free: number;
  /** Word index of a slab's header (else 0). */
  header: number;
}

/**
 * Calls `onRun` for every run of managed pages in address order: the page map, each slab
 * (checked, with its free count), each large run, and each maximal run of free pages.
 * @throws AllocError `HeapCorrupted` for a damaged page-map entry or slab header (see the
 *   file comment)
 */
function walkRuns(heap: SlabHeap, onRun: (run: Run) => void): void {
  const u32 = heap.u32;
  if (u32[heap.sMagic] !== SLAB_MAGIC) throw corrupt(`walk: the control state at ${hex(heap.stateOffset)} is not formatted`);
  const map = heap.map.word;
  const mapAddress = u32[heap.sPageMap]!;
  if (mapAddress !== map * 4 || mapAddress < heap.arenaStart || mapAddress % PAGE_SIZE !== 0) {
    throw corrupt(`walk: the page map is recorded at ${hex(mapAddress)}, not at the page-aligned arena address ${hex(map * 4)}`);
  }
  const pages = heap.map.pages;
  let freeFrom = -1; // first page of the free run under way, -1 when none
  const endFree = (page: number): void => {
    if (freeFrom < 0) return;
    onRun({ kind: PAGE_FREE, address: heap.arenaStart + freeFrom * PAGE_SIZE, pages: page - freeFrom, cls: -1, free: 0, header: 0 });
    freeFrom = -1;
  };
  for (let page = 0; page < pages; ) {
    const address = heap.arenaStart + page * PAGE_SIZE;
    const entry = map + page * PAGE_ENTRY_WORDS;
    const owner = u32[entry]!;
    const length = u32[entry + RUN_PAGES]!;
    const kind = owner & OWNER_KIND_MASK;
    if (kind === PAGE_UNMANAGED || kind === PAGE_FREE) {
      if (owner !== kind || length !== 0) {
        throw corrupt(`walk: page ${hex(address)}, a ${PAGE_KIND_NAMES[kind]} page, has owner word ${hex(owner)} and run length ${length}`);
      }
      if (kind === PAGE_FREE) {
        if (freeFrom < 0) freeFrom = page;
      } else {
        endFree(page);
      }
      page++;
      continue;
    }
    endFree(page);
    if (kind !== PAGE_META && kind !== PAGE_SLAB && kind !== PAGE_LARGE) {
      throw corrupt(`walk: page ${hex(address)} has owner word ${hex(owner)} of the unknown kind ${kind}`);
    }
    if (ownerStart(owner) !== address || length < 1 || page + length > pages) {
      throw corrupt(
        `walk: page ${hex(address)} starts a ${PAGE_KIND_NAMES[kind]} run that names ${hex(ownerStart(owner))} as its start ` +
          `and ${length} pages, which does not fit the arena`,
      );
    }
    for (let next = 1; next < length; next++) {
      const other = entry + next * PAGE_ENTRY_WORDS;
      if (u32[other] !== owner || u32[other + RUN_PAGES] !== 0) {
        throw corrupt(`walk: page ${hex(address + next * PAGE_SIZE)} of the run at ${hex(address)} has owner word ${hex(u32[other]!)}, not ${hex(owner)}`);
      }
    }
    if (kind === PAGE_SLAB) {
      const cls = ownerClass(owner);
      if (cls >= CLASS_COUNT || length !== CLASS_PAGES[cls]) {
        throw corrupt(`walk: slab ${hex(address)} of class ${cls} is ${length} pages, not its class's slab size`);
      }
      const header = (address + CLASS_HEADER_OFFSET[cls]!) >>> 2;
      onRun({ kind, address, pages: length, cls, free: slabFreeObjects(heap, address, cls, header), header });
    } else {
      onRun({ kind, address, pages: length, cls: -1, free: 0, header: 0 });
    }
    page += length;
  }
  endFree(pages);
}

/**
 * The free objects of the slab at `slab` (class `cls`, header at word `header`), once its
 * tag, bitmap and free count are consistent.
 * @throws AllocError `HeapCorrupted` otherwise
 */
function slabFreeObjects(heap: SlabHeap, slab: number, cls: number, header: number): number {
  const u32 = heap.u32;
  const where = `walk: slab ${hex(slab)} (class ${CLASS_SIZE[cls]})`;
  const tag = u32[header + (SH_TAG >>> 2)]!;
  if (tag !== slabTag(slab, cls, heap.cookie)) throw corrupt(`${where}: header tag ${hex(tag)} is wrong (its last object overflowed?)`);
  const objects = CLASS_OBJECTS[cls]!;
  let set = 0;
  for (let word = 0, words = CLASS_BITMAP_WORDS[cls]!; word < words; word++) {
    const bits = u32[header + (SH_BITMAP >>> 2) + word]!;
    if (objects - word * 32 < 32 && bits >>> (objects - word * 32) !== 0) {
      throw corrupt(`${where}: bitmap word ${word} ${hex(bits)} marks objects past the last, ${objects - 1}`);
    }
    set += popcount(bits);
  }
  const free = u32[header + (SH_FREE >>> 2)]!;
  if (free !== set) throw corrupt(`${where}: free count ${free} but the bitmap marks ${set} objects free`);
  return free;
}

/**
 * `Backend.walk` of the slab heap (see the file comment).
 * @throws AllocError `HeapCorrupted` as `walkRuns`
 */
export function walkSlabHeap(heap: SlabHeap, visit: (region: HeapRegion) => void): void {
  const u32 = heap.u32;
  walkRuns(heap, (run) => {
    const bytes = run.pages * PAGE_SIZE;
    if (run.kind === PAGE_FREE) {
      visit({ address: run.address, bytes, kind: 'free', detail: `${run.pages} free page${run.pages === 1 ? '' : 's'}` });
    } else if (run.kind === PAGE_META) {
      visit({ address: run.address, bytes, kind: 'metadata', detail: 'page map' });
    } else if (run.kind === PAGE_LARGE) {
      visit({ address: run.address, bytes, kind: 'live', detail: `large run, ${run.pages} page${run.pages === 1 ? '' : 's'}` });
    } else {
      const size = CLASS_SIZE[run.cls]!;
      const objects = CLASS_OBJECTS[run.cls]!;
      const detail = `slab of ${size} B objects`;
      const bitmap = run.header + (SH_BITMAP >>> 2);
      for (let index = 0; index < objects; index++) {
        const isFree = (u32[bitmap + (index >>> 5)]! & (1 << (index & 31))) !== 0;
        visit({ address: run.address + index * size, bytes: size, kind: isFree ? 'free' : 'live', detail });
      }
      const headerAt = run.address + CLASS_HEADER_OFFSET[run.cls]!;
      const headerEnd = headerAt + CLASS_HEADER_BYTES[run.cls]!;
      visit({ address: headerAt, bytes: CLASS_HEADER_BYTES[run.cls]!, kind: 'metadata', detail: `slab header (${size} B objects)` });
      if (headerEnd < run.address + bytes) {
        visit({ address: headerEnd, bytes: run.address + bytes - headerEnd, kind: 'header', detail: `slab tail (${size} B objects)` });
      }
    }
  });
}

/**
 * `Backend.classStats` of the slab heap: "slabinfo", one row per size class with
 * `/proc/slabinfo`'s columns, and "pages", one row per kind of page of the page layer. Both
 * counted by the walk `walk` uses.
 * @throws AllocError `HeapCorrupted` as `walkRuns`
 */
export function slabClassStats(heap: SlabHeap): StatsTable[] {
  const totalSlabs = new Array<number>(CLASS_COUNT).fill(0);
  const activeSlabs = new Array<number>(CLASS_COUNT).fill(0);
  const freeObjects = new Array<number>(CLASS_COUNT).fill(0);
  // Per page kind (PAGE_FREE .. PAGE_LARGE): pages and runs.
  const kindPages = [0, 0, 0, 0, 0];
  const kindRuns = [0, 0, 0, 0, 0];
  walkRuns(heap, (run) => {
    kindPages[run.kind]! += run.pages;
    kindRuns[run.kind]!++;
    if (run.kind !== PAGE_SLAB) return;
    totalSlabs[run.cls]!++;
    freeObjects[run.cls]! += run.free;
    if (run.free < CLASS_OBJECTS[run.cls]!) activeSlabs[run.cls]!++;
  });
  const slabinfo: Record<string, number | string>[] = [];
  for (let cls = 0; cls < CLASS_COUNT; cls++) {
    const total = totalSlabs[cls]! * CLASS_OBJECTS[cls]!;
    slabinfo.push({
      name: `slab-${CLASS_SIZE[cls]}`,
      activeObjects: total - freeObjects[cls]!,
      totalObjects: total,
      objectSize: CLASS_SIZE[cls]!,
      objectsPerSlab: CLASS_OBJECTS[cls]!,
      pagesPerSlab: CLASS_PAGES[cls]!,
      activeSlabs: activeSlabs[cls]!,
      totalSlabs: totalSlabs[cls]!,
    });
  }
  const pageRows: Record<string, number | string>[] = [];
  for (const [kind, name] of [
    [PAGE_META, 'page map'],
    [PAGE_SLAB, 'slab'],
    [PAGE_LARGE, 'large run'],
    [PAGE_FREE, 'free'],
  ] as const) {
    pageRows.push({ kind: name, pages: kindPages[kind]!, runs: kindRuns[kind]!, bytes: kindPages[kind]! * PAGE_SIZE });
  }
  return [
    {
      name: 'slabinfo',
      description:
        'one row per size class, as /proc/slabinfo: live objects, objects in all slabs, slabs holding a live object ' +
        '(partial and full) and all slabs (cached empty ones too)',
      columns: [
        { key: 'name', label: 'cache' },
        { key: 'activeObjects', label: 'active objs' },
        { key: 'totalObjects', label: 'num objs' },
        { key: 'objectSize', label: 'objsize' },
        { key: 'objectsPerSlab', label: 'objperslab' },
        { key: 'pagesPerSlab', label: 'pagesperslab' },
        { key: 'activeSlabs', label: 'active slabs' },
        { key: 'totalSlabs', label: 'num slabs' },
      ],
      rows: slabinfo,
    },
    {
      name: 'pages',
      description:
        "one row per kind of managed page of the page layer (core's bitmap page allocator): the page map, slabs, " +
        'large runs (blocks past the largest class) and free pages, in maximal runs',
      columns: [
        { key: 'kind', label: 'kind' },
        { key: 'pages', label: 'pages' },
        { key: 'runs', label: 'runs' },
        { key: 'bytes', label: 'bytes' },
      ],
      rows: pageRows,
    },
  ];
}
