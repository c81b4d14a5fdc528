/**
 * The lock-order assertion of checked mode: one `LockOrder` per attached thread remembers
 * which ranks (`LOCK_RANK`) it holds, and taking a lock whose rank is not above every held
 * one fails at once, naming both locks, instead of deadlocking one run in a million.
 * docs/lock-order.md says what each lock protects and why the order is what it is.
 *
 * Off checked mode no `LockOrder` exists and `SharedMutex` pays one null test per call.
 */

/** Thrown when a thread takes a lock out of order: a bug in heaplab or a backend, not bad input. */
export class LockOrderViolation extends Error {
  override readonly name = 'LockOrderViolation';
}

export class LockOrder {
  /** Bit `rank` set while this thread holds the lock of that rank. */
  private held = 0;
  /** The names of the held locks, by rank, for the message. */
  private readonly names: string[] = [];

  /**
   * Records that this thread is about to take lock `name` of rank `rank`.
   * @throws LockOrderViolation when it holds that lock already or one that nests inside it
   */
  acquire(rank: number, name: string): void {
    const inner = this.held >>> rank;
    if (inner !== 0) {
      const blocking = rank + 31 - Math.clz32(inner);
      throw new LockOrderViolation(
        blocking === rank
          ? `lock '${name}' taken again by the thread that holds it`
          : `lock '${name}' (rank ${rank}) taken while holding '${this.names[blocking]}' (rank ${blocking}), which nests inside it`,
      );
    }
    this.held |= 1 << rank;
    this.names[rank] = name;
  }

  /** Records that this thread gave the lock of rank `rank` up. */
  release(rank: number): void {
    this.held &= ~(1 << rank);
  }

  /** The ranks held, as a bit set (for tests). */
  heldRanks(): number {
    return this.held;
  }
}
