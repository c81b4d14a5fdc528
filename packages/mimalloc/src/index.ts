/**
 * @heaplab/mimalloc: mimalloc's design (v1, 4 MiB segments) over heaplab's shared heap. This
 * module holds the backend's descriptor and registers it as `mimalloc`, so
 * `GlobalAllocator.create({ backend: 'mimalloc' })` works (`mimalloc:secure=true` selects
 * secure mode), and mimalloc's extensions beyond the `Backend` interface, reached from a
 * `GlobalAllocator` handle through `heap.backendOf(mimallocBackend)`: collection, the
 * deferred-free callback, figures, and test hooks. Each acts for the calling thread's handle.
 */

import { type GlobalAllocator, registerBackend } from '@heaplab/core';
import { defineBackend, park } from '@heaplab/core/backend';

import { type DeferredFree, type MiStep, SEGMENT_LOCK } from './context.js';
import { heapCollect } from './heap.js';
import { SEGMENT_USABLE_BYTES } from './internal.js';
import { BACKEND_NAME, SEGMENT_BYTES, SEGMENT_LARGE, SEGMENT_SMALL, STATE_BYTES } from './layout.js';
import { MimallocBackend } from './mimalloc.js';
import { MIMALLOC_OPTIONS, type MimallocOptions } from './options.js';
import { flushRemoteBuffer } from './remote.js';
import { LARGE_OBJ_SIZE_MAX, segmentKindFor } from './size-classes.js';
import { formatReport, type MimallocReport, mimallocReport } from './stats.js';

/**
 * The mimalloc backend's descriptor. Thread-safe: core takes no lock around it; the segment
 * lock (`segments`) is its own. `normalizeOptions` @throws AllocError `InvalidParam` for
 * unknown options or values; `create` @throws AllocError `InvalidParam` when the state area
 * is too small.
 */
export const mimallocBackend = defineBackend<MimallocOptions, MimallocBackend>({
  name: BACKEND_NAME,
  summary: 'mimalloc v1: 4 MiB segments, per-thread heaps, sharded free lists, lock-free cross-thread free',
  moduleUrl: import.meta.url,
  concurrency: 'thread-safe',
  options: MIMALLOC_OPTIONS,
  locks: [SEGMENT_LOCK],
  stateBytes: STATE_BYTES,
  heapBytesNeeded: ({ threads, largestBlock }) => threads * segmentsPerThread(largestBlock) * SEGMENT_BYTES,
  create: (context, options) => new MimallocBackend(context, options),
});

registerBackend(mimallocBackend);

/**
 * The segments one thread owns at least when it asks for blocks of up to `largestBlock`
 * bytes: a thread's pages come from its own segments, one kind of page per segment (small
 * pages up to 16 KiB, medium up to 128 KiB, large up to 2 MiB), so a thread using every kind
 * up to its largest block owns a segment of each; a huge block is a run of segments of its
 * own besides. Kinds are numbered from 1 in size order, so the kind of the largest block
 * counts the kinds up to it.
 */
function segmentsPerThread(largestBlock: number): number {
  if (largestBlock > LARGE_OBJ_SIZE_MAX) return SEGMENT_LARGE + Math.ceil(largestBlock / SEGMENT_USABLE_BYTES);
  return largestBlock === 0 ? SEGMENT_SMALL : segmentKindFor(largestBlock);
}

export { MimallocBackend } from './mimalloc.js';
export type { DeferredFree, MiStep } from './context.js';
export { MIMALLOC_OPTIONS, type MimallocOptions } from './options.js';
export type { BinReport, MimallocReport, ThreadReport } from './stats.js';
export { BIN_BLOCK_SIZE, BIN_MAX, binOfSize, LARGE_OBJ_SIZE_MAX } from './size-classes.js';

/**
 * This thread's mimalloc instance behind `heap`.
 * @throws AllocError `InvalidParam` when the heap's backend is not mimalloc
 */
export function mimallocOf(heap: GlobalAllocator): MimallocBackend {
  return heap.backendOf(mimallocBackend);
}

