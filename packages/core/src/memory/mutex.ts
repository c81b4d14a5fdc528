/**
 * A futex-style mutex on a lock record in shared memory (after Drepper, "Futexes Are Tricky",
 * mutex 2), whose state word names its holder. The record's layout is in `heap-layout.ts`
 * (`LOCK_*`).
 *
 * ```text
 *  state word   0                                   free
 *               holder << LOCK_HOLDER_SHIFT         held, nobody parked
 *               holder << LOCK_HOLDER_SHIFT | 1     held, a waiter may be parked (LOCK_WAITERS)
 * ```
 *
 * Taking a free lock is one compare-and-swap that writes the holder's thread id, so the lock
 * is never held by an unknown thread: a thread that dies at any instruction of `lock` either
 * holds it, and is named by the word, or does not. (An earlier layout wrote the owner in a
 * second word after the CAS, and a thread killed between the two left a lock held by nobody
 * known, which no one could poison or recover.) Releasing is one exchange; `Atomics.notify`
 * runs only when the waiters bit says someone may be parked.
 *
 * No wait is unbounded: a waiter spins briefly, then parks in slices (`park`: `Atomics.wait`,
 * or a bounded spin on a page's main thread, which may not block), and gives up with
 * `LockTimeout` after the heap's lock timeout, naming the lock and its holder.
 * When the holder's thread is reaped while holding the lock (`seizeFromDead`), the reaper
 * takes the lock over and marks it poisoned, repairs what it guards and lifts the poison
 * (`clearPoison`) before releasing it: waiters go on waiting meanwhile, and get a repaired
 * lock. A poisoned lock that its dead holder still holds (its repair failed and gave it back,
 * `returnTo`) is one nobody is repairing: every waiter fails at once, as Rust's `Mutex`
 * reports a panicked holder, until a recovery takes it over (`takeOver`).
 *
 * ```text
 *  poisoned word   state word's holder   what a waiter does
 *  0               anyone                waits (bounded by the timeout)
 *  dead thread d   d                     fails at once: nobody repairs it (recover() will)
 *  dead thread d   the repairing thread  waits: the repair ends with the lock released
 *                                        (or, should the repairer die too, the timeout
 *                                        ends it, and reaping the repairer repairs it)
 * ```
 */

import { AllocError } from '../errors.js';
import type { LockOrder } from './lock-order.js';
import { park } from './park.js';
import { LOCK_ACQUIRED, LOCK_CONTENDED, LOCK_SPUN, LOCK_HOLDER_SHIFT, LOCK_POISONED, LOCK_STATE, LOCK_WAITERS } from './heap-layout.js';

const FREE = 0;

/**
 * Loads of the state word before a waiter parks: about 20 µs, many times an allocator's
 * critical section yet far below the cost of a park and wake-up, which dominates otherwise.
 */
const SPIN_LIMIT = 2000;

/** Longest single park, so poisoning and the timeout are noticed promptly. */
const PARK_SLICE_MS = 50;

/** Describes a thread for a lock error, e.g. "thread 3 (Node threadId 7)". */
export type ThreadDescriber = (threadId: number) => string;

/**
 * The steps of a contended acquisition, for tests that stop a thread between them (the
 * uncontended path is a single compare-and-swap: there is nothing between).
 */
export type LockStep = 'spun' | 'announced' | 'parked';

/** A mutex over one lock record; made once per attached thread, allocation-free per call. */
export class SharedMutex {
  private readonly stateIndex: number;
  private readonly poisonedIndex: number;
  private readonly contendedIndex: number;
  private readonly acquiredIndex: number;
  private readonly spunIndex: number;
  /** This thread's state word when it holds the lock and nobody waits. */
  private readonly heldWord: number;
  /** Test hook: called between the steps of a contended acquisition. */
  stepHook: ((step: LockStep) => void) | null = null;
  /** Checked mode: this thread's held locks, checked against `rank` at each acquisition. */
  private order: LockOrder | null = null;
  private rank = 0;

