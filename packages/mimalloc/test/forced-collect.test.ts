/**
 * A forced collect never waits for another thread (issue #12): the out-of-memory retry
 * inside malloc and `collect(heap, true)` leave a block whose page a stalled producer claims
 * for a later drain. Here a worker stops (alive) between the steps of a delayed free, with
 * its block on the owner's delayed list and the page still claimed, and the owner's
 * allocation on a full heap returns 0 at once instead of waiting for it.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '@heaplab/core';

import { collect, mimallocBackend } from '../src/index.js';
import { DELAYED_FREEING, USE_DELAYED_FREE } from '../src/layout.js';
import { MiWorker } from './mi-workers.js';
import { delayedState, until } from './helpers.js';

describe('a forced collect with a remote free stopped between its steps', () => {
  it('returns at once: malloc on a full heap gives 0, collect(force) returns, and both work once it resumes', async () => {
    const heap = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 16 * MiB });
    // A full first page of 64-byte blocks (its remote frees go through the delayed list),
    // then the rest of the heap in 1 MiB blocks.
    const small = Array.from({ length: 1100 }, () => heap.malloc(64));
    expect(delayedState(heap, small[0]!)).toBe(USE_DELAYED_FREE);
    const large: number[] = [];
    for (let block = heap.malloc(MiB); block !== 0; block = heap.malloc(MiB)) large.push(block);
    const producer = new MiWorker();
    const signal = new SharedArrayBuffer(8);
    const words = new Int32Array(signal);
    try {
      // The producer pushes its block on the owner's delayed list and stops before it lifts
      // the claim: a drain that must free that block would have to wait for it.
      const freed = producer.run<string>({
        kind: 'die-at',
        buffer: heap.buffer,
        step: 'remote:delayed',
        operation: 'free',
        addresses: [small[0]!],
        signal,
      });
      await until(() => Atomics.load(words, 0) === 1, 'the producer stops');
      expect(delayedState(heap, small[0]!)).toBe(DELAYED_FREEING);

      // The bounds only catch a wait for the producer (the drain waited 10 s); they are no
      // speed assertions.
      let started = performance.now();
      expect(heap.malloc(MiB)).toBe(0);
      expect(performance.now() - started, 'malloc on a full heap').toBeLessThan(2_000);
      started = performance.now();
      collect(heap, true);
      expect(performance.now() - started, 'collect(force)').toBeLessThan(2_000);
      expect(delayedState(heap, small[0]!)).toBe(DELAYED_FREEING);

      Atomics.store(words, 1, 1);
      Atomics.notify(words, 1);
      expect(await freed).toBe('finished');
      // The block the drains left behind is freed by the next one.
      collect(heap, true);
      heap.check();
      for (const block of [...small.slice(1), ...large]) heap.free(block);
      collect(heap, true);
      expect(heap.usedBytes()).toBe(0);
      expect(heap.malloc(MiB)).not.toBe(0);
      heap.check();
    } finally {
      Atomics.store(words, 1, 1);
      Atomics.notify(words, 1);
      await producer.terminate();
      heap.detach();
    }
  }, 60_000);
});
