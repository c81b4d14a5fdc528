/**
 * The allocator face a heap map's run goes through: every call is passed to the heap and
 * counted, and each live block's requested size is kept, so that internal fragmentation and
 * the extra memory rate can be measured for every backend (a size-class backend keeps no
 * requested sizes, but the workload knows what it asked for). After each call a hook sees
 * the count: that is where a moment ("50 %" of the calls) is taken.
 */

import type { GlobalAllocator, Layout } from '@heaplab/core';

import type { InspectableHeap } from '../run/address-allocator.js';

/** Called after every allocator call with the number of calls so far (this one included). */
export type CallHook = (calls: number) => void;

/** A heap counted call by call; serves the thread loops and ArceOS's single-thread tests. */
export class RecordingAllocator implements InspectableHeap {
  /** Allocator calls so far: malloc, free, realloc, alignedAlloc and dealloc, failed ones too. */
  calls = 0;
  /** Bytes asked for, over the live blocks this wrapper handed out. */
  requestedBytes = 0;
  /** Each live block's requested size, by address. */
  readonly requested = new Map<number, number>();

  constructor(
    readonly heap: GlobalAllocator,
    private readonly hook: CallHook = () => undefined,
  ) {}

  get buffer(): SharedArrayBuffer {
    return this.heap.buffer;
  }

  malloc(size: number): number {
    const address = this.heap.malloc(size);
    this.remember(address, size);
    this.tick();
    return address;
  }

  alignedAlloc(align: number, size: number): number {
    const address = this.heap.alignedAlloc(align, size);
    this.remember(address, size);
    this.tick();
    return address;
  }

  free(address: number): void {
    this.heap.free(address);
    this.forget(address);
    this.tick();
  }

  dealloc(address: number, layout: Layout): void {
    this.heap.dealloc(address, layout);
    this.forget(address);
    this.tick();
  }

  realloc(address: number, size: number): number {
    const moved = this.heap.realloc(address, size);
    // 0 leaves the old block live with its old request.
    if (moved !== 0) {
      this.forget(address);
      this.remember(moved, size);
    }
    this.tick();
    return moved;
  }

  stats(): { usedBytes: number; availableBytes: number } {
    return this.heap.stats();
  }

  private remember(address: number, size: number): void {
    if (address === 0) return;
    this.requested.set(address, size);
    this.requestedBytes += size;
  }

  private forget(address: number): void {
    const size = this.requested.get(address);
    if (size === undefined) return;
    this.requested.delete(address);
    this.requestedBytes -= size;
  }

  private tick(): void {
    this.calls++;
    this.hook(this.calls);
  }
}
