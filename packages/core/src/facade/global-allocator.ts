/**
 * `GlobalAllocator`: the handle a program holds on a shared heap. It checks every argument
 * once for all backends, counts calls per thread, puts lock-based backends behind the heap's
 * shared mutex, and gives the ArceOS face (`alloc`, `dealloc`, ...) and the C face
 * (`malloc`, `free`, ...) over whichever backend the heap was formatted with.
 *
 * One handle belongs to one thread. Another worker gets its own with `attach(buffer)`.
 */

import type { Worker } from 'node:worker_threads';

import { environmentVariable, platformThreadId } from '#platform';

import { basicBackend } from '../basic/index.js';
import { findBackend, isBackendDescriptor, isBundledWithCore, loadBackend, parseBackendSpec, registerBackend } from './backend-registry.js';
import { AllocError, describeValue, hex } from '../errors.js';
import {
  alreadyWaiting,
  DEFAULT_HELD_LIMIT_BYTES,
  DELAYED_PENDING_WORD,
  type DelayedFreeStats,
  DelayedFrees,
  formatDelayedFrees,
} from '../qsbr/delayed-free.js';
import { ARENA_LOCKS, Counter, COUNTER_COUNT, HeapFlag, LOCK_COUNT, LOCK_NAMES, LOCK_RANK, LockIndex, POISON_BYTE, SlotState } from '../memory/heap-layout.js';
import { LockOrder } from '../memory/lock-order.js';
import type { BackendStats, ByteAllocator, CAllocator, CheckReport, HeapMemory, HeapRegion, StatsTable } from '../interfaces.js';
import { tileArena } from './heap-walk.js';
import type { AnyBackendDescriptor, Backend, BackendDescriptor, BackendRepair } from '../backend/contract.js';
import { StateCounters } from '../backend/counters.js';
import { PoolView } from '../backend/pools.js';
import { arenaCountOf } from '../backend/options.js';
import { checkAlign, checkSize, type Layout, MIN_ALIGN, PAGE_SIZE } from '../sizes.js';
import { layoutOfBlock, LockedBackend } from './locked-backend.js';
import { type Arena, Arenas } from './arenas.js';
import { CachedBackend } from '../tcache/cached-backend.js';
import { ThreadCache, type ThreadCacheFigures } from '../tcache/thread-cache.js';
import { formatQsbr, Qsbr } from '../qsbr/qsbr.js';
import type { SharedMutex } from '../memory/mutex.js';
import { emptyReport, type RecoveryFigures, RecoveryRecord, type RecoveryReport } from '../memory/recovery.js';
import { DEFAULT_HEAP_BYTES, DEFAULT_LOCK_TIMEOUT_MS, DEFAULT_MAX_THREADS, SharedHeap } from '../memory/shared-heap.js';
import { counterIndex, type SlotTicket, ThreadRegistry } from '../memory/thread-registry.js';
import { requireSharedMemory } from '../platform/shared-memory.js';
import type { TraceRecorder } from '../trace/trace-recorder.js';

/** How to make a new heap. Every field has a default. */
export interface HeapConfig {
  /**
   * The backend: a registered name, a spec such as `basic:strategy=best-fit`, or a
   * descriptor. Default: the `HEAPLAB_BACKEND` environment variable, else `basic`.
   */
  backend?: string | AnyBackendDescriptor;
  /** Backend options; merged over those of a spec string. */
  options?: Record<string, unknown>;
  /** Arena bytes: a multiple of 4 MiB. Default 512 MiB. */
  heapBytes?: number;
  /**
   * Bytes at the start of the arena handed to the backend's `init`; the rest can be given
   * later with `addMemory`. Default: the whole arena.
   */
  initBytes?: number;
  /** Thread slots (1 to 256). Default 64. */
  maxThreads?: number;
  /** Bound on any lock wait before `LockTimeout`. Default 10 000 ms. */
  lockTimeoutMs?: number;
  /**
   * Fill every block with 0xdd when it is really freed (by `free`, or when a delayed free
   * completes), so a use after free reads poison. A debugging aid; it costs a fill per free.
   */
  poisonFreed?: boolean;
  /**
   * Bytes one thread's delayed frees may hold back before the write sequence is advanced and
   * processing becomes due. Default 1 MiB.
   */
  delayedFreeLimitBytes?: number;
  /**
   * Checked mode: every backend verifies the invariants each operation touches and raises
   * `HeapCorrupted` at the first broken one (fail-fast, for debugging a program or a
   * backend). Default: the `HEAPLAB_CHECKED` environment variable is `1`, else off.
   */
  checked?: boolean;
  /**
   * Record every allocator call of the creating thread's handle into this recorder's log
   * (docs/traces.md). Without it the handle runs no recording code at all.
   */
  trace?: TraceRecorder;
}

/** Options of `attach`. */
export interface AttachOptions {
  /** Descriptors to use before looking in the registry or importing the stored module URL. */
  backends?: readonly AnyBackendDescriptor[];
  /**
   * Module URLs `attach` may import when the heap names one (a backend from outside
   * heaplab). heaplab's own backend packages need not be listed; any other module named by
   * the heap is refused, since whoever can write the buffer could name any code.
   */
  trustModules?: readonly string[];
  /**
   * Record this handle's allocator calls into a recorder's log; a worker passes
   * `TraceRecorder.over(buffer)` with the creator's `recorder.buffer`, so all threads append
   * to one recording.
   */
  trace?: TraceRecorder;
}

/** What reaping a dead thread did: the slots released and the recovery it needed. */
export interface ReapReport extends RecoveryReport {
  /** Heap thread ids released. */
  threads: number[];
}

/** The lock records a backend's named locks take, in the order of `descriptor.locks`. */
const BACKEND_LOCK_INDICES = [LockIndex.backend0, LockIndex.backend1];

/**
 * Every lock's name: core's, with the backend's own locks named as its descriptor names them.
 * @throws AllocError `InvalidParam` for more than two names, a duplicate, or a core name
 */
function lockNames(descriptor: AnyBackendDescriptor): string[] {
  const names = [...LOCK_NAMES];
  const own = descriptor.locks ?? [];
  if (own.length > BACKEND_LOCK_INDICES.length) {
    throw new AllocError('InvalidParam', `backend '${descriptor.name}' names ${own.length} locks; a backend may have ${BACKEND_LOCK_INDICES.length}`);
  }
  own.forEach((name, at) => {
    if (typeof name !== 'string' || !/^[a-z][a-z0-9-]{0,31}$/.test(name) || names.includes(name)) {
      throw new AllocError('InvalidParam', `backend '${descriptor.name}' lock name ${JSON.stringify(name)} is not a new lowercase name`);
    }
    names[BACKEND_LOCK_INDICES[at]!] = name;
  });
  return names;
}

/**
 * The order in which recovery visits poisoned locks: a lock before those that nest outside
 * it, so the reverse of `LOCK_RANK`'s (docs/lock-order.md).
 */
const RECOVERY_ORDER = [
  LockIndex.recovery,
  LockIndex.arena2,
  LockIndex.arena1,
  LockIndex.heap,
  LockIndex.backend1,
  LockIndex.backend0,
  LockIndex.pools,
  LockIndex.qsbrOrphans,
];

/** Why `address` is no block address of an arena `[arenaStart, arenaEnd)`. */
function badAddress(address: number, arenaStart: number, arenaEnd: number): AllocError {
  if (typeof address !== 'number' || !Number.isSafeInteger(address)) {
    return new AllocError('InvalidParam', `address ${describeValue(address)} is not an integer`);
  }
  if (address < arenaStart || address >= arenaEnd) {
    return new AllocError('InvalidParam', `address ${hex(address)} is outside the heap's arena ${hex(arenaStart)}..${hex(arenaEnd)}`);
  }
  return new AllocError('InvalidParam', `address ${hex(address)} is not 8-byte aligned, so it is no block`);
}

/** How the recorded failure of lock `lock`'s repair begins, so that its error can find it. */
function repairFailurePrefix(lock: string): string {
  return `repairing lock '${lock}'`;
}

