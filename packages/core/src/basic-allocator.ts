/**
 * The basic backend: a boundary-tagged, coalescing free-list allocator with first-, best- or
 * worst-fit placement (Knuth's boundary tags, dlmalloc's PREV_USED trick, Wilson et al.'s
 * address-ordered free list).
 *
 * Every bit of state lives in the shared buffer: the control state below at
 * `ctx.stateOffset`, and block headers in the arena. An instance holds only views and
 * constants, so the instance another thread creates over the same buffer sees the same heap.
 * The facade calls every method with the heap mutex held, so plain reads and writes suffice.
 *
 * ```text
 *  control state (u32 words, at ctx.stateOffset)
 *  0    magic 'BSC1' (ST_MAGIC)          set by init; check() refuses state without it
 *  4    first free block (ST_FREE_HEAD)  0 = the free list is empty
 *  8    pools in the table (ST_POOL_COUNT)
 *  12   totalBytes (ST_TOTAL)            pool bytes minus sentinels: what usedBytes can reach
 *  16   usedBytes (ST_USED)              sizes of live blocks, headers included
 *  20   peakUsedBytes (ST_PEAK)
 *  24   requestedBytes (ST_REQUESTED)    sizes callers asked for, over live blocks
 *  28   grantedBytes (ST_GRANTED)        usable sizes of live blocks
 *  32   liveBlocks (ST_LIVE)
 *  36   freeBlocks (ST_FREE)             = length of the free list
 *  40   reserved, zero
 *  64   pool table: BASIC_MAX_POOLS x { +0 start, +4 end } (ST_POOLS), both 8-aligned;
 *       the pool's sentinel is at end - 8
 *  576  end (STATE_BYTES)
 *
 *  blocks (every block starts 8-aligned; the payload is at block + 8)
 *  used block                          free block
 *  +0 u32 size | flags                 +0 u32 size | flags
 *  +4 u32 tag                          +4 u32 (unused)
 *  +8 payload ...                      +8 u32 next free block (0 = none)
 *                                      +12 u32 previous free block (0 = none)
 *                                      ... size-4: u32 footer = size
 *  flags: bit0 USED, bit1 PREV_USED (the physically previous block is live)
 *
 *  tag of a used block, bit by bit
 *  31 ............ 11 | 10 .. 6        | 5 .. 0
 *  hash (21 bits)     | log2(align) - 3 | slack: usable - requested (0..63)
 *
 *  a pool: [block][block]...[block][sentinel: size 0 | USED]
 * ```
 *
 * ## What a dead thread leaves, and how `recover` rebuilds
 *
 * The headers tile each pool at every instant: every store that changes a block's size
 * first writes the headers of the blocks it exposes, then the one header that exposes them
 * (a carve writes the new block's and the tail's headers before it shrinks the free block it
 * cuts them from; `addMemory` formats a pool before the table entry that publishes it). So
 * however a thread died inside the lock, walking a pool by header sizes still reaches its
 * sentinel. A block is live if its header says USED and its tag matches (a carve that died
 * before writing the tag leaves a block nobody was given: it is free); everything else is
 * free. `recover` walks the pools that way and rewrites all the rest: merged free blocks
 * with their footers, PREV_USED bits, the address-ordered free list and every counter.
 *
 * ## Corruption
 *
 * Every walk of the free list is bounded by the free-block count and every link is checked
 * before it is followed (8-aligned, inside the arena, a header without USED), so a write
 * after free or an overflow into a free block's links raises `HeapCorrupted` instead of
 * looping or handing out a live block or an address outside the arena. Checked mode
 * (`BackendContext.checked`) also verifies, at every operation, the neighbours it touches.
 *
 * All counters fit in 32 bits because they are bounded by the arena, which is below 4 GiB.
 * Addresses may be 2^31 or more, so they are handled as unsigned words and plain numbers and
 * never pass through `| 0`; sizes are read as `hdr - (hdr & FLAGS)` for the same reason.
 */

import { AllocError, hex } from './errors.js';
import { checkArenaRange } from './layout.js';
import type { BackendStats, CheckReport } from './interfaces.js';
import type { Backend, BackendContext, BackendDescriptor, BackendRepair, BlockLayout, RepairCause } from './backend/contract.js';

// --- options -----------------------------------------------------------------------------

/** The placement strategies of the basic backend, in the order `heaplab backends` lists them. */
export const BASIC_STRATEGIES = ['first-fit', 'best-fit', 'worst-fit'] as const;

/** One of `BASIC_STRATEGIES`. */
export type BasicStrategy = (typeof BASIC_STRATEGIES)[number];

/** The basic backend's normalised options. */
export interface BasicOptions {
  /**
   * Which free block a request takes: `first-fit` the lowest-addressed that fits, `best-fit`
   * the smallest (lowest address among equals), `worst-fit` the largest (likewise).
   */
  strategy: BasicStrategy;
}

const DEFAULT_STRATEGY: BasicStrategy = 'first-fit';
const FIRST_FIT = 0;
const BEST_FIT = 1;
const WORST_FIT = 2;

// --- block format ------------------------------------------------------------------------

const HEADER_BYTES = 8;
/** Header + two links + footer: a free block must hold all of them. */
const MIN_BLOCK = 24;
const MIN_USABLE = MIN_BLOCK - HEADER_BYTES;
const SENTINEL_BYTES = 8;
const USED = 1;
const PREV_USED = 2;
const FLAGS = 7;
const B_TAG = 4;
const B_NEXT = 8;
const B_PREV = 12;
/** The tag's hash bits; the bits below hold the alignment and the slack (usable - requested). */
const TAG_HASH = 0xfffff800;
/** log2 of the alignment the block was allocated with, less 3 (alignments 8 to 2^30). */
const TAG_ALIGN_SHIFT = 6;
const TAG_ALIGN_MASK = 0x1f;
/** Slack is below 40 (rounding to 8, plus a tail too small to split), so 6 bits hold it. */
const SLACK_MASK = 0x3f;
/**
 * Requests above this cannot fit in any heap (the buffer is below 4 GiB); refusing them
 * early keeps every size below 2^32 in the arithmetic that follows.
 */
