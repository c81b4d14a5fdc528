/**
 * Where each pool's order map and blocks lie, read from core's pool table (`ctx.pools`). The
 * backend keeps no table of its own: a pool's map starts at its range's start rounded up to
 * 16 bytes, its blocks end at its range's end rounded down to 16, and its blocks begin where
 * the map (one byte per 16-byte unit) ends (drawn in `layout.ts`).
 *
 * Each pool carries its own map, carved from its start, so `addMemory` can add a range
 * anywhere in the arena and the map never has to cover memory the heap does not own. The
 * price is a search of the pools to free an address; a heap made in one piece has one pool,
 * found by the first comparison.
 */

import { checkArenaRange } from '@heaplab/core';
import { AllocError, alignDown, alignUp, hex, PAGE_SIZE, type PoolView } from '@heaplab/core/backend';

import { UNIT_BYTES, UNIT_SHIFT } from './layout.js';

/** One thread's view of the pools of a buddy heap. Not thread-safe: read under the heap lock. */
export class Pools {
  private readonly table: PoolView;
  /**
   * Pool 0's bounds, read once core's table lists it (`map0` -1 before): an entry never
   * changes once recorded, so every lookup can try the first pool without touching the table,
   * and a heap made in one piece never reads the table again.
   */
  private map0 = -1;
  private blocks0 = 0;
  private end0 = 0;
  /** The pool `find` found last: its map start, block start and end. */
  foundMap = 0;
  foundBlocks = 0;
  foundEnd = 0;

  constructor(table: PoolView) {
    this.table = table;
  }

  /** Pools in core's table. */
  count(): number {
    return this.table.count();
  }

  /** The pools' indices in address order (core's table lists them in the order added). */
  inAddressOrder(): number[] {
    return this.table.inAddressOrder().map((pool) => pool.index);
  }

  /** First byte of `pool`'s order map. */
  mapStart(pool: number): number {
    return alignUp(this.table.start(pool), UNIT_BYTES);
  }

  /** One past `pool`'s last block byte. */
  end(pool: number): number {
    return alignDown(this.table.end(pool), UNIT_BYTES);
  }

  /** First byte of `pool`'s block area. */
  blocksStart(pool: number): number {
    return blocksStartOf(this.mapStart(pool), this.end(pool));
  }

  /**
   * The pool whose block area holds `address`, its bounds left in `foundMap`, `foundBlocks`
   * and `foundEnd`; -1 when none does.
   */
  find(address: number): number {
    if (address >= this.blocks0 && address < this.end0) {
      this.foundMap = this.map0;
      this.foundBlocks = this.blocks0;
      this.foundEnd = this.end0;
      return 0;
    }
    return this.findInTable(address);
  }

  /** `find` through the table (and pool 0's bounds cached once it is listed). */
  private findInTable(address: number): number {
    const count = this.table.count();
    if (count > 0 && this.map0 < 0) this.cacheFirst();
    for (let pool = 0; pool < count; pool++) {
      const mapStart = this.mapStart(pool);
      const end = this.end(pool);
      const blocksStart = blocksStartOf(mapStart, end);
      if (address >= blocksStart && address < end) {
        this.foundMap = mapStart;
        this.foundBlocks = blocksStart;
        this.foundEnd = end;
        return pool;
      }
    }
    return -1;
  }

  /**
   * Whether `mapStart` is the map of a pool whose block area holds `[block, block + bytes)`:
   * the pool part of checking a free-list link (a corrupted `FB_MAP_START` names no pool).
   * One comparison per pool before the match: a heap made in one piece matches at once.
   */
  holds(mapStart: number, block: number, bytes: number): boolean {
    if (mapStart === this.map0) return block >= this.blocks0 && block + bytes <= this.end0;
    const count = this.table.count();
    if (count > 0 && this.map0 < 0) this.cacheFirst();
    for (let pool = 0; pool < count; pool++) {
      if (this.mapStart(pool) === mapStart) {
        const end = this.end(pool);
        return block >= blocksStartOf(mapStart, end) && block + bytes <= end;
      }
    }
    return false;
  }

  /** Reads pool 0's bounds into the cache; call once the table lists it. */
  private cacheFirst(): void {
    this.map0 = this.mapStart(0);
    this.end0 = this.end(0);
    this.blocks0 = blocksStartOf(this.map0, this.end0);
  }

  /** Whole pages at page-aligned addresses inside the block areas of every pool. */
  totalPages(): number {
    let pages = 0;
    for (let pool = 0, count = this.table.count(); pool < count; pool++) pages += pagesIn(this.blocksStart(pool), this.end(pool));
    return pages;
  }
}

/**
 * Checks that `[start, start + size)` can become a pool: inside the arena and, once its
 * bounds are rounded inwards to 16 bytes, large enough for its map and one smallest block.
 * A heap's core has checked the arena bounds (and overlap) already; a page allocator driven
 * over a bare context has no core in front of it, so the bounds are checked here again.
 * @throws AllocError `InvalidParam` naming the range
 */
export function checkPoolRange(start: number, size: number, arenaStart: number, arenaEnd: number, what: string): void {
  checkArenaRange(start, size, arenaStart, arenaEnd);
  const mapStart = alignUp(start, UNIT_BYTES);
  const end = alignDown(start + size, UNIT_BYTES);
  if (end <= mapStart || blocksStartOf(mapStart, end) + UNIT_BYTES > end) {
    throw new AllocError(
      'InvalidParam',
      `buddy ${what}: memory range ${hex(start)}..${hex(start + size)} is too small for an order map ` + `and one ${UNIT_BYTES}-byte block`,
    );
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
