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

/**
 * Refuses a timed loop that would start after its run is over. In a run of several threads
 * the timer starts before the workers exist, so a worker's start-up (tens of milliseconds,
 * much more on a loaded machine) and a workload's untimed set-up fall within the duration;
 * when they take all of it, the thread would time no iteration and add a rate of 0 to its
 * row, which reads as a result. Called after the set-up, before the timed loop.
 * @throws Error telling the user to give the run a longer duration
 */
export function refuseLateStart(limits: LoopLimits): void {
  if (limits.maxIterations > 0 && (Atomics.load(limits.stop, 0) !== 0 || performance.now() >= limits.deadline)) {
    throw new Error('the run was over before this thread began timing (its start-up and set-up took the whole duration): use a longer --duration');
  }
}
