/**
 * The contract a backend implements to plug into `GlobalAllocator`, exported as
 * `@heaplab/core/backend` with the kit that implements the scaffolding once (counters, the
 * pool view, errors, checks, bits, options): a backend is its algorithm and its layout.
 *
 * Addresses are byte offsets into the heap's `SharedArrayBuffer`; 0 is never a block.
 */

import type { BackendStats, CheckReport, HeapMemory, HeapRegion, StatsTable } from '../interfaces.js';
import type { SharedMutex } from '../memory/mutex.js';
import type { Qsbr } from '../qsbr/qsbr.js';
import type { StateCounters } from './counters.js';
import type { PoolView } from './pools.js';

/** What the registry tells a backend about threads (by thread id, 1-based). */
export interface ThreadSlots {
  /** True while a live handle holds thread id `threadId`. */
  isActive(threadId: number): boolean;
  /**
   * How many times the slot was claimed: a thread id with another generation than the one
   * recorded next to some work is another thread (the one that did the work is gone).
   */
  generation(threadId: number): number;
}

/** Everything a backend instance is given when it is created for one thread. */
export interface BackendContext {
  readonly memory: HeapMemory;
  /** Start of the control-region area reserved for this backend (`stateBytes` long). */
  readonly stateOffset: number;
  readonly stateBytes: number;
  /** The arena: `[arenaStart, arenaEnd)`. */
  readonly arenaStart: number;
  readonly arenaEnd: number;
  /** Thread id of the thread this instance is for (1-based; 0 never). */
  readonly threadId: number;
  /** The heap's random cookie, for backends that tag their blocks. */
  readonly cookie: number;
  /** Slots in the thread registry: thread ids run from 1 to `maxThreads`. */
  readonly maxThreads: number;
  /**
   * The shared locks the descriptor named in `locks` (at most two), bound to this thread's
   * id, for the backend's own use off its fast path (a thread-safe backend's segment pool,
   * say). Lock-based backends are already called under the heap lock and need none.
   */
  readonly locks: Readonly<Record<string, SharedMutex>>;
  /** The counters `stats()` reports (used, peak, requested...), kept in one fixed place. */
  readonly counters: StateCounters;
  /** Core's pool table, read-only: every range given by `init` and `addMemory`. */
  readonly pools: PoolView;
  /**
   * This thread's handle on the heap's QSBR domain (the one `quiescent()` and `freeDelayed`
   * use), for a backend that defers reuse until every thread passed a quiescent point.
   */
  readonly qsbr: Qsbr;
  /**
   * Checked mode (`HeapConfig.checked`, `HEAPLAB_CHECKED=1`): verify the invariants each
   * operation touches, cheaply and fail-fast, and raise `HeapCorrupted` at the first broken one.
   */
  readonly checked: boolean;
  /** The thread registry's view of which thread ids are alive, and their generations. */
  readonly threads: ThreadSlots;
  /**
   * Records memory that a repair found no structure accounting for (it shows in
   * `stats().recovery.lostBytes`). For repairs done outside `recover` (a dead thread's
   * half-finished step finished or rolled back by another thread).
   */
  reportLoss(bytes: number, blocks: number): void;
}

/** Why a backend is asked to repair itself. */
export interface RepairCause {
  /**
   * `heap` for a locked backend (the heap lock serialises all of it); for a thread-safe
   * backend, the name of its own lock (one of the descriptor's `locks`).
   */
  readonly lock: string;
  /** The thread id that died holding it (its slot may be claimed again already). */
  readonly deadThreadId: number;
}

/** What a backend's repair did. */
export interface BackendRepair {
  /** Bytes that no structure accounts for any more (neither free nor a live block). */
  lostBytes: number;
  lostBlocks: number;
  /** One line per thing repaired, for the report. */
  notes: string[];
}

/**
 * What a backend knows of the layout a live block may be freed with (`dealloc`): a size in
 * `[minSize, maxSize]` and an alignment, raised to `MIN_ALIGN` as allocation raises it, in
 * `[minAlign, maxAlign]`. A backend that records the request says it exactly; a size-class
 * backend gives its class's range and the alignment the class guarantees.
 */
export interface BlockLayout {
  minSize: number;
  maxSize: number;
  minAlign: number;
  maxAlign: number;
}

/**
 * One backend instance, made per attached thread over shared state. Lock-based backends are
 * called with the heap lock held; `concurrency: 'thread-safe'` ones are called directly.
 * Sizes and alignments reaching a backend are already checked (`align` at least `MIN_ALIGN`).
 */