/**
 * Collects this thread's heap (`mi_heap_collect`): runs the deferred-free callback, drains
 * the delayed frees that no remote free is mid-way on, with `force` reclaims every
 * abandoned segment, collects every page's remote frees, and gives back empty pages and
 * segments (retired pages too when `force`). Never waits for another thread.
 * @throws AllocError `InvalidParam` for a heap that is not mimalloc
 */
export function collect(heap: GlobalAllocator, force = false): void {
  heapCollect(mimallocOf(heap).context, force);
}

/**
 * Pushes this thread's buffered remote frees to their pages now (`collect` and detach do it
 * too): a thread gathers its frees of other threads' blocks of one page in a buffer of up to
 * 64 blocks and pushes them together (see "The remote-free buffer" in `layout.ts`), so until
 * then their owner cannot reuse them, though they are free. For a thread that frees a few
 * blocks of another and then stays idle, or for tests that look at the owner's lists.
 * @throws AllocError `InvalidParam` for a heap that is not mimalloc
 */
export function flushRemoteFrees(heap: GlobalAllocator): void {
  flushRemoteBuffer(mimallocOf(heap).context);
}

/**
 * Registers this thread's deferred-free callback (mimalloc's `mi_register_deferred_free`), or
 * removes it with null. It is called from the allocation slow path (at least once for each
 * page's worth of allocations) with `force = false`, and from `collect` with `force`, with
 * the heap's heartbeat (the count of slow-path calls); it may allocate and free, but is not
 * re-entered.
 * @throws AllocError `InvalidParam` for a heap that is not mimalloc
 */
export function registerDeferredFree(heap: GlobalAllocator, callback: DeferredFree | null): void {
  mimallocOf(heap).context.deferredFree = callback;
}

/**
 * The detailed figures of the whole heap: segments by kind, pages, size classes and each
 * thread's counters and slow-path events.
 * @throws AllocError `InvalidParam` for a heap that is not mimalloc
 */
export function heapReport(heap: GlobalAllocator): MimallocReport {
  return mimallocReport(mimallocOf(heap).context);
}

/**
 * The figures as a printable table (`mi_stats_print`), followed, when `perBin`, by the
 * tables of `heap.classStats()` (the bins with their cumulative and peak counts, and the
 * page kinds): one source for both.
 * @throws AllocError `InvalidParam` for a heap that is not mimalloc
 */
export function statsTable(heap: GlobalAllocator, perBin = false): string {
  const report = heapReport(heap);
  return formatReport(report, perBin ? heap.classStats() : []);
}

/**
 * The figures as JSON.
 * @throws AllocError `InvalidParam` for a heap that is not mimalloc
 */
export function statsJson(heap: GlobalAllocator): string {
  return JSON.stringify(heapReport(heap));
}

/**
 * Test hook: makes this thread's remote frees that claim a delayed free stall between their
 * two steps (after `DELAYED_FREEING` is set, before the block is pushed on the owner's
 * delayed list). `signal` is an `Int32Array` over shared memory: the stalled thread stores 1
 * in word 0 and notifies it, then waits until word 1 is nonzero (at most 30 s). Null
 * removes the hook. For tests only.
 * @throws AllocError `InvalidParam` for a heap that is not mimalloc
 */
export function setDelayedFreeStall(heap: GlobalAllocator, signal: Int32Array | null): void {
  setStepHook(
    heap,
    signal === null
      ? null
      : (step) => {
          if (step === 'remote:claimed') stallOn(signal);
        },
  );
}

/**
 * Test hook: calls `hook` at each named step of this thread's slow paths (`MiStep`), so a
 * test can stop the thread there (stall it, or end it with `process.exit()` to kill it
 * between two stores). A thread with a hook takes the slow variants of malloc and free.
 * Null removes it. For tests only.
 * @throws AllocError `InvalidParam` for a heap that is not mimalloc
 */
export function setStepHook(heap: GlobalAllocator, hook: ((step: MiStep) => void) | null): void {
  mimallocOf(heap).context.setStepHook(hook);
}

/** A stall: announce in word 0, then wait (bounded) until word 1 is set. */
export function stallOn(signal: Int32Array): void {
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
  const deadline = performance.now() + 30_000;
  while (Atomics.load(signal, 1) === 0 && performance.now() < deadline) park(signal, 1, 0, 50);
}
