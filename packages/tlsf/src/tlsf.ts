/**
 * The TLSF backend: two-level segregated fit (Masmano, Ripoll, Crespo and Real, "TLSF: a new
 * dynamic memory allocator for real-time systems", 2004), with rlsf's good-fit search.
 * Allocation and free take constant time: the free list for a request is found from two
 * bitmap words with `Math.clz32`, and a freed block merges at once with both physical
 * neighbours, found through its size (the next one) and its prevPhys link (the previous one).
 *
 * Every bit of state lives in the shared buffer (layout in layout.ts; the counters and the
 * pool table are core's, `ctx.counters` and `ctx.pools`): the instance holds only views,
 * constants and word indices, so the instance another thread creates over the same buffer sees
 * the same heap. The facade calls every method with the heap mutex held
 * (`concurrency: 'locked'`), so plain reads and writes suffice.
 *
 * Invariants kept here (verified by `checkHeap`):
 * - Each pool is a front sentinel, blocks that tile it exactly, and an end sentinel; every
 *   block's prevPhys is the block (or front sentinel) just before it, and the end sentinel's
 *   prevPhys is the last block.
 * - No two physically adjacent blocks are free: every free merges with free neighbours.
 * - Free blocks and sentinels have no slack bits; a live block's slack is its usable size
 *   minus the size last asked for, at most MAX_SLACK, or its slack field is EXTENDED and its
 *   trailer holds the slack and the alignment it was allocated with.
 * - Core's counters equal the sums over the blocks they describe (see layout.ts for what each
 *   counts here).
 * - The headers tile every pool at every store (see "What a dead thread leaves" in
 *   layout.ts): the store orders below are that invariant; each says where it commits.
 *
 * Corrupted metadata (a program writing after a free or past its block) is checked before it
 * is used: addresses by `findLiveBlock`, list links and heads by `FreeLists`, and the size of
 * a free neighbour about to be merged by the prevPhys of the block after it. No store goes
 * through a value those checks have not confirmed, so damage is reported (`HeapCorrupted`)
 * instead of spreading to blocks it did not touch. Checked mode (`ctx.checked`) also verifies,
 * at each operation, the neighbours, pool and list bits of what it touches.
 */

import { checkArenaRange, type HeapRegion, type StatsTable } from '@heaplab/core';
import {
  AllocError,
  type Backend,
  type BackendContext,
  type BackendRepair,
  type BackendStats,
  type BlockLayout,
  type CheckReport,
  hex,
  notAllocated,
  type PoolView,
  type RepairCause,
  type StateCounters,
  TC_MAX_REQUEST,
} from '@heaplab/core/backend';

import { checkHeap } from './check.js';
import { CheckedFreeLists, FreeLists } from './free-lists.js';
import { checker, HEAP_NAME } from './errors.js';
import {
  addressOfWord,
  B_PREV_PHYS,
  B_SIZE,
  END_SENTINEL_BYTES,
  EXTENDED_SIZE_BITS,
  EXTENDED_SLACK,
  FRONT_SENTINEL_BYTES,
  GRANULARITY,
  HEADER_BYTES,
  type HeapView,
  MAX_BLOCK_BYTES,
  MIN_BLOCK_BYTES,
  MIN_POOL_BYTES,
  POOL_OVERHEAD_BYTES,
  poolBounds,
  PREV_SLACK_BITS,
  SIZE_FLAG_BITS,
  sizeOfWord,
  slackOfWords,
  ST_MAGIC,
  STATE_BYTES,
  T_INFO_FROM_END,
  TLSF_MAGIC,
  TRAILER_ALIGN_MASK,
  TRAILER_ALIGN_SHIFT,
  TRAILER_BYTES,
  TRAILER_SLACK_MASK,
  trailerValid,
  trailerWord,
  USED,
} from './layout.js';
import { findLiveBlock } from './live-block.js';
import type { TlsfOptions } from './options.js';
import { recoverHeap } from './recover.js';
import { planRun, RUN_EXTRA_BYTES, RunPlan } from './run.js';
import { tlsfClassStats, walkTlsfHeap } from './walk.js';

/** An address that is not the start of a live block (`NotAllocated`), built off the hot paths. */
function notLive(address: number): AllocError {
  return notAllocated(HEAP_NAME, address, 'not the start of a live block (double free, interior pointer, or never allocated)');
}

/**
 * The block size that serves a request of `size` bytes: the size rounded up to the
 * granularity (a zero-byte request gets GRANULARITY bytes, so its block is unique) plus the
 * header. `size` must be at most MAX_BLOCK_BYTES, which keeps the 32-bit arithmetic exact.
 */
function blockSizeFor(size: number): number {
  return size <= GRANULARITY ? MIN_BLOCK_BYTES : ((size + HEADER_BYTES + GRANULARITY - 1) & -GRANULARITY) >>> 0;
}

