/**
 * The buddy heap's walk and its "orders" table: after random sequences the walk tiles the
 * arena, agrees with `stats()` (live count, granted and requested bytes, free blocks) and
 * with a model of what the test holds; the table's sums agree with `stats()`; a damaged order
 * map makes the walk throw `HeapCorrupted` rather than loop or report a region past a pool.
 */

import { type AllocError, GlobalAllocator, type HeapRegion, MiB, PAGE_SIZE, type StatsTable } from '@heaplab/core';
import { BackendFixture, expectAllocError, expectWalkAgrees as expectKitWalkAgrees } from '@heaplab/test-kit';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { BuddyPageAllocator, buddyBackend } from '../src/index.js';
import { FREE, LIVE, START } from '../src/layout.js';

const ARENA_START = 4 * MiB;

/** What the test holds: each block's usable and requested bytes. */
type Model = Map<number, { usable: number; requested: number }>;

/**
 * The test kit's five rules, and buddy's own: every live block has its requested size, and
 * the metadata regions (the order maps with their padding) are what the counters count.
 */
function expectWalkAgrees(heap: GlobalAllocator): HeapRegion[] {
  const regions = expectKitWalkAgrees(heap);
  const stats = heap.stats();
  const live = regions.filter((region) => region.kind === 'live');
  expect(live.every((region) => region.requested !== undefined)).toBe(true);
  expect(live.reduce((sum, region) => sum + region.requested!, 0)).toBe(stats.requestedBytes);
  expect(regions.filter((region) => region.kind === 'metadata').reduce((sum, region) => sum + region.bytes, 0)).toBe(stats.metadataBytes);
  return regions;
}

/** The live regions are exactly the model's blocks, each at its usable and requested size. */
function expectWalkMatchesModel(regions: HeapRegion[], model: Model): void {
  const live = new Map(
    regions.filter((region) => region.kind === 'live').map((region) => [region.address, { usable: region.bytes, requested: region.requested! }]),
  );
  expect(live).toEqual(model);
}

/** Column `key` of `table`, summed. */
function columnSum(table: StatsTable, key: string): number {
  return table.rows.reduce((sum, row) => sum + (row[key] as number), 0);
}

/** The "orders" table agrees with the stats and with the walk, order by order. */
function expectOrdersAgree(heap: GlobalAllocator, regions: HeapRegion[]): void {
  const tables = heap.classStats();
  expect(tables.map((table) => table.name)).toEqual(['orders']);
  const orders = tables[0]!;
  const stats = heap.stats();
  expect(columnSum(orders, 'freeBlocks')).toBe(stats.freeBlocks);
  expect(columnSum(orders, 'liveBlocks')).toBe(stats.liveBlocks);
  expect(columnSum(orders, 'liveBytes')).toBe(stats.grantedBytes);
  expect(columnSum(orders, 'requestedBytes')).toBe(stats.requestedBytes);
  expect(columnSum(orders, 'freeBytes') + columnSum(orders, 'liveBytes')).toBe(stats.totalBytes);
  for (const row of orders.rows) {
    const detail = `order ${row.order as number}`;
    expect(row.blockBytes).toBe(2 ** (row.order as number));
    expect(row.freeBlocks).toBe(regions.filter((region) => region.kind === 'free' && region.detail === detail).length);
    expect(row.liveBlocks).toBe(regions.filter((region) => region.kind === 'live' && region.detail === detail).length);
  }
}

type Step = { kind: 'alloc'; size: number; alignLog: number } | { kind: 'free'; pick: number } | { kind: 'realloc'; pick: number; size: number };

const size = fc.oneof({ weight: 6, arbitrary: fc.nat(300) }, { weight: 3, arbitrary: fc.nat(9000) }, { weight: 1, arbitrary: fc.nat(300_000) });
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.record({ kind: fc.constant('alloc' as const), size, alignLog: fc.integer({ min: 3, max: 13 }) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('realloc' as const), pick: fc.nat(), size }) },
);

/** Runs `steps` on `heap`, keeping `model` to what it holds. */
function run(heap: GlobalAllocator, model: Model, steps: Step[]): void {
  for (const s of steps) {
    const held = [...model.keys()];
    if (s.kind === 'alloc') {
      const address = s.alignLog === 3 ? heap.malloc(s.size) : heap.alignedAlloc(2 ** s.alignLog, s.size);
      if (address !== 0) model.set(address, { usable: heap.usableSize(address), requested: s.size });
    } else if (held.length > 0) {
      const address = held[s.pick % held.length]!;
      if (s.kind === 'free') {
        heap.free(address);
        model.delete(address);
      } else {
        const moved = heap.realloc(address, s.size);
        if (moved !== 0) {
          model.delete(address);
          model.set(moved, { usable: heap.usableSize(moved), requested: s.size });
        }
      }
    }
  }
}