/** How often `watchWorker`'s reap looks again at a lock another thread holds (`reapWatched`). */
const REAP_RETRY_MS = 2;
/** Above any acquisition count (a uint32) plus one: a holder's id times this, plus the count, names both. */
const HOLDER_SNAPSHOT_SCALE = 2 ** 33;

/** `malloc`/`free` calls a handle counts before adding them to the shared counters. */
export const CALL_PUBLISH_INTERVAL = 4096;

/** The calls until the publish after one of `batch` calls: batches of 1, 8, 64, 512, then `CALL_PUBLISH_INTERVAL` each. */
function nextPublishBatch(batch: number): number {
  return Math.min(CALL_PUBLISH_INTERVAL, batch * 8);
}

/** Everything `stats()` reports: the backend's figures plus per-heap call counts. */
export interface HeapStats extends BackendStats {
  backend: string;
  /** Bytes of the arena (the heap size). */
  heapBytes: number;
  /** `totalBytes - usedBytes`. */
  availableBytes: number;
  /** `grantedBytes - requestedBytes`: bytes handed out beyond what was asked; null when unknown. */
  internalFragmentationBytes: number | null;
  /**
   * Calls over all threads. Each thread adds its `malloc` and `free` calls every
   * `CALL_PUBLISH_INTERVAL` calls (sooner over its first 585) and at detach, so a live
   * thread's latest calls may be missing here (this thread's never are).
   */
  calls: {
    malloc: number;
    free: number;
    calloc: number;
    realloc: number;
    alignedAlloc: number;
    /** Requests that got 0 / `NoMemory`. */
    failed: number;
    freeDelayed: number;
  };
  /** This thread's delayed frees, and those left by departed threads. */
  delayedFree: DelayedFreeStats & { orphanHeldBytes: number; writeSequence: number };
  /** Threads attached right now. */
  threads: number;
  /** What recovery after threads' deaths could not give back (`lostBytes`), and its record. */
  recovery: RecoveryFigures;
  /** Acquisitions of the heap lock, or of every arena's, that had to wait (lock-based backends). */
  contendedLockAcquisitions: number;
  /** Every lock's acquisitions and how many of them found it held, since the heap was made. */
  locks: LockFigures[];
  /**
   * What the thread caches in front of a locked backend hold and did (null when the heap
   * has none: `tcache=false`, a thread-safe backend, `poisonFreed` or checked mode). This thread's cache
   * was given back before the figures were read, so `blocks` counts other threads' caches.
   */
  threadCache: ThreadCacheFigures | null;
}

/** One lock's figures in `HeapStats.locks`. */
export interface LockFigures {
  name: string;
  /** Times it was taken (a 32-bit count: it wraps after 4 Gi). */
  acquired: number;
  /** Times a taker found it held and spun for it (some of them then parked). */
  spun: number;
  /** Times a taker had to park (`Atomics.wait`) for it. */
  contended: number;
}

/**
 * A thread's handle on a shared heap.
 */
export class GlobalAllocator implements ByteAllocator, CAllocator {
  /** The heap's buffer: send it to a worker and `attach` there. */
  readonly buffer: SharedArrayBuffer;
  /** Views over the whole buffer; addresses index `u8` directly. */
  readonly memory: HeapMemory;
  /** The name of the heap's backend. */
  readonly backendName: string;
  /** This handle's thread id in the heap's registry (1-based). */
  readonly threadId: number;
  /** First byte of the arena (4 MiB aligned). */
  readonly arenaStart: number;
  /** One past the last byte of the arena. */
  readonly arenaEnd: number;

  private backend: Backend;
  /** This thread's home arena's instance: the backend's only one unless it runs several arenas. */
  private readonly instance: Backend;
  /** Every instance of the backend with its heap lock, one per arena (one for a thread-safe backend). */
  private readonly arenas: Arenas;
  /** This thread's cache in front of a locked backend, when the heap has one. */
  private readonly threadCache: ThreadCache | null;
  private readonly heap: SharedHeap;
  private readonly registry: ThreadRegistry;
  private readonly descriptor: AnyBackendDescriptor;
  /** The slot word this handle's claim wrote: every later change of the slot starts from it. */
  private readonly ticket: number;
  private detached = false;
  private readonly u32: Uint32Array;
  /** This thread's handle on each lock record, by `LockIndex`. */
  private readonly mutexes: SharedMutex[];
  private readonly poolsMutex: SharedMutex;
  private readonly recoveryRecord: RecoveryRecord;
  /**
   * Where this thread's call counters live: its registry slot in shared memory, and after
   * `detach()` a private array, so a call through a detached handle (which throws) can
   * never count into a slot that another thread may own by then.
   */
  private f64: Float64Array;
  private counters: number;
  private readonly qsbr: Qsbr;
  private readonly delayed: DelayedFrees;
  private readonly poisonFreed: boolean;
  /**
   * `free` may hand an integer address straight to `backend.release` (see `free`): the backend
   * validates any address itself and freed blocks are not poisoned. Decided once, here and at
   * `detach`, rather than tested at every free.
   */
  private releaseValidates: boolean;
  /** Set when delayed frees should be processed at the next safe point (an allocation). */
  private delayedDue = false;
  /**
   * `malloc` and `free` calls not yet added to this thread's counters in the registry.
   * Counting each call in shared memory (a float64 read-modify-write) cost about 7 ns per
   * malloc/free pair, a seventh of a bench-malloc-thread iteration with mimalloc, so they are
   * counted here and published every `CALL_PUBLISH_INTERVAL` calls, by `stats()` and at
   * `detach()`. Another thread's `stats()` may therefore miss up to that many recent calls of
   * a live thread.
   *
   * Each is a countdown to its next publish (`…ToPublish`) and the value it started from
   * since the last publish (`…Batch`): the calls made are their difference. The first
   * publishes come early, after batches of 1, 8, 64 and 512 calls (`nextPublishBatch`), so
   * that V8 has seen the publishing branch run before it optimizes `malloc` and `free` (it
   * records what a function does only from its first few calls on): a branch never seen
   * taken is compiled as a deoptimization, and the 4096th call then threw the benchmark loop
   * out of its optimized code, which came back slower (seen with --trace-deopt on
   * bench-malloc-thread).
   */
  private mallocsToPublish = 1;
  private mallocBatch = 1;
  private freesToPublish = 1;
  private freeBatch = 1;

