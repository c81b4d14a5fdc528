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

/**
 * The face of a heap that a run with more than `malloc`/`free`/`realloc` needs (ArceOS's
 * single-thread tests: aligned blocks, layout-checked frees, the heap's figures), and that
 * `heaplab map`'s recording allocator gives.
 */
export interface InspectableHeap extends AddressAllocator {
  alignedAlloc(align: number, size: number): number;
  /** Frees a block, checking its layout as Rust's `dealloc` does. */
  dealloc(address: number, layout: { size: number; align: number }): void;
  stats(): { usedBytes: number; availableBytes: number };
  readonly buffer: SharedArrayBuffer;
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
  /** Word 0 (`STOP_WORD`) becomes non-zero when the main thread's timer fires. */
  readonly stop: Int32Array;
  /**
   * `performance.now()` value at which to stop; `Infinity` in workers, which use `stop`. In
   * the calling thread it is set when the thread begins timing (`begin`).
   */
  deadline: number;
  /** Iterations at most (`Infinity` for a timed run; a small number in tests). */
  readonly maxIterations: number;
  /**
   * Ends this thread's untimed part (start-up, and a loop's own set-up): the run's duration
   * is counted from the moment every thread of it has begun, so a slow start-up or set-up
   * cannot eat into the timed part. Absent where nothing waits for it (tests).
   */
  begin?(): void;
}

/**
 * Ends the untimed set-up of a loop that has one (`ThreadLoop.setsUp`): tells the run this
 * thread begins timing, then refuses to go on when the run was stopped before that (another
 * thread failed, or a test's limits say so), as a thread that timed no iteration would add a
 * rate of 0 to its row, which reads as a result. Call it after the set-up, before the loop,
 * and read `limits.deadline` after it.
 * @throws Error when the run is already over
 */
export function beginTimedPart(limits: LoopLimits): void {
  limits.begin?.();
  if (limits.maxIterations > 0 && (Atomics.load(limits.stop, STOP_WORD) !== 0 || performance.now() >= limits.deadline)) {
    throw new Error('the run was over before this thread began timing (it was stopped during its start-up or set-up)');
  }
}

/**
 * The run's shared control words (`ThreadTask.stopBuffer`): the stop flag the main thread's
 * timer raises, and how many threads have begun timing, which the main thread waits on before
 * it starts that timer.
 */
export const STOP_WORD = 0;
export const BEGUN_WORD = 1;
export const RUN_CONTROL_BYTES = 8;