describe('buddy walk', () => {
  it('is the order map and one free block per maximal aligned piece on a fresh heap', () => {
    const heap = GlobalAllocator.create({ backend: buddyBackend, heapBytes: 4 * MiB, options: { tcache: false } });
    const regions = expectWalkAgrees(heap);
    // 4 MiB of arena: a 256 KiB map (one byte per 16 bytes), then the blocks that fill the
    // rest at their natural alignment: 256 KiB, 512 KiB, 1 MiB and 2 MiB.
    expect(regions.map(({ address, bytes, kind, detail }) => ({ address: address - ARENA_START, bytes, kind, detail }))).toEqual([
      { address: 0, bytes: 256 * 1024, kind: 'metadata', detail: 'order map' },
      { address: 256 * 1024, bytes: 256 * 1024, kind: 'free', detail: 'order 18' },
      { address: 512 * 1024, bytes: 512 * 1024, kind: 'free', detail: 'order 19' },
      { address: 1024 * 1024, bytes: 1024 * 1024, kind: 'free', detail: 'order 20' },
      { address: 2048 * 1024, bytes: 2048 * 1024, kind: 'free', detail: 'order 21' },
    ]);
    expectOrdersAgree(heap, regions);
  });

  it('reports live blocks whole, with their order and requested size, and the buddies a split left free', () => {
    const heap = GlobalAllocator.create({ backend: buddyBackend, heapBytes: 4 * MiB, options: { tcache: false } });
    const a = heap.malloc(100);
    const b = heap.alignedAlloc(64, 1);
    const regions = expectWalkAgrees(heap);
    expect(regions.find((region) => region.address === a)).toEqual({ address: a, bytes: 128, kind: 'live', requested: 100, detail: 'order 7' });
    expect(regions.find((region) => region.address === b)).toEqual({ address: b, bytes: 64, kind: 'live', requested: 1, detail: 'order 6' });
    expect(regions.filter((region) => region.kind === 'header')).toEqual([]);
    expectOrdersAgree(heap, regions);
    heap.free(a);
    heap.free(b);
    expect(expectWalkAgrees(heap).filter((region) => region.kind === 'free').length).toBe(4);
  });

  it('agrees with stats and the model after random sequences', () => {
    fc.assert(
      fc.property(fc.array(step, { maxLength: 150 }), (steps) => {
        const heap = GlobalAllocator.create({ backend: buddyBackend, heapBytes: 4 * MiB, options: { tcache: false } });
        const model: Model = new Map();
        run(heap, model, steps);
        const regions = expectWalkAgrees(heap);
        expectWalkMatchesModel(regions, model);
        expectOrdersAgree(heap, regions);
        heap.check();
      }),
      { numRuns: 40 },
    );
  });

  it('walks every pool, in address order, and leaves what no pool covers untouched', () => {
    const heap = GlobalAllocator.create({ backend: buddyBackend, heapBytes: 8 * MiB, initBytes: 2 * MiB, options: { tcache: false } });
    // A pool added above the first, on a range that is not 16-aligned: its rounding is untouched.
    heap.addMemory(ARENA_START + 6 * MiB + 8, MiB);
    const model: Model = new Map();
    // 300 000 bytes take a 512 KiB block: three fit in the first pool (one whole, two halves
    // of its 1 MiB block), one in the second; the fifth finds none.
    run(
      heap,
      model,
      Array.from({ length: 5 }, () => ({ kind: 'alloc' as const, size: 300_000, alignLog: 3 })),
    );
    expect(model.size).toBe(4);
    const regions = expectWalkAgrees(heap);
    expectWalkMatchesModel(regions, model);
    const second = ARENA_START + 6 * MiB + 16;
    const maps = regions.filter((region) => region.kind === 'metadata');
    expect(maps.map((region) => region.address)).toEqual([ARENA_START, second]);
    expect(regions.filter((region) => region.kind === 'live' && region.address > second).length).toBe(1);
    // Between the pools, and the 8 bytes the second's start was rounded up by: one gap.
    expect(regions.find((region) => region.address === ARENA_START + 2 * MiB)).toEqual({
      address: ARENA_START + 2 * MiB,
      bytes: 4 * MiB + 16,
      kind: 'untouched',
    });
    expectOrdersAgree(heap, regions);
  });

  it('walks pools in address order when a later pool lies below an earlier one', () => {
    const fixture = new BackendFixture(buddyBackend, {}, { arenaBytes: 8 * MiB }).init(ARENA_START + 4 * MiB, 4 * MiB);
    fixture.addMemory(ARENA_START, MiB);
    const buddy = fixture.backend;
    const low = buddy.allocate(200_000, 8);
    expect(low).toBeLessThan(ARENA_START + MiB);
    const regions: HeapRegion[] = [];
    buddy.walk((region) => regions.push(region));
    expect(regions.filter((region) => region.kind === 'metadata').map((region) => region.address)).toEqual([ARENA_START, ARENA_START + 4 * MiB]);
    for (let i = 1; i < regions.length; i++) expect(regions[i]!.address).toBeGreaterThanOrEqual(regions[i - 1]!.address + regions[i - 1]!.bytes);
    const free = regions.filter((region) => region.kind === 'free');
    expect(free.length).toBe(buddy.stats().freeBlocks);
    expect(free.reduce((sum, region) => sum + region.bytes, 0) + 2 ** 18).toBe(buddy.stats().totalBytes);
  });

  it('reports page-run blocks as live, counted whole as the counters count them', () => {
    const fixture = new BackendFixture(buddyBackend, {}, { arenaBytes: 4 * MiB }).init();
    const buddy = fixture.backend;
    const pages = new BuddyPageAllocator(buddy.blocks);
    const run3 = pages.allocPages(3, PAGE_SIZE);
    const byte = buddy.allocate(24, 8);
    const regions: HeapRegion[] = [];
    buddy.walk((region) => regions.push(region));
    // A run of 3 pages is the blocks of its decomposition: 8 KiB then 4 KiB.
    expect(regions.filter((region) => region.detail?.endsWith('page run'))).toEqual([
      { address: run3, bytes: 8192, kind: 'live', requested: 8192, detail: 'order 13, page run' },
      { address: run3 + 8192, bytes: 4096, kind: 'live', requested: 4096, detail: 'order 12, page run' },
    ]);
    expect(regions.find((region) => region.address === byte)).toMatchObject({ kind: 'live', bytes: 32, requested: 24 });
    const stats = buddy.stats();
    const live = regions.filter((region) => region.kind === 'live');
    expect(live.length).toBe(stats.liveBlocks);
    expect(live.reduce((sum, region) => sum + region.requested!, 0)).toBe(stats.requestedBytes);
    let cursor = regions[0]!.address;
    for (const region of regions) {
      expect(region.address).toBe(cursor);
      cursor += region.bytes;
    }
    expect(cursor).toBe(fixture.context.arenaEnd);
  });
});

