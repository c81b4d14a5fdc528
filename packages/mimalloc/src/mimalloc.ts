/**
 * The mimalloc backend itself: one instance per attached thread over the shared state,
 * thread-safe with no lock on the per-block path. Its descriptor is in `index.ts`.
 */

import {
  AllocError,
  type Backend,
  type BackendContext,
  type BackendRepair,
  type BackendStats,
  type BlockLayout,
  type CheckReport,
  type HeapRegion,
  hex,
  park,
  type RepairCause,
  type StatsTable,
} from '@heaplab/core/backend';

import { mallocFast } from './alloc.js';
import { blockLayoutOf } from './block-layout.js';
import { checkHeap } from './check.js';
import { DRAIN_TIMEOUT_MS, MiContext, reachStep, SEGMENT_LOCK } from './context.js';
import { heapAbandonDead } from './dead-heap.js';
import { blockUsableSize, freeBlock, validateBlock } from './free.js';
import { heapAbandon, heapReset } from './heap.js';
import { SEGMENT_USABLE_BYTES } from './internal.js';
import {
  FLAG_SECURE,
  HP_ACTIVE,
  HP_GENERATION,
  HP_RF_STEP,
  IN_OP,
  IN_SEGMENT,
  IN_SPAN,
  INTENT_ADD_MEMORY,
  MAX_HEAPS,
  ST_FLAGS,
  ST_MAGIC,
  STATE_BYTES,
  STATE_MAGIC,
} from './layout.js';
import type { MimallocOptions } from './options.js';
import { samplePeak } from './peak.js';
import { recoverSegmentLock } from './recover.js';
import { dropRemoteFree, flushRemoteBuffer, resolveRemoteFree } from './remote.js';
import { backendStats, classStats } from './stats.js';
import { walkHeap } from './walk.js';

/**
 * One thread's handle on a mimalloc heap. Every method may be called from every thread at
 * once; `allocate` and `release` take no lock (the segment lock is taken only to get or give
 * back segments, for huge blocks and for abandoned segments).
 */
export class MimallocBackend implements Backend {
  /** This thread's context: views, offsets and hooks. */
  readonly context: MiContext;
  /**
   * `release` refuses any uint32 that is no live block's start without changing anything
   * (`freeBlock`: the segment map covers the 4 GiB address space, a segment not in use goes
   * to `hugeFree`, which refuses it, and a misaligned address is off its page's grid), so
   * the facade need not test the range and alignment first.
   */
  readonly validatesAddresses = true;

  /**
   * Makes a handle over `ctx`'s shared state; does not format it (`init` does).
   * @throws AllocError `InvalidParam` when the state area is too small or misaligned, or the
   *   heap allows more threads than the backend has heap records
   */
  constructor(ctx: BackendContext, options: MimallocOptions) {
    if (ctx.stateBytes < STATE_BYTES || ctx.stateOffset % 8 !== 0) {
      throw new AllocError('InvalidParam', `mimalloc backend needs ${STATE_BYTES} bytes of 8-aligned state; got ${ctx.stateBytes} at ${hex(ctx.stateOffset)}`);
    }
    if (ctx.maxThreads > MAX_HEAPS || ctx.threadId < 1 || ctx.threadId > ctx.maxThreads) {
      throw new AllocError('InvalidParam', `mimalloc backend: thread id ${ctx.threadId} of ${ctx.maxThreads} is beyond its ${MAX_HEAPS} heaps`);
    }
    this.context = new MiContext(ctx, options.secure, options.delayedPageReuse, options.stats);
    const t = this.context;
    const u32 = t.u32;
    // A thread attaching to a formatted heap finds its record reset by the id's last release,
    // except a remote free in flight that the release could not finish: finished here, before
    // this thread's generation makes the record look like its own.
    if (u32[(ctx.stateOffset + ST_MAGIC) >>> 2] === STATE_MAGIC) {
      settleRecordOf(t, t.threadId);
      u32[(t.heap + HP_GENERATION) >>> 2] = t.generation;
      u32[(t.heap + HP_ACTIVE) >>> 2] = 1;
    }
  }

  /**
   * Formats the shared state and takes the whole segments of `[start, start + size)` as the
   * segment pool.
   * @throws AllocError `InvalidParam` for a range outside the arena or holding no whole
   *   4 MiB segment
   */
  init(start: number, size: number): void {
    const t = this.context;
    const u32 = t.u32;
    u32.fill(0, t.state >>> 2, (t.state + STATE_BYTES) >>> 2);
    t.pool.init(start, size);
    u32[(t.state + ST_FLAGS) >>> 2] = t.secure ? FLAG_SECURE : 0;
    for (let threadId = 1; threadId <= t.maxThreads; threadId++) heapReset(t, threadId, threadId === t.threadId);
    u32[(t.heap + HP_GENERATION) >>> 2] = t.generation;
    u32[(t.state + ST_MAGIC) >>> 2] = STATE_MAGIC;
  }

