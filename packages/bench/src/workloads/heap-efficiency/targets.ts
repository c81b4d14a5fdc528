/**
 * The allocators heap efficiency can measure, behind one small interface: every heaplab
 * backend through `GlobalAllocator`, and @thi.ng/malloc (which has neither aligned
 * allocation nor a working moving `realloc`, so both are done by hand and the row says so).
 */

import type { BackendSpec, GlobalAllocator } from '@heaplab/core';
import { MemPool } from '@thi.ng/malloc';

import { createBackendHeap } from '../../contenders/backends.js';

/** What a heap-efficiency trial calls. Every call returns 0 when the heap has no room. */
export interface EfficiencyTarget {
  /** Arena bytes: the `total` each trial adds. */
  readonly heapBytes: number;
  alloc(size: number, align: number): number;
  /**
   * Resizes keeping `align` and the contents. Returns the new address, or 0 when there is no
   * room (the old block is then untouched and live).
   */
  realloc(address: number, oldSize: number, size: number, align: number): number;
  free(address: number): void;
  /**
   * Called after every block was freed: throws unless the heap is empty again.
   * @throws Error naming what is left
   */
  verifyEmpty(): void;
  /** Gives the heap back. */
  close(): void;
}

/** A heaplab backend over a fresh heap of `heapBytes`. */
export class HeaplabEfficiencyTarget implements EfficiencyTarget {
  private readonly heap: GlobalAllocator;

  /** @throws AllocError from `GlobalAllocator.create` */
  constructor(
    spec: BackendSpec,
    readonly heapBytes: number,
  ) {
    this.heap = createBackendHeap(spec, heapBytes);
  }

  alloc(size: number, align: number): number {
    return this.heap.alignedAlloc(align, size);
  }

  /** Resizes keeping the block's alignment, as the method asks (Rust's `realloc(ptr, layout, size)`). */
  realloc(address: number, _oldSize: number, size: number, align: number): number {
    return this.heap.realloc(address, size, align);
  }

  free(address: number): void {
    this.heap.free(address);
  }

  verifyEmpty(): void {
    const report = this.heap.check();
    if (report.liveBlocks !== 0 || report.usedBytes !== 0) {
      throw new Error(
        `the '${this.heap.backendName}' heap is not empty after freeing every block: ${report.liveBlocks} live blocks, ${report.usedBytes} bytes used`,
      );
    }
  }

  close(): void {
    this.heap.detach();
  }
}

/**
 * @thi.ng/malloc over an ArrayBuffer of `heapBytes`. Its alignment is per pool (8), so a
 * larger alignment is had by over-allocating `align - 8` bytes and keeping the block's real
 * address; its `realloc` leaks the old block when it moves one (6.1.x), so a resize is
 * malloc + copy + free.
 */
export class ThingEfficiencyTarget implements EfficiencyTarget {
  private readonly pool: MemPool;
  private readonly u8: Uint8Array;
  /** Aligned address handed out -> the pool's block address. */
  private readonly blockOf = new Map<number, number>();

  constructor(readonly heapBytes: number) {
    const buffer = new ArrayBuffer(heapBytes);
    this.pool = new MemPool({ buf: buffer });
    this.u8 = new Uint8Array(buffer);
  }

  alloc(size: number, align: number): number {
    const block = this.pool.malloc(Math.max(size, 1) + align - 8);
    if (block === 0) return 0;
    const address = Math.ceil(block / align) * align;
    this.blockOf.set(address, block);
    return address;
  }

  realloc(address: number, oldSize: number, size: number, align: number): number {
    const moved = this.alloc(size, align);
    if (moved === 0) return 0;
    this.u8.copyWithin(moved, address, address + Math.min(oldSize, size));
    this.free(address);
    return moved;
  }

  free(address: number): void {
    this.pool.free(this.blockOf.get(address)!);
    this.blockOf.delete(address);
  }

  verifyEmpty(): void {
    const stats = this.pool.stats();
    if (stats.used.count !== 0) throw new Error(`@thi.ng/malloc still has ${stats.used.count} used blocks after freeing every block`);
  }

  close(): void {
    this.blockOf.clear();
  }
}
