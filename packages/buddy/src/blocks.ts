/**
 * The buddy algorithm over the shared state: cutting pools into naturally aligned blocks,
 * splitting a block to serve a smaller order, merging a freed block with its buddy. The
 * faces count what they hand out in core's counters (`counters`). The byte face (`BuddyAllocator`) and the page face (`BuddyPageAllocator`) are
 * thin layers over it, so both can work on one heap.
 *
 * A block of order k at address b has its buddy at `b ^ 2^k`: blocks are aligned to their
 * size in absolute addresses, so the pair forms the block of order k + 1 at `b & ~2^k`.
 *
 * Invariants kept here (besides the order map's and the lists', see their files):
 * 1. The blocks of a pool tile its block area exactly, at every store (the order of stores
 *    that keeps this is in "What a dead thread leaves" in `layout.ts`).
 * 2. Two free buddies of the same order never both stay free: `give` merges at once, and
 *    the blocks `addPool` cuts are maximal, so no two of them are buddies (at `MAX_ORDER`
 *    nothing merges).
 * 3. A free block's `FB_MAP_START` word is its pool's mapStart.
 * 4. Core's counters equal what a walk of the blocks finds (`check.ts` verifies all).
 *
 * Every operation that edits the lists first checks each link and head it will write
 * through (`checkLinks`, `checkHead`), then stores: damage is reported before anything
 * changes (see "Corruption" in `layout.ts`).
 */

import { AllocError, alignDown, alignUp, type BackendContext, hex, type StateCounters } from '@heaplab/core/backend';

import { FreeLists } from './free-lists.js';
import { BUDDY_MAGIC, corrupt, FB_MAP_START, FB_NEXT, FB_PREV, FREE, PAGES, ST_MAGIC, START, STATE_BYTES, UNIT_BYTES } from './layout.js';
import { entryIndex, liveCode, startOrder, writeLiveDigits } from './order-map.js';
import { largestBlockAt, MAX_ORDER, MIN_ORDER, PAGE_ORDER } from './orders.js';
import { blocksStartOf, checkPoolRange, Pools } from './pools.js';

/** One thread's view of a buddy heap's blocks. Not thread-safe: callers hold the heap lock. */
export class BuddyBlocks {
  /** Byte view of the whole heap buffer (order maps are read through it). */
  readonly u8: Uint8Array;
  /** Word view of the whole heap buffer (control state and free-block links). */
  readonly u32: Uint32Array;
  /** The per-order free lists. */
  readonly lists: FreeLists;
  /** The pools, as core's pool table lists them. */
  readonly pools: Pools;
  /** Core's counters of this heap: every face counts the blocks it makes and frees there. */
  readonly counters: StateCounters;
  /** Where the control state starts in the buffer. */
  readonly stateOffset: number;
  /** The arena every pool lies in: `[arenaStart, arenaEnd)`. */
  readonly arenaStart: number;
  readonly arenaEnd: number;
  /** Checked mode: every operation also verifies the list neighbours it touches. */
  readonly checked: boolean;
  private readonly sMagic: number;

  /**
   * Binds to the state of `ctx` (`BUDDY_STATE_BYTES` long); does not format it.
   * @throws AllocError `InvalidParam` when the state area is below `BUDDY_STATE_BYTES` or not
   *   8-aligned
   */
  constructor(ctx: BackendContext) {
    if (ctx.stateBytes < STATE_BYTES || ctx.stateOffset % 8 !== 0) {
      throw new AllocError('InvalidParam', `buddy backend needs ${STATE_BYTES} bytes of 8-aligned state; got ${ctx.stateBytes} at ${hex(ctx.stateOffset)}`);
    }
    this.u8 = ctx.memory.u8;
    this.u32 = ctx.memory.u32;
    this.stateOffset = ctx.stateOffset;
    this.arenaStart = ctx.arenaStart;
    this.arenaEnd = ctx.arenaEnd;
    this.checked = ctx.checked;
    this.counters = ctx.counters;
    this.lists = new FreeLists(ctx.memory.u32, ctx.stateOffset);
    this.pools = new Pools(ctx.pools);
    this.sMagic = (ctx.stateOffset + ST_MAGIC) >>> 2;
  }

