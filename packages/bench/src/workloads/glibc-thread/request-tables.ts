/**
 * The two tables of requests of bench-malloc-thread, built once before timing from glibc's
 * `rand()` with its default seed, exactly as the C benchmark builds them (see
 * docs/workloads/glibc-thread.md): 8000 block sizes with density 1/x^2 on [4, 32768], then
 * 4096 slot offsets in [0, 1024).
 */

import { GlibcRandom, RAND_MAX } from './glibc-rand.js';

/** Entries of the size table. */
export const NUM_BLOCK_SIZES = 8000;
/** Entries of the offset table (a power of two: the cursor wraps with a mask). */
export const NUM_OFFSETS = 4096;
/** Block slots per thread. */
export const WORKING_SET_SIZE = 1024;
/** Smallest and largest size the size distribution covers. */
export const MIN_ALLOCATION_SIZE = 4;
export const MAX_ALLOCATION_SIZE = 32768;
/** The seed the C benchmark declares and prints but never passes to `srand`. */
export const DECLARED_RANDOM_SEED = 88;

/** The benchmark's tables; the same for every thread and every run. */
export interface RequestTables {
  /** `NUM_BLOCK_SIZES` sizes, in bytes. */
  readonly sizes: Uint32Array;
  /** `NUM_OFFSETS` slot indices below `WORKING_SET_SIZE`. */
  readonly offsets: Uint32Array;
}

/**
 * Builds the tables into `into` (fresh arrays by default; a worker passes views over a
 * shared buffer so the main thread builds them once).
 */
export function buildRequestTables(into: RequestTables = { sizes: new Uint32Array(NUM_BLOCK_SIZES), offsets: new Uint32Array(NUM_OFFSETS) }): RequestTables {
  const random = new GlibcRandom();
  // The C code computes in float: every constant and every intermediate is a float32, and
  // RAND_MAX itself rounds to 2^31. Rounding each double step with Math.fround reproduces
  // the float32 results bit for bit, since each operation's double result rounds once.
  const f = Math.fround;
  const lo = f(1 / MIN_ALLOCATION_SIZE);
  const hi = f(1 / MAX_ALLOCATION_SIZE);
  const range = f(hi - lo);
  const randMax = f(RAND_MAX);
  for (let i = 0; i < NUM_BLOCK_SIZES; i++) {
    const r = f(f(random.next()) / randMax);
    into.sizes[i] = Math.trunc(f(1 / f(f(range * r) + lo)));
  }
  for (let i = 0; i < NUM_OFFSETS; i++) into.offsets[i] = random.next() % WORKING_SET_SIZE;
  return into;
}

/**
 * Clamps every size of `tables` to `cap` bytes (a tool's experiment, not the benchmark: with
 * no request over 1024 bytes a locked backend's thread cache serves every call once warm).
 */
export function capRequestSizes(tables: RequestTables, cap: number): void {
  const { sizes } = tables;
  for (let index = 0; index < sizes.length; index++) sizes[index] = Math.min(sizes[index]!, cap);
}

let shared: SharedArrayBuffer | undefined;

/**
 * The tables in one `SharedArrayBuffer`, built on the first call in a process, so every run
 * and every worker reads the same copy.
 */
export function sharedRequestTables(): SharedArrayBuffer {
  if (shared === undefined) {
    const buffer = new SharedArrayBuffer((NUM_BLOCK_SIZES + NUM_OFFSETS) * 4);
    buildRequestTables(requestTablesOver(buffer));
    shared = buffer;
  }
  return shared;
}

/** Views of the tables in a buffer made by `sharedRequestTables`. */
export function requestTablesOver(buffer: SharedArrayBuffer): RequestTables {
  return {
    sizes: new Uint32Array(buffer, 0, NUM_BLOCK_SIZES),
    offsets: new Uint32Array(buffer, NUM_BLOCK_SIZES * 4, NUM_OFFSETS),
  };
}
