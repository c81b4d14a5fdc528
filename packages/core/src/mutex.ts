/**
 * A futex-style mutex on a lock record in shared memory (Drepper, "Futexes Are Tricky",
 * mutex 2). The record's layout is in `heap-layout.ts` (`LOCK_*`).
 *
 * The state word is 0 (free), 1 (held, nobody waits) or 2 (held, someone may wait). Taking a
 * free lock is one compare-and-swap; releasing a lock nobody waits on is one atomic
 * subtraction; `Atomics.notify` runs only when the state says someone may be parked.
 *
 * No wait is unbounded: a waiter spins briefly, then parks with `Atomics.wait` in slices, and
 * gives up with `LockTimeout` after the heap's lock timeout, naming the lock and its holder.
 * If the holder's thread is reaped while holding the lock, the lock is poisoned and every
 * waiter fails at once, as Rust's `Mutex` reports a panicked holder.
 */

import { AllocError } from './errors.js';
import { LOCK_CONTENDED, LOCK_OWNER, LOCK_POISONED, LOCK_STATE } from './heap-layout.js';

const FREE = 0;
const HELD = 1;
const HELD_WAITED = 2;

/**
 * Loads of the state word before a waiter parks: about 20 µs, many times an allocator's
 * critical section yet far below the cost of a park and wake-up, which dominates otherwise.
 */
const SPIN_LIMIT = 2000;

/** Longest single `Atomics.wait`, so poisoning and the timeout are noticed promptly. */
const PARK_SLICE_MS = 50;

/** Describes a thread for a lock error, e.g. "thread 3 (Node threadId 7)". */
export type ThreadDescriber = (threadId: number) => string;

/** A mutex over one lock record; made once per attached thread, allocation-free per call. */
export class SharedMutex {
  private readonly stateIndex: number;
  private readonly ownerIndex: number;
  private readonly poisonedIndex: number;
  private readonly contendedIndex: number;

  /**
   * @param i32 an `Int32Array` over the whole heap buffer
   * @param recordOffset byte offset of the lock record
   * @param name the lock's name, for errors
   * @param threadId the id this thread writes as owner (1-based)
   * @param timeoutMs how long a waiter waits before `LockTimeout`
   * @param describeThread names a holder in errors
   */
  constructor(
    private readonly i32: Int32Array,
    recordOffset: number,
    readonly name: string,
    private readonly threadId: number,
    private readonly timeoutMs: number,
    private readonly describeThread: ThreadDescriber = (id) => `thread ${id}`,
  ) {
    this.stateIndex = (recordOffset + LOCK_STATE) >> 2;
    this.ownerIndex = (recordOffset + LOCK_OWNER) >> 2;
    this.poisonedIndex = (recordOffset + LOCK_POISONED) >> 2;
    this.contendedIndex = (recordOffset + LOCK_CONTENDED) >> 2;
  }

  /**
   * Takes the lock.
   * @throws AllocError `LockTimeout` when not acquired within the timeout, or at once when the
   *   lock is poisoned
   */
  lock(): void {
    if (Atomics.compareExchange(this.i32, this.stateIndex, FREE, HELD) !== FREE) {
      this.lockContended();
    }
    this.i32[this.ownerIndex] = this.threadId;
  }

  /**
   * Takes the lock if it is free; never waits.
   * @throws AllocError `LockTimeout` when the lock is poisoned
   */
  tryLock(): boolean {
    if (Atomics.compareExchange(this.i32, this.stateIndex, FREE, HELD) !== FREE) {
      if (this.i32[this.poisonedIndex] !== 0) this.failPoisoned();
      return false;
    }
    this.i32[this.ownerIndex] = this.threadId;
    return true;
  }

  /** Releases the lock; wakes one waiter only if one may be parked. */
  unlock(): void {
    this.i32[this.ownerIndex] = 0;
    if (Atomics.sub(this.i32, this.stateIndex, 1) !== HELD) {
      Atomics.store(this.i32, this.stateIndex, FREE);
      Atomics.notify(this.i32, this.stateIndex, 1);
    }
  }

  /** The id of the thread holding the lock, or 0. A racy snapshot, for diagnostics. */
  holder(): number {
    return Atomics.load(this.i32, this.stateIndex) === FREE ? 0 : this.i32[this.ownerIndex]!;
  }

  /** How many acquisitions had to wait since the heap was formatted. */
  contendedCount(): number {
    return Atomics.load(this.i32, this.contendedIndex);
  }

  private lockContended(): void {
    const i32 = this.i32;
    const state = this.stateIndex;
    for (let spin = 0; spin < SPIN_LIMIT; spin++) {
      if (
        Atomics.load(i32, state) === FREE &&
        Atomics.compareExchange(i32, state, FREE, HELD) === FREE
      ) {
        return;
      }
    }
    Atomics.add(i32, this.contendedIndex, 1);
    const deadline = performance.now() + this.timeoutMs;
    // Announce a waiter (state 2) and park until the holder's unlock wakes us. Whoever turns
    // a free lock into 2 owns it; the extra notify that may cost on release is harmless.
    let previous = Atomics.exchange(i32, state, HELD_WAITED);
    while (previous !== FREE) {
      if (i32[this.poisonedIndex] !== 0) this.failPoisoned();
      const left = deadline - performance.now();
      if (left <= 0) this.failTimeout();
      Atomics.wait(i32, state, HELD_WAITED, Math.min(left, PARK_SLICE_MS));
      previous = Atomics.exchange(i32, state, HELD_WAITED);
    }
  }

  /**
   * Marks the lock as poisoned because `deadThreadId` held it when it died, and wakes every
   * waiter so they fail now rather than at their timeout. Returns whether it was held by it.
   */
  poisonIfHeldBy(deadThreadId: number): boolean {
    if (Atomics.load(this.i32, this.stateIndex) === FREE) return false;
    if (this.i32[this.ownerIndex] !== deadThreadId) return false;
    Atomics.store(this.i32, this.poisonedIndex, deadThreadId);
    Atomics.notify(this.i32, this.stateIndex);
    return true;
  }

  private failTimeout(): never {
    const owner = this.i32[this.ownerIndex]!;
    const who = owner === 0 ? 'a thread that has not yet recorded itself' : this.describeThread(owner);
    throw new AllocError(
      'LockTimeout',
      `lock '${this.name}' not acquired within ${this.timeoutMs} ms: held by ${who}`,
    );
  }

  private failPoisoned(): never {
    const dead = this.i32[this.poisonedIndex]!;
    throw new AllocError(
      'LockTimeout',
      `lock '${this.name}' is poisoned: ${this.describeThread(dead)} died while holding it, ` +
        'so the state it guards may be half-updated',
    );
  }
}
