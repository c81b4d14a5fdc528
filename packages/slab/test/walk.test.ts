/**
 * The slab heap's walk and its "slabinfo" and "pages" tables: after random sequences the
 * walk tiles the arena, agrees with `stats()` (live count, granted bytes, free blocks) and
 * with a model of what the test holds; the tables' sums agree with `stats()` and the walk; a
 * damaged page map or slab header makes the walk throw `HeapCorrupted`, never loop.
 */

import { type AllocError, GlobalAllocator, type HeapRegion, MIN_ALIGN, PAGE_SIZE, type StatsTable } from '@heaplab/core';
import { expectAllocError, expectWalkAgrees as expectKitWalkAgrees } from '@heaplab/test-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { slabBackend } from '../src/index.js';
import { PAGE_ENTRY_WORDS, PAGE_FREE, PM_RUN_PAGES, SH_BITMAP, SH_FREE, SH_TAG } from '../src/layout.js';
import {
  CLASS_BITMAP_WORDS,
  CLASS_COUNT,
  CLASS_HEADER_BYTES,
  CLASS_HEADER_OFFSET,
  CLASS_OBJECTS,
  CLASS_PAGES,
  CLASS_SIZE,
  classOf,
} from '../src/size-classes.js';
import type { SlabAllocator } from '../src/slab.js';
import { headerWord, MiB, makeSlab, pageOwner } from './harness.js';

const ARENA_START = 4 * MiB;

/**
 * The test kit's five rules, and slab's own: it keeps no requested sizes (none in the walk,
 * none in `stats()`), and the metadata regions (the page map's pages and every slab's
 * header) are what the counters count.
 */
function expectWalkAgrees(heap: GlobalAllocator): HeapRegion[] {
  const regions = expectKitWalkAgrees(heap);
  const stats = heap.stats();
  expect(stats.requestedBytes).toBeNull();
  expect(stats.internalFragmentationBytes).toBeNull();
  expect(regions.some((region) => region.kind === 'live' && region.requested !== undefined)).toBe(false);
  expect(regions.filter((region) => region.kind === 'metadata').reduce((sum, region) => sum + region.bytes, 0)).toBe(stats.metadataBytes);
  return regions;
}

/** `table`'s rows by their first column. */
function rowsOf(table: StatsTable): Map<string, Record<string, number | string>> {
  const key = table.columns[0]!.key;
  return new Map(table.rows.map((row) => [row[key] as string, row]));
}

/** Column `key` of `table`, summed. */
function columnSum(table: StatsTable, key: string): number {
  return table.rows.reduce((sum, row) => sum + (row[key] as number), 0);
}

/** The tables agree with the stats and with the walk, class by class and kind by kind. */
function expectTablesAgree(heap: GlobalAllocator, regions: HeapRegion[]): void {
  const tables = heap.classStats();
  expect(tables.map((table) => table.name)).toEqual(['slabinfo', 'pages']);
  const [slabinfo, pages] = tables as [StatsTable, StatsTable];
  const stats = heap.stats();
  expect(slabinfo.rows.length).toBe(CLASS_COUNT);
  const kinds = rowsOf(pages);
  const largeRuns = kinds.get('large run')!.runs as number;
  const freeRuns = kinds.get('free')!.runs as number;
  // Live blocks: live small objects and large runs; free blocks: free objects and free page runs.
  expect(columnSum(slabinfo, 'activeObjects') + largeRuns).toBe(stats.liveBlocks);
  expect(columnSum(slabinfo, 'totalObjects') - columnSum(slabinfo, 'activeObjects') + freeRuns).toBe(stats.freeBlocks);
  let objectBytes = 0;
  let headerBytes = 0;
  for (let cls = 0; cls < CLASS_COUNT; cls++) {
    const row = slabinfo.rows[cls]!;
    const detail = `slab of ${CLASS_SIZE[cls]} B objects`;
    expect(row).toMatchObject({
      name: `slab-${CLASS_SIZE[cls]}`,
      objectSize: CLASS_SIZE[cls],
      objectsPerSlab: CLASS_OBJECTS[cls],
      pagesPerSlab: CLASS_PAGES[cls],
    });
    expect(row.activeObjects).toBe(regions.filter((region) => region.kind === 'live' && region.detail === detail).length);
    expect(row.totalObjects).toBe((row.totalSlabs as number) * CLASS_OBJECTS[cls]!);
    expect(row.activeSlabs as number).toBeLessThanOrEqual(row.totalSlabs as number);
    expect(row.activeSlabs as number).toBeGreaterThanOrEqual(Math.ceil((row.activeObjects as number) / CLASS_OBJECTS[cls]!));
    objectBytes += (row.activeObjects as number) * CLASS_SIZE[cls]!;
    headerBytes += (row.totalSlabs as number) * CLASS_HEADER_BYTES[cls]!;
  }
  const large = kinds.get('large run')!.bytes as number;
  expect(objectBytes + large).toBe(stats.grantedBytes);
  expect(kinds.get('page map')!.bytes as number).toBe(stats.metadataBytes - headerBytes);
  expect((kinds.get('slab')!.pages as number) + (kinds.get('large run')!.pages as number) + (kinds.get('free')!.pages as number)).toBe(
    stats.totalBytes / PAGE_SIZE,
  );
  expect(kinds.get('slab')!.runs).toBe(columnSum(slabinfo, 'totalSlabs'));
  expect(largeRuns).toBe(regions.filter((region) => region.detail?.startsWith('large run')).length);
}