const MAX_REQUEST = 0xffff_fff0;

// --- control state -----------------------------------------------------------------------

const BASIC_MAGIC = 0x31435342; // 'BSC1' little-endian
const ST_MAGIC = 0;
const ST_FREE_HEAD = 4;
const ST_POOL_COUNT = 8;
const ST_TOTAL = 12;
const ST_USED = 16;
const ST_PEAK = 20;
const ST_REQUESTED = 24;
const ST_GRANTED = 28;
const ST_LIVE = 32;
const ST_FREE = 36;
const ST_POOLS = 64;
const POOL_ENTRY_BYTES = 8;
const PE_START = 0;
const PE_END = 4;
/** The most pools (`init` + `addMemory` ranges) one basic heap manages. */
const BASIC_MAX_POOLS = 64;
/** Bytes of control state the basic backend asks for. */
const STATE_BYTES = ST_POOLS + BASIC_MAX_POOLS * POOL_ENTRY_BYTES;

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
function makeTag(block: number, size: number, cookie: number, align: number, slack: number): number {
  return ((mix(block, size, cookie) & TAG_HASH) | ((31 - Math.clz32(align) - 3) << TAG_ALIGN_SHIFT) | slack) >>> 0;
}

/**
 * Whether `tag` is the tag of a live block at `block` of `size` bytes: the hash matches, the
 * slack fits, and the payload has the alignment the tag records.
 */
function tagMatches(tag: number, block: number, size: number, cookie: number): boolean {
  const alignMask = (1 << (((tag >>> TAG_ALIGN_SHIFT) & TAG_ALIGN_MASK) + 3)) - 1;
  return (
    ((tag ^ mix(block, size, cookie)) & TAG_HASH) === 0 &&
    (tag & SLACK_MASK) <= size - HEADER_BYTES &&
    ((block + HEADER_BYTES) & alignMask) === 0
  );
}

function corrupt(message: string): AllocError {
  return new AllocError('HeapCorrupted', `basic heap: ${message}`);
}

function notAllocated(address: number): AllocError {
  return new AllocError(
    'NotAllocated',
    `${hex(address)} is not the start of a live block (double free, interior pointer, or never allocated)`,
  );
}

/**
 * One thread's handle on a basic heap: a coalescing, address-ordered free list with
 * boundary tags. Create it through `basicBackend.create`; every instance over the same buffer
 * and `stateOffset` sees and edits the same heap. Not thread-safe: call it under the heap lock.
 */
export class BasicAllocator implements Backend {
  private readonly u32: Uint32Array;
  private readonly cookie: number;
  private readonly strategy: number;
  private readonly checked: boolean;
  private readonly arenaStart: number;
  private readonly arenaEnd: number;
  private readonly stateOffset: number;
  // Word indices of the control-state fields, computed once so hot paths only index.
  private readonly sMagic: number;
  private readonly sHead: number;
  private readonly sPoolCount: number;
  private readonly sTotal: number;
  private readonly sUsed: number;
  private readonly sPeak: number;
  private readonly sRequested: number;
  private readonly sGranted: number;
  private readonly sLive: number;
  private readonly sFree: number;
  private readonly sPools: number;

  /**
   * Makes a handle over `ctx`'s shared state; does not format it (`init` does).
   * @throws AllocError `InvalidParam` when the state area is smaller than
   *   `basicBackend.stateBytes` or misaligned, or `options.strategy` is not a known strategy
   */
  constructor(ctx: BackendContext, options: BasicOptions) {
    const strategy = BASIC_STRATEGIES.indexOf(options.strategy);
    if (strategy < 0) {
      throw new AllocError(
        'InvalidParam',
        `basic backend: strategy ${JSON.stringify(options.strategy)} is not one of ${BASIC_STRATEGIES.join(', ')}`,
      );
    }
    if (ctx.stateBytes < STATE_BYTES || ctx.stateOffset % 8 !== 0) {
      throw new AllocError(
        'InvalidParam',
        `basic backend needs ${STATE_BYTES} bytes of 8-aligned state; got ${ctx.stateBytes} at ${hex(ctx.stateOffset)}`,
      );
    }
    this.u32 = ctx.memory.u32;
    this.cookie = ctx.cookie;
    this.strategy = strategy;
    this.checked = ctx.checked;
    this.arenaStart = ctx.arenaStart;
    this.arenaEnd = ctx.arenaEnd;
    this.stateOffset = ctx.stateOffset;
    const base = ctx.stateOffset >>> 2;
    this.sMagic = base + (ST_MAGIC >>> 2);
    this.sHead = base + (ST_FREE_HEAD >>> 2);
    this.sPoolCount = base + (ST_POOL_COUNT >>> 2);
    this.sTotal = base + (ST_TOTAL >>> 2);
    this.sUsed = base + (ST_USED >>> 2);
    this.sPeak = base + (ST_PEAK >>> 2);
    this.sRequested = base + (ST_REQUESTED >>> 2);
    this.sGranted = base + (ST_GRANTED >>> 2);
    this.sLive = base + (ST_LIVE >>> 2);
    this.sFree = base + (ST_FREE >>> 2);
    this.sPools = base + (ST_POOLS >>> 2);
  }

  // --- memory given to the heap ------------------------------------------------------------

  /**
   * Formats the shared state and takes `[start, start + size)` as the first pool.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small for one
   *   minimum block and the sentinel
   */
  init(start: number, size: number): void {
    // Check before touching the state, so a refused init leaves the buffer as it was.
    this.poolBounds(start, size);
    const first = this.stateOffset >>> 2;
    this.u32.fill(0, first, first + (STATE_BYTES >>> 2));
    this.u32[this.sMagic] = BASIC_MAGIC;
    this.addMemory(start, size);
  }