/**
 * One thread's handle on a TLSF heap. Create it through `tlsfBackend.create`; every instance
 * over the same buffer and `stateOffset` sees and edits the same heap. Not thread-safe: call
 * it under the heap lock.
 */
export class TlsfAllocator implements Backend, HeapView {
  // Read by check.ts and recover.ts, which see the same state.
  readonly u32: Uint32Array;
  readonly arenaStart: number;
  readonly arenaEnd: number;
  readonly stateOffset: number;
  readonly counters: StateCounters;
  readonly pools: PoolView;
  private readonly lists: FreeLists;
  /** The highest address a block can end at: an end sentinel follows it. */
  private readonly lastEnd: number;
  private readonly checked: boolean;
  /** Word index of the magic, computed once. */
  private readonly sMagic: number;
  /** Where `allocateRun` carves its run, planned afresh each call. */
  private readonly runPlan = new RunPlan();

  /**
   * Makes a handle over `ctx`'s shared state; does not format it (`init` does).
   * @throws AllocError `InvalidParam` when the state area is smaller than `STATE_BYTES` or
   *   not 8-aligned
   */
  constructor(ctx: BackendContext, _options: TlsfOptions) {
    if (ctx.stateBytes < STATE_BYTES || ctx.stateOffset % 8 !== 0) {
      throw new AllocError('InvalidParam', `tlsf backend needs ${STATE_BYTES} bytes of 8-aligned state; got ${ctx.stateBytes} at ${hex(ctx.stateOffset)}`);
    }
    this.u32 = ctx.memory.u32;
    this.checked = ctx.checked;
    this.counters = ctx.counters;
    this.pools = ctx.pools;
    this.lists = ctx.checked
      ? new CheckedFreeLists(ctx.memory.u32, ctx.stateOffset, ctx.arenaStart, ctx.arenaEnd, ctx.counters)
      : new FreeLists(ctx.memory.u32, ctx.stateOffset, ctx.arenaStart, ctx.arenaEnd, ctx.counters);
    this.arenaStart = ctx.arenaStart;
    this.arenaEnd = ctx.arenaEnd;
    this.lastEnd = ctx.arenaEnd - END_SENTINEL_BYTES;
    this.stateOffset = ctx.stateOffset;
    this.sMagic = (ctx.stateOffset + ST_MAGIC) >>> 2;
  }

  // --- memory given to the heap ------------------------------------------------------------

  /**
   * Formats the shared state and takes `[start, start + size)` as the first pool.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small for two
   *   sentinels and one minimum block
   */
  init(start: number, size: number): void {
    // Check before touching the state, so a refused init leaves the buffer as it was.
    const pool = this.poolOf(start, size);
    const first = this.stateOffset >>> 2;
    this.u32.fill(0, first, first + (STATE_BYTES >>> 2));
    this.counters.reset();
    this.u32[this.sMagic] = TLSF_MAGIC;
    this.formatPool(pool.start, pool.end);
  }

  /**
   * Adds `[start, start + size)` as another pool. Pools are never merged, even when
   * adjacent: each keeps its sentinels, so `check()` can walk each one on its own. Core has
   * checked the range against its pool table (overlap, table full) and records it once this
   * returns.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small
   */
  addMemory(start: number, size: number): void {
    const pool = this.poolOf(start, size);
    this.formatPool(pool.start, pool.end);
  }

  /**
   * Writes both sentinels around one free block and lists the block. Core lists the pool
   * only once this returns, so a thread that dies in here leaves a range no pool lists:
   * memory never added, which `recover` (walking the listed pools) leaves alone.
   */
  private formatPool(poolStart: number, poolEnd: number): void {
    const u32 = this.u32;
    const block = poolStart + FRONT_SENTINEL_BYTES;
    const endSentinel = poolEnd - END_SENTINEL_BYTES;
    const blockSize = endSentinel - block;
    u32[(poolStart + B_PREV_PHYS) >>> 2] = 0;
    u32[(poolStart + B_SIZE) >>> 2] = FRONT_SENTINEL_BYTES | USED;
    u32[(block + B_PREV_PHYS) >>> 2] = poolStart;
    u32[(block + B_SIZE) >>> 2] = blockSize;
    u32[(endSentinel + B_PREV_PHYS) >>> 2] = block;
    u32[(endSentinel + B_SIZE) >>> 2] = USED;
    this.lists.insert(block, blockSize);
    this.counters.addFree(1);
    this.counters.addMemory(poolEnd - poolStart - POOL_OVERHEAD_BYTES, POOL_OVERHEAD_BYTES);
  }

