/**
 * What every loop that runs on addresses shares: the allocator face it calls, the views it
 * writes blocks through, and when it stops. Every heaplab backend, @thi.ng/malloc and the
 * bump allocator hand out blocks as byte offsets into one buffer, so one loop serves them all.
 */

/** The calls a loop makes. Blocks must be 4-byte aligned (all here are 8-aligned). */
export interface AddressAllocator {
  /** A block of `size` bytes, or 0 when there is no room. */
  malloc(size: number): number;
  free(address: number): void;
  /**
   * The block at `address` resized to `size` bytes, its first bytes kept (moved when it must
   * be); 0 when there is no room, the old block then still live.
   */
  realloc(address: number, size: number): number;
}

/** Views over the buffer the allocator's addresses index (`loopMemory` makes them). */
export interface LoopMemory {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  /** For the fill's unaligned 8-byte stores. */
  readonly view: DataView;
}

/** The loop's views over `buffer`. */
export function loopMemory(buffer: ArrayBufferLike): LoopMemory {
  return { u8: new Uint8Array(buffer), u32: new Uint32Array(buffer), view: new DataView(buffer) };
}

/** When a loop ends: whichever comes first. */
export interface LoopLimits {
  /** Word 0 becomes non-zero when the main thread's timer fires. */
  readonly stop: Int32Array;
  /** `performance.now()` value at which to stop; `Infinity` in workers, which use `stop`. */
  readonly deadline: number;
  /** Iterations at most (`Infinity` for a timed run; a small number in tests). */
  readonly maxIterations: number;
}