  /**
   * @param i32 an `Int32Array` over the whole heap buffer
   * @param recordOffset byte offset of the lock record
   * @param name the lock's name, for errors
   * @param threadId the id this thread writes as holder (1-based)
   * @param timeoutMs how long a waiter waits before `LockTimeout`
   * @param describeThread names a holder in errors
   * @param explainPoison says what recovery did about the lock a dead thread poisoned, for its error
   */
  constructor(
    private readonly i32: Int32Array,
    recordOffset: number,
    readonly name: string,
    readonly threadId: number,
    private readonly timeoutMs: number,
    private readonly describeThread: ThreadDescriber = (id) => `thread ${id}`,
    private readonly explainPoison: (deadThreadId: number, lockName: string) => string = () => '',
  ) {
    this.stateIndex = (recordOffset + LOCK_STATE) >> 2;
    this.poisonedIndex = (recordOffset + LOCK_POISONED) >> 2;
    this.contendedIndex = (recordOffset + LOCK_CONTENDED) >> 2;
    this.acquiredIndex = (recordOffset + LOCK_ACQUIRED) >> 2;
    this.spunIndex = (recordOffset + LOCK_SPUN) >> 2;
    this.heldWord = threadId << LOCK_HOLDER_SHIFT;
  }

  /**
   * Takes the lock.
   * @throws AllocError `LockTimeout` when not acquired within the timeout, or at once when the
   *   lock is poisoned
   */
  lock(): void {
    if (this.order !== null) this.order.acquire(this.rank, this.name);
    if (Atomics.compareExchange(this.i32, this.stateIndex, FREE, this.heldWord) !== FREE) {
      this.lockContended();
      this.i32[this.spunIndex]!++;
    }
    // Counted by the holder: the lock itself orders these plain increments.
    this.i32[this.acquiredIndex]!++;
  }

  /**
   * Takes the lock if it is free; never waits.
   * @throws AllocError `LockTimeout` when the lock is poisoned and nobody is repairing it
   */
  tryLock(): boolean {
    if (this.order !== null) this.order.acquire(this.rank, this.name);
    const word = Atomics.compareExchange(this.i32, this.stateIndex, FREE, this.heldWord);
    if (word === FREE) {
      this.i32[this.acquiredIndex]!++;
      return true;
    }
    const dead = this.abandonedBy();
    if (dead !== 0) this.failPoisoned(dead);
    this.order?.release(this.rank);
    return false;
  }

  /**
   * Checked mode: from now on this handle asserts the lock order (lock-order.ts) through
   * `order`, shared by every lock handle of the same thread, with this lock at `rank`.
   */
  trackOrder(order: LockOrder, rank: number): void {
    this.order = order;
    this.rank = rank;
  }

  /** Releases the lock; wakes one waiter only if one may be parked. */
  unlock(): void {
    if (this.order !== null) this.order.release(this.rank);
    if ((Atomics.exchange(this.i32, this.stateIndex, FREE) & LOCK_WAITERS) !== 0) {
      Atomics.notify(this.i32, this.stateIndex, 1);
    }
  }

  /** The id of the thread holding the lock, or 0. A racy snapshot, for diagnostics. */
  holder(): number {
    return Atomics.load(this.i32, this.stateIndex) >>> LOCK_HOLDER_SHIFT;
  }

  /** True when this thread holds the lock. */
  heldByMe(): boolean {
    return this.holder() === this.threadId;
  }

  /** The thread id of the dead holder that poisoned the lock, or 0. */
  poisonedBy(): number {
    return Atomics.load(this.i32, this.poisonedIndex);
  }

  /** How many acquisitions found the lock held and spun (and maybe parked) since the heap was formatted. */
  spunCount(): number {
    return Atomics.load(this.i32, this.spunIndex) >>> 0;
  }

  /** How many acquisitions had to park (wait) since the heap was formatted. */
  contendedCount(): number {
    return Atomics.load(this.i32, this.contendedIndex);
  }

  /**
   * How many times the lock was taken since the heap was formatted (as a 32-bit count, so it
   * wraps after 4 Gi acquisitions). A racy snapshot unless read holding the lock.
   */
  acquiredCount(): number {
    return Atomics.load(this.i32, this.acquiredIndex) >>> 0;
  }

  private lockContended(): void {
    const i32 = this.i32;
    const state = this.stateIndex;
    const held = this.heldWord;
    for (let spin = 0; spin < SPIN_LIMIT; spin++) {
      if (Atomics.load(i32, state) === FREE && Atomics.compareExchange(i32, state, FREE, held) === FREE) return;
    }
    let dead = this.abandonedBy();
    if (dead !== 0) this.failPoisoned(dead);
    this.stepHook?.('spun');
    Atomics.add(i32, this.contendedIndex, 1);
    const deadline = performance.now() + this.timeoutMs;
    // Whoever takes the lock from here on takes it with the waiters bit set, since others may
    // be parked too: an extra notify at its release is harmless, a missed one is not.
    for (;;) {
      const word = Atomics.load(i32, state);
      if (word === FREE) {
        if (Atomics.compareExchange(i32, state, FREE, held | LOCK_WAITERS) === FREE) return;
        continue;
      }
      if ((word & LOCK_WAITERS) === 0 && Atomics.compareExchange(i32, state, word, word | LOCK_WAITERS) !== word) continue;
      this.stepHook?.('announced');
      dead = this.abandonedBy();
      if (dead !== 0) this.failPoisoned(dead);
      const left = deadline - performance.now();
      if (left <= 0) this.failTimeout();
      park(i32, state, word | LOCK_WAITERS, Math.min(left, PARK_SLICE_MS));
      this.stepHook?.('parked');
    }
  }

