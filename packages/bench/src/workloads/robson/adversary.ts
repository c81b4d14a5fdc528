/**
 * The Robson-style adversary (docs/workloads/robson.md): a fixed sequence of phases, one per
 * block size from the smallest power of two to the largest, each allocating blocks of its
 * size until the live bytes reach the limit M, then freeing every block (of any phase) that
 * it can free while leaving no hole that could hold a block of the next phase's size in the
 * address range the allocator has used. The blocks of the next phase then fit in no hole,
 * so the allocator must take fresh space for them: about M/2 more per phase against an
 * allocator that packs perfectly, which is Robson's M(1 + log2(n)/2).
 *
 * The adversary is adaptive: which blocks survive depends on the addresses the allocator
 * returned, so every allocator gets its own sequence of frees. native/robson.c runs the
 * same adversary, step for step, against the C allocators.
 */

import type { AddressAllocator, LoopMemory } from '../../run/address-allocator.js';

/** What a run is asked to do. */
export interface RobsonParams {
  /** M: the live requested bytes never exceed it. */
  readonly liveLimitBytes: number;
  /** The first phase's block size, a power of two of at least 8 bytes. */
  readonly minBlockBytes: number;
  /** The last phase's block size, a power of two, at most `liveLimitBytes`. */
  readonly maxBlockBytes: number;
  /** Stop after this many mallocs and frees (then free what is live); Infinity for the whole run. */
  readonly maxOperations: number;
  /** Check each block's fill before freeing it. */
  readonly verify: boolean;
}

/** One phase, as it ended. */
export interface RobsonPhase {
  blockBytes: number;
  /** Blocks of this size allocated by the phase. */
  allocated: number;
  /** Live requested bytes when the allocations stopped (at most M). */
  liveAfterAllocBytes: number;
  /** One past the highest byte any block reached, minus the lowest block start, after the allocations. */
  spanAfterAllocBytes: number;
  /**
   * The allocator's overhead per block of this size as the adversary measured it: the
   * smallest gap between the end of one of the phase's blocks and the start of the next in
   * address order (a header, rounding), at most `blockBytes`; 0 when no two are neighbours.
   */
  overheadBytes: number;
  /** Blocks freed by the phase's free step (of any phase's size). */
  freed: number;
  /** Live requested bytes after the free step. */
  liveAfterFreeBytes: number;
  /**
   * The largest hole the free step left in the span (from the lowest block start less
   * `overheadBytes` to the highest block end seen so far): from one live block's end (or the
   * span's start) to the next one's start less `overheadBytes` (the next block's header), or
   * to the highest end after the last block.
   * Below twice `blockBytes` plus `overheadBytes`, what a block of the next phase takes,
   * unless the allocator itself left a larger gap between the blocks it returned.
   */
  largestHoleBytes: number;
}

/** What the run measured. */
export interface RobsonOutcome {
  phases: RobsonPhase[];
  /** Mallocs and frees, the final frees included. */
  operations: number;
  /** The lowest address the allocator returned. */
  lowestAddress: number;
  /** One past the highest byte any block reached. */
  highWater: number;
  /** The most requested bytes live at once (at most M). */
  peakLiveBytes: number;
  /** Distinct pages of `TOUCH_PAGE_BYTES` that any block ever covered: the memory the allocator made the run touch. */
  touchedPages: number;
  /** False when `maxOperations` stopped the run early. */
  complete: boolean;
  /** The run's time, its allocations, frees, fills and the adversary's own sorting. */
  seconds: number;
}

/** Called after each phase's free step (tests look at the heap there). */
export type PhaseObserver = (phase: RobsonPhase) => void;

/** The page size of `RobsonOutcome.touchedPages`, as the C port counts them. */
export const TOUCH_PAGE_BYTES = 4096;

/**
 * Robson's bound for these parameters: the store that is necessary and sufficient when every
 * size is a power of two from `minBlockBytes` to `maxBlockBytes` and at most M bytes are
 * live, M(1 + log2(n)/2) - n + 1 in units of the smallest block, n = max/min (Robson 1974).
 */
export function robsonBoundBytes(liveLimitBytes: number, minBlockBytes: number, maxBlockBytes: number): number {
  const n = maxBlockBytes / minBlockBytes;
  return liveLimitBytes * (1 + Math.log2(n) / 2) - (n - 1) * minBlockBytes;
}

