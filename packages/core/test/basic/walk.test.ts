import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { BASIC_STRATEGIES } from '../../src/basic/index.js';
import { B_NEXT, FLAGS, HEADER_BYTES } from '../../src/basic/layout.js';
import { GlobalAllocator, type HeapRegion, MiB, type StatsTable } from '../../src/index.js';
import { applyHeapStep, expectWalkAgrees, heapStep, type WalkOutcome, WorkerPool } from '@heaplab/test-kit';

/** The walk's live regions are exactly the model's blocks, each with its requested size. */
function expectWalkIsModel(heap: GlobalAllocator, regions: HeapRegion[], model: Map<number, number>): void {
  const live = regions.filter((region) => region.kind === 'live');
  expect(live.map((region) => region.address).sort((a, b) => a - b)).toEqual([...model.keys()].sort((a, b) => a - b));
  for (const region of live) {
    expect(region.requested, `requested size of the block at ${region.address}`).toBe(model.get(region.address));
    expect(region.bytes).toBe(heap.usableSize(region.address));
    // Every live block's 8-byte header is the region just before it.
    const before = regions[regions.indexOf(region) - 1]!;
    expect(before).toMatchObject({ kind: 'header', address: region.address - HEADER_BYTES, bytes: HEADER_BYTES });
  }
}

function table(tables: StatsTable[], name: string): StatsTable {
  const found = tables.find((t) => t.name === name);
  expect(found, `a '${name}' table`).toBeDefined();
  return found!;
}

/** The tables' sums agree with stats() and with the walk's free regions. */
function expectClassStatsAgree(heap: GlobalAllocator, regions: HeapRegion[]): void {
  const stats = heap.stats();
  const tables = heap.classStats();
  const free = regions.filter((region) => region.kind === 'free');
  // A free region starts past its block's 8-byte header.
  const freeBlockBytes = free.reduce((sum, region) => sum + region.bytes + HEADER_BYTES, 0);
  const [list] = table(tables, 'free list').rows;
  expect(list).toEqual({
    length: stats.freeBlocks,
    bytes: freeBlockBytes,
    usable: freeBlockBytes - free.length * HEADER_BYTES,
    largest: free.length === 0 ? 0 : stats.largestFreeBlock + HEADER_BYTES,
  });
  const histogram = table(tables, 'free sizes').rows;
  expect(histogram.reduce((sum, row) => sum + (row['count'] as number), 0)).toBe(stats.freeBlocks);
  expect(histogram.reduce((sum, row) => sum + (row['bytes'] as number), 0)).toBe(freeBlockBytes);
  for (const row of histogram) {
    const [low, high] = String(row['bucket']).replace(' B', '').split('-').map(Number) as [number, number];
    const inBucket = free.filter((region) => region.bytes + HEADER_BYTES >= low && region.bytes + HEADER_BYTES <= high);
    expect(inBucket.length, `bucket ${row['bucket']}`).toBe(row['count']);
  }
  // The largest free region is what one malloc can get.
  expect(Math.max(0, ...free.map((region) => region.bytes))).toBe(stats.largestFreeBlock);
}

