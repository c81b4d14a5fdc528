/**
 * Every shared-memory structure of the TLSF backend, drawn once: the control state at
 * `ctx.stateOffset` and the block format in the arena. All fields are little-endian u32
 * words. Addresses may be 2^31 or more, so they are kept as unsigned numbers: a size or an
 * address is taken out of a word as `word - (word & mask)`, never with `| 0` or a bare `& ~mask`,
 * whose int32 results turn negative above 2^31.
 *
 * Two things the backend uses are core's, not drawn here: its counters (`ctx.counters`:
 * total, used, peak, requested, granted, live and free blocks, metadata) and its pools
 * (`ctx.pools`, core's pool table, holding each range as `init` or `addMemory` was given it;
 * `poolBounds` says where its sentinels are).
 *
 * ```text
 *  control state (u32 words at ctx.stateOffset)
 *  0     magic 'TLS3' (ST_MAGIC)              written by init; check() refuses state without it
 *  4     first-level bitmap (ST_FL_BITMAP)    bit f set <=> second-level bitmap f is not 0
 *  8     reserved, zero                       (the bitmaps start on their own cache line)
 *  64    second-level bitmaps (ST_SL_BITMAPS): FL_COUNT words; bit s of word f set <=> list
 *        (f, s) is not empty
 *  164   free-list heads (ST_LIST_HEADS): FL_COUNT x SL_COUNT words, list (f, s) at index
 *        f * SL_COUNT + s; 0 = empty, else a free block whose previous link is 0
 *  3364  end (STATE_BYTES)
 *
 *  counters kept in ctx.counters, and what they count here
 *  totalBytes      pool bytes minus sentinels: what usedBytes can reach
 *  usedBytes       sizes of live blocks, headers and trailers included
 *  requestedBytes  sizes callers asked for, over live blocks
 *  grantedBytes    usable sizes of live blocks (size - 8, or size - 16 with a trailer), so
 *                  usedBytes - grantedBytes is the live blocks' headers and trailers
 *  freeBlocks      blocks on all free lists
 *  metadataBytes   the pools' sentinels (16 bytes a pool)
 *
 *  a pool: a range [start, end) of core's table, its bounds rounded in to multiples of 8
 *  start: front sentinel   8 bytes: prevPhys 0, size 8 | USED (a header with no payload)
 *  start + 8: blocks ...   each block's prevPhys is the block before it
 *  end - 8: end sentinel   8 bytes: prevPhys = last block, size 0 | USED
 *
 *  blocks (8-aligned, sizes multiples of 8 with the header included; payload at block + 8)
 *  used block                                   free block
 *  +0 u32 prevPhys | slack & 7                  +0 u32 prevPhys
 *  +4 u32 size | (slack >> 3) << 1 | USED       +4 u32 size
 *  +8 payload ...                               +8 u32 next free block in its list (0 = last)
 *                                               +12 u32 previous free block (0 = list head)
 *
 *  an over-aligned used block (allocated with an alignment above 8), or the line-padded last
 *  block of a refill run (allocateRun, run.ts): slack field EXTENDED
 *  +0 u32 prevPhys | 7                          both words' slack bits all set: a value no
 *  +4 u32 size | 6 | USED                       plain slack takes (those are 0..MAX_SLACK)
 *  +8 payload ... (size - 16 bytes usable)
 *  size - 8: u32 reserved (not written)
 *  size - 4: u32 trailer (T_INFO)               check (21 bits) | log2(align) << 6 | slack
 *                                               (align 8, log2 3, for a padded run block)
 * ```
 *
 * The header has no spare word for a tag, so the low bits of both words carry the slack
 * (usable minus requested size, 0..MAX_SLACK), which keeps `requestedBytes` exact at no cost
 * in space. There is no PREV_FREE bit, unlike the TLSF paper's header: prevPhys is valid in
 * every block (as in rlsf), and `release` reads the previous header anyway to validate the
 * address, so the bit would only repeat that header's USED bit; its room holds slack instead.
 * A live block needs 8 bytes of header; a free block must also hold its two links, hence
 * MIN_BLOCK_BYTES = 16.
 *
 * The five slack bits hold 32 values and plain slack needs 17, so one spare value (EXTENDED)
 * says "this block records its alignment": an allocation aligned above 8 bytes takes 8 more
 * bytes, whose last word records its slack and log2(alignment) with a check of block address,
 * size and contents. That is the only room the format has for an alignment; plain blocks (the
 * 8-aligned `malloc` path) pay nothing, and over-aligned ones already give up to
 * align + 8 bytes of gap to the free lists. The trailer is one word so that rewriting it (an
 * in-place resize that keeps the size) is a single store.
 *
 * The trailer also serves the one plain block whose slack the header cannot hold: the last
 * block of a refill run (`allocateRun`, run.ts) must reach the end of the cache line its
 * requested bytes end in, so that no free or other live block shares the run's lines, and
 * that can take up to MAX_LINE_SLACK bytes of slack. Its trailer records alignment 8
 * (log2 = GRANULARITY_LOG2, which no over-aligned block records), so `blockLayout` says
 * exactly what `allocate(size, 8)` would, and its slack, which is why the slack field is six
 * bits wide.
 *
 * ## What a dead thread leaves, and how `recover` rebuilds
 *
 * A thread may die between any two stores. The one record `recover` trusts is the chain of
 * size words: **the headers tile each pool from its front sentinel to its end sentinel at
 * every store of every operation**. A size word changes in one store, and every header it
 * exposes (a tail split off, the block an aligned carve leaves after its gap, the free block
 * a shrink gives back) is written first, inside memory the old size still covers; the size
 * word that exposes them is the commit. A block is live exactly when its size word says
 * USED; that word, too, is written last. So:
 *
 * | operation          | stores, in order (the commit in capitals)                           |
 * |--------------------|---------------------------------------------------------------------|
 * | malloc             | unlink the free block; tail header; trailer (aligned); prevPhys     |
 * |                    | word; SIZE WORD | USED; next block's prevPhys; list the tail; counts |
 * | malloc with a gap  | as above, but before the live header: the block's size word as a    |
 * |                    | free block, then the free block's SIZE = GAP (the gap, the block    |
 * |                    | and the tail are three free blocks), then SIZE | USED; list the gap |
 * | free               | unlink free neighbours; SIZE WORD without USED (and merged with a   |
 * |                    | free next block); if the previous block is free, ITS SIZE grows     |
 * |                    | over both; prevPhys words; list the merged block; counts            |
 * | realloc in place   | unlink a free next block; the header of the free block split off    |
 * |                    | (and the trailer at the new end); prevPhys word; SIZE WORD; the     |
 * |                    | next block's prevPhys; list the split-off block; counts             |
 * | refill run         | unlink the free block; with a gap: the rest's header, then the free |
 * |                    | block's SIZE = GAP; list the gap; then for each block but the last: |
 * |                    | the rest's header after it, SIZE WORD | USED, counts (the rest      |
 * |                    | stays off the lists); the last block as malloc carves it (a padded  |
 * |                    | one with its trailer), after pointing the next block's prevPhys at  |
 * |                    | the rest; a `take` that throws lists the rest as the tail instead   |
 * | addMemory          | both sentinels and the free block; list the block; totalBytes; then |
 * |                    | core RECORDS THE POOL in its table, after the backend returns       |
 *
 * What a death can leave, then, is only this: free blocks that are on no list or still on one
 * (a list, a bitmap or a link half updated), adjacent free blocks (a free that died before
 * its merge), stale prevPhys words, stray slack bits in a free block's header (a carve that
 * died between the two header words), a live block nobody was given (a malloc that died
 * after its commit: it stays live, a leak the caller's death caused, not a loss), counters
 * off, and one torn slack: a plain block resized with the same size, dead between its two
 * header words, has the new slack's low bits and the old one's high bits; and a pool formatted
 * that core never recorded (an addMemory that died before it returned): no pool lists it, so
 * the memory was never added, and `recover`, which walks the listed pools only, leaves its
 * free block off the lists. `recover`
 * (recover.ts) walks each pool by size words, checks that they tile it, and rewrites every
 * thing else from that walk: each run of free blocks becomes one free block, every prevPhys
 * word is set to the block before it (keeping live blocks' slack bits), a torn slack that
 * is out of range loses its low bits (what is left is at most the old slack, so valid), the
 * lists are relinked (keeping the order of each old list as far as it is still valid, so a
 * recovery of an intact heap changes nothing) with both bitmaps, and every counter is
 * recounted. Nothing is lost: every byte of every pool is in a live or a free block. A
 * `recover` that dies itself leaves the headers tiling too (it only merges whole blocks), so
 * it can simply run again.
 *
 * An operation that finds corruption (`HeapCorrupted`) stops where it is, as a dying thread
 * would: the stores before it kept the headers tiling.
 */