type Step = { kind: 'alloc'; size: number; alignLog: number } | { kind: 'free'; pick: number } | { kind: 'realloc'; pick: number; size: number };

const size = fc.oneof({ weight: 6, arbitrary: fc.nat(600) }, { weight: 3, arbitrary: fc.nat(9000) }, { weight: 1, arbitrary: fc.nat(200_000) });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('alloc' as const), size, alignLog: fc.oneof(fc.constant(3), fc.integer({ min: 3, max: 14 })) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('realloc' as const), pick: fc.nat(), size }) },
);

/** Runs `steps` on `heap`, keeping `model` (address to usable size) to what it holds. */
function run(heap: GlobalAllocator, model: Map<number, number>, steps: Step[]): void {
  for (const s of steps) {
    const held = [...model.keys()];
    if (s.kind === 'alloc') {
      const address = s.alignLog === 3 ? heap.malloc(s.size) : heap.alignedAlloc(2 ** s.alignLog, s.size);
      if (address !== 0) model.set(address, heap.usableSize(address));
    } else if (held.length > 0) {
      const address = held[s.pick % held.length]!;
      if (s.kind === 'free') {
        heap.free(address);
        model.delete(address);
      } else {
        const moved = heap.realloc(address, s.size);
        if (moved !== 0) {
          model.delete(address);
          model.set(moved, heap.usableSize(moved));
        }
      }
    }
  }
}