  private constructor(heap: SharedHeap, descriptor: AnyBackendDescriptor, slot: SlotTicket) {
    const threadId = slot.threadId;
    this.heap = heap;
    this.descriptor = descriptor;
    this.buffer = heap.buffer;
    this.memory = heap.memory;
    this.u32 = heap.memory.u32;
    this.backendName = descriptor.name;
    this.threadId = threadId;
    this.ticket = slot.ticket;
    this.arenaStart = heap.arenaStart;
    this.arenaEnd = heap.arenaEnd;
    const registry = new ThreadRegistry(heap.memory, heap.maxThreads);
    this.registry = registry;
    const describe = (id: number): string => registry.describe(id);
    const explainPoison = (dead: number, lock: string): string => this.explainPoison(dead, lock);
    const names = lockNames(descriptor);
    this.mutexes = Array.from({ length: LOCK_COUNT }, (_, index) => heap.mutex(index, threadId, describe, explainPoison, names[index]));
    const checked = (heap.heapFlags & HeapFlag.checked) !== 0;
    if (checked) {
      const order = new LockOrder();
      this.mutexes.forEach((mutex, index) => {
        mutex.trackOrder(order, LOCK_RANK[index]!);
      });
    }
    this.poolsMutex = this.mutexes[LockIndex.pools]!;
    const record = new RecoveryRecord(heap.memory, this.mutexes[LockIndex.recovery]!);
    this.recoveryRecord = record;
    this.f64 = heap.memory.f64;
    this.counters = counterIndex(threadId);
    const options = descriptor.normalizeOptions(heap.backendOptions());
    this.qsbr = new Qsbr(heap.memory, threadId, heap.maxThreads);
    const locks: Record<string, SharedMutex> = {};
    (descriptor.locks ?? []).forEach((name, at) => {
      locks[name] = this.mutexes[BACKEND_LOCK_INDICES[at]!]!;
    });
    // One instance per arena (arenas.ts), each over its own slice, state, counters and pools.
    const arenaList: Arena[] = [];
    for (let index = 0; index < heap.arenaCount; index++) {
      const { start, end } = heap.arenaSlice(index);
      const inner = descriptor.create(
        {
          memory: heap.memory,
          stateOffset: heap.backendStateOffset(index),
          stateBytes: heap.backendStateBytes,
          arenaStart: start,
          arenaEnd: end,
          threadId,
          cookie: heap.cookie,
          maxThreads: heap.maxThreads,
          locks,
          counters: new StateCounters(heap.memory, index),
          pools: new PoolView(heap.memory, index),
          qsbr: this.qsbr,
          checked,
          threads: registry,
          reportLoss: (bytes, blocks) => record.addLoss(bytes, blocks),
        },
        options,
      );
      arenaList.push({ index, inner, mutex: this.mutexes[ARENA_LOCKS[index]!]!, start, end });
    }
    const arenas = new Arenas(arenaList, threadId);
    this.arenas = arenas;
    const inner = arenas.home.inner;
    this.instance = inner;
    this.poisonFreed = (heap.heapFlags & HeapFlag.poisonFreed) !== 0;
    // Poisoning and checked mode are there to catch misuse at the operation that commits it,
    // which a cache would hide or defer (a free it keeps never reaches the backend's checks):
    // no cache with either.
    const cached = descriptor.concurrency === 'locked' && (options as Record<string, unknown>)['tcache'] === true && !this.poisonFreed && !checked;
    this.threadCache = cached ? new ThreadCache(heap.memory, threadId, heap.cookie, heap.arenaStart, heap.arenaEnd, arenas) : null;
    this.backend =
      descriptor.concurrency !== 'locked'
        ? inner
        : this.threadCache !== null
          ? new CachedBackend(arenas, this.threadCache, registry)
          : new LockedBackend(arenas);
    this.releaseValidates = this.backend.validatesAddresses === true && !this.poisonFreed;
    this.delayed = new DelayedFrees(
      heap.memory,
      this.qsbr,
      this.backend,
      this.mutexes[LockIndex.qsbrOrphans]!,
      (address) => this.releaseBlock(address),
      heap.maxThreads,
    );
    this.qsbr.online();
  }

  /**
   * Makes a new heap and returns the calling thread's handle on it.
   * @throws AllocError `UnknownBackend` for a backend that is not registered (the message
   *   lists the valid names); `InvalidParam` for bad sizes, options or limits;
   *   `Unsupported` without shared memory (a page that is not cross-origin isolated)
   */
  static create(config: HeapConfig = {}): GlobalAllocator {
    requireSharedMemory();
    checkRecorder(config.trace);
    const { descriptor, options } = resolveBackend(config);
    const heapBytes = config.heapBytes ?? DEFAULT_HEAP_BYTES;
    const arenaCount = arenaCountOf(descriptor, options);
    const heap = SharedHeap.format({
      arenaCount,
      heapBytes,
      maxThreads: config.maxThreads ?? DEFAULT_MAX_THREADS,
      lockTimeoutMs: config.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS,
      backendName: descriptor.name,
      backendModuleUrl: descriptor.moduleUrl,
      backendOptionsJson: JSON.stringify(options),
      backendStateBytes: descriptor.stateBytes,
      heapFlags:
        (config.poisonFreed === true ? HeapFlag.poisonFreed : 0) |
        ((config.checked ?? environmentVariable('HEAPLAB_CHECKED') === '1') ? HeapFlag.checked : 0) |
        (isBundledWithCore(descriptor) ? HeapFlag.bundledBackend : 0),
    });
    formatQsbr(heap.memory);
    const limit = config.delayedFreeLimitBytes ?? DEFAULT_HELD_LIMIT_BYTES;
    if (!Number.isInteger(limit) || limit < 1 || limit > 0xffff_ffff) {
      throw new AllocError('InvalidParam', `delayedFreeLimitBytes ${String(limit)} is not a positive 32-bit integer`);
    }
    formatDelayedFrees(heap.memory, limit);
    const initBytes = config.initBytes ?? heap.arenaBytes;
    if (heap.arenaCount > 1 && initBytes !== heap.arenaBytes) {
      throw new AllocError(
        'InvalidParam',
        `a heap of ${heap.arenaCount} arenas manages its whole arena from the start: initBytes must be heapBytes (${heap.arenaBytes}), not ${initBytes}`,
      );
    }
    // One pool per arena: the first `initBytes` of a heap of one arena, each slice whole of several.
    const poolBytes = (slice: { start: number; end: number }): number => (heap.arenaCount === 1 ? initBytes : slice.end - slice.start);
    heap.checkNewPool(heap.arenaStart, poolBytes(heap.arenaSlice(0)));
    const registry = new ThreadRegistry(heap.memory, heap.maxThreads);
    const handle = new GlobalAllocator(heap, descriptor, registry.claim(platformThreadId));
    for (const arena of handle.arenas.list) {
      const size = poolBytes(arena);
      if (arena.index > 0) heap.checkNewPool(arena.start, size, arena.index);
      handle.formatPool(arena.start, size, (backend) => backend.init(arena.start, size), arena);
    }
    heap.publish();
    config.trace?.install(handle);
    return handle;
  }

  /**
   * Attaches the calling thread to a heap made elsewhere (typically in another worker).
   * Finds the backend among `options.backends`, the registry, or by importing the module
   * URL stored in the heap. That URL is never imported when it is an application rather
   * than a backend module: in a bundled app (`HeapFlag.bundledBackend`), the worker's own
   * file, or the process's main module; the worker must then import the backend package or
   * pass its descriptor, and attach fails at once saying so.
   * @throws AllocError `InvalidHeap` for a buffer that is not a heaplab heap;
   *   `UnknownBackend` when the backend cannot be found; `ThreadLimit` when the registry is full;
   *   `Unsupported` without shared memory (a page that is not cross-origin isolated)
   */
  static async attach(buffer: SharedArrayBuffer, options: AttachOptions = {}): Promise<GlobalAllocator> {
    requireSharedMemory();
    const heap = SharedHeap.open(buffer);
    const name = heap.backendName;
    const descriptor =
      options.backends?.find((candidate) => candidate.name === name) ??
      (await loadBackend(name, heap.backendModuleUrl, options.trustModules, { bundled: (heap.heapFlags & HeapFlag.bundledBackend) !== 0 }));
    return GlobalAllocator.attachTo(heap, descriptor, options.trace);
  }

  /**
   * `attach` without importing: the backend must be registered in this thread or given.
   * @throws AllocError as `attach`
   */
  static attachSync(buffer: SharedArrayBuffer, options: AttachOptions = {}): GlobalAllocator {
    requireSharedMemory();
    const heap = SharedHeap.open(buffer);
    const name = heap.backendName;
    const descriptor = options.backends?.find((candidate) => candidate.name === name) ?? findBackend(name);
    return GlobalAllocator.attachTo(heap, descriptor, options.trace);
  }

