import { GlobalAllocator, type HeapRegion, type StatsTable } from '@heaplab/core';
import { applyHeapStep, errorOf, expectWalkAgrees, heapStep, type WalkOutcome, WorkerPool } from '@heaplab/test-kit';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { listMinSize, listOf, tlsfBackend } from '../src/index.js';
import { B_NEXT_FREE, B_SIZE, HEADER_BYTES, SL_COUNT, ST_FL_BITMAP, ST_SL_BITMAPS, TRAILER_BYTES } from '../src/layout.js';
import { makeTlsf, MiB } from './fixture.js';

/** The walk's live regions are exactly the model's blocks, each with its requested size and header. */
function expectWalkIsModel(heap: GlobalAllocator, regions: HeapRegion[], model: Map<number, number>): void {
  const live = regions.filter((region) => region.kind === 'live');
  expect(live.map((region) => region.address).sort((a, b) => a - b)).toEqual([...model.keys()].sort((a, b) => a - b));
  for (const region of live) {
    const at = regions.indexOf(region);
    expect(region.requested, `requested size of the block at ${region.address}`).toBe(model.get(region.address));
    expect(region.bytes).toBe(heap.usableSize(region.address));
    expect(regions[at - 1]).toMatchObject({ kind: 'header', address: region.address - HEADER_BYTES, bytes: HEADER_BYTES });
    // An over-aligned block keeps its alignment in a trailer after its usable bytes.
    if (region.detail?.includes('aligned') === true) {
      expect(regions[at + 1]).toMatchObject({ kind: 'header', address: region.address + region.bytes, bytes: TRAILER_BYTES, detail: 'alignment trailer' });
    }
  }
}

function table(tables: StatsTable[], name: string): StatsTable {
  const found = tables.find((t) => t.name === name);
  expect(found, `a '${name}' table`).toBeDefined();
  return found!;
}

/** The lists table and the bitmaps agree with stats(), with the walk's free regions and with each other. */
function expectClassStatsAgree(heap: GlobalAllocator, regions: HeapRegion[]): void {
  const stats = heap.stats();
  const tables = heap.classStats();
  const lists = table(tables, 'lists').rows;
  const free = regions.filter((region) => region.kind === 'free');
  expect(lists.reduce((sum, row) => sum + (row['blocks'] as number), 0)).toBe(stats.freeBlocks);
  // Per list: the walk's free blocks that name it, and their block bytes (header included).
  const perList = new Map<string, { blocks: number; bytes: number }>();
  for (const region of free) {
    const size = region.bytes + HEADER_BYTES;
    const list = listOf(size);
    const name = `fl ${list >> 5} sl ${list & (SL_COUNT - 1)}`;
    expect(region.detail).toBe(`${size} B free block, list ${name}`);
    const figures = perList.get(name) ?? { blocks: 0, bytes: 0 };
    figures.blocks++;
    figures.bytes += size;
    perList.set(name, figures);
  }
  expect(new Map(lists.map((row) => [`fl ${row['fl']} sl ${row['sl']}`, { blocks: row['blocks'], bytes: row['bytes'] }]))).toEqual(perList);
  for (const row of lists) {
    const list = (row['fl'] as number) * SL_COUNT + (row['sl'] as number);
    expect(String(row['range']).startsWith(`${listMinSize(list)}`)).toBe(true);
  }
  const bitmaps = table(tables, 'bitmaps').rows;
  const first = String(bitmaps[0]!['bits']);
  const levels = new Set(lists.map((row) => row['fl'] as number));
  // Bit f, counted from the right of the binary string, is set exactly for the occupied levels.
  for (let fl = 0; fl < first.length; fl++) expect(first[first.length - 1 - fl] === '1', `first-level bit ${fl}`).toBe(levels.has(fl));
  expect(bitmaps.slice(1).map((row) => row['bitmap'])).toEqual([...levels].sort((a, b) => a - b).map((fl) => `second level ${fl}`));
  for (const row of bitmaps.slice(1)) {
    const fl = Number(String(row['bitmap']).replace('second level ', ''));
    const bits = String(row['bits']);
    const occupied = new Set(lists.filter((r) => r['fl'] === fl).map((r) => r['sl'] as number));
    for (let sl = 0; sl < SL_COUNT; sl++) expect(bits[SL_COUNT - 1 - sl] === '1', `second-level bit (${fl}, ${sl})`).toBe(occupied.has(sl));
  }
}

