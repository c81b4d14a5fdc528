/**
 * Every shared-memory structure of the buddy backend, drawn once; each field offset and each
 * code is named here and only here. Its counters (total, used = granted, peak, requested,
 * live, metadata) are core's (`ctx.counters`) and its pools core's pool table (`ctx.pools`):
 * neither is drawn here. What the backend needs per pool (where its map ends and its blocks
 * begin) follows from the pool's range, so it keeps no pool table of its own. Core's
 * free-block counter stays 0: counting every push and unlink there as well as in the list
 * lengths below made malloc/free pairs about 8 % slower, so the free blocks are the sum of
 * the lengths.
 *
 * ```text
 *  control state (u32 words at ctx.stateOffset, STATE_BYTES long)
 *  0     magic 'BDY2' (ST_MAGIC)                 written last by init
 *  4     non-empty lists (ST_NON_EMPTY)          bit k set iff the free list of order k is
 *                                                not empty
 *  8     free-list heads (ST_HEADS)              32 words; word k = first free block of order
 *                                                k, 0 = empty (orders MIN_ORDER..MAX_ORDER)
 *  136   free-list lengths (ST_LENGTHS)          32 words; word k = blocks on list k
 *  264   end (STATE_BYTES)
 *
 *  one pool: a range [start, start + size) of core's pool table, its bounds rounded inwards
 *  to 16 (mapStart = start rounded up, end = start + size rounded down, blocksStart =
 *  blocksStartOf(mapStart, end) in pools.ts)
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
 *       START  kind   order o (or code c)
 *       1      0 0    o         FREE      free block of order o, on the free list of order o
 *       1      0 1    o         PAGES     live block of order o (>= PAGE_ORDER), part of a
 *                                         page run (BuddyPageAllocator)
 *       1      1 0    o         LIVE      live byte block of order o (> MIN_ORDER); its slack
 *                                         (block size - requested size) and its alignment
 *                                         are in the interior entries below
 *       1      1 1    c         LIVE_MIN  live byte block of order MIN_ORDER (16 bytes):
 *                                         c = 0..16: aligned to 8, slack c;
 *                                         c = 17..31: aligned to 16, slack c - 17 (0..14)
 *       0      d d d d d d d              any unit but a block's first: 7-bit digits, see
 *                                         below; every other interior entry is 0 at rest
 *
 *  the interior entries after a LIVE start entry at index e (order o)
 *  o = 5       e+1: slack + 33 * (log2(align) - 3)          (slack 0..32, align 8..32: <= 98)
 *  o >= 6      e+1 .. e+d: slack, 7 bits a digit, lowest first (d = slackDigits(o): 1 for
 *              o = 6, 2 for 7..13, 3 for 14..20, 4 for 21..27, 5 for 28..30)
 *              e+d+1: log2(align) - 3                        (0 .. o - 3)
 *  A block of order o has 2^(o-4) - 1 interior entries: 1 for o = 5, and at least d + 1
 *  from o = 6 on, so every order has room. The alignment is the one asked for (at least
 *  8), kept exactly so `dealloc` can check a layout's alignment, not only the address's.
 *  Invariant (check() and recover() verify it): a live byte block's order is exactly
 *  orderFor(requested, log2(align)) (orders.ts), so the alignment never exceeds the block.
 *  A 16-byte block aligned to 16 has codes for slack 0..14 only (34 pairs of slack and
 *  alignment do not fit in 5 bits): requests of 0 or 1 byte aligned to 16 take 32 bytes.
 *
 *  free block (any order: the smallest block, 16 bytes, holds all three words)
 *  +0  next free block of the same order (FB_NEXT, 0 = last)
 *  +4  previous free block of the same order (FB_PREV, 0 = first: the list head points here)
 *  +8  mapStart of the block's pool (FB_MAP_START), so taking a block needs no pool search
 * ```
 *
 * ## What a dead thread leaves, and how `recover` rebuilds
 *
 * A thread may die between any two stores of an operation, inside the heap lock. What
 * `recover` trusts is core's pool table and the order maps; everything else (free-list links,
 * heads, lengths, the non-empty mask, `FB_MAP_START` words, every counter) it rewrites.
 *
 * The rule that keeps the map trustworthy: a pool's blocks are the walk from blocksStart
 * that jumps from each START entry to the end of its block. START entries that a jump
 * passes over are stale and mean nothing. Every operation writes the entries of the blocks
 * it creates inside an existing block first (invisible: the walk jumps over them), and then
 * the one start entry that exposes them: a single byte, so the map tiles every pool at
 * every store. The operations, store by store:
 *
 * - take (allocate, split): pop the free block F of order K; write the start entry of each
 *   upper half (FREE, pushed on its list) and the new block's interior digits, all inside F;
 *   then F's entry (LIVE), which commits. Before it, F is still free of order K.
 * - give (free, merge): write the merged block's start entry (FREE of the merged order),
 *   which commits (the freed block's LIVE entry and the buddies' entries are now inside it,
 *   stale); then take each buddy off its list, clearing its stale entry, and push the merged
 *   block. Before the commit, the freed block is live with its bytes untouched; the lists
 *   may change on either side of it, as recovery rebuilds them.
 * - shrink in place: the freed upper halves' entries (inside the block), the new digits,
 *   then the block's start entry. Grow in place: the buddies leave their lists, the block's
 *   start entry (of the larger order) commits, then the buddies' stale entries are cleared
 *   and the new digits written.
 * - allocPages: as take, with the run's blocks (PAGES) and the freed tail halves written
 *   inside the popped block before its start entry commits the whole run. allocPagesAt: per
 *   block of the run's decomposition, the halves around it and its own PAGES entry inside
 *   the free block holding it, then that block's start entry. deallocPages: one give per
 *   block of the run.
 * - addMemory: the new pool's map is zeroed and its FREE entries written, its blocks go on
 *   the lists, and core records the range in its pool table once addMemory returns (still
 *   under the heap lock). A thread dying before that leaves a formatted range no pool lists,
 *   with its blocks on the lists: recovery, which walks the listed pools only, rebuilds the
 *   lists without them, so that range (and only it) is not part of the heap.
 *
 * The one window no order of single-byte stores closes: a block's interior digits (slack and
 * alignment) and its start entry are different bytes. A resize in place rewrites both, so a
 * thread dying in it leaves a live block whose digits may be old, new or a mix. Recovery
 * trusts the start entry (the block stays live, of the order it says, its bytes intact) and
 * keeps the digits when they are valid for that order (orderFor(requested, align) is the
 * order); when they are not, it resets them to "requested = the whole block, aligned to 8"
 * and says so in its notes. Only that block's requested size and alignment can be off.
 *
 * `recover` then: walks each pool as above (a START entry missing where a block must start,
 * an order out of range for its kind, a misaligned block or one past the pool's end is
 * `HeapCorrupted`: nothing sound to rebuild from); clears stale START entries inside every
 * block, and any entry of the map's own units; resets invalid digits; merges free buddies
 * (none are left unmerged by the orders above, but a merge costs nothing to redo); links
 * every free block on its list in address order with its `FB_MAP_START`; and restores
 * core's counters from what it found (used, requested, live blocks, and the totals of the
 * listed pools), which raises the peak to the used bytes. A dead allocation may leave a block live that nobody holds: it stays live (recovery
 * cannot tell it from a block the thread handed out), so `lostBytes` is 0: every byte of a
 * pool is in a block again. `BuddyPageAllocator` keeps no state of its own (its runs are
 * PAGES blocks of the same map), so the same rebuild covers it; its caller's lock is the
 * one whose death calls for `recover` (the heap lock when it shares a `GlobalAllocator`).
 *
 * ## Corruption
 *
 * A program that writes past a block or after a free can overwrite a free block's three
 * words. No link is followed, written through or handed out until it names a free block of
 * the list's order: inside a pool (the pool whose map its `FB_MAP_START` names), aligned to
 * its order, its map entry FREE of that order; and a block whose `FB_PREV` is 0 must be its
 * list's head. The head an operation takes, the neighbours of every block it unlinks and
 * the head of every list it pushes on are checked so before the operation's first store, so
 * an operation that finds damage raises `HeapCorrupted` having changed nothing. (An
 * `allocPagesAt` or `deallocPages` of several blocks checks and edits one block at a time:
 * damage met at a later block leaves the earlier ones done, each fully and counted.) The
 * hot paths walk no list: they take heads and unlink blocks found through the map; the one
 * walk, `check()`'s, stops at the number of free blocks of the list's order that its map
 * walk found. Checked mode (`BackendContext.checked`) also verifies, per operation, that
 * the lists it touches link back (a neighbour's `FB_PREV` or `FB_NEXT` names the block, a
 * head's `FB_PREV` is 0), that an unlinked block records its pool, and that a freed or
 * resized block's digits are valid.
 *
 * Addresses reach 2^31 and more (the buffer can be almost 4 GiB), so they are stored as
 * unsigned words and never pass through `| 0`. Every counter is bounded by the arena, below
 * 4 GiB, so each fits one word.
 */