describe('buddy walk over a damaged order map', () => {
  /** A heap with a few blocks, and its order map's bytes; the map starts at the arena's start. */
  function damageable(): { heap: GlobalAllocator; u8: Uint8Array; entryOf: (address: number) => number; blocks: number[] } {
    const heap = GlobalAllocator.create({ backend: buddyBackend, heapBytes: 4 * MiB, options: { tcache: false } });
    const blocks = [heap.malloc(100), heap.malloc(100), heap.malloc(3000), heap.malloc(16)];
    heap.free(blocks[1]!);
    heap.check();
    const u8 = new Uint8Array(heap.buffer);
    return { heap, u8, entryOf: (address) => ARENA_START + (address - ARENA_START) / 16, blocks };
  }

  function expectWalkCorrupted(heap: GlobalAllocator, fragment: string): AllocError {
    const error = expectAllocError(() => heap.walk(), 'HeapCorrupted');
    expect(error.message).toContain(fragment);
    expectAllocError(() => heap.classStats(), 'HeapCorrupted');
    return error;
  }

  it('throws when a block start entry loses its START bit', () => {
    const { heap, u8, entryOf, blocks } = damageable();
    u8[entryOf(blocks[2]!)] = 0;
    expectWalkCorrupted(heap, 'does not tile the pool');
  });

  it('throws when a start entry claims an order that runs past the pool', () => {
    const { heap, u8, entryOf, blocks } = damageable();
    // A free block of order 30 where a 128-byte block lies: misaligned and past the pool's end.
    u8[entryOf(blocks[0]!)] = FREE | 30;
    expectWalkCorrupted(heap, 'does not tile the pool');
  });

  it('throws when a start entry claims an order below its kind', () => {
    const { heap, u8, entryOf, blocks } = damageable();
    u8[entryOf(blocks[0]!)] = LIVE | 4;
    expectWalkCorrupted(heap, 'does not tile the pool');
  });

  it("throws when a live block's digits record a size that calls for another order", () => {
    const { heap, u8, entryOf, blocks } = damageable();
    // blocks[2] is order 12 (3000 bytes, slack 1096 in two 7-bit digits): a high digit of
    // 127 makes the slack 16 328, more than the block.
    const entry = entryOf(blocks[2]!);
    expect(u8[entry]).toBe(LIVE | 12);
    u8[entry + 2] = 0x7f;
    expectWalkCorrupted(heap, 'digits');
  });

  it('never loops: a map rewritten with garbage throws within the pool', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 64 }), fc.nat(), (garbage, at) => {
        const { heap, u8, entryOf, blocks } = damageable();
        const first = entryOf(blocks[0]!) + (at % 256);
        u8.set(garbage, first);
        let regions: HeapRegion[];
        try {
          regions = heap.walk();
        } catch (error) {
          expect((error as AllocError).kind).toBe('HeapCorrupted');
          return;
        }
        // Garbage that still tiles the pool is a map the walk may draw: it stays in the arena.
        const last = regions[regions.length - 1]!;
        expect(last.address + last.bytes).toBe(ARENA_START + 4 * MiB);
        expect(regions.every((region) => (u8[entryOf(region.address)]! & START) !== 0 || region.kind === 'metadata')).toBe(true);
      }),
      { numRuns: 60 },
    );
  });
});
