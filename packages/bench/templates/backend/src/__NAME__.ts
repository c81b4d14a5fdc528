/**
 * A heaplab backend: the implicit free list of Bryant and O'Hallaron's "Computer Systems: A
 * Programmer's Perspective" (CS:APP, section 9.9), with boundary-tag headers and footers,
 * first fit, splitting and immediate coalescing. It is small and correct, and slow on
 * purpose: every malloc and every free walks the blocks from the start of their pool. Make
 * it faster (an explicit free list, segregated lists, next fit...) and measure with
 * `npm run grade` and `npm run replay`.
 *
 * The facade has already checked every argument before a method here runs (see README.md),
 * and holds the heap lock around each call (`concurrency: 'locked'`), so the code below is
 * written as if one thread owned the heap. All state lives in the shared buffer: an instance
 * holds only views and constants, so every thread's instance sees the same heap.
 *
 * ```text
 *  control state (ctx.stateOffset, STATE_BYTES long)
 *  +0  u32 STATE_MAGIC (ST_MAGIC)   written by init; check() refuses a heap without it
 *  +4  u32 reserved, zero
 *
 *  one pool [start, end) of core's pool table; s = start rounded up to 8, e = end rounded
 *  down to 8:
 *  s     s+4          s+8          s+12                                   e-4     e
 *  | pad | prologue   | prologue   | block | block | ... | block         | epilogue |
 *  |     | 8 | ALLOC  | 8 | ALLOC  |                                      | 0 | ALLOC |
 *  the prologue (a header and a footer, no payload) and the epilogue (a header of size 0)
 *  are never freed, so coalescing stops at the pool's ends without a bounds test.
 *
 *  one block at b (b % 8 == 4, so its payload b + 4 is 8-aligned)
 *  b       u32 header = size | ALLOC   size: whole block, a multiple of 8, >= MIN_BLOCK
 *  b+4     payload (size - 8 bytes)    what malloc returns; free blocks keep garbage here
 *  b+size-4 u32 footer = header        the boundary tag: lets a free look at its left neighbour
 * ```
 *
 * Invariants, each verified by `check()`: the blocks of a pool tile `[s+12, e-4)` exactly;
 * every footer equals its header; no two free blocks are adjacent (coalescing is immediate);
 * the counters kept in core (`ctx.counters`) equal what a walk counts.
 *
 * One more, which `check()` cannot see because it must hold between stores, not only between
 * calls: after every single store of `allocate` and `release`, the headers still tile each
 * pool. A thread may die at any instruction while it holds the heap lock; `recover()` then
 * rebuilds the heap from the headers alone, so they must never describe a half-made split or
 * merge. `place` and `release` get this by changing the tiling with one header store, their
 * last (see `mark`). Footers and counters may be left stale by a death: `recover()` rewrites
 * them from the headers.
 */

import {
  AllocError,
  type Backend,
  type BackendContext,
  type BackendRepair,
  type BackendStats,
  type CheckReport,
  defineBackend,
  type HeapRegion,
  HeapChecker,
  hex,
  notAllocated,
  type RepairCause,
} from '@heaplab/core/backend';

/** The backend's name; `heaplab new-backend` writes the name you chose here. */
export const BACKEND_NAME = 'template';

// --- control state ---------------------------------------------------------------------------

const STATE_MAGIC = 0x4c505349; // 'ISPL' little-endian
const ST_MAGIC = 0;
const STATE_BYTES = 8;

// --- block format ----------------------------------------------------------------------------

const WORD = 4;
/** Header and footer: the bytes of a block that are not payload. */
const TAGS_BYTES = 2 * WORD;
/** Header, 8 bytes of payload (keeps the grid of 8), footer. */
const MIN_BLOCK = 16;
const ALLOC = 1;
/** The tag's other low bits: sizes are multiples of 8, so bits 1 and 2 are always 0. */
const UNUSED_BITS = 6;
/** Pad, prologue header, prologue footer before the first block; epilogue header after it. */
const POOL_HEAD_BYTES = 3 * WORD;
const POOL_TAIL_BYTES = WORD;
const PROLOGUE = TAGS_BYTES | ALLOC;
const EPILOGUE = 0 | ALLOC;

/** Block size (header included) from a header or footer word. */
function sizeOf(tag: number): number {
  return tag - (tag & 7);
}

/** The first block of pool `[start, end)`, and its epilogue. */
function poolBounds(start: number, end: number): { first: number; epilogue: number } {
  const s = start + ((8 - (start % 8)) % 8);
  return { first: s + POOL_HEAD_BYTES, epilogue: end - (end % 8) - POOL_TAIL_BYTES };
}

