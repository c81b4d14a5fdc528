/**
 * The pool table: every range `init` and `addMemory` gave the heap, with where its order map
 * ends and its blocks begin (layout in `layout.ts`).
 *
 * Each pool carries its own map, carved from its start, so `addMemory` can add a range
 * anywhere in the arena and the map never has to cover memory the heap does not own. The
 * price is a search of the (at most 64) pools to free an address; a heap made in one piece
 * has one pool, found by the first comparison.
 */

import { AllocError, alignDown, alignUp, checkArenaRange, hex, PAGE_SIZE } from '@heaplab/core';

import {
  BUDDY_MAX_POOLS,
  PE_BLOCKS_START,
  PE_END,
  PE_MAP_START,
  POOL_ENTRY_BYTES,
  ST_METADATA,
  ST_POOL_COUNT,
  ST_POOLS,
  ST_TOTAL,
  ST_TOTAL_PAGES,
  UNIT_BYTES,
  UNIT_SHIFT,
} from './layout.js';

/** The pools of one buddy heap, over its shared control state. Not thread-safe. */
export class Pools {
  private readonly u8: Uint8Array;
  private readonly u32: Uint32Array;
  private readonly arenaStart: number;
  private readonly arenaEnd: number;
  private readonly sCount: number;
  private readonly sTotal: number;
  private readonly sMetadata: number;
  private readonly sTotalPages: number;
  /** Word index of the first pool entry. */
  private readonly table: number;
  /**
   * Pool 0's mapStart, blocksStart and end, read once it is published (-1 before): a pool
   * entry never changes once the count publishes it, so every lookup can try the first pool
   * without touching the table, and a heap made in one piece never reads it again.
   */
  private map0 = -1;
  private blocks0 = 0;
  private end0 = 0;

  /** Binds to the pool table in the control state at `stateOffset` (a multiple of 4). */
  constructor(u8: Uint8Array, u32: Uint32Array, stateOffset: number, arenaStart: number, arenaEnd: number) {
    this.u8 = u8;
    this.u32 = u32;
    this.arenaStart = arenaStart;
    this.arenaEnd = arenaEnd;
    const base = stateOffset >>> 2;
    this.sCount = base + (ST_POOL_COUNT >>> 2);
    this.sTotal = base + (ST_TOTAL >>> 2);
    this.sMetadata = base + (ST_METADATA >>> 2);
    this.sTotalPages = base + (ST_TOTAL_PAGES >>> 2);
    this.table = base + (ST_POOLS >>> 2);
  }

  /** Pools in the table. */
  count(): number {
    return this.u32[this.sCount]!;
  }

  /** The pool whose block area holds `address`; -1 when none does. */
  find(address: number): number {
    if (address >= this.blocks0 && address < this.end0) return 0;
    return this.findInTable(address);
  }

  /** `find` through the table (and the first pool's cache filled once it is published). */
  private findInTable(address: number): number {
    const u32 = this.u32;
    const count = u32[this.sCount]!;
    if (count > 0 && this.map0 < 0) this.cacheFirst();
    for (let pool = 0, entry = this.table; pool < count; pool++, entry += POOL_ENTRY_BYTES >>> 2) {
      if (address >= u32[entry + (PE_BLOCKS_START >>> 2)]! && address < u32[entry + (PE_END >>> 2)]!) return pool;
    }
    return -1;
  }

  /** First byte of `pool`'s order map. */
  mapStart(pool: number): number {
    return this.u32[this.table + pool * (POOL_ENTRY_BYTES >>> 2) + (PE_MAP_START >>> 2)]!;
  }

  /** First byte of `pool`'s block area. */
  blocksStart(pool: number): number {
    return this.u32[this.table + pool * (POOL_ENTRY_BYTES >>> 2) + (PE_BLOCKS_START >>> 2)]!;
  }

  /** One past `pool`'s last byte. */
  end(pool: number): number {
    return this.u32[this.table + pool * (POOL_ENTRY_BYTES >>> 2) + (PE_END >>> 2)]!;
  }

  /**
   * Checks that `[start, start + size)` can become a pool: inside the arena and, once its
   * bounds are rounded inwards to 16 bytes, large enough for its map and one smallest block.
   * Overlap with other pools is core's check, made before the backend is called.
   * @throws AllocError `InvalidParam` naming the range
   */
  validate(start: number, size: number, what: string): void {
    checkArenaRange(start, size, this.arenaStart, this.arenaEnd);
    const mapStart = alignUp(start, UNIT_BYTES);
    const end = alignDown(start + size, UNIT_BYTES);
    if (end <= mapStart || blocksStartOf(mapStart, end) + UNIT_BYTES > end) {
      throw new AllocError(
        'InvalidParam',
        `buddy ${what}: memory range ${hex(start)}..${hex(start + size)} is too small for an order map ` +
          `and one ${UNIT_BYTES}-byte block`,
      );
    }
  }