  /** @throws AllocError `InvalidHeap` when the heap's backend fields do not suit `descriptor` */
  private static attachTo(heap: SharedHeap, descriptor: AnyBackendDescriptor, trace: TraceRecorder | undefined): GlobalAllocator {
    checkRecorder(trace);
    if (heap.backendStateBytes < descriptor.stateBytes) {
      throw new AllocError(
        'InvalidHeap',
        `heap superblock field backendStateBytes is ${heap.backendStateBytes}; backend '${descriptor.name}' needs ${descriptor.stateBytes}`,
      );
    }
    let options: unknown;
    try {
      options = descriptor.normalizeOptions(heap.backendOptions());
    } catch (error) {
      if (!(error instanceof AllocError) || error.kind !== 'InvalidParam') throw error;
      throw new AllocError('InvalidHeap', `heap superblock field backendOptions is not valid for '${descriptor.name}': ${error.message}`);
    }
    // Every arena's state lies one stride from the last, so the stride must be the one the
    // heap was made with, and the arena count the one its options chose.
    const arenaCount = arenaCountOf(descriptor, options);
    if (heap.arenaCount !== arenaCount) {
      throw new AllocError('InvalidHeap', `heap superblock field arenaCount is ${heap.arenaCount}; the heap's backend options make ${arenaCount} arenas`);
    }
    if (arenaCount > 1 && heap.backendStateBytes !== descriptor.stateBytes) {
      throw new AllocError(
        'InvalidHeap',
        `heap superblock field backendStateBytes is ${heap.backendStateBytes}; backend '${descriptor.name}' with ${arenaCount} arenas needs exactly ${descriptor.stateBytes}`,
      );
    }
    const registry = new ThreadRegistry(heap.memory, heap.maxThreads);
    const handle = new GlobalAllocator(heap, descriptor, registry.claim(platformThreadId));
    trace?.install(handle);
    return handle;
  }

  // --- the C face ------------------------------------------------------------------------

  /**
   * Allocates `size` bytes aligned to 8. Returns 0 when the heap has no room.
   * @throws AllocError `InvalidParam` for a size that is not a non-negative safe integer
   */
  malloc(size: number): number {
    checkSize(size);
    if (--this.mallocsToPublish === 0) this.publishMallocs();
    return this.allocate(size, MIN_ALIGN);
  }

  /**
   * Allocates zeroed memory for `count` elements of `size` bytes. Returns 0 when the heap
   * has no room.
   * @throws AllocError `InvalidParam` for bad numbers or a product beyond safe integers
   */
  calloc(count: number, size: number): number {
    checkSize(count);
    checkSize(size);
    const bytes = count * size;
    if (!Number.isSafeInteger(bytes)) {
      // The product as a BigInt: the double `bytes` is rounded above 2^53.
      throw new AllocError('InvalidParam', `calloc(${count}, ${size}) overflows: ${BigInt(count) * BigInt(size)} bytes`);
    }
    this.f64[this.counters + Counter.calloc]!++;
    const address = this.allocate(bytes, MIN_ALIGN);
    if (address !== 0) this.memory.u8.fill(0, address, address + bytes);
    return address;
  }

  /**
   * Allocates `size` bytes at a multiple of `align`. Returns 0 when the heap has no room.
   * @throws AllocError `InvalidParam` for a bad alignment or size
   */
  alignedAlloc(align: number, size: number): number {
    checkAlign(align);
    checkSize(size);
    this.f64[this.counters + Counter.alignedAlloc]!++;
    return this.allocate(size, Math.max(align, MIN_ALIGN));
  }

  /** Same as `alignedAlloc(align, size)`, with C's `memalign` name. @throws AllocError as `alignedAlloc` */
  memalign(align: number, size: number): number {
    return this.alignedAlloc(align, size);
  }

  /**
   * Resizes a block; its contents up to the smaller size are kept. In place when the backend
   * can, else moved to a block aligned to `align` (8 by default, as C's `realloc`; pass the
   * block's own alignment to keep it, as Rust's `realloc(ptr, layout, size)` does).
   * `realloc(0, n)` is `alignedAlloc(align, n)`; `realloc(p, 0)` shrinks `p` to a minimum
   * block (it is not freed). Returns 0 when the heap has no room; the old block is then
   * untouched and still live.
   * @throws AllocError `InvalidParam` / `NotAllocated` for a bad address; `InvalidParam` for a
   *   bad size or alignment
   */
  realloc(address: number, size: number, align: number = MIN_ALIGN): number {
    if (align !== MIN_ALIGN) checkAlign(align);
    if (address === 0) return align === MIN_ALIGN ? this.malloc(size) : this.alignedAlloc(align, size);
    checkSize(size);
    this.checkAddress(address);
    this.refuseWaiting(address);
    this.f64[this.counters + Counter.realloc]!++;
    const backend = this.backend;
    // resizeInPlace validates the address itself, so the common in-place case checks it once.
    if (address % align === 0 && backend.resizeInPlace !== undefined && backend.resizeInPlace(address, size)) {
      return address;
    }
    const oldUsable = backend.usableSize(address);
    const moved = this.allocate(size, Math.max(align, MIN_ALIGN));
    if (moved === 0) return 0;
    this.memory.u8.copyWithin(moved, address, address + Math.min(oldUsable, size));
    backend.release(address);
    return moved;
  }

  /**
   * Frees a block. `free(0)` does nothing, as `free(NULL)`.
   *
   * For a backend that validates any address itself (`Backend.validatesAddresses`), an
   * integer address goes straight to its `release` while no block waits for a delayed free
   * and freed blocks are not poisoned: the range and alignment test, which the backend's
   * own validation repeats, is made only when the backend refuses the address
   * (`refusedFree`), so the errors are the same as for every other backend. Anything else
   * takes `freeChecked`, which tests first.
   * @throws AllocError `InvalidParam` for an address outside the heap or misaligned;
   *   `NotAllocated` for one that is not a live block (double free, interior, never allocated)
   */
  free(address: number): void {
    // The type test comes first: `>>>` would throw a TypeError for a BigInt or a Symbol.
    // The pending word is one load while no block waits for a delayed free in the heap.
    // The flags are compared with `true`: V8 does not track that a field holds a boolean, and
    // a bare truth test of one compiles to its generic form (about ten instructions).
    if (typeof address === 'number' && address >>> 0 === address && address !== 0 && this.releaseValidates === true && this.u32[DELAYED_PENDING_WORD] === 0) {
      try {
        this.backend.release(address);
      } catch (error) {
        throw this.refusedFree(address, error);
      }
      // Counted after the release, so refused frees (double, interior) do not count as calls.
      if (--this.freesToPublish === 0) this.publishFrees();
      return;
    }
    this.freeChecked(address);
  }

  /** `free` with the facade's own address test first: every backend's path, and the rare cases. */
  private freeChecked(address: number): void {
    if (address === 0) return;
    this.checkAddress(address);
    if (this.u32[DELAYED_PENDING_WORD] !== 0) this.refuseWaiting(address);
    this.releaseBlock(address);
    if (--this.freesToPublish === 0) this.publishFrees();
  }

  /**
   * What a free that a validating backend refused throws: `InvalidParam` for an address
   * outside the arena or misaligned, as `checkAddress` would have thrown before the call,
   * else the backend's own error (`NotAllocated`, or `HeapCorrupted`).
   */
  private refusedFree(address: number, error: unknown): unknown {
    if (address < this.arenaStart || address >= this.arenaEnd || (address & 7) !== 0) return badAddress(address, this.arenaStart, this.arenaEnd);
    return error;
  }

  // --- safe memory reclamation (QSBR) ----------------------------------------------------

  /**
   * Frees a block once no thread can still be reading it: the block stays intact until every
   * thread attached to the heap has passed a quiescent point (`quiescent()`) after this call,
   * and is then freed at one of this thread's safe points (its next allocation once the work
   * is due, or `processDelayed()`). For structures that readers traverse without locks.
   * @throws AllocError as `free` for a bad address; `NoMemory` when the heap has no room for
   *   the bookkeeping (the block then stays live)
   */
  freeDelayed(address: number): void {
    this.checkAddress(address);
    const usable = this.backend.usableSize(address);
    if (this.delayed.add(address, usable)) this.delayedDue = true;
    this.f64[this.counters + Counter.freeDelayed]!++;
  }

  /**
   * Frees every delayed block whose goal all threads have reached (this thread's, then those
   * left by departed threads when nobody else is at it). Never waits. Returns how many.
   */
  processDelayed(): number {
    this.assertAttached();
    this.delayedDue = false;
    return this.delayed.process();
  }