  /**
   * Adds `[start, start + size)` as another pool, with its own sentinel: blocks never merge
   * across pools, even adjacent ones.
   * @throws AllocError `InvalidParam` for a range outside the arena, too small, or before
   *   `init`; `MemoryOverlap` when it overlaps a pool; `NoMemory` when the backend's pool
   *   table (64 pools) is full
   */
  addMemory(start: number, size: number): void {
    const u32 = this.u32;
    if (u32[this.sMagic] !== BASIC_MAGIC) {
      throw new AllocError('InvalidParam', 'basic backend: addMemory before init');
    }
    const s = this.poolBounds(start, size);
    const e = start + size - ((start + size) % 8);
    const count = u32[this.sPoolCount]!;
    for (let i = 0; i < count; i++) {
      const ps = u32[this.sPools + i * 2 + (PE_START >>> 2)]!;
      const pe = u32[this.sPools + i * 2 + (PE_END >>> 2)]!;
      if (s < pe && ps < e) {
        throw new AllocError(
          'MemoryOverlap',
          `memory range ${hex(start)}..${hex(start + size)} overlaps the managed range ${hex(ps)}..${hex(pe)}`,
        );
      }
    }
    if (count >= BASIC_MAX_POOLS) {
      throw new AllocError(
        'NoMemory',
        `basic backend: the pool table is full (${BASIC_MAX_POOLS} pools); cannot add ${hex(start)}..${hex(start + size)}`,
      );
    }
    const sentinel = e - SENTINEL_BYTES;
    const blockSize = sentinel - s;
    // Nothing precedes the first block, so it counts as preceded by a live block: that keeps
    // release from ever looking for a footer before the pool. The pool is formatted before
    // the table entry and count publish it, so a death in between leaves no half pool.
    this.writeFree(s, blockSize);
    u32[sentinel >>> 2] = USED;
    u32[(sentinel + B_TAG) >>> 2] = 0;
    u32[this.sPools + count * 2 + (PE_START >>> 2)] = s;
    u32[this.sPools + count * 2 + (PE_END >>> 2)] = e;
    u32[this.sPoolCount] = count + 1;
    this.insertOrdered(s);
    u32[this.sFree] = u32[this.sFree]! + 1;
    u32[this.sTotal] = u32[this.sTotal]! + blockSize;
  }

  /** Returns the 8-aligned start of a checked pool range. */
  private poolBounds(start: number, size: number): number {
    checkArenaRange(start, size, this.arenaStart, this.arenaEnd);
    const s = start % 8 === 0 ? start : start + (8 - (start % 8));
    const e = start + size - ((start + size) % 8);
    if (e - s < MIN_BLOCK + SENTINEL_BYTES) {
      throw new AllocError(
        'InvalidParam',
        `memory range ${hex(start)}..${hex(start + size)} is too small: the basic backend needs at least ` +
          `${MIN_BLOCK + SENTINEL_BYTES} bytes between 8-aligned bounds (one block and the pool sentinel)`,
      );
    }
    return s;
  }

  // --- the hot paths -----------------------------------------------------------------------

  /** Returns the payload address of a block of at least `size` bytes aligned to `align`, or 0. */
  allocate(size: number, align: number): number {
    if (size > MAX_REQUEST) return 0;
    const need = size <= MIN_USABLE ? MIN_USABLE : size + 7 - ((size + 7) % 8);
    const req = need + HEADER_BYTES;
    const u32 = this.u32;
    const strategy = this.strategy;
    let chosen = 0;
    let chosenSize = 0;
    let chosenPayload = 0;
    let b = u32[this.sHead]!;
    // The list holds sFree blocks: a longer walk is a cycle, a bad link is corruption.
    for (let left = u32[this.sFree]!; b !== 0; left--) {
      const hdr = u32[b >>> 2]!;
      if (left === 0 || (b & 7) !== 0 || b < this.arenaStart || b >= this.arenaEnd || (hdr & USED) !== 0) {
        throw this.brokenList(b, left);
      }
      const bsize = hdr - (hdr & FLAGS);
      if (bsize >= req) {
        if (b + bsize > this.arenaEnd) throw corrupt(`free block ${hex(b)} has size ${bsize}, which runs past the arena`);
        let p = b + HEADER_BYTES;
        if (align > HEADER_BYTES) {
          const rest = p % align;
          if (rest !== 0) p += align - rest;
          // The gap before the payload stays a free block, so it must be empty or big
          // enough to be one.
          while (p - HEADER_BYTES - b !== 0 && p - HEADER_BYTES - b < MIN_BLOCK) p += align;
        }
        if (p - HEADER_BYTES - b + req <= bsize) {
          if (strategy === FIRST_FIT) {
            chosen = b;
            chosenSize = bsize;
            chosenPayload = p;
            break;
          }
          // Strict comparisons keep the lowest address among equal sizes: the list is
          // walked in address order.
          if (
            (strategy === BEST_FIT && (chosen === 0 || bsize < chosenSize)) ||
            (strategy === WORST_FIT && bsize > chosenSize)
          ) {
            chosen = b;
            chosenSize = bsize;
            chosenPayload = p;
            if (strategy === BEST_FIT && bsize === req) break;
          }
        }
      }
      b = u32[(b + B_NEXT) >>> 2]!;
    }
    if (chosen === 0) return 0;
    if (this.checked) this.checkFreeBlock(chosen);
    return this.carve(chosen, chosenSize, chosenPayload, req, size, align < 8 ? 8 : align);
  }

  /** The error for a free-list entry that is not a free block of this heap, or a cycle. */
  private brokenList(b: number, left: number): AllocError {
    return left === 0
      ? corrupt(`the free list is longer than its ${this.u32[this.sFree]!} blocks (a cycle, or a stray link) at ${hex(b)}`)
      : corrupt(`the free list links to ${hex(b)}, which is not a free block of the arena (a write after free or an overflow?)`);
  }

