/**
 * Timing single malloc and free calls (docs/workloads/latency.md): a level's heap state is
 * built off the clock, then each step times one malloc (or a batch of k) and one free (or k)
 * of the transient blocks that ride on it, and records each sample into an HDR histogram.
 */

import { PAGE_SIZE, Random } from '@heaplab/core';
import { build, type Histogram } from 'hdr-histogram-js';

import { createBackendHeap } from '../../contenders/backends.js';
import type { Contender } from '../../contenders/contender.js';
import { createThingBuffer, openThingPool } from '../../contenders/thing-pool.js';
import type { AddressAllocator } from '../../run/address-allocator.js';
import type { ClockCalibration } from './clock.js';
import { drawLatencySize } from './sizes.js';

/** The heap states calls are timed in. */
export const LATENCY_LEVELS = ['fresh', 'fragmented'] as const;
export type LatencyLevel = (typeof LATENCY_LEVELS)[number];

/** The calls timed. */
export const LATENCY_OPS = ['malloc', 'free'] as const;
export type LatencyOp = (typeof LATENCY_OPS)[number];

/**
 * `fragmented`: blocks allocated before timing starts; every other one (by allocation order)
 * is freed again, leaving about this many / 2 holes between the kept ones.
 */
export const FRAGMENT_BLOCKS = 8192;
/**
 * The transient blocks the timed calls allocate and free: live between their malloc and
 * their free, so a timed free finds a block of some age, not the one just allocated.
 */
export const TRANSIENT_BLOCKS = 64;
/** The most calls one sample may batch. */
export const MAX_BATCH = 64;
/** Calls of the pilot that decides the batch (each timed alone). */
export const PILOT_CALLS = 1000;
/** Steps between two looks at the deadline (off the clock). */
const DEADLINE_CHECK_STEPS = 64;
/** Every run's heap (heaplab backends and @thi.ng/malloc alike): room for the level many times over. */
export const LATENCY_HEAP_BYTES = 64 << 20;

/** An allocator the workload can time: its calls, and what it says of its free blocks. */
export interface LatencyTarget {
  readonly allocator: AddressAllocator;
  /** The allocator's own count of free blocks (the level's fragmentation, as it sees it). */
  freeBlocks(): number;
  /**
   * Called once every block was freed.
   * @throws Error unless the heap is empty again
   */
  verifyEmpty(): void;
  /** Gives the heap back. */
  close(): void;
}

/**
 * A fresh, pre-faulted heap for `contender` (a heaplab backend or @thi.ng/malloc): page
 * faults are the kernel's cost, not the allocator's, so no timed call may take the first one.
 * @throws Error for a contender the workload does not time, AllocError from the heap's creation
 */
export function createLatencyTarget(contender: Contender): LatencyTarget {
  if (contender.kind === 'heaplab') {
    const heap = createBackendHeap(contender.spec, LATENCY_HEAP_BYTES);
    heap.prefault();
    return {
      allocator: heap,
      freeBlocks: () => heap.stats().freeBlocks,
      verifyEmpty() {
        const report = heap.check();
        if (report.liveBlocks !== 0) throw new Error(`the heap is not empty after the run: ${report.liveBlocks} live blocks`);
      },
      close: () => heap.detach(),
    };
  }
  if (contender.kind === 'thing') {
    const buffer = createThingBuffer(LATENCY_HEAP_BYTES);
    const bytes = new Uint8Array(buffer);
    for (let at = 0; at < bytes.length; at += PAGE_SIZE) bytes[at] = 0;
    const pool = openThingPool(buffer);
    return {
      allocator: pool,
      freeBlocks: () => pool.stats().free.count,
      verifyEmpty() {
        const used = pool.stats().used.count;
        if (used !== 0) throw new Error(`@thi.ng/malloc still has ${used} used blocks after the run`);
      },
      close: () => undefined,
    };
  }
  throw new Error(`latency does not time ${contender.label}`);
}

/** A histogram of nanoseconds from the kept library: 3 significant digits, from 1 ns up. */
export function latencyHistogram(): Histogram {
  return build({ lowestDiscernibleValue: 1, numberOfSignificantValueDigits: 3, bitBucketSize: 32, autoResize: true });
}

/** One histogram per op, for one (contender, level); every run of the row records into it. */
export type LatencyHistograms = Record<LatencyOp, Histogram>;

/** A fresh pair. */
export function latencyHistograms(): LatencyHistograms {
  return { malloc: latencyHistogram(), free: latencyHistogram() };
}

