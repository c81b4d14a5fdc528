/**
 * The thread registry: a fixed table of slots in the control region (layout `SLOT_*` in
 * `heap-layout.ts`). Attaching claims a free slot with compare-and-swap, so no lock is
 * needed; the thread id is the slot index + 1 and is reused once the slot is released.
 *
 * A slot's state word carries a generation, bumped by every claim. A handle keeps the word
 * its claim wrote (its *ticket*), and every later transition of the slot is a
 * compare-and-swap from that ticket: a stale handle (detached twice, or reaped while its
 * owner still held a copy) can never release a slot that another handle has claimed since.
 *
 * A slot also records the Node `threadId` of its holder (in a browser, the random
 * `platformThreadId` of the page or web worker), so the main thread can find and release the
 * slots of a worker that exited without detaching.
 */

import { PLATFORM_NAME } from '#platform';

import { AllocError } from '../errors.js';
import { REGISTRY, SLOT_BYTES, SLOT_COUNTERS, SLOT_GENERATION_SHIFT, SLOT_NODE_THREAD, SLOT_STATE, SLOT_STATE_MASK, SlotState } from './heap-layout.js';
import type { HeapMemory } from '../interfaces.js';
import type { ThreadSlots } from '../backend/contract.js';

/** What a slot's recorded runtime thread id is called in messages: Node numbers its threads, a browser's are drawn at random. */
const PLATFORM_THREAD_LABEL = PLATFORM_NAME === 'node' ? 'Node threadId' : 'browser thread id';

/** Byte offset of thread `threadId`'s slot. */
export function slotOffset(threadId: number): number {
  return REGISTRY + (threadId - 1) * SLOT_BYTES;
}

/** Index into a `Float64Array` of the heap of the first counter of thread `threadId`. */
export function counterIndex(threadId: number): number {
  return (slotOffset(threadId) + SLOT_COUNTERS) >> 3;
}

/** A slot as a handle holds it: its thread id, and the state word its claim wrote (its ticket). */
export interface SlotTicket {
  threadId: number;
  ticket: number;
}

/** Operations on the registry of one heap. Stateless apart from its views. */
export class ThreadRegistry implements ThreadSlots {
  constructor(
    private readonly memory: HeapMemory,
    readonly maxThreads: number,
  ) {}

  /**
   * Claims a free slot for the calling thread.
   * @param nodeThreadId the caller's `platformThreadId` (`worker_threads.threadId` in Node)
   * @returns the thread id (1-based) and the ticket (the slot word the claim wrote)
   * @throws AllocError `ThreadLimit` when every slot is taken
   */
  claim(nodeThreadId: number): SlotTicket {
    const i32 = this.memory.i32;
    for (let threadId = 1; threadId <= this.maxThreads; threadId++) {
      const base = slotOffset(threadId) >> 2;
      const word = Atomics.load(i32, base + (SLOT_STATE >> 2));
      if ((word & SLOT_STATE_MASK) !== SlotState.free) continue;
      const ticket = (((word >>> SLOT_GENERATION_SHIFT) + 1) << SLOT_GENERATION_SHIFT) | SlotState.active;
      if (Atomics.compareExchange(i32, base + (SLOT_STATE >> 2), word, ticket) === word) {
        i32[base + (SLOT_NODE_THREAD >> 2)] = nodeThreadId;
        return { threadId, ticket };
      }
    }
    throw new AllocError(
      'ThreadLimit',
      `all ${this.maxThreads} thread slots of this heap are taken; detach threads before they end, release the slots of threads that ended without detaching (watchWorker, or releaseThreadsOf with their platform thread id), or create the heap with a larger maxThreads`,
    );
  }

  /**
   * Moves the slot from `ticket` (active, of one generation) to `releasing`, so only one
   * caller releases it, and only the holder of that generation.
   * @returns false when the slot is no longer that ticket (already released, being released,
   *   or claimed again since)
   */
  beginRelease(threadId: number, ticket: number): boolean {
    return this.move(threadId, ticket, SlotState.releasing);
  }

  /**
   * Moves the slot of a dead thread from `ticket` (active, or `releasing` when it died inside
   * its own `detach`) to `reaping`, so exactly one reaper finishes its release.
   * @returns false when another reaper took it, or the slot is no longer that ticket
   */
  beginReap(threadId: number, ticket: number): boolean {
    const state = ticket & SLOT_STATE_MASK;
    if (state !== SlotState.active && state !== SlotState.releasing) return false;
    return this.move(threadId, ticket, SlotState.reaping);
  }

  /** Compare-and-swap of the slot word from `ticket` to the same generation in `state`. */
  private move(threadId: number, ticket: number, state: number): boolean {
    const index = (slotOffset(threadId) + SLOT_STATE) >> 2;
    const next = ticket - (ticket & SLOT_STATE_MASK) + state;
    return Atomics.compareExchange(this.memory.i32, index, ticket, next) === ticket;
  }

  /**
   * Frees a slot that `beginRelease` or `beginReap` took (the ticket of the same generation);
   * its id may be handed out again.
   */
  finishRelease(threadId: number, ticket: number): void {
    const index = (slotOffset(threadId) + SLOT_STATE) >> 2;
    Atomics.store(this.memory.i32, index, ticket - (ticket & SLOT_STATE_MASK) + SlotState.free);
  }

  /** The slot's whole state word (generation and state). */
  ticket(threadId: number): number {
    return Atomics.load(this.memory.i32, (slotOffset(threadId) + SLOT_STATE) >> 2);
  }

  /** True while `ticket` is still the slot's word: the handle that claimed it holds it. */
  holds(threadId: number, ticket: number): boolean {
    return this.ticket(threadId) === ticket;
  }

  /** True while a live handle holds thread id `threadId`. */
  isActive(threadId: number): boolean {
    return this.state(threadId) === SlotState.active;
  }

  /** The state of a slot (`SlotState`). */
  state(threadId: number): number {
    return this.ticket(threadId) & SLOT_STATE_MASK;
  }

  /** The generation of a slot: how many times it was claimed. */
  generation(threadId: number): number {
    return this.ticket(threadId) >>> SLOT_GENERATION_SHIFT;
  }

  /** The Node `threadId` recorded by the slot's holder. */
  nodeThreadId(threadId: number): number {
    return this.memory.i32[(slotOffset(threadId) + SLOT_NODE_THREAD) >> 2]!;
  }

  /**
   * The slots Node thread `nodeThreadId` still holds, with their tickets: the active ones,
   * and those it left `releasing` by dying inside its own `detach`.
   */
  threadsOfNodeThread(nodeThreadId: number): SlotTicket[] {
    const found: SlotTicket[] = [];
    for (let threadId = 1; threadId <= this.maxThreads; threadId++) {
      const ticket = this.ticket(threadId);
      const state = ticket & SLOT_STATE_MASK;
      if ((state === SlotState.active || state === SlotState.releasing) && this.nodeThreadId(threadId) === nodeThreadId) {
        found.push({ threadId, ticket });
      }
    }
    return found;
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
    if (threadId === 0) return 'no thread';
    if (threadId < 1 || threadId > this.maxThreads) return `thread ${threadId} (not a registry slot)`;
    const state = ['released', 'active', 'releasing', 'reaping'][this.state(threadId)] ?? 'unknown';
    return `thread ${threadId} (${PLATFORM_THREAD_LABEL} ${this.nodeThreadId(threadId)}, ${state})`;
  }
}