  /**
   * Adds the whole segments of a range to the pool. Core checked the range against its pool
   * table and records it once this returns.
   * @throws AllocError `InvalidParam` for a range holding no whole segment; `MemoryOverlap`
   *   for one overlapping managed segments
   */
  addMemory(start: number, size: number): void {
    const t = this.context;
    const u32 = t.u32;
    t.segmentLock.lock();
    try {
      // Rolled back by `recover` if this thread dies before it returns (core then never
      // records the range, and the pool is rebuilt from core's table). The pool checks the
      // range before it changes anything.
      u32[t.intent + (IN_SEGMENT >>> 2)] = start;
      u32[t.intent + (IN_SPAN >>> 2)] = size;
      u32[t.intent + (IN_OP >>> 2)] = INTENT_ADD_MEMORY;
      try {
        t.pool.addMemory(start, size);
      } catch (error) {
        u32[t.intent + (IN_OP >>> 2)] = 0;
        throw error;
      }
      reachStep(t, 'segment:add:pooled');
      u32[t.intent + (IN_OP >>> 2)] = 0;
    } finally {
      t.segmentLock.unlock();
    }
  }

  allocate(size: number, align: number): number {
    return mallocFast(this.context, size, align);
  }

  /** @throws AllocError `NotAllocated` when `address` is not the start of a live block */
  release(address: number): void {
    freeBlock(this.context, address);
  }

  /** @throws AllocError `NotAllocated` when `address` is not the start of a live block */
  usableSize(address: number): number {
    return blockUsableSize(this.context, address);
  }

  /**
   * The layouts `dealloc` may free the block with: its size class's sizes and the alignment
   * the class guarantees (see `block-layout.ts`).
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  blockLayout(address: number): BlockLayout {
    return blockLayoutOf(this.context, address);
  }

  /** mimalloc keeps no requested sizes. @throws AllocError `NotAllocated` for a bad address */
  requestedSize(address: number): number {
    validateBlock(this.context, address);
    return -1;
  }

  /**
   * Keeps the block when `size` still fits and uses at least half of it (mimalloc's
   * `_mi_heap_realloc_zero` rule), so shrinking a lot moves to a smaller block.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  resizeInPlace(address: number, size: number): boolean {
    const usable = blockUsableSize(this.context, address);
    return size <= usable && size >= usable / 2;
  }

  /** Usable bytes of the managed segments (4 MiB each less their header). */
  totalBytes(): number {
    return this.context.pool.totalPages() * SEGMENT_USABLE_BYTES;
  }

  /**
   * Block bytes of live blocks, sampled by a walk of the in-use pages and the segment map
   * (which also raises the sampled peak). mimalloc keeps no byte counter on its paths, so it
   * does not use the kit's `ctx.counters`: those are updated after the step they count, and a
   * thread killed between the two (inside a lock-free remote free, say) would leave them wrong
   * for good; the walk is right again as soon as the lists are (see "A heap record" in
   * `layout.ts`). A shared counter would also be an atomic on every malloc and free.
   */
  usedBytes(): number {
    return samplePeak(this.context);
  }

  /** @throws AllocError `HeapCorrupted` naming the first violated invariant */
  check(): CheckReport {
    return checkHeap(this.context);
  }

  stats(): BackendStats {
    return backendStats(this.context);
  }

  /**
   * The heap's regions in address order (see `walk.ts`): segment headers and page
   * descriptors, live and free blocks, padding and page tails, free segments of the pool.
   * Reads as `check()` does, without a lock.
   * @throws AllocError `HeapCorrupted` for a damaged segment, page or list
   */
  walk(visit: (region: HeapRegion) => void): void {
    walkHeap(this.context, visit);
  }

  /** The bins as `mi_stats_print` shows them, and the page kinds (see `classStats`). */
  classStats(): StatsTable[] {
    return classStats(this.context);
  }

  /**
   * Repairs what a lock's holder left when it died (core calls this holding the poisoned
   * lock, then `check()`): the segment lock (`segments`), see `recover.ts`, is mimalloc's
   * only lock.
   * @throws AllocError `HeapCorrupted` when the control state or its ranges are unreadable
   */
  recover(cause: RepairCause): BackendRepair {
    if (cause.lock !== SEGMENT_LOCK) return { lostBytes: 0, lostBlocks: 0, notes: [`mimalloc does not use lock '${cause.lock}'`] };
    return recoverSegmentLock(this.context);
  }

  /**
   * Abandons thread `threadId`'s segments for other threads to reclaim and resets its heap
   * record (on detach by that thread, or by another thread once it died). A dead thread's
   * remote free in flight is finished first.
   * @throws AllocError `LockTimeout` when a remote free into its pages never finishes
   */
  releaseThread(threadId: number, died: boolean): void {
    const t = this.context;
    if (!died) {
      // Its buffered remote frees go to their pages first: nobody flushes a live record's.
      if (threadId === t.threadId) flushRemoteBuffer(t);
      heapAbandon(t, threadId);
      return;
    }
    // It may have died at any store of its own paths: nothing it linked is trusted.
    settleRecordOf(t, threadId);
    heapAbandonDead(t, threadId);
  }
}

/**
 * Finishes the remote free a dead holder of `threadId` left in flight, and flushes its
 * remote-free buffer. Another live thread resolving it is waited for (it never waits long:
 * `resolveRemoteFree`); if it does not finish within the drain timeout, the blocks are
 * counted lost and the record and buffer cleared, so the id's next thread starts with clean
 * ones.
 */
function settleRecordOf(t: MiContext, threadId: number): void {
  const deadline = performance.now() + DRAIN_TIMEOUT_MS;
  while (!resolveRemoteFree(t, threadId)) {
    if (performance.now() > deadline) {
      dropRemoteFree(t, threadId);
      return;
    }
    park(t.i32, (t.heapOf(threadId) + HP_RF_STEP) >>> 2, Atomics.load(t.i32, (t.heapOf(threadId) + HP_RF_STEP) >>> 2), 10);
  }
}
