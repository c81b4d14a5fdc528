/**
 * The speed-of-light allocator: a bump pointer that never frees. Running the benchmark loop
 * over it measures everything except allocation (the loop, the fill, the stop checks), so
 * each backend's distance from it is what its `malloc` and `free` cost.
 *
 * Each thread bumps through its own region of the buffer, so no atomic operation is needed.
 * The pointer wraps to the region's start at its end: a block lives at most 4096 iterations
 * (the offset table's period revisits every slot used), and 4096 consecutive sizes of the
 * table sum to less than 330 KiB with rounding, so a region of 1 MiB or more never hands
 * out memory that a live block still uses.
 */

import type { AddressAllocator } from '../run/address-allocator.js';

/** Smallest region one thread may bump through (see above). */
export const MIN_BUMP_REGION_BYTES = 1 << 20;

/** A per-thread bump allocator over `[regionStart, regionEnd)`; blocks are 8-aligned. */
export class BumpAllocator implements AddressAllocator {
  private top: number;
  /** The region's first usable address: never 0, which means "no block" to the loop. */
  private readonly base: number;

  /**
   * @throws Error when the region is smaller than `MIN_BUMP_REGION_BYTES` or not 8-aligned
   */
  constructor(
    regionStart: number,
    private readonly regionEnd: number,
  ) {
    if (regionEnd - regionStart < MIN_BUMP_REGION_BYTES || regionStart % 8 !== 0) {
      throw new Error(`a bump region needs ${MIN_BUMP_REGION_BYTES} bytes at an 8-aligned start`);
    }
    this.base = regionStart === 0 ? 8 : regionStart;
    this.top = this.base;
  }

  malloc(size: number): number {
    const address = this.top;
    const next = address + ((size + 7) & ~7);
    if (next <= this.regionEnd) {
      this.top = next;
      return address;
    }
    this.top = this.base + ((size + 7) & ~7);
    return this.base;
  }

  free(_address: number): void {
    // Never frees: that is the point of the speed-of-light row.
  }

  /**
   * @throws Error always: a bump pointer keeps no block sizes, so it cannot copy a block;
   *   workloads that resize blocks do not apply to the bump baseline
   */
  realloc(_address: number, _size: number): number {
    throw new Error('the bump baseline cannot resize blocks');
  }
}