  /**
   * Cuts a live block with payload `p` and `req` bytes out of free block `fb`. The gap before
   * it stays `fb`, so the list keeps its order without a search; a tail of at least
   * MIN_BLOCK becomes a free block right after `fb` (or in its place when there is no gap).
   */
  private carve(fb: number, fsize: number, p: number, req: number, requested: number, align: number): number {
    const u32 = this.u32;
    const blk = p - HEADER_BYTES;
    const gap = blk - fb;
    let bsize = req;
    let tail = fsize - gap - req;
    if (tail < MIN_BLOCK) {
      // Too small to be a free block: it goes to the caller as slack.
      bsize += tail;
      tail = 0;
    }
    const end = blk + bsize;
    // Header order keeps the pool tiled at every store (see the file comment): the tail's and
    // the new block's headers first, then the free block's, whose size exposes them.
    if (gap === 0) {
      if (tail === 0) {
        this.unlink(fb);
        u32[this.sFree] = u32[this.sFree]! - 1;
      } else {
        this.replaceInList(fb, end);
        this.writeFree(end, tail);
      }
    } else if (tail !== 0) {
      this.writeFree(end, tail);
    }
    if (tail === 0) u32[end >>> 2] = u32[end >>> 2]! | PREV_USED;
    // A free block is always preceded by a live one (free neighbours are always merged), so
    // without a gap the new block's predecessor is live; with one, it is the free gap.
    u32[blk >>> 2] = bsize | USED | (gap === 0 ? PREV_USED : 0);
    // Slack is at most 16 of rounding plus a tail under MIN_BLOCK, so it fits the tag's bits.
    u32[(blk + B_TAG) >>> 2] = makeTag(blk, bsize, this.cookie, align, bsize - HEADER_BYTES - requested);
    if (gap !== 0) {
      this.writeFree(fb, gap);
      if (tail !== 0) {
        this.insertAfter(fb, end);
        u32[this.sFree] = u32[this.sFree]! + 1;
      }
    }
    const used = u32[this.sUsed]! + bsize;
    u32[this.sUsed] = used;
    if (used > u32[this.sPeak]!) u32[this.sPeak] = used;
    u32[this.sRequested] = u32[this.sRequested]! + requested;
    u32[this.sGranted] = u32[this.sGranted]! + bsize - HEADER_BYTES;
    u32[this.sLive] = u32[this.sLive]! + 1;
    return p;
  }

  /**
   * Frees the block at `address`, merging it at once with free physical neighbours.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  release(address: number): void {
    const b = this.validate(address);
    if (this.checked) this.checkNeighbours(b);
    const u32 = this.u32;
    const hdr = u32[b >>> 2]!;
    let size = hdr - (hdr & FLAGS);
    const slack = u32[(b + B_TAG) >>> 2]! & SLACK_MASK;
    u32[this.sUsed] = u32[this.sUsed]! - size;
    u32[this.sGranted] = u32[this.sGranted]! - (size - HEADER_BYTES);
    u32[this.sRequested] = u32[this.sRequested]! - (size - HEADER_BYTES - slack);
    u32[this.sLive] = u32[this.sLive]! - 1;
    // A USED header with a valid tag must exist only at live blocks: clear both now, before
    // this header may end up inside a merged block, so a second free of `address` fails.
    u32[b >>> 2] = size | (hdr & PREV_USED);
    u32[(b + B_TAG) >>> 2] = 0;
    let start = b;
    const next = b + size;
    const nhdr = u32[next >>> 2]!;
    const nextFree = (nhdr & USED) === 0;
    if ((nhdr & USED) === 0 && next + (nhdr - (nhdr & FLAGS)) > this.validatedPoolEnd) {
      throw corrupt(`the free block ${hex(next)} after ${hex(b)} has size ${nhdr - (nhdr & FLAGS)}, which runs past its pool`);
    }
    if ((hdr & PREV_USED) === 0) {
      // Only free blocks have footers, which is why PREV_USED must be exact: the word before
      // `b` is a size only when the previous block is free. That block is already in the list
      // at the right place, so the merged block keeps its position.
      start = b - u32[(b - 4) >>> 2]!;
      const phdr = u32[start >>> 2] ?? USED;
      if (start < this.validatedPoolStart || (phdr & USED) !== 0 || phdr - (phdr & FLAGS) !== b - start) {
        throw corrupt(`the footer before ${hex(b)} says a free block of ${b - start} bytes at ${hex(start)}, which is not there`);
      }
      size += b - start;
      if (nextFree) {
        size += nhdr - (nhdr & FLAGS);
        this.unlink(next);
        u32[this.sFree] = u32[this.sFree]! - 1;
      }
    } else if (nextFree) {
      // Taking the right neighbour's place in the list keeps the address order.
      size += nhdr - (nhdr & FLAGS);
      this.replaceInList(next, b);
    } else {
      this.insertOrdered(b);
      u32[this.sFree] = u32[this.sFree]! + 1;
    }
    this.writeFree(start, size);
    const after = (start + size) >>> 2;
    u32[after] = u32[after]! & ~PREV_USED;
  }

  /**
   * Bytes usable at `address`: the block size minus its header.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  usableSize(address: number): number {
    const hdr = this.u32[this.validate(address) >>> 2]!;
    return hdr - (hdr & FLAGS) - HEADER_BYTES;
  }

  /**
   * The size asked for when the block was made (or last resized), from the tag's slack.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  requestedSize(address: number): number {
    const b = this.validate(address);
    const hdr = this.u32[b >>> 2]!;
    return hdr - (hdr & FLAGS) - HEADER_BYTES - (this.u32[(b + B_TAG) >>> 2]! & SLACK_MASK);
  }

  /**
   * Shrinks the block at `address` by splitting off its tail, or grows it into a free next
   * block. Returns false, changing nothing, when the next block is live or too small.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  resizeInPlace(address: number, size: number): boolean {
    const b = this.validate(address);
    if (size > MAX_REQUEST) return false;
    if (this.checked) this.checkNeighbours(b);
    const u32 = this.u32;
    const hdr = u32[b >>> 2]!;
    const bsize = hdr - (hdr & FLAGS);
    const oldRequested = bsize - HEADER_BYTES - (u32[(b + B_TAG) >>> 2]! & SLACK_MASK);
    const need = size <= MIN_USABLE ? MIN_USABLE : size + 7 - ((size + 7) % 8);
    const req = need + HEADER_BYTES;
    const next = b + bsize;
    const nhdr = u32[next >>> 2]!;
    const nextFree = (nhdr & USED) === 0;
    const nsize = nextFree ? nhdr - (nhdr & FLAGS) : 0;
    if (next + nsize > this.validatedPoolEnd) {
      throw corrupt(`the free block ${hex(next)} after ${hex(b)} has size ${nsize}, which runs past its pool`);
    }
    let newSize = bsize;
    if (req <= bsize) {
      const rem = bsize - req;
      // A tail too small to stand alone can still join a free next block.
      if (rem >= MIN_BLOCK || (rem !== 0 && nextFree)) {
        newSize = req;
        const t = b + req;
        if (nextFree) {
          this.replaceInList(next, t);
          this.writeFree(t, rem + nsize);
        } else {
          this.writeFree(t, rem);
          this.insertOrdered(t);
          u32[this.sFree] = u32[this.sFree]! + 1;
          u32[next >>> 2] = nhdr & ~PREV_USED;
        }
      }
    } else {
      if (!nextFree || bsize + nsize < req) return false;
      const rem = bsize + nsize - req;
      if (rem >= MIN_BLOCK) {
        newSize = req;
        this.replaceInList(next, b + req);
        this.writeFree(b + req, rem);
      } else {
        newSize = bsize + nsize;
        this.unlink(next);
        u32[this.sFree] = u32[this.sFree]! - 1;
        const after = (b + newSize) >>> 2;
        u32[after] = u32[after]! | PREV_USED;
      }
    }
    const alignLog = (u32[(b + B_TAG) >>> 2]! >>> TAG_ALIGN_SHIFT) & TAG_ALIGN_MASK;
    u32[b >>> 2] = newSize | (hdr & FLAGS);
    u32[(b + B_TAG) >>> 2] = makeTag(b, newSize, this.cookie, 1 << (alignLog + 3), newSize - HEADER_BYTES - size);
    const used = u32[this.sUsed]! + newSize - bsize;
    u32[this.sUsed] = used;
    if (used > u32[this.sPeak]!) u32[this.sPeak] = used;
    u32[this.sGranted] = u32[this.sGranted]! + newSize - bsize;
    u32[this.sRequested] = u32[this.sRequested]! + size - oldRequested;
    return true;
  }

  /**
   * Returns the block address of the live block whose payload is at `address`. The header
   * is trusted only once the address is an aligned payload position inside a pool, the USED
   * bit is set, the size fits the pool and the tag matches address, size and cookie.
   */
  private validate(address: number): number {
    const u32 = this.u32;
    if (address >>> 0 === address && (address & 7) === 0 && address !== 0) {
      const b = address - HEADER_BYTES;
      const pools = this.sPools;
      const count = u32[this.sPoolCount]!;
      for (let i = 0; i < count; i++) {
        const sentinel = u32[pools + i * 2 + (PE_END >>> 2)]! - SENTINEL_BYTES;
        const poolStart = u32[pools + i * 2 + (PE_START >>> 2)]!;
        if (b >= poolStart && b < sentinel) {
          const hdr = u32[b >>> 2]!;
          const size = hdr - (hdr & FLAGS);
          if ((hdr & USED) === 0 || size < MIN_BLOCK || b + size > sentinel) break;
          if (!tagMatches(u32[(b + B_TAG) >>> 2]!, b, size, this.cookie)) break;
          this.validatedPoolStart = poolStart;
          this.validatedPoolEnd = sentinel;
          return b;
        }
      }
    }
    throw notAllocated(address);
  }

