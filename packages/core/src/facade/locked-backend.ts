/**
 * The one place a lock-based backend gets its lock, as ArceOS wraps each allocator in a
 * `Mutex<...>`: every call runs with the heap lock of the instance it calls held. Backends
 * themselves are written as if single-threaded. With several arenas (arenas.ts) each
 * instance has a lock of its own: an allocation goes to this thread's home arena first, a
 * call about a block to the arena holding it, and the figures add up every arena's.
 */

import type { BackendStats, CheckReport, HeapRegion, StatsTable } from '../interfaces.js';
import type { Backend, BlockLayout } from '../backend/contract.js';
import { AllocError } from '../errors.js';
import { MAX_ALIGN } from '../sizes.js';
import type { SharedMutex } from '../memory/mutex.js';
import type { Arena, Arenas } from './arenas.js';

/**
 * The layouts `dealloc` accepts for the live block at `address`: the backend's own answer,
 * else exactly the requested size when it keeps it, else any size up to the usable one; any
 * alignment the address satisfies (the facade checks the address against it).
 * @throws AllocError `NotAllocated` when `address` is not the start of a live block
 */
export function layoutOfBlock(backend: Backend, address: number): BlockLayout {
  if (backend.blockLayout !== undefined) return backend.blockLayout(address);
  const usable = backend.usableSize(address);
  const requested = backend.requestedSize === undefined ? -1 : backend.requestedSize(address);
  return requested >= 0
    ? { minSize: requested, maxSize: requested, minAlign: 1, maxAlign: MAX_ALIGN }
    : { minSize: 0, maxSize: usable, minAlign: 1, maxAlign: MAX_ALIGN };
}

/** Runs `call` on `arena`'s instance holding its lock. */
function underLock<T>(arena: Arena, call: (inner: Backend) => T): T {
  arena.mutex.lock();
  try {
    return call(arena.inner);
  } finally {
    arena.mutex.unlock();
  }
}

/** A `Backend` whose every call holds the heap lock of the arena it calls. */
export class LockedBackend implements Backend {
  /** This thread's home arena's instance and lock: all there is with one arena. */
  protected readonly inner: Backend;
  protected readonly mutex: SharedMutex;

  constructor(protected readonly arenas: Arenas) {
    this.inner = arenas.home.inner;
    this.mutex = arenas.home.mutex;
  }

  /** Formats the one arena; a heap of several formats each arena itself (`GlobalAllocator.create`). */
  init(start: number, size: number): void {
    underLock(this.arenas.home, (inner) => inner.init(start, size));
  }

  addMemory(start: number, size: number): void {
    underLock(this.arenas.of(start), (inner) => inner.addMemory(start, size));
  }

  allocate(size: number, align: number): number {
    this.mutex.lock();
    let address: number;
    try {
      address = this.inner.allocate(size, align);
    } finally {
      this.mutex.unlock();
    }
    return address !== 0 || this.arenas.count === 1 ? address : this.allocateElsewhere(size, align);
  }

  /**
   * The home arena had no room: the other arenas in turn. One whose lock cannot be had (its
   * holder died and it waits for repair, or it timed out) is passed over, so the rest still
   * serve; if none had room, that arena's error is thrown rather than a 0 that would say the
   * heap is full when part of it could not be asked.
   * @throws AllocError `LockTimeout` from an arena passed over, when no other had room
   */
  protected allocateElsewhere(size: number, align: number): number {
    let passedOver: AllocError | null = null;
    for (const arena of this.arenas.list) {
      if (arena === this.arenas.home) continue;
      try {
        const address = underLock(arena, (inner) => inner.allocate(size, align));
        if (address !== 0) return address;
      } catch (error) {
        if (!(error instanceof AllocError) || error.kind !== 'LockTimeout') throw error;
        passedOver ??= error;
      }
    }
    if (passedOver !== null) throw passedOver;
    return 0;
  }

  release(address: number): void {
    const arena = this.arenas.of(address);
    arena.mutex.lock();
    try {
      arena.inner.release(address);
    } finally {
      arena.mutex.unlock();
    }
  }

  usableSize(address: number): number {
    return underLock(this.arenas.of(address), (inner) => inner.usableSize(address));
  }

  requestedSize(address: number): number {
    return underLock(this.arenas.of(address), (inner) => (inner.requestedSize === undefined ? -1 : inner.requestedSize(address)));
  }

  blockLayout(address: number): BlockLayout {
    return underLock(this.arenas.of(address), (inner) => layoutOfBlock(inner, address));
  }

  resizeInPlace(address: number, size: number): boolean {
    return underLock(this.arenas.of(address), (inner) => inner.resizeInPlace?.(address, size) ?? false);
  }

  totalBytes(): number {
    return this.sum((inner) => inner.totalBytes());
  }

  usedBytes(): number {
    return this.sum((inner) => inner.usedBytes());
  }

  /** Every arena's check; the counts added up. */
  check(): CheckReport {
    const reports = this.arenas.list.map((arena) => underLock(arena, (inner) => inner.check()));
    if (reports.length === 1) return reports[0]!;
    const total: CheckReport = { blocks: 0, liveBlocks: 0, freeBlocks: 0, usedBytes: 0, freeBytes: 0, pools: 0 };
    for (const report of reports) for (const key of Object.keys(total) as (keyof CheckReport)[]) total[key] += report[key];
    return total;
  }

  /**
   * Every arena's figures added up; the largest free block is the largest of any arena, and
   * with several arenas the peak is the sum of their peaks (an upper bound of the heap's).
   */
  stats(): BackendStats {
    const all = this.arenas.list.map((arena) => underLock(arena, (inner) => inner.stats()));
    if (all.length === 1) return all[0]!;
    const sum = (pick: (stats: BackendStats) => number): number => all.reduce((total, stats) => total + pick(stats), 0);
    return {
      totalBytes: sum((stats) => stats.totalBytes),
      usedBytes: sum((stats) => stats.usedBytes),
      peakUsedBytes: sum((stats) => stats.peakUsedBytes),
      peakUsedSampled: all.some((stats) => stats.peakUsedSampled),
      requestedBytes: all.some((stats) => stats.requestedBytes === null) ? null : sum((stats) => stats.requestedBytes ?? 0),
      grantedBytes: sum((stats) => stats.grantedBytes),
      metadataBytes: sum((stats) => stats.metadataBytes),
      largestFreeBlock: Math.max(...all.map((stats) => stats.largestFreeBlock)),
      liveBlocks: sum((stats) => stats.liveBlocks),
      freeBlocks: sum((stats) => stats.freeBlocks),
    };
  }

  /** Present only when the inner backend walks (the facade asks before calling): arena by arena, in address order. */
  walk(visit: (region: HeapRegion) => void): void {
    const walk = this.inner.walk;
    if (walk === undefined) return;
    for (const arena of this.arenas.list) underLock(arena, (inner) => walk.call(inner, visit));
  }

  /** The backend's tables; with several arenas, each arena's, named by arena. */
  classStats(): StatsTable[] {
    const classStats = this.inner.classStats;
    if (classStats === undefined) return [];
    if (this.arenas.count === 1) return underLock(this.arenas.home, (inner) => classStats.call(inner));
    return this.arenas.list.flatMap((arena) =>
      underLock(arena, (inner) => classStats.call(inner)).map((table) => ({ ...table, name: `${table.name} (arena ${arena.index})` })),
    );
  }

  /** The sum over every arena of `figure`, each read under its arena's lock. */
  private sum(figure: (inner: Backend) => number): number {
    let total = 0;
    for (const arena of this.arenas.list) total += underLock(arena, figure);
    return total;
  }
}
