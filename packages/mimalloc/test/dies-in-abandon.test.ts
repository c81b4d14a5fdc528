/**
 * A thread that dies inside its own detach (issue #12, "a thread may die at any
 * instruction"): the owner worker detaches and ends its thread (`process.exit()` from a step
 * hook, so no `finally` runs) at each named step of mimalloc's abandon (`heapAbandon`): while
 * its pages switch to `NEVER_DELAYED_FREE`, inside the complete drain of its delayed list,
 * while its pages are collected, freed, held or taken out of their queues, while its cached
 * segment is given back, between the pages of a segment losing their owner, under the
 * segment lock while a segment is published on the abandoned list, and between segments.
 * Core leaves its slot `releasing`; the reaper (`watchWorker`) takes it and calls
 * `releaseThread(id, died = true)`, which must finish the abandon from wherever it stopped.
 * Then check() passes, no lock stays wedged, nothing is lost (`stats().recovery`), the
 * kept blocks are intact, the survivor allocates and frees, a new worker attaches and
 * reclaims the abandoned segments, and the heap empties to 0 bytes.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';

import { flushRemoteFrees, heapReport, mimallocBackend, type MiStep } from '../src/index.js';
import { MiWorker, runDying } from './mi-workers.js';
import { keptWord, OWNER_KEEP, OWNER_REMOTE, OWNER_REMOTE_COUNT, OWNER_SHARED_BYTES, OWNER_VICTIMS, type OwnerDiesTask } from './workers/mi-worker.js';
import { expectEmptied, freeIfLive, until } from './helpers.js';

/**
 * The steps of the abandon of the owner worker's heap, each at its first and at its last
 * occurrence, in the order it reaches them (a census with a recording hook gave the counts).
 * Without delayed page reuse the empty pages are freed; with it, they are held, or freed
 * when their goal is reached (the first 240-byte page only: the holds after it took
 * deferred goals, which the main thread's quiescent point does not pass).
 */
const PLAIN: [MiStep, number][] = [
  ['abandon:never-delayed', 1],
  ['abandon:never-delayed', 13],
  ['drain:taken', 1],
  ['collect:taken', 1],
  ['collect:spliced', 1],
  ['queue:unlinked', 1],
  ['abandon:drained', 1],
  ['abandon:page-left', 1],
  ['collect:taken', 2],
  ['collect:spliced', 2],
  ['queue:unlinked', 2],
  ['slot:cleared', 1],
  ['slot:cleared', 3],
  ['abandon:page-left', 10],
  ['segment:cache:tagged', 1],
  ['segment:release:disowned', 1],
  ['segment:release:unmapped', 1],
  ['abandon:page-disowned', 1],
  ['abandon:page-disowned', 10],
  ['segment:abandon:disowned', 1],
  ['abandon:published', 1],
  ['segment:abandon:disowned', 2],
  ['abandon:published', 2],
  ['abandon:segments-done', 1],
];
const HELD: [MiStep, number][] = [
  ['abandon:never-delayed', 1],
  ['abandon:never-delayed', 18],
  ['drain:taken', 1],
  ['collect:spliced', 1],
  ['queue:unlinked', 1],
  ['abandon:drained', 1],
  ['queue:unlinked', 2],
  ['slot:cleared', 1],
  ['abandon:held-polled', 1],
  ['abandon:page-left', 1],
  ['collect:taken', 2],
  ['collect:spliced', 3],
  ['abandon:held-goal', 1],
  ['abandon:page-left', 17],
  ['abandon:page-disowned', 1],
  ['abandon:page-disowned', 17],
  ['segment:abandon:disowned', 1],
  ['abandon:published', 1],
  ['segment:abandon:disowned', 3],
  ['abandon:published', 3],
  ['abandon:segments-done', 1],
];