  /**
   * Declares a quiescent point: this thread holds no references into shared structures right
   * now. Readers call it between operations; until they do, delayed frees wait for them.
   */
  quiescent(): void {
    this.assertAttached();
    this.qsbr.quiescent();
  }

  /**
   * Declares this thread idle: it promises to hold no references until `resume()`, and holds
   * no delayed free back meanwhile (a worker waiting for work, say).
   */
  idle(): void {
    this.assertAttached();
    this.qsbr.offline();
  }

  /** Ends `idle()`: the thread takes part in reclamation again, from a quiescent point. */
  resume(): void {
    this.assertAttached();
    this.qsbr.online();
  }

  /**
   * Bytes usable at `address`: at least the size asked for.
   * @throws AllocError as `free`
   */
  usableSize(address: number): number {
    this.checkAddress(address);
    return this.backend.usableSize(address);
  }

  // --- the ArceOS face -------------------------------------------------------------------

  /**
   * Allocates a block for `layout`.
   * @throws AllocError `InvalidParam` for a bad layout; `NoMemory` when nothing fits
   */
  alloc(layout: Layout): number {
    checkLayoutObject(layout);
    const address = this.alignedAlloc(layout.align, layout.size);
    if (address === 0) {
      const stats = this.backend.stats();
      throw new AllocError(
        'NoMemory',
        `no room for ${layout.size} bytes aligned to ${layout.align} in the '${this.backendName}' ` +
          `heap (${stats.totalBytes - stats.usedBytes} bytes free, largest block ${stats.largestFreeBlock})`,
      );
    }
    return address;
  }

  /**
   * Frees a block, checking that `layout` is the one it was allocated with: the size must
   * fit the block (exactly the requested size, when the backend keeps it) and the address
   * must be aligned as `layout.align` says.
   * @throws AllocError `InvalidParam` for a bad or mismatched layout or address;
   *   `NotAllocated` for an address that is not a live block
   */
  dealloc(address: number, layout: Layout): void {
    checkLayoutObject(layout);
    checkSize(layout.size);
    checkAlign(layout.align);
    this.freeMatching(address, layout.size, layout.align);
  }

  /**
   * Frees `address` once `size` (and `align`, unless null) match what the backend knows of
   * the block (`BlockLayout`).
   * @throws AllocError `InvalidParam` naming what the block takes when they do not
   */
  private freeMatching(address: number, size: number, align: number | null): void {
    this.checkAddress(address);
    const facts = layoutOfBlock(this.backend, address);
    const raised = align === null ? null : align < MIN_ALIGN ? MIN_ALIGN : align;
    const fits =
      size >= facts.minSize && size <= facts.maxSize && (raised === null || (raised >= facts.minAlign && raised <= facts.maxAlign && address % raised === 0));
    if (!fits) {
      const sizes = facts.minSize === facts.maxSize ? `size ${facts.minSize}` : `a size from ${facts.minSize} to ${facts.maxSize}`;
      const aligns = facts.minAlign === facts.maxAlign ? `alignment ${facts.minAlign}` : `an alignment up to ${facts.maxAlign}`;
      const asked = raised === null ? `${size} bytes` : `layout {size: ${size}, align: ${align}}`;
      throw new AllocError('InvalidParam', `${asked} does not match the block at ${hex(address)}, which takes ${sizes} and ${aligns}`);
    }
    this.free(address);
  }

  /**
   * Allocates `count` pages of `PAGE_SIZE` bytes at a multiple of `alignBytes`, from the
   * backend (as ArceOS's `GlobalAllocator::alloc_pages`, but served by the byte allocator).
   * @throws AllocError `InvalidParam` for a bad count or an alignment that is not a
   *   power-of-two multiple of the page size; `NoMemory` when nothing fits
   */
  allocPages(count: number, alignBytes: number = PAGE_SIZE): number {
    checkPageCount(count);
    if (typeof alignBytes !== 'number' || alignBytes % PAGE_SIZE !== 0) {
      throw new AllocError('InvalidParam', `page alignment ${describeValue(alignBytes)} is not a multiple of ${PAGE_SIZE}`);
    }
    return this.alloc({ size: count * PAGE_SIZE, align: alignBytes });
  }

  /**
   * Frees pages from `allocPages`, whatever alignment they were allocated with.
   * @throws AllocError `InvalidParam` when `count` does not match; else as `free`
   */
  deallocPages(address: number, count: number): void {
    checkPageCount(count);
    // ArceOS's dealloc_pages takes no alignment: whichever the pages were allocated with.
    this.freeMatching(address, count * PAGE_SIZE, null);
  }

  /**
   * Gives the backend another range of the arena (one not handed out at creation, see
   * `HeapConfig.initBytes`).
   * @throws AllocError `InvalidParam` outside the arena, or for a heap of several arenas
   *   (each manages its whole slice from the start); `MemoryOverlap` over a managed range
   */
  addMemory(start: number, size: number): void {
    if (this.arenas.count > 1) {
      throw new AllocError('InvalidParam', `a heap of ${this.arenas.count} arenas manages its whole arena from the start: there is no range to add`);
    }
    this.poolsMutex.lock();
    try {
      this.heap.checkNewPool(start, size);
      this.formatPool(start, size, (backend) => backend.addMemory(start, size));
    } finally {
      this.poolsMutex.unlock();
    }
  }

  /**
   * Part of `BaseAllocator`; a heap is initialised once, when it is created.
   * @throws AllocError `InvalidParam` always: use `GlobalAllocator.create`, or `addMemory`
   */
  init(_start: number, _size: number): void {
    throw new AllocError('InvalidParam', 'a heap is initialised by GlobalAllocator.create; use addMemory to add memory');
  }

  totalBytes(): number {
    return this.backend.totalBytes();
  }

  usedBytes(): number {
    return this.backend.usedBytes();
  }

  availableBytes(): number {
    // Used first: the total only grows, so the difference is never below the truth.
    const used = this.backend.usedBytes();
    return this.backend.totalBytes() - used;
  }

  /** The memory ranges the backend manages. */
  pools(): { start: number; size: number }[] {
    return this.heap.pools();
  }

  // --- checks and figures ----------------------------------------------------------------

  /**
   * Walks the heap and verifies every invariant of the backend.
   * @throws AllocError `HeapCorrupted` naming the first violation
   */
  check(): CheckReport {
    return this.backend.check();
  }

  /** Whether this heap's backend can be walked (`walk`, `classStats`). */
  supportsWalk(): boolean {
    return this.instance.walk !== undefined;
  }

  /**
   * The arena as the backend sees it, region by region in address order, tiling it exactly
   * from `arenaStart` to `arenaEnd` (see `HeapRegion`). One consistent pass: lock-based
   * backends are walked under the heap lock (with several arenas, each arena under its own
   * lock in turn, so each arena is consistent in itself), the others read as `check()` does. Blocks
   * a caller freed that still wait out their grace period (`freeDelayed`) are still the
   * backend's live blocks, and show as such.
   * @throws AllocError `InvalidParam` when the backend cannot be walked (`supportsWalk()`);
   *   `HeapCorrupted` when its structures are damaged
   */
  walk(): HeapRegion[] {
    if (this.instance.walk === undefined) {
      throw new AllocError('InvalidParam', `backend '${this.backendName}' cannot be walked: it has no walk()`);
    }
    const backend = this.backend;
    return tileArena((visit) => backend.walk!(visit), this.arenaStart, this.arenaEnd);
  }

  /**
   * The backend's own statistics tables (slab's slabinfo, buddy's orders, ...), read as
   * `walk()` reads; empty when the backend keeps none.
   */
  classStats(): StatsTable[] {
    if (this.instance.classStats === undefined) return [];
    return this.backend.classStats!();
  }

