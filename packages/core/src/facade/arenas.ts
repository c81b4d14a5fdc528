/**
 * A locked backend's arenas, as one thread sees them (docs/arenas.md). With the `arenas`
 * option above 1 the heap runs that many instances of the backend, each over its own slice
 * of the arena, with its own heap lock, state, counters and pool table (`ARENA_*` in
 * heap-layout.ts); with 1 (the default) there is one, over the whole arena, under `heap`.
 *
 * ```text
 *   arena start                                                           arena end
 *   |  arena 0: lock heap      |  arena 1: lock arena1    |  arena 2: lock arena2   |
 *   |  threads 1, 4, 7 ...     |  threads 2, 5, 8 ...     |  threads 3, 6, 9 ...    |
 *        allocate here first ^            a free goes to the slice holding the block
 * ```
 *
 * Why: two threads on one heap write the same lines (the lock, the backend's lists, blocks
 * one frees and the other reuses), which costs each of them a round trip between cores
 * whenever the host places the CPUs far apart (docs/speed.md, "One heap against a heap
 * each"). An arena of its own gives a thread memory no other thread allocates from, as
 * glibc's arenas do. The price: a block can be no larger than one slice, and free memory in
 * another arena is used only when a thread's own has no room.
 *
 * Locks: a thread holds at most one arena's lock at a time, so arenas need no order among
 * themselves; `LOCK_RANK` still gives them one (heap, arena1, arena2), below `recovery`,
 * which a repair takes while holding the lock it repairs.
 */

import type { Backend } from '../backend/contract.js';
import type { SharedMutex } from '../memory/mutex.js';

/** One arena: the backend instance over its slice, and the lock every call to it holds. */
export interface Arena {
  /** 0 to `arenaCount - 1`; the slices lie in this order. */
  readonly index: number;
  readonly inner: Backend;
  readonly mutex: SharedMutex;
  /** The slice: `[start, end)`. */
  readonly start: number;
  readonly end: number;
}

/** The arenas of one heap, for one thread: its home arena, and which arena holds an address. */
export class Arenas {
  /** The arena this thread allocates from first. */
  readonly home: Arena;
  readonly count: number;

  /** @param list every arena, in slice order; `threadId` picks the home (`(threadId - 1) % count`) */
  constructor(
    readonly list: readonly Arena[],
    threadId: number,
  ) {
    this.count = list.length;
    this.home = this.ofThread(threadId);
  }

  /** The home arena of thread `threadId`: where its thread cache's blocks come from. */
  ofThread(threadId: number): Arena {
    return this.list[(threadId - 1) % this.count]!;
  }

  /**
   * The arena whose slice holds `address`. An address in none goes to arena 0, whose
   * instance refuses it as it refuses any address that is no live block of its own.
   */
  of(address: number): Arena {
    const list = this.list;
    if (list.length === 1) return list[0]!;
    for (let index = list.length - 1; index > 0; index--) {
      const arena = list[index]!;
      if (address >= arena.start && address < arena.end) return arena;
    }
    return list[0]!;
  }
}
