/**
 * The suites every heaplab backend runs (conformance: sizes, alignment, contents, full heap,
 * realloc, stats, bad input, random sequences; multi-worker: threads allocating and freeing on
 * one heap, and freeing each other's blocks), the crash-recovery suite, and a test that
 * check() notices a broken header.
 */

import { GlobalAllocator, MiB } from '@heaplab/core';
import { describeConformance, describeCrashRecovery, describeMultiWorker, errorOf } from '@heaplab/test-kit';
import { expect, it } from 'vitest';

import { backend } from '../src/__NAME__.js';

describeConformance({ label: backend.name, backend });
describeMultiWorker({ label: backend.name, backend });
// A thread killed before each store of a malloc, a free and a realloc, then recover() and
// check(): it fails when some store leaves the headers not tiling a pool (see place()), or
// when recover() misses something the dead thread left half done. Keep it passing as you
// change the allocator: every new store order must survive a death between any two stores.
describeCrashRecovery({ label: backend.name, backend });

it('check() reports a block header that a buggy program overwrote', () => {
  const heap = GlobalAllocator.create({ backend, heapBytes: 4 * MiB });
  try {
    const first = heap.malloc(40);
    heap.malloc(40);
    heap.check();
    // One word past the usable bytes of the first block: its boundary tag (footer) here; in
    // an allocator without footers, the next block's header.
    heap.memory.u32[(first + heap.usableSize(first)) >>> 2] = 0xdead;
    const error = errorOf(() => heap.check());
    expect(error.kind).toBe('HeapCorrupted');
  } finally {
    heap.detach();
  }
});
