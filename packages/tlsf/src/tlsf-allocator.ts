/**
 * The TLSF backend: two-level segregated fit (Masmano, Ripoll, Crespo and Real, "TLSF: a new
 * dynamic memory allocator for real-time systems", 2004), with rlsf's good-fit search.
 * Allocation and free take constant time: the free list for a request is found from two
 * bitmap words with `Math.clz32`, and a freed block merges at once with both physical
 * neighbours, found through its size (the next one) and its prevPhys link (the previous one).
 *
 * Every bit of state lives in the shared buffer (layout in tlsf-layout.ts): the instance holds
 * only views, constants and word indices, so the instance another thread creates over the same
 * buffer sees the same heap. The facade calls every method with the heap mutex held
 * (`concurrency: 'locked'`), so plain reads and writes suffice.
 *
 * Invariants kept here (verified by `checkHeap`):
 * - Each pool is a front sentinel, blocks that tile it exactly, and an end sentinel; every
 *   block's prevPhys is the block (or front sentinel) just before it, and the end sentinel's
 *   prevPhys is the last block.
 * - No two physically adjacent blocks are free: every free merges with free neighbours.
 * - Free blocks and sentinels have no slack bits; a live block's slack is its usable size
 *   minus the size last asked for, at most MAX_SLACK.
 * - The counters equal the sums over the blocks they describe.
 */

import { AllocError, type Backend, type BackendContext, type BackendStats, type CheckReport, hex } from '@heaplab/core';

import { FreeLists } from './free-lists.js';
import { checkHeap } from './heap-check.js';
import { findLiveBlock } from './live-block.js';
import {
  B_PREV_PHYS,
  B_SIZE,
  END_SENTINEL_BYTES,
  FRONT_SENTINEL_BYTES,
  GRANULARITY,
  HEADER_BYTES,
  MAX_BLOCK_BYTES,
  MIN_BLOCK_BYTES,
  MIN_POOL_BYTES,
  PE_END,
  PE_START,
  POOL_ENTRY_BYTES,
  POOL_OVERHEAD_BYTES,
  PREV_SLACK_BITS,
  ST_FREE,
  ST_LIVE,
  ST_MAGIC,
  ST_PEAK,
  ST_POOL_COUNT,
  ST_POOLS,
  ST_REQUESTED,
  ST_TOTAL,
  ST_USED,
  STATE_BYTES,
  TLSF_MAGIC,
  TLSF_MAX_POOLS,
  USED,
  addressOfWord,
  sizeOfWord,
  slackOfWords,
} from './tlsf-layout.js';
import type { TlsfOptions } from './options.js';

/**
 * The block size that serves a request of `size` bytes: the size rounded up to the
 * granularity (a zero-byte request gets GRANULARITY bytes, so its block is unique) plus the
 * header. `size` must be at most MAX_BLOCK_BYTES, which keeps the 32-bit arithmetic exact.
 */
function blockSizeFor(size: number): number {
  return size <= GRANULARITY ? MIN_BLOCK_BYTES : ((size + HEADER_BYTES + GRANULARITY - 1) & -GRANULARITY) >>> 0;
}

function notAllocated(address: number): AllocError {
  return new AllocError(
    'NotAllocated',
    `${hex(address)} is not the start of a live block (double free, interior pointer, or never allocated)`,
  );
}

/**
 * One thread's handle on a TLSF heap. Create it through `tlsfBackend.create`; every instance
 * over the same buffer and `stateOffset` sees and edits the same heap. Not thread-safe: call
 * it under the heap lock.
 */
export class TlsfAllocator implements Backend {
  private readonly u32: Uint32Array;
  private readonly lists: FreeLists;
  private readonly arenaStart: number;
  private readonly arenaEnd: number;
  private readonly stateOffset: number;
  // Word indices of the control-state fields, computed once so hot paths only index.
  private readonly sMagic: number;
  private readonly sPoolCount: number;
  private readonly sTotal: number;
  private readonly sUsed: number;
  private readonly sPeak: number;
  private readonly sRequested: number;
  private readonly sLive: number;
  private readonly sFree: number;
  private readonly sPools: number;

