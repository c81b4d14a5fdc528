/**
 * rptest's parameters and tables (docs/workloads/rptest.md). The parameters are those
 * mimalloc-bench passes (`rptest THREADS 0 1 2 500 1000 100 8 16000`); the tables are built
 * from them as the original builds its own, but from numbers drawn by a seeded generator
 * instead of the original's fixed lists of random numbers (same lengths, same ranges), so
 * the C port (native/rptest.c) builds the very same tables.
 */

/** Sizes drawn uniformly in [min, max]. */
export const MODE_RANDOM = 0;
/** Every block `minSize` bytes. */
export const MODE_FIXED = 1;
/** Size distributions of the random mode: even, dropping linearly, dropping exponentially. */
export const SIZE_MODE_EVEN = 0;
export const SIZE_MODE_LINEAR = 1;
export const SIZE_MODE_EXP = 2;

/** The benchmark's arguments after the thread count. */
export interface RptestParameters {
  mode: number;
  sizeMode: number;
  /** A batch of blocks goes to another thread every `crossRate` loops; 0 for none. */
  crossRate: number;
  /** Loops per round (the original runs two rounds). */
  loops: number;
  /** Slots of each thread's set of live blocks. */
  allocCount: number;
  /** Scales the per-loop counts of frees and allocations (percentages of it). */
  opCount: number;
  minSize: number;
  maxSize: number;
}

/** mimalloc-bench's arguments: random mode, linear dropoff, a batch every 2 loops, 500 loops, 1000 slots, 100 ops, 8..16000 bytes. */
export const MIMALLOC_BENCH_PARAMETERS: RptestParameters = {
  mode: MODE_RANDOM,
  sizeMode: SIZE_MODE_LINEAR,
  crossRate: 2,
  loops: 500,
  allocCount: 1000,
  opCount: 100,
  minSize: 8,
  maxSize: 16000,
};

/** The arguments in the original's order after the thread count, as the C port takes them. */
export function parameterArguments(parameters: RptestParameters): string[] {
  const { mode, sizeMode, crossRate, loops, allocCount, opCount, minSize, maxSize } = parameters;
  return [mode, sizeMode, crossRate, loops, allocCount, opCount, minSize, maxSize].map(String);
}

/** Lengths of the tables, as the original's (the operation tables' lengths are primes, so their cycles do not line up). */
export const SIZE_TABLE_LENGTH = 2000;
export const ALLOC_OPS_TABLE_LENGTH = 311;
export const FREE_OPS_TABLE_LENGTH = 257;
/** The raw size draws are in [0, SIZE_DRAW_RANGE); the operation percentages in [OPS_PERCENT_MIN, OPS_PERCENT_MIN + OPS_PERCENT_SPAN). */
const SIZE_DRAW_RANGE = 100_000;
const OPS_PERCENT_MIN = 30;
const OPS_PERCENT_SPAN = 70;
/** Frees per loop are this share of the allocations' scale. */
const FREE_SHARE = 0.8;
/** Where the table generator starts. */
const TABLE_SEED = 1;

/** Candidate strides over the slots: the first two primes that do not divide the slot count are used. */
const SCATTER_PRIMES = [7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97];

/** The tables one run reads. */
export interface RptestTables {
  /** Block sizes of the chosen distribution (all `minSize` in fixed mode). */
  readonly sizes: Uint32Array;
  /** Allocations per loop, and frees per loop, cycled by loop number. */
  readonly allocOps: Uint32Array;
  readonly freeOps: Uint32Array;
  /** Strides of the allocation and the free cursors over the slots. */
  readonly allocScatter: number;
  readonly freeScatter: number;
}

/** The generator of the table draws: a 32-bit integer hash (Chris Wellons') applied to its state. */
function hash32(value: number): number {
  let x = value;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * Builds the tables of `parameters`: the raw size draws scaled into [min, max] and turned
 * into the linear or exponential dropoff as the original does (in double precision, each
 * size truncated), and the per-loop counts as percentages of `opCount`.
 * @throws Error for parameters the original rejects
 */
export function buildRptestTables(parameters: RptestParameters): RptestTables {
  const { mode, sizeMode, allocCount, opCount, minSize, maxSize } = parameters;
  if (mode !== MODE_RANDOM && mode !== MODE_FIXED) throw new Error(`rptest: invalid mode ${mode}`);
  if (sizeMode !== SIZE_MODE_EVEN && sizeMode !== SIZE_MODE_LINEAR && sizeMode !== SIZE_MODE_EXP) throw new Error(`rptest: invalid size mode ${sizeMode}`);
  if (mode === MODE_RANDOM && maxSize < minSize) throw new Error(`rptest: invalid size range [${minSize}, ${maxSize}]`);
  // A block holds its size in its first 4 bytes and a 1 in its last.
  if (minSize < 5) throw new Error(`rptest: blocks of fewer than 5 bytes (${minSize}) cannot hold their size and their last byte`);
  let state = TABLE_SEED;
  const draw = (): number => (state = hash32(state));
  const range = maxSize - minSize;
  const even = new Float64Array(SIZE_TABLE_LENGTH);
  for (let i = 0; i < SIZE_TABLE_LENGTH; i++) even[i] = minSize + Math.round(range * ((draw() % SIZE_DRAW_RANGE) / SIZE_DRAW_RANGE));
  const allocOps = new Uint32Array(ALLOC_OPS_TABLE_LENGTH);
  for (let i = 0; i < ALLOC_OPS_TABLE_LENGTH; i++) allocOps[i] = Math.trunc(opCount * ((OPS_PERCENT_MIN + (draw() % OPS_PERCENT_SPAN)) / 100));
  const freeOps = new Uint32Array(FREE_OPS_TABLE_LENGTH);
  for (let i = 0; i < FREE_OPS_TABLE_LENGTH; i++) freeOps[i] = Math.trunc(FREE_SHARE * opCount * ((OPS_PERCENT_MIN + (draw() % OPS_PERCENT_SPAN)) / 100));
  const sizes = new Uint32Array(SIZE_TABLE_LENGTH);
  const span = range === 0 ? 1 : range;
  for (let i = 0; i < SIZE_TABLE_LENGTH; i++) {
    if (mode === MODE_FIXED) {
      sizes[i] = minSize;
      continue;
    }
    const w0 = 1 - (even[i]! - minSize) / span;
    const w1 = 1 - (even[(i + 1) % SIZE_TABLE_LENGTH]! - minSize) / span;
    const spread = even[(i + 2) % SIZE_TABLE_LENGTH]! - minSize;
    if (sizeMode === SIZE_MODE_EVEN) sizes[i] = even[i]!;
    else if (sizeMode === SIZE_MODE_LINEAR) sizes[i] = minSize + Math.trunc(spread * Math.abs(w0 + w1 - 1));
    else sizes[i] = minSize + Math.trunc(spread * (w0 * w1));
  }
  const strides = SCATTER_PRIMES.filter((prime) => allocCount % prime !== 0);
  return { sizes, allocOps, freeOps, allocScatter: strides[0]!, freeScatter: strides[1]! };
}