  /**
   * The TLSF pool over `[start, start + size)`: its bounds rounded in to the granularity.
   * @throws AllocError `InvalidParam` when the range is outside the arena or too small
   */
  private poolOf(start: number, size: number): { start: number; end: number } {
    checkArenaRange(start, size, this.arenaStart, this.arenaEnd);
    const pool = poolBounds(start, start + size);
    if (pool.end - pool.start < MIN_POOL_BYTES) {
      throw new AllocError(
        'InvalidParam',
        `memory range ${hex(start)}..${hex(start + size)} is too small: the tlsf backend needs at least ` +
          `${MIN_POOL_BYTES} bytes between 8-aligned bounds (two sentinels and one block)`,
      );
    }
    return pool;
  }

  // --- the hot paths -----------------------------------------------------------------------

  /**
   * Returns the payload address of a block of at least `size` bytes aligned to `align`, or 0.
   * @throws AllocError `HeapCorrupted` when the free list it takes from is damaged
   */
  allocate(size: number, align: number): number {
    if (align > GRANULARITY) return this.allocateAligned(size, align);
    if (size > MAX_BLOCK_BYTES) return 0;
    const lists = this.lists;
    const blockSize = blockSizeFor(size);
    const found = lists.findFit(blockSize);
    if (found === 0) return 0;
    if (this.checked) this.checkHandOut(found);
    const foundSize = this.u32[(found + B_SIZE) >>> 2]!;
    lists.takeHead(found, lists.foundList);
    return this.carve(found, foundSize, blockSize, size);
  }

  /**
   * `allocate` for an alignment above 8: the block carries its trailer, and its payload may
   * sit up to align + 8 bytes into the free block (see carveAligned), so the search asks for
   * that much more; the gap goes back to the free lists. Out of line, so that the 8-aligned
   * path stays small enough for V8 to inline it into its callers.
   */
  private allocateAligned(size: number, align: number): number {
    if (size > MAX_BLOCK_BYTES) return 0;
    const lists = this.lists;
    const blockSize = blockSizeFor(size) + TRAILER_BYTES;
    const wanted = blockSize + align + HEADER_BYTES;
    if (wanted > MAX_BLOCK_BYTES) return 0;
    const found = lists.findFit(wanted);
    if (found === 0) return 0;
    if (this.checked) this.checkHandOut(found);
    const foundSize = this.u32[(found + B_SIZE) >>> 2]!;
    lists.takeHead(found, lists.foundList);
    return this.carveAligned(found, foundSize, blockSize, align, size);
  }

  /**
   * Cuts a live block of `blockSize` bytes from the front of free block `fb` (already off its
   * list) and returns its payload. A tail of at least a minimum block goes back on the free
   * lists; a smaller one stays in the live block as slack. `fb` had live neighbours, so the
   * tail touches no other free block. Stores: the tail's header (inside `fb`), then `fb`'s
   * live header, whose size word is the commit.
   */
  private carve(fb: number, fbSize: number, blockSize: number, requested: number): number {
    const u32 = this.u32;
    const prev = addressOfWord(u32[(fb + B_PREV_PHYS) >>> 2]!);
    const tailSize = fbSize - blockSize;
    const split = tailSize >= MIN_BLOCK_BYTES;
    const size = split ? blockSize : fbSize;
    const tail = fb + blockSize;
    if (split) {
      u32[(tail + B_PREV_PHYS) >>> 2] = fb;
      u32[(tail + B_SIZE) >>> 2] = tailSize;
    }
    // One call site, so V8 inlines the header write once (it counts against the budget the
    // facade's malloc inlines this path under).
    this.writeLiveHeader(fb, prev, size, size - HEADER_BYTES - requested);
    if (split) {
      this.setPrevPhys(fb + fbSize, tail);
      this.lists.insert(tail, tailSize);
    }
    // `fb` left its list in allocate; a listed tail takes its place in the free-block count.
    this.counters.allocated(size, requested, size - HEADER_BYTES, split ? 0 : -1);
    return fb + HEADER_BYTES;
  }