describe('slab walk', () => {
  it('is the page map and one run of free pages on a fresh heap', () => {
    const heap = GlobalAllocator.create({ backend: slabBackend, heapBytes: 4 * MiB, options: { tcache: false } });
    const regions = expectWalkAgrees(heap);
    // 1024 pages of 8-byte entries: a 2-page map, then 1022 free pages.
    expect(regions).toEqual([
      { address: ARENA_START, bytes: 2 * PAGE_SIZE, kind: 'metadata', detail: 'page map' },
      { address: ARENA_START + 2 * PAGE_SIZE, bytes: 1022 * PAGE_SIZE, kind: 'free', detail: '1022 free pages' },
    ]);
    expectTablesAgree(heap, regions);
  });

  it('draws a slab as its objects, its header and its tail, and a large run whole', () => {
    const heap = GlobalAllocator.create({ backend: slabBackend, heapBytes: 4 * MiB, options: { tcache: false } });
    const cls = classOf(40);
    const a = heap.malloc(40);
    const b = heap.malloc(33);
    const big = heap.malloc(3 * PAGE_SIZE + 1);
    const regions = expectWalkAgrees(heap);
    const slab = a;
    const inSlab = regions.filter((region) => region.address >= slab && region.address < slab + CLASS_PAGES[cls]! * PAGE_SIZE);
    const objects = CLASS_OBJECTS[cls]!;
    const detail = 'slab of 40 B objects';
    expect(inSlab.length).toBe(objects + 2);
    expect(inSlab.slice(0, 3)).toEqual([
      { address: a, bytes: 40, kind: 'live', detail },
      { address: b, bytes: 40, kind: 'live', detail },
      { address: a + 80, bytes: 40, kind: 'free', detail },
    ]);
    const headerAt = slab + CLASS_HEADER_OFFSET[cls]!;
    expect(inSlab[objects]).toEqual({ address: headerAt, bytes: CLASS_HEADER_BYTES[cls]!, kind: 'metadata', detail: 'slab header (40 B objects)' });
    const tailAt = headerAt + CLASS_HEADER_BYTES[cls]!;
    expect(inSlab[objects + 1]).toEqual({
      address: tailAt,
      bytes: slab + CLASS_PAGES[cls]! * PAGE_SIZE - tailAt,
      kind: 'header',
      detail: 'slab tail (40 B objects)',
    });
    expect(regions.find((region) => region.address === big)).toEqual({ address: big, bytes: 4 * PAGE_SIZE, kind: 'live', detail: 'large run, 4 pages' });
    expectTablesAgree(heap, regions);
    const row = heap.classStats()[0]!.rows[cls]!;
    expect(row).toMatchObject({ activeObjects: 2, totalObjects: objects, activeSlabs: 1, totalSlabs: 1 });
    // Emptied, the slab stays cached (emptySlabs = 1): all its objects free, no active slab.
    heap.free(a);
    heap.free(b);
    const after = expectWalkAgrees(heap);
    expect(heap.classStats()[0]!.rows[cls]).toMatchObject({ activeObjects: 0, totalObjects: objects, activeSlabs: 0, totalSlabs: 1 });
    expectTablesAgree(heap, after);
  });

  it('agrees with stats and the model after random sequences', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 150 }), fc.integer({ min: 0, max: 3 }), (steps, emptySlabs) => {
        const heap = GlobalAllocator.create({ backend: slabBackend, heapBytes: 4 * MiB, options: { emptySlabs, tcache: false } });
        const model = new Map<number, number>();
        run(heap, model, steps);
        const regions = expectWalkAgrees(heap);
        expect(new Map(regions.filter((region) => region.kind === 'live').map((region) => [region.address, region.bytes]))).toEqual(model);
        expectTablesAgree(heap, regions);
        heap.check();
      }),
      { numRuns: 40 },
    );
  });

  it('walks pools added later, leaving what no pool covers untouched', () => {
    const heap = GlobalAllocator.create({ backend: slabBackend, heapBytes: 8 * MiB, initBytes: 2 * MiB, options: { tcache: false } });
    heap.addMemory(ARENA_START + 5 * MiB + 100, MiB);
    const model = new Map<number, number>();
    run(heap, model, [
      { kind: 'alloc', size: 1_500_000, alignLog: 3 },
      { kind: 'alloc', size: 900_000, alignLog: 3 },
      { kind: 'alloc', size: 24, alignLog: 3 },
    ]);
    const regions = expectWalkAgrees(heap);
    expect(model.size).toBe(3);
    expect(new Map(regions.filter((region) => region.kind === 'live').map((region) => [region.address, region.bytes]))).toEqual(model);
    // The second pool's whole pages start at the page after its start.
    const second = ARENA_START + 5 * MiB + PAGE_SIZE;
    expect(regions.find((region) => region.address === ARENA_START + 2 * MiB)).toEqual({
      address: ARENA_START + 2 * MiB,
      bytes: 3 * MiB + PAGE_SIZE,
      kind: 'untouched',
    });
    expect(regions.some((region) => region.kind === 'live' && region.address >= second)).toBe(true);
    expectTablesAgree(heap, regions);
  });
});

