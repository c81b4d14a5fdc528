/**
 * Every shared-memory structure of the TLSF backend, drawn once: the control state at
 * `ctx.stateOffset` and the block format in the arena. All fields are little-endian u32
 * words. Addresses may be 2^31 or more, so they are kept as unsigned numbers: a size or an
 * address is taken out of a word as `word - (word & mask)`, never with `| 0` or a bare `& ~mask`,
 * whose int32 results turn negative above 2^31.
 *
 * ```text
 *  control state (u32 words at ctx.stateOffset)
 *  0     magic 'TLSF' (ST_MAGIC)              written by init; check() refuses state without it
 *  4     first-level bitmap (ST_FL_BITMAP)    bit f set <=> second-level bitmap f is not 0
 *  8     pools in the table (ST_POOL_COUNT)
 *  12    totalBytes (ST_TOTAL)                pool bytes minus sentinels: what usedBytes can reach
 *  16    usedBytes (ST_USED)                  sizes of live blocks, headers included
 *  20    peakUsedBytes (ST_PEAK)
 *  24    requestedBytes (ST_REQUESTED)        sizes callers asked for, over live blocks
 *  28    liveBlocks (ST_LIVE)
 *  32    freeBlocks (ST_FREE)                 = blocks on all free lists
 *  36    reserved, zero
 *  64    second-level bitmaps (ST_SL_BITMAPS): FL_COUNT words; bit s of word f set <=> list
 *        (f, s) is not empty
 *  164   free-list heads (ST_LIST_HEADS): FL_COUNT x SL_COUNT words, list (f, s) at index
 *        f * SL_COUNT + s; 0 = empty
 *  3364  pool table (ST_POOLS): TLSF_MAX_POOLS x { +0 start, +4 end }, both 8-aligned
 *  3876  end (STATE_BYTES)
 *
 *  a pool [start, end)
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
 * ```
 *
 * The header has no spare word for a tag, so the low bits of both words carry the slack
 * (usable minus requested size, 0..MAX_SLACK), which keeps `requestedBytes` exact at no cost
 * in space. There is no PREV_FREE bit, unlike the TLSF paper's header: prevPhys is valid in
 * every block (as in rlsf), and `release` reads the previous header anyway to validate the
 * address, so the bit would only repeat that header's USED bit; its room holds slack instead.
 * A live block needs 8 bytes of header; a free block must also hold its two links, hence
 * MIN_BLOCK_BYTES = 16.
 */

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

/** 'TLSF' as a little-endian word. */
export const TLSF_MAGIC = 0x46534c54;
/** Offset of the magic word, TLSF_MAGIC once `init` has formatted the state. */
export const ST_MAGIC = 0;
/** Offset of the first-level bitmap. */
export const ST_FL_BITMAP = 4;
/** Offset of the number of pools in the pool table. */
export const ST_POOL_COUNT = 8;
/** Offset of totalBytes: pool bytes minus sentinels. */
export const ST_TOTAL = 12;
/** Offset of usedBytes: sizes of live blocks, headers included. */
export const ST_USED = 16;
/** Offset of peakUsedBytes. */
export const ST_PEAK = 20;
/** Offset of requestedBytes: sizes asked for, over live blocks. */
export const ST_REQUESTED = 24;
/** Offset of the number of live blocks. */
export const ST_LIVE = 28;
/** Offset of the number of free blocks (all on lists). */
export const ST_FREE = 32;
/** Offset of the FL_COUNT second-level bitmaps. */
export const ST_SL_BITMAPS = 64;
/** Offset of the LIST_COUNT free-list heads. */
export const ST_LIST_HEADS = ST_SL_BITMAPS + FL_COUNT * 4;
/** Offset of the pool table. */
export const ST_POOLS = ST_LIST_HEADS + LIST_COUNT * 4;
/** Bytes of one pool-table entry. */
export const POOL_ENTRY_BYTES = 8;
/** Offset of a pool's first byte (its front sentinel) in its entry. */
export const PE_START = 0;
/** Offset of a pool's end (one past its end sentinel) in its entry. */
export const PE_END = 4;
/** The most pools (`init` plus `addMemory` ranges) one TLSF heap manages: core's limit too. */
export const TLSF_MAX_POOLS = 64;
/** Bytes of control state the TLSF backend asks for. */
export const STATE_BYTES = ST_POOLS + TLSF_MAX_POOLS * POOL_ENTRY_BYTES;

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
