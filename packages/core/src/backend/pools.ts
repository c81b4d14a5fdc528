/**
 * A backend's read-only view of core's pool table (`POOL_TABLE` in heap-layout.ts): every
 * range given to the heap by `init` and `addMemory`, in the order they were added. Backends
 * keep no pool table of their own: what they need per pool they derive from its range (or
 * keep in the pool's own memory). A heap of several arenas keeps a table per arena, and each
 * arena's instance sees its own only (`arena`).
 *
 * Core checks a new range (inside the arena, no overlap, table not full) before the backend
 * sees it, and records it after the backend's `init`/`addMemory` returns, under the pools
 * lock and, for a locked backend, still under the heap lock: no other thread can be handed a
 * block of the new pool before the table lists it. While a backend formats a new pool the
 * view does not list it yet; and a thread that dies between the two leaves a formatted range
 * that no pool lists: a repair that walks the listed pools drops it, losing that range only.
 */

import { AllocError, hex } from '../errors.js';
import { ARENA_POOL_COUNTS, MAX_POOLS, POOL_ENTRY_BYTES, POOL_SIZE, POOL_START, POOL_TABLE, POOL_TABLE_BYTES } from '../memory/heap-layout.js';
import { checkArenaRange } from '../sizes.js';
import type { HeapMemory } from '../interfaces.js';

const ENTRY_WORDS = POOL_ENTRY_BYTES >> 2;

export class PoolView {
  protected readonly u32: Uint32Array;
  /** Word index of the table's count, of its first entry's start, of its first entry's size. */
  protected readonly countWord: number;
  protected readonly tableWord: number;
  private readonly firstSizeWord: number;

  /** @param arena whose table to view (0, the only one of a heap of one arena) */
  constructor(memory: HeapMemory, arena = 0) {
    this.u32 = memory.u32;
    this.countWord = ARENA_POOL_COUNTS[arena]! >> 2;
    this.tableWord = (POOL_TABLE + arena * POOL_TABLE_BYTES) >> 2;
    this.firstSizeWord = this.tableWord + (POOL_SIZE >> 2);
  }

  /**
   * Pools recorded so far, read plainly: for a locked backend, which reads it under the heap
   * lock (core records a locked backend's pools under that lock too, so the read is ordered).
   */
  count(): number {
    return this.u32[this.countWord]!;
  }

  /**
   * Pools recorded so far, read with an atomic load: for a thread-safe backend, which reads
   * without the lock core records under. Every entry below it is complete (the entry is
   * written before the count that publishes it).
   */
  publishedCount(): number {
    return Atomics.load(this.u32, this.countWord);
  }

  /** First byte of pool `index`. */
  start(index: number): number {
    return this.u32[this.tableWord + (POOL_START >> 2) + index * ENTRY_WORDS]!;
  }

  /** Bytes of pool `index`. */
  size(index: number): number {
    return this.u32[this.firstSizeWord + index * ENTRY_WORDS]!;
  }

  /** One past the last byte of pool `index`. */
  end(index: number): number {
    return this.start(index) + this.size(index);
  }

  /** The index of the pool holding `address`, or -1. */
  find(address: number): number {
    const count = this.count();
    for (let index = 0; index < count; index++) {
      const start = this.start(index);
      if (address >= start && address < start + this.size(index)) return index;
    }
    return -1;
  }

  /** True when `[address, address + bytes)` lies inside one pool. */
  contains(address: number, bytes: number): boolean {
    const index = this.find(address);
    return index >= 0 && address + bytes <= this.end(index);
  }

  /**
   * Every pool as `{ index, start, end }`, in address order (a walk reports regions in address
   * order; pools are listed in the order they were added).
   */
  inAddressOrder(): { index: number; start: number; end: number }[] {
    const pools: { index: number; start: number; end: number }[] = [];
    for (let index = 0, count = this.count(); index < count; index++) pools.push({ index, start: this.start(index), end: this.end(index) });
    return pools.sort((a, b) => a.start - b.start);
  }

  /** Every pool as `{ start, end }`, in the order added. */
  list(): { start: number; end: number }[] {
    const pools: { start: number; end: number }[] = [];
    for (let index = 0, count = this.count(); index < count; index++) pools.push({ start: this.start(index), end: this.end(index) });
    return pools;
  }
}

/** The writer side of the pool table, used by core (and the test kit's fixture) only. */
export class PoolTable extends PoolView {
  /** @param arenaStart,arenaEnd the range its pools must lie in (the arena's slice) */
  constructor(
    memory: HeapMemory,
    private readonly arenaStart: number,
    private readonly arenaEnd: number,
    arena = 0,
  ) {
    super(memory, arena);
  }

  /**
   * Checks that `[start, start + size)` lies in the arena and overlaps no pool, without
   * recording it. Call with the pools lock held.
   * @throws AllocError `InvalidParam` outside the arena or with a bad start or size;
   *   `MemoryOverlap` when it overlaps a pool; `NoMemory` when the pool table is full
   */
  checkNew(start: number, size: number): void {
    checkArenaRange(start, size, this.arenaStart, this.arenaEnd);
    for (const pool of this.list()) {
      if (start < pool.end && pool.start < start + size) {
        throw new AllocError(
          'MemoryOverlap',
          `memory range ${hex(start)}..${hex(start + size)} overlaps the managed range ${hex(pool.start)}..${hex(pool.end)}`,
        );
      }
    }
    if (this.count() >= MAX_POOLS) throw new AllocError('NoMemory', `the pool table is full (${MAX_POOLS} ranges)`);
  }

  /** Records a checked pool: the entry first, then the count that publishes it. */
  record(start: number, size: number): void {
    const count = this.publishedCount();
    const entry = this.tableWord + count * ENTRY_WORDS;
    this.u32[entry + (POOL_START >> 2)] = start;
    this.u32[entry + (POOL_SIZE >> 2)] = size;
    Atomics.store(this.u32, this.countWord, count + 1);
  }
}