describe('tlsf: heap walk', () => {
  it('agrees with stats(), the model and the tables after every step of random sequences', () => {
    fc.assert(
      fc.property(fc.array(heapStep, { minLength: 1, maxLength: 80 }), (ops) => {
        const heap = GlobalAllocator.create({ backend: tlsfBackend, heapBytes: 8 * MiB, options: { tcache: false } });
        try {
          const model = new Map<number, number>();
          for (const step of ops) {
            applyHeapStep(heap, model, step);
            const regions = expectWalkAgrees(heap);
            expectWalkIsModel(heap, regions, model);
            expectClassStatsAgree(heap, regions);
          }
        } finally {
          heap.detach();
        }
      }),
      { numRuns: 60, seed: 0x715f },
    );
  });

  it('with the thread cache, shows exactly the live blocks (the cache is given back first), without requested sizes', () => {
    fc.assert(
      fc.property(fc.array(heapStep, { minLength: 1, maxLength: 80 }), (ops) => {
        const heap = GlobalAllocator.create({ backend: tlsfBackend, heapBytes: 8 * MiB });
        try {
          const model = new Map<number, number>();
          for (const step of ops) {
            applyHeapStep(heap, model, step);
            const regions = expectWalkAgrees(heap);
            const live = regions.filter((region) => region.kind === 'live');
            expect(live.map((region) => region.address).sort((a, b) => a - b)).toEqual([...model.keys()].sort((a, b) => a - b));
            expect(live.every((region) => region.requested === undefined)).toBe(true);
            const stats = heap.stats();
            expect(stats.requestedBytes).toBeNull();
            expect(stats.threadCache?.blocks).toBe(0);
            expectClassStatsAgree(heap, regions);
          }
        } finally {
          heap.detach();
        }
      }),
      { numRuns: 30, seed: 0x7c0c },
    );
  });

  it('draws a fresh heap as a front sentinel, one free block on the top list, and an end sentinel', () => {
    const heap = GlobalAllocator.create({ backend: tlsfBackend, heapBytes: 4 * MiB, options: { tcache: false } });
    try {
      const regions = expectWalkAgrees(heap);
      expect(regions.map((region) => region.kind)).toEqual(['metadata', 'header', 'free', 'metadata']);
      const size = regions[2]!.bytes + HEADER_BYTES;
      expect(heap.classStats()[0]!.rows).toEqual([
        { fl: listOf(size) >> 5, sl: listOf(size) & (SL_COUNT - 1), range: expect.any(String), blocks: 1, bytes: size },
      ]);
    } finally {
      heap.detach();
    }
  });

  it('walks pools added out of order in address order, rounding padding included', () => {
    const heap = GlobalAllocator.create({ backend: tlsfBackend, heapBytes: 8 * MiB, initBytes: 2 * MiB, options: { tcache: false } });
    try {
      heap.addMemory(heap.arenaStart + 6 * MiB + 4, MiB - 4);
      heap.addMemory(heap.arenaStart + 3 * MiB, MiB);
      expect([heap.malloc(2 * MiB - 4096), heap.malloc(MiB - 64), heap.alignedAlloc(4096, 100)]).not.toContain(0);
      const regions = expectWalkAgrees(heap);
      expect(regions.filter((region) => region.kind === 'metadata')).toHaveLength(6);
      expect(regions).toContainEqual(expect.objectContaining({ address: heap.arenaStart + 6 * MiB + 4, bytes: 4, kind: 'header' }));
    } finally {
      heap.detach();
    }
  });

  it('reports a bitmap that names an empty list, or misses an occupied one, as HeapCorrupted', () => {
    for (const damage of ['stray first-level bit', 'cleared second-level bit'] as const) {
      const fixture = makeTlsf(4 * MiB);
      const { tlsf, memory, ctx } = fixture;
      const blocks = Array.from({ length: 8 }, (_, i) => tlsf.allocate(100 + i * 300, 8));
      for (let i = 0; i < blocks.length; i += 2) tlsf.release(blocks[i]!);
      const u32 = memory.u32;
      if (damage === 'stray first-level bit') u32[(ctx.stateOffset + ST_FL_BITMAP) >>> 2]! |= 1 << 20;
      else u32[(ctx.stateOffset + ST_SL_BITMAPS) >>> 2] = 0;
      const error = errorOf(() => tlsf.walk((): void => {}));
      expect(error.kind, damage).toBe('HeapCorrupted');
      expect(error.message).toMatch(/bit/);
      expect(errorOf(() => tlsf.classStats()).kind).toBe('HeapCorrupted');
    }
  });
});