/** The percentiles a row reports, in ns, as the histogram gives them. */
export interface LatencyFigures {
  count: number;
  p50Ns: number;
  p90Ns: number;
  p99Ns: number;
  p999Ns: number;
  p9999Ns: number;
  maxNs: number;
  meanNs: number;
}

/**
 * `histogram`'s figures: each percentile a value the histogram holds as equivalent to it,
 * but never above the largest value recorded. The histogram answers a percentile with the
 * top of its bucket (4,095,999 for a bucket that holds 4,095,869), which in the top bucket
 * is above `maxValue`, the value itself; a 99.9 % figure above the maximum would be no
 * latency any call had.
 */
export function latencyFigures(histogram: Histogram): LatencyFigures {
  const maxNs = histogram.maxValue;
  const at = (percentile: number): number => Math.min(histogram.getValueAtPercentile(percentile), maxNs);
  return {
    count: histogram.totalCount,
    p50Ns: at(50),
    p90Ns: at(90),
    p99Ns: at(99),
    p999Ns: at(99.9),
    p9999Ns: at(99.99),
    maxNs,
    meanNs: histogram.mean,
  };
}

/** A block or a failure: the level must fit, so a full heap is an error, not a figure. */
function mustAllocate(allocator: AddressAllocator, size: number): number {
  const address = allocator.malloc(size);
  if (address === 0) throw new Error(`no room for ${size} bytes: the latency level does not fit the heap`);
  return address;
}

/**
 * Builds `level` on an empty heap and returns the blocks it keeps live (freed by the caller
 * at the end): none for `fresh`; for `fragmented`, the even-numbered of `FRAGMENT_BLOCKS`
 * blocks of the size mix, the odd-numbered ones freed again so that holes lie between them.
 * @throws Error when the heap has no room
 */
export function prepareLevel(allocator: AddressAllocator, level: LatencyLevel, random: Random): Float64Array {
  if (level === 'fresh') return new Float64Array(0);
  const all = new Float64Array(FRAGMENT_BLOCKS);
  for (let index = 0; index < FRAGMENT_BLOCKS; index++) all[index] = mustAllocate(allocator, drawLatencySize(random));
  const kept = new Float64Array(FRAGMENT_BLOCKS / 2);
  for (let index = 0; index < FRAGMENT_BLOCKS; index++) {
    if (index % 2 === 0) kept[index / 2] = all[index]!;
    else allocator.free(all[index]!);
  }
  return kept;
}

/**
 * The calls per sample for a clock's resolution: 1 when a call takes at least the resolution;
 * otherwise enough calls that a batch spans it (at most `MAX_BATCH`).
 */
export function batchFor(callNs: number, resolutionNs: number): number {
  if (!(callNs > 0)) return MAX_BATCH;
  return callNs >= resolutionNs ? 1 : Math.min(MAX_BATCH, Math.ceil(resolutionNs / callNs));
}

/** What one timed run of a level did. */
export interface LevelRunFigures {
  /** Calls per sample (see `batchFor`). */
  batch: number;
  /** Timed steps: each one malloc sample and one free sample. */
  steps: number;
  /** Samples of each op recorded as 0 ns: the interval was no longer than the clock's cost. */
  zeroSamples: Record<LatencyOp, number>;
  /** The allocator's free blocks when timing began and when it ended. */
  freeBlocksAtStart: number;
  freeBlocksAtEnd: number;
  /** Wall time of the timed steps (the recording included). */
  seconds: number;
}

/**
 * The calls per sample of a run: a number, or `pilot`: a pilot (off the record) decides it
 * before timing. (A warm-up decides it better, from its own samples: see rows.ts.)
 */
export type BatchChoice = number | 'pilot';

/** How a timed run runs. */
export interface LevelRunParams {
  level: LatencyLevel;
  calibration: ClockCalibration;
  batch: BatchChoice;
  /** Seconds of timed steps; Infinity to stop by `maxSteps` only. */
  durationSeconds: number;
  maxSteps: number;
  seed: number;
}

/**
 * One run: builds `params.level` on `target`'s empty heap, fills the transient blocks,
 * runs the pilot if `params.batch` asks for one, then until the duration or `maxSteps`: draws k sizes
 * (off the clock), times k mallocs as one interval, draws k transient blocks to free at
 * random (off the clock), times their k frees as one interval. Each interval less the clock's
 * cost, over k, is one sample of its op's histogram. Every block is freed at the end and the
 * heap must be empty again.
 * @throws Error when the heap fills up or is not empty at the end
 */