/**
 * Sort keys pack an address and a block's index into one exactly representable number, so
 * a plain numeric sort of a Float64Array orders the blocks by address.
 */
const INDEX_BITS = 21;
const INDEX_SCALE = 2 ** INDEX_BITS;

/** The byte every block of `size` bytes is filled with: non-zero and different for each power of two. */
export function fillByte(size: number): number {
  return 0x40 + 31 - Math.clz32(size);
}

/**
 * Checks the parameters.
 * @throws Error naming the first that is wrong
 */
export function checkRobsonParams(params: RobsonParams): void {
  const { liveLimitBytes, minBlockBytes, maxBlockBytes } = params;
  const powerOfTwo = (value: number): boolean => Number.isInteger(value) && value > 0 && (value & (value - 1)) === 0;
  if (!powerOfTwo(minBlockBytes) || minBlockBytes < 8) throw new Error(`the smallest block (${minBlockBytes}) must be a power of two of at least 8 bytes`);
  if (!powerOfTwo(maxBlockBytes) || maxBlockBytes < minBlockBytes)
    throw new Error(`the largest block (${maxBlockBytes}) must be a power of two >= the smallest`);
  if (!Number.isInteger(liveLimitBytes) || liveLimitBytes < maxBlockBytes) throw new Error(`the live limit (${liveLimitBytes}) must hold a largest block`);
  if (liveLimitBytes / minBlockBytes >= INDEX_SCALE) throw new Error(`the live limit allows more than ${INDEX_SCALE} blocks at once`);
}

/**
 * Runs the adversary on `allocator` and frees every block it still holds at the end.
 * @throws Error when `malloc` returns 0 (the heap is full), when a block's fill is wrong
 *   (with `verify`), or for bad parameters
 */