  /** The pool of the block `validate` returned last: its start and its sentinel. */
  private validatedPoolStart = 0;
  private validatedPoolEnd = 0;

  /**
   * The layout a live block may be freed with: exactly the size asked for (the tag keeps the
   * slack) and exactly the alignment it was allocated with (the tag keeps its log2).
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  blockLayout(address: number): BlockLayout {
    const b = this.validate(address);
    const u32 = this.u32;
    const hdr = u32[b >>> 2]!;
    const tag = u32[(b + B_TAG) >>> 2]!;
    const requested = hdr - (hdr & FLAGS) - HEADER_BYTES - (tag & SLACK_MASK);
    const align = 1 << (((tag >>> TAG_ALIGN_SHIFT) & TAG_ALIGN_MASK) + 3);
    return { minSize: requested, maxSize: requested, minAlign: align, maxAlign: align };
  }

  // --- checked mode ------------------------------------------------------------------------

  /** Checked mode: the free block about to be cut is a well-formed free block of its pool. */
  private checkFreeBlock(b: number): void {
    const u32 = this.u32;
    const hdr = u32[b >>> 2]!;
    const size = hdr - (hdr & FLAGS);
    const pool = this.poolEndOf(b);
    if (pool === 0 || size < MIN_BLOCK || b + size > pool) throw corrupt(`free block ${hex(b)} of size ${size} does not fit its pool`);
    if (u32[(b + size - 4) >>> 2] !== size) throw corrupt(`free block ${hex(b)}: footer ${u32[(b + size - 4) >>> 2]!} differs from size ${size}`);
    if ((u32[(b + size) >>> 2]! & PREV_USED) !== 0) throw corrupt(`the block after free block ${hex(b)} has PREV_USED set`);
  }

  /** Checked mode: the physical neighbours of live block `b` agree with its header. */
  private checkNeighbours(b: number): void {
    const u32 = this.u32;
    const hdr = u32[b >>> 2]!;
    const next = b + (hdr - (hdr & FLAGS));
    if ((u32[next >>> 2]! & PREV_USED) === 0) throw corrupt(`block ${hex(next)} after live block ${hex(b)} has PREV_USED clear`);
    const nhdr = u32[next >>> 2]!;
    if ((nhdr & USED) === 0) this.checkFreeBlock(next);
    if ((hdr & PREV_USED) === 0) {
      const previous = b - u32[(b - 4) >>> 2]!;
      if (previous < this.validatedPoolStart || (u32[previous >>> 2]! & USED) !== 0) throw corrupt(`the footer before ${hex(b)} leads to no free block`);
      this.checkFreeBlock(previous);
    }
  }