  // --- memory given to the heap ------------------------------------------------------------

  /**
   * Formats the state with `[start, start + size)` as the only pool. The range is checked
   * first, so a refused `init` leaves the buffer as it was.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small
   */
  format(start: number, size: number): void {
    checkPoolRange(start, size, this.arenaStart, this.arenaEnd, 'init');
    const first = this.stateOffset >>> 2;
    this.u32.fill(0, first, first + (STATE_BYTES >>> 2));
    this.counters.reset();
    this.addPool(start, size);
    this.u32[this.sMagic] = BUDDY_MAGIC;
  }

  /**
   * Adds `[start, start + size)` to a formatted heap as another pool with its own order map:
   * `addMemory` of both faces. Core has checked it against its pool table (overlap, table
   * full) and records it once this returns.
   * @throws AllocError `InvalidParam` before `format`, or for a range outside the arena or
   *   too small
   */
  addMemory(start: number, size: number): void {
    if (!this.isFormatted()) {
      throw new AllocError('InvalidParam', 'buddy addMemory: the heap is not formatted; call init first');
    }
    checkPoolRange(start, size, this.arenaStart, this.arenaEnd, 'addMemory');
    this.addPool(start, size);
  }

  /** True once `format` has run on this state. */
  isFormatted(): boolean {
    return this.u32[this.sMagic] === BUDDY_MAGIC;
  }

  /**
   * Cuts a checked range's block area, left to right, into the largest blocks that are
   * aligned to their size and fit (an unaligned or odd-sized range becomes a few blocks of
   * decreasing, then increasing, orders), marks them free in its freshly zeroed map and puts
   * them on their lists. Core lists the pool only once this returns (see "What a dead thread
   * leaves" in `layout.ts` for a death before that).
   */
  private addPool(start: number, size: number): void {
    for (let order = MIN_ORDER; order <= MAX_ORDER; order++) this.checkHead(order);
    const mapStart = alignUp(start, UNIT_BYTES);
    const end = alignDown(start + size, UNIT_BYTES);
    const blocksStart = blocksStartOf(mapStart, end);
    const u8 = this.u8;
    // No block starts anywhere yet. The entries of the map's own units stay 0 for good.
    u8.fill(0, mapStart, blocksStart);
    for (let block = blocksStart, order = 0; block < end; block += 2 ** order) {
      order = largestBlockAt(block, end);
      u8[entryIndex(mapStart, block)] = FREE | order;
    }
    for (let block = blocksStart, order = 0; block < end; block += 2 ** order) {
      order = largestBlockAt(block, end);
      this.lists.push(block, order, mapStart);
    }
    this.counters.addMemory(end - blocksStart, blocksStart - mapStart);
  }

  // --- checks before stores ------------------------------------------------------------------

  /**
   * Whether `block` is a free block of `order` as far as the arena says: aligned to its
   * order, inside the block area of the pool whose map its `FB_MAP_START` word names, and
   * marked FREE of `order` there. What a list link must be before it is followed, written
   * through or handed out. `block` may be any 32-bit value (a damaged link).
   */
  isFreeBlock(block: number, order: number): boolean {
    if (block === 0 || (block & ((1 << order) - 1)) !== 0) return false;
    const mapStart = this.u32[(block + FB_MAP_START) >>> 2]!;
    return this.pools.holds(mapStart, block, 1 << order) && this.u8[entryIndex(mapStart, block)] === (FREE | order);
  }