  /** Figures of the whole heap (all threads). */
  stats(): HeapStats {
    this.publishCalls();
    const backendStats = this.backend.stats();
    const sum = (counter: number): number => this.registry.sumCounter(counter);
    return {
      ...backendStats,
      backend: this.backendName,
      heapBytes: this.heap.arenaBytes,
      availableBytes: backendStats.totalBytes - backendStats.usedBytes,
      internalFragmentationBytes: backendStats.requestedBytes === null ? null : backendStats.grantedBytes - backendStats.requestedBytes,
      calls: {
        malloc: sum(Counter.malloc),
        free: sum(Counter.free),
        calloc: sum(Counter.calloc),
        realloc: sum(Counter.realloc),
        alignedAlloc: sum(Counter.alignedAlloc),
        failed: sum(Counter.failed),
        freeDelayed: sum(Counter.freeDelayed),
      },
      delayedFree: {
        ...this.delayed.stats(),
        orphanHeldBytes: this.delayed.orphanHeldBytes(),
        writeSequence: this.qsbr.writeSequence(),
      },
      threads: this.registry.activeCount(),
      contendedLockAcquisitions: this.arenas.list.reduce((total, arena) => total + arena.mutex.contendedCount(), 0),
      locks: this.mutexes.map((mutex) => ({ name: mutex.name, acquired: mutex.acquiredCount(), spun: mutex.spunCount(), contended: mutex.contendedCount() })),
      threadCache: this.threadCache === null ? null : ThreadCache.figures(this.memory, this.registry.maxThreads),
      recovery: this.recoveryRecord.figures(),
    };
  }

  // --- threads ---------------------------------------------------------------------------

  /**
   * Releases this thread's slot (and whatever the backend keeps per thread). The handle is
   * unusable afterwards; blocks it allocated stay live and may be freed by other threads.
   * A second `detach()` does nothing: the slot may belong to another thread by then.
   */
  detach(): void {
    if (this.detached) return;
    this.publishCalls();
    if (this.registry.beginRelease(this.threadId, this.ticket)) {
      // Tolerant, as for a dead thread: a damaged bin is left allocated, and the slot is
      // released whatever the cache held.
      for (const note of this.threadCache?.reap(this.threadId) ?? []) this.recoveryRecord.noteFailure(this.threadId, note);
      this.delayed.handOver(this.threadId);
      this.qsbr.offline();
      this.instance.releaseThread?.(this.threadId, false);
      this.registry.finishRelease(this.threadId, this.ticket);
    }
    this.detached = true;
    this.backend = detachedBackend();
    this.releaseValidates = false;
    this.f64 = new Float64Array(COUNTER_COUNT);
    this.counters = 0;
  }

  /**
   * Releases the slots of a thread that ended without detaching, found by its Node
   * `threadId` (`worker.threadId`, not a heap thread id): every lock it held is taken over,
   * poisoned and repaired (`recover`), its thread cache given back, its delayed frees passed
   * to the other threads, and the backend takes back what it owned. The caller's own slot is
   * skipped (its thread is plainly alive); any other slot of a thread still running would be
   * released under it, so name only a thread that is gone. Giving back a cache waits for the
   * lock, as any call does (`watchWorker` does not block its event loop meanwhile). It never
   * throws: what could not be repaired is in the report, in `stats().recovery`, and in the
   * error of the next call that needs the poisoned lock.
   */
  releaseThreadsOf(deadNodeThreadId: number): ReapReport {
    const report: ReapReport = { threads: [], ...emptyReport() };
    for (const slot of this.seizeThreadsOf(deadNodeThreadId, report)) this.releaseSeized(slot, report);
    return report;
  }

  /**
   * The first half of a reap, which waits on no other thread: takes the slots of Node thread
   * `deadNodeThreadId` (but the caller's own) for reaping, seizes every lock they held, takes
   * them offline for QSBR and repairs what the locks guard (`recoverInto`). Returns the
   * slots, for `releaseSeized`.
   */
  private seizeThreadsOf(deadNodeThreadId: number, report: ReapReport): SlotTicket[] {
    const seized: SlotTicket[] = [];
    for (const { threadId, ticket } of this.registry.threadsOfNodeThread(deadNodeThreadId)) {
      // A slot of this very handle belongs to a thread that is plainly alive.
      if (threadId === this.threadId && ticket === this.ticket) continue;
      if (!this.registry.beginReap(threadId, ticket)) continue;
      for (const mutex of this.mutexes) mutex.seizeFromDead(threadId);
      // Lock-free, and every delayed free of the heap waits on a thread still online.
      this.qsbr.offlineThread(threadId);
      seized.push({ threadId, ticket });
    }
    if (seized.length > 0) this.recoverInto(report);
    return seized;
  }

  /**
   * The second half: gives back what the seized slot's thread held (its thread cache, its
   * delayed frees, what the backend keeps for it), which takes locks other threads may hold,
   * then frees the slot.
   */
  private releaseSeized({ threadId, ticket }: SlotTicket, report: ReapReport): void {
    this.guarded(report, threadId, 'thread cache', () => this.reapCacheInto(report, threadId));
    this.guarded(report, threadId, 'delayed frees', () => this.delayed.handOver(threadId));
    this.guarded(report, threadId, 'backend', () => this.instance.releaseThread?.(threadId, true));
    this.registry.finishRelease(threadId, ticket);
    report.threads.push(threadId);
  }

  /**
   * Reaps `worker`'s slots when it exits (`releaseThreadsOf`), so a worker that dies or
   * ends without detaching gives back its slot, and a lock it died holding is repaired.
   * The handler never throws into the process; `onReaped` gets each report, once the reap is
   * done: the dead thread's own locks are repaired at once, and the rest waits, without
   * blocking, while a lock is held by a thread that does not move (`reapWatched`).
   * @throws AllocError `Unsupported` for anything but a Node `Worker` (a web worker tells no
   *   one that it ended; a page calls `releaseThreadsOf` with the id the worker posted it)
   */
  watchWorker(worker: Worker, onReaped?: (report: ReapReport) => void): void {
    const candidate = worker as Partial<Worker>;
    if (typeof candidate.threadId !== 'number' || typeof candidate.once !== 'function') {
      throw new AllocError(
        'Unsupported',
        "watchWorker takes a Node worker_threads Worker; a web worker has no thread id and no 'exit' event: have it post " +
          'its platformThreadId, and call releaseThreadsOf(id) when it is gone (docs/browsers.md)',
      );
    }
    const id = worker.threadId;
    worker.once('exit', () => this.reapWatched(id, onReaped));
  }

  /**
   * `watchWorker`'s reap of Node thread `id`. Its first half runs at once: the dead thread's
   * own locks are seized and repaired, so threads waiting on them get them (`seizeThreadsOf`).
   * The second half takes locks other threads may hold, and is put off, without blocking,
   * while any lock is held by a thread that has neither released it nor taken it again since
   * the last look (`lockSnapshot`): a live holder moves within microseconds, a dead one never
   * does. Several workers that die together leave their 'exit' events queued one behind
   * another on this thread; if the second half waited on a lock that another of them died
   * holding, it would block this thread's event loop, the event that repairs that lock
   * could not run, and the wait would end in a timeout, leaving the thread's cache behind.
   * After the lock timeout it goes on anyway, and a lock still held then is waited for as by
   * any caller (at most the timeout again), its failure reported.
   */
  private reapWatched(id: number, onReaped: ((report: ReapReport) => void) | undefined): void {
    const report: ReapReport = { threads: [], ...emptyReport() };
    // A handle detached by now, or later, reaps through a fresh one, detached at the end.
    let temporary: GlobalAllocator | null = null;
    const reaper = (): GlobalAllocator => {
      if (!this.detached) return this;
      temporary ??= GlobalAllocator.attachSync(this.buffer, { backends: [this.descriptor] });
      return temporary;
    };
    const end = (): void => {
      if (temporary !== null) {
        try {
          temporary.detach();
        } catch (error) {
          this.reapFailed(id, report, error, this.detached ? null : this);
        }
      }
      onReaped?.(report);
    };
    let seized: SlotTicket[] = [];
    let records: (() => void)[] = [];
    try {
      const first = reaper();
      // Its figures' writes do not wait for the recovery lock either: another thread that
      // died may hold it. They are made with the second half.
      records = first.recoveryRecord.deferring(() => {
        seized = first.seizeThreadsOf(id, report);
      });
    } catch (error) {
      this.reapFailed(id, report, error, temporary ?? (this.detached ? null : this));
      end();
      return;
    }
    const deadline = performance.now() + this.heap.lockTimeoutMs;
    const finish = (seen: number[] | null): void => {
      try {
        const now = reaper().lockSnapshot();
        if (now.some((word, index) => word !== 0 && (seen === null || seen[index] === word)) && performance.now() < deadline) {
          setTimeout(() => finish(now), REAP_RETRY_MS);
          return;
        }
        const second = reaper();
        second.recoveryRecord.apply(records);
        for (const slot of seized) second.releaseSeized(slot, report);
      } catch (error) {
        this.reapFailed(id, report, error, temporary ?? (this.detached ? null : this));
      }
      end();
    };
    finish(null);
  }

