/**
 * Recovery after a thread's death: the shared record of what recovery could not give back,
 * and the repair of each lock a dead thread held.
 *
 * A thread may die at any instruction, inside a lock included. The lock then names the dead
 * holder (see mutex.ts); reaping the thread poisons it, so nobody works on a half-updated
 * structure. Recovery takes the poisoned lock over, asks the owner of what it guards to make
 * it consistent again, verifies the result, and only then lifts the poison:
 *
 * | lock          | guards                           | repair                                  |
 * |---------------|----------------------------------|-----------------------------------------|
 * | heap          | a locked backend's structures    | `Backend.recover`: rebuild the free     |
 * |               |                                  | structures from what the arena records, |
 * |               |                                  | as a file-system check does; `check()`  |
 * | backend0/1    | a thread-safe backend's own      | `Backend.recover` for that lock (the    |
 * |               | shared structures                | backend knows what it guards); `check()`|
 * | pools         | core's pool table                | none: each pool entry is written before |
 * |               |                                  | the count that publishes it             |
 * | qsbr-orphans  | the orphan list of delayed frees | none: chunks are unlinked before they   |
 * |               |                                  | are freed; its byte count is recounted  |
 * | recovery      | the record below                 | none: figures only                      |
 *
 * A repair that fails leaves the lock poisoned and records why, so the next caller's error
 * says it (and `stats().recovery` shows it); `GlobalAllocator.recover()` tries again.
 */

import { AllocError } from '../errors.js';
import {
  RECOVERY,
  RECOVERY_FAILED,
  RECOVERY_LAST_THREAD,
  RECOVERY_LOST_BLOCKS,
  RECOVERY_LOST_BYTES,
  RECOVERY_MESSAGE,
  RECOVERY_MESSAGE_BYTES,
  RECOVERY_MESSAGE_LENGTH,
  RECOVERY_SUCCEEDED,
} from './heap-layout.js';
import type { HeapMemory } from '../interfaces.js';
import type { SharedMutex } from './mutex.js';

/** The recovery figures every thread can read (`stats().recovery`). */
export interface RecoveryFigures {
  /** Bytes that no structure accounts for after the repairs so far: lost for good. */
  lostBytes: number;
  lostBlocks: number;
  /** Repairs that succeeded and failed since the heap was formatted. */
  succeeded: number;
  failed: number;
  /** Why the last failed repair failed ('' when none did). */
  lastFailure: string;
}

/** What one recovery did: `GlobalAllocator.recover()` and `releaseThreadsOf` return it. */
export interface RecoveryReport {
  /** Locks that were poisoned and work again. */
  recovered: string[];
  /** Locks that stay poisoned, and why. */
  failed: { lock: string; reason: string }[];
  /** Bytes and blocks this recovery found lost. */
  lostBytes: number;
  lostBlocks: number;
  /** One line per thing repaired or given up on. */
  notes: string[];
}