class ImplicitListAllocator implements Backend {
  private readonly u32: Uint32Array;
  private readonly ctx: BackendContext;
  private readonly checker = new HeapChecker(BACKEND_NAME);

  constructor(ctx: BackendContext) {
    if (ctx.stateBytes < STATE_BYTES || ctx.stateOffset % 4 !== 0) {
      throw new AllocError('InvalidParam', `${BACKEND_NAME}: needs ${STATE_BYTES} bytes of 4-aligned state, got ${ctx.stateBytes} at ${hex(ctx.stateOffset)}`);
    }
    this.ctx = ctx;
    this.u32 = ctx.memory.u32;
  }

  private get(address: number): number {
    return this.u32[address >>> 2]!;
  }

  private put(address: number, value: number): void {
    this.u32[address >>> 2] = value;
  }

  /**
   * Writes a block's footer, then its header. The header goes last because it is what a walk
   * reads: once it is written the block exists, with its footer already right. A thread that
   * dies between the two stores leaves at most a stale footer, which `recover()` rewrites.
   */
  private mark(block: number, size: number, allocated: boolean): void {
    const tag = allocated ? size | ALLOC : size;
    this.put(block + size - WORD, tag);
    this.put(block, tag);
  }

  // --- memory given to the heap --------------------------------------------------------------

  init(start: number, size: number): void {
    this.poolFits(start, size);
    this.u32.fill(0, this.ctx.stateOffset >>> 2, (this.ctx.stateOffset + STATE_BYTES) >>> 2);
    this.ctx.counters.reset();
    this.put(this.ctx.stateOffset + ST_MAGIC, STATE_MAGIC);
    this.formatPool(start, size);
  }

  addMemory(start: number, size: number): void {
    if (this.get(this.ctx.stateOffset + ST_MAGIC) !== STATE_MAGIC) throw new AllocError('InvalidParam', `${BACKEND_NAME}: addMemory before init`);
    this.poolFits(start, size);
    this.formatPool(start, size);
  }

  /** @throws AllocError `InvalidParam` when the range cannot hold the prologue, one block and the epilogue */
  private poolFits(start: number, size: number): void {
    const { first, epilogue } = poolBounds(start, start + size);
    if (epilogue - first < MIN_BLOCK) {
      throw new AllocError('InvalidParam', `${BACKEND_NAME}: range ${hex(start)}..${hex(start + size)} is too small for one block`);
    }
  }

  /** Prologue, one free block over the whole pool, epilogue. */
  private formatPool(start: number, size: number): void {
    const { first, epilogue } = poolBounds(start, start + size);
    this.put(first - TAGS_BYTES, PROLOGUE);
    this.put(first - WORD, PROLOGUE);
    this.mark(first, epilogue - first, false);
    this.put(epilogue, EPILOGUE);
    this.ctx.counters.addMemory(epilogue - first, size - (epilogue - first));
    this.ctx.counters.addFree(1);
  }

  // --- malloc and free -----------------------------------------------------------------------

  allocate(size: number, align: number): number {
    // Nothing larger than the arena fits; refusing it here keeps every sum below 2^32.
    if (size > this.ctx.arenaEnd - this.ctx.arenaStart) return 0;
    const need = Math.max(MIN_BLOCK, size + TAGS_BYTES + ((8 - ((size + TAGS_BYTES) % 8)) % 8));
    const pools = this.ctx.pools;
    for (let pool = 0; pool < pools.count(); pool++) {
      const { first, epilogue } = poolBounds(pools.start(pool), pools.end(pool));
      for (let block = first; block < epilogue; block = this.next(block, epilogue)) {
        const tag = this.get(block);
        if ((tag & ALLOC) !== 0 || sizeOf(tag) < need) continue;
        // First fit: the first free block that holds `need` bytes at a payload aligned to
        // `align`. The gap before an aligned payload must be empty or a free block itself.
        let gap = (align - ((block + WORD) % align)) % align;
        while (gap !== 0 && gap < MIN_BLOCK) gap += align;
        if (gap + need <= sizeOf(tag)) return this.place(block, sizeOf(tag), gap, need);
      }
    }
    return 0;
  }

  /** The block after `block`, checked to lie in its pool and to move forward (walks are bounded). */
  private next(block: number, epilogue: number): number {
    const size = sizeOf(this.get(block));
    this.checker.expect(size >= MIN_BLOCK && block + size <= epilogue, () => `block ${hex(block)} has size ${size}, which does not fit its pool`);
    return block + size;
  }

