/**
 * The pool table: every range `init` and `addMemory` gave the heap, with where its order map
 * ends and its blocks begin (layout in `state-layout.ts`).
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
} from './state-layout.js';

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
    const u32 = this.u32;
    const count = u32[this.sCount]!;
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
   * Records `[start, start + size)` as a new pool, zeroes its order map and counts its bytes;
   * returns its index. Its block area is left for the caller to cut into free blocks.
   * @throws AllocError `InvalidParam` as `validate`; `NoMemory` when the table is full
   */
  add(start: number, size: number, what: string): number {
    this.validate(start, size, what);
    const u32 = this.u32;
    const pool = u32[this.sCount]!;
    if (pool >= BUDDY_MAX_POOLS) {
      throw new AllocError('NoMemory', `buddy ${what}: the pool table is full (${BUDDY_MAX_POOLS} ranges)`);
    }
    const mapStart = alignUp(start, UNIT_BYTES);
    const end = alignDown(start + size, UNIT_BYTES);
    const blocksStart = blocksStartOf(mapStart, end);
    // No block starts anywhere yet. The entries of the map's own units stay 0 for good.
    this.u8.fill(0, mapStart, blocksStart);
    const entry = this.table + pool * (POOL_ENTRY_BYTES >>> 2);
    u32[entry + (PE_MAP_START >>> 2)] = mapStart;
    u32[entry + (PE_BLOCKS_START >>> 2)] = blocksStart;
    u32[entry + (PE_END >>> 2)] = end;
    u32[this.sTotal] = u32[this.sTotal]! + (end - blocksStart);
    u32[this.sMetadata] = u32[this.sMetadata]! + (blocksStart - mapStart);
    u32[this.sTotalPages] = u32[this.sTotalPages]! + pagesIn(blocksStart, end);
    u32[this.sCount] = pool + 1;
    return pool;
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