  /**
   * Cuts an over-aligned live block of `blockSize` bytes (trailer included), its payload
   * aligned to `align`, out of free block `fb` (already off its list), and returns the payload.
   * The gap before it becomes a free block; the tail as in `carve`. Stores, each exposing
   * only headers already written inside `fb`: the trailer and the tail's header; with a gap,
   * the block's size word as a free block, then `fb`'s size shrunk to the gap (three free
   * blocks tile `fb`'s place), then the block's live header; without one, `fb`'s live header.
   */
  private carveAligned(fb: number, fbSize: number, blockSize: number, align: number, requested: number): number {
    const u32 = this.u32;
    let block = fb;
    const misalign = (fb + HEADER_BYTES) % align;
    if (misalign !== 0) {
      // The gap is a multiple of 8; one of 8 bytes cannot hold a free block, so the payload
      // moves one alignment further, making the gap at most align + 8.
      let gap = align - misalign;
      if (gap < MIN_BLOCK_BYTES) gap += align;
      block = fb + gap;
    }
    const after = fb + fbSize;
    const tailSize = after - block - blockSize;
    const size = tailSize >= MIN_BLOCK_BYTES ? blockSize : blockSize + tailSize;
    const slack = size - HEADER_BYTES - TRAILER_BYTES - requested;
    u32[(block + size - T_INFO_FROM_END) >>> 2] = trailerWord(block, size, slack, 31 - Math.clz32(align));
    if (tailSize >= MIN_BLOCK_BYTES) {
      const tail = block + size;
      u32[(tail + B_PREV_PHYS) >>> 2] = block;
      u32[(tail + B_SIZE) >>> 2] = tailSize;
    }
    if (block !== fb) {
      u32[(block + B_SIZE) >>> 2] = size;
      u32[(fb + B_SIZE) >>> 2] = block - fb;
      this.writeLiveHeader(block, fb, size, EXTENDED_SLACK);
    } else {
      this.writeLiveHeader(fb, addressOfWord(u32[(fb + B_PREV_PHYS) >>> 2]!), size, EXTENDED_SLACK);
    }
    if (tailSize >= MIN_BLOCK_BYTES) this.setPrevPhys(after, block + size);
    else if (block !== fb) this.setPrevPhys(after, block);
    if (block !== fb) this.lists.insert(fb, block - fb);
    if (tailSize >= MIN_BLOCK_BYTES) this.lists.insert(block + size, tailSize);
    // `fb` left its list in allocateAligned; the gap and the tail are listed.
    const listed = (block !== fb ? 1 : 0) + (tailSize >= MIN_BLOCK_BYTES ? 1 : 0);
    this.counters.allocated(size, requested, size - HEADER_BYTES - TRAILER_BYTES, listed - 1);
    return block + HEADER_BYTES;
  }

  // --- refill runs ---------------------------------------------------------------------------

  /**
   * Carves up to `count` blocks of `size` bytes back to back from the front of one free
   * block, the first payload on a line, and hands each to `take` as soon as it is live (core's
   * `Backend.allocateRun`; run.ts plans the run). The free block is the one `findFit` gives
   * for the whole run and `RUN_EXTRA_BYTES`, else for one block and them: one search, then
   * the carve. Returns how many blocks it made, 0 when no free block is that big.
   *
   * Stores (layout.ts, "refill run"): with a gap before the first block, the rest's header,
   * then the free block's size shrunk to the gap (the commit), and the gap listed; then for
   * each block but the last, the header of the rest after it, inside the rest, then its own
   * size word with USED (the commit), while the rest stays off the lists; the last block is
   * carved as `allocate` carves one (`carve`, or `carveAligned` with alignment 8 when it is
   * padded), which lists what is left. A `take` that throws finds every block so far live:
   * the rest is listed as the tail an `allocate` would have left, then its error goes on.
   * @throws AllocError `InvalidParam` for a size that is not a multiple of 8 from 8 to
   *   `TC_MAX_REQUEST`; `HeapCorrupted` when the free list it takes from is damaged
   */
  allocateRun(size: number, count: number, take: (block: number) => void): number {
    if (!(size >= GRANULARITY && size <= TC_MAX_REQUEST && size % GRANULARITY === 0)) {
      throw new AllocError('InvalidParam', `a refill run takes blocks of a multiple of ${GRANULARITY} bytes up to ${TC_MAX_REQUEST}; got ${size}`);
    }
    if (!(count >= 1)) return 0;
    const lists = this.lists;
    const blockSize = size + HEADER_BYTES;
    let found = lists.findFit(Math.min(count * blockSize, MAX_BLOCK_BYTES - RUN_EXTRA_BYTES) + RUN_EXTRA_BYTES);
    if (found === 0 && count > 1) found = lists.findFit(blockSize + RUN_EXTRA_BYTES);
    if (found === 0) return 0;
    if (this.checked) this.checkHandOut(found);
    const u32 = this.u32;
    const foundSize = u32[(found + B_SIZE) >>> 2]!;
    const plan = this.runPlan;
    // A block with room for one block and RUN_EXTRA_BYTES always takes one: not reached.
    if (!planRun(plan, found, foundSize, blockSize, count)) return 0;
    lists.takeHead(found, lists.foundList);
    const end = found + foundSize;
    let b = plan.start;
    if (b !== found) {
      u32[(b + B_PREV_PHYS) >>> 2] = found;
      u32[(b + B_SIZE) >>> 2] = end - b;
      u32[(found + B_SIZE) >>> 2] = b - found;
      lists.insert(found, b - found);
      // The gap is listed in `found`'s place; the rest counts as listed, as a carve's tail does.
      this.counters.addFree(1);
    }
    const last = plan.start + (plan.blocks - 1) * blockSize;
    while (b < last) {
      // The block's prevPhys word is the rest's, which has no slack bits, as a run block's has none.
      const next = b + blockSize;
      u32[(next + B_PREV_PHYS) >>> 2] = b;
      u32[(next + B_SIZE) >>> 2] = end - next;
      u32[(b + B_SIZE) >>> 2] = blockSize | USED;
      this.counters.allocated(blockSize, size, size);
      try {
        take(b + HEADER_BYTES);
      } catch (error) {
        this.setPrevPhys(end, next);
        lists.insert(next, end - next);
        throw error;
      }
      b = next;
    }
    // The block after the free block still points at its start: the carve leaves it pointing
    // at the tail, or, when the last block takes everything, at that block.
    this.setPrevPhys(end, b);
    take(plan.padded ? this.carveAligned(b, end - b, plan.lastSize, GRANULARITY, size) : this.carve(b, end - b, plan.lastSize, size));
    return plan.blocks;
  }