  /** The sentinel of the pool holding `b`, or 0. */
  private poolEndOf(b: number): number {
    const u32 = this.u32;
    for (let i = 0, count = u32[this.sPoolCount]!; i < count; i++) {
      const end = u32[this.sPools + i * 2 + (PE_END >>> 2)]! - SENTINEL_BYTES;
      if (b >= u32[this.sPools + i * 2 + (PE_START >>> 2)]! && b < end) return end;
    }
    return 0;
  }

  // --- free-list primitives ------------------------------------------------------------------
  //
  // The free list is doubly linked and sorted by address, whatever the strategy: address
  // order makes first fit take the lowest block (far less fragmentation than LIFO) and
  // gives best/worst fit their lowest-address tie-break for free.

  /** Writes a free block's header (PREV_USED always set: free blocks never touch) and footer. */
  private writeFree(b: number, size: number): void {
    this.u32[b >>> 2] = size | PREV_USED;
    this.u32[(b + size - 4) >>> 2] = size;
  }

  private unlink(b: number): void {
    const u32 = this.u32;
    const next = this.link(b, B_NEXT);
    const prev = this.link(b, B_PREV);
    if (prev === 0) u32[this.sHead] = next;
    else u32[(prev + B_NEXT) >>> 2] = next;
    if (next !== 0) u32[(next + B_PREV) >>> 2] = prev;
  }

  /**
   * Reads link `field` of free block `b`, checking that it is 0 or 8-aligned in the arena,
   * so no store goes through a corrupted link.
   */
  private link(b: number, field: number): number {
    const to = this.u32[(b + field) >>> 2]!;
    if (to !== 0 && ((to & 7) !== 0 || to < this.arenaStart || to >= this.arenaEnd)) {
      throw corrupt(`free block ${hex(b)} links to ${hex(to)}, outside the arena (a write after free or an overflow?)`);
    }
    return to;
  }

  /** Puts `b` where `old` is in the list; the links are read before any write, as they may overlap. */
  private replaceInList(old: number, b: number): void {
    const u32 = this.u32;
    const next = this.link(old, B_NEXT);
    const prev = this.link(old, B_PREV);
    u32[(b + B_NEXT) >>> 2] = next;
    u32[(b + B_PREV) >>> 2] = prev;
    if (prev === 0) u32[this.sHead] = b;
    else u32[(prev + B_NEXT) >>> 2] = b;
    if (next !== 0) u32[(next + B_PREV) >>> 2] = b;
  }

  private insertAfter(prev: number, b: number): void {
    const u32 = this.u32;
    const next = this.link(prev, B_NEXT);
    u32[(b + B_NEXT) >>> 2] = next;
    u32[(b + B_PREV) >>> 2] = prev;
    u32[(prev + B_NEXT) >>> 2] = b;
    if (next !== 0) u32[(next + B_PREV) >>> 2] = b;
  }

  /** Links `b` in address order; used only when no free neighbour gives the place. */
  private insertOrdered(b: number): void {
    const u32 = this.u32;
    let prev = 0;
    let cur = u32[this.sHead]!;
    for (let left = u32[this.sFree]!; cur !== 0 && cur < b; left--) {
      if (left === 0 || (cur & 7) !== 0 || cur < this.arenaStart || cur >= this.arenaEnd || (u32[cur >>> 2]! & USED) !== 0) {
        throw this.brokenList(cur, left);
      }
      prev = cur;
      cur = u32[(cur + B_NEXT) >>> 2]!;
    }
    if (cur !== 0 && ((cur & 7) !== 0 || cur >= this.arenaEnd)) throw this.brokenList(cur, 1);
    u32[(b + B_NEXT) >>> 2] = cur;
    u32[(b + B_PREV) >>> 2] = prev;
    if (prev === 0) u32[this.sHead] = b;
    else u32[(prev + B_NEXT) >>> 2] = b;
    if (cur !== 0) u32[(cur + B_PREV) >>> 2] = b;
  }

  // --- accounting ----------------------------------------------------------------------------

  /** Bytes usable as blocks over all pools: pool bytes minus their 8-byte sentinels. */
  totalBytes(): number {
    return this.u32[this.sTotal]!;
  }

  /** Sizes of live blocks, headers and slack included. */
  usedBytes(): number {
    return this.u32[this.sUsed]!;
  }

  /** `totalBytes() - usedBytes()`: free-block bytes, headers included. */
  availableBytes(): number {
    return this.u32[this.sTotal]! - this.u32[this.sUsed]!;
  }

  /**
   * The counters, plus the largest free block (a walk of the free list). `metadataBytes`
   * counts the 8-byte header of each live block and each pool's 8-byte sentinel; the control
   * state lives outside the arena and is not counted.
   */
  stats(): BackendStats {
    const u32 = this.u32;
    let largest = 0;
    let b = u32[this.sHead]!;
    for (let n = u32[this.sFree]!; b !== 0 && n > 0; n--) {
      const hdr = u32[b >>> 2]!;
      const size = hdr - (hdr & FLAGS);
      if (size > largest) largest = size;
      b = u32[(b + B_NEXT) >>> 2]!;
    }
    const live = u32[this.sLive]!;
    return {
      totalBytes: u32[this.sTotal]!,
      usedBytes: u32[this.sUsed]!,
      peakUsedBytes: u32[this.sPeak]!,
      peakUsedSampled: false,
      requestedBytes: u32[this.sRequested]!,
      grantedBytes: u32[this.sGranted]!,
      metadataBytes: live * HEADER_BYTES + u32[this.sPoolCount]! * SENTINEL_BYTES,
      largestFreeBlock: largest === 0 ? 0 : largest - HEADER_BYTES,
      liveBlocks: live,
      freeBlocks: u32[this.sFree]!,
    };
  }

  // --- recovery ------------------------------------------------------------------------------

