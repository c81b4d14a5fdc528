/**
 * The allocator interfaces, after ArceOS's `allocator` crate (names in TypeScript casing),
 * and the contract a backend package implements to plug into `GlobalAllocator`.
 *
 * Addresses are byte offsets into the heap's `SharedArrayBuffer`; 0 is never a block.
 */

import type { Layout } from './layout.js';
import type { SharedMutex } from './mutex.js';

/** The part every allocator shares: it is given memory to manage. */
export interface BaseAllocator {
  /**
   * Takes `[start, start + size)` as the first memory to manage; formats the allocator.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small to use
   */
  init(start: number, size: number): void;
  /**
   * Adds `[start, start + size)` to the memory managed.
   * @throws AllocError `MemoryOverlap` when it overlaps memory already managed;
   *   `InvalidParam` for a range outside the arena or too small to use
   */
  addMemory(start: number, size: number): void;
}

/** An allocator of byte-granular blocks (ArceOS `ByteAllocator`). */
export interface ByteAllocator extends BaseAllocator {
  /**
   * Allocates a block for `layout`.
   * @throws AllocError `NoMemory` when nothing fits; `InvalidParam` for a bad layout
   */
  alloc(layout: Layout): number;
  /**
   * Frees a block, checking `layout` against what the allocator knows of the block.
   * @throws AllocError `NotAllocated` for an address that is not a live block; `InvalidParam`
   *   when `layout` does not match the block
   */
  dealloc(address: number, layout: Layout): void;
  /** Bytes managed: what could be handed out (headers included) when nothing is live. */
  totalBytes(): number;
  /** Bytes taken by live blocks, with their headers and padding. */
  usedBytes(): number;
  /** `totalBytes() - usedBytes()`. */
  availableBytes(): number;
}

/** An allocator of whole pages (ArceOS `PageAllocator`). */
export interface PageAllocator extends BaseAllocator {
  /** Bytes per page. */
  readonly pageSize: number;
  /**
   * Allocates `count` contiguous pages at an address that is a multiple of `alignBytes`.
   * @throws AllocError `InvalidParam` when `alignBytes` is not a power-of-two multiple of the
   *   page size or `count` is not a positive integer; `NoMemory` when no run fits
   */
  allocPages(count: number, alignBytes: number): number;
  /**
   * Frees `count` pages at `address`.
   * @throws AllocError `InvalidParam` for a range outside the managed memory or misaligned;
   *   `NotAllocated` when one of the pages is not allocated
   */
  deallocPages(address: number, count: number): void;
  /**
   * Allocates `count` pages exactly at `address`.
   * @throws AllocError `InvalidParam` for a bad address, count or alignment; `NoMemory` when
   *   one of those pages is taken
   */
  allocPagesAt(address: number, count: number, alignBytes: number): number;
  totalPages(): number;
  usedPages(): number;
  availablePages(): number;
}

/**
 * The C-style face that programs and the benchmarks use. `malloc`, `calloc`, `realloc` and
 * `alignedAlloc` return 0 when the heap has no room, as C does; every other failure throws.
 */
export interface CAllocator {
  /** @throws AllocError `InvalidParam` for a bad size */
  malloc(size: number): number;
  /** Zeroed memory for `count * size` bytes. @throws AllocError `InvalidParam` for bad counts or sizes */
  calloc(count: number, size: number): number;
  /**
   * Resizes a block, keeping its contents up to the smaller size; in place when the backend
   * can. `realloc(0, n)` is `malloc(n)`. On failure (0) the old block is untouched.
   * @throws AllocError `NotAllocated` / `InvalidParam` for a bad address or size
   */
  realloc(address: number, size: number, align?: number): number;
  /** @throws AllocError `InvalidParam` for a bad alignment or size */
  alignedAlloc(align: number, size: number): number;
  /** Frees a block; `free(0)` does nothing. @throws AllocError `NotAllocated` / `InvalidParam` */
  free(address: number): void;
  /** Bytes usable at `address` (at least what was asked for). @throws AllocError `NotAllocated` */
  usableSize(address: number): number;
}

