/**
 * The basic backend's algorithm: a boundary-tagged, coalescing free-list allocator with
 * first-, best- or worst-fit placement (Knuth's boundary tags, dlmalloc's PREV_USED trick,
 * Wilson et al.'s address-ordered free list). The layout it works on is drawn in layout.ts;
 * check() is in check.ts, the repair after a thread's death in recover.ts.
 *
 * Every bit of state lives in the shared buffer; an instance holds only views and constants,
 * so the instance another thread creates over the same buffer sees the same heap. The facade
 * calls every method with the heap mutex held, so plain reads and writes suffice.
 *
 * ## What a dead thread leaves
 *
 * The headers tile each pool at every instant: every store that changes a block's size
 * first writes the headers of the blocks it exposes, then the one header that exposes them
 * (a carve writes the new block's and the tail's headers before it shrinks the free block it
 * cuts them from). So however a thread died inside the lock, walking a pool by header sizes
 * still reaches its sentinel, which is what recover.ts rebuilds from.
 *
 * ## Corruption
 *
 * Every walk of the free list is bounded by the free-block count and every link is checked
 * before it is followed (8-aligned, inside the arena, a header without USED), so a write
 * after free or an overflow into a free block's links raises `HeapCorrupted` instead of
 * looping or handing out a live block or an address outside the arena. Checked mode
 * (`BackendContext.checked`) also verifies, at every operation, the neighbours it touches.
 */

import type { Backend, BackendContext, BackendRepair, BlockLayout, RepairCause } from '../backend/contract.js';
import type { StateCounters } from '../backend/counters.js';
import { notAllocated } from '../backend/errors.js';
import type { PoolView } from '../backend/pools.js';
import { AllocError, hex } from '../errors.js';
import type { BackendStats, CheckReport, HeapRegion, StatsTable } from '../interfaces.js';
import { checkArenaRange } from '../sizes.js';
import { checkBasicHeap } from './check.js';
import { corrupt } from './errors.js';
import {
  B_NEXT,
  type BasicHeapView,
  B_PREV,
  B_TAG,
  BASIC_MAGIC,
  FLAGS,
  HEADER_BYTES,
  MAX_REQUEST,
  MIN_BLOCK,
  MIN_USABLE,
  makeTag,
  PREV_USED,
  poolBlocks,
  SENTINEL_BYTES,
  SLACK_MASK,
  ST_FREE_HEAD,
  ST_MAGIC,
  STATE_BYTES,
  TAG_ALIGN_MASK,
  TAG_ALIGN_SHIFT,
  tagAlign,
  tagMatches,
  USED,
} from './layout.js';
import { BASIC_STRATEGIES, type BasicOptions } from './options.js';
import { recoverBasicHeap } from './recover.js';
import { basicClassStats, walkBasicHeap } from './walk.js';

const FIRST_FIT = 0;
const BEST_FIT = 1;
const WORST_FIT = 2;

/**
 * One thread's handle on a basic heap: a coalescing, address-ordered free list with
 * boundary tags. Create it through `basicBackend.create`; every instance over the same buffer
 * and `stateOffset` sees and edits the same heap. Not thread-safe: call it under the heap lock.
 */
export class BasicAllocator implements Backend, BasicHeapView {
  // Read by check.ts and recover.ts, which see the same state.
  readonly u32: Uint32Array;
  readonly cookie: number;
  readonly arenaStart: number;
  readonly arenaEnd: number;
  readonly stateOffset: number;
  readonly counters: StateCounters;
  readonly pools: PoolView;
  private readonly strategy: number;
  private readonly checked: boolean;
  // Word indices of the control-state fields, computed once so hot paths only index.
  readonly sMagic: number;
  readonly sHead: number;

  /**
   * Makes a handle over `ctx`'s shared state; does not format it (`init` does).
   * @throws AllocError `InvalidParam` when the state area is smaller than
   *   `basicBackend.stateBytes` or misaligned, or `options.strategy` is not a known strategy
   */
  constructor(ctx: BackendContext, options: BasicOptions) {
    const strategy = BASIC_STRATEGIES.indexOf(options.strategy);
    if (strategy < 0) {
      throw new AllocError('InvalidParam', `basic backend: strategy ${JSON.stringify(options.strategy)} is not one of ${BASIC_STRATEGIES.join(', ')}`);
    }
    if (ctx.stateBytes < STATE_BYTES || ctx.stateOffset % 8 !== 0) {
      throw new AllocError('InvalidParam', `basic backend needs ${STATE_BYTES} bytes of 8-aligned state; got ${ctx.stateBytes} at ${hex(ctx.stateOffset)}`);
    }
    this.u32 = ctx.memory.u32;
    this.cookie = ctx.cookie;
    this.strategy = strategy;
    this.checked = ctx.checked;
    this.arenaStart = ctx.arenaStart;
    this.arenaEnd = ctx.arenaEnd;
    this.stateOffset = ctx.stateOffset;
    this.counters = ctx.counters;
    this.pools = ctx.pools;
    const base = ctx.stateOffset >>> 2;
    this.sMagic = base + (ST_MAGIC >>> 2);
    this.sHead = base + (ST_FREE_HEAD >>> 2);
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
    this.counters.reset();
    this.u32[this.sMagic] = BASIC_MAGIC;
    this.formatPool(start, size);
  }

  /**
   * Adds `[start, start + size)` as another pool, with its own sentinel: blocks never merge
   * across pools, even adjacent ones.
   * Core has checked the range against its pool table (overlap, table full) and records it
   * once this returns.
   * @throws AllocError `InvalidParam` for a range outside the arena, too small, or before `init`
   */
  addMemory(start: number, size: number): void {
    const u32 = this.u32;
    if (u32[this.sMagic] !== BASIC_MAGIC) {
      throw new AllocError('InvalidParam', 'basic backend: addMemory before init');
    }
    this.formatPool(start, size);
  }

