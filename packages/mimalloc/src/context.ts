/**
 * One thread's view of the shared mimalloc state: typed-array views, constants and cached
 * offsets, plus the thread's own JS-side hooks (the deferred-free callback, the test stall
 * hook). Nothing here is shared state: every thread builds its own context over the same
 * buffer, and all allocator state lives in the buffer (layout in `layout.ts`).
 */

import { type BackendContext, BitmapPageAllocator, type PoolView, type Qsbr, type SharedMutex, type ThreadSlots } from '@heaplab/core/backend';

import {
  HEAP_BYTES,
  HP_BIN_STATS,
  HP_DIRECT,
  HP_RF_STEP,
  MAX_SEGMENT_PAGES,
  SEGMENT_BYTES,
  SEGMENT_SHIFT,
  ST_EMPTY_PAGE,
  ST_HEAPS,
  ST_HELD_PAGES,
  ST_INTENT,
  ST_POOL,
  ST_SEGMENT_MAP,
} from './layout.js';

/**
 * The deferred-free callback (mimalloc's `mi_deferred_free_fun`): called from the allocation
 * slow path with `force = false` and from `collect` with `force = true`, with the heap's
 * heartbeat count, so a program can free memory it was holding back.
 */
export type DeferredFree = (force: boolean, heartbeat: number) => void;

/** The name of the segment lock among the descriptor's `locks` (and in `RepairCause.lock`). */
export const SEGMENT_LOCK = 'segments';

/** How long a complete delayed-free drain waits for a stalled producer before giving up. */
export const DRAIN_TIMEOUT_MS = 10_000;

/**
 * The named steps a test can stop a thread at (`MiContext.stepHook`): each is reached after
 * the store it names and before the next one. Hooks sit on slow paths only; a thread with a
 * hook takes the slow variants of malloc and free (`slowPaths`), which make the same stores.
 */
export type MiStep =
  // a remote free (remote.ts), in order: the first step named (pushing into a page with
  // room, claiming a full page's delayed free), then the marker, then the rest of that path;
  // a flush of the remote-free buffer takes the same steps without the marker, and a free
  // into the buffer reaches 'remote:buffered' (entered and counted), then 'remote:marked'
  | 'remote:pushing'
  | 'remote:claiming'
  | 'remote:marked'
  | 'remote:pushed'
  | 'remote:claimed'
  | 'remote:delaying'
  | 'remote:delayed'
  | 'remote:released'
  | 'remote:buffered'
  // the owner's local free on the slow path
  | 'local-free:marked'
  // collecting thread_free (page.ts)
  | 'collect:taken'
  | 'collect:spliced'
  // under the segment lock (segment.ts, mimalloc.ts)
  | 'segment:alloc:taken'
  | 'segment:alloc:formatted'
  | 'segment:alloc:mapped'
  | 'segment:release:disowned'
  | 'segment:release:unmapped'
  | 'segment:cache:tagged'
  | 'segment:abandon:disowned'
  | 'segment:reclaim:popped'
  | 'segment:add:pooled'
  // the owner's other slow paths
  | 'local-free:linked'
  | 'malloc:popped'
  | 'malloc:counted'
  | 'extend:linked'
  | 'queue:unlinked'
  | 'page:retired'
  | 'hold:emptied'
  | 'hold:linking'
  | 'slot:counted'
  | 'slot:cleared'
  | 'drain:taken'
  | 'reclaim:adopting'
  // the owner's abandon at detach (heap.ts, held-pages.ts, abandoned.ts), in order; it also
  // reaches drain:taken, collect:*, queue:unlinked, slot:cleared and the segment steps
  | 'abandon:never-delayed'
  | 'abandon:drained'
  | 'abandon:held-polled'
  | 'abandon:held-goal'
  | 'abandon:page-left'
  | 'abandon:page-disowned'
  | 'abandon:published'
  | 'abandon:segments-done';