  /**
   * Makes a handle over `ctx`'s shared state; does not format it (`init` does).
   * @throws AllocError `InvalidParam` when the state area is smaller than `STATE_BYTES` or
   *   not 8-aligned
   */
  constructor(ctx: BackendContext, _options: TlsfOptions) {
    if (ctx.stateBytes < STATE_BYTES || ctx.stateOffset % 8 !== 0) {
      throw new AllocError(
        'InvalidParam',
        `tlsf backend needs ${STATE_BYTES} bytes of 8-aligned state; got ${ctx.stateBytes} at ${hex(ctx.stateOffset)}`,
      );
    }
    this.u32 = ctx.memory.u32;
    this.lists = new FreeLists(ctx.memory.u32, ctx.stateOffset);
    this.arenaStart = ctx.arenaStart;
    this.arenaEnd = ctx.arenaEnd;
    this.stateOffset = ctx.stateOffset;
    const base = ctx.stateOffset >>> 2;
    this.sMagic = base + (ST_MAGIC >>> 2);
    this.sPoolCount = base + (ST_POOL_COUNT >>> 2);
    this.sTotal = base + (ST_TOTAL >>> 2);
    this.sUsed = base + (ST_USED >>> 2);
    this.sPeak = base + (ST_PEAK >>> 2);
    this.sRequested = base + (ST_REQUESTED >>> 2);
    this.sLive = base + (ST_LIVE >>> 2);
    this.sFree = base + (ST_FREE >>> 2);
    this.sPools = base + (ST_POOLS >>> 2);
  }

  // --- memory given to the heap ------------------------------------------------------------

  /**
   * Formats the shared state and takes `[start, start + size)` as the first pool.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small for two
   *   sentinels and one minimum block
   */
  init(start: number, size: number): void {
    // Check before touching the state, so a refused init leaves the buffer as it was.
    const poolStart = this.poolStart(start, size);
    const first = this.stateOffset >>> 2;
    this.u32.fill(0, first, first + (STATE_BYTES >>> 2));
    this.u32[this.sMagic] = TLSF_MAGIC;
    this.formatPool(poolStart, this.poolEnd(start, size));
  }

  /**
   * Adds `[start, start + size)` as another pool (core has checked it overlaps no other).
   * Pools are never merged, even when adjacent: each keeps its sentinels, so `check()` can
   * walk each one on its own.
   * @throws AllocError `InvalidParam` for a range outside the arena, too small, or beyond
   *   the TLSF_MAX_POOLS pools the state has room for
   */
  addMemory(start: number, size: number): void {
    const poolStart = this.poolStart(start, size);
    if (this.u32[this.sPoolCount]! >= TLSF_MAX_POOLS) {
      throw new AllocError('InvalidParam', `the tlsf backend manages at most ${TLSF_MAX_POOLS} pools; ${hex(start)} would be one more`);
    }
    this.formatPool(poolStart, this.poolEnd(start, size));
  }