export function runLevel(target: LatencyTarget, params: LevelRunParams, histograms: LatencyHistograms): LevelRunFigures {
  const { allocator } = target;
  const { clock, costNs } = params.calibration;
  const random = new Random(params.seed);
  const kept = prepareLevel(allocator, params.level, random);
  const transient = new Float64Array(TRANSIENT_BLOCKS + MAX_BATCH);
  let live = 0;
  while (live < TRANSIENT_BLOCKS) transient[live++] = mustAllocate(allocator, drawLatencySize(random));
  const batch = params.batch === 'pilot' ? pilotBatch(allocator, random, params.calibration) : params.batch;
  const sizes = new Float64Array(batch);
  const addresses = new Float64Array(batch);
  // A sample below the clock's cost (its jitter) is recorded as 0: a histogram has no negative values.
  const record = (histogram: Histogram, intervalNs: number): number => {
    const perCall = Math.max(0, Math.round((intervalNs - costNs) / batch));
    histogram.recordValue(perCall);
    return perCall === 0 ? 1 : 0;
  };
  const freeBlocksAtStart = target.freeBlocks();
  const zeroSamples = { malloc: 0, free: 0 };
  let steps = 0;
  const started = performance.now();
  const deadline = started + params.durationSeconds * 1000;
  for (; steps < params.maxSteps; steps++) {
    if (steps % DEADLINE_CHECK_STEPS === 0 && steps > 0 && performance.now() >= deadline) break;
    for (let index = 0; index < batch; index++) sizes[index] = drawLatencySize(random);
    let start = clock.now();
    for (let index = 0; index < batch; index++) addresses[index] = allocator.malloc(sizes[index]!);
    zeroSamples.malloc += record(histograms.malloc, clock.now() - start);
    for (let index = 0; index < batch; index++) {
      if (addresses[index] === 0) throw new Error(`no room for ${sizes[index]} bytes: the latency level does not fit the heap`);
      transient[live++] = addresses[index]!;
    }
    // Victims among all transient blocks, the new ones included, removed by swapping with the last.
    for (let index = 0; index < batch; index++) {
      const victim = random.int(0, live);
      addresses[index] = transient[victim]!;
      transient[victim] = transient[--live]!;
    }
    start = clock.now();
    for (let index = 0; index < batch; index++) allocator.free(addresses[index]!);
    zeroSamples.free += record(histograms.free, clock.now() - start);
  }
  const seconds = (performance.now() - started) / 1000;
  const freeBlocksAtEnd = target.freeBlocks();
  for (let index = 0; index < live; index++) allocator.free(transient[index]!);
  for (const address of kept) allocator.free(address);
  target.verifyEmpty();
  return { batch, steps, zeroSamples, freeBlocksAtStart, freeBlocksAtEnd, seconds };
}

/**
 * Times `PILOT_CALLS` mallocs one by one, then their frees one by one, and returns the batch
 * for the faster op's median call (the typical call, which the mean of a mix with rare slow
 * paths overstates). One batch for both ops keeps their counts equal, so the transient blocks
 * stay as many. The pilot's blocks are all freed again.
 */
function pilotBatch(allocator: AddressAllocator, random: Random, calibration: ClockCalibration): number {
  const { clock, costNs } = calibration;
  const sizes = new Float64Array(PILOT_CALLS);
  const blocks = new Float64Array(PILOT_CALLS);
  const mallocNs = new Float64Array(PILOT_CALLS);
  const freeNs = new Float64Array(PILOT_CALLS);
  for (let index = 0; index < PILOT_CALLS; index++) sizes[index] = drawLatencySize(random);
  for (let index = 0; index < PILOT_CALLS; index++) {
    const start = clock.now();
    blocks[index] = allocator.malloc(sizes[index]!);
    mallocNs[index] = clock.now() - start - costNs;
  }
  const failed = blocks.indexOf(0);
  if (failed !== -1) {
    for (const block of blocks) if (block !== 0) allocator.free(block);
    throw new Error(`no room for ${sizes[failed]} bytes: the latency level does not fit the heap`);
  }
  for (let index = 0; index < PILOT_CALLS; index++) {
    const start = clock.now();
    allocator.free(blocks[index]!);
    freeNs[index] = clock.now() - start - costNs;
  }
  const median = (samples: Float64Array): number => samples.sort()[PILOT_CALLS >> 1]!;
  return batchFor(Math.min(median(mallocNs), median(freeNs)), calibration.resolutionNs);
}