  /**
   * Cuts an allocated block of `need` bytes at `free + gap` out of the free block `free`.
   *
   * The stores go from right to left. Until the header at `free` changes, a walk steps over
   * the whole free block and never reads the new tags written inside it; the last store (the
   * header at `free`: the gap's, or the allocated block's when there is no gap) makes the
   * split visible in one step, every new block already whole. Written left to right, a thread
   * dying after the first header would leave the walk landing on payload bytes: headers that
   * no longer tile the pool, and a heap no repair can trust.
   */
  private place(free: number, size: number, gap: number, need: number): number {
    let freeBlocks = -1;
    const block = free + gap;
    let rest = size - gap - need;
    // A rest smaller than a block cannot stand alone: the allocated block keeps it.
    if (rest < MIN_BLOCK) {
      need += rest;
      rest = 0;
    }
    if (rest !== 0) {
      this.mark(block + need, rest, false);
      freeBlocks++;
    }
    this.mark(block, need, true);
    if (gap !== 0) {
      this.mark(free, gap, false);
      freeBlocks++;
    }
    this.ctx.counters.allocated(need, 0, need - TAGS_BYTES, freeBlocks);
    return block + WORD;
  }

  release(address: number): void {
    let block = this.liveBlock(address);
    let size = sizeOf(this.get(block));
    this.ctx.counters.released(size, 0, size - TAGS_BYTES, 1);
    // Immediate coalescing (CS:APP's four cases): the footer before the header tells whether
    // the left neighbour is free; the prologue and epilogue are allocated, so never merged.
    const right = this.get(block + size);
    if ((right & ALLOC) === 0) {
      size += sizeOf(right);
      this.ctx.counters.addFree(-1);
    }
    const left = this.get(block - WORD);
    if ((left & ALLOC) === 0) {
      block -= sizeOf(left);
      size += sizeOf(left);
      this.ctx.counters.addFree(-1);
    }
    // One header store (mark's last) frees and merges at once: before it the walk sees the
    // old blocks, after it the merged one. The freed block's own header, when the left
    // neighbour took it in, is left as it was: it is payload of a free block now.
    this.mark(block, size, false);
  }

  usableSize(address: number): number {
    return sizeOf(this.get(this.liveBlock(address))) - TAGS_BYTES;
  }

  /**
   * The block whose payload is at `address`, found by walking its pool from the first block:
   * with no other record of where blocks start, this is the only way to tell a live block from
   * an interior pointer, a free block or user data that looks like a header.
   * @throws AllocError `NotAllocated` when no allocated block's payload starts at `address`
   */
  private liveBlock(address: number): number {
    const pools = this.ctx.pools;
    const pool = pools.find(address);
    if (pool >= 0) {
      const { first, epilogue } = poolBounds(pools.start(pool), pools.end(pool));
      let block = first;
      while (block < epilogue && block + WORD < address) block = this.next(block, epilogue);
      if (block + WORD === address && block < epilogue && (this.get(block) & ALLOC) !== 0) return block;
    }
    throw notAllocated(BACKEND_NAME, address, 'not the start of a live block (double free, interior pointer, or never allocated)');
  }

  // --- figures and checks --------------------------------------------------------------------

  totalBytes(): number {
    return this.ctx.counters.totalBytes;
  }

  usedBytes(): number {
    return this.ctx.counters.usedBytes;
  }

  stats(): BackendStats {
    const counters = this.ctx.counters;
    let largest = 0;
    const pools = this.ctx.pools;
    for (let pool = 0; pool < pools.count(); pool++) {
      const { first, epilogue } = poolBounds(pools.start(pool), pools.end(pool));
      for (let block = first; block < epilogue; block = this.next(block, epilogue)) {
        const tag = this.get(block);
        if ((tag & ALLOC) === 0) largest = Math.max(largest, sizeOf(tag) - TAGS_BYTES);
      }
    }
    return {
      totalBytes: counters.totalBytes,
      usedBytes: counters.usedBytes,
      peakUsedBytes: counters.peakUsedBytes,
      peakUsedSampled: false,
      // The block does not record the size asked for (CS:APP's does not either).
      requestedBytes: null,
      grantedBytes: counters.grantedBytes,
      metadataBytes: counters.metadataBytes + counters.liveBlocks * TAGS_BYTES,
      largestFreeBlock: largest,
      liveBlocks: counters.liveBlocks,
      freeBlocks: counters.freeBlocks,
    };
  }