describe('a thread killed inside its own abandon (detach)', () => {
  for (const delayedPageReuse of [false, true]) {
    for (const [step, occurrence] of delayedPageReuse ? HELD : PLAIN) {
      const mode = delayedPageReuse ? 'delayedPageReuse' : 'mimalloc';
      it(`(${mode}) dies at ${step} #${occurrence}: the reaper finishes the abandon`, async () => {
        const heap = GlobalAllocator.create({ backend: mimallocBackend, options: { delayedPageReuse }, heapBytes: 32 * MiB });
        const sharedBuffer = new SharedArrayBuffer(OWNER_SHARED_BYTES);
        const shared = new Int32Array(sharedBuffer);
        const task: OwnerDiesTask = { kind: 'owner-dies', buffer: heap.buffer, shared: sharedBuffer, step, occurrence, operation: 'detach', keep: 40 };
        const dying = runDying(heap, task as never);
        await until(() => Atomics.load(shared, 0) === 1, 'the owner has its blocks');
        const victims = Array.from(shared.subarray(OWNER_VICTIMS, OWNER_VICTIMS + shared[2]!), (v) => v >>> 0);
        const remote = Array.from(shared.subarray(OWNER_REMOTE, OWNER_REMOTE + OWNER_REMOTE_COUNT), (v) => v >>> 0);
        // The first victim's page is full: its free goes through the owner's delayed list,
        // which the abandon drains; the others to thread_free lists, which it collects. The
        // 1500-byte page empties only when the abandon collects it.
        const freed = new Set([victims[0]!, victims[1]!, victims[2]!, victims[1099]!, victims[1098]!, ...remote]);
        // Pushed one by one (a buffer would push each page's as one chain).
        for (const block of freed) {
          heap.free(block);
          flushRemoteFrees(heap);
        }
        // Past the goals of the pages the owner emptied so far (they are freed at abandon).
        heap.quiescent();
        Atomics.store(shared, 0, 2);
        Atomics.notify(shared, 0);
        const outcome = await dying;
        expect(outcome.died, 'the worker reached the step').toBe(true);
        if (!outcome.died) return;
        expect(outcome.report.failed.map((f) => f.reason).join('\n')).toBe('');
        expect(outcome.report.threads).toHaveLength(1);
        heap.check();
        const recovery = heap.stats().recovery;
        expect(recovery.failed).toBe(0);
        expect(recovery.lostBytes).toBe(0);
        expect(recovery.lostBlocks).toBe(0);
        expect(heap.attachedThreads()).toBe(1);
        // Its kept blocks are live and intact; the blocks freed remotely are free.
        for (let i = 0; i < shared[1]!; i++) {
          const block = shared[OWNER_KEEP + 2 * i]! >>> 0;
          const size = shared[OWNER_KEEP + 2 * i + 1]!;
          expect(heap.usableSize(block)).toBeGreaterThanOrEqual(size);
          for (let w = 2; w < Math.min(size >>> 2, 64); w++) expect(heap.memory.u32[(block >>> 2) + w]).toBe(keptWord(block, w));
        }
        for (const block of freed) expect(freeIfLive(heap, block)).toBe(false);
        // No lock is wedged: the survivor allocates and frees in every size class the dead
        // thread used, and a new worker attaches, reclaims what was abandoned, and detaches.
        const survivor = [16, 64, 240, 480, 1500, 3000, 100_000, 1 << 20].map((size) => heap.malloc(size));
        expect(survivor).not.toContain(0);
        for (const block of survivor) heap.free(block);
        const abandoned = heapReport(heap).segments.abandoned;
        const worker = new MiWorker();
        const reclaimed = await worker.run<number>({ kind: 'attach-reclaim', buffer: heap.buffer });
        await worker.terminate();
        expect(reclaimed).toBe(abandoned);
        heap.check();
        // Everything else goes back, and the heap empties.
        for (let i = 0; i < shared[1]!; i++) heap.free(shared[OWNER_KEEP + 2 * i]! >>> 0);
        for (const block of victims) if (!freed.has(block)) heap.free(block);
        expectEmptied(heap);
        expect(heap.stats().recovery).toMatchObject({ failed: 0, lostBytes: 0, lostBlocks: 0 });
        heap.detach();
      }, 30_000);
    }
  }
});