/**
 * Hand-made damage over free blocks' links and headers, as a write after free or an overflow
 * does it. `free` are the free blocks' header addresses in address order; `live` a live
 * payload. The first blocks freed all have one size, so they share one list.
 */
const DAMAGE: { name: string; damage: (u32: Uint32Array, free: number[], live: number) => void }[] = [
  { name: 'a free link back to its list head (a cycle)', damage: (u32, free) => void (u32[(free[0]! + B_NEXT_FREE) >>> 2] = free[2]!) },
  { name: 'a free link to itself', damage: (u32, free) => void (u32[(free[1]! + B_NEXT_FREE) >>> 2] = free[1]!) },
  { name: 'a free link to a live block', damage: (u32, free, live) => void (u32[(free[1]! + B_NEXT_FREE) >>> 2] = live - HEADER_BYTES) },
  { name: 'a free link outside the arena', damage: (u32, free) => void (u32[(free[1]! + B_NEXT_FREE) >>> 2] = 0x40) },
  { name: 'a misaligned free link', damage: (u32, free) => void (u32[(free[1]! + B_NEXT_FREE) >>> 2] = free[0]! + 4) },
  { name: 'a free link into another list', damage: (u32, free) => void (u32[(free[1]! + B_NEXT_FREE) >>> 2] = free.at(-1)!) },
  { name: "a free block's size running past its pool", damage: (u32, free) => void (u32[(free[1]! + B_SIZE) >>> 2] = 0x7fff_fff8) },
];

describe('tlsf: a damaged free chain makes walk() throw HeapCorrupted, never hang', () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = await WorkerPool.start(1);
  }, 60_000);
  afterAll(async () => {
    await pool?.close();
  });

  for (const { name, damage } of DAMAGE) {
    it(name, async () => {
      const heap = GlobalAllocator.create({ backend: tlsfBackend, heapBytes: 4 * MiB, options: { tcache: false } });
      try {
        // Six 200-byte blocks freed every other one: three free blocks on one list; the heap's
        // remainder is the last free block, on a list of its own.
        const blocks = Array.from({ length: 6 }, () => heap.malloc(200));
        for (let i = 0; i < blocks.length; i += 2) heap.free(blocks[i]!);
        const free = heap
          .walk()
          .filter((region) => region.kind === 'free')
          .map((region) => region.address - HEADER_BYTES);
        expect(free).toHaveLength(4);
        damage(heap.memory.u32, free, blocks[1]!);
        // In a worker: a walk that looped would end the test at the pool's time bound.
        const result = await pool.run<WalkOutcome>(0, { kind: 'walk', buffer: heap.buffer, trustModules: [tlsfBackend.moduleUrl] }, 20_000);
        expect(result).toMatchObject({ outcome: 'error', kind: 'HeapCorrupted' });
      } finally {
        heap.detach();
      }
    });
  }
});