  /**
   * Tells `visit` every region of every pool, in address order, for `heaplab map` and
   * `heap.walk()`: the padding and prologue, then each block as its header, its payload (live
   * or free: exactly the usable bytes) and its footer, then the epilogue. The facade reports
   * what lies between pools. Bounded as `check()` is: `next` refuses a size that would not
   * move forward or would leave the pool, so a damaged heap throws `HeapCorrupted`.
   */
  walk(visit: (region: HeapRegion) => void): void {
    for (const pool of this.ctx.pools.inAddressOrder()) {
      const { first, epilogue } = poolBounds(pool.start, pool.end);
      visit({ address: pool.start, bytes: first - pool.start, kind: 'header', detail: 'padding and prologue' });
      for (let block = first, after = 0; block < epilogue; block = after) {
        after = this.next(block, epilogue); // first: a damaged size throws before it is shown
        const tag = this.get(block);
        const size = after - block;
        visit({ address: block, bytes: WORD, kind: 'header', detail: 'header' });
        visit({ address: block + WORD, bytes: size - TAGS_BYTES, kind: (tag & ALLOC) !== 0 ? 'live' : 'free', detail: `${size} B block` });
        visit({ address: block + size - WORD, bytes: WORD, kind: 'header', detail: 'footer' });
      }
      visit({ address: epilogue, bytes: pool.end - epilogue, kind: 'metadata', detail: 'epilogue' });
    }
  }

  /** Walks every pool and verifies every invariant drawn at the top of this file. */
  check(): CheckReport {
    const expect = this.checker.expect.bind(this.checker);
    expect(this.get(this.ctx.stateOffset + ST_MAGIC) === STATE_MAGIC, 'the control state is not formatted (no magic)');
    const pools = this.ctx.pools;
    const found = { blocks: 0, liveBlocks: 0, freeBlocks: 0, usedBytes: 0, freeBytes: 0, pools: pools.count() };
    let total = 0;
    let granted = 0;
    for (let pool = 0; pool < pools.count(); pool++) {
      const { first, epilogue } = poolBounds(pools.start(pool), pools.end(pool));
      expect(first >= this.ctx.arenaStart && epilogue + WORD <= this.ctx.arenaEnd, `pool ${pool} lies outside the arena`);
      expect(
        this.get(first - TAGS_BYTES) === PROLOGUE && this.get(first - WORD) === PROLOGUE,
        `pool ${pool}: the prologue at ${hex(first - TAGS_BYTES)} is overwritten`,
      );
      expect(this.get(epilogue) === EPILOGUE, `pool ${pool}: the epilogue at ${hex(epilogue)} is overwritten`);
      total += epilogue - first;
      let previousFree = false;
      // next() refuses a size below MIN_BLOCK or past the epilogue, so the walk ends.
      for (let block = first; block < epilogue; block = this.next(block, epilogue)) {
        const tag = this.get(block);
        const size = sizeOf(tag);
        const where = `block ${hex(block)} (pool ${pool})`;
        expect((tag & UNUSED_BITS) === 0, () => `${where}: unknown flag bits in header ${hex(tag)}`);
        expect(size >= MIN_BLOCK && block + size <= epilogue, () => `${where}: size ${size} does not fit the pool`);
        expect(this.get(block + size - WORD) === tag, () => `${where}: footer ${hex(this.get(block + size - WORD))} differs from header ${hex(tag)}`);
        const free = (tag & ALLOC) === 0;
        expect(!(free && previousFree), () => `${where}: two free blocks side by side (a missed coalesce)`);
        found.blocks++;
        if (free) {
          found.freeBlocks++;
          found.freeBytes += size;
        } else {
          found.liveBlocks++;
          found.usedBytes += size;
          granted += size - TAGS_BYTES;
        }
        previousFree = free;
      }
    }
    const mismatch = this.ctx.counters.mismatch({
      totalBytes: total,
      usedBytes: found.usedBytes,
      grantedBytes: granted,
      liveBlocks: found.liveBlocks,
      freeBlocks: found.freeBlocks,
    });
    expect(mismatch === null, () => `counters: ${mismatch}`);
    return found;
  }

  // --- repair after a thread died holding the heap lock --------------------------------------