import { type AllocError, heapCorrupted } from '@heaplab/core/backend';

// --- control state -----------------------------------------------------------------------

/** 'BDY2' as a little-endian word ('BDY1' kept counters and a pool table in the state). */
export const BUDDY_MAGIC = 0x32594442;
/** Byte offset of the magic word: `BUDDY_MAGIC` once `init` has formatted the state. */
export const ST_MAGIC = 0;
/** Byte offset of the mask of non-empty free lists (bit k: list k). */
export const ST_NON_EMPTY = 4;
/** Byte offset of the free-list heads, one word per order. */
export const ST_HEADS = 8;
/** Words in the head and length arrays: one per possible order of a 32-bit address space. */
export const LIST_SLOTS = 32;
/** Byte offset of the free-list lengths, one word per order. */
export const ST_LENGTHS = ST_HEADS + LIST_SLOTS * 4;
/** Bytes of control state the buddy backend asks for. */
export const STATE_BYTES = ST_LENGTHS + LIST_SLOTS * 4;

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
/**
 * LIVE_MIN codes from this one up are blocks aligned to 16, slack = code - this; below it,
 * blocks aligned to 8, slack = code (0..16).
 */
export const LIVE_MIN_ALIGNED = 17;
/** The order-5 digit is slack + this * (log2(align) - ALIGN_BASE_LOG): slack runs 0..32. */
export const ORDER5_ALIGN_STRIDE = 33;
/** log2 of the smallest alignment recorded (MIN_ALIGN, 8): alignment digits count from it. */
export const ALIGN_BASE_LOG = 3;

// --- free blocks -------------------------------------------------------------------------

/** Byte offset in a free block of the next free block of its order. */
export const FB_NEXT = 0;
/** Byte offset in a free block of the previous free block of its order. */
export const FB_PREV = 4;
/** Byte offset in a free block of its pool's mapStart. */
export const FB_MAP_START = 8;

/** A broken structure of the buddy heap: every `HeapCorrupted` it raises names it so. */
export function corrupt(message: string): AllocError {
  return heapCorrupted('buddy heap', message);
}