  /**
   * Checks the links of `block`, a free block of `order` about to leave its list: each is 0
   * or a free block of the same order, and a block without a previous one is the head. In
   * checked mode also that its neighbours link back to it and that it records `mapStart`.
   * @throws AllocError `HeapCorrupted` naming the bad link
   */
  checkLinks(block: number, order: number, mapStart: number): void {
    const u32 = this.u32;
    const next = u32[(block + FB_NEXT) >>> 2]!;
    const prev = u32[(block + FB_PREV) >>> 2]!;
    if (next !== 0 && !this.isFreeBlock(next, order)) throw this.badLink(block, 'next', next, order);
    if (prev !== 0 ? !this.isFreeBlock(prev, order) : this.lists.head(order) !== block) {
      throw this.badLink(block, 'previous', prev, order);
    }
    if (this.checked) {
      if (next !== 0 && u32[(next + FB_PREV) >>> 2] !== block) {
        throw corrupt(`free block ${hex(next)} (order ${order}) does not link back to ${hex(block)}, which links to it`);
      }
      if (prev !== 0 && u32[(prev + FB_NEXT) >>> 2] !== block) {
        throw corrupt(`free block ${hex(prev)} (order ${order}) does not link on to ${hex(block)}, which links back to it`);
      }
      const recorded = u32[(block + FB_MAP_START) >>> 2]!;
      if (recorded !== mapStart) throw corrupt(`free block ${hex(block)} records map ${hex(recorded)}, not ${hex(mapStart)}`);
    }
  }

  /**
   * Checks the head of list `order` before a push writes its `FB_PREV`: 0, or a free block
   * of that order (in checked mode, one whose `FB_PREV` is 0).
   * @throws AllocError `HeapCorrupted` naming the head
   */
  checkHead(order: number): void {
    const head = this.lists.head(order);
    if (head === 0) return;
    if (!this.isFreeBlock(head, order) || (this.checked && this.u32[(head + FB_PREV) >>> 2] !== 0)) {
      throw corrupt(`the head ${hex(head)} of free list ${order} is not a free block of order ${order} that starts the list`);
    }
  }

  /** The error for a link of free block `block` that is not a free block of its order. */
  private badLink(block: number, which: string, to: number, order: number): AllocError {
    return corrupt(
      `free block ${hex(block)} (order ${order}) has ${which} link ${hex(to)}, which is not ${to === 0 ? 'the list head' : `a free block of order ${order}`} ` +
        '(a write after free or an overflow?)',
    );
  }

  // --- split and merge -----------------------------------------------------------------------

  /**
   * Takes a free block for a live block of `order`: the first block of the smallest
   * non-empty list from `order` up, with its upper halves down to `order` freed. Everything
   * it writes lies inside that block, whose start entry still says FREE: the caller's store
   * of the start entry commits the take (it may write interior entries before). Returns the
   * block, or 0 when no list from `order` up has one.
   * @throws AllocError `HeapCorrupted` when the list's head or its next link is not a free
   *   block of the list's order (nothing is written then)
   */
  private split(order: number): number {
    const lists = this.lists;
    const found = lists.smallestAtLeast(order);
    if (found < 0) return 0;
    const block = lists.head(found);
    if (found > MAX_ORDER || !this.isFreeBlock(block, found)) {
      throw corrupt(`the head ${hex(block)} of free list ${found} is not a free block of order ${found}`);
    }
    const mapStart = this.u32[(block + FB_MAP_START) >>> 2]!;
    this.checkLinks(block, found, mapStart);
    for (let half = found - 1; half >= order; half--) this.checkHead(half);
    lists.remove(block, found);
    for (let half = found - 1; half >= order; half--) this.pushFree(block + (1 << half), half, mapStart);
    return block;
  }

  /**
   * Takes a free block of exactly `order` and marks it as a live byte block with `slack`
   * unused bytes, allocated with alignment 2^`alignLog`. Returns it, or 0 when no list from
   * `order` up has a block. Does not count it (the caller tells `counters`).
   * @throws AllocError `HeapCorrupted` as `split`
   */
  takeBytes(order: number, slack: number, alignLog: number): number {
    const block = this.split(order);
    if (block === 0) return 0;
    const entry = entryIndex(this.u32[(block + FB_MAP_START) >>> 2]!, block);
    writeLiveDigits(this.u8, entry, order, slack, alignLog);
    this.u8[entry] = liveCode(order, slack, alignLog);
    return block;
  }