  /**
   * Frees the block at `address`, merging it at once with its free physical neighbours.
   * Stores: the neighbours leave their lists; the block's size word without USED (grown over
   * a free next block) is the commit that frees it; a free previous block's size then grows
   * over it; prevPhys words; the merged block goes on its list.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block;
   *   `HeapCorrupted` when a free neighbour's header or links are damaged
   */
  release(address: number): void {
    const u32 = this.u32;
    const b = findLiveBlock(u32, address, this.arenaStart, this.arenaEnd);
    if (b === 0) throw notLive(address);
    const prevWord = u32[(b + B_PREV_PHYS) >>> 2]!;
    const sizeWord = u32[(b + B_SIZE) >>> 2]!;
    const size = sizeOfWord(sizeWord);
    if (this.checked) this.checkNeighbours(b, size);
    const slack = slackOfWords(prevWord, sizeWord);
    const extended = slack === EXTENDED_SLACK;
    const requested = extended ? this.alignedRequested(b, size) : size - HEADER_BYTES - slack;
    const prev = addressOfWord(prevWord);
    const prevSizeWord = u32[(prev + B_SIZE) >>> 2]!;
    const prevFree = (prevSizeWord & USED) === 0;
    // findLiveBlock has seen the previous block end here; a free one must be well formed too.
    if (prevFree && ((prevSizeWord & SIZE_FLAG_BITS) !== 0 || prevSizeWord < MIN_BLOCK_BYTES)) throw this.badFree(prev, prevSizeWord);
    const next = b + size;
    const nextSizeWord = u32[(next + B_SIZE) >>> 2]!;
    const nextFree = (nextSizeWord & USED) === 0;
    if (nextFree && !this.freeBlockFits(next, nextSizeWord)) throw this.badFree(next, nextSizeWord);
    const lists = this.lists;
    if (prevFree) lists.remove(prev, prevSizeWord);
    if (nextFree) lists.remove(next, nextSizeWord);
    const own = nextFree ? size + nextSizeWord : size;
    // The commit: without USED this header can never pass for a live block again, so a
    // second free of `address` fails, even once the header lies inside a merged block.
    u32[(b + B_SIZE) >>> 2] = own;
    let start = b;
    let merged = own;
    if (prevFree) {
      merged = prevSizeWord + own;
      u32[(prev + B_SIZE) >>> 2] = merged;
      start = prev;
    } else {
      // A free block's prevPhys word has no slack bits.
      u32[(b + B_PREV_PHYS) >>> 2] = prev;
    }
    // setPrevPhys, written out: what release inlines counts against V8's budget (now that
    // the counters are core's, their update does too), and this keeps the list insert inlined.
    const after = (start + merged + B_PREV_PHYS) >>> 2;
    u32[after] = start | (u32[after]! & PREV_SLACK_BITS);
    lists.insert(start, merged);
    // One block listed, each free neighbour merged into it unlisted.
    const freeBlocks = 1 - (prevFree ? 1 : 0) - (nextFree ? 1 : 0);
    this.counters.released(size, requested, size - HEADER_BYTES - (extended ? TRAILER_BYTES : 0), freeBlocks);
  }

  /**
   * Bytes usable at `address`: the block size minus its header (and its trailer).
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  usableSize(address: number): number {
    const u32 = this.u32;
    const b = findLiveBlock(u32, address, this.arenaStart, this.arenaEnd);
    if (b === 0) throw notLive(address);
    const sizeWord = u32[(b + B_SIZE) >>> 2]!;
    const extended = slackOfWords(u32[(b + B_PREV_PHYS) >>> 2]!, sizeWord) === EXTENDED_SLACK;
    return sizeOfWord(sizeWord) - HEADER_BYTES - (extended ? TRAILER_BYTES : 0);
  }

  /**
   * The size asked for when the block was made (or last resized), from its slack.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block;
   *   `HeapCorrupted` when an over-aligned block's trailer is damaged
   */
  requestedSize(address: number): number {
    const u32 = this.u32;
    const b = findLiveBlock(u32, address, this.arenaStart, this.arenaEnd);
    if (b === 0) throw notLive(address);
    const sizeWord = u32[(b + B_SIZE) >>> 2]!;
    const size = sizeOfWord(sizeWord);
    const slack = slackOfWords(u32[(b + B_PREV_PHYS) >>> 2]!, sizeWord);
    return slack === EXTENDED_SLACK ? this.alignedRequested(b, size) : size - HEADER_BYTES - slack;
  }

