/**
 * Every shared-memory structure of the basic backend, drawn once: its control state at
 * `ctx.stateOffset`, and the block format in the arena. Its counters (used, peak, requested,
 * granted, live, free, total) are core's (`ctx.counters`), and its pools core's pool table
 * (`ctx.pools`): neither is drawn here.
 *
 * ```text
 *  control state (u32 words, at ctx.stateOffset, STATE_BYTES long)
 *  0    magic 'BSC1' (ST_MAGIC)          set by init; check() refuses state without it
 *  4    first free block (ST_FREE_HEAD)  0 = the free list is empty
 *  8    reserved, zero
 *  64   end (STATE_BYTES)
 *
 *  blocks (every block starts 8-aligned; the payload is at block + 8)
 *  used block                          free block
 *  +0 u32 size | flags                 +0 u32 size | flags
 *  +4 u32 tag                          +4 u32 (unused)
 *  +8 payload ...                      +8 u32 next free block (B_NEXT; 0 = none)
 *                                      +12 u32 previous free block (B_PREV; 0 = none)
 *                                      ... size-4: u32 footer = size
 *  flags: bit0 USED, bit1 PREV_USED (the physically previous block is live)
 *
 *  tag of a used block (B_TAG), bit by bit
 *  31 ............ 11 | 10 .. 6         | 5 .. 0
 *  hash (21 bits)     | log2(align) - 3 | slack: usable - requested (0..63)
 *
 *  a pool [start, end) of core's table, its bounds rounded in to multiples of 8:
 *  [block][block]...[block][sentinel: 8 bytes, size 0 | USED, tag 0]
 * ```
 *
 * Sizes include the header and are multiples of 8. Addresses may be 2^31 or more, so they
 * are handled as unsigned words and never pass through `| 0`; a size is read as
 * `hdr - (hdr & FLAGS)` for the same reason.
 */

// Only type imports here: esbuild inlines a file's top-level constants into the bundle's hot
// paths only when the file has no import or export with a path (see tsup.shared.ts), so the
// offsets and flags below stay literals. The error builder, which needs core at run time, is
// in errors.ts.
import type { StateCounters } from '../backend/counters.js';
import type { PoolView } from '../backend/pools.js';

// --- control state -------------------------------------------------------------------------

export const BASIC_MAGIC = 0x31435342; // 'BSC1' little-endian
export const ST_MAGIC = 0;
export const ST_FREE_HEAD = 4;
/** Bytes of control state the basic backend asks for. */
export const STATE_BYTES = 64;

// --- block format --------------------------------------------------------------------------

export const HEADER_BYTES = 8;
/** Header + two links + footer: a free block must hold all of them. */
export const MIN_BLOCK = 24;
export const MIN_USABLE = MIN_BLOCK - HEADER_BYTES;
export const SENTINEL_BYTES = 8;
export const USED = 1;
export const PREV_USED = 2;
export const FLAGS = 7;
export const B_TAG = 4;
export const B_NEXT = 8;
export const B_PREV = 12;
/** The tag's hash bits; the bits below hold the alignment and the slack (usable - requested). */
export const TAG_HASH = 0xfffff800;
/** log2 of the alignment the block was allocated with, less 3 (alignments 8 to 2^30). */
export const TAG_ALIGN_SHIFT = 6;
export const TAG_ALIGN_MASK = 0x1f;
/** Slack is below 40 (rounding to 8, plus a tail too small to split), so 6 bits hold it. */
export const SLACK_MASK = 0x3f;
/**
 * Requests above this cannot fit in any heap (the buffer is below 4 GiB); refusing them
 * early keeps every size below 2^32 in the arithmetic that follows.
 */
export const MAX_REQUEST = 0xffff_fff0;

/** The 8-aligned bounds of pool `[start, end)` and its sentinel. */
export function poolBlocks(start: number, end: number): { first: number; sentinel: number } {
  const first = start % 8 === 0 ? start : start + (8 - (start % 8));
  return { first, sentinel: end - (end % 8) - SENTINEL_BYTES };
}

/**
 * The hash part of a block tag: cheap, but it depends on the block's address, its size and
 * the heap's random cookie, so a stale header or user data that happens to have the USED bit
 * set is very unlikely to pass for a live block.
 */
function mix(block: number, size: number, cookie: number): number {
  let h = Math.imul(block ^ cookie, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16) ^ size, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** The tag of a live block: its hash, the log2 of its alignment and its slack. */
export function makeTag(block: number, size: number, cookie: number, align: number, slack: number): number {
  return ((mix(block, size, cookie) & TAG_HASH) | ((31 - Math.clz32(align) - 3) << TAG_ALIGN_SHIFT) | slack) >>> 0;
}

/**
 * Whether `tag` is the tag of a live block at `block` of `size` bytes: the hash matches, the
 * slack fits, and the payload has the alignment the tag records.
 */
export function tagMatches(tag: number, block: number, size: number, cookie: number): boolean {
  const alignMask = (1 << (((tag >>> TAG_ALIGN_SHIFT) & TAG_ALIGN_MASK) + 3)) - 1;
  return ((tag ^ mix(block, size, cookie)) & TAG_HASH) === 0 && (tag & SLACK_MASK) <= size - HEADER_BYTES && ((block + HEADER_BYTES) & alignMask) === 0;
}

/** The alignment a live block's tag records. */
export function tagAlign(tag: number): number {
  return 1 << (((tag >>> TAG_ALIGN_SHIFT) & TAG_ALIGN_MASK) + 3);
}

/**
 * What check.ts and recover.ts read of a basic heap: its views, where its state is, and the
 * one write they share with the algorithm (formatting a free block). Declared here, beside
 * the layout it reads, so they depend on the layout and not on basic.ts (which imports them).
 */
export interface BasicHeapView {
  readonly u32: Uint32Array;
  readonly cookie: number;
  readonly arenaStart: number;
  readonly arenaEnd: number;
  readonly stateOffset: number;
  /** Word indexes of the state's magic and free-list head. */
  readonly sMagic: number;
  readonly sHead: number;
  readonly counters: StateCounters;
  readonly pools: PoolView;
  /** Formats `[b, b + size)` as a free block (header and footer), not linked. */
  writeFree(b: number, size: number): void;
}
