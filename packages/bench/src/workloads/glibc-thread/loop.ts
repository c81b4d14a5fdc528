/**
 * The per-thread loop of bench-malloc-thread (docs/workloads/glibc-thread.md), over any
 * allocator whose blocks are byte offsets into one buffer (every heaplab backend,
 * @thi.ng/malloc and the bump allocator).
 *
 * The timed loop allocates nothing on the JS heap: slots are a `Uint32Array` (see
 * `LoopState`), the stop flag is a word of a shared `Int32Array`, and the fill is a few
 * 8-byte stores through a `DataView` (see `fillBytes`): the fill is the largest cost of an
 * iteration after the allocator, and a slow one would hide the allocators' differences.
 */

import type { AddressAllocator, LoopLimits, LoopMemory } from '../../run/address-allocator.js';
import type { ThreadOutcome } from '../../run/thread-loop.js';
import type { RequestTables } from './request-tables.js';
import { NUM_BLOCK_SIZES, NUM_OFFSETS, WORKING_SET_SIZE } from './request-tables.js';

/**
 * Iterations per batch: the stop flag and the clock are read between batches. The C loop
 * reads a `volatile` flag each iteration, which costs nothing there; here `performance.now()`
 * costs about 50 ns, and read every 64 iterations it took a few percent of mimalloc's
 * iteration. A batch of 1024 takes about 50 microseconds with mimalloc and about 0.2 ms
 * with the slowest contender (a lock-based backend with two threads, near 5 M/s), so a run
 * stops at most that late. That does not bias the figures: a thread's rate is its
 * iterations over its own time in the loop, the late batch included in both.
 */
const BATCH_ITERATIONS = 1024;

/** Byte value times this fills the four bytes of a word. */
const BYTE_TO_WORD = 0x01010101;

/**
 * For each byte value, the float64 whose eight bytes all hold it. Stored with
 * `DataView.setFloat64`, these keep their bits (NaN patterns included: the store copies the
 * bits of an unboxed double; a test checks every byte value, and verify mode would catch it).
 */
const FILL_DOUBLES = new Float64Array(BigUint64Array.from({ length: 256 }, (_, byte) => BigInt(byte) * 0x0101010101010101n).buffer);

/**
 * One thread's state between batches. Slots are a `Uint32Array`: every address here is
 * below 2^32, and a 32-bit integer passes to `free` without the float-to-integer
 * conversions a `Float64Array` would cost.
 */
export class LoopState {
  readonly slots = new Uint32Array(WORKING_SET_SIZE);
  /** Verify mode only: each slot's size and fill byte. */
  readonly slotSizes = new Uint32Array(WORKING_SET_SIZE);
  readonly slotFill = new Uint8Array(WORKING_SET_SIZE);
  offsetCursor = 0;
  sizeCursor = 0;
  iterations = 0;
  highWater = 0;
}

/**
 * Runs bench-malloc-thread's loop for one thread, with its own 1024 empty slots.
 * Both cursors are advanced before use, so the first iteration takes `offsets[1]` and
 * `sizes[1]`; every thread runs the same sequence. Nothing is freed at the end: a thread
 * leaves with its blocks live, as the C benchmark does.
 *
 * The iterations run in batches of `BATCH_ITERATIONS`, each a call of `runBatch`, which
 * V8 then compiles as a function of its own. A loop that ran for the whole duration would
 * be compiled by on-stack replacement instead, whose code was measured slower here.
 * @param verify check that every byte of a block still holds its fill before freeing it
 * @throws Error when `malloc` returns 0, or in verify mode when a block lost its bytes
 */
export function runGlibcThreadLoop(allocator: AddressAllocator, memory: LoopMemory, tables: RequestTables, limits: LoopLimits, verify: boolean): ThreadOutcome {
  const { stop, deadline, maxIterations } = limits;
  const state = new LoopState();
  const started = performance.now();
  while (state.iterations < maxIterations && Atomics.load(stop, 0) === 0 && performance.now() < deadline) {
    runBatch(allocator, memory, tables, state, Math.min(BATCH_ITERATIONS, maxIterations - state.iterations), verify);
  }
  return { iterations: state.iterations, seconds: (performance.now() - started) / 1000, highWater: state.highWater };
}

/**
 * Runs `count` iterations of the loop from `state`, and saves where it got to (exported for
 * tools that interleave two threads' loops in one thread, tools/line-sharing.ts).
 */
export function runBatch(allocator: AddressAllocator, memory: LoopMemory, tables: RequestTables, state: LoopState, count: number, verify: boolean): void {
  const { sizes, offsets } = tables;
  const { slots, slotSizes, slotFill } = state;
  let { offsetCursor, sizeCursor, iterations, highWater } = state;
  for (const last = iterations + count; iterations < last; iterations++) {
    offsetCursor = (offsetCursor + 1) & (NUM_OFFSETS - 1);
    sizeCursor = sizeCursor + 1 === NUM_BLOCK_SIZES ? 0 : sizeCursor + 1;
    const slot = offsets[offsetCursor]!;
    const size = sizes[sizeCursor]!;
    const held = slots[slot]!;
    if (held !== 0) {
      if (verify) verifyFill(memory.u8, memory.u32, held, slotSizes[slot]!, slotFill[slot]!, slot);
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
  }
  state.offsetCursor = offsetCursor;
  state.sizeCursor = sizeCursor;
  state.iterations = iterations;
  state.highWater = highWater;
}

/**
 * Writes `fill` into the `size` bytes at `address`, as `memset` does for small sizes: whole
 * 8-byte stores, the last one ending exactly at the block's end (it overlaps the one before
 * when `size` is not a multiple of 8), or two overlapping 4-byte stores below 8 bytes.
 * Nothing outside the block is written, and there is no byte loop, whose unpredictable trip
 * count would cost more than the stores.
 */
export function fillBytes(memory: LoopMemory, address: number, size: number, fill: number): void {
  const view = memory.view;
  const end = address + size;
  if (size >= 8) {
    const double = FILL_DOUBLES[fill]!;
    const last = end - 8;
    for (let at = address; at < last; at += 8) view.setFloat64(at, double, true);
    view.setFloat64(last, double, true);
  } else if (size >= 4) {
    const word = fill * BYTE_TO_WORD;
    view.setUint32(address, word, true);
    view.setUint32(end - 4, word, true);
  } else {
    fillTiny(view, address, end, fill);
  }
}

/** Sizes below 4 (never in bench-malloc-thread): a call of its own keeps `fillBytes` small to inline. */
function fillTiny(view: DataView, address: number, end: number, fill: number): void {
  for (let at = address; at < end; at++) view.setUint8(at, fill);
}

/**
 * Checks that the `size` bytes at `address` all hold `fill`.
 * @throws Error naming the slot, the address and the first wrong byte
 */
export function verifyFill(u8: Uint8Array, u32: Uint32Array, address: number, size: number, fill: number, slot: number): void {
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