export interface Backend {
  /** Formats the shared state for `[start, start + size)`. Called once, by the creator. */
  init(start: number, size: number): void;
  /** Adds a range (already checked for bounds and overlap by core). */
  addMemory(start: number, size: number): void;
  /** Returns a block of at least `size` bytes aligned to `align`, or 0 when none fits. */
  allocate(size: number, align: number): number;
  /**
   * Frees the block at `address`.
   * @throws AllocError `NotAllocated` when it is not the start of a live block
   */
  release(address: number): void;
  /**
   * True when `release` may be given any integer from 1 to 2^32 - 1, not only an 8-aligned
   * address in the arena: it then refuses every address that is not the start of a live
   * block (outside the arena, misaligned, interior, already free) with an `AllocError`,
   * leaving the heap unchanged, and reads nothing outside the buffer to find out. `free`
   * then skips its own range and alignment test, which the backend's validation repeats,
   * and makes it only for an address the backend refused, to throw `InvalidParam` for it
   * as for every backend. Absent or false: `release` only sees addresses that passed it.
   */
  readonly validatesAddresses?: boolean;
  /** @throws AllocError `NotAllocated` when `address` is not the start of a live block */
  usableSize(address: number): number;
  /**
   * The size asked for when the block was made, or -1 when the backend does not keep it;
   * lets `dealloc` check a layout exactly.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  requestedSize?(address: number): number;
  /**
   * The layouts a live block may be freed with; without it, `dealloc` accepts any size up to
   * the usable size (or exactly `requestedSize`) and any alignment the address satisfies.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  blockLayout?(address: number): BlockLayout;
  /**
   * Tries to resize the live block at `address` without moving it. Returns true when the
   * block now has at least `size` usable bytes; false leaves it untouched.
   */
  resizeInPlace?(address: number, size: number): boolean;
  /**
   * Optional, for core's thread cache (docs/thread-cache.md, "Refill runs"): makes up to
   * `count` live blocks of `size` bytes (a multiple of 8, at most `TC_MAX_REQUEST`; alignment
   * `MIN_ALIGN`) carved one after another, in address order, from one free region, and hands
   * each to `take` as soon as it is live, before carving the next. Returns how many it made,
   * 1 to `count`, or 0 when it makes no run: no region fits, or `count` blocks cannot keep the
   * promise below (too few to fill a line, say). The cache then falls back to `allocate`.
   * Called with the heap lock held.
   *
   * What a run promises, so that blocks which one thread's cache holds never share a cache
   * line with blocks another thread uses (the cost measured in docs/speed.md, "One heap
   * against a heap each"):
   * - the first block starts at a multiple of `RUN_LINE_BYTES`;
   * - the lines from that start to the end of the line holding the last block's last byte
   *   hold only the run's blocks and the backend's own metadata (headers, boundary tags):
   *   no free block and no other live block; a backend gives the last line's slack to the
   *   last block, or stops the run at a line boundary.
   *
   * Each block is an ordinary live block: `release`, `usableSize` (at least `size`),
   * `check` and `walk` treat it as they treat a block of `allocate`. A thread may die
   * between two `take`s or inside a carve: the blocks already taken are live, and `recover`
   * sees a heap that `allocate` calls could have left (the rest of the region free).
   */
  allocateRun?(size: number, count: number, take: (block: number) => void): number;
  totalBytes(): number;
  usedBytes(): number;
  /**
   * Walks the whole heap and verifies every invariant of the backend.
   * @throws AllocError `HeapCorrupted` naming the first violation found
   */
  check(): CheckReport;
  stats(): BackendStats;
  /**
   * Calls `visit` for every region the backend's structures describe, in address order,
   * without overlaps: live and free blocks, headers and padding, its metadata inside the
   * arena. Gaps between regions are reported by the facade as `untouched`. Lock-based
   * backends are called with the heap lock held; thread-safe ones read as `check()` does.
   * Bounded like `check()`: a damaged structure throws `HeapCorrupted`, never loops.
   * @throws AllocError `HeapCorrupted` naming the first inconsistency met
   */
  walk?(visit: (region: HeapRegion) => void): void;
  /** The backend's own statistics tables (see `StatsTable`); at least one. */
  classStats?(): StatsTable[];
  /**
   * Takes back what thread `threadId` owned (it detached, or died when `died`). Called with
   * no lock held. Lock-based backends own nothing per thread and may omit it. With `died`,
   * the thread may have died anywhere, including partway through its own `releaseThread`
   * (it was detaching): nothing it was changing can be trusted.
   */
  releaseThread?(threadId: number, died: boolean): void;
  /**
   * Makes the structures guarded by `cause.lock` consistent again after their holder died at
   * an unknown instruction: a locked backend rebuilds its free structures from what the arena
   * itself records (headers, boundary tags, bitmaps, maps) and recounts its counters. Called
   * by the thread that took the poisoned lock over, with it held; `check()` runs after it and
   * must pass before the lock is used again. Blocks that were live stay live and intact.
   * @throws AllocError `HeapCorrupted` when the arena's own records are broken too
   */
  recover?(cause: RepairCause): BackendRepair;
}