describe('slab walk over damaged metadata', () => {
  /** A heap with a partial 96-byte slab, a cached empty 40-byte slab and a large run. */
  function damageable(): { slab: SlabAllocator; objects: number[]; run: number; cls: number } {
    const { slab } = makeSlab({}, 4 * MiB);
    const cls = classOf(96);
    const objects = Array.from({ length: 5 }, () => slab.allocate(96, MIN_ALIGN));
    const cached = Array.from({ length: 3 }, () => slab.allocate(40, MIN_ALIGN));
    for (const address of cached) slab.release(address);
    const run = slab.allocate(5 * PAGE_SIZE, MIN_ALIGN);
    slab.check();
    return { slab, objects, run, cls };
  }

  /** The regions `slab.walk` reports, each checked to follow the one before inside the arena. */
  function walked(slab: SlabAllocator): HeapRegion[] {
    const regions: HeapRegion[] = [];
    let cursor = slab.arenaStart;
    slab.walk((region) => {
      expect(region.address).toBeGreaterThanOrEqual(cursor);
      expect(region.bytes).toBeGreaterThan(0);
      cursor = region.address + region.bytes;
      expect(cursor).toBeLessThanOrEqual(slab.arenaEnd);
      regions.push(region);
    });
    return regions;
  }

  function expectWalkCorrupted(slab: SlabAllocator, names: RegExp): void {
    const error = expectAllocError(() => walked(slab), 'HeapCorrupted');
    expect(error.message).toMatch(names);
    expectAllocError(() => slab.classStats(), 'HeapCorrupted');
  }

  /** Word index of the page-map entry of the page holding `address`. */
  const entryOf = (slab: SlabAllocator, address: number): number => slab.map.entryWord(address);

  it('walks the undamaged heap', () => {
    const { slab, objects, run } = damageable();
    const regions = walked(slab);
    expect(regions.filter((region) => region.kind === 'live').map((region) => region.address)).toEqual([...objects, run]);
  });

  it('a slab header whose tag is overwritten', () => {
    const { slab, objects, cls } = damageable();
    slab.u32[headerWord(pageOwner(slab, objects[0]!).start, cls) + (SH_TAG >>> 2)]! ^= 0xff;
    expectWalkCorrupted(slab, /tag/);
  });

  it('a free count that disagrees with the bitmap, and bitmap bits past the last object', () => {
    const first = damageable();
    first.slab.u32[headerWord(pageOwner(first.slab, first.objects[0]!).start, first.cls) + (SH_FREE >>> 2)]! += 1;
    expectWalkCorrupted(first.slab, /free count/);
    const second = damageable();
    const header = headerWord(pageOwner(second.slab, second.objects[0]!).start, second.cls);
    second.slab.u32[header + (SH_BITMAP >>> 2) + CLASS_BITMAP_WORDS[second.cls]! - 1] = 0xffffffff;
    expectWalkCorrupted(second.slab, /past the last/);
  });

  it("a run length that runs past the arena, and a run's page that names another owner", () => {
    const first = damageable();
    first.slab.u32[entryOf(first.slab, first.run) + (PM_RUN_PAGES >>> 2)] = 0xffffffff;
    expectWalkCorrupted(first.slab, /does not fit/);
    const second = damageable();
    second.slab.u32[entryOf(second.slab, second.run + 2 * PAGE_SIZE)] = PAGE_FREE;
    expectWalkCorrupted(second.slab, /owner word/);
  });

  it('a free page whose owner word names a slab that starts elsewhere', () => {
    const { slab, run } = damageable();
    const freePage = run + 5 * PAGE_SIZE;
    expect(slab.u32[entryOf(slab, freePage)]).toBe(PAGE_FREE);
    slab.u32[entryOf(slab, freePage)] = slab.u32[entryOf(slab, run)]!;
    expectWalkCorrupted(slab, /names .* as its start/);
  });

  it('never loops: a page map rewritten with garbage throws or stays in the arena', () => {
    fc.assert(
      fc.property(fc.uint32Array({ minLength: 1, maxLength: 16 }), fc.nat(40), (garbage, at) => {
        const { slab } = damageable();
        slab.u32.set(garbage, slab.map.word + at * PAGE_ENTRY_WORDS);
        try {
          walked(slab);
        } catch (error) {
          expect((error as AllocError).kind).toBe('HeapCorrupted');
        }
      }),
      { numRuns: 100 },
    );
  });
});
