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
 * - Every chunk list (a thread's queue, the orphan list) is a valid chain at every instant: a
 *   finished chunk is unlinked before it is freed, and an entry is marked done before its
 *   block is freed. So a thread that dies anywhere in here leaves lists others can walk; the
 *   worst it leaves is a block marked done but not freed (leaked, never freed twice).
 * - A queue being handed over to the orphan list is linked there before the thread's record
 *   lets go of it; whoever finishes the hand-over of a thread that died in between finds its
 *   head already on the orphan list and only clears the record.
 * - The delayed-free filter (heap-layout.ts, `DELAYED_FILTER`) counts a block before it joins
 *   a queue and stops counting it once it is marked done, so it may count too much (a thread
 *   died in between: `free` then searches and finds nothing) but never too little: a block
 *   waiting for its delayed free is always refused by `free` and `freeDelayed`.
 * - Within one chunk, goals never decrease (a thread's goals come from a sequence that only
 *   moves forward), so processing stops at the first entry whose goal is not reached.
 * - `heldBytes` of a record is the sum of the usable sizes of the entries not yet freed in
 *   that thread's queue; the orphan list's total is kept in `QSBR_ORPHAN_HELD`.
 * - Batching is bounded by bytes, not only by count: a block of at least `largeBytes`, or a
 *   queue holding more than the limit, advances the write sequence at once and makes the
 *   work due, so memory held back stays near the limit while readers keep passing quiescent
 *   points.
 */

import { AllocError, hex } from '../errors.js';
import {
  CONTROL_BYTES,
  DELAYED_FILTER,
  DELAYED_FILTER_BUCKETS,
  DF_BUCKETS,
  DF_PENDING,
  QR_DEFERRED,
  QR_HELD_BYTES,
  QR_PEAK_HELD,
  QR_PENDING,
  QR_QUEUE_HEAD,
  QR_QUEUE_TAIL,
  QSBR_DOMAIN,
  QSBR_HELD_LIMIT,
  QSBR_ORPHAN_HEAD,
  QSBR_ORPHAN_HELD,
  QSBR_RECORD_BYTES,
  QSBR_RECORDS,
} from '../memory/heap-layout.js';
import type { HeapMemory } from '../interfaces.js';
import type { Backend } from '../backend/contract.js';
import type { SharedMutex } from '../memory/mutex.js';
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

/** Word index of the count of blocks waiting in every queue: 0 means `free` looks no further. */
export const DELAYED_PENDING_WORD = (DELAYED_FILTER + DF_PENDING) >> 2;
const FILTER_BUCKET0 = (DELAYED_FILTER + DF_BUCKETS) >> 1;
const FILTER_SHIFT = 32 - Math.log2(DELAYED_FILTER_BUCKETS);

/** Index into a `Uint16Array` of the heap of the filter bucket of `address`. */
function filterBucket(address: number): number {
  return FILTER_BUCKET0 + (Math.imul(address >>> 3, 0x9e3779b1) >>> FILTER_SHIFT);
}

/** Figures of the delayed frees of one thread, or of the orphan list. */
export interface DelayedFreeStats {
  /** Blocks recorded and not yet freed. */
  pendingBlocks: number;
  /** Their usable bytes. */
  heldBytes: number;
  /** The most `heldBytes` has been. */
  peakHeldBytes: number;
  /**
   * The goal of this thread's oldest waiting block (0 when none waits): nothing of its queue
   * is freed before every online thread passed it.
   */
  oldestGoal: number;
  /**
   * The thread ids (registry slots) that have not passed `oldestGoal`: the threads to ask for
   * a `quiescent()` or an `idle()`. Empty when nothing waits, or when the goal waits for the
   * write sequence to advance (the next batch does that).
   */
  heldBackBy: number[];
}

/** Writes the domain's delayed-free limit; called when a heap is formatted. */
export function formatDelayedFrees(memory: HeapMemory, heldLimitBytes: number): void {
  memory.u32[(QSBR_DOMAIN + QSBR_HELD_LIMIT) >> 2] = heldLimitBytes;
}

/** One thread's delayed frees. */
export class DelayedFrees {
  private readonly u32: Uint32Array;
  private readonly i32: Int32Array;
  private readonly u16: Uint16Array;
  private readonly record: number;
  private readonly heldLimit: number;
  private readonly largeBytes: number;
  /** Longest chunk list any walk follows: more chunks than fit the buffer is a cycle. */
  private readonly maxChunks: number;
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
    private readonly memory: HeapMemory,
    private readonly qsbr: Qsbr,
    private readonly backend: Backend,
    private readonly orphanLock: SharedMutex,
    private readonly releaseNow: (address: number) => void,
    private readonly maxThreads: number,
  ) {
    this.u32 = memory.u32;
    this.i32 = memory.i32;
    this.u16 = new Uint16Array(memory.buffer, 0, CONTROL_BYTES >> 1);
    this.record = recordWord(qsbr.threadId);
    this.heldLimit = memory.u32[(QSBR_DOMAIN + QSBR_HELD_LIMIT) >> 2]!;
    this.largeBytes = Math.max(1, this.heldLimit >>> 3);
    this.maxChunks = Math.ceil(memory.buffer.byteLength / CHUNK_BYTES);
  }

  /**
   * Records `address` (of `usableBytes`) to be freed once safe. Returns true when the work
   * is due: the caller should process at its next safe point.
   * @throws AllocError `NotAllocated` when the block already waits for a delayed free (in any
   *   thread's queue); `NoMemory` when the queue needs a chunk and the heap has none (the
   *   block stays live)
   */
  add(address: number, usableBytes: number): boolean {
    if (this.isWaiting(address)) throw alreadyWaiting(address);
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
    // Counted before it is queued: a death in between over-counts, which is harmless.
    this.countWaiting(address, 1);
    try {
      this.push(address, goal);
    } catch (error) {
      this.countWaiting(address, -1);
      throw error;
    }
    this.pending.add(address);
    u32[record + (QR_HELD_BYTES >> 2)] = held;
    // Count matters too: a chunk's worth of tiny blocks is a batch.
    if (++u32[record + (QR_PENDING >> 2)]! % CHUNK_ENTRIES === 0) due = true;
    if (held > u32[record + (QR_PEAK_HELD >> 2)]!) u32[record + (QR_PEAK_HELD >> 2)] = held;
    return due;
  }

  /**
   * True when `address` waits for a delayed free in any thread's queue or the orphan list.
   * Costs one load while no block waits anywhere, and one more while the address's filter
   * bucket is empty; only then does it search. Another thread's queue is read without its
   * owner's cooperation, so every link is checked before it is followed.
   */
  isWaiting(address: number): boolean {
    if (this.u32[DELAYED_PENDING_WORD] === 0 || Atomics.load(this.u16, filterBucket(address)) === 0) return false;
    if (this.pending.has(address)) return true;
    for (let threadId = 1; threadId <= this.maxThreads; threadId++) {
      if (threadId === this.qsbr.threadId) continue;
      if (this.listHolds(Atomics.load(this.u32, recordWord(threadId) + (QR_QUEUE_HEAD >> 2)), address)) return true;
    }
    return this.listHolds(Atomics.load(this.u32, (QSBR_DOMAIN + QSBR_ORPHAN_HEAD) >> 2), address);
  }

  /**
   * Frees every recorded block whose goal every thread has reached: this thread's first,
   * then orphaned ones if the orphan lock is free (it never waits for it). Returns the
   * number of blocks freed.
   */
  process(): number {
    const record = this.record;
    const u32 = this.u32;
    let freed = 0;
    if (u32[record + (QR_QUEUE_HEAD >> 2)] !== 0) {
      const result = this.drain(record + (QR_QUEUE_HEAD >> 2), record + (QR_QUEUE_TAIL >> 2), true);
      freed += result.freed;
      u32[record + (QR_HELD_BYTES >> 2)] = u32[record + (QR_HELD_BYTES >> 2)]! - result.bytes;
      u32[record + (QR_PENDING >> 2)] = u32[record + (QR_PENDING >> 2)]! - result.freed;
    }
    const orphanHead = (QSBR_DOMAIN + QSBR_ORPHAN_HEAD) >> 2;
    if (Atomics.load(this.u32, orphanHead) !== 0 && this.orphanLock.tryLock()) {
      try {
        const result = this.drain(orphanHead, -1, false);
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
    const headWord = record + (QR_QUEUE_HEAD >> 2);
    if (threadId === this.qsbr.threadId) this.pending.clear();
    if (u32[headWord] !== 0) {
      // Unordered: it frees whatever is ready, in every chunk, and gives back emptied chunks.
      const drained = this.drain(headWord, record + (QR_QUEUE_TAIL >> 2), false);
      u32[record + (QR_HELD_BYTES >> 2)] = Math.max(0, u32[record + (QR_HELD_BYTES >> 2)]! - drained.bytes);
    }
    const head = u32[headWord]!;
    if (head !== 0) {
      this.orphanLock.lock();
      try {
        const orphanHead = (QSBR_DOMAIN + QSBR_ORPHAN_HEAD) >> 2;
        // A thread that died between linking and clearing its record left the queue linked.
        if (!this.chainHolds(u32[orphanHead]!, head)) {
          const tail = this.lastChunk(head);
          u32[(tail + CH_NEXT) >>> 2] = u32[orphanHead]!;
          Atomics.store(u32, orphanHead, head);
          const heldIndex = (QSBR_DOMAIN + QSBR_ORPHAN_HELD) >> 2;
          u32[heldIndex] = u32[heldIndex]! + u32[record + (QR_HELD_BYTES >> 2)]!;
        }
      } finally {
        this.orphanLock.unlock();
      }
    }
    // Only now does the record let go: until here, the queue is reachable from it.
    Atomics.store(u32, headWord, 0);
    u32[record + (QR_QUEUE_TAIL >> 2)] = 0;
    u32[record + (QR_HELD_BYTES >> 2)] = 0;
    u32[record + (QR_PENDING >> 2)] = 0;
    u32[record + (QR_DEFERRED >> 2)] = 0;
  }

  /**
   * Recounts the usable bytes waiting in orphaned chunks, for the recovery of a poisoned
   * orphan lock (whose holder may have died before updating the count). Call holding it.
   */
  recountOrphanHeld(): void {
    let bytes = 0;
    this.forEachWaiting(this.u32[(QSBR_DOMAIN + QSBR_ORPHAN_HEAD) >> 2]!, (address) => {
      try {
        bytes += this.backend.usableSize(address);
      } catch (error) {
        if (!(error instanceof AllocError)) throw error;
      }
    });
    this.u32[(QSBR_DOMAIN + QSBR_ORPHAN_HELD) >> 2] = bytes;
  }

  /** This thread's figures. */
  stats(): DelayedFreeStats {
    const u32 = this.u32;
    const record = this.record;
    const oldestGoal = this.oldestGoal();
    const advanced = oldestGoal !== 0 && sequenceReached(this.qsbr.writeSequence(), oldestGoal);
    return {
      pendingBlocks: u32[record + (QR_PENDING >> 2)]!,
      heldBytes: u32[record + (QR_HELD_BYTES >> 2)]!,
      peakHeldBytes: u32[record + (QR_PEAK_HELD >> 2)]!,
      oldestGoal,
      heldBackBy: advanced ? this.qsbr.holdersOf(oldestGoal) : [],
    };
  }

  /** The goal of the first entry of this thread's queue not yet freed, or 0. */
  private oldestGoal(): number {
    const u32 = this.u32;
    const chunk = u32[this.record + (QR_QUEUE_HEAD >> 2)]!;
    if (chunk === 0) return 0;
    const done = u32[(chunk + CH_DONE) >>> 2]!;
    if (done >= u32[(chunk + CH_COUNT) >>> 2]! || done >= CHUNK_ENTRIES) return 0;
    return this.i32[(chunk + CH_ENTRIES + done * ENTRY_BYTES + 4) >>> 2]!;
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
      if (tail === 0) Atomics.store(u32, record + (QR_QUEUE_HEAD >> 2), chunk);
      else u32[(tail + CH_NEXT) >>> 2] = chunk;
      u32[record + (QR_QUEUE_TAIL >> 2)] = chunk;
      tail = chunk;
    }
    const count = u32[(tail + CH_COUNT) >>> 2]!;
    const entry = tail + CH_ENTRIES + count * ENTRY_BYTES;
    u32[entry >>> 2] = address;
    this.i32[(entry + 4) >>> 2] = goal;
    // The count publishes the entry, so it is written last.
    Atomics.store(u32, (tail + CH_COUNT) >>> 2, count + 1);
  }

  /**
   * Frees the ready entries of the chunk list whose head is in word `headWord` and gives
   * finished chunks back to the backend, unlinking each before it is freed (and moving the
   * tail in word `tailWord`, when the list has one). In an own queue (ordered) it stops at
   * the first unready entry; in the orphan list (chunks of several threads) it goes through
   * every chunk.
   * @throws AllocError `HeapCorrupted` for a chunk that is not one
   */
  private drain(headWord: number, tailWord: number, ordered: boolean): { freed: number; bytes: number } {
    const u32 = this.u32;
    let freed = 0;
    let bytes = 0;
    let previous = 0;
    let chunk = u32[headWord]!;
    for (let steps = 0; chunk !== 0; steps++) {
      this.checkChunk(chunk, steps);
      const next = u32[(chunk + CH_NEXT) >>> 2]!;
      const count = u32[(chunk + CH_COUNT) >>> 2]!;
      let done = u32[(chunk + CH_DONE) >>> 2]!;
      let blocked = false;
      while (done < count) {
        const entry = chunk + CH_ENTRIES + done * ENTRY_BYTES;
        const goal = this.i32[(entry + 4) >>> 2]!;
        // A deferred goal is ahead of the write sequence until someone advances it.
        if (!sequenceReached(this.qsbr.writeSequence(), goal)) this.qsbr.advance();
        if (!this.qsbr.poll(goal)) {
          blocked = true;
          break;
        }
        const address = u32[entry >>> 2]!;
        // Done before freed: a death in between leaks the block rather than freeing it twice.
        u32[(chunk + CH_DONE) >>> 2] = ++done;
        this.countWaiting(address, -1);
        if (ordered) this.pending.delete(address);
        bytes += this.releaseEntry(address);
        freed++;
      }
      if (done === count) {
        if (previous === 0) Atomics.store(u32, headWord, next);
        else u32[(previous + CH_NEXT) >>> 2] = next;
        if (tailWord >= 0 && next === 0) u32[tailWord] = previous;
        this.backend.release(chunk);
      } else {
        previous = chunk;
      }
      if (blocked && ordered) break;
      chunk = next;
    }
    return { freed, bytes };
  }

  /**
   * Calls `visit` with every waiting address of the chunk list at `head`, checking every
   * link first (the list may be another thread's, changing while it is read).
   */
  private forEachWaiting(head: number, visit: (address: number) => void): void {
    const u32 = this.u32;
    for (let chunk = head, steps = 0; chunk !== 0 && this.plausibleChunk(chunk) && steps < this.maxChunks; steps++) {
      const count = Math.min(u32[(chunk + CH_COUNT) >>> 2]!, CHUNK_ENTRIES);
      for (let done = u32[(chunk + CH_DONE) >>> 2]!; done < count; done++) visit(u32[(chunk + CH_ENTRIES + done * ENTRY_BYTES) >>> 2]!);
      chunk = u32[(chunk + CH_NEXT) >>> 2]!;
    }
  }

  /** Whether the chunk list at `head` has `address` waiting. */
  private listHolds(head: number, address: number): boolean {
    let found = false;
    this.forEachWaiting(head, (waiting) => {
      if (waiting === address) found = true;
    });
    return found;
  }

  /** Whether the chain at `head` passes through chunk `chunk`. */
  private chainHolds(head: number, chunk: number): boolean {
    for (let at = head, steps = 0; at !== 0 && this.plausibleChunk(at) && steps < this.maxChunks; steps++) {
      if (at === chunk) return true;
      at = this.u32[(at + CH_NEXT) >>> 2]!;
    }
    return false;
  }

  /** The last chunk of the chain at `head`. @throws AllocError `HeapCorrupted` for a broken chain */
  private lastChunk(head: number): number {
    let chunk = head;
    for (let steps = 0; ; steps++) {
      this.checkChunk(chunk, steps);
      const next = this.u32[(chunk + CH_NEXT) >>> 2]!;
      if (next === 0) return chunk;
      chunk = next;
    }
  }

  /** Whether `chunk` may be a chunk: in the buffer, aligned, with counts in range. */
  private plausibleChunk(chunk: number): boolean {
    const u32 = this.u32;
    if ((chunk & 7) !== 0 || chunk < CONTROL_BYTES || chunk + CHUNK_BYTES > this.memory.buffer.byteLength) return false;
    const count = u32[(chunk + CH_COUNT) >>> 2]!;
    return count <= CHUNK_ENTRIES && u32[(chunk + CH_DONE) >>> 2]! <= count;
  }

  /** @throws AllocError `HeapCorrupted` when `chunk` is no chunk or the walk is too long */
  private checkChunk(chunk: number, steps: number): void {
    if (this.plausibleChunk(chunk) && steps < this.maxChunks) return;
    throw new AllocError(
      'HeapCorrupted',
      steps >= this.maxChunks
        ? `delayed-free queue: a chunk list is longer than ${this.maxChunks} chunks (a cycle)`
        : `delayed-free queue: ${hex(chunk)} is no queue chunk (outside the arena, misaligned or bad counts)`,
    );
  }

  /** Adds `delta` to the filter's count of waiting blocks, and to `address`'s bucket. */
  private countWaiting(address: number, delta: number): void {
    Atomics.add(this.u16, filterBucket(address), delta);
    Atomics.add(this.u32, DELAYED_PENDING_WORD, delta);
  }

  /**
   * Frees one recorded block; returns its usable bytes. A block some other path freed in the
   * meantime is skipped, leaving the heap intact: the error has no caller left to reach.
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

/** The error for a block that already waits for its delayed free. */
export function alreadyWaiting(address: number): AllocError {
  return new AllocError('NotAllocated', `${hex(address)} is already waiting for a delayed free (double free)`);
}

/** Index into a `Uint32Array` of the heap of the first word of thread `threadId`'s record. */
function recordWord(threadId: number): number {
  return (QSBR_RECORDS + (threadId - 1) * QSBR_RECORD_BYTES) >> 2;
}
