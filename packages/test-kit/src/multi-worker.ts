/**
 * The multi-worker harness: N workers attach to one heap and churn through blocks, signing
 * each and verifying it before it is freed; in the cross-thread variant they hand blocks to
 * each other through shared transfer slots, so blocks are freed by threads that did not
 * allocate them. Afterwards the main thread drains what is left, checks the heap and expects
 * every byte back.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { MiB } from '@heaplab/core';
import { checkAndWalk, makeHeap, type SuiteTarget, targetDescriptor } from './conformance.js';
import type { ChurnResult } from './kit-worker.js';
import { verifyBlock } from './patterns.js';
import { expectWalkAgrees } from './walk.js';
import { WorkerPool } from './worker-pool.js';

/** How hard the harness works. */
export interface MultiWorkerOptions {
  /** Worker counts to run, each a scenario (default 1, 2 and 4). */
  workerCounts?: readonly number[];
  /** Iterations per worker (default 20 000). */
  iterations?: number;
  /** Blocks each worker holds at once (default 64). */
  slots?: number;
  /** Largest block (default 8 KiB); most blocks are far smaller. */
  maxSize?: number;
  /** Transfer slots in the cross-thread variant (default 32). */
  mailboxSlots?: number;
  /** Arena bytes (default 64 MiB). */
  heapBytes?: number;
}

/**
 * Registers the multi-worker scenarios for `target` with vitest. Workers are started once for
 * the whole block and reused by every scenario.
 */
export function describeMultiWorker(target: SuiteTarget, options: MultiWorkerOptions = {}): void {
  const workerCounts = options.workerCounts ?? [1, 2, 4];
  const iterations = options.iterations ?? 20_000;
  const slots = options.slots ?? 64;
  const maxSize = options.maxSize ?? 8 * 1024;
  const mailboxSlots = options.mailboxSlots ?? 32;
  const heapBytes = options.heapBytes ?? 64 * MiB;

  describe(`multi-worker: ${target.label}`, () => {
    let pool: WorkerPool;
    beforeAll(async () => {
      pool = await WorkerPool.start(Math.max(...workerCounts), targetDescriptor(target));
    }, 60_000);
    afterAll(async () => {
      await pool?.close();
    });

    const runChurn = async (workers: number, mailbox?: SharedArrayBuffer) => {
      const heap = makeHeap(target, heapBytes);
      const mallocsBefore = heap.stats().calls.malloc;
      const results = await Promise.all(
        Array.from({ length: workers }, (_, index) =>
          pool.run<ChurnResult>(index, {
            kind: 'churn',
            buffer: heap.buffer,
            seed: 0x1000 + index * 7919,
            iterations,
            slots,
            maxSize,
            trustModules: [heap.backendDescriptor.moduleUrl],
            ...(mailbox !== undefined ? { mailbox } : {}),
          }),
        ),
      );
      return { heap, results, mallocsBefore };
    };

    for (const workers of workerCounts) {
      it(`${workers} worker(s) allocate, sign, verify and free on one heap`, async () => {
        const { heap, results, mallocsBefore } = await runChurn(workers);
        const allocations = results.reduce((sum, result) => sum + result.allocations, 0);
        expect(allocations).toBe(workers * iterations - results.reduce((sum, r) => sum + r.reallocs, 0));
        const stats = heap.stats();
        expect(stats.calls.malloc - mallocsBefore).toBe(allocations);
        expect(stats.liveBlocks).toBe(0);
        expect(stats.usedBytes).toBe(0);
        expect(stats.threads).toBe(1);
        checkAndWalk(heap);
        heap.detach();
      });

      it(`${workers} worker(s) free blocks that other workers allocated`, async () => {
        const mailbox = new SharedArrayBuffer(4 * mailboxSlots);
        const { heap, results } = await runChurn(workers, mailbox);
        const handedOff = results.reduce((sum, result) => sum + result.handedOff, 0);
        const received = results.reduce((sum, result) => sum + result.received, 0);
        expect(handedOff).toBeGreaterThan(0);
        if (workers > 1) expect(received).toBeGreaterThan(0);
        // What is still in transit is verified and freed by the main thread.
        const slotsLeft = new Uint32Array(mailbox);
        if (heap.supportsWalk()) {
          // Blocks in transit were allocated by the workers, which are gone: each is live.
          const live = new Set(
            expectWalkAgrees(heap)
              .filter((region) => region.kind === 'live')
              .map((region) => region.address),
          );
          for (const address of slotsLeft) if (address !== 0) expect(live.has(address), `the walk shows block ${address}, in transit, as live`).toBe(true);
        }
        let drained = 0;
        for (let index = 0; index < slotsLeft.length; index++) {
          const address = slotsLeft[index]!;
          if (address === 0) continue;
          expect(verifyBlock(heap.memory.u8, address)).toBeNull();
          heap.free(address);
          drained++;
        }
        expect(received + drained).toBe(handedOff);
        const stats = heap.stats();
        expect(stats.liveBlocks).toBe(0);
        expect(stats.usedBytes).toBe(0);
        checkAndWalk(heap);
        heap.detach();
      });
    }
  });
}
