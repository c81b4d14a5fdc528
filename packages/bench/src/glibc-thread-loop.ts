/**
 * The per-thread loop of bench-malloc-thread, over any allocator whose blocks are byte
 * offsets into one buffer (every heaplab backend, @thi.ng/malloc and the bump allocator).
 *
 * The timed loop allocates nothing on the JS heap: slots are a `Float64Array` (addresses may
 * reach 2^32), the fill is 8-byte stores through a `Float64Array` made once plus a short
 * tail (a `TypedArray.fill` call costs twice as much on these small blocks, and 32-bit
 * stores half again as much as 8-byte ones: the fill is the largest cost of an iteration
 * here, and it would hide the allocators' differences), and the stop flag is a word of a
 * shared `Int32Array`.
 */

import type { BenchTables } from './tables.js';
import { NUM_BLOCK_SIZES, NUM_OFFSETS, WORKING_SET_SIZE } from './tables.js';

/** The two calls the loop makes. Blocks must be 4-byte aligned (all here are 8-aligned). */
export interface AddressAllocator {
  /** A block of `size` bytes, or 0 when there is no room. */
  malloc(size: number): number;
  free(address: number): void;
}

/** Views over the buffer the allocator's addresses index. */
export interface LoopMemory {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly f64: Float64Array;
}

/** When the loop ends: whichever comes first. */
export interface LoopLimits {
  /** Word 0 becomes non-zero when the main thread's timer fires. */
  readonly stop: Int32Array;
  /** `performance.now()` value at which to stop; `Infinity` in workers, which use `stop`. */
  readonly deadline: number;
  /** Iterations at most (`Infinity` for a timed run; a small number in tests). */
  readonly maxIterations: number;
}

/** What one thread's loop did. */
export interface LoopOutcome {
  iterations: number;
  /** This thread's elapsed time in the loop, in seconds (upstream sums these). */
  seconds: number;
  /** One past the highest byte any block reached (the footprint's high-water mark). */
  highWater: number;
}

/**
 * The stop flag and the clock are read once per this many iterations. The C loop reads a
 * `volatile` flag each iteration, which costs nothing there; an `Atomics.load` costs about
 * ten plain loads here and `performance.now()` far more, so they are batched. A batch is
 * at most a few microseconds, well below any timer's resolution.
 */
const STOP_CHECK_INTERVAL = 64;

/** Byte value times this fills the four bytes of a word. */
const BYTE_TO_WORD = 0x01010101;

/**
 * For each byte value, the float64 whose eight bytes all hold it. Stored through a
 * `Float64Array`, these keep their bits (NaN patterns included: a typed-array store copies
 * the bits of an unboxed double; the verify mode would catch it if one did not).
 */
const FILL_DOUBLES = new Float64Array(
  BigUint64Array.from({ length: 256 }, (_, byte) => BigInt(byte) * 0x0101010101010101n).buffer,
);

/**
 * Runs bench-malloc-thread's loop for one thread, with its own 1024 empty slots.
 * Both cursors are advanced before use, so the first iteration takes `offsets[1]` and
 * `sizes[1]`; every thread runs the same sequence. Nothing is freed at the end: a thread
 * leaves with its blocks live, as the C benchmark does.
 * @param verify check that every byte of a block still holds its fill before freeing it
 * @throws Error when `malloc` returns 0, or in verify mode when a block lost its bytes
 */
export function runGlibcThreadLoop(
  allocator: AddressAllocator,
  memory: LoopMemory,
  tables: BenchTables,
  limits: LoopLimits,
  verify: boolean,
): LoopOutcome {
  const { u8, u32 } = memory;
  const { sizes, offsets } = tables;
  const { stop, deadline, maxIterations } = limits;
  const slots = new Float64Array(WORKING_SET_SIZE);
  // Only verify mode needs each slot's size and fill byte.
  const slotSizes = new Uint32Array(WORKING_SET_SIZE);
  const slotFill = new Uint8Array(WORKING_SET_SIZE);
  let offsetCursor = 0;
  let sizeCursor = 0;
  let iterations = 0;
  let highWater = 0;
  const started = performance.now();
  while (iterations < maxIterations) {
    if (iterations % STOP_CHECK_INTERVAL === 0 && (Atomics.load(stop, 0) !== 0 || performance.now() >= deadline)) {
      break;
    }
    offsetCursor = (offsetCursor + 1) & (NUM_OFFSETS - 1);
    sizeCursor = sizeCursor + 1 === NUM_BLOCK_SIZES ? 0 : sizeCursor + 1;
    const slot = offsets[offsetCursor]!;
    const size = sizes[sizeCursor]!;
    const held = slots[slot]!;
    if (held !== 0) {
      if (verify) verifyFill(u8, u32, held, slotSizes[slot]!, slotFill[slot]!, slot);
      allocator.free(held);
    }
    const address = allocator.malloc(size);
    if (address === 0) throw new Error(`malloc(${size}) returned 0 after ${iterations} iterations: the heap is full`);
    slots[slot] = address;
    const fill = iterations & 0xff;
    fillBytes(memory, address, size, fill);
    if (verify) {
      slotSizes[slot] = size;
      slotFill[slot] = fill;
    }
    const end = address + size;
    if (end > highWater) highWater = end;
    iterations++;
  }
  return { iterations, seconds: (performance.now() - started) / 1000, highWater };
}

/** Writes `fill` into the `size` bytes at `address` (8-byte aligned, as every block here). */
export function fillBytes(memory: LoopMemory, address: number, size: number, fill: number): void {
  const double = FILL_DOUBLES[fill]!;
  const f64 = memory.f64;
  const first = address >>> 3;
  const doubles = size >>> 3;
  for (let i = 0; i < doubles; i++) f64[first + i] = double;
  let at = address + doubles * 8;
  const end = address + size;
  if (end - at >= 4) {
    memory.u32[at >>> 2] = fill * BYTE_TO_WORD;
    at += 4;
  }
  const u8 = memory.u8;
  for (; at < end; at++) u8[at] = fill;
}

/**
 * Checks that the `size` bytes at `address` all hold `fill`.
 * @throws Error naming the slot, the address and the first wrong byte
 */
export function verifyFill(
  u8: Uint8Array,
  u32: Uint32Array,
  address: number,
  size: number,
  fill: number,
  slot: number,
): void {
  const word = (fill * BYTE_TO_WORD) >>> 0;
  const firstWord = address >>> 2;
  const words = size >>> 2;
  for (let i = 0; i < words; i++) {
    if (u32[firstWord + i] !== word) failVerify(u8, address, size, fill, slot);
  }
  for (let at = address + (words << 2), end = address + size; at < end; at++) {
    if (u8[at] !== fill) failVerify(u8, address, size, fill, slot);
  }
}

function failVerify(u8: Uint8Array, address: number, size: number, fill: number, slot: number): never {
  let offset = 0;
  while (offset < size && u8[address + offset] === fill) offset++;
  throw new Error(
    `verify: the ${size}-byte block in slot ${slot} at 0x${address.toString(16)} has byte ${offset} = ` +
      `${u8[address + offset]}, expected ${fill}: another allocation overlapped it`,
  );
}