describe.each(BASIC_STRATEGIES.map((strategy) => ({ strategy })))('basic ($strategy): heap walk', ({ strategy }) => {
  const create = (heapBytes = 8 * MiB): GlobalAllocator =>
    GlobalAllocator.create({ backend: `basic:strategy=${strategy}`, options: { tcache: false }, heapBytes });

  it('agrees with stats(), the model and the tables after every step of random sequences', () => {
    fc.assert(
      fc.property(fc.array(heapStep, { minLength: 1, maxLength: 80 }), (ops) => {
        const heap = create();
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
      { numRuns: 50, seed: 0xba51c },
    );
  });

  it('draws a fresh heap as its pool: one free block between its header and the sentinel', () => {
    const heap = create(4 * MiB);
    try {
      const regions = expectWalkAgrees(heap);
      expect(regions.map((region) => region.kind)).toEqual(['header', 'free', 'metadata']);
      expect(regions[2]!.bytes).toBe(8);
      expect(heap.classStats()[0]!.rows).toEqual([{ length: 1, bytes: regions[1]!.bytes + 8, usable: regions[1]!.bytes, largest: regions[1]!.bytes + 8 }]);
    } finally {
      heap.detach();
    }
  });

  it('walks every pool added with addMemory, in address order', () => {
    const heap = GlobalAllocator.create({ backend: `basic:strategy=${strategy}`, options: { tcache: false }, heapBytes: 8 * MiB, initBytes: 2 * MiB });
    try {
      // A later pool below an earlier one: the walk still goes in address order.
      heap.addMemory(heap.arenaStart + 6 * MiB + 4, MiB - 4);
      heap.addMemory(heap.arenaStart + 3 * MiB, MiB);
      const blocks = [heap.malloc(2 * MiB - 4096), heap.malloc(MiB - 64), heap.malloc(100)];
      expect(blocks).not.toContain(0);
      const regions = expectWalkAgrees(heap);
      expect(regions.filter((region) => region.kind === 'metadata')).toHaveLength(3);
      // The pool at +6 MiB + 4 starts with 4 bytes of rounding, shown as padding.
      expect(regions).toContainEqual(expect.objectContaining({ address: heap.arenaStart + 6 * MiB + 4, bytes: 4, kind: 'header' }));
    } finally {
      heap.detach();
    }
  });
});

/**
 * The hand-made damage: each is a write over a free block's link or header, as a write after
 * free or an overflow would do it. `free` are the free blocks (addresses of their headers) in
 * address order; `live` a live block's payload.
 */
const DAMAGE: { name: string; damage: (u32: Uint32Array, free: number[], live: number) => void }[] = [
  { name: 'a free link back to the list head (a cycle)', damage: (u32, free) => void (u32[(free.at(-1)! + B_NEXT) >>> 2] = free[0]!) },
  { name: 'a free link to itself', damage: (u32, free) => void (u32[(free[1]! + B_NEXT) >>> 2] = free[1]!) },
  { name: 'a free link to a live block', damage: (u32, free, live) => void (u32[(free[0]! + B_NEXT) >>> 2] = live - HEADER_BYTES) },
  { name: 'a free link outside the arena', damage: (u32, free) => void (u32[(free[0]! + B_NEXT) >>> 2] = 0x40) },
  { name: 'a misaligned free link', damage: (u32, free) => void (u32[(free[2]! + B_NEXT) >>> 2] = free[3]! + 4) },
  { name: "a free block's size running past its pool", damage: (u32, free) => void (u32[free[1]! >>> 2] = 0x7fff_fff8 | (u32[free[1]! >>> 2]! & FLAGS)) },
  { name: "a free block's size cut to a sliver", damage: (u32, free) => void (u32[free[1]! >>> 2] = 8) },
];

describe('basic: a damaged free chain makes walk() throw HeapCorrupted, never hang', () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = await WorkerPool.start(1);
  }, 60_000);
  afterAll(async () => {
    await pool?.close();
  });

  for (const { name, damage } of DAMAGE) {
    it(name, async () => {
      const heap = GlobalAllocator.create({ backend: 'basic', heapBytes: 4 * MiB });
      try {
        const blocks = Array.from({ length: 12 }, (_, i) => heap.malloc(64 + i * 40));
        for (let i = 0; i < blocks.length; i += 2) heap.free(blocks[i]!);
        const free = heap
          .walk()
          .filter((region) => region.kind === 'free')
          .map((region) => region.address - HEADER_BYTES);
        expect(free.length).toBeGreaterThanOrEqual(4);
        damage(heap.memory.u32, free, blocks[1]!);
        // In a worker: a walk that looped would end the test at the pool's time bound.
        const result = await pool.run<WalkOutcome>(0, { kind: 'walk', buffer: heap.buffer }, 20_000);
        expect(result).toMatchObject({ outcome: 'error', kind: 'HeapCorrupted' });
      } finally {
        heap.detach();
      }
    });
  }
});