  /**
   * Rebuilds everything but the block headers after a thread died holding the heap lock (see
   * the file comment): walks each pool by header sizes, keeps the blocks whose header says
   * USED and whose tag matches as live, merges every other run into one free block with its
   * footer, and rewrites the PREV_USED bits, the free list and the counters.
   * @throws AllocError `HeapCorrupted` when the control state or a pool's headers are broken
   *   (a size that does not tile the pool): then there is nothing sound to rebuild from
   */
  recover(_cause: RepairCause): BackendRepair {
    const u32 = this.u32;
    if (u32[this.sMagic] !== BASIC_MAGIC) throw corrupt('cannot recover: the control state is not formatted');
    const poolCount = u32[this.sPoolCount]!;
    if (poolCount < 1 || poolCount > BASIC_MAX_POOLS) throw corrupt(`cannot recover: pool count ${poolCount} is out of range`);
    const pools: { start: number; sentinel: number }[] = [];
    for (let i = 0; i < poolCount; i++) {
      const start = u32[this.sPools + i * 2 + (PE_START >>> 2)]!;
      const end = u32[this.sPools + i * 2 + (PE_END >>> 2)]!;
      if (start % 8 !== 0 || end % 8 !== 0 || start < this.arenaStart || end > this.arenaEnd || end - start < MIN_BLOCK + SENTINEL_BYTES) {
        throw corrupt(`cannot recover: pool ${i} ${hex(start)}..${hex(end)} is misaligned, outside the arena or too small`);
      }
      pools.push({ start, sentinel: end - SENTINEL_BYTES });
    }
    // The free list is in address order across pools too.
    pools.sort((a, b) => a.start - b.start);
    let head = 0;
    let lastFree = 0;
    let used = 0;
    let requested = 0;
    let granted = 0;
    let live = 0;
    let freeBlocks = 0;
    let total = 0;
    let unfinished = 0;
    const closeRun = (start: number, end: number): void => {
      this.writeFree(start, end - start);
      u32[(start + B_NEXT) >>> 2] = 0;
      u32[(start + B_PREV) >>> 2] = lastFree;
      if (lastFree === 0) head = start;
      else u32[(lastFree + B_NEXT) >>> 2] = start;
      lastFree = start;
      freeBlocks++;
    };
    for (const { start, sentinel } of pools) {
      total += sentinel - start;
      let run = 0;
      let previousLive = true;
      for (let b = start; b < sentinel; ) {
        const hdr = u32[b >>> 2]!;
        const size = hdr - (hdr & FLAGS);
        if (size < MIN_BLOCK || b + size > sentinel) {
          throw corrupt(`cannot recover: block ${hex(b)} has size ${size}, so the headers do not tile the pool ${hex(start)}..${hex(sentinel)}`);
        }
        const tag = u32[(b + B_TAG) >>> 2]!;
        if ((hdr & USED) !== 0 && tagMatches(tag, b, size, this.cookie)) {
          if (run !== 0) closeRun(run, b);
          run = 0;
          u32[b >>> 2] = size | USED | (previousLive ? PREV_USED : 0);
          const slack = tag & SLACK_MASK;
          live++;
          used += size;
          granted += size - HEADER_BYTES;
          requested += size - HEADER_BYTES - slack;
          previousLive = true;
        } else {
          if ((hdr & USED) !== 0) unfinished++;
          if (run === 0) run = b;
          previousLive = false;
        }
        b += size;
      }
      if (run !== 0) closeRun(run, sentinel);
      u32[sentinel >>> 2] = USED | (previousLive ? PREV_USED : 0);
      u32[(sentinel + B_TAG) >>> 2] = 0;
    }
    u32[this.sHead] = head;
    u32[this.sFree] = freeBlocks;
    u32[this.sLive] = live;
    u32[this.sUsed] = used;
    u32[this.sRequested] = requested;
    u32[this.sGranted] = granted;
    u32[this.sTotal] = total;
    if (u32[this.sPeak]! < used) u32[this.sPeak] = used;
    const notes = [`rebuilt ${freeBlocks} free blocks and the counters of ${live} live blocks over ${poolCount} pools`];
    if (unfinished > 0) notes.push(`${unfinished} block(s) marked used without a valid tag (an unfinished allocation or resize) are free again`);
    return { lostBytes: 0, lostBlocks: 0, notes };
  }

  // --- verification --------------------------------------------------------------------------