  /**
   * The dead thread that poisoned the lock when it still holds it (nobody is repairing it,
   * so waiting would only end in the timeout), else 0.
   */
  private abandonedBy(): number {
    // The poisoned word first, then the state: `seizeFromDead` writes them the other way
    // round, so a reader that sees the poison also sees the lock seized from the dead
    // holder, never the dead holder of a state word loaded before the seizure.
    const dead = Atomics.load(this.i32, this.poisonedIndex);
    return dead !== 0 && Atomics.load(this.i32, this.stateIndex) >>> LOCK_HOLDER_SHIFT === dead ? dead : 0;
  }

  /**
   * If `deadThreadId` held the lock when it died, takes it over for this thread's repair and
   * marks it poisoned (by that thread), in that order: waiters, which only ever see it held,
   * go on waiting for the repair instead of failing. Afterwards `takeOver` confirms the lock
   * is this thread's, and the recovery repairs, lifts the poison and releases it. (Should this
   * thread die between the two stores, it holds an unpoisoned lock over half-updated state,
   * which is what reaping it handles: it is poisoned then as its own.) Returns whether the
   * lock was the dead thread's.
   */
  seizeFromDead(deadThreadId: number): boolean {
    for (;;) {
      const word = Atomics.load(this.i32, this.stateIndex);
      if (word >>> LOCK_HOLDER_SHIFT !== deadThreadId || deadThreadId === 0) return false;
      if (Atomics.compareExchange(this.i32, this.stateIndex, word, this.heldWord | (word & LOCK_WAITERS)) === word) break;
    }
    Atomics.store(this.i32, this.poisonedIndex, deadThreadId);
    return true;
  }

  /**
   * Takes a poisoned lock over from its dead holder, for a recovery: afterwards this thread
   * holds it (still poisoned, so nobody else enters until `clearPoison`). Returns false when
   * the lock is not poisoned or the dead thread no longer holds it.
   */
  takeOver(): boolean {
    const dead = Atomics.load(this.i32, this.poisonedIndex);
    if (dead === 0) return false;
    for (;;) {
      const word = Atomics.load(this.i32, this.stateIndex);
      if (word >>> LOCK_HOLDER_SHIFT !== dead) return word >>> LOCK_HOLDER_SHIFT === this.threadId;
      const mine = this.heldWord | (word & LOCK_WAITERS);
      if (Atomics.compareExchange(this.i32, this.stateIndex, word, mine) === word) {
        this.order?.acquire(this.rank, this.name);
        return true;
      }
    }
  }

  /**
   * Gives a lock taken over by `takeOver` back to its dead holder, still poisoned, after a
   * repair failed: the next recovery takes it over again.
   */
  returnTo(deadThreadId: number): void {
    this.order?.release(this.rank);
    Atomics.store(this.i32, this.stateIndex, (deadThreadId << LOCK_HOLDER_SHIFT) | LOCK_WAITERS);
    // The waiters were waiting for the repair; now there is none, so they fail at once.
    Atomics.notify(this.i32, this.stateIndex);
  }

  /** Lifts the poison; call holding the lock, once what it guards is consistent again. */
  clearPoison(): void {
    Atomics.store(this.i32, this.poisonedIndex, 0);
  }

  private failTimeout(): never {
    this.order?.release(this.rank);
    const holder = this.holder();
    throw new AllocError(
      'LockTimeout',
      `lock '${this.name}' not acquired within ${this.timeoutMs} ms: held by ${this.describeThread(holder)}; ` +
        'if that thread has ended without detaching, releasing its slot repairs the lock (watchWorker, or releaseThreadsOf with its platform thread id)',
    );
  }

  private failPoisoned(dead: number): never {
    this.order?.release(this.rank);
    const explained = this.explainPoison(dead, this.name);
    throw new AllocError(
      'LockTimeout',
      `lock '${this.name}' is poisoned: ${this.describeThread(dead)} died while holding it, ` +
        `so the state it guards may be half-updated${explained === '' ? '' : `; ${explained}`}`,
    );
  }
}