  /** Formats `[start, start + size)` as one free block and a sentinel, and lists the block. */
  private formatPool(start: number, size: number): void {
    const u32 = this.u32;
    this.poolBounds(start, size);
    const { first: s, sentinel } = poolBlocks(start, start + size);
    const blockSize = sentinel - s;
    // Nothing precedes the first block, so it counts as preceded by a live block: that keeps
    // release from ever looking for a footer before the pool. Core lists the pool only once
    // this returns, so a death in here leaves a range no pool lists, which recovery drops.
    this.writeFree(s, blockSize);
    u32[sentinel >>> 2] = USED;
    u32[(sentinel + B_TAG) >>> 2] = 0;
    this.insertOrdered(s);
    this.counters.addFree(1);
    this.counters.addMemory(blockSize, 0);
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
    // The list holds freeBlocks blocks: a longer walk is a cycle, a bad link is corruption.
    for (let left = this.counters.freeBlocks; b !== 0; left--) {
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
          if ((strategy === BEST_FIT && (chosen === 0 || bsize < chosenSize)) || (strategy === WORST_FIT && bsize > chosenSize)) {
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
    return this.carve(chosen, chosenSize, chosenPayload, req, size, Math.max(align, 8));
  }

  /** The error for a free-list entry that is not a free block of this heap, or a cycle. */
  private brokenList(b: number, left: number): AllocError {
    return left === 0
      ? corrupt(`the free list is longer than its ${this.counters.freeBlocks} blocks (a cycle, or a stray link) at ${hex(b)}`)
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
        this.counters.addFree(-1);
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
        this.counters.addFree(1);
      }
    }
    this.counters.allocated(bsize, requested, bsize - HEADER_BYTES);
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
    this.counters.released(size, size - HEADER_BYTES - slack, size - HEADER_BYTES);
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
        this.counters.addFree(-1);
      }
    } else if (nextFree) {
      // Taking the right neighbour's place in the list keeps the address order.
      size += nhdr - (nhdr & FLAGS);
      this.replaceInList(next, b);
    } else {
      this.insertOrdered(b);
      this.counters.addFree(1);
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
          this.counters.addFree(1);
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
        this.counters.addFree(-1);
        const after = (b + newSize) >>> 2;
        u32[after] = u32[after]! | PREV_USED;
      }
    }
    const alignLog = (u32[(b + B_TAG) >>> 2]! >>> TAG_ALIGN_SHIFT) & TAG_ALIGN_MASK;
    u32[b >>> 2] = newSize | (hdr & FLAGS);
    u32[(b + B_TAG) >>> 2] = makeTag(b, newSize, this.cookie, 1 << (alignLog + 3), newSize - HEADER_BYTES - size);
    this.counters.resized(newSize - bsize, size - oldRequested, newSize - bsize);
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
      const pools = this.pools;
      for (let i = 0, count = pools.count(); i < count; i++) {
        const poolStart = pools.start(i);
        const end = pools.end(i);
        const sentinel = end - (end % 8) - SENTINEL_BYTES;
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
    throw notAllocated('basic heap', address, 'not the start of a live block (double free, interior pointer, or never allocated)');
  }

  /** The pool of the block `validate` returned last: its start and its sentinel. */
  validatedPoolStart = 0;
  validatedPoolEnd = 0;

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
    const align = tagAlign(tag);
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
    const index = this.pools.find(b);
    return index < 0 ? 0 : poolBlocks(this.pools.start(index), this.pools.end(index)).sentinel;
  }

  // --- free-list primitives ------------------------------------------------------------------
  //
  // The free list is doubly linked and sorted by address, whatever the strategy: address
  // order makes first fit take the lowest block (far less fragmentation than LIFO) and
  // gives best/worst fit their lowest-address tie-break for free.

  /** Writes a free block's header (PREV_USED always set: free blocks never touch) and footer. */
  writeFree(b: number, size: number): void {
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
    for (let left = this.counters.freeBlocks; cur !== 0 && cur < b; left--) {
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
    return this.counters.totalBytes;
  }

  /** Sizes of live blocks, headers and slack included. */
  usedBytes(): number {
    return this.counters.usedBytes;
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
    for (let n = this.counters.freeBlocks; b !== 0 && n > 0; n--) {
      const hdr = u32[b >>> 2]!;
      const size = hdr - (hdr & FLAGS);
      if (size > largest) largest = size;
      b = u32[(b + B_NEXT) >>> 2]!;
    }
    const counted = this.counters.values();
    return {
      ...counted,
      peakUsedSampled: false,
      metadataBytes: counted.liveBlocks * HEADER_BYTES + this.pools.count() * SENTINEL_BYTES,
      largestFreeBlock: largest === 0 ? 0 : largest - HEADER_BYTES,
    };
  }

  /** Rebuilds the free structures after a thread died holding the heap lock (recover.ts). */
  recover(_cause: RepairCause): BackendRepair {
    return recoverBasicHeap(this);
  }

  /** Walks the whole heap and checks every invariant (check.ts). */
  check(): CheckReport {
    return checkBasicHeap(this);
  }

  /** Reports every pool region by region: headers, live and free blocks, sentinels (walk.ts). */
  walk(visit: (region: HeapRegion) => void): void {
    walkBasicHeap(this, visit);
  }

  /** The free list's length and bytes, and a histogram of free-block sizes (walk.ts). */
  classStats(): StatsTable[] {
    return basicClassStats(this);
  }
}
