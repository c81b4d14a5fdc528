/**
 * Every shared-memory structure of the buddy backend, drawn once; each field offset and each
 * code is named here and only here.
 *
 * ```text
 *  control state (u32 words at ctx.stateOffset, STATE_BYTES long)
 *  0     magic 'BDY1' (ST_MAGIC)                 written last by init
 *  4     pools in the table (ST_POOL_COUNT)
 *  8     totalBytes (ST_TOTAL)                   bytes of every pool's block area
 *  12    usedBytes (ST_USED)                     sizes of live blocks; blocks have no header,
 *                                                so this is also grantedBytes
 *  16    peakUsedBytes (ST_PEAK)
 *  20    requestedBytes (ST_REQUESTED)           sizes asked for, over live blocks
 *  24    liveBlocks (ST_LIVE)
 *  28    metadataBytes (ST_METADATA)             order maps and their padding, over all pools
 *  32    totalPages (ST_TOTAL_PAGES)             page-aligned 4 KiB pages inside block areas
 *  36    non-empty lists (ST_NON_EMPTY)          bit k set iff the free list of order k is
 *                                                not empty
 *  40    reserved, zero
 *  64    free-list heads (ST_HEADS)              32 words; word k = first free block of order
 *                                                k, 0 = empty (orders MIN_ORDER..MAX_ORDER)
 *  192   free-list lengths (ST_LENGTHS)          32 words; word k = blocks on list k
 *  320   pool table (ST_POOLS)                   BUDDY_MAX_POOLS entries of 16 bytes:
 *          +0 mapStart (PE_MAP_START) | +4 blocksStart (PE_BLOCKS_START) | +8 end (PE_END)
 *          +12 reserved
 *  1344  end (STATE_BYTES)
 *
 *  one pool in the arena (mapStart, blocksStart and end are multiples of 16)
 *  mapStart                      blocksStart                                           end
 *  +-----------------------------+-----+----------------------------------------------+
 *  | order map: one byte for     | pad | blocks: 2^k bytes (k = MIN_ORDER..MAX_ORDER), |
 *  | each 16-byte unit of        |     | each at an address that is a multiple of 2^k  |
 *  | [mapStart, end)             |     | (naturally aligned in absolute terms)         |
 *  +-----------------------------+-----+----------------------------------------------+
 *  the entry of the unit holding address a is the byte at mapStart + ((a - mapStart) >>> 4)
 *
 *  order-map entry (one byte)
 *  bit  7      6 5    4 3 2 1 0
 *       START  kind   order o (or slack s)
 *       1      0 0    o         FREE      free block of order o, on the free list of order o
 *       1      0 1    o         PAGES     live block of order o (>= PAGE_ORDER), part of a
 *                                         page run (BuddyPageAllocator)
 *       1      1 0    o         LIVE      live byte block of order o (> MIN_ORDER); its slack
 *                                         (block size - requested size) is in the digits below
 *       1      1 1    s         LIVE_MIN  live byte block of order MIN_ORDER, slack s (0..16)
 *       0      d d d d d d d              any unit but a block's first; the first
 *                                         slackDigits(o) of these after a LIVE entry hold its
 *                                         slack, 7 bits each, lowest digit first
 *
 *  free block (any order: the smallest block, 16 bytes, holds all three words)
 *  +0  next free block of the same order (FB_NEXT, 0 = last)
 *  +4  previous free block of the same order (FB_PREV, 0 = first: the list head points here)
 *  +8  mapStart of the block's pool (FB_MAP_START), so taking a block needs no pool search
 * ```
 *
 * Addresses reach 2^31 and more (the buffer can be almost 4 GiB), so they are stored as
 * unsigned words and never pass through `| 0`. Every counter is bounded by the arena, below
 * 4 GiB, so each fits one word.
 */

// --- control state -----------------------------------------------------------------------

/** 'BDY1' as a little-endian word. */
export const BUDDY_MAGIC = 0x31594442;
/** Byte offset of the magic word: `BUDDY_MAGIC` once `init` has formatted the state. */
export const ST_MAGIC = 0;
/** Byte offset of the number of pools in the table. */
export const ST_POOL_COUNT = 4;
/** Byte offset of totalBytes: bytes of every pool's block area. */
export const ST_TOTAL = 8;
/** Byte offset of usedBytes: sizes of live blocks. */
export const ST_USED = 12;
/** Byte offset of peakUsedBytes. */
export const ST_PEAK = 16;
/** Byte offset of requestedBytes: sizes asked for, over live blocks. */
export const ST_REQUESTED = 20;
/** Byte offset of liveBlocks. */
export const ST_LIVE = 24;
/** Byte offset of metadataBytes: order maps and their padding. */
export const ST_METADATA = 28;
/** Byte offset of totalPages: page-aligned 4 KiB pages inside the block areas. */
export const ST_TOTAL_PAGES = 32;
/** Byte offset of the mask of non-empty free lists (bit k: list k). */
export const ST_NON_EMPTY = 36;
/** Byte offset of the free-list heads, one word per order. */
export const ST_HEADS = 64;
/** Byte offset of the free-list lengths, one word per order. */
export const ST_LENGTHS = 192;
/** Words in the head and length arrays: one per possible order of a 32-bit address space. */
export const LIST_SLOTS = 32;
/** Byte offset of the pool table. */
export const ST_POOLS = 320;

// --- pool table entries ------------------------------------------------------------------

/** Bytes per pool-table entry. */
export const POOL_ENTRY_BYTES = 16;
/** First byte of the pool's order map (the pool's start, rounded up to 16). */
export const PE_MAP_START = 0;
/** First byte of the pool's block area: the map's end, rounded up to 16. */
export const PE_BLOCKS_START = 4;
/** One past the pool's last byte (the pool's end, rounded down to 16). */
export const PE_END = 8;
/** The most pools (`init` and `addMemory` ranges) one buddy heap manages: core's pool table size. */
export const BUDDY_MAX_POOLS = 64;

/** Bytes of control state the buddy backend asks for. */
export const STATE_BYTES = ST_POOLS + BUDDY_MAX_POOLS * POOL_ENTRY_BYTES;

// --- order-map entries -------------------------------------------------------------------

/** Bytes of arena per order-map entry: the smallest block. */
export const UNIT_BYTES = 16;
/** log2(UNIT_BYTES): an offset from mapStart shifted by this is an entry index. */
export const UNIT_SHIFT = 4;
/** Set on the entry of a block's first unit, clear on every other entry. */
export const START = 0x80;
/** The START bit and the two kind bits. */
export const KIND_MASK = 0xe0;
/** The order (or, in LIVE_MIN, the slack) of a start entry. */
export const ORDER_MASK = 0x1f;
/** Kind of a free block's start entry. */
export const FREE = 0x80;
/** Kind of the start entry of a live block that belongs to a page run. */
export const PAGES = 0xa0;
/** Kind of the start entry of a live byte block above the smallest order. */
export const LIVE = 0xc0;
/** Kind of the start entry of a live byte block of the smallest order. */
export const LIVE_MIN = 0xe0;
/** Bits of slack each interior digit entry holds (bit 7 stays clear). */
export const SLACK_DIGIT_BITS = 7;

// --- free blocks -------------------------------------------------------------------------

/** Byte offset in a free block of the next free block of its order. */
export const FB_NEXT = 0;
/** Byte offset in a free block of the previous free block of its order. */
export const FB_PREV = 4;
/** Byte offset in a free block of its pool's mapStart. */
export const FB_MAP_START = 8;