/** The per-thread context every stage of the allocator works through. */
export class MiContext {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  /** This thread's id (1-based). */
  readonly threadId: number;
  readonly maxThreads: number;
  /** The heap's random cookie: mixed into segment magics and freed markers. */
  readonly cookie: number;
  readonly secure: boolean;
  /** Byte offset of the control state. */
  readonly state: number;
  /** Byte offset of this thread's heap record. */
  readonly heap: number;
  /** Word index of this thread's direct page table. */
  readonly direct: number;
  /**
   * Word index of this thread's per-bin counters (`HP_BIN_STATS`): entry `bin` starts at
   * `binStats + bin * (BIN_STAT_BYTES >>> 2)`.
   */
  readonly binStats: number;
  /** Word index of the segment map (indexed by `address >>> SEGMENT_SHIFT`). */
  readonly segmentMap: number;
  /** Byte offset of the held-page records (delayed page reuse). */
  readonly heldPages: number;
  /** Address of the empty page descriptor. */
  readonly emptyPage: number;
  readonly arenaStart: number;
  readonly arenaEnd: number;
  /**
   * The segment map indices of the arena's first segment and one past its last: walks of
   * every segment use these, not the whole map, since a 64 MiB heap has 16 of its 1024 words.
   */
  readonly mapIndexStart: number;
  readonly mapIndexEnd: number;
  /** Page slots the arena has at most: a bound on the length of any page queue or list. */
  readonly pageSlots: number;
  /** The segment pool: one bitmap bit per segment of the arena; use under `segmentLock`. */
  readonly pool: BitmapPageAllocator;
  /**
   * Guards the pool, the segment map and the abandoned list: never taken per block. It is
   * the descriptor's one lock, `segments` (`SEGMENT_LOCK`).
   */
  readonly segmentLock: SharedMutex;
  /** Core's pool table, read-only: the ranges `init` and `addMemory` gave the segment pool. */
  readonly pools: PoolView;
  /**
   * This thread's handle on the heap's QSBR domain (core's, given in the context) when the
   * heap holds emptied pages (`delayedPageReuse`), else null: the one test every held-page
   * path makes.
   */
  readonly qsbr: Qsbr | null;

  /** This thread's deferred-free callback, or null. */
  deferredFree: DeferredFree | null = null;
  /** True while the callback runs, so a free or malloc inside it does not call it again. */
  deferredRunning = false;
  /**
   * Holds this thread may still give a deferred goal before it advances the write sequence
   * again (`holdGoal` in `held-pages.ts`; owner-only, so a plain field): 0 makes the next
   * hold advance.
   */
  deferralsLeft = 0;
  /** True while a deferred goal this thread gave has not been followed by its own advance. */
  deferredPending = false;
  /** Page or huge-block takes left before this thread samples the peak (`notePageTake`). */
  takesUntilSample = 1;
  /** The registry's view of which threads are alive (a dead freer's record is resolved). */
  readonly threads: ThreadSlots;
  /** This thread's registry generation when it attached (`HP_GENERATION`). */
  readonly generation: number;
  /** Records bytes a repair could not account for (`stats().recovery.lostBytes`). */
  readonly reportLoss: (bytes: number, blocks: number) => void;
  /** Checked mode: per-operation invariant checks, fail-fast. */
  readonly checked: boolean;
  /**
   * The `stats` option (mimalloc's `MI_STAT`): allocations and frees are counted per bin in
   * this thread's `HP_BIN_STATS`, on the slow variants of malloc and free.
   */
  readonly countBins: boolean;
  /** Word index of the segment lock's intent record (`ST_INTENT`). */
  readonly intent: number;
  /** Word index of this thread's in-flight remote-free record (`HP_RF_STEP`). */
  readonly remoteRecord: number;
  /**
   * True when malloc and free must take their slow variants: secure mode, checked mode, the
   * `stats` option, or a test hook. The fast paths test this one field.
   */
  slowPaths: boolean;
  /**
   * The owner a page must have for free's plain local path: this thread's id, or -1 (which
   * no page has) while `slowPaths` is set, so the free fast path tests one field, not two.
   */
  localOwner: number;
  /** Test hook: called at each named step (`MiStep`) of the slow paths; null in use. */
  stepHook: ((step: MiStep) => void) | null = null;