/** How a backend tolerates concurrent calls. */
export type BackendConcurrency =
  /** Not thread-safe: the facade serialises every call with the heap's shared mutex. */
  | 'locked'
  /** Safe to call from every thread at once; the facade takes no lock. */
  | 'thread-safe';

/**
 * One option of a backend, as `heaplab backends` lists it and as core checks it
 * (`normalizeOptionsBySpec`): a boolean, an integer in `[min, max]`, or one of `values`.
 *
 * `variant` marks an option that picks between algorithms (basic's fit strategy, mimalloc's
 * secure mode) rather than tuning one: a run that compares everything (`heaplab bench all`)
 * gives each of its other values a row of its own beside the default.
 */
export type BackendOptionSpec =
  | { readonly name: string; readonly description: string; readonly kind: 'boolean'; readonly default: boolean; readonly variant?: boolean }
  | {
      readonly name: string;
      readonly description: string;
      readonly kind: 'integer';
      readonly min: number;
      readonly max: number;
      readonly default: number;
    }
  | {
      readonly name: string;
      readonly description: string;
      readonly kind: 'enum';
      readonly values: readonly string[];
      readonly default: string;
      readonly variant?: boolean;
    };

/** What a heap's threads ask of it, for `BackendDescriptor.heapBytesNeeded`. */
export interface HeapDemand {
  /** Threads allocating at once. */
  readonly threads: number;
  /** The largest block one of them asks for, in bytes. */
  readonly largestBlock: number;
}

/**
 * What a backend package exports so core can create and attach it without importing it.
 * `moduleUrl` is stored in the superblock: a worker that attaches imports it and finds the
 * descriptor among its exports by `name`, unless the backend is registered there already or
 * the URL is an application (a bundle the backend was compiled into, or the main module),
 * which is never imported (docs/backend-modules.md, "Bundled apps").
 */
export interface BackendDescriptor<Options = Record<string, unknown>, Instance extends Backend = Backend> {
  /** Short lowercase name, as in `HEAPLAB_BACKEND` and `--backend`. */
  readonly name: string;
  /** One line for listings. */
  readonly summary: string;
  /** `import.meta.url` of a module exporting this descriptor. */
  readonly moduleUrl: string;
  readonly concurrency: BackendConcurrency;
  readonly options: readonly BackendOptionSpec[];
  /**
   * Names of the shared locks the backend uses (at most two; `context.locks` by name), in
   * the order they nest (the first is taken outside the second). Locked backends need none.
   */
  readonly locks?: readonly string[];
  /** Bytes of control-region state to reserve, at most `BACKEND_STATE_MAX_BYTES`. */
  readonly stateBytes: number;
  /**
   * The smallest arena in which `demand.threads` threads, each allocating blocks of up to
   * `demand.largestBlock` bytes, can work at all: a necessary size, not a sufficient one
   * (the live data needs room besides). Absent, the smallest heap (`HEAP_ALIGN`, 4 MiB)
   * serves any number of threads, as it does for a backend whose threads share one arena.
   * A backend whose threads own parts of the arena (mimalloc's segments) says what they own,
   * so that a caller can refuse a heap that would be found full at once (`heaplab bench`
   * does, see `minimumHeapBytes`).
   */
  heapBytesNeeded?(demand: HeapDemand): number;
  /**
   * Checks user options and fills in defaults; the result is stored as JSON. `defineBackend`
   * makes it from `options` (the specs).
   * @throws AllocError `InvalidParam` naming the bad option and the valid values
   */
  normalizeOptions(options: Record<string, unknown>): Options;
  /** Makes an instance for one thread over the shared state (formatted or not). */
  create(context: BackendContext, options: Options): Instance;
}

/**
 * A descriptor of any backend, whatever its options and instance types: the type for a list
 * of descriptors (`BackendDescriptor[]` names descriptors whose options are a plain record,
 * which an options interface is not).
 */
// biome-ignore lint/suspicious/noExplicitAny: descriptors of every options type
export type AnyBackendDescriptor = BackendDescriptor<any, any>;