// Only type imports here: esbuild inlines a file's top-level constants into the bundle's hot
// paths only when the file has no import or export with a path (see tsup.shared.ts), so the
// offsets below stay literals. What needs core at run time (the checker) is in errors.ts.
import type { PoolView, StateCounters } from '@heaplab/core/backend';

// --- the two levels ------------------------------------------------------------------------

/**
 * log2 of the block granularity: every block size and address is a multiple of 8, the
 * default alignment of the heap (`MIN_ALIGN`), so a size's three low bits are free for flags.
 */
export const GRANULARITY_LOG2 = 3;
/** Block granularity in bytes. */
export const GRANULARITY = 1 << GRANULARITY_LOG2;

/**
 * log2 of the number of second-level lists per first level: 32 lists, as rlsf and ArceOS
 * choose, so one u32 word is a second-level bitmap and a list's size range is 1/32 of its
 * power of two (the good-fit search then wastes at most ~3 % of a request, see size-classes).
 */
export const SL_COUNT_LOG2 = 5;
/** Second-level lists per first level. */
export const SL_COUNT = 1 << SL_COUNT_LOG2;

/**
 * Sizes below this (256 bytes) all live in first level 0, split linearly into SL_COUNT exact
 * classes of GRANULARITY bytes each; from here on, each power of two is a first level.
 */