  /**
   * Reports that reaping Node thread `id` failed with `error` (nothing of a reap should
   * throw), and records it in the heap's recovery figures through `handle` when it is attached.
   */
  private reapFailed(id: number, report: ReapReport, error: unknown, handle: GlobalAllocator | null): void {
    const reason = `reaping Node thread ${id} failed: ${errorText(error)}`;
    report.failed.push({ lock: '-', reason });
    if (handle !== null && !handle.detached) handle.recoveryRecord.noteFailure(0, reason);
  }

  /**
   * For each lock, a word that changes whenever it changes hands or is taken again while it is
   * held, and 0 while it is free or poisoned and abandoned (held by the dead thread that
   * poisoned it: a failed repair, which `recover()` retries, and no wait ends). A lock being
   * repaired counts as held by its repairer.
   */
  private lockSnapshot(): number[] {
    return this.mutexes.map((mutex) => {
      const holder = mutex.holder();
      if (holder === 0 || holder === mutex.poisonedBy()) return 0;
      return holder * HOLDER_SNAPSHOT_SCALE + mutex.acquiredCount() + 1;
    });
  }

  /**
   * Repairs every poisoned lock: takes it over from its dead holder, has the structures it
   * guards rebuilt (see recovery.ts), verifies them, and lifts the poison. A lock whose
   * repair fails stays poisoned and the report says why; calling again retries.
   */
  recover(): RecoveryReport {
    this.assertAttached();
    const report = emptyReport();
    this.recoverInto(report);
    this.reapLeftCaches(report);
    return report;
  }

  /** Gives back the cache of gone thread `threadId`; what it gave up on goes to the report. */
  private reapCacheInto(report: RecoveryReport, threadId: number): void {
    for (const note of this.threadCache?.reap(threadId) ?? []) {
      report.notes.push(note);
      report.failed.push({ lock: '-', reason: note });
    }
  }

  /**
   * Gives back the thread caches of released slots that still hold blocks: a reaper that
   * could not take the heap lock (its repair failed) released the slot and left the cache,
   * which a later `recover()` finishes here.
   */
  private reapLeftCaches(report: RecoveryReport): void {
    const cache = this.threadCache;
    if (cache === null) return;
    for (let threadId = 1; threadId <= this.registry.maxThreads; threadId++) {
      if (threadId === this.threadId || this.registry.state(threadId) !== SlotState.free || !cache.holdsBlocks(threadId)) continue;
      this.guarded(report, threadId, 'thread cache', () => {
        this.reapCacheInto(report, threadId);
        report.notes.push(`gave back the cache left by thread slot ${threadId}`);
      });
    }
  }

  /**
   * Touches every page of the arena so the operating system commits it now: a fresh
   * `SharedArrayBuffer` is committed lazily, and benchmarks must not time page faults. The
   * contents do not change (each touch is an atomic add of 0, safe while other threads run).
   */
  prefault(): void {
    const u8 = this.memory.u8;
    for (let address = this.arenaStart; address < this.arenaEnd; address += PAGE_SIZE) Atomics.add(u8, address, 0);
  }

  /** Number of threads attached right now. */
  attachedThreads(): number {
    return this.registry.activeCount();
  }

  /**
   * This thread's backend instance itself, for a backend package's own extensions (mimalloc's
   * deferred-free callback, say). A lock-based backend's instance is not thread-safe: call it
   * only while holding the heap lock (with several arenas: the instance of this thread's home
   * arena, under that arena's lock).
   */
  get backendInstance(): Backend {
    return this.instance;
  }

  /**
   * This thread's backend instance with its own type, for the extensions of a backend
   * package (mimalloc's `collect`, say), after checking that this heap runs that backend.
   * @throws AllocError `InvalidParam` when the heap runs another backend
   */
  // biome-ignore lint/suspicious/noExplicitAny: any options type fits; only the name and module are compared
  backendOf<Instance extends Backend>(descriptor: BackendDescriptor<any, Instance>): Instance {
    this.assertAttached();
    if (descriptor.name !== this.descriptor.name || descriptor.moduleUrl !== this.descriptor.moduleUrl) {
      throw new AllocError('InvalidParam', `this heap runs backend '${this.backendName}', not '${descriptor.name}' (${descriptor.moduleUrl})`);
    }
    return this.instance as Instance;
  }

  /**
   * What recovery after threads' deaths could not give back, and why the last repair failed:
   * the same as `stats().recovery`, but readable while a lock is poisoned (when `stats()`,
   * which needs the backend, fails).
   */
  recoveryFigures(): RecoveryFigures {
    return this.recoveryRecord.figures();
  }

  /**
   * This thread's cache in front of a locked backend, or null when the heap has none; for
   * tests that stop a thread between the cache's steps (`stepHook`) and for its figures.
   */
  get threadCacheOfThisThread(): ThreadCache | null {
    return this.threadCache;
  }

  /** The descriptor of this heap's backend. */
  get backendDescriptor(): AnyBackendDescriptor {
    return this.descriptor;
  }

  // --- helpers ---------------------------------------------------------------------------

  /**
   * Has `arena`'s instance format a new pool, then records it in that arena's pool table; for
   * a locked backend both under the arena's lock, so no thread can be handed a block of the
   * pool before the table (which backends validate addresses against) lists it. Called with
   * the pools lock held (or by `create`, before anyone else can see the heap).
   */
  private formatPool(start: number, size: number, format: (backend: Backend) => void, arena: Arena = this.arenas.list[0]!): void {
    const locked = this.descriptor.concurrency === 'locked';
    if (locked) arena.mutex.lock();
    try {
      format(arena.inner);
      this.heap.recordPool(start, size, arena.index);
    } finally {
      if (locked) arena.mutex.unlock();
    }
  }

  /** Repairs each poisoned lock, innermost first, adding to `report`. */
  private recoverInto(report: RecoveryReport): void {
    for (const index of RECOVERY_ORDER) {
      const mutex = this.mutexes[index]!;
      const dead = mutex.poisonedBy();
      if (dead === 0 || !mutex.takeOver()) continue;
      const name = mutex.name;
      let lost: BackendRepair;
      try {
        lost = this.repairLock(index, dead);
      } catch (error) {
        mutex.returnTo(dead);
        const reason = `${repairFailurePrefix(name)} after ${this.registry.describe(dead)} died failed: ${errorText(error)}`;
        report.failed.push({ lock: name, reason });
        this.recoveryRecord.noteFailure(dead, reason);
        continue;
      }
      // Only the repair may give the lock back to the dead thread: once it is released,
      // another thread may hold it.
      mutex.clearPoison();
      mutex.unlock();
      report.recovered.push(name);
      report.notes.push(...lost.notes.map((note) => `${name}: ${note}`));
      report.lostBytes += lost.lostBytes;
      report.lostBlocks += lost.lostBlocks;
      this.recoveryRecord.addLoss(lost.lostBytes, lost.lostBlocks);
      this.recoveryRecord.noteSuccess();
    }
  }