  /**
   * Takes a free block of `order` for a page run of `bytes` (a multiple of the page size,
   * more than half of 2^`order`), cut into the run's decomposition with the tail beyond it
   * freed: all written inside the block before its start entry commits the run. Returns the
   * block, or 0 when no list from `order` up has one. Does not count it.
   * @throws AllocError `HeapCorrupted` as `split`, or for a bad head of a list the tail goes to
   */
  takeRun(order: number, bytes: number): number {
    for (let k = PAGE_ORDER; k < order; k++) this.checkHead(k);
    const block = this.split(order);
    if (block === 0) return 0;
    const u8 = this.u8;
    const mapStart = this.u32[(block + FB_MAP_START) >>> 2]!;
    let at = block;
    let left = bytes;
    let k = order;
    let first = -1;
    while (left < 2 ** k) {
      k--;
      const half = 2 ** k;
      if (left <= half) {
        this.pushFree(at + half, k, mapStart);
      } else {
        // The lower half is a whole block of the run; the run goes on in the upper half.
        if (at === block) first = k;
        else u8[entryIndex(mapStart, at)] = PAGES | k;
        at += half;
        left -= half;
      }
    }
    if (at === block) first = k;
    else u8[entryIndex(mapStart, at)] = PAGES | k;
    u8[entryIndex(mapStart, block)] = PAGES | first;
    return block;
  }

  /**
   * Frees the live block at `block` of `order` in the pool `[mapStart, end)` and merges it
   * with its buddy as long as the buddy is free and of the same order. One store commits
   * it: the merged block's start entry. Does not count it.
   * @throws AllocError `HeapCorrupted` when a buddy's links or the merged order's list head
   *   are damaged (nothing is written then)
   */
  give(block: number, order: number, mapStart: number, end: number): void {
    const u8 = this.u8;
    const lists = this.lists;
    let start = block;
    let k = order;
    for (; k < MAX_ORDER; k++) {
      const buddy = (start ^ (1 << k)) >>> 0;
      // Outside the pool there is no buddy; inside its map region the entries are 0.
      if (buddy < mapStart || buddy >= end || u8[entryIndex(mapStart, buddy)] !== (FREE | k)) break;
      this.checkLinks(buddy, k, mapStart);
      if (buddy < start) start = buddy;
    }
    this.checkHead(k);
    // The commit first: the lists are not what recovery trusts, so the buddies may leave
    // them after it, and each one's stale entry is cleared as it leaves.
    u8[entryIndex(mapStart, start)] = FREE | k;
    if (start !== block) u8[entryIndex(mapStart, block)] = 0;
    for (let j = order, at = block; j < k; j++) {
      const buddy = (at ^ (1 << j)) >>> 0;
      lists.remove(buddy, j);
      if (buddy !== start) u8[entryIndex(mapStart, buddy)] = 0;
      if (buddy < at) at = buddy;
    }
    lists.push(start, k, mapStart);
  }

  /**
   * Shrinks the live byte block at `block` from `order` to `newOrder` by freeing its upper
   * halves (none can merge: each one's buddy is the part still live), recording `slack` and
   * `alignLog`. The halves' entries and the new digits go inside the block first; its start
   * entry commits.
   * @throws AllocError `HeapCorrupted` for a damaged list head (nothing is written then)
   */
  shrinkLive(block: number, order: number, newOrder: number, slack: number, alignLog: number, mapStart: number): void {
    for (let half = order - 1; half >= newOrder; half--) this.checkHead(half);
    for (let half = order - 1; half >= newOrder; half--) this.pushFree(block + (1 << half), half, mapStart);
    const entry = entryIndex(mapStart, block);
    writeLiveDigits(this.u8, entry, newOrder, slack, alignLog);
    this.u8[entry] = liveCode(newOrder, slack, alignLog);
  }

