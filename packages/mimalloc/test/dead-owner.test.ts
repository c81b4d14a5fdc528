/**
 * A thread killed at any store of its own paths (issue #12): an owner worker dies at named
 * steps of a malloc, a local free, an extension, a page slot taken or given back, a page
 * moving between queues, a retire or a hold, a drain of its delayed list, a collect of
 * thread_free, and a reclaim; other threads had freed some of its blocks remotely. The
 * reaper (`watchWorker`) rebuilds each of its pages from the blocks' freed markers and
 * abandons its segments: check() passes, every block it kept is intact, every block it was
 * freeing or had not handed out comes back, and the heap empties to 0 bytes.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';

import { flushRemoteFrees, heapReport, mimallocBackend, type MiStep } from '../src/index.js';
import { runDying } from './mi-workers.js';
import { keptWord, OWNER_KEEP, OWNER_OPS, OWNER_SHARED_BYTES, OWNER_VICTIMS, type OwnerDiesTask } from './workers/mi-worker.js';
import { expectEmptied, freeIfLive, until } from './helpers.js';

interface Case {
  step: MiStep;
  occurrence: number;
  operation: OwnerDiesTask['operation'];
  /** Which modes reach the step: pages are retired without delayed page reuse, held with it. */
  modes: 'both' | 'plain' | 'held';
  /** Another thread leaves an abandoned segment of 240-byte blocks first, for the owner to reclaim. */
  abandoned?: boolean;
  /**
   * The main thread also frees two victims into its remote-free buffer and pushes them only
   * after the owner's death: the rebuild of their page must leave them to it.
   */
  buffered?: boolean;
}

const CASES: Case[] = [
  { step: 'malloc:popped', occurrence: 400, operation: 'free-all', modes: 'both' },
  { step: 'malloc:counted', occurrence: 400, operation: 'free-all', modes: 'both' },
  { step: 'extend:linked', occurrence: 3, operation: 'free-all', modes: 'both' },
  { step: 'slot:counted', occurrence: 1, operation: 'free-all', modes: 'both' },
  { step: 'queue:unlinked', occurrence: 1, operation: 'free-all', modes: 'both' },
  { step: 'local-free:marked', occurrence: 300, operation: 'free-all', modes: 'both' },
  { step: 'local-free:linked', occurrence: 300, operation: 'free-all', modes: 'both' },
  { step: 'slot:cleared', occurrence: 1, operation: 'free-all', modes: 'plain' },
  { step: 'page:retired', occurrence: 1, operation: 'free-all', modes: 'plain' },
  { step: 'hold:emptied', occurrence: 1, operation: 'free-all', modes: 'held' },
  { step: 'hold:linking', occurrence: 2, operation: 'free-all', modes: 'held' },
  { step: 'drain:taken', occurrence: 1, operation: 'collect', modes: 'both' },
  { step: 'collect:taken', occurrence: 1, operation: 'collect', modes: 'both' },
  { step: 'collect:spliced', occurrence: 1, operation: 'collect', modes: 'both' },
  { step: 'malloc:popped', occurrence: 400, operation: 'free-all', modes: 'both', buffered: true },
  { step: 'collect:taken', occurrence: 1, operation: 'collect', modes: 'both', buffered: true },
  { step: 'reclaim:adopting', occurrence: 1, operation: 'free-all', modes: 'both', abandoned: true },
];

describe('an owner killed inside its own paths', () => {
  for (const delayedPageReuse of [false, true]) {
    for (const entry of CASES) {
      if (entry.modes === (delayedPageReuse ? 'plain' : 'held')) continue;
      const extra = entry.buffered === true ? ", blocks in another thread's remote-free buffer" : '';
      it(`(${delayedPageReuse ? 'delayedPageReuse' : 'mimalloc'}) dies at ${entry.step}${extra}: its heap is rebuilt and abandoned`, async () => {
        const heap = GlobalAllocator.create({ backend: mimallocBackend, options: { delayedPageReuse }, heapBytes: 32 * MiB });
        const sharedBuffer = new SharedArrayBuffer(OWNER_SHARED_BYTES);
        const shared = new Int32Array(sharedBuffer);
        const task: OwnerDiesTask = {
          kind: 'owner-dies',
          buffer: heap.buffer,
          shared: sharedBuffer,
          step: entry.step,
          occurrence: entry.occurrence,
          operation: entry.operation,
          keep: 40,
        };
        const dying = runDying(heap, task as never);
        await until(() => Atomics.load(shared, 0) === 1, 'the owner has its blocks');
        const victims = Array.from(shared.subarray(OWNER_VICTIMS, OWNER_VICTIMS + shared[2]!), (v) => v >>> 0);
        // The first victim's page is full: its free goes through the owner's delayed list; the
        // others to thread_free lists.
        const freed = new Set([victims[0]!, victims[1]!, victims[2]!, victims[1099]!, victims[1098]!]);
        // Pushed one by one, as the comment says (a buffer would push them as chains).
        for (const block of freed) {
          heap.free(block);
          flushRemoteFrees(heap);
        }
        const buffered = entry.buffered === true ? [victims[3]!, victims[4]!] : [];
        for (const block of buffered) {
          heap.free(block);
          freed.add(block);
        }
        // Another thread leaves live blocks of the owner's next size class: their segment is
        // abandoned, and the owner's next allocation reclaims it.
        let left: number[] = [];
        if (entry.abandoned === true) {
          const leaver = GlobalAllocator.attachSync(heap.buffer, { backends: [mimallocBackend] });
          left = Array.from({ length: 20 }, () => leaver.malloc(240));
          leaver.detach();
          expect(heapReport(heap).segments.abandoned).toBe(1);
        }
        Atomics.store(shared, 0, 2);
        Atomics.notify(shared, 0);
        const outcome = await dying;
        expect(outcome.died).toBe(true);
        if (!outcome.died) return;
        expect(outcome.report.failed).toEqual([]);
        heap.check();
        if (buffered.length > 0) {
          // Still this thread's to push, onto the page the rebuild abandoned.
          for (const block of buffered) expect(freeIfLive(heap, block)).toBe(false);
          flushRemoteFrees(heap);
          heap.check();
        }
        expect(heap.stats().recovery.failed).toBe(0);
        // Its kept blocks are live and intact; the victims freed remotely are free.
        for (let i = 0; i < shared[1]!; i++) {
          const block = shared[OWNER_KEEP + 2 * i]! >>> 0;
          const size = shared[OWNER_KEEP + 2 * i + 1]!;
          expect(heap.usableSize(block)).toBeGreaterThanOrEqual(size);
          for (let w = 2; w < Math.min(size >>> 2, 64); w++) expect(heap.memory.u32[(block >>> 2) + w]).toBe(keptWord(block, w));
        }
        for (const block of freed) expect(freeIfLive(heap, block)).toBe(false);
        // Everything else goes back: what it kept, the victims, and the blocks of its last
        // operation that it had handed out and not yet freed. A block it had taken off a list
        // but not handed out was rebuilt as free, so the heap empties to 0 bytes.
        for (let i = 0; i < shared[1]!; i++) heap.free(shared[OWNER_KEEP + 2 * i]! >>> 0);
        for (const block of victims) if (!freed.has(block)) heap.free(block);
        for (let i = 0; i < shared[3]!; i++) freeIfLive(heap, shared[OWNER_OPS + i]! >>> 0);
        for (const block of left) heap.free(block);
        expectEmptied(heap);
        heap.detach();
      }, 30_000);
    }
  }
});
