/**
 * Delayed frees over QSBR: `freeDelayed(address)` records the block with a goal and frees it
 * for real only once every thread has passed that goal, at the recording thread's own safe
 * points (its next allocation after the work became due, or an explicit `processDelayed()`),
 * never inside `freeDelayed` itself. As CPython's `_PyMem_FreeDelayed`.
 *
 * Each thread's pending frees form a queue of chunks allocated from the heap itself, so
 * nothing another thread may need lives in JS memory: when a thread detaches or dies, its
 * chunks move to the domain's orphan list, which any thread drains at its safe points.
 *
 * ```text
 *  chunk (CHUNK_BYTES, from the backend)
 *  +0 next chunk (0 = last) | +4 entries written | +8 entries already freed | +12 reserved
 *  +16 entries: CHUNK_ENTRIES x { +0 address, +4 goal (int32 sequence) }
 * ```
 *
 * Invariants:
 * - Within one chunk, goals never decrease (a thread's goals come from a sequence that only
 *   moves forward), so processing stops at the first entry whose goal is not reached.
 * - `heldBytes` of a record is the sum of the usable sizes of the entries not yet freed in
 *   that thread's queue; the orphan list's total is kept in `QSBR_ORPHAN_HELD`.
 * - Batching is bounded by bytes, not only by count: a block of at least `largeBytes`, or a
 *   queue holding more than the limit, advances the write sequence at once and makes the
 *   work due, so memory held back stays near the limit while readers keep passing quiescent
 *   points.
 */

import { AllocError, hex } from './errors.js';
import {
  QR_DEFERRED,
  QR_HELD_BYTES,
  QR_PEAK_HELD,
  QR_PENDING,
  QR_QUEUE_HEAD,
  QR_QUEUE_TAIL,
  QSBR_DOMAIN,
  QSBR_HELD_LIMIT,
  QSBR_ORPHAN_HEAD,
  QSBR_RECORD_BYTES,
  QSBR_RECORDS,
} from './heap-layout.js';
import type { Backend, HeapMemory } from './interfaces.js';
import type { SharedMutex } from './mutex.js';
import { type Qsbr, sequenceReached } from './qsbr.js';

/** Bytes of one chunk of pending frees. */
export const CHUNK_BYTES = 4096;
const CH_NEXT = 0;
const CH_COUNT = 4;
const CH_DONE = 8;
const CH_ENTRIES = 16;
const ENTRY_BYTES = 8;
/** Entries per chunk. */
export const CHUNK_ENTRIES = (CHUNK_BYTES - CH_ENTRIES) / ENTRY_BYTES;

/** Default bound on the bytes one thread holds back: 1 MiB, CPython's QSBR_FREE_MEM_LIMIT. */
export const DEFAULT_HELD_LIMIT_BYTES = 1024 * 1024;
/** Small frees share a goal; every this many of them the write sequence advances. */
const DEFERRED_ADVANCE_LIMIT = 10;
/** Domain word: usable bytes waiting in orphaned chunks. */
const QSBR_ORPHAN_HELD = 16;

/** Figures of the delayed frees of one thread, or of the orphan list. */
export interface DelayedFreeStats {
  /** Blocks recorded and not yet freed. */
  pendingBlocks: number;
  /** Their usable bytes. */
  heldBytes: number;
  /** The most `heldBytes` has been. */
  peakHeldBytes: number;
}

/** Writes the domain's delayed-free limit; called when a heap is formatted. */
export function formatDelayedFrees(memory: HeapMemory, heldLimitBytes: number): void {
  memory.u32[(QSBR_DOMAIN + QSBR_HELD_LIMIT) >> 2] = heldLimitBytes;
}

/** One thread's delayed frees. */
export class DelayedFrees {
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly record: number;
  private readonly heldLimit: number;
  private readonly largeBytes: number;
  /**
   * Addresses waiting in this thread's own queue: an index derived from the queue (so it may
   * live in JS memory), to refuse a second `freeDelayed` of the same block at once.
   */
  private readonly pending = new Set<number>();

  /**
   * @param backend the backend itself (lock-wrapped when lock-based): chunks are allocated
   *   from it, and blocks are freed through `releaseNow`
   * @param releaseNow frees a block for real (poisoning it first when the heap says so)
   */
  constructor(
    memory: HeapMemory,
    private readonly qsbr: Qsbr,
    private readonly backend: Backend,
    private readonly orphanLock: SharedMutex,
    private readonly releaseNow: (address: number) => void,
  ) {
    this.u32 = memory.u32;
    this.i32 = memory.i32;
    this.record = recordWord(qsbr.threadId);
    this.heldLimit = memory.u32[(QSBR_DOMAIN + QSBR_HELD_LIMIT) >> 2]!;
    this.largeBytes = Math.max(1, this.heldLimit >>> 3);
  }

