/**
 * The thread-cache death suite: a thread killed between any two steps of its cache (a push, a
 * pop, a refill, a flush, a remote free between clearing the entry and the release) is reaped
 * by `watchWorker`: the heap passes `check()`, every other thread's blocks are intact, the
 * dead thread's cache is given back, and at most the one block it had in flight is lost. Run
 * by every locked backend's package: a refill takes the backend's own way (one `allocate` at
 * a time, or a run of `allocateRun`), so each backend's refill is killed at its steps.
 */

import type { Worker } from 'node:worker_threads';

import { describe, expect, it } from 'vitest';

import { AllocError, type GlobalAllocator, MAX_THREADS_LIMIT, MiB, type ReapReport, type ThreadCacheStep } from '@heaplab/core';
import { cacheRecordOffset, TC_BIN_LIMIT, TC_BLOCK_NEXT, TC_BYTES, TC_CLASSES, TC_COUNTS, TC_HEADS } from '@heaplab/core/internal';
import { expectAllocError, makeHeap, type SuiteTarget, targetDescriptor } from './conformance.js';
import type { CacheStepDeathTask } from './kit-worker.js';
import { type Signature, signBlock, verifyBlock } from './patterns.js';
import { spawnKitWorker } from './worker-pool.js';

const STEPS: ThreadCacheStep[] = ['linked', 'pushed', 'popped', 'refilled-one', 'flush-popped'];

/** Runs the task in a fresh worker; resolves with the reaper's report, or null when it finished. */
async function dieAt(target: SuiteTarget, heap: GlobalAllocator, task: CacheStepDeathTask): Promise<ReapReport | null> {
  const worker: Worker = spawnKitWorker({}, targetDescriptor(target));
  const reaped = new Promise<ReapReport>((resolve) => heap.watchWorker(worker, resolve));
  const replied = new Promise<unknown>((resolve) => worker.once('message', resolve));
  worker.postMessage({ id: 1, task });
  const outcome = await Promise.race([reaped, replied.then((reply) => ({ reply }))]);
  if ('reply' in outcome) {
    await worker.terminate();
    await reaped;
    return null;
  }
  return outcome;
}

/** A heap with 40 signed blocks of this thread's, before another thread dies on it. */
function heapWithHeldBlocks(target: SuiteTarget): {
  heap: GlobalAllocator;
  held: { address: number; signature: Signature }[];
} {
  const heap = makeHeap(target, 8 * MiB);
  const held = Array.from({ length: 40 }, (_, i) => {
    const size = 8 + (i % 10) * 24;
    const address = heap.malloc(size);
    const signature = { writer: 9, sequence: i, size };
    signBlock(heap.memory.u8, address, signature);
    return { address, signature };
  });
  return { heap, held };
}

/**
 * What a reaped death must leave: no failure, a heap that passes `check()`, this thread's
 * blocks intact, the dead thread's blocks freeable (its in-flight one at most refused, as
 * already free), no cache left, at most the one in-flight block lost, and free structures
 * that fill and empty the heap.
 */
function expectCleanReap(heap: GlobalAllocator, held: ReturnType<typeof heapWithHeldBlocks>['held'], report: ReapReport, live: SharedArrayBuffer): void {
  expect(report.failed).toEqual([]);
  heap.check();
  for (const block of held) expect(verifyBlock(heap.memory.u8, block.address, block.signature)).toBeNull();
  for (const block of held) heap.free(block.address);
  // Free what the dead thread held; the block it was freeing when it died may be free
  // already (it reached the bin, which the reaper gave back).
  let refused = 0;
  for (const address of new Int32Array(live)) {
    if (address === 0) continue;
    try {
      heap.free(address);
    } catch (error) {
      if (!(error instanceof AllocError) || error.kind !== 'NotAllocated') throw error;
      refused++;
    }
  }
  expect(refused).toBeLessThanOrEqual(1);
  expect(heap.stats().threadCache!.blocks).toBe(0);
  // What the dead thread had in flight (one block at most: popped from its bin and not
  // yet handed out, or allocated by a refill and not yet on the bin) is lost; nothing else.
  const used = heap.usedBytes();
  expect(used).toBeLessThanOrEqual(128);
  // The heap fills and empties: its free structures are whole.
  const filled: number[] = [];
  for (let address = heap.malloc(4096); address !== 0; address = heap.malloc(4096)) filled.push(address);
  expect(filled.length).toBeGreaterThan(1800);
  for (const address of filled) heap.free(address);
  expect(heap.usedBytes()).toBe(used);
  heap.check();
}

/**
 * The slot of the gone thread: the one cache record besides this thread's that holds blocks.
 * Every record the cache region has room for is looked at, whatever the heap's `maxThreads`.
 */