export const SMALL_BLOCK_BYTES = SL_COUNT << GRANULARITY_LOG2;

/** log2 of SMALL_BLOCK_BYTES: a size with this log2 is first level 1. */
export const FL_SHIFT = SL_COUNT_LOG2 + GRANULARITY_LOG2;

/**
 * First levels: level 0 for small blocks, then one per power of two from 2^FL_SHIFT to 2^31,
 * so every size below 4 GiB (the largest buffer, hence the largest pool) has a list. 25
 * levels fit one u32 first-level bitmap.
 */
export const FL_COUNT = 32 - FL_SHIFT + 1;

/** Free lists in all: one head word each. */
export const LIST_COUNT = FL_COUNT * SL_COUNT;

// --- block format --------------------------------------------------------------------------

/** Bytes of a block header: prevPhys and size words. */
export const HEADER_BYTES = 8;
/** Offset of the word holding the physically previous block's address (and slack bits). */
export const B_PREV_PHYS = 0;
/** Offset of the word holding the block size (and flag and slack bits). */
export const B_SIZE = 4;
/** Offset, in a free block, of the next block on its free list. */
export const B_NEXT_FREE = 8;
/** Offset, in a free block, of the previous block on its free list. */
export const B_PREV_FREE = 12;
/** The smallest block: a header and the two free-list links. */
export const MIN_BLOCK_BYTES = 16;

/** Size-word bit: the block is live (or a sentinel). */
export const USED = 1;
/** Size-word bits holding `slack >> 3` in a live block; 0 in free blocks and sentinels. */
export const SIZE_SLACK_BITS = 6;
/** Low bits of the size word that are not size. */
export const SIZE_FLAG_BITS = USED | SIZE_SLACK_BITS;
/** PrevPhys-word bits holding `slack & 7` in a live block; 0 in free blocks and sentinels. */
export const PREV_SLACK_BITS = 7;

/**
 * The most a live block's usable size may exceed its requested size: up to 7 bytes of
 * rounding to the granularity (8 for a zero-byte request, which gets 8 usable bytes) plus an
 * 8-byte tail too small to be a free block. It fits the five slack bits.
 */
export const MAX_SLACK = 16;

/**
 * The slack field (both words' slack bits, all set) of a live block that carries an
 * alignment trailer; its slack is in the trailer. No plain slack reaches it.
 */
export const EXTENDED_SLACK = 31;
/** The prevPhys-word bits of an EXTENDED header. */
export const EXTENDED_PREV_BITS = PREV_SLACK_BITS;
/** The size-word bits (besides USED) of an EXTENDED header. */
export const EXTENDED_SIZE_BITS = SIZE_SLACK_BITS;
/** Bytes an over-aligned block gives its trailer, at its end; its usable size is 16 below its size. */
export const TRAILER_BYTES = 8;
/** Offset of the trailer word back from the block's end (the block's last word). */
export const T_INFO_FROM_END = 4;
/** Trailer bits holding the slack (0..MAX_SLACK, or 0..MAX_LINE_SLACK for a padded run block). */
export const TRAILER_SLACK_MASK = 0x3f;
/**
 * Trailer bits holding log2 of the alignment, after shifting by TRAILER_ALIGN_SHIFT: 4..30 for
 * an over-aligned block, GRANULARITY_LOG2 for the line-padded last block of a refill run.
 */
export const TRAILER_ALIGN_SHIFT = 6;
export const TRAILER_ALIGN_MASK = 0x1f;
/** Trailer bits holding the check of block address, size and the fields. */
export const TRAILER_CHECK_MASK = 0xffff_f800;

/**
 * The most slack the trailer of a refill run's last block records: its requested bytes may
 * end just past a line (core's RUN_LINE_BYTES, 64), and the block must reach that line's end
 * less the next block's 8-byte header, or 8 bytes further when only 8 would be left; of
 * those up to 64 bytes, the trailer takes 8 and the 8 the request ends in are its own.
 */
export const MAX_LINE_SLACK = 48;