  /**
   * Records `address` (of `usableBytes`) to be freed once safe. Returns true when the work
   * is due: the caller should process at its next safe point.
   * @throws AllocError `NotAllocated` when the block already waits in this thread's queue;
   *   `NoMemory` when the queue needs a chunk and the heap has none (the block stays live)
   */
  add(address: number, usableBytes: number): boolean {
    if (this.pending.has(address)) {
      throw new AllocError('NotAllocated', `${hex(address)} is already waiting for a delayed free (double free)`);
    }
    const u32 = this.u32;
    const record = this.record;
    const held = u32[record + (QR_HELD_BYTES >> 2)]! + usableBytes;
    let due = false;
    let goal: number;
    if (usableBytes >= this.largeBytes || held > this.heldLimit) {
      goal = this.qsbr.advance();
      due = true;
    } else if (++u32[record + (QR_DEFERRED >> 2)]! >= DEFERRED_ADVANCE_LIMIT) {
      u32[record + (QR_DEFERRED >> 2)] = 0;
      goal = this.qsbr.advance();
    } else {
      goal = this.qsbr.deferredGoal();
    }
    this.push(address, goal);
    this.pending.add(address);
    u32[record + (QR_HELD_BYTES >> 2)] = held;
    // Count matters too: a chunk's worth of tiny blocks is a batch.
    if (++u32[record + (QR_PENDING >> 2)]! % CHUNK_ENTRIES === 0) due = true;
    if (held > u32[record + (QR_PEAK_HELD >> 2)]!) u32[record + (QR_PEAK_HELD >> 2)] = held;
    return due;
  }

  /**
   * Frees every recorded block whose goal every thread has reached: this thread's first,
   * then orphaned ones if the orphan lock is free (it never waits for it). Returns the
   * number of blocks freed.
   */
  process(): number {
    const record = this.record;
    const u32 = this.u32;
    const head = u32[record + (QR_QUEUE_HEAD >> 2)]!;
    let freed = 0;
    if (head !== 0) {
      const result = this.drain(head, true);
      freed += result.freed;
      u32[record + (QR_QUEUE_HEAD >> 2)] = result.head;
      if (result.head === 0) u32[record + (QR_QUEUE_TAIL >> 2)] = 0;
      u32[record + (QR_HELD_BYTES >> 2)] = u32[record + (QR_HELD_BYTES >> 2)]! - result.bytes;
      u32[record + (QR_PENDING >> 2)] = u32[record + (QR_PENDING >> 2)]! - result.freed;
    }
    const orphanHead = (QSBR_DOMAIN + QSBR_ORPHAN_HEAD) >> 2;
    if (Atomics.load(this.u32, orphanHead) !== 0 && this.orphanLock.tryLock()) {
      try {
        const result = this.drain(u32[orphanHead]!, false);
        u32[orphanHead] = result.head;
        const heldIndex = (QSBR_DOMAIN + QSBR_ORPHAN_HELD) >> 2;
        u32[heldIndex] = u32[heldIndex]! - result.bytes;
        freed += result.freed;
      } finally {
        this.orphanLock.unlock();
      }
    }
    return freed;
  }

  /**
   * Frees what is ready in thread `threadId`'s queue, then moves the rest to the orphan list
   * and clears the thread's record; used when a thread detaches (for itself) or died (by the
   * thread that reaps it). Waits for the orphan lock, within its bounded timeout.
   */
  handOver(threadId: number): void {
    const u32 = this.u32;
    const record = recordWord(threadId);
    const head = u32[record + (QR_QUEUE_HEAD >> 2)]!;
    const held = u32[record + (QR_HELD_BYTES >> 2)]!;
    u32[record + (QR_QUEUE_HEAD >> 2)] = 0;
    u32[record + (QR_QUEUE_TAIL >> 2)] = 0;
    u32[record + (QR_HELD_BYTES >> 2)] = 0;
    u32[record + (QR_PENDING >> 2)] = 0;
    u32[record + (QR_DEFERRED >> 2)] = 0;
    if (threadId === this.qsbr.threadId) this.pending.clear();
    if (head === 0) return;
    // Unordered drain: it also gives back the emptied last chunk.
    const rest = this.drain(head, false);
    if (rest.head === 0) return;
    let tail = rest.head;
    while (u32[(tail + CH_NEXT) >>> 2] !== 0) tail = u32[(tail + CH_NEXT) >>> 2]!;
    this.orphanLock.lock();
    try {
      const orphanHead = (QSBR_DOMAIN + QSBR_ORPHAN_HEAD) >> 2;
      u32[(tail + CH_NEXT) >>> 2] = u32[orphanHead]!;
      Atomics.store(u32, orphanHead, rest.head);
      const heldIndex = (QSBR_DOMAIN + QSBR_ORPHAN_HELD) >> 2;
      u32[heldIndex] = u32[heldIndex]! + held - rest.bytes;
    } finally {
      this.orphanLock.unlock();
    }
  }