/** What a backend knows of its own memory; the facade adds call counts. */
export interface BackendStats {
  /** Bytes managed (`totalBytes()`). */
  totalBytes: number;
  /** Bytes taken by live blocks, headers and padding included (`usedBytes()`). */
  usedBytes: number;
  /** Highest `usedBytes` seen since the heap was formatted (see `peakUsedSampled`). */
  peakUsedBytes: number;
  /**
   * False when the peak is kept at every call, so exact. True when the backend samples it
   * instead (mimalloc, whose fast paths keep no shared byte count): the peak is then a lower
   * bound, which misses at most what was handed out between two samples.
   */
  peakUsedSampled: boolean;
  /**
   * Sum of the sizes callers asked for, over live blocks; null when the backend does not
   * record requested sizes (size-class backends, whose blocks carry no header, need not:
   * a benchmark that knows its requests measures internal fragmentation from `usableSize`).
   */
  requestedBytes: number | null;
  /** Sum of the usable sizes handed out, over live blocks. */
  grantedBytes: number;
  /** Bytes of live-block headers, pool sentinels and other bookkeeping inside the arena. */
  metadataBytes: number;
  /** The largest size one `malloc` could get right now. */
  largestFreeBlock: number;
  /** Number of live blocks. */
  liveBlocks: number;
  /** Number of free blocks or runs (fragmentation: many small ones is bad). */
  freeBlocks: number;
}

/** What `check()` found when every invariant held. */
export interface CheckReport {
  /** Blocks walked, live and free. */
  blocks: number;
  liveBlocks: number;
  freeBlocks: number;
  usedBytes: number;
  freeBytes: number;
  /** Pools walked. */
  pools: number;
}

/**
 * The views over one heap's buffer that every part of heaplab reads through. They are made
 * once per attached thread and shared by all its components.
 */
export interface HeapMemory {
  readonly buffer: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
}

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
   * Two shared locks reserved for the backend's own use off its fast path (a thread-safe
   * backend's segment pool, say), bound to this thread's id. Lock-based backends are
   * already called under the heap lock and need neither.
   */
  readonly locks: { readonly backend0: SharedMutex; readonly backend1: SharedMutex };
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

/** The lock whose dead holder left the structures a repair must mend. */
export type RepairedLock = 'heap' | 'backend0' | 'backend1';

/** Why a backend is asked to repair itself. */
export interface RepairCause {
  /**
   * `heap` for a locked backend (the heap lock serialises all of it); `backend0` or
   * `backend1` for a thread-safe backend's own lock.
   */
  readonly lock: RepairedLock;
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
  totalBytes(): number;
  usedBytes(): number;
  availableBytes(): number;
  /**
   * Walks the whole heap and verifies every invariant of the backend.
   * @throws AllocError `HeapCorrupted` naming the first violation found
   */
  check(): CheckReport;
  stats(): BackendStats;
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

/** One option of a backend, as `heaplab backends` lists it. */
export interface BackendOptionSpec {
  readonly name: string;
  readonly description: string;
  /** Allowed values when the option is an enumeration. */
  readonly values?: readonly string[];
  readonly default: string | number | boolean;
}

/**
 * What a backend package exports so core can create and attach it without importing it.
 * `moduleUrl` is stored in the superblock: a worker that attaches imports it and finds the
 * descriptor among its exports by `name`.
 */
export interface BackendDescriptor<Options = Record<string, unknown>> {
  /** Short lowercase name, as in `HEAPLAB_BACKEND` and `--backend`. */
  readonly name: string;
  /** One line for listings. */
  readonly summary: string;
  /** `import.meta.url` of a module exporting this descriptor. */
  readonly moduleUrl: string;
  readonly concurrency: BackendConcurrency;
  readonly options: readonly BackendOptionSpec[];
  /** Bytes of control-region state to reserve, at most `BACKEND_STATE_MAX_BYTES`. */
  readonly stateBytes: number;
  /**
   * Checks user options and fills in defaults; the result is stored as JSON.
   * @throws AllocError `InvalidParam` naming the bad option and the valid values
   */
  normalizeOptions(options: Record<string, unknown>): Options;
  /** Makes an instance for one thread over the shared state (formatted or not). */
  create(context: BackendContext, options: Options): Backend;
}
