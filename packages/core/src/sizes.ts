import { AllocError, describeValue, hex } from './errors.js';

/** 1 KiB, 1 MiB, 1 GiB in bytes: sizes in this code are written with these. */
export const KiB = 1024;
export const MiB = 1024 * KiB;
export const GiB = 1024 * MiB;

/**
 * The alignment of the heap's allocatable region and the unit of heap sizes: 4 MiB, ArceOS's
 * `PAGE_SIZE = 1 << 22` "prepared for mimalloc", whose segments are 4 MiB aligned.
 */
export const HEAP_ALIGN = 4 * MiB;

/** The page size of the page allocators and of every "page" alignment: 4 KiB. */
export const PAGE_SIZE = 4 * KiB;

/**
 * The alignment every block gets when none is asked for: 8 bytes, enough for every typed
 * array (`Float64Array` and `BigInt64Array` included). Smaller alignments are raised to it.
 */
export const MIN_ALIGN = 8;

/**
 * The cache line two cores pass between them, as far as the allocators are concerned: a
 * refill run (`Backend.allocateRun`) starts on one and owns its lines whole, so that two
 * threads' cached blocks never share one.
 */
export const RUN_LINE_BYTES = 64;

/**
 * The largest alignment a request may ask for (1 GiB). Larger powers of two are valid
 * `Layout`s but no heap here could honour them usefully, so they are `InvalidParam`.
 */
export const MAX_ALIGN = GiB;

/** A request for memory: `size` bytes at an address that is a multiple of `align`. */
export interface Layout {
  /** Bytes wanted: a non-negative safe integer. 0 is allowed and gets a unique block. */
  readonly size: number;
  /** A power of two from 1 to `MAX_ALIGN`. */
  readonly align: number;
}

/**
 * Makes a checked `Layout`.
 * @param size bytes, a non-negative safe integer
 * @param align a power of two, default `MIN_ALIGN`
 * @throws AllocError `InvalidParam` when either is out of range
 */
export function layout(size: number, align: number = MIN_ALIGN): Layout {
  checkSize(size);
  checkAlign(align);
  return { size, align };
}

/**
 * Checks a requested size. Sizes that fit in 32 bits pass on the first comparison, so the
 * common case costs one `>>> 0`.
 * @throws AllocError `InvalidParam` for a negative, fractional, non-finite or unsafe size
 */
export function checkSize(size: number): void {
  // The refusal is a call of its own: bytecode inlined into every malloc stays small. The
  // type test comes first: `>>>` would throw a TypeError for a BigInt or a Symbol.
  if (typeof size !== 'number' || size >>> 0 !== size) checkLargeSize(size);
}

/** `checkSize` past the 32-bit case. @throws AllocError `InvalidParam` for a bad size */
function checkLargeSize(size: number): void {
  if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
    throw new AllocError('InvalidParam', `size ${describeValue(size)} is not a non-negative safe integer`);
  }
}

/**
 * Checks an alignment.
 * @throws AllocError `InvalidParam` unless `align` is a power of two from 1 to `MAX_ALIGN`
 */
export function checkAlign(align: number): void {
  if (typeof align === 'number' && align >>> 0 === align && align !== 0 && (align & (align - 1)) === 0 && align <= MAX_ALIGN) {
    return;
  }
  throw new AllocError('InvalidParam', `alignment ${describeValue(align)} is not a power of two from 1 to ${MAX_ALIGN}`);
}

/** Rounds `value` up to a multiple of `align` (a power of two). Exact for values below 2^53. */
export function alignUp(value: number, align: number): number {
  const rest = value % align;
  return rest === 0 ? value : value + (align - rest);
}

/** Rounds `value` down to a multiple of `align` (a power of two). */
export function alignDown(value: number, align: number): number {
  return value - (value % align);
}

/** True when `value` is a power of two that fits in 32 bits. */
export function isPowerOfTwo(value: number): boolean {
  return typeof value === 'number' && value >>> 0 === value && value !== 0 && (value & (value - 1)) === 0;
}

/**
 * Checks that `[start, start + size)` is a non-empty integer range inside
 * `[arenaStart, arenaEnd)`, as `init` and `addMemory` ranges must be.
 * @throws AllocError `InvalidParam` naming the range and the arena
 */
export function checkArenaRange(start: number, size: number, arenaStart: number, arenaEnd: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(size) || size <= 0) {
    throw new AllocError('InvalidParam', `memory range start ${describeValue(start)} size ${describeValue(size)} is not a positive integer range`);
  }
  if (start < arenaStart || start + size > arenaEnd) {
    throw new AllocError('InvalidParam', `memory range ${hex(start)}..${hex(start + size)} is outside the arena ${hex(arenaStart)}..${hex(arenaEnd)}`);
  }
}