  /**
   * Checks that `[start, start + size)` can become the next pool (as `validate`, and that the
   * table has room and no pool overlaps it) and returns the index it will take. Writes
   * nothing: the caller formats the pool's map, then `publish`es it.
   * @throws AllocError `InvalidParam` as `validate`; `NoMemory` when the table is full;
   *   `MemoryOverlap` when the range overlaps a pool (core checks this before calling the
   *   backend; a pool added by a thread that died before core recorded it is caught here)
   */
  reserve(start: number, size: number, what: string): number {
    this.validate(start, size, what);
    const u32 = this.u32;
    const pool = u32[this.sCount]!;
    if (pool >= BUDDY_MAX_POOLS) {
      throw new AllocError('NoMemory', `buddy ${what}: the pool table is full (${BUDDY_MAX_POOLS} ranges)`);
    }
    const mapStart = alignUp(start, UNIT_BYTES);
    const end = alignDown(start + size, UNIT_BYTES);
    for (let other = 0; other < pool; other++) {
      if (mapStart < this.end(other) && this.mapStart(other) < end) {
        throw new AllocError(
          'MemoryOverlap',
          `buddy ${what}: memory range ${hex(start)}..${hex(start + size)} overlaps the managed range ` +
            `${hex(this.mapStart(other))}..${hex(this.end(other))}`,
        );
      }
    }
    return pool;
  }

  /**
   * Records pool `pool` (from `reserve`) as `[mapStart, end)` with blocks from `blocksStart`
   * and counts its bytes. The entry is written before the count that publishes it, and the
   * caller has formatted the pool's map already, so a thread dying here leaves either no
   * pool or a whole one.
   */
  publish(pool: number, mapStart: number, blocksStart: number, end: number): void {
    const u32 = this.u32;
    const entry = this.table + pool * (POOL_ENTRY_BYTES >>> 2);
    u32[entry + (PE_MAP_START >>> 2)] = mapStart;
    u32[entry + (PE_BLOCKS_START >>> 2)] = blocksStart;
    u32[entry + (PE_END >>> 2)] = end;
    u32[this.sTotal] = u32[this.sTotal]! + (end - blocksStart);
    u32[this.sMetadata] = u32[this.sMetadata]! + (blocksStart - mapStart);
    u32[this.sTotalPages] = u32[this.sTotalPages]! + pagesIn(blocksStart, end);
    u32[this.sCount] = pool + 1;
  }

  /**
   * Whether `mapStart` is the map of a pool whose block area holds `[block, block + bytes)`:
   * the pool part of checking a free-list link (a corrupted `FB_MAP_START` names no pool).
   * One comparison per pool before the match: a heap made in one piece matches at once.
   */
  holds(mapStart: number, block: number, bytes: number): boolean {
    if (mapStart === this.map0) return block >= this.blocks0 && block + bytes <= this.end0;
    const u32 = this.u32;
    if (this.map0 < 0 && u32[this.sCount]! > 0) this.cacheFirst();
    for (let entry = this.table, left = u32[this.sCount]!; left > 0; left--, entry += POOL_ENTRY_BYTES >>> 2) {
      if (u32[entry + (PE_MAP_START >>> 2)] === mapStart) {
        return block >= u32[entry + (PE_BLOCKS_START >>> 2)]! && block + bytes <= u32[entry + (PE_END >>> 2)]!;
      }
    }
    return false;
  }

  /** Reads pool 0 into the cache; call once the count says it is published. */
  private cacheFirst(): void {
    this.map0 = this.mapStart(0);
    this.blocks0 = this.blocksStart(0);
    this.end0 = this.end(0);
  }

  /** Forgets the first pool (`init` formats the table afresh). */
  forget(): void {
    this.map0 = -1;
    this.blocks0 = 0;
    this.end0 = 0;
  }

  /** Rewrites the byte totals from the table (recovery). */
  recount(): void {
    const u32 = this.u32;
    let total = 0;
    let metadata = 0;
    let pages = 0;
    for (let pool = 0, count = u32[this.sCount]!; pool < count; pool++) {
      total += this.end(pool) - this.blocksStart(pool);
      metadata += this.blocksStart(pool) - this.mapStart(pool);
      pages += pagesIn(this.blocksStart(pool), this.end(pool));
    }
    u32[this.sTotal] = total;
    u32[this.sMetadata] = metadata;
    u32[this.sTotalPages] = pages;
  }
}

/** Where the blocks of a pool `[mapStart, end)` begin: after one map byte per unit, rounded up to a unit. */
export function blocksStartOf(mapStart: number, end: number): number {
  return alignUp(mapStart + ((end - mapStart) >>> UNIT_SHIFT), UNIT_BYTES);
}

/** Whole pages at page-aligned addresses inside `[start, end)`. */
export function pagesIn(start: number, end: number): number {
  const first = alignUp(start, PAGE_SIZE);
  const last = alignDown(end, PAGE_SIZE);
  return last > first ? (last - first) / PAGE_SIZE : 0;
}
