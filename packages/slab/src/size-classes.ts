/**
 * The size classes and the shape of each class's slab. Constants computed once at module
 * load, identical in every thread; nothing here is state.
 *
 * Classes: every multiple of 8 up to 64, then four per power of two (2^k + 2^(k-2) * q for
 * q = 1..4), up to 8 KiB: 8, 16, ..., 64, 80, 96, 112, 128, 160, ..., 5120, 6144, 7168, 8192.
 * A request is rounded up by at most a quarter of its size above 64 bytes (at most 7 bytes
 * below), and four classes between 4 KiB and 8 KiB mean no cliff past the page size.
 */

import { PAGE_SIZE, RUN_LINE_BYTES } from '@heaplab/core/backend';

import { MAX_CLASSES, SH_BITMAP, SLAB_HEADER_FIXED_BYTES } from './layout.js';

/** The largest object a slab holds; larger requests are page runs. */
export const MAX_CLASS_BYTES = 8192;
/** Sizes up to this are classed by table lookup; larger ones by `Math.clz32` arithmetic. */
const TABLE_LIMIT = 1024;
/** The finest classes step by 8 bytes up to 64. */
const FINE_LIMIT = 64;
const FINE_CLASSES = FINE_LIMIT / 8;
/** log2 of `FINE_LIMIT`: the power of two where the quarter-steps start. */
const FIRST_COARSE_POWER = 6;
/** A slab is at most this many pages. */
const MAX_SLAB_PAGES = 32;
/** A slab holds at least this many objects when it can, so slab set-up is amortised. */
const MIN_SLAB_OBJECTS = 8;
/** The unused part of a slab (header and tail) should be at most this fraction of it. */
const TARGET_WASTE = 1 / 32;

function classSizes(): number[] {
  const sizes: number[] = [];
  for (let size = 8; size <= FINE_LIMIT; size += 8) sizes.push(size);
  for (let power = FINE_LIMIT; power < MAX_CLASS_BYTES; power *= 2) {
    for (let quarter = 1; quarter <= 4; quarter++) sizes.push(power + (power / 4) * quarter);
  }
  return sizes;
}

const SIZES = classSizes();

/** Number of size classes. */
export const CLASS_COUNT = SIZES.length;
if (CLASS_COUNT > MAX_CLASSES) {
  throw new Error(`slab backend: ${CLASS_COUNT} size classes do not fit the ${MAX_CLASSES} class records of the state`);
}

/** Object size of each class. */
export const CLASS_SIZE = Uint32Array.from(SIZES);
/** Pages of each class's slabs. */
export const CLASS_PAGES = new Uint32Array(CLASS_COUNT);
/** Objects in each class's slabs. */
export const CLASS_OBJECTS = new Uint32Array(CLASS_COUNT);
/** Bitmap words in each class's slab header. */
export const CLASS_BITMAP_WORDS = new Uint32Array(CLASS_COUNT);
/** Byte offset of the header in each class's slabs: right after the last object. */
export const CLASS_HEADER_OFFSET = new Uint32Array(CLASS_COUNT);
/** Bytes of each class's slab header (bitmap and codes included): metadata in the counters. */
export const CLASS_HEADER_BYTES = new Uint32Array(CLASS_COUNT);
/**
 * The alignment every object of each class has: the lowest set bit of its size (objects tile
 * the page-aligned slab from its start), at most the page size.
 */
export const CLASS_ALIGN = new Uint32Array(CLASS_COUNT);
/**
 * Bits of each object's alignment code (layout.ts): enough for codes 0 to
 * log2(CLASS_ALIGN) - 3, rounded up to 1, 2 or 4 so no code straddles a word; 0 for a class
 * whose objects are only 8-aligned.
 */