  /**
   * The layout the live block at `address` may be freed with: exactly the size asked for
   * (the slack is kept) and exactly the alignment it was allocated with: 8 for a plain block
   * (`dealloc` raises smaller alignments to 8), the recorded one for an over-aligned block.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block;
   *   `HeapCorrupted` when an over-aligned block's trailer is damaged
   */
  blockLayout(address: number): BlockLayout {
    const u32 = this.u32;
    const b = findLiveBlock(u32, address, this.arenaStart, this.arenaEnd);
    if (b === 0) throw notLive(address);
    const prevWord = u32[(b + B_PREV_PHYS) >>> 2]!;
    const sizeWord = u32[(b + B_SIZE) >>> 2]!;
    const size = sizeOfWord(sizeWord);
    const slack = slackOfWords(prevWord, sizeWord);
    if (slack !== EXTENDED_SLACK) {
      const requested = size - HEADER_BYTES - slack;
      return { minSize: requested, maxSize: requested, minAlign: GRANULARITY, maxAlign: GRANULARITY };
    }
    const trailer = this.trailerOf(b, size);
    const requested = size - HEADER_BYTES - TRAILER_BYTES - (trailer & TRAILER_SLACK_MASK);
    const align = 2 ** ((trailer >>> TRAILER_ALIGN_SHIFT) & TRAILER_ALIGN_MASK);
    return { minSize: requested, maxSize: requested, minAlign: align, maxAlign: align };
  }

  /**
   * Resizes the block at `address` without moving it: a shrink splits off the tail (or
   * gives it to a free next block); a growth takes what it needs of a free next block.
   * Returns false, changing nothing, when the next block is live or too small, and for the
   * one growth the trailer of an over-aligned block cannot make (8 bytes, into a free next
   * block: the trailer would land on that block's size word, which tiles the pool until
   * the commit). Stores: a free next block leaves its list; the header of the block split
   * off (and the trailer at the new end); the block's header, whose size word is the commit;
   * the prevPhys after; the split-off block goes on its list.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block;
   *   `HeapCorrupted` when the free next block's header or links are damaged
   */
  resizeInPlace(address: number, size: number): boolean {
    const u32 = this.u32;
    const b = findLiveBlock(u32, address, this.arenaStart, this.arenaEnd);
    if (b === 0) throw notLive(address);
    if (size > MAX_BLOCK_BYTES) return false;
    const prevWord = u32[(b + B_PREV_PHYS) >>> 2]!;
    const sizeWord = u32[(b + B_SIZE) >>> 2]!;
    const oldSize = sizeOfWord(sizeWord);
    if (this.checked) this.checkNeighbours(b, oldSize);
    const slack = slackOfWords(prevWord, sizeWord);
    const extended = slack === EXTENDED_SLACK;
    const trailer = extended ? this.trailerOf(b, oldSize) : 0;
    const overhead = extended ? HEADER_BYTES + TRAILER_BYTES : HEADER_BYTES;
    const oldRequested = oldSize - overhead - (extended ? trailer & TRAILER_SLACK_MASK : slack);
    const wanted = blockSizeFor(size) + overhead - HEADER_BYTES;
    const next = b + oldSize;
    const nextSizeWord = u32[(next + B_SIZE) >>> 2]!;
    const nextFree = (nextSizeWord & USED) === 0;
    if (nextFree && !this.freeBlockFits(next, nextSizeWord)) throw this.badFree(next, nextSizeWord);
    const available = nextFree ? oldSize + nextSizeWord : oldSize;
    if (wanted > available) return false;
    let newSize = oldSize;
    let split = 0;
    if (nextFree) {
      // Everything past `wanted` joins the free next block, which moves down (or grows
      // less): no tail is too small to give away when it has a free block to join.
      if (available - wanted >= MIN_BLOCK_BYTES) {
        newSize = wanted;
        split = available - wanted;
      } else {
        newSize = available;
      }
    } else if (oldSize - wanted >= MIN_BLOCK_BYTES) {
      newSize = wanted;
      split = oldSize - wanted;
    }
    if (extended && newSize - oldSize === GRANULARITY) return false;
    const newSlack = newSize - overhead - size;
    if (nextFree) this.lists.remove(next, nextSizeWord);
    const end = b + available;
    if (split !== 0) {
      u32[(b + newSize + B_PREV_PHYS) >>> 2] = b;
      u32[(b + newSize + B_SIZE) >>> 2] = split;
    }
    if (extended) {
      // The trailer word is the commit when the size stays; the header's slack bits stay EXTENDED.
      const alignLog2 = (trailer >>> TRAILER_ALIGN_SHIFT) & TRAILER_ALIGN_MASK;
      u32[(b + newSize - T_INFO_FROM_END) >>> 2] = trailerWord(b, newSize, newSlack, alignLog2);
      u32[(b + B_SIZE) >>> 2] = newSize | EXTENDED_SIZE_BITS | USED;
    } else {
      this.writeLiveHeader(b, addressOfWord(prevWord), newSize, newSlack);
    }
    if (split !== 0) {
      this.setPrevPhys(end, b + newSize);
      this.lists.insert(b + newSize, split);
    } else if (newSize !== oldSize) {
      this.setPrevPhys(end, b);
    }
    this.counters.resized(newSize - oldSize, size - oldRequested, newSize - oldSize);
    // The free next block unlisted, the split-off block listed.
    this.counters.addFree((split !== 0 ? 1 : 0) - (nextFree ? 1 : 0));
    return true;
  }

