/**
 * The thread registry: a fixed table of slots in the control region (layout `SLOT_*` in
 * `heap-layout.ts`). Attaching claims a free slot with compare-and-swap, so no lock is
 * needed; the thread id is the slot index + 1 and is reused once the slot is released.
 *
 * A slot also records the Node `threadId` of its holder, so the main thread can find and
 * release the slots of a worker that exited without detaching.
 */

import { AllocError } from './errors.js';
import {
  REGISTRY,
  SLOT_BYTES,
  SLOT_COUNTERS,
  SLOT_GENERATION,
  SLOT_NODE_THREAD,
  SLOT_STATE,
  SlotState,
} from './heap-layout.js';
import type { HeapMemory } from './interfaces.js';

/** Byte offset of thread `threadId`'s slot. */
export function slotOffset(threadId: number): number {
  return REGISTRY + (threadId - 1) * SLOT_BYTES;
}

/** Index into a `Float64Array` of the heap of the first counter of thread `threadId`. */
export function counterIndex(threadId: number): number {
  return (slotOffset(threadId) + SLOT_COUNTERS) >> 3;
}

/** Operations on the registry of one heap. Stateless apart from its views. */
export class ThreadRegistry {
  constructor(
    private readonly memory: HeapMemory,
    readonly maxThreads: number,
  ) {}

  /**
   * Claims a free slot for the calling thread.
   * @param nodeThreadId `worker_threads.threadId` of the caller
   * @returns the thread id (1-based)
   * @throws AllocError `ThreadLimit` when every slot is taken
   */
  claim(nodeThreadId: number): number {
    const i32 = this.memory.i32;
    for (let threadId = 1; threadId <= this.maxThreads; threadId++) {
      const base = slotOffset(threadId) >> 2;
      if (Atomics.compareExchange(i32, base + (SLOT_STATE >> 2), SlotState.free, SlotState.active) === SlotState.free) {
        i32[base + (SLOT_NODE_THREAD >> 2)] = nodeThreadId;
        Atomics.add(i32, base + (SLOT_GENERATION >> 2), 1);
        return threadId;
      }
    }
    throw new AllocError(
      'ThreadLimit',
      `all ${this.maxThreads} thread slots of this heap are taken; detach finished threads ` +
        'or create the heap with a larger maxThreads',
    );
  }

  /**
   * Moves an active slot to `releasing`, so only one caller releases it.
   * @returns false when the slot was not active (already released or being released)
   */
  beginRelease(threadId: number): boolean {
    const index = (slotOffset(threadId) + SLOT_STATE) >> 2;
    return Atomics.compareExchange(this.memory.i32, index, SlotState.active, SlotState.releasing) === SlotState.active;
  }

  /** Frees a slot that `beginRelease` took; its id may be handed out again. */
  finishRelease(threadId: number): void {
    Atomics.store(this.memory.i32, (slotOffset(threadId) + SLOT_STATE) >> 2, SlotState.free);
  }

  /** The state of a slot (`SlotState`). */
  state(threadId: number): number {
    return Atomics.load(this.memory.i32, (slotOffset(threadId) + SLOT_STATE) >> 2);
  }

  /** The Node `threadId` recorded by the slot's holder. */
  nodeThreadId(threadId: number): number {
    return this.memory.i32[(slotOffset(threadId) + SLOT_NODE_THREAD) >> 2]!;
  }

  /** Ids of the active slots held by Node thread `nodeThreadId`. */
  threadsOfNodeThread(nodeThreadId: number): number[] {
    const ids: number[] = [];
    for (let threadId = 1; threadId <= this.maxThreads; threadId++) {
      if (this.state(threadId) === SlotState.active && this.nodeThreadId(threadId) === nodeThreadId) {
        ids.push(threadId);
      }
    }
    return ids;
  }

  /** Number of active slots. */
  activeCount(): number {
    let count = 0;
    for (let threadId = 1; threadId <= this.maxThreads; threadId++) {
      if (this.state(threadId) === SlotState.active) count++;
    }
    return count;
  }

  /**
   * Sum of counter `counter` over all slots. Counters are never reset, so a reused slot
   * keeps counting from where its previous holder stopped and the sum covers the heap's life.
   */
  sumCounter(counter: number): number {
    let sum = 0;
    for (let threadId = 1; threadId <= this.maxThreads; threadId++) {
      sum += this.memory.f64[counterIndex(threadId) + counter]!;
    }
    return sum;
  }

  /** "thread 3 (Node threadId 7, active)", for error messages. */
  describe(threadId: number): string {
    if (threadId < 1 || threadId > this.maxThreads) return `thread ${threadId} (not a registry slot)`;
    const state = ['released', 'active', 'releasing'][this.state(threadId)] ?? 'unknown';
    return `thread ${threadId} (Node threadId ${this.nodeThreadId(threadId)}, ${state})`;
  }
}
