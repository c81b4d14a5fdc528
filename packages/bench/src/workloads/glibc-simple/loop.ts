/**
 * The glibc-simple loop (docs/workloads/glibc-simple.md), glibc's bench-malloc-simple as
 * mimalloc-bench carries it: one thread allocates n blocks of one size, writes every byte of
 * each, frees the first half in the order they came (FIFO) and the second half from the last
 * one back (LIFO), and does that again and again, for n in 25, 100, 400, 1600 and sizes 16,
 * 32, 64.
 *
 * The original runs each (size, n) case for a fixed 2,000,000 blocks; here a case runs
 * `CASE_BLOCKS` blocks (so every case weighs the same, as there), the twelve cases follow each
 * other in the original's order, and the sequence repeats until the run's time is over.
 * The loop counts blocks, each one `malloc` and one `free`.
 */

import type { AddressAllocator, LoopLimits, LoopMemory } from '../../run/address-allocator.js';
import type { ThreadOutcome } from '../../run/thread-loop.js';

/** Block sizes, in the original's order: its default 16, then twice and four times that. */
export const SIMPLE_SIZES: readonly number[] = [16, 32, 64];
/** Blocks live at once in each case, in the original's order. */
export const SIMPLE_BLOCK_COUNTS: readonly number[] = [25, 100, 400, 1600];
/**
 * Blocks of one case before the next: the original's 2,000,000 over 125, a multiple of
 * every block count, so each case is whole iterations (640 of 25 blocks ... 10 of 1600).
 */
export const CASE_BLOCKS = 16_000;
/** Cases in one pass over the sizes and the counts. */
export const SIMPLE_CASES = SIMPLE_SIZES.length * SIMPLE_BLOCK_COUNTS.length;
/** Blocks of one pass over the twelve cases. */
export const PASS_BLOCKS = SIMPLE_CASES * CASE_BLOCKS;

const MAX_BLOCKS = Math.max(...SIMPLE_BLOCK_COUNTS);

/**
 * Blocks between two reads of the stop flag and the clock. An iteration of 25 blocks takes
 * about a microsecond, so reading the clock (tens of nanoseconds) before each would cost a
 * few percent; at least this many blocks pass between reads instead.
 */
const BLOCKS_PER_CHECK = 1024;

/** Byte value times this fills the four bytes of a word. */
const BYTE_TO_WORD = 0x01010101;

/** Where a thread is in the sequence of cases. */
export class SimpleCursor {
  /** 0 .. SIMPLE_CASES - 1: size `caseIndex / 4`, count `caseIndex % 4`. */
  caseIndex = 0;
  /** Iterations of the current case done. */
  iterationInCase = 0;

  get size(): number {
    return SIMPLE_SIZES[Math.floor(this.caseIndex / SIMPLE_BLOCK_COUNTS.length)]!;
  }

  get blocks(): number {
    return SIMPLE_BLOCK_COUNTS[this.caseIndex % SIMPLE_BLOCK_COUNTS.length]!;
  }

  /** Counts one iteration of the current case, and moves to the next case after its last. */
  advance(): void {
    this.iterationInCase++;
    if (this.iterationInCase * this.blocks === CASE_BLOCKS) {
      this.iterationInCase = 0;
      this.caseIndex = (this.caseIndex + 1) % SIMPLE_CASES;
    }
  }
}

/**
 * Runs iterations until a limit; `iterations` in the outcome counts blocks. The limit on
 * iterations is checked between iterations, so a run bounded by it ends at the first whole
 * iteration that reaches it.
 * @throws Error when `malloc` returns 0, or in verify mode when a block lost its bytes
 */
export function runSimpleLoop(allocator: AddressAllocator, memory: LoopMemory, limits: LoopLimits, verify: boolean): ThreadOutcome {
  const { stop, deadline, maxIterations } = limits;
  const live = new Uint32Array(MAX_BLOCKS);
  const cursor = new SimpleCursor();
  let blocks = 0;
  let highWater = 0;
  let nextCheck = BLOCKS_PER_CHECK;
  const started = performance.now();
  while (blocks < maxIterations) {
    if (blocks >= nextCheck) {
      if (Atomics.load(stop, 0) !== 0 || performance.now() >= deadline) break;
      nextCheck = blocks + BLOCKS_PER_CHECK;
    }
    const count = cursor.blocks;
    const top = runIteration(allocator, memory, live, cursor.size, count, verify);
    if (top > highWater) highWater = top;
    blocks += count;
    cursor.advance();
  }
  return { iterations: blocks, seconds: (performance.now() - started) / 1000, highWater };
}