export const CLASS_CODE_BITS = new Uint8Array(CLASS_COUNT);
/** `(1 << CLASS_CODE_BITS) - 1`: 0 for a class without codes, so one test skips them. */
export const CLASS_CODE_MASK = new Uint8Array(CLASS_COUNT);
/** log2 of the codes per word: object `i`'s code is in code word `i >> CLASS_CODE_INDEX_SHIFT`. */
export const CLASS_CODE_INDEX_SHIFT = new Uint8Array(CLASS_COUNT);
/** log2 of `CLASS_CODE_BITS`: the code's bit offset in its word is `(i & (per word - 1)) << this`. */
export const CLASS_CODE_BIT_SHIFT = new Uint8Array(CLASS_COUNT);
/** Word offset, from the header's first word, of each class's first code word. */
export const CLASS_CODE_WORD = new Uint32Array(CLASS_COUNT);
/** Code words in each class's slab header. */
export const CLASS_CODE_WORDS = new Uint32Array(CLASS_COUNT);
/**
 * Objects in each class's run group: the fewest consecutive objects that, from one starting
 * on a line (`RUN_LINE_BYTES`), end on a line too (64 / gcd(size, 64): 1 for sizes a multiple
 * of 64, up to 8 for odd multiples of 8). Slabs start page aligned, so object `i` starts on a
 * line exactly when `i` is a multiple of it; a refill run is whole groups (caches.ts). A power
 * of two dividing 32, so no group straddles two bitmap words.
 */
export const CLASS_RUN_GROUP = new Uint8Array(CLASS_COUNT);
/**
 * Per class, a bitmap word with the bit of every group's first object set (0x01010101 for
 * groups of 8, ... 0xffffffff for groups of 1): masks the groups whose objects are all free.
 */
export const CLASS_RUN_GROUP_STARTS = new Uint32Array(CLASS_COUNT);

/** Bytes of a slab header for `objects` objects with `codeBits`-bit alignment codes. */
export function headerBytes(objects: number, codeBits: number): number {
  return SLAB_HEADER_FIXED_BYTES + 4 * Math.ceil(objects / 32) + 4 * Math.ceil((objects * codeBits) / 32);
}

/** Objects of `size` bytes that fit with their header in `pages` pages. */
function objectsIn(size: number, pages: number, codeBits: number): number {
  const bytes = pages * PAGE_SIZE;
  let objects = Math.floor((bytes - SLAB_HEADER_FIXED_BYTES) / size);
  while (objects > 0 && objects * size + headerBytes(objects, codeBits) > bytes) objects--;
  return objects;
}

/** Code bits for objects aligned to `align`: codes 0 to log2(align) - 3, in 0, 1, 2 or 4 bits. */
function codeBitsFor(align: number): number {
  const largestCode = 28 - Math.clz32(align);
  if (largestCode === 0) return 0;
  const needed = 32 - Math.clz32(largestCode);
  return needed === 1 ? 1 : needed === 2 ? 2 : 4;
}