/** An empty report, to add to. */
export function emptyReport(): RecoveryReport {
  return { recovered: [], failed: [], lostBytes: 0, lostBlocks: 0, notes: [] };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** One thread's handle on the heap's recovery record. */
export class RecoveryRecord {
  private readonly u32: Uint32Array;
  private readonly f64: Float64Array;
  private readonly u8: Uint8Array;
  /** While not null, writes that would wait for the lock are kept here instead (`deferring`). */
  private deferred: (() => void)[] | null = null;

  constructor(
    memory: HeapMemory,
    private readonly mutex: SharedMutex,
  ) {
    this.u32 = memory.u32;
    this.f64 = memory.f64;
    this.u8 = memory.u8;
  }

  /** Adds what a repair could not account for. */
  addLoss(bytes: number, blocks: number): void {
    if (bytes === 0 && blocks === 0) return;
    this.write(() => {
      this.f64[(RECOVERY + RECOVERY_LOST_BYTES) >> 3]! += bytes;
      this.u32[(RECOVERY + RECOVERY_LOST_BLOCKS) >> 2]! += blocks;
    });
  }

  /** Counts a repair that succeeded. */
  noteSuccess(): void {
    this.write(() => {
      this.u32[(RECOVERY + RECOVERY_SUCCEEDED) >> 2]!++;
    });
  }

  /** Counts a repair that failed and keeps its message for the errors that follow. */
  noteFailure(deadThreadId: number, message: string): void {
    this.write(() => {
      const u32 = this.u32;
      u32[(RECOVERY + RECOVERY_FAILED) >> 2]!++;
      u32[(RECOVERY + RECOVERY_LAST_THREAD) >> 2] = deadThreadId;
      let bytes = encoder.encode(message);
      if (bytes.length > RECOVERY_MESSAGE_BYTES) bytes = bytes.subarray(0, RECOVERY_MESSAGE_BYTES);
      this.u8.set(bytes, RECOVERY + RECOVERY_MESSAGE);
      Atomics.store(u32, (RECOVERY + RECOVERY_MESSAGE_LENGTH) >> 2, bytes.length);
    });
  }

  /** The figures, as every thread sees them. */
  figures(): RecoveryFigures {
    const u32 = this.u32;
    return {
      lostBytes: this.f64[(RECOVERY + RECOVERY_LOST_BYTES) >> 3]!,
      lostBlocks: u32[(RECOVERY + RECOVERY_LOST_BLOCKS) >> 2]!,
      succeeded: u32[(RECOVERY + RECOVERY_SUCCEEDED) >> 2]!,
      failed: u32[(RECOVERY + RECOVERY_FAILED) >> 2]!,
      lastFailure: this.lastFailure(),
    };
  }

  /**
   * The message of the last failed repair if it was about dead thread `deadThreadId` and
   * starts with `prefix` (which lock), or ''. A racy read: a failure recorded meanwhile may
   * pair one thread with another's message, which the prefix then mostly refuses.
   */
  lastFailureOf(deadThreadId: number, prefix: string): string {
    if (Atomics.load(this.u32, (RECOVERY + RECOVERY_LAST_THREAD) >> 2) !== deadThreadId) return '';
    const message = this.lastFailure();
    return message.startsWith(prefix) ? message : '';
  }

  /** The message of the last failed repair, or ''. */
  lastFailure(): string {
    const length = Math.min(Atomics.load(this.u32, (RECOVERY + RECOVERY_MESSAGE_LENGTH) >> 2), RECOVERY_MESSAGE_BYTES);
    if (length === 0) return '';
    // TextDecoder refuses views of shared memory, so copy the bytes out first.
    return decoder.decode(this.u8.slice(RECOVERY + RECOVERY_MESSAGE, RECOVERY + RECOVERY_MESSAGE + length));
  }

  /**
   * Runs `work`, and returns the writes it made that found the recovery lock held: they did
   * not wait for it, and the caller applies them later (`apply`). For a reaper on an event
   * loop, where the thread holding the lock may be dead and repaired only by an event that
   * cannot run while it waits.
   */
  deferring(work: () => void): (() => void)[] {
    const kept: (() => void)[] = [];
    this.deferred = kept;
    try {
      work();
    } finally {
      this.deferred = null;
    }
    return kept;
  }

  /** Makes the writes `deferring` kept, waiting for the lock as any write does. */
  apply(writes: readonly (() => void)[]): void {
    for (const update of writes) this.write(update);
  }

  /**
   * Runs `update` under the recovery lock. The record holds figures only, so a writer that
   * died holding the lock left nothing to repair: the lock is taken over and cleared.
   */
  private write(update: () => void): void {
    if (this.deferred !== null) {
      if (!this.tryLockOrTakeOver()) {
        this.deferred.push(update);
        return;
      }
    } else if (!this.lockOrTakeOver()) {
      return;
    }
    try {
      update();
    } finally {
      this.mutex.unlock();
    }
  }

  /** `lockOrTakeOver` without waiting: false when another thread holds the lock. */
  private tryLockOrTakeOver(): boolean {
    try {
      return this.mutex.tryLock();
    } catch (error) {
      if (!(error instanceof AllocError) || !this.mutex.takeOver()) return false;
      this.mutex.clearPoison();
      return true;
    }
  }

  private lockOrTakeOver(): boolean {
    try {
      this.mutex.lock();
      return true;
    } catch (error) {
      if (!(error instanceof AllocError) || !this.mutex.takeOver()) return false;
      this.mutex.clearPoison();
      return true;
    }
  }
}