function deadSlotOf(heap: GlobalAllocator): number {
  for (let threadId = 1; threadId <= MAX_THREADS_LIMIT; threadId++) {
    if (threadId !== heap.threadId && heap.memory.u32[(cacheRecordOffset(threadId) + TC_BYTES) >>> 2] !== 0) return threadId;
  }
  return 0;
}

/**
 * Sets the count of the one bin of `threadId`'s record whose list is one longer or shorter
 * than its count (a push or a pop stopped after the head) to the list's length, as the
 * count's store would have; true when there was exactly one such bin.
 */
function moveTornCount(heap: GlobalAllocator, threadId: number): boolean {
  const { u8, u32 } = heap.memory;
  const record = cacheRecordOffset(threadId);
  const torn: { cls: number; length: number }[] = [];
  for (let cls = 1; cls <= TC_CLASSES; cls++) {
    let length = 0;
    for (let block = u32[((record + TC_HEADS) >>> 2) + cls - 1]!; block !== 0 && length <= TC_BIN_LIMIT; block = u32[(block + TC_BLOCK_NEXT) >>> 2]!) length++;
    const count = u8[record + TC_COUNTS + cls - 1]!;
    if (Math.abs(length - count) === 1) torn.push({ cls, length });
  }
  if (torn.length !== 1) return false;
  u8[record + TC_COUNTS + torn[0]!.cls - 1] = torn[0]!.length;
  return true;
}

/**
 * Registers the suite for `target` (a locked backend, its cache on): deaths at every step of
 * the cache, twice each, reaped by `watchWorker` or `releaseThreadsOf`.
 */
export function describeCacheDeaths(target: SuiteTarget): void {
  describe(`thread-cache deaths: ${target.label}`, () => {
    for (const step of STEPS) {
      for (const nth of [1, 7]) {
        it(`is reaped cleanly when it dies at '${step}' (occurrence ${nth})`, async () => {
          const { heap, held } = heapWithHeldBlocks(target);
          const live = new SharedArrayBuffer(64 * 4);
          const report = await dieAt(target, heap, { kind: 'cache-step-death', buffer: heap.buffer, step, nth, live });
          expect(report, `the worker reached step '${step}' ${nth} times`).not.toBeNull();
          expectCleanReap(heap, held, report!, live);
          heap.detach();
        }, 30_000);
      }
    }

    // A push writes the bin's count and then its byte total, and a pop the same two; no step
    // hook sits between them (it would cost the fast paths about a nanosecond an iteration,
    // thread-cache.md). The state a death there leaves is the state at the step before with
    // the count already moved: the worker dies at that step, and the test moves the count of
    // the bin whose list and count disagree by one before the reaper runs.
    for (const { step, between } of [
      { step: 'pushed', between: 'count and byte total of a push' },
      { step: 'popped', between: 'count and byte total of a pop' },
    ] as const) {
      for (const nth of [1, 7]) {
        it(`is reaped cleanly when it dies between the ${between} (occurrence ${nth})`, async () => {
          const { heap, held } = heapWithHeldBlocks(target);
          const live = new SharedArrayBuffer(64 * 4);
          const worker: Worker = spawnKitWorker({}, targetDescriptor(target));
          const nodeThreadId = worker.threadId; // -1 once the worker has exited
          const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
          worker.postMessage({ id: 1, task: { kind: 'cache-step-death', buffer: heap.buffer, step, nth, live } satisfies CacheStepDeathTask });
          await exited;
          const threadId = deadSlotOf(heap);
          expect(moveTornCount(heap, threadId), 'one bin whose list and count disagree by one').toBe(true);
          const report = heap.releaseThreadsOf(nodeThreadId);
          expect(report.threads).toEqual([threadId]);
          expectCleanReap(heap, held, report, live);
          heap.detach();
        }, 30_000);
      }
    }

    it("loses only the block it was freeing when it dies between clearing another thread's entry and the release", async () => {
      const heap = makeHeap(target, 8 * MiB);
      const keep = heap.malloc(48);
      const given = Array.from({ length: 3 }, () => heap.malloc(48));
      const live = new SharedArrayBuffer(64 * 4);
      const report = await dieAt(target, heap, { kind: 'cache-step-death', buffer: heap.buffer, step: 'remote-cleared', nth: 2, live, remoteFrees: given });
      expect(report, "the worker reached step 'remote-cleared' twice").not.toBeNull();
      expect(report!.failed).toEqual([]);
      heap.check();
      // The first remote free was done; the second block is live in the backend with no
      // entry, so its free now takes the validated way and succeeds; the third was never freed.
      expectAllocError(() => heap.free(given[0]!), 'NotAllocated');
      heap.free(given[1]!);
      heap.free(given[2]!);
      heap.free(keep);
      expect(heap.usedBytes()).toBe(0);
      heap.check();
      heap.detach();
    }, 30_000);
  });
}