  // --- header primitives ---------------------------------------------------------------------

  /**
   * Writes a live block's header with its slack split over the two words' low bits: the
   * prevPhys word first, then the size word, which makes the block live (the commit).
   */
  private writeLiveHeader(b: number, prev: number, size: number, slack: number): void {
    this.u32[(b + B_PREV_PHYS) >>> 2] = prev | (slack & PREV_SLACK_BITS);
    this.u32[(b + B_SIZE) >>> 2] = size | ((slack >>> 3) << 1) | USED;
  }

  /** Points block `b`'s prevPhys at `prev`, keeping `b`'s slack bits. */
  private setPrevPhys(b: number, prev: number): void {
    const index = (b + B_PREV_PHYS) >>> 2;
    this.u32[index] = prev | (this.u32[index]! & PREV_SLACK_BITS);
  }

  /**
   * Whether free block `f` (a neighbour about to be merged) is well formed: a header without
   * flag bits, at least a minimum block, inside the arena, and its size confirmed by the
   * prevPhys of the block after it. Without this, a size damaged by an overflow would carry
   * the merge (and the next block's prevPhys store) into blocks the damage never touched.
   */
  private freeBlockFits(f: number, sizeWord: number): boolean {
    return (
      (sizeWord & SIZE_FLAG_BITS) === 0 &&
      sizeWord >= MIN_BLOCK_BYTES &&
      f + sizeWord <= this.lastEnd &&
      addressOfWord(this.u32[(f + sizeWord + B_PREV_PHYS) >>> 2]!) === f
    );
  }

  /**
   * The trailer word of over-aligned block `b` of `size` bytes.
   * @throws AllocError `HeapCorrupted` when it is damaged (an overflow past the usable end)
   */
  private trailerOf(b: number, size: number): number {
    const word = this.u32[(b + size - T_INFO_FROM_END) >>> 2]!;
    if (!trailerValid(word, b, size)) {
      throw checker.corrupt(`the alignment trailer ${hex(word)} of the block at ${hex(b)} is damaged (an overflow past its usable end?)`);
    }
    return word;
  }

  /** The size asked for of over-aligned block `b`, from its trailer. */
  private alignedRequested(b: number, size: number): number {
    return size - HEADER_BYTES - TRAILER_BYTES - (this.trailerOf(b, size) & TRAILER_SLACK_MASK);
  }

  private badFree(f: number, sizeWord: number): AllocError {
    return checker.corrupt(
      `the free block at ${hex(f)} has the header size word ${hex(sizeWord)}, which the blocks around it do not confirm (an overflow into it?)`,
    );
  }

  // --- checked mode ------------------------------------------------------------------------

  /**
   * Checked mode: free block `found`, about to be handed out, lies in a pool, is well formed
   * and has live blocks on both sides that agree with it.
   */
  private checkHandOut(found: number): void {
    const sizeWord = this.u32[(found + B_SIZE) >>> 2]!;
    this.checkInPool(found, sizeOfWord(sizeWord));
    this.checkFree(found, sizeWord);
  }