  /**
   * Core calls this when a thread died holding the heap lock, at an unknown store of
   * `allocate` or `release` (or of a `check()` or `walk()`, which store nothing); `check()`
   * runs after it and must pass before anyone allocates again. Without `recover`, such a heap
   * stays unusable for every thread.
   *
   * Nothing the dead thread was changing can be trusted, except what the code above keeps
   * true after every store: the headers tile each pool (see the top of this file). So the
   * repair reads the headers alone and rewrites everything derived from them: the footers,
   * one free block per run of free blocks (what the implicit list has instead of a free
   * list), and core's counters.
   * @throws AllocError `HeapCorrupted` when the control state, a pool's prologue or epilogue,
   *   or a header is broken: that is a damaged heap, not an unfinished call, and there is
   *   nothing sound to rebuild from
   */
  recover(cause: RepairCause): BackendRepair {
    const expect = this.checker.expect.bind(this.checker);
    expect(this.get(this.ctx.stateOffset + ST_MAGIC) === STATE_MAGIC, 'cannot recover: the control state is not formatted (no magic)');
    // Recounted from nothing: the dead thread may have stopped between its tag stores and its
    // counter updates, so the counters may disagree with the blocks in either direction.
    const count = { totalBytes: 0, usedBytes: 0, requestedBytes: 0, grantedBytes: 0, liveBlocks: 0, freeBlocks: 0, metadataBytes: 0 };
    let merged = 0;
    let footers = 0;
    /** Makes the free run `[run, end)` one free block, with its footer right. */
    const relist = (run: number, end: number): void => {
      if (this.get(end - WORD) !== end - run) footers++;
      this.mark(run, end - run, false);
      count.freeBlocks++;
    };
    const pools = this.ctx.pools;
    for (let pool = 0; pool < pools.count(); pool++) {
      const { first, epilogue } = poolBounds(pools.start(pool), pools.end(pool));
      // Only formatPool writes a pool's ends: broken ones mean something else wrote here.
      expect(first >= this.ctx.arenaStart && epilogue + WORD <= this.ctx.arenaEnd, `cannot recover: pool ${pool} lies outside the arena`);
      expect(
        this.get(first - TAGS_BYTES) === PROLOGUE && this.get(first - WORD) === PROLOGUE && this.get(epilogue) === EPILOGUE,
        `cannot recover: pool ${pool}'s prologue or epilogue is overwritten`,
      );
      count.totalBytes += epilogue - first;
      count.metadataBytes += pools.end(pool) - pools.start(pool) - (epilogue - first);
      let run = 0; // the first block of the free run being walked; 0 after a live block
      // next() refuses a size below MIN_BLOCK or past the epilogue before the walk follows it,
      // so the walk moves forward and ends at the epilogue, or throws HeapCorrupted.
      for (let block = first, after = 0; block < epilogue; block = after) {
        after = this.next(block, epilogue);
        const tag = this.get(block);
        expect((tag & UNUSED_BITS) === 0, () => `cannot recover: block ${hex(block)} (pool ${pool}) has unknown flag bits in header ${hex(tag)}`);
        if ((tag & ALLOC) === 0) {
          // Joined to the run: release never leaves two free blocks side by side, but a
          // repair that merges them costs nothing and does not depend on it.
          if (run === 0) run = block;
          else merged++;
          continue;
        }
        if (run !== 0) relist(run, block);
        run = 0;
        // A live block stays live and untouched; only its footer may be stale (a death
        // between mark's two stores), and release would read a stale one as its neighbour's.
        if (this.get(after - WORD) !== tag) {
          this.put(after - WORD, tag);
          footers++;
        }
        count.liveBlocks++;
        count.usedBytes += after - block;
        count.grantedBytes += after - block - TAGS_BYTES;
      }
      if (run !== 0) relist(run, epilogue);
    }
    const stale = this.ctx.counters.mismatch(count);
    // restore() keeps the peak, raising it if the recount is above it.
    this.ctx.counters.restore(count);
    const notes = [
      `after thread ${cause.deadThreadId} died: ${count.freeBlocks} free and ${count.liveBlocks} live blocks in ${pools.count()} pool(s), rebuilt from their headers`,
    ];
    if (merged > 0) notes.push(`merged ${merged} free block(s) into the free block before them`);
    if (footers > 0) notes.push(`rewrote ${footers} footer(s) that differed from their headers`);
    if (stale !== null) notes.push(`recounted the counters (${stale})`);
    // The headers tile every pool, so every byte is in a live block or a free one: nothing is
    // lost. A block the dead thread had just allocated stays live, held by no one: a leak
    // (memory still in use), not memory the heap lost track of.
    return { lostBytes: 0, lostBlocks: 0, notes };
  }
}

/** What heaplab loads: the descriptor. Workers find it among this module's exports by name. */
export const backend = defineBackend<Record<string, never>, ImplicitListAllocator>({
  name: BACKEND_NAME,
  summary: "CS:APP's implicit free list: boundary tags, first fit, split, immediate coalescing",
  moduleUrl: import.meta.url,
  concurrency: 'locked',
  options: [],
  stateBytes: STATE_BYTES,
  create: (context) => new ImplicitListAllocator(context),
});