  /**
   * Makes what lock `index` guards consistent after `dead` died holding it; called holding
   * it. Returns what could not be accounted for.
   * @throws AllocError when the structures cannot be repaired or fail `check()` after
   */
  private repairLock(index: number, dead: number): BackendRepair {
    const none = { lostBytes: 0, lostBlocks: 0, notes: [] };
    const locked = this.descriptor.concurrency === 'locked';
    // A locked backend's arena lock guards that arena's instance, which knows it as `heap`.
    const arena = locked ? this.arenas.list.find((candidate) => candidate.mutex === this.mutexes[index]) : undefined;
    const backendLock: string | null =
      arena !== undefined ? 'heap' : (index === LockIndex.backend0 || index === LockIndex.backend1) && !locked ? this.mutexes[index]!.name : null;
    if (backendLock !== null) {
      const inner = arena?.inner ?? this.instance;
      if (inner.recover === undefined) {
        throw new AllocError('HeapCorrupted', `backend '${this.backendName}' cannot repair itself after a thread's death`);
      }
      const repair = inner.recover({ lock: backendLock, deadThreadId: dead });
      inner.check();
      return repair;
    }
    if (index === LockIndex.qsbrOrphans) this.delayed.recountOrphanHeld();
    return none;
  }

  /** Runs one step of reaping thread `threadId`; a failure goes to the report, not up. */
  private guarded(report: RecoveryReport, threadId: number, step: string, run: () => void): void {
    try {
      run();
    } catch (error) {
      const reason = `releasing ${this.registry.describe(threadId)}: ${step}: ${errorText(error)}`;
      report.failed.push({ lock: '-', reason });
      this.recoveryRecord.noteFailure(threadId, reason);
    }
  }

  /**
   * The tail of the error for lock `lock`, which `dead` poisoned: what recovery did about it,
   * when the last failure recorded was that lock's repair after that thread's death.
   */
  private explainPoison(dead: number, lock: string): string {
    const failure = this.recoveryRecord.lastFailureOf(dead, repairFailurePrefix(lock));
    return failure === '' ? 'call heap.recover() to repair it' : `automatic repair failed (${failure}); heap.recover() tries again`;
  }

  /** @throws AllocError `InvalidParam` when this handle was detached */
  private assertAttached(): void {
    if (this.detached) throw new AllocError('InvalidParam', 'this heap handle was detached; attach again to use the heap');
  }

  /** @throws AllocError `NotAllocated` when `address` waits for a delayed free */
  private refuseWaiting(address: number): void {
    if (this.delayed.isWaiting(address)) throw alreadyWaiting(address);
  }

  /** Adds the calls counted in this handle to its thread's counters in the registry. */
  private publishCalls(): void {
    this.publishMallocs();
    this.publishFrees();
  }

  /** Publishes the mallocs made since the last publish; a countdown that ran out starts again. */
  private publishMallocs(): void {
    const made = this.mallocBatch - this.mallocsToPublish;
    if (made !== 0) this.f64[this.counters + Counter.malloc]! += made;
    if (this.mallocsToPublish === 0) this.mallocsToPublish = nextPublishBatch(this.mallocBatch);
    this.mallocBatch = this.mallocsToPublish;
  }

  /** `publishMallocs` for frees. */
  private publishFrees(): void {
    const made = this.freeBatch - this.freesToPublish;
    if (made !== 0) this.f64[this.counters + Counter.free]! += made;
    if (this.freesToPublish === 0) this.freesToPublish = nextPublishBatch(this.freeBatch);
    this.freeBatch = this.freesToPublish;
  }

  /** Every allocation goes through here: the safe point where due delayed frees run. */
  private allocate(size: number, align: number): number {
    if (this.delayedDue === true) this.processDelayed(); // `=== true`: see `free`
    const address = this.backend.allocate(size, align);
    return address !== 0 ? address : this.allocateAfterReclaim(size, align);
  }

  /** The heap had no room: complete what delayed frees can be completed, then try once more. */
  private allocateAfterReclaim(size: number, align: number): number {
    const address = this.processDelayed() > 0 ? this.backend.allocate(size, align) : 0;
    if (address === 0) this.f64[this.counters + Counter.failed]!++;
    return address;
  }

  /** Frees a validated-in-range block for real, poisoning it first when the heap says so. */
  private releaseBlock(address: number): void {
    if (this.poisonFreed) this.poison(address);
    this.backend.release(address);
  }

  /** Fills a block about to be freed with `POISON_BYTE` (the `poisonFreed` flag). */
  private poison(address: number): void {
    this.memory.u8.fill(POISON_BYTE, address, address + this.backend.usableSize(address));
  }

  /**
   * Every block address is a multiple of 8 inside the arena; anything else is refused here
   * so backends only validate what their own metadata can tell. `free` makes this test only
   * after a refusal when the backend validates any address itself (`refusedFree`).
   */
  private checkAddress(address: number): void {
    // The refusal is a call of its own: bytecode inlined into every free stays small. The
    // type test comes first: `>>>` would throw a TypeError for a BigInt or a Symbol.
    if (!(typeof address === 'number' && address >>> 0 === address && address >= this.arenaStart && address < this.arenaEnd && (address & 7) === 0)) {
      throw badAddress(address, this.arenaStart, this.arenaEnd);
    }
  }
}

/** @throws AllocError `InvalidParam` unless `layout` is an object (its fields are checked after) */
function checkLayoutObject(layout: Layout): void {
  if (typeof layout !== 'object' || layout === null) {
    throw new AllocError('InvalidParam', `layout ${describeValue(layout)} is not a {size, align} object`);
  }
}

/** @throws AllocError `InvalidParam` unless `count` is a positive safe integer */
function checkPageCount(count: number): void {
  if (!Number.isSafeInteger(count) || count <= 0) {
    throw new AllocError('InvalidParam', `page count ${describeValue(count)} is not a positive integer`);
  }
}

/** @throws AllocError `InvalidParam` unless `trace` is absent or a `TraceRecorder` */
function checkRecorder(trace: TraceRecorder | undefined): void {
  if (trace !== undefined && typeof (trace as Partial<TraceRecorder> | null)?.install !== 'function') {
    throw new AllocError(
      'InvalidParam',
      `trace ${describeValue(trace)} is not a TraceRecorder (new TraceRecorder(), or TraceRecorder.over(buffer) in a worker)`,
    );
  }
}

/** An error's message, for a report. */
function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The backend and its normalised options, from the config or else `HEAPLAB_BACKEND`.
 * @throws AllocError as `parseBackendSpec`, `findBackend` and `normalizeOptions`; when the
 *   spec came from `HEAPLAB_BACKEND`, the message says so, since the program never named it
 */
function resolveBackend(config: HeapConfig): { descriptor: AnyBackendDescriptor; options: Record<string, unknown> } {
  const fromEnvironment = config.backend === undefined ? environmentVariable('HEAPLAB_BACKEND') : undefined;
  const chosen = config.backend ?? fromEnvironment ?? basicBackend.name;
  try {
    let descriptor: AnyBackendDescriptor;
    let specOptions: Record<string, unknown> = {};
    if (isBackendDescriptor(chosen)) {
      registerBackend(chosen);
      descriptor = chosen;
    } else {
      const spec = parseBackendSpec(chosen);
      descriptor = findBackend(spec.name);
      specOptions = spec.options;
    }
    const options = descriptor.normalizeOptions({ ...specOptions, ...config.options }) as Record<string, unknown>;
    return { descriptor, options };
  } catch (error) {
    if (fromEnvironment === undefined || !(error instanceof AllocError)) throw error;
    throw new AllocError(error.kind, `HEAPLAB_BACKEND=${JSON.stringify(fromEnvironment)}: ${error.message}`);
  }
}

function detachedBackend(): Backend {
  const fail = (): never => {
    throw new AllocError('InvalidParam', 'this heap handle was detached; attach again to use the heap');
  };
  return {
    init: fail,
    addMemory: fail,
    allocate: fail,
    release: fail,
    usableSize: fail,
    totalBytes: fail,
    usedBytes: fail,
    check: fail,
    stats: fail,
  };
}