  /**
   * Grows the live byte block at `block` from `order` to `newOrder` by taking its buddies
   * above, which must be free blocks of orders `order` to `newOrder - 1`, recording `slack`
   * and `alignLog`. Returns false, changing nothing, when the block is not aligned to the
   * new size or one buddy is not free whole. The start entry commits; the buddies' stale
   * entries are cleared and the digits written after it (the window `recover` resolves).
   * @throws AllocError `HeapCorrupted` for a buddy's damaged links (nothing is written then)
   */
  growLive(block: number, order: number, newOrder: number, slack: number, alignLog: number, mapStart: number, end: number): boolean {
    if (newOrder > MAX_ORDER || (block & ((1 << newOrder) - 1)) !== 0) return false;
    const u8 = this.u8;
    for (let k = order; k < newOrder; k++) {
      const buddy = block + (1 << k);
      if (buddy >= end || u8[entryIndex(mapStart, buddy)] !== (FREE | k)) return false;
    }
    for (let k = order; k < newOrder; k++) this.checkLinks(block + (1 << k), k, mapStart);
    for (let k = order; k < newOrder; k++) this.lists.remove(block + (1 << k), k);
    const entry = entryIndex(mapStart, block);
    u8[entry] = liveCode(newOrder, slack, alignLog);
    for (let k = order; k < newOrder; k++) u8[entryIndex(mapStart, block + (1 << k))] = 0;
    writeLiveDigits(u8, entry, newOrder, slack, alignLog);
    return true;
  }

  /** Rewrites the slack and alignment of the live byte block of `order` whose entry is `entry`. */
  relabelLive(entry: number, order: number, slack: number, alignLog: number): void {
    writeLiveDigits(this.u8, entry, order, slack, alignLog);
    this.u8[entry] = liveCode(order, slack, alignLog);
  }

  /**
   * The start of the block holding `address` (16-aligned, in the block area of the pool
   * `[mapStart, ...)` that starts its blocks at `blocksStart`). The block of order k holding
   * it starts at `address` rounded down to 2^k; trying k upwards, the first rounding that
   * lands on a start entry whose block reaches past `address` is it. Returns 0 only when the
   * map is damaged.
   */
  blockHolding(address: number, mapStart: number, blocksStart: number): number {
    const u8 = this.u8;
    for (let k = MIN_ORDER; k <= MAX_ORDER; k++) {
      const candidate = address - (address % (1 << k));
      if (candidate < blocksStart) break;
      const code = u8[entryIndex(mapStart, candidate)]!;
      if ((code & START) !== 0 && candidate + (1 << startOrder(code)) > address) return candidate;
    }
    return 0;
  }

  /**
   * Takes the block `target` of `order` out of the free block `holder` that contains it,
   * splitting `holder` down and freeing every half that does not hold `target`, and marks it
   * as a page-run block. Every entry but the holder's is written first, inside the holder;
   * the holder's start entry commits.
   * @throws AllocError `HeapCorrupted` for the holder's damaged links or a damaged head of a
   *   list a half goes to (nothing is written then)
   */
  takePagesAt(target: number, order: number, holder: number, mapStart: number): void {
    const u8 = this.u8;
    const top = startOrder(u8[entryIndex(mapStart, holder)]!);
    this.checkLinks(holder, top, mapStart);
    for (let k = order; k < top; k++) this.checkHead(k);
    this.lists.remove(holder, top);
    let block = holder;
    let holderCode = PAGES | order;
    for (let k = top - 1; k >= order; k--) {
      const upper = block + (1 << k);
      if (target >= upper) {
        // The lower half is free; the target is in the upper one.
        if (block === holder) holderCode = FREE | k;
        else u8[entryIndex(mapStart, block)] = FREE | k;
        this.lists.push(block, k, mapStart);
        block = upper;
      } else {
        this.pushFree(upper, k, mapStart);
      }
    }
    if (target !== holder) u8[entryIndex(mapStart, target)] = PAGES | order;
    u8[entryIndex(mapStart, holder)] = holderCode;
  }

  /** Marks `block` as a free block of `order` and puts it on its list (whose head the caller checked). */
  pushFree(block: number, order: number, mapStart: number): void {
    this.u8[entryIndex(mapStart, block)] = FREE | order;
    this.lists.push(block, order, mapStart);
  }
}