// A class's slab is the smallest run of pages that holds at least MIN_SLAB_OBJECTS objects
// and wastes at most TARGET_WASTE of its bytes; when no run up to MAX_SLAB_PAGES does (only
// classes whose objects tile pages exactly, where the header costs one object), the least
// wasteful one. Small slabs keep little memory in partial and cached empty slabs.
for (let cls = 0; cls < CLASS_COUNT; cls++) {
  const size = SIZES[cls]!;
  const align = Math.min(size & -size, PAGE_SIZE);
  const codeBits = codeBitsFor(align);
  let chosen = 0;
  let leastWaste = Infinity;
  for (let pages = 1; pages <= MAX_SLAB_PAGES; pages++) {
    const objects = objectsIn(size, pages, codeBits);
    if (objects < MIN_SLAB_OBJECTS) continue;
    const waste = (pages * PAGE_SIZE - objects * size) / (pages * PAGE_SIZE);
    if (waste < leastWaste) {
      leastWaste = waste;
      chosen = pages;
    }
    if (waste <= TARGET_WASTE) break;
  }
  const objects = objectsIn(size, chosen, codeBits);
  CLASS_PAGES[cls] = chosen;
  CLASS_OBJECTS[cls] = objects;
  CLASS_BITMAP_WORDS[cls] = Math.ceil(objects / 32);
  CLASS_HEADER_OFFSET[cls] = objects * size;
  CLASS_HEADER_BYTES[cls] = headerBytes(objects, codeBits);
  CLASS_ALIGN[cls] = align;
  CLASS_CODE_BITS[cls] = codeBits;
  CLASS_CODE_MASK[cls] = (1 << codeBits) - 1;
  const bitShift = codeBits === 4 ? 2 : codeBits === 2 ? 1 : 0;
  CLASS_CODE_BIT_SHIFT[cls] = bitShift;
  CLASS_CODE_INDEX_SHIFT[cls] = 5 - bitShift;
  CLASS_CODE_WORD[cls] = (SH_BITMAP >>> 2) + CLASS_BITMAP_WORDS[cls]!;
  CLASS_CODE_WORDS[cls] = Math.ceil((objects * codeBits) / 32);
  const group = RUN_LINE_BYTES / Math.min(size & -size, RUN_LINE_BYTES);
  CLASS_RUN_GROUP[cls] = group;
  // 1 + 2^g + 2^2g + ... over 32 bits: all ones divided by g ones.
  CLASS_RUN_GROUP_STARTS[cls] = 0xffff_ffff / (2 ** group - 1);
}

/** Class of each size up to `TABLE_LIMIT`, indexed by `(size + 7) >>> 3`. */
const SMALL_CLASS = new Uint8Array((TABLE_LIMIT >>> 3) + 1);
for (let index = 0, cls = 0; index < SMALL_CLASS.length; index++) {
  while (SIZES[cls]! < index * 8) cls++;
  SMALL_CLASS[index] = cls;
}

/**
 * The class of a request of `size` bytes, `0 <= size <= MAX_CLASS_BYTES`: the smallest class
 * at least that big. Size 0 gets the 8-byte class, so it still has a unique block.
 */
export function classOf(size: number): number {
  if (size <= TABLE_LIMIT) return SMALL_CLASS[(size + 7) >>> 3]!;
  // 2^power < size <= 2^(power + 1); the two bits below the top bit of size - 1 say which
  // quarter of that range the size is in.
  const power = 31 - Math.clz32(size - 1);
  const quarter = ((size - 1) >>> (power - 2)) & 3;
  return FINE_CLASSES + (power - FIRST_COARSE_POWER) * 4 + quarter;
}

/**
 * The smallest class that holds `size` bytes at a multiple of `align` (a power of two above
 * the 8-byte minimum), or -1 when no class can: above `MAX_CLASS_BYTES`, or an alignment
 * above the page size, which slab starts do not have. Slabs start page aligned and objects
 * tile them from the start, so a class gives `align` exactly when its size is a multiple.
 */
export function alignedClassOf(size: number, align: number): number {
  if (align > PAGE_SIZE || size > MAX_CLASS_BYTES) return -1;
  // Every power of two from 8 to MAX_CLASS_BYTES is a class, so this ends within four steps.
  let cls = classOf(Math.max(size, align));
  while (cls < CLASS_COUNT && CLASS_SIZE[cls]! % align !== 0) cls++;
  return cls < CLASS_COUNT ? cls : -1;
}

/**
 * The smallest request size that an allocation with alignment code `code` (see layout.ts)
 * serves from class `cls`: with code 0, one byte more than the class below (0 for the first
 * class); else one byte more than the largest smaller class whose size is a multiple of the
 * alignment (0 when there is none), since `alignedClassOf` skips the classes between.
 */
export function smallestSizeOf(cls: number, code: number): number {
  if (code === 0) return cls === 0 ? 0 : CLASS_SIZE[cls - 1]! + 1;
  const align = 2 ** (code + 3);
  for (let below = cls - 1; below >= 0; below--) {
    if (CLASS_SIZE[below]! % align === 0) return CLASS_SIZE[below]! + 1;
  }
  return 0;
}