  /** This thread's figures. */
  stats(): DelayedFreeStats {
    const u32 = this.u32;
    const record = this.record;
    return {
      pendingBlocks: u32[record + (QR_PENDING >> 2)]!,
      heldBytes: u32[record + (QR_HELD_BYTES >> 2)]!,
      peakHeldBytes: u32[record + (QR_PEAK_HELD >> 2)]!,
    };
  }

  /** Usable bytes waiting in orphaned chunks. */
  orphanHeldBytes(): number {
    return Atomics.load(this.u32, (QSBR_DOMAIN + QSBR_ORPHAN_HELD) >> 2);
  }

  /** Appends an entry, taking a new chunk from the backend when the tail is full. */
  private push(address: number, goal: number): void {
    const u32 = this.u32;
    const record = this.record;
    let tail = u32[record + (QR_QUEUE_TAIL >> 2)]!;
    if (tail === 0 || u32[(tail + CH_COUNT) >>> 2] === CHUNK_ENTRIES) {
      const chunk = this.backend.allocate(CHUNK_BYTES, 8);
      if (chunk === 0) {
        throw new AllocError(
          'NoMemory',
          `cannot record the delayed free of ${hex(address)}: no room for a ${CHUNK_BYTES}-byte queue chunk ` +
            '(the block stays live; call processDelayed() and retry)',
        );
      }
      u32[(chunk + CH_NEXT) >>> 2] = 0;
      u32[(chunk + CH_COUNT) >>> 2] = 0;
      u32[(chunk + CH_DONE) >>> 2] = 0;
      if (tail === 0) u32[record + (QR_QUEUE_HEAD >> 2)] = chunk;
      else u32[(tail + CH_NEXT) >>> 2] = chunk;
      u32[record + (QR_QUEUE_TAIL >> 2)] = chunk;
      tail = chunk;
    }
    const count = u32[(tail + CH_COUNT) >>> 2]!;
    const entry = tail + CH_ENTRIES + count * ENTRY_BYTES;
    u32[entry >>> 2] = address;
    this.i32[(entry + 4) >>> 2] = goal;
    u32[(tail + CH_COUNT) >>> 2] = count + 1;
  }

  /**
   * Frees the ready entries of the chunk list starting at `head` and gives finished chunks
   * back to the backend. In an own queue (ordered) it stops at the first unready entry; in
   * the orphan list (chunks of several threads) it goes through every chunk.
   */
  private drain(head: number, ordered: boolean): { head: number; freed: number; bytes: number } {
    const u32 = this.u32;
    let freed = 0;
    let bytes = 0;
    let newHead = 0;
    let previousKept = 0;
    let blocked = false;
    for (let chunk = head; chunk !== 0; ) {
      const next = u32[(chunk + CH_NEXT) >>> 2]!;
      const count = u32[(chunk + CH_COUNT) >>> 2]!;
      let done = u32[(chunk + CH_DONE) >>> 2]!;
      while (!blocked && done < count) {
        const entry = chunk + CH_ENTRIES + done * ENTRY_BYTES;
        const goal = this.i32[(entry + 4) >>> 2]!;
        // A deferred goal is ahead of the write sequence until someone advances it.
        if (!sequenceReached(this.qsbr.writeSequence(), goal)) this.qsbr.advance();
        if (!this.qsbr.poll(goal)) {
          blocked = ordered;
          break;
        }
        const address = u32[entry >>> 2]!;
        bytes += this.releaseEntry(address);
        if (ordered) this.pending.delete(address);
        freed++;
        done++;
      }
      u32[(chunk + CH_DONE) >>> 2] = done;
      if (done === count) {
        this.backend.release(chunk);
      } else {
        if (previousKept === 0) newHead = chunk;
        else u32[(previousKept + CH_NEXT) >>> 2] = chunk;
        previousKept = chunk;
      }
      chunk = next;
    }
    if (previousKept !== 0) u32[(previousKept + CH_NEXT) >>> 2] = 0;
    return { head: newHead, freed, bytes };
  }

  /**
   * Frees one recorded block; returns its usable bytes. A block some other path freed in the
   * meantime (two threads delaying the same block) is skipped, leaving the heap intact: the
   * error has no caller left to reach.
   */
  private releaseEntry(address: number): number {
    let usable: number;
    try {
      usable = this.backend.usableSize(address);
    } catch (error) {
      if (error instanceof AllocError && error.kind === 'NotAllocated') return 0;
      throw error;
    }
    this.releaseNow(address);
    return usable;
  }
}

/** Index into a `Uint32Array` of the heap of the first word of thread `threadId`'s record. */
function recordWord(threadId: number): number {
  return (QSBR_RECORDS + (threadId - 1) * QSBR_RECORD_BYTES) >> 2;
}