  /**
   * Checked mode: live block `b` of `size` bytes (its prevPhys links checked both ways by
   * `findLiveBlock`) lies in a pool, the counters can account for it, and each free neighbour
   * is well formed with a live block on its far side.
   */
  private checkNeighbours(b: number, size: number): void {
    const u32 = this.u32;
    this.checkInPool(b, size);
    const counters = this.counters;
    if (counters.liveBlocks === 0 || counters.usedBytes < size) {
      throw checker.corrupt(`the counters (${counters.liveBlocks} live blocks, ${counters.usedBytes} bytes used) cannot hold the block at ${hex(b)}`);
    }
    const prev = addressOfWord(u32[(b + B_PREV_PHYS) >>> 2]!);
    const prevSizeWord = u32[(prev + B_SIZE) >>> 2]!;
    if ((prevSizeWord & USED) === 0) this.checkFree(prev, prevSizeWord);
    const nextSizeWord = u32[(b + size + B_SIZE) >>> 2]!;
    if ((nextSizeWord & USED) === 0) this.checkFree(b + size, nextSizeWord);
  }

  /**
   * Checked mode: free block `f` is well formed (no flag or slack bits, at least a minimum
   * block, its size confirmed by the next block's prevPhys), and both physical neighbours are
   * live (free neighbours are always merged) and agree with it.
   */
  private checkFree(f: number, sizeWord: number): void {
    const u32 = this.u32;
    if (!this.freeBlockFits(f, sizeWord)) throw this.badFree(f, sizeWord);
    if ((u32[(f + sizeWord + B_SIZE) >>> 2]! & USED) === 0) {
      throw checker.corrupt(`free block ${hex(f)} is followed by the free block ${hex(f + sizeWord)} (a missed merge)`);
    }
    const prevWord = u32[(f + B_PREV_PHYS) >>> 2]!;
    const prevSizeWord = u32[(prevWord + B_SIZE) >>> 2];
    if ((prevWord & PREV_SLACK_BITS) !== 0 || prevWord < this.arenaStart || prevWord >= f || prevSizeWord === undefined) {
      throw checker.corrupt(`free block ${hex(f)} has the prevPhys word ${hex(prevWord)}, which is no block before it`);
    }
    if ((prevSizeWord & USED) === 0 || prevWord + sizeOfWord(prevSizeWord) !== f) {
      throw checker.corrupt(
        `the block ${hex(prevWord)} before free block ${hex(f)} has the size word ${hex(prevSizeWord)}: ` + `it should be a live block ending at ${hex(f)}`,
      );
    }
  }

  /** Checked mode: `[b, b + size)` lies between the sentinels of one pool of core's table. */
  private checkInPool(b: number, size: number): void {
    const pools = this.pools;
    for (let i = 0, count = pools.count(); i < count; i++) {
      const { start, end } = poolBounds(pools.start(i), pools.end(i));
      if (b >= start + FRONT_SENTINEL_BYTES && b + size <= end - END_SENTINEL_BYTES) return;
    }
    throw checker.corrupt(`the block at ${hex(b)} of ${size} bytes lies in no pool`);
  }

  // --- accounting ----------------------------------------------------------------------------

  /** Bytes usable as blocks over all pools: pool bytes minus their sentinels. */
  totalBytes(): number {
    return this.counters.totalBytes;
  }

  /** Sizes of live blocks, headers, trailers and slack included. */
  usedBytes(): number {
    return this.counters.usedBytes;
  }

  /**
   * Core's counters, plus the largest request `malloc` would serve now (the head of the
   * highest non-empty list). `metadataBytes` counts each pool's two sentinels (the metadata
   * counter) and the 8-byte header of each live block and the 8-byte trailer of each
   * over-aligned one (used minus granted bytes); the control state lives outside the arena
   * and is not counted.
   * @throws AllocError `HeapCorrupted` when the highest list's head is damaged
   */
  stats(): BackendStats {
    const counted = this.counters.values();
    return {
      ...counted,
      peakUsedSampled: false,
      metadataBytes: counted.metadataBytes + counted.usedBytes - counted.grantedBytes,
      largestFreeBlock: this.lists.largestServable(),
    };
  }

  /**
   * Walks every pool block by block and every free list, and checks every invariant the
   * backend keeps (see `checkHeap`).
   * @throws AllocError `HeapCorrupted` naming the first violation and its address
   */
  check(): CheckReport {
    return checkHeap(this);
  }

  /**
   * Rebuilds the lists, bitmaps, prevPhys words and counters from the block headers after a
   * thread died holding the heap lock (see "What a dead thread leaves" in layout.ts).
   * @throws AllocError `HeapCorrupted` when the control state or a pool's headers are broken
   *   (sizes that do not tile the pool): then there is nothing sound to rebuild from
   */
  recover(_cause: RepairCause): BackendRepair {
    return recoverHeap(this);
  }

  /**
   * Reports every pool region by region: sentinels, headers and trailers, live blocks with
   * their requested size, free blocks with their list (walk.ts).
   * @throws AllocError `HeapCorrupted` for a damaged header, list or bitmap
   */
  walk(visit: (region: HeapRegion) => void): void {
    walkTlsfHeap(this, visit);
  }

  /** The occupied free lists and the bitmaps (walk.ts). */
  classStats(): StatsTable[] {
    return tlsfClassStats(this);
  }
}