export function runRobsonAdversary(allocator: AddressAllocator, memory: LoopMemory, params: RobsonParams, observe?: PhaseObserver): RobsonOutcome {
  checkRobsonParams(params);
  const { liveLimitBytes, minBlockBytes, maxBlockBytes, maxOperations, verify } = params;
  const capacity = liveLimitBytes / minBlockBytes;
  // The live blocks, in no order; each free step keeps the survivors in the spare arrays and swaps.
  let addresses = new Float64Array(capacity);
  let sizes = new Float64Array(capacity);
  let spareAddresses = new Float64Array(capacity);
  let spareSizes = new Float64Array(capacity);
  const keys = new Float64Array(capacity);
  const touched = new Uint8Array(Math.ceil(memory.u8.length / TOUCH_PAGE_BYTES));
  let count = 0;
  let liveBytes = 0;
  let peakLiveBytes = 0;
  let lowestAddress = Infinity;
  let highWater = 0;
  let operations = 0;
  let complete = true;
  const phases: RobsonPhase[] = [];
  const { u8, u32 } = memory;

  const release = (address: number, size: number): void => {
    if (verify) {
      // Blocks are 8-aligned and their sizes multiples of 8, so the fill is whole words.
      const word = (fillByte(size) * 0x01010101) >>> 0;
      for (let at = address >>> 2, end = (address + size) >>> 2; at < end; at++) {
        if (u32[at] !== word) throw new Error(`the ${size}-byte block at ${address} lost its fill at byte ${at * 4 - address}`);
      }
    }
    allocator.free(address);
    operations++;
  };

  const started = performance.now();
  eachSize: for (let blockBytes = minBlockBytes; blockBytes <= maxBlockBytes; blockBytes *= 2) {
    // Allocate until one more block would take the live bytes past M.
    let allocated = 0;
    while (liveBytes + blockBytes <= liveLimitBytes) {
      if (operations >= maxOperations) {
        complete = false;
        break eachSize;
      }
      const address = allocator.malloc(blockBytes);
      operations++;
      if (address === 0) throw new Error(`malloc(${blockBytes}) returned 0 with ${liveBytes} bytes live: the heap is full`);
      u8.fill(fillByte(blockBytes), address, address + blockBytes);
      for (let page = Math.floor(address / TOUCH_PAGE_BYTES), last = Math.floor((address + blockBytes - 1) / TOUCH_PAGE_BYTES); page <= last; page++) {
        touched[page] = 1;
      }
      addresses[count] = address;
      sizes[count] = blockBytes;
      count++;
      allocated++;
      liveBytes += blockBytes;
      if (address < lowestAddress) lowestAddress = address;
      if (address + blockBytes > highWater) highWater = address + blockBytes;
    }
    if (liveBytes > peakLiveBytes) peakLiveBytes = liveBytes;
    const liveAfterAllocBytes = liveBytes;
    const spanAfterAllocBytes = highWater - lowestAddress;

    for (let i = 0; i < count; i++) keys[i] = addresses[i]! * INDEX_SCALE + i;
    const order = keys.subarray(0, count).sort();
    const overheadBytes = measureOverhead(order, addresses, sizes, blockBytes);

    // The free step. A block of the next phase takes 2s bytes plus the overhead, and a
    // hole's usable part ends at the next block's header: so, in address order, a block is
    // freed when the hole from the last kept block's end to the next block's start stays
    // below 2s plus twice the overhead. The span starts at the lowest block's header (the
    // lowest start less the overhead); after the last block, the high-water mark counts as
    // the start of a block.
    const holeLimit = 2 * blockBytes + 2 * overheadBytes;
    let lastEnd = lowestAddress - overheadBytes;
    let kept = 0;
    let freed = 0;
    let largestHoleBytes = 0;
    for (let rank = 0; rank < count; rank++) {
      const index = order[rank]! % INDEX_SCALE;
      const address = addresses[index]!;
      const size = sizes[index]!;
      const nextStart = rank + 1 < count ? Math.floor(order[rank + 1]! / INDEX_SCALE) : highWater + overheadBytes;
      if (nextStart - lastEnd < holeLimit && operations < maxOperations) {
        release(address, size);
        liveBytes -= size;
        freed++;
      } else {
        if (address - overheadBytes - lastEnd > largestHoleBytes) largestHoleBytes = address - overheadBytes - lastEnd;
        spareAddresses[kept] = address;
        spareSizes[kept] = size;
        kept++;
        lastEnd = address + size;
      }
    }
    if (highWater - lastEnd > largestHoleBytes) largestHoleBytes = highWater - lastEnd;
    [addresses, spareAddresses] = [spareAddresses, addresses];
    [sizes, spareSizes] = [spareSizes, sizes];
    count = kept;
    const phase: RobsonPhase = {
      blockBytes,
      allocated,
      liveAfterAllocBytes,
      spanAfterAllocBytes,
      overheadBytes,
      freed,
      liveAfterFreeBytes: liveBytes,
      largestHoleBytes,
    };
    phases.push(phase);
    observe?.(phase);
    if (operations >= maxOperations) {
      complete = false;
      break;
    }
  }
  // The blocks still live go back, so that the heap can be checked empty. (After a throw the
  // heap is not used again, so nothing is freed then.)
  for (let i = 0; i < count; i++) release(addresses[i]!, sizes[i]!);
  const seconds = (performance.now() - started) / 1000;
  let touchedPages = 0;
  for (let page = 0; page < touched.length; page++) touchedPages += touched[page]!;
  return {
    phases,
    operations,
    lowestAddress: lowestAddress === Infinity ? 0 : lowestAddress,
    highWater,
    peakLiveBytes,
    touchedPages,
    complete,
    seconds,
  };
}

/**
 * The allocator's overhead per block of `blockBytes`: the smallest gap between neighbours
 * (in address order, nothing between them) that are both of this size, at most `blockBytes`
 * (a larger gap is a boundary, not a header); 0 when no two are neighbours.
 */
function measureOverhead(order: Float64Array, addresses: Float64Array, sizes: Float64Array, blockBytes: number): number {
  let smallest = blockBytes;
  let found = false;
  for (let rank = 0; rank + 1 < order.length; rank++) {
    const index = order[rank]! % INDEX_SCALE;
    const next = order[rank + 1]! % INDEX_SCALE;
    if (sizes[index] !== blockBytes || sizes[next] !== blockBytes) continue;
    const gap = addresses[next]! - addresses[index]! - blockBytes;
    if (gap < smallest) smallest = gap;
    found = true;
  }
  return found ? smallest : 0;
}