/**
 * One iteration of the original: `count` blocks of `size` bytes, each filled as it comes
 * (block i with byte i & 0xff), then the first half freed in order and the rest from the
 * last back. Nothing stays live after it.
 * @returns one past the highest byte a block reached
 */
export function runIteration(allocator: AddressAllocator, memory: LoopMemory, live: Uint32Array, size: number, count: number, verify: boolean): number {
  const u32 = memory.u32;
  const words = size >>> 2;
  let top = 0;
  for (let i = 0; i < count; i++) {
    const address = allocator.malloc(size);
    if (address === 0) throw new Error(`malloc(${size}) returned 0 with ${i} of ${count} blocks live: the heap is full`);
    live[i] = address;
    // Every size is a multiple of 4 and every block 4-aligned: whole words, one value.
    const word = ((i & 0xff) * BYTE_TO_WORD) >>> 0;
    const first = address >>> 2;
    for (let w = 0; w < words; w++) u32[first + w] = word;
    if (address + size > top) top = address + size;
  }
  const half = count >>> 1;
  for (let i = 0; i < half; i++) freeBlock(allocator, u32, live[i]!, words, i, verify);
  for (let i = count - 1; i >= half; i--) freeBlock(allocator, u32, live[i]!, words, i, verify);
  return top;
}

function freeBlock(allocator: AddressAllocator, u32: Uint32Array, address: number, words: number, index: number, verify: boolean): void {
  if (verify) {
    const word = ((index & 0xff) * BYTE_TO_WORD) >>> 0;
    const first = address >>> 2;
    for (let w = 0; w < words; w++) {
      if (u32[first + w] !== word) {
        throw new Error(
          `verify: block ${index} at 0x${address.toString(16)} has word ${w} = 0x${u32[first + w]!.toString(16)}, ` +
            `expected 0x${word.toString(16)}: another allocation overlapped it`,
        );
      }
    }
  }
  allocator.free(address);
}

/**
 * The `system` baseline's loop: `new Uint8Array(size)` per block, filled with `fill`, and a
 * block is freed by dropping its reference, in the same order, for V8's collector.
 */
export function runSystemSimpleLoop(limits: LoopLimits, verify: boolean): ThreadOutcome {
  const { stop, deadline, maxIterations } = limits;
  const none = new Uint8Array(0);
  const live: Uint8Array[] = new Array<Uint8Array>(MAX_BLOCKS).fill(none);
  const cursor = new SimpleCursor();
  let blocks = 0;
  let nextCheck = BLOCKS_PER_CHECK;
  const started = performance.now();
  while (blocks < maxIterations) {
    if (blocks >= nextCheck) {
      if (Atomics.load(stop, 0) !== 0 || performance.now() >= deadline) break;
      nextCheck = blocks + BLOCKS_PER_CHECK;
    }
    const size = cursor.size;
    const count = cursor.blocks;
    for (let i = 0; i < count; i++) live[i] = new Uint8Array(size).fill(i & 0xff);
    const half = count >>> 1;
    for (let i = 0; i < half; i++) dropBlock(live, i, none, verify);
    for (let i = count - 1; i >= half; i--) dropBlock(live, i, none, verify);
    blocks += count;
    cursor.advance();
  }
  return { iterations: blocks, seconds: (performance.now() - started) / 1000, highWater: 0 };
}

/** Drops the reference to block `index` (replaced by `none`), after checking its bytes in verify mode. */
function dropBlock(live: Uint8Array[], index: number, none: Uint8Array, verify: boolean): void {
  if (verify && live[index]!.some((byte) => byte !== (index & 0xff))) throw new Error(`verify: block ${index} lost its bytes`);
  live[index] = none;
}