  /** Writes both sentinels around one free block and records the pool. */
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
    const count = u32[this.sPoolCount]!;
    u32[this.sPools + count * (POOL_ENTRY_BYTES >>> 2) + (PE_START >>> 2)] = poolStart;
    u32[this.sPools + count * (POOL_ENTRY_BYTES >>> 2) + (PE_END >>> 2)] = poolEnd;
    u32[this.sPoolCount] = count + 1;
    u32[this.sTotal] = u32[this.sTotal]! + poolEnd - poolStart - POOL_OVERHEAD_BYTES;
  }

  /**
   * The 8-aligned start of a pool for `[start, start + size)`.
   * @throws AllocError `InvalidParam` when the range is outside the arena or too small
   */
  private poolStart(start: number, size: number): number {
    if (
      !Number.isSafeInteger(start) ||
      !Number.isSafeInteger(size) ||
      size < 0 ||
      start < this.arenaStart ||
      start + size > this.arenaEnd
    ) {
      throw new AllocError(
        'InvalidParam',
        `memory range ${hex(start)} + ${String(size)} is not inside the arena ${hex(this.arenaStart)}..${hex(this.arenaEnd)}`,
      );
    }
    const poolStart = start + ((GRANULARITY - (start % GRANULARITY)) % GRANULARITY);
    if (this.poolEnd(start, size) - poolStart < MIN_POOL_BYTES) {
      throw new AllocError(
        'InvalidParam',
        `memory range ${hex(start)}..${hex(start + size)} is too small: the tlsf backend needs at least ` +
          `${MIN_POOL_BYTES} bytes between 8-aligned bounds (two sentinels and one block)`,
      );
    }
    return poolStart;
  }

  private poolEnd(start: number, size: number): number {
    return start + size - ((start + size) % GRANULARITY);
  }

  // --- the hot paths -----------------------------------------------------------------------

  /** Returns the payload address of a block of at least `size` bytes aligned to `align`, or 0. */
  allocate(size: number, align: number): number {
    if (size > MAX_BLOCK_BYTES) return 0;
    const blockSize = blockSizeFor(size);
    // An over-aligned payload may sit up to align + 8 bytes into the free block (see carve),
    // so the search asks for that much more; the gap goes back to the free lists.
    const wanted = align > GRANULARITY ? blockSize + align + HEADER_BYTES : blockSize;
    if (wanted > MAX_BLOCK_BYTES) return 0;
    const found = this.lists.findFit(wanted);
    if (found === 0) return 0;
    const foundSize = this.u32[(found + B_SIZE) >>> 2]!;
    this.lists.remove(found, foundSize);
    return this.carve(found, foundSize, blockSize, align, size);
  }

  /**
   * Cuts a live block of `blockSize` bytes, its payload aligned to `align`, out of the free
   * block `fb` (already off its list), and returns the payload address. A gap before the
   * block and a tail after it go back on the free lists; a tail too small to be a free block
   * stays in the live block as slack. Neither can touch another free block: `fb` had live
   * neighbours.
   */
  private carve(fb: number, fbSize: number, blockSize: number, align: number, requested: number): number {
    const u32 = this.u32;
    let block = fb;
    let prev = u32[(fb + B_PREV_PHYS) >>> 2]!;
    if (align > GRANULARITY) {
      const misalign = (fb + HEADER_BYTES) % align;
      if (misalign !== 0) {
        // The gap is a multiple of 8; one of 8 bytes cannot hold a free block, so the payload
        // moves one alignment further, making the gap at most align + 8.
        let gap = align - misalign;
        if (gap < MIN_BLOCK_BYTES) gap += align;
        u32[(fb + B_SIZE) >>> 2] = gap;
        this.lists.insert(fb, gap);
        block = fb + gap;
        prev = fb;
      }
    }
    const after = fb + fbSize;
    const tailSize = after - block - blockSize;
    let size = blockSize;
    if (tailSize >= MIN_BLOCK_BYTES) {
      const tail = block + blockSize;
      u32[(tail + B_PREV_PHYS) >>> 2] = block;
      u32[(tail + B_SIZE) >>> 2] = tailSize;
      this.lists.insert(tail, tailSize);
      this.setPrevPhys(after, tail);
    } else {
      size += tailSize;
      if (block !== fb) this.setPrevPhys(after, block);
    }
    this.writeLiveHeader(block, prev, size, size - HEADER_BYTES - requested);
    const used = u32[this.sUsed]! + size;
    u32[this.sUsed] = used;
    if (used > u32[this.sPeak]!) u32[this.sPeak] = used;
    u32[this.sRequested] = u32[this.sRequested]! + requested;
    u32[this.sLive] = u32[this.sLive]! + 1;
    return block + HEADER_BYTES;
  }

  /**
   * Frees the block at `address`, merging it at once with its free physical neighbours.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  release(address: number): void {
    const b = findLiveBlock(this.u32, address, this.arenaStart, this.arenaEnd);
    if (b === 0) throw notAllocated(address);
    const u32 = this.u32;
    const prevWord = u32[(b + B_PREV_PHYS) >>> 2]!;
    const sizeWord = u32[(b + B_SIZE) >>> 2]!;
    const size = sizeOfWord(sizeWord);
    u32[this.sUsed] = u32[this.sUsed]! - size;
    u32[this.sRequested] = u32[this.sRequested]! - (size - HEADER_BYTES - slackOfWords(prevWord, sizeWord));
    u32[this.sLive] = u32[this.sLive]! - 1;
    const prev = addressOfWord(prevWord);
    let start = b;
    let merged = size;
    const prevSizeWord = u32[(prev + B_SIZE) >>> 2]!;
    if ((prevSizeWord & USED) === 0) {
      this.lists.remove(prev, prevSizeWord);
      start = prev;
      merged += prevSizeWord;
      // This header now lies inside a free block: its USED bit must go, so that it can never
      // pass for a live block again (a second free of `address` must fail).
      u32[(b + B_SIZE) >>> 2] = 0;
    } else {
      u32[(b + B_PREV_PHYS) >>> 2] = prev;
    }
    const next = b + size;
    const nextSizeWord = u32[(next + B_SIZE) >>> 2]!;
    if ((nextSizeWord & USED) === 0) {
      this.lists.remove(next, nextSizeWord);
      merged += nextSizeWord;
    }
    u32[(start + B_SIZE) >>> 2] = merged;
    this.lists.insert(start, merged);
    this.setPrevPhys(start + merged, start);
  }

  /**
   * Bytes usable at `address`: the block size minus its header.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  usableSize(address: number): number {
    const b = findLiveBlock(this.u32, address, this.arenaStart, this.arenaEnd);
    if (b === 0) throw notAllocated(address);
    return sizeOfWord(this.u32[(b + B_SIZE) >>> 2]!) - HEADER_BYTES;
  }

  /**
   * The size asked for when the block was made (or last resized), from its slack bits.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  requestedSize(address: number): number {
    const b = findLiveBlock(this.u32, address, this.arenaStart, this.arenaEnd);
    if (b === 0) throw notAllocated(address);
    const prevWord = this.u32[(b + B_PREV_PHYS) >>> 2]!;
    const sizeWord = this.u32[(b + B_SIZE) >>> 2]!;
    return sizeOfWord(sizeWord) - HEADER_BYTES - slackOfWords(prevWord, sizeWord);
  }

  /**
   * Resizes the block at `address` without moving it: a shrink splits off the tail (or
   * gives it to a free next block); a growth takes what it needs of a free next block.
   * Returns false, changing nothing, when the next block is live or too small.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  resizeInPlace(address: number, size: number): boolean {
    const b = findLiveBlock(this.u32, address, this.arenaStart, this.arenaEnd);
    if (b === 0) throw notAllocated(address);
    if (size > MAX_BLOCK_BYTES) return false;
    const u32 = this.u32;
    const wanted = blockSizeFor(size);
    const prevWord = u32[(b + B_PREV_PHYS) >>> 2]!;
    const sizeWord = u32[(b + B_SIZE) >>> 2]!;
    const oldSize = sizeOfWord(sizeWord);
    const oldRequested = oldSize - HEADER_BYTES - slackOfWords(prevWord, sizeWord);
    const next = b + oldSize;
    const nextSizeWord = u32[(next + B_SIZE) >>> 2]!;
    const nextFree = (nextSizeWord & USED) === 0;
    const available = nextFree ? oldSize + nextSizeWord : oldSize;
    if (wanted > available) return false;
    let newSize = oldSize;
    if (nextFree && wanted < available) {
      // Everything past `wanted` joins the free next block, which moves down (or grows
      // less): no tail is too small to give away when it has a free block to join.
      this.lists.remove(next, nextSizeWord);
      const rest = available - wanted;
      newSize = wanted;
      if (rest >= MIN_BLOCK_BYTES) {
        this.writeFree(b + wanted, b, rest);
      } else {
        newSize = available;
        this.setPrevPhys(b + available, b);
      }
    } else if (nextFree) {
      this.lists.remove(next, nextSizeWord);
      newSize = available;
      this.setPrevPhys(b + available, b);
    } else if (oldSize - wanted >= MIN_BLOCK_BYTES) {
      newSize = wanted;
      this.writeFree(b + wanted, b, oldSize - wanted);
    }
    this.writeLiveHeader(b, addressOfWord(prevWord), newSize, newSize - HEADER_BYTES - size);
    const used = u32[this.sUsed]! + newSize - oldSize;
    u32[this.sUsed] = used;
    if (used > u32[this.sPeak]!) u32[this.sPeak] = used;
    u32[this.sRequested] = u32[this.sRequested]! + size - oldRequested;
    return true;
  }

  // --- header primitives ---------------------------------------------------------------------

  /** Writes a live block's header with its slack split over the two words' low bits. */
  private writeLiveHeader(b: number, prev: number, size: number, slack: number): void {
    this.u32[(b + B_PREV_PHYS) >>> 2] = prev | (slack & PREV_SLACK_BITS);
    this.u32[(b + B_SIZE) >>> 2] = size | ((slack >>> 3) << 1) | USED;
  }

  /**
   * Makes `[b, b + size)` a free block after `prev`, puts it on its list and points the next
   * block back at it. The caller has made sure neither neighbour is free.
   */
  private writeFree(b: number, prev: number, size: number): void {
    this.u32[(b + B_PREV_PHYS) >>> 2] = prev;
    this.u32[(b + B_SIZE) >>> 2] = size;
    this.lists.insert(b, size);
    this.setPrevPhys(b + size, b);
  }

  /** Points block `b`'s prevPhys at `prev`, keeping `b`'s slack bits. */
  private setPrevPhys(b: number, prev: number): void {
    const index = (b + B_PREV_PHYS) >>> 2;
    this.u32[index] = prev | (this.u32[index]! & PREV_SLACK_BITS);
  }

  // --- accounting ----------------------------------------------------------------------------

  /** Bytes usable as blocks over all pools: pool bytes minus their sentinels. */
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
   * The counters, plus the largest request `malloc` would serve now (the head of the
   * highest non-empty list). `metadataBytes` counts the 8-byte header of each live block and
   * each pool's two sentinels; the control state lives outside the arena and is not counted.
   * `grantedBytes` is exact without a counter of its own: every live block has one header.
   */
  stats(): BackendStats {
    const u32 = this.u32;
    const live = u32[this.sLive]!;
    const used = u32[this.sUsed]!;
    return {
      totalBytes: u32[this.sTotal]!,
      usedBytes: used,
      peakUsedBytes: u32[this.sPeak]!,
      peakUsedSampled: false,
      requestedBytes: u32[this.sRequested]!,
      grantedBytes: used - live * HEADER_BYTES,
      metadataBytes: live * HEADER_BYTES + u32[this.sPoolCount]! * POOL_OVERHEAD_BYTES,
      largestFreeBlock: this.lists.largestServable(),
      liveBlocks: live,
      freeBlocks: u32[this.sFree]!,
    };
  }

  /**
   * Walks every pool block by block and every free list, and checks every invariant the
   * backend keeps (see `checkHeap`).
   * @throws AllocError `HeapCorrupted` naming the first violation and its address
   */
  check(): CheckReport {
    return checkHeap(this.u32, this.stateOffset, this.arenaStart, this.arenaEnd);
  }
}
