/**
 * Quiescent-state-based reclamation (QSBR), after FreeBSD's "GUS" and CPython's
 * free-threaded build: it tells a writer when every thread has stopped looking at a block
 * it unlinked from a shared structure, so the block can be freed without readers taking locks.
 *
 * The domain keeps a write sequence. Unlinking a block and then advancing the write sequence
 * gives a goal; each thread, at a quiescent point (holding no references into shared
 * structures), publishes the write sequence it has seen. Once every online thread has
 * published a sequence at or past the goal, nobody can still hold the block. Layout:
 * `QSBR_*` and `QR_*` in heap-layout.ts.
 *
 * Invariants:
 * - Sequences are odd, so the value 0 in a record can mean "offline". They are int32 and
 *   compared by signed difference, so wrap-around after 2^31 advances is harmless as long
 *   as no goal is more than 2^30 advances old.
 * - A thread's published sequence only moves forward while it is online. An offline thread
 *   (detached, dead, or idle) holds nothing back: it promises to hold no references.
 * - The records form a fixed table in the control region that is never moved or freed, so a
 *   thread scanning it while another thread leaves can at worst read a stale sequence, which
 *   only delays reclamation; it never reads freed memory.
 */

import { QR_SEQUENCE, QSBR_DOMAIN, QSBR_READ_SEQUENCE, QSBR_RECORD_BYTES, QSBR_RECORDS, QSBR_WRITE_SEQUENCE } from '../memory/heap-layout.js';
import type { HeapMemory } from '../interfaces.js';

/** The record value of a thread that holds nothing back. */
const OFFLINE = 0;
/** Write sequences advance by 2 so they stay odd and never equal `OFFLINE`. */
const INCREMENT = 2;
/** The first write sequence of a formatted heap. */
export const QSBR_INITIAL_SEQUENCE = 1;

/** True when sequence `a` is at or past `b`, allowing for wrap-around. */
export function sequenceReached(a: number, b: number): boolean {
  return ((a - b) | 0) >= 0;
}

/** Index into an `Int32Array` of the heap of thread `threadId`'s sequence word. */
function recordIndex(threadId: number): number {
  return (QSBR_RECORDS + (threadId - 1) * QSBR_RECORD_BYTES + QR_SEQUENCE) >> 2;
}

/** Writes the initial domain state; called when a heap is formatted. */
export function formatQsbr(memory: HeapMemory): void {
  memory.i32[(QSBR_DOMAIN + QSBR_WRITE_SEQUENCE) >> 2] = QSBR_INITIAL_SEQUENCE;
  memory.i32[(QSBR_DOMAIN + QSBR_READ_SEQUENCE) >> 2] = QSBR_INITIAL_SEQUENCE;
}

/** One thread's handle on the heap's QSBR domain. */
export class Qsbr {
  private readonly i32: Int32Array;
  private readonly writeIndex = (QSBR_DOMAIN + QSBR_WRITE_SEQUENCE) >> 2;
  private readonly readIndex = (QSBR_DOMAIN + QSBR_READ_SEQUENCE) >> 2;
  private readonly ownIndex: number;

  constructor(
    memory: HeapMemory,
    readonly threadId: number,
    private readonly maxThreads: number,
  ) {
    this.i32 = memory.i32;
    this.ownIndex = recordIndex(threadId);
  }

  /**
   * Marks a quiescent point: this thread holds no references into shared structures, so
   * everything unlinked before now may be reclaimed as far as it is concerned.
   */
  quiescent(): void {
    Atomics.store(this.i32, this.ownIndex, Atomics.load(this.i32, this.writeIndex));
  }

  /** Takes this thread out of the domain (idle, detaching): it holds nothing back. */
  offline(): void {
    Atomics.store(this.i32, this.ownIndex, OFFLINE);
  }

  /** Brings this thread (back) into the domain, as if at a quiescent point. */
  online(): void {
    this.quiescent();
  }

  /** True when this thread is online. */
  isOnline(): boolean {
    return Atomics.load(this.i32, this.ownIndex) !== OFFLINE;
  }

  /** Takes another thread's record out of the domain: for a thread that died. */
  offlineThread(threadId: number): void {
    Atomics.store(this.i32, recordIndex(threadId), OFFLINE);
  }

  /** Advances the write sequence; returns the new value, a goal for what was unlinked before. */
  advance(): number {
    return (Atomics.add(this.i32, this.writeIndex, INCREMENT) + INCREMENT) | 0;
  }

  /**
   * A goal for what was unlinked before now, without advancing: it is reached once anyone
   * advances the write sequence and every thread then passes a quiescent point. Cheaper than
   * `advance` (no write to the shared word) and the usual choice for small frees.
   */
  deferredGoal(): number {
    return (Atomics.load(this.i32, this.writeIndex) + INCREMENT) | 0;
  }

  /**
   * The sequence thread `threadId` last published at a quiescent point, or 0 when it is
   * offline: for figures that name the thread holding a goal back.
   */
  sequenceOf(threadId: number): number {
    return Atomics.load(this.i32, recordIndex(threadId));
  }

  /**
   * The online threads that have not passed `goal`: what holds it back, for figures and
   * errors (a racy snapshot).
   */
  holdersOf(goal: number): number[] {
    const holders: number[] = [];
    for (let threadId = 1; threadId <= this.maxThreads; threadId++) {
      const sequence = Atomics.load(this.i32, recordIndex(threadId));
      if (sequence !== OFFLINE && !sequenceReached(sequence, goal)) holders.push(threadId);
    }
    return holders;
  }

  /** The current write sequence. */
  writeSequence(): number {
    return Atomics.load(this.i32, this.writeIndex);
  }

  /**
   * True when every online thread has passed `goal`. Never blocks: it reads the cached
   * minimum first and rescans the records only when the cache is not enough.
   */
  poll(goal: number): boolean {
    if (sequenceReached(Atomics.load(this.i32, this.readIndex), goal)) return true;
    let minimum = Atomics.load(this.i32, this.writeIndex);
    for (let threadId = 1; threadId <= this.maxThreads; threadId++) {
      const sequence = Atomics.load(this.i32, recordIndex(threadId));
      if (sequence !== OFFLINE && !sequenceReached(sequence, minimum)) minimum = sequence;
    }
    // Publish the new minimum unless another thread already published a later one.
    const cached = Atomics.load(this.i32, this.readIndex);
    if (!sequenceReached(cached, minimum)) Atomics.compareExchange(this.i32, this.readIndex, cached, minimum);
    return sequenceReached(minimum, goal);
  }
}