  /**
   * @param ctx what core gave this thread's backend instance
   * @param secure whether the heap runs in secure mode
   * @param delayedPageReuse whether emptied pages are held until a QSBR goal is reached
   * @param countBins whether allocations and frees are counted per bin (`stats`)
   */
  constructor(ctx: BackendContext, secure: boolean, delayedPageReuse: boolean, countBins = false) {
    this.u8 = ctx.memory.u8;
    this.u32 = ctx.memory.u32;
    this.i32 = ctx.memory.i32;
    this.threadId = ctx.threadId;
    this.maxThreads = ctx.maxThreads;
    this.cookie = ctx.cookie;
    this.secure = secure;
    this.state = ctx.stateOffset;
    this.heap = heapOf(ctx.stateOffset, ctx.threadId);
    this.direct = (this.heap + HP_DIRECT) >>> 2;
    this.binStats = (this.heap + HP_BIN_STATS) >>> 2;
    this.segmentMap = (ctx.stateOffset + ST_SEGMENT_MAP) >>> 2;
    this.emptyPage = ctx.stateOffset + ST_EMPTY_PAGE;
    this.heldPages = ctx.stateOffset + ST_HELD_PAGES;
    this.arenaStart = ctx.arenaStart;
    this.arenaEnd = ctx.arenaEnd;
    this.mapIndexStart = Math.floor(ctx.arenaStart / SEGMENT_BYTES);
    this.mapIndexEnd = Math.ceil(ctx.arenaEnd / SEGMENT_BYTES);
    this.pageSlots = (this.mapIndexEnd - this.mapIndexStart) * MAX_SEGMENT_PAGES;
    this.pool = new BitmapPageAllocator(ctx.memory, ctx.stateOffset + ST_POOL, ctx.arenaStart, (ctx.arenaEnd - ctx.arenaStart) / SEGMENT_BYTES, SEGMENT_BYTES);
    this.segmentLock = ctx.locks[SEGMENT_LOCK]!;
    this.pools = ctx.pools;
    this.qsbr = delayedPageReuse ? ctx.qsbr : null;
    this.threads = ctx.threads;
    this.generation = ctx.threads.generation(ctx.threadId);
    this.reportLoss = ctx.reportLoss;
    this.checked = ctx.checked;
    this.remoteRecord = (this.heap + HP_RF_STEP) >>> 2;
    this.intent = (ctx.stateOffset + ST_INTENT) >>> 2;
    this.countBins = countBins;
    this.slowPaths = secure || ctx.checked || countBins;
    this.localOwner = this.slowPaths ? -1 : this.threadId;
  }

  /** Installs or removes the test hook; a hooked thread takes the slow paths. */
  setStepHook(hook: ((step: MiStep) => void) | null): void {
    this.stepHook = hook;
    this.slowPaths = this.secure || this.checked || this.countBins || hook !== null;
    this.localOwner = this.slowPaths ? -1 : this.threadId;
  }

  /** Byte offset of the heap record of thread `threadId`. */
  heapOf(threadId: number): number {
    return heapOf(this.state, threadId);
  }

  /** The segment map word of the segment holding `address`. */
  mapOf(address: number): number {
    return this.u32[this.segmentMap + (address >>> SEGMENT_SHIFT)]!;
  }
}

/** Byte offset of the heap record of thread `threadId` in the state at `state`. */
export function heapOf(state: number, threadId: number): number {
  return state + ST_HEAPS + (threadId - 1) * HEAP_BYTES;
}

/** Calls the test hook, if any, at step `name` (slow paths only). */
export function reachStep(t: MiContext, name: MiStep): void {
  const hook = t.stepHook;
  if (hook !== null) hook(name);
}
