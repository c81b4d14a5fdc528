import { Random } from '@heaplab/core';
import { type ChurnResult, signBlock, type Signature, verifyBlock, WorkerPool } from '@heaplab/test-kit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { openThreadAllocator, prepareSource } from '../src/contenders/allocator-sources.js';
import { discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { baselineContender, type Contender } from '../src/contenders/contender.js';

// The allocators the bench opens for each thread of a run, checked with the test kit's block
// signatures: every block keeps its bytes while others come and go.

const HEAP_BYTES = 16 << 20;

await discoverBackends();
const [bestFit] = resolveBackendContenders([{ name: 'basic', options: { strategy: 'best-fit' } }]);

describe.each([
  ['basic:strategy=best-fit', bestFit!, 1],
  ['@thi.ng/malloc', baselineContender('thi.ng'), 1],
  ['@thi.ng/malloc behind the mutex', baselineContender('thi.ng'), 2],
] as [string, Contender, number][])('%s', (_label, contender, threads) => {
  it('hands out blocks that keep their bytes', async () => {
    const prepared = prepareSource(contender, threads, HEAP_BYTES);
    const opened = await openThreadAllocator(prepared.source, 0, prepared.heap);
    const { allocator, memory } = opened;
    const random = new Random(threads);
    const live = new Map<number, Signature>();
    try {
      for (let sequence = 0; sequence < 4000; sequence++) {
        if (live.size > 0 && random.int(0, 3) === 0) {
          const [address, signature] = [...live][random.int(0, live.size)]!;
          expect(verifyBlock(memory!.u8, address, signature)).toBeNull();
          allocator!.free(address);
          live.delete(address);
        }
        // At least a byte: @thi.ng/malloc answers 0 to malloc(0).
        const signature = { writer: 1, sequence, size: 1 + random.size(4095) };
        const address = allocator!.malloc(signature.size);
        expect(address).not.toBe(0);
        signBlock(memory!.u8, address, signature);
        live.set(address, signature);
      }
      for (const [address, signature] of live) expect(verifyBlock(memory!.u8, address, signature)).toBeNull();
      expect(prepared.heap?.check().liveBlocks ?? live.size).toBe(live.size);
    } finally {
      opened.release();
      prepared.heap?.detach();
    }
  });
});

describe("a backend row's heap, shared", () => {
  let pool: WorkerPool;
  beforeAll(async () => {
    pool = await WorkerPool.start(2);
  }, 60_000);
  afterAll(async () => {
    await pool?.close();
  });

  it('is attached and churned by other workers, who find its backend from the heap', async () => {
    const prepared = prepareSource(bestFit!, 2, HEAP_BYTES);
    try {
      const task = { kind: 'churn', buffer: prepared.heap!.buffer, iterations: 5000, slots: 64, maxSize: 2048 } as const;
      const results = await Promise.all([0, 1].map((index) => pool.run<ChurnResult>(index, { ...task, seed: index + 1 })));
      for (const result of results) expect(result.allocations).toBeGreaterThan(0);
      const report = prepared.heap!.check();
      expect(report.liveBlocks).toBe(0);
      expect(prepared.heap!.stats().backend).toBe('basic');
    } finally {
      prepared.heap?.detach();
    }
  });
});
