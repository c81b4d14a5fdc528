/**
 * The thread cache's size classes: which bin a request goes to, and what a block of each bin
 * is asked of the backend as.
 *
 * ```text
 *  class    1   2   3  ...  128  | 129   130   131   132  | 133 ... 140 | 141 ... 144
 *  bytes    8  16  24  ... 1024  | 1280  1536  1792  2048 | 2560 ... 8K | 10K ... 16K
 *           `-- 8 bytes apart --'  `---- four classes in each doubling, up to 16 KiB ----'
 * ```
 *
 * Small classes are 8 bytes apart, as glibc's tcache (whose classes end near 1 KiB). Above
 * 1 KiB the classes are geometric, four to a doubling as jemalloc's are, so a block serves
 * requests down to about 4/5 of its size (at most 20 % of its bytes unused) and sixteen bins
 * cover up to 16 KiB. Why cache large blocks at all: every malloc and free of a block that no
 * bin takes holds the heap lock, and two threads that each take it now and then make the lock
 * word and the backend's free lists move between their cores; measured in docs/speed.md ("Large
 * classes"), where bench-malloc-thread's 0.4 % of requests over 1 KiB were what kept two
 * threads on one locked heap below a heap each when the host placed their CPUs far apart.
 */

import {
  OWNER_ENTRY_CLASS_MASK,
  TC_CLASS_BYTES,
  TC_CLASSES,
  TC_COUNTS,
  TC_HEADS,
  TC_LARGE_STEPS,
  TC_MAX_REQUEST,
  TC_RECORD_BYTES,
  TC_SMALL_CLASSES,
} from '../memory/heap-layout.js';

/** Requests up to this many bytes go to the 8-byte-spaced classes. */
const SMALL_MAX_REQUEST = TC_SMALL_CLASSES * TC_CLASS_BYTES;
/** log2 of `SMALL_MAX_REQUEST`: the doubling the first large classes split. */
const SMALL_MAX_LOG2 = 31 - Math.clz32(SMALL_MAX_REQUEST);
/** log2 of `TC_LARGE_STEPS`. */
const LARGE_STEPS_LOG2 = 31 - Math.clz32(TC_LARGE_STEPS);

/** The class of a request of `size` bytes, 0 <= size <= `TC_MAX_REQUEST`. */
export function cacheClassOf(size: number): number {
  if (size <= SMALL_MAX_REQUEST) return size <= TC_CLASS_BYTES ? 1 : (size + TC_CLASS_BYTES - 1) >>> 3;
  // size - 1 lies in [2^e, 2^(e+1)); its top bits below the leading one pick the step.
  const below = size - 1;
  const log2 = 31 - Math.clz32(below);
  const step = (below >>> (log2 - LARGE_STEPS_LOG2)) - TC_LARGE_STEPS;
  return TC_SMALL_CLASSES + (log2 - SMALL_MAX_LOG2) * TC_LARGE_STEPS + step + 1;
}

/** The bytes of class `cls`: what a block of it is asked of the backend as, the largest request it serves. */
function classBytesOf(cls: number): number {
  if (cls <= TC_SMALL_CLASSES) return cls * TC_CLASS_BYTES;
  const large = cls - TC_SMALL_CLASSES - 1;
  const log2 = SMALL_MAX_LOG2 + ((large / TC_LARGE_STEPS) | 0);
  const step = large % TC_LARGE_STEPS;
  return (TC_LARGE_STEPS + step + 1) << (log2 - LARGE_STEPS_LOG2);
}

/** `classBytesOf` of every class, looked up by the fast paths (index 0 unused: 0). */
export const CACHE_CLASS_BYTES = Uint32Array.from({ length: TC_CLASSES + 1 }, (_, cls) => (cls === 0 ? 0 : classBytesOf(cls)));

/** Every size the cache asks the backend for, smallest first: what `Backend.allocateRun` may be asked to carve. */
export const CACHE_REQUEST_SIZES: readonly number[] = Object.freeze(Array.from(CACHE_CLASS_BYTES.subarray(1)));

/** The smallest request class `cls` serves (its bytes are the largest). */
export function smallestRequestOf(cls: number): number {
  return cls === 1 ? 0 : CACHE_CLASS_BYTES[cls - 1]! + 1;
}

// The layout's constants must agree with each other: checked once, when the module loads.
if (CACHE_CLASS_BYTES[TC_CLASSES] !== TC_MAX_REQUEST || cacheClassOf(TC_MAX_REQUEST) !== TC_CLASSES) {
  throw new Error(`thread cache: ${TC_CLASSES} classes end at ${CACHE_CLASS_BYTES[TC_CLASSES]} bytes, not at TC_MAX_REQUEST (${TC_MAX_REQUEST})`);
}
if (TC_COUNTS + TC_CLASSES > TC_HEADS || TC_HEADS + 4 * TC_CLASSES > TC_RECORD_BYTES || TC_CLASSES > OWNER_ENTRY_CLASS_MASK) {
  throw new Error(`thread cache: ${TC_CLASSES} classes do not fit a record's counts and heads, or an owner entry's class bits`);
}
