import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import type { Backend, BackendDescriptor } from '../src/backend/index.js';
import { basicBackend, type BasicOptions, GlobalAllocator, MiB } from '../src/index.js';
import { expectAllocError, expectWalkAgrees, WorkerPool } from '@heaplab/test-kit';

/** Basic without `walk` and `classStats`: a backend that cannot be walked (yet). */
const unwalkableBackend: BackendDescriptor<BasicOptions> = {
  ...basicBackend,
  name: 'basic-without-walk',
  moduleUrl: import.meta.url,
  create(context, options): Backend {
    const inner: Backend = basicBackend.create(context, options);
    // Own properties shadow the class's methods, as if the backend had never defined them.
    inner.walk = undefined;
    inner.classStats = undefined;
    return inner;
  },
};

describe('GlobalAllocator.walk on a backend without a walk', () => {
  it('says it cannot walk, refuses walk() with InvalidParam and has no tables', () => {
    const heap = GlobalAllocator.create({ backend: unwalkableBackend, heapBytes: 4 * MiB });
    try {
      heap.malloc(100);
      expect(heap.supportsWalk()).toBe(false);
      const error = expectAllocError(() => heap.walk(), 'InvalidParam');
      expect(error.message).toContain('basic-without-walk');
      expect(heap.classStats()).toEqual([]);
      heap.check();
    } finally {
      heap.detach();
    }
  });

  it('walks the same heap once the backend has its walk (basic itself)', () => {
    const heap = GlobalAllocator.create({ backend: 'basic', heapBytes: 4 * MiB });
    try {
      heap.malloc(100);
      expect(heap.supportsWalk()).toBe(true);
      expect(expectWalkAgrees(heap).some((region) => region.kind === 'live')).toBe(true);
      expect(heap.classStats().map((table) => table.name)).toEqual(['free list', 'free sizes']);
    } finally {
      heap.detach();
    }
  });
});

describe('GlobalAllocator.walk with blocks allocated by two workers', () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = await WorkerPool.start(2);
  }, 60_000);
  afterAll(async () => {
    await pool?.close();
  });

  for (const strategy of ['first-fit', 'best-fit', 'worst-fit']) {
    it(`shows every worker's block as live, and agrees with stats (${strategy})`, async () => {
      const heap = GlobalAllocator.create({ backend: `basic:strategy=${strategy}`, heapBytes: 8 * MiB });
      try {
        const mine = [heap.malloc(3000), heap.malloc(17)];
        // Each worker attaches, allocates its blocks and detaches: the blocks stay live.
        const theirs = await Promise.all(
          [0, 1].map((index) =>
            pool.run<number[]>(index, { kind: 'allocate-and-detach', buffer: heap.buffer, blocks: 40 + index * 25, size: 24 + index * 200 }),
          ),
        );
        expect(theirs[0]).toHaveLength(40);
        expect(theirs[1]).toHaveLength(65);
        // Free some of each worker's blocks here, so free blocks lie between theirs.
        for (const blocks of theirs) for (let i = 0; i < blocks.length; i += 4) heap.free(blocks[i]!);
        heap.free(mine[0]!);
        const regions = expectWalkAgrees(heap);
        const live = new Map(regions.filter((region) => region.kind === 'live').map((region) => [region.address, region]));
        const kept = [...theirs[0]!.filter((_, i) => i % 4 !== 0), ...theirs[1]!.filter((_, i) => i % 4 !== 0), mine[1]!];
        expect(live.size).toBe(kept.length);
        for (const address of kept) {
          expect(live.get(address), `block ${address}`).toBeDefined();
          expect(live.get(address)!.bytes).toBe(heap.usableSize(address));
        }
        expect(regions.filter((region) => region.kind === 'free').length).toBe(heap.stats().freeBlocks);
      } finally {
        heap.detach();
      }
    });
  }
});