  /**
   * Walks every pool block by block, then the free list, and checks every invariant the
   * allocator keeps (see the comments where each is kept).
   * @throws AllocError `HeapCorrupted` naming the first violation and its address
   */
  check(): CheckReport {
    const u32 = this.u32;
    const fail = (message: string): never => {
      throw corrupt(message);
    };
    if (u32[this.sMagic] !== BASIC_MAGIC) {
      fail(`control state at ${hex(this.stateOffset)} is not formatted (magic ${hex(u32[this.sMagic]!)})`);
    }
    const poolCount = u32[this.sPoolCount]!;
    if (poolCount < 1 || poolCount > BASIC_MAX_POOLS) fail(`pool count ${poolCount} is out of range`);
    const freeSet = new Set<number>();
    let blocks = 0;
    let live = 0;
    let used = 0;
    let freeBytes = 0;
    let requested = 0;
    let granted = 0;
    let total = 0;
    for (let i = 0; i < poolCount; i++) {
      const ps = u32[this.sPools + i * 2 + (PE_START >>> 2)]!;
      const pe = u32[this.sPools + i * 2 + (PE_END >>> 2)]!;
      if (ps % 8 !== 0 || pe % 8 !== 0 || ps < this.arenaStart || pe > this.arenaEnd || pe - ps < MIN_BLOCK + SENTINEL_BYTES) {
        fail(`pool ${i} ${hex(ps)}..${hex(pe)} is misaligned, outside the arena or too small`);
      }
      const sentinel = pe - SENTINEL_BYTES;
      total += sentinel - ps;
      let prevUsed = true;
      let b = ps;
      while (b < sentinel) {
        const hdr = u32[b >>> 2]!;
        const size = hdr - (hdr & FLAGS);
        const where = `block ${hex(b)} (pool ${i})`;
        if ((hdr & FLAGS & ~(USED | PREV_USED)) !== 0) fail(`${where}: unknown flag bits in header ${hex(hdr)}`);
        if (size < MIN_BLOCK) fail(`${where}: size ${size} is below the minimum block ${MIN_BLOCK}`);
        if (b + size > sentinel) fail(`${where}: size ${size} runs past the pool sentinel at ${hex(sentinel)}`);
        if (((hdr & PREV_USED) !== 0) !== prevUsed) {
          fail(`${where}: PREV_USED is ${(hdr & PREV_USED) !== 0} but the previous block is ${prevUsed ? 'live' : 'free'}`);
        }
        blocks++;
        if ((hdr & USED) !== 0) {
          const tag = u32[(b + B_TAG) >>> 2]!;
          if (!tagMatches(tag, b, size, this.cookie)) {
            fail(`${where}: live block has a bad tag ${hex(tag)} (hash, slack or alignment does not match the block)`);
          }
          const slack = tag & SLACK_MASK;
          live++;
          used += size;
          granted += size - HEADER_BYTES;
          requested += size - HEADER_BYTES - slack;
          prevUsed = true;
        } else {
          if (!prevUsed) fail(`${where}: free block follows another free block (missed coalesce)`);
          const footer = u32[(b + size - 4) >>> 2]!;
          if (footer !== size) fail(`${where}: footer ${footer} differs from size ${size}`);
          freeSet.add(b);
          freeBytes += size;
          prevUsed = false;
        }
        b += size;
      }
      if (b !== sentinel) fail(`pool ${i}: the block walk ends at ${hex(b)}, not at the sentinel ${hex(sentinel)}`);
      const shdr = u32[sentinel >>> 2]!;
      if (shdr - (shdr & FLAGS) !== 0 || (shdr & USED) === 0) fail(`pool ${i}: sentinel at ${hex(sentinel)} has header ${hex(shdr)}`);
      if (((shdr & PREV_USED) !== 0) !== prevUsed) {
        fail(`pool ${i}: sentinel at ${hex(sentinel)} has PREV_USED ${(shdr & PREV_USED) !== 0} but the last block is ${prevUsed ? 'live' : 'free'}`);
      }
    }
    // The free list: address-ordered, doubly linked, acyclic, and exactly the free blocks.
    const freeCount = u32[this.sFree]!;
    let listed = 0;
    let prev = 0;
    let b = u32[this.sHead]!;
    while (b !== 0) {
      if (listed >= freeSet.size || listed >= freeCount) {
        fail(`free list is longer than the ${freeSet.size} free blocks found (a cycle or a stray entry) at ${hex(b)}`);
      }
      if (!freeSet.has(b)) fail(`free list entry ${hex(b)} (after ${hex(prev)}) is not a free block of any pool`);
      if (b <= prev) fail(`free list is not in address order: ${hex(b)} follows ${hex(prev)}`);
      const back = u32[(b + B_PREV) >>> 2]!;
      if (back !== prev) fail(`free block ${hex(b)}: previous link ${hex(back)} should be ${hex(prev)}`);
      listed++;
      prev = b;
      b = u32[(b + B_NEXT) >>> 2]!;
    }
    if (listed !== freeSet.size) fail(`free list holds ${listed} blocks but the pools hold ${freeSet.size} free blocks`);
    const expect = (field: string, counter: number, actual: number): void => {
      if (counter !== actual) fail(`counter ${field} is ${counter} but the walk finds ${actual}`);
    };
    expect('freeBlocks', freeCount, freeSet.size);
    expect('liveBlocks', u32[this.sLive]!, live);
    expect('usedBytes', u32[this.sUsed]!, used);
    expect('requestedBytes', u32[this.sRequested]!, requested);
    expect('grantedBytes', u32[this.sGranted]!, granted);
    expect('totalBytes', u32[this.sTotal]!, total);
    if (u32[this.sPeak]! < used) fail(`peakUsedBytes ${u32[this.sPeak]!} is below usedBytes ${used}`);
    return { blocks, liveBlocks: live, freeBlocks: freeSet.size, usedBytes: used, freeBytes, pools: poolCount };
  }
}

/**
 * Checks the basic backend's options and fills in the default strategy.
 * @throws AllocError `InvalidParam` for an unknown option or a strategy that is not one of
 *   `BASIC_STRATEGIES`, naming the valid ones
 */
function normalizeBasicOptions(options: Record<string, unknown>): BasicOptions {
  if (typeof options !== 'object' || options === null) {
    throw new AllocError('InvalidParam', `basic backend options must be an object; got ${String(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (key !== 'strategy') {
      throw new AllocError('InvalidParam', `basic backend has no option '${key}'; its only option is 'strategy'`);
    }
  }
  const strategy = options['strategy'] ?? DEFAULT_STRATEGY;
  if (typeof strategy !== 'string' || !(BASIC_STRATEGIES as readonly string[]).includes(strategy)) {
    throw new AllocError(
      'InvalidParam',
      `basic backend option strategy ${JSON.stringify(strategy) ?? String(strategy)} is not valid; ` +
        `valid values: ${BASIC_STRATEGIES.join(', ')}`,
    );
  }
  return { strategy: strategy as BasicStrategy };
}

/**
 * The basic backend's descriptor: core stores `moduleUrl` and `name` in the heap so that
 * worker threads import this module and `create` their own instance over the shared state.
 * `normalizeOptions` @throws AllocError `InvalidParam` for unknown options or strategies;
 * `create` @throws AllocError `InvalidParam` when the state area is too small.
 */
export const basicBackend: BackendDescriptor<BasicOptions> = {
  name: 'basic',
  summary: 'boundary-tagged coalescing free list, address-ordered, first/best/worst fit',
  moduleUrl: import.meta.url,
  concurrency: 'locked',
  options: [
    {
      name: 'strategy',
      description:
        'which free block a request takes: first-fit the lowest-addressed that fits, best-fit the smallest, worst-fit the largest',
      kind: 'enum',
      values: BASIC_STRATEGIES,
      default: DEFAULT_STRATEGY,
    },
  ],
  stateBytes: STATE_BYTES,
  normalizeOptions: normalizeBasicOptions,
  create(context: BackendContext, options: BasicOptions): Backend {
    return new BasicAllocator(context, options);
  },
};