/** Bytes of a pool's front sentinel (a bare header, whose size field says 8). */
export const FRONT_SENTINEL_BYTES = 8;
/** Bytes of a pool's end sentinel (a bare header, whose size field says 0). */
export const END_SENTINEL_BYTES = 8;
/** Both sentinels: what a pool loses to them. */
export const POOL_OVERHEAD_BYTES = FRONT_SENTINEL_BYTES + END_SENTINEL_BYTES;
/** The smallest pool: two sentinels around one minimum block. */
export const MIN_POOL_BYTES = POOL_OVERHEAD_BYTES + MIN_BLOCK_BYTES;

/**
 * The largest block size any request can lead to: the buffer, hence any pool, is below
 * 4 GiB. Requests are compared with it before any 32-bit arithmetic.
 */
export const MAX_BLOCK_BYTES = 0xffff_fff0;

// --- control state -------------------------------------------------------------------------

/**
 * 'TLS3' as a little-endian word. Not 'TLSF' any more: the counters and the pool table left
 * the state (they are core's now); not 'TLS2' since the trailer's slack field grew to six
 * bits (refill runs). A state formatted with an old layout is refused.
 */
export const TLSF_MAGIC = 0x33534c54;
/** Offset of the magic word, TLSF_MAGIC once `init` has formatted the state. */
export const ST_MAGIC = 0;
/** Offset of the first-level bitmap. */
export const ST_FL_BITMAP = 4;
/** Offset of the FL_COUNT second-level bitmaps, on a cache line of their own. */
export const ST_SL_BITMAPS = 64;
/** Offset of the LIST_COUNT free-list heads. */
export const ST_LIST_HEADS = ST_SL_BITMAPS + FL_COUNT * 4;
/** Bytes of control state the TLSF backend asks for. */
export const STATE_BYTES = ST_LIST_HEADS + LIST_COUNT * 4;

// --- pools -------------------------------------------------------------------------------------

/**
 * Where the TLSF pool over core's pool `[start, end)` lies: its bounds rounded in to the
 * granularity. Its front sentinel is at `start`, its end sentinel at `end - 8`.
 */
export function poolBounds(start: number, end: number): { start: number; end: number } {
  return { start: start + ((GRANULARITY - (start % GRANULARITY)) % GRANULARITY), end: end - (end % GRANULARITY) };
}

// --- what check.ts and recover.ts read ------------------------------------------------------

/**
 * A TLSF heap as check.ts and recover.ts see it: the views, where the state and the arena
 * are, and core's counters and pool table. Declared beside the layout they read, so they
 * depend on the layout and not on tlsf.ts (which imports them).
 */
export interface HeapView {
  readonly u32: Uint32Array;
  readonly stateOffset: number;
  readonly arenaStart: number;
  readonly arenaEnd: number;
  readonly counters: StateCounters;
  readonly pools: PoolView;
}

// --- header words --------------------------------------------------------------------------

/** The block size in a size word, without flag or slack bits. */
export function sizeOfWord(sizeWord: number): number {
  return sizeWord - (sizeWord & SIZE_FLAG_BITS);
}

/** The address in a prevPhys word, without slack bits. */
export function addressOfWord(prevWord: number): number {
  return prevWord - (prevWord & PREV_SLACK_BITS);
}

/** A live block's slack, from its two header words. */
export function slackOfWords(prevWord: number, sizeWord: number): number {
  return (prevWord & PREV_SLACK_BITS) | ((sizeWord & SIZE_SLACK_BITS) << 2);
}

/**
 * The trailer word of an over-aligned block at `block` of `size` bytes: its slack and
 * log2(alignment), with a check that depends on both and on the block's address and size, so
 * that an overflow into the trailer, or a stale trailer left at another block's end, is seen.
 */
export function trailerWord(block: number, size: number, slack: number, alignLog2: number): number {
  const fields = slack | (alignLog2 << TRAILER_ALIGN_SHIFT);
  let h = Math.imul(block ^ (fields << 16), 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 15) ^ size, 0x85ebca6b);
  h ^= h >>> 13;
  return ((h & TRAILER_CHECK_MASK) | fields) >>> 0;
}

/** Whether `word` is a valid trailer for the block at `block` of `size` bytes. */
export function trailerValid(word: number, block: number, size: number): boolean {
  const slack = word & TRAILER_SLACK_MASK;
  const alignLog2 = (word >>> TRAILER_ALIGN_SHIFT) & TRAILER_ALIGN_MASK;
  return (
    word === trailerWord(block, size, slack, alignLog2) &&
    slack <= (alignLog2 === GRANULARITY_LOG2 ? MAX_LINE_SLACK : MAX_SLACK) &&
    slack <= size - HEADER_BYTES - TRAILER_BYTES &&
    alignLog2 >= GRANULARITY_LOG2 &&
    alignLog2 <= 30
  );
}
