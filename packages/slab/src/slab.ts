/**
 * The slab backend: Bonwick-style object caches per size class over core's bitmap page
 * allocator, with page runs for everything a class cannot serve.
 *
 * - Small requests (up to `MAX_CLASS_BYTES`) take an object from a slab of their class
 *   (caches.ts). A slab's header sits after its last object and holds a bitmap of free
 *   objects, so a double free or an interior pointer is caught exactly.
 * - Larger requests, alignments no class gives, and small requests when no slab can be had
 *   are served as whole page runs (`PAGE_LARGE`), page aligned or aligned as asked.
 * - The page map (page-map.ts) leads from any address to its slab or run in one read, so
 *   `free(address)` needs no size and no search.
 * - Every store sequence leaves the page map and the slab bitmaps right for `recover`
 *   (recover.ts) whatever store a dying thread stops at; links are checked before they
 *   are followed, and `ctx.checked` verifies what each operation touches (layout.ts
 *   says how). `blockLayout` tells `dealloc` the layouts a block may be freed with.
 *
 * All state is in the shared buffer (layouts in layout.ts). The instance holds views,
 * constants and word indices only. The facade calls every method with the heap mutex held,
 * so plain typed-array reads and writes suffice.
 */

import {
  AllocError,
  alignDown,
  alignUp,
  type BackendStats,
  BitmapPageAllocator,
  checkArenaRange,
  type CheckReport,
  hex,
  MIN_ALIGN,
  PAGE_SIZE,
} from '@heaplab/core';
import type { Backend, BackendContext, BackendRepair, BlockLayout, RepairCause } from '@heaplab/core/backend';

import { PageMap } from './page-map.js';
import { alignedClassOf, CLASS_SIZE, classOf, MAX_CLASS_BYTES, smallestSizeOf } from './size-classes.js';
import { corrupt, notAllocated, SlabCaches } from './caches.js';
import { checkSlabHeap } from './check.js';
import {
  alignCode,
  codeAlign,
  OWNER_CLASS_SHIFT,
  OWNER_KIND_MASK,
  ownerClass,
  ownerStart,
  PAGE_LARGE,
  PAGE_SLAB,
  PAGE_UNMANAGED,
  SLAB_MAGIC,
  ST_ADDING_END,
  ST_ADDING_POOLS,
  ST_ADDING_START,
  ST_CLASSES,
  ST_LARGE_PAGES,
  ST_LARGE_RUNS,
  ST_LIVE_BLOCKS,
  ST_MAGIC,
  ST_PAGE_ALLOCATOR,
  ST_PAGE_MAP,
  ST_PAGE_MAP_PAGES,
  ST_PEAK_BYTES,
  ST_POOLS,
  ST_SLAB_PAGES,
  ST_SLABS,
  ST_USED_BYTES,
  STATE_BYTES,
} from './layout.js';
import type { SlabOptions } from './options.js';
import { recoverSlabHeap } from './recover.js';
import { slabStats } from './stats.js';

/**
 * One thread's handle on a slab heap. Create it through `slabBackend.create`; every instance
 * over the same buffer and state offset sees the same heap. Not thread-safe: call it under
 * the heap lock. The fields are read by the walkers in check.ts and stats.ts.
 */
export class SlabAllocator implements Backend {
  readonly u32: Uint32Array;
  readonly cookie: number;
  readonly arenaStart: number;
  readonly arenaEnd: number;
  readonly stateOffset: number;
  /** Checked mode: every operation verifies the slab or run it touches. */
  readonly checked: boolean;
  /** The `emptySlabs` option of this handle. */
  readonly emptySlabs: number;
  /** The page layer, its state in the control state at `ST_PAGE_ALLOCATOR`. */
  readonly pages: BitmapPageAllocator;
  readonly map: PageMap;
  readonly caches: SlabCaches;
  // Word indices of the control-state fields, computed once so hot paths only index.
  readonly sMagic: number;
  readonly sPageMap: number;
  readonly sPageMapPages: number;
  readonly sPools: number;
  readonly sUsed: number;
  readonly sPeak: number;
  readonly sLive: number;
  readonly sLargeRuns: number;
  readonly sLargePages: number;
  readonly sSlabs: number;
  readonly sSlabPages: number;
  readonly sAddingStart: number;
  readonly sAddingEnd: number;
  readonly sAddingPools: number;
  readonly sClasses: number;

  /**
   * Makes a handle over `ctx`'s shared state; does not format it (`init` does). An instance
   * made after `init` (every attaching thread's) finds the page map from the state.
   * @throws AllocError `InvalidParam` when the state area is smaller than `STATE_BYTES` or
   *   misaligned, the arena is not a whole number of pages, or `emptySlabs` is not a count
   */
  constructor(ctx: BackendContext, options: SlabOptions) {
    if (ctx.stateBytes < STATE_BYTES || ctx.stateOffset % 8 !== 0) {
      throw new AllocError(
        'InvalidParam',
        `slab backend needs ${STATE_BYTES} bytes of 8-aligned state; got ${ctx.stateBytes} at ${hex(ctx.stateOffset)}`,
      );
    }
    const arenaBytes = ctx.arenaEnd - ctx.arenaStart;
    if (ctx.arenaStart % PAGE_SIZE !== 0 || arenaBytes % PAGE_SIZE !== 0 || arenaBytes <= 0) {
      throw new AllocError(
        'InvalidParam',
        `slab backend needs a page-aligned arena of whole pages; got ${hex(ctx.arenaStart)}..${hex(ctx.arenaEnd)}`,
      );
    }
    if (!Number.isInteger(options.emptySlabs) || options.emptySlabs < 0) {
      throw new AllocError('InvalidParam', `slab backend: emptySlabs ${String(options.emptySlabs)} is not a count`);
    }
    const u32 = ctx.memory.u32;
    const arenaPages = arenaBytes / PAGE_SIZE;
    this.u32 = u32;
    this.cookie = ctx.cookie;
    this.arenaStart = ctx.arenaStart;
    this.arenaEnd = ctx.arenaEnd;
    this.stateOffset = ctx.stateOffset;
    this.checked = ctx.checked;
    this.emptySlabs = options.emptySlabs;
    const base = ctx.stateOffset >>> 2;
    this.sMagic = base + (ST_MAGIC >>> 2);
    this.sPageMap = base + (ST_PAGE_MAP >>> 2);
    this.sPageMapPages = base + (ST_PAGE_MAP_PAGES >>> 2);
    this.sPools = base + (ST_POOLS >>> 2);
    this.sUsed = base + (ST_USED_BYTES >>> 2);
    this.sPeak = base + (ST_PEAK_BYTES >>> 2);
    this.sLive = base + (ST_LIVE_BLOCKS >>> 2);
    this.sLargeRuns = base + (ST_LARGE_RUNS >>> 2);
    this.sLargePages = base + (ST_LARGE_PAGES >>> 2);
    this.sSlabs = base + (ST_SLABS >>> 2);
    this.sSlabPages = base + (ST_SLAB_PAGES >>> 2);
    this.sAddingStart = base + (ST_ADDING_START >>> 2);
    this.sAddingEnd = base + (ST_ADDING_END >>> 2);
    this.sAddingPools = base + (ST_ADDING_POOLS >>> 2);
    this.sClasses = base + (ST_CLASSES >>> 2);
    this.pages = new BitmapPageAllocator(
      ctx.memory,
      ctx.stateOffset + ST_PAGE_ALLOCATOR,
      ctx.arenaStart,
      arenaPages,
      PAGE_SIZE,
    );
    this.map = new PageMap(u32, ctx.arenaStart, arenaPages, u32[this.sPageMap]!);
    this.caches = new SlabCaches(
      u32,
      this.map,
      this.pages,
      { classes: this.sClasses, slabs: this.sSlabs, slabPages: this.sSlabPages },
      ctx.cookie,
      options.emptySlabs,
      ctx.checked,
    );
  }

  // --- memory given to the heap --------------------------------------------------------------

  /**
   * Formats the state and takes the whole pages of `[start, start + size)` as the first
   * pool; its first pages become the page map, which covers the whole arena so that later
   * `addMemory` ranges anywhere in it are mapped too.
   * @throws AllocError `InvalidParam` for a range outside the arena, or one with too few
   *   whole pages for the page map and one page more
   */
  init(start: number, size: number): void {
    // Check before touching the state, so a refused init leaves the buffer as it was.
    checkArenaRange(start, size, this.arenaStart, this.arenaEnd);
    const first = alignUp(start, PAGE_SIZE);
    const end = alignDown(start + size, PAGE_SIZE);
    const mapPages = PageMap.pagesFor(this.map.pages);
    const wholePages = end > first ? (end - first) / PAGE_SIZE : 0;
    if (wholePages < mapPages + 1) {
      throw new AllocError(
        'InvalidParam',
        `slab backend: the init range ${hex(start)}..${hex(start + size)} holds ${wholePages} whole pages; ` +
          `the page map of this arena needs ${mapPages}, and at least one page more must be left`,
      );
    }
    this.pages.init(start, size);
    this.pages.allocPagesAt(first, mapPages, PAGE_SIZE);
    const stateWord = this.stateOffset >>> 2;
    this.u32.fill(0, stateWord, stateWord + (ST_PAGE_ALLOCATOR >>> 2));
    this.map.place(first, mapPages);
    this.map.markFree(first + mapPages * PAGE_SIZE, end);
    this.u32[this.sPageMap] = first;
    this.u32[this.sPageMapPages] = mapPages;
    this.u32[this.sPools] = 1;
    this.u32[this.sMagic] = SLAB_MAGIC;
  }

  /**
   * Adds the whole pages of `[start, start + size)` to the page layer. All or nothing: the
   * range is checked first, then named in ST_ADDING_START until every page of it is managed,
   * so recovery undoes one that a dead thread left half done (core records the pool only
   * after this returns).
   * @throws AllocError `InvalidParam` when the state is not formatted or the range holds no
   *   whole page or lies outside the arena; `MemoryOverlap` when one of its pages is managed
   */
  addMemory(start: number, size: number): void {
    const u32 = this.u32;
    if (u32[this.sMagic] !== SLAB_MAGIC) {
      throw new AllocError('InvalidParam', `slab state at ${hex(this.stateOffset)} is not formatted; call init first`);
    }
    checkArenaRange(start, size, this.arenaStart, this.arenaEnd);
    const first = alignUp(start, PAGE_SIZE);
    const end = alignDown(start + size, PAGE_SIZE);
    if (end <= first) {
      throw new AllocError('InvalidParam', `addMemory: memory range ${hex(start)}..${hex(start + size)} holds no whole page`);
    }
    for (let page = first; page < end; page += PAGE_SIZE) {
      if (this.map.ownerOf(page) !== PAGE_UNMANAGED) {
        throw new AllocError(
          'MemoryOverlap',
          `memory range ${hex(start)}..${hex(start + size)} overlaps managed memory: the page at ${hex(page)} is already managed`,
        );
      }
    }
    const pools = u32[this.sPools]!;
    u32[this.sAddingEnd] = end;
    u32[this.sAddingPools] = pools;
    u32[this.sAddingStart] = first;
    this.pages.addMemory(start, size);
    this.map.markFree(first, end);
    u32[this.sPools] = pools + 1;
    u32[this.sAddingStart] = 0;
  }

  // --- blocks ----------------------------------------------------------------------------------

  /**
   * An object of the smallest class that fits `size` at `align`, or a page run when no
   * class fits or no slab can be had. Returns 0 when nothing fits.
   */
  allocate(size: number, align: number): number {
    if (size <= MAX_CLASS_BYTES) {
      const cls = align === MIN_ALIGN ? classOf(size) : alignedClassOf(size, align);
      if (cls >= 0) {
        const address = this.caches.allocate(cls, align === MIN_ALIGN ? 0 : alignCode(align));
        if (address !== 0) {
          this.countAllocated(CLASS_SIZE[cls]!);
          return address;
        }
      }
    }
    return this.allocateRun(size, align);
  }

  /**
   * Frees the object or run at `address`.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  release(address: number): void {
    const owner = this.map.ownerOf(address);
    const kind = owner & OWNER_KIND_MASK;
    if (kind === PAGE_SLAB) {
      this.countFreed(this.caches.release(address, owner));
    } else if (kind === PAGE_LARGE && ownerStart(owner) === address) {
      this.releaseRun(address, owner);
    } else {
      throw notAllocated(address);
    }
  }

  /**
   * Bytes usable at `address`: its class's object size, or its run's pages.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  usableSize(address: number): number {
    const owner = this.map.ownerOf(address);
    const kind = owner & OWNER_KIND_MASK;
    if (kind === PAGE_SLAB) return this.caches.objectSize(address, owner);
    if (kind === PAGE_LARGE && ownerStart(owner) === address) return this.runLength(address, owner) * PAGE_SIZE;
    throw notAllocated(address);
  }

  /**
   * The layouts the block at `address` may be freed with (see layout.ts): an object
   * takes the sizes its class serves for the alignment code it was allocated with, and
   * exactly that alignment; a large run the sizes that need exactly its pages, and exactly
   * the alignment its owner word records.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  blockLayout(address: number): BlockLayout {
    const owner = this.map.ownerOf(address);
    const kind = owner & OWNER_KIND_MASK;
    if (kind === PAGE_SLAB) {
      const code = this.caches.objectCode(address, owner);
      const cls = ownerClass(owner);
      const align = codeAlign(code);
      return { minSize: smallestSizeOf(cls, code), maxSize: CLASS_SIZE[cls]!, minAlign: align, maxAlign: align };
    }
    if (kind === PAGE_LARGE && ownerStart(owner) === address) {
      const count = this.runLength(address, owner);
      const align = codeAlign(ownerClass(owner));
      return { minSize: count === 1 ? 0 : (count - 1) * PAGE_SIZE + 1, maxSize: count * PAGE_SIZE, minAlign: align, maxAlign: align };
    }
    throw notAllocated(address);
  }

  /**
   * Keeps the block where it is when that serves `size`: an object whose class `size` maps
   * to, or a run (for sizes past the largest class) shrunk by freeing its tail pages or grown
   * into the free pages right after it. Returns false, changing nothing, otherwise; a size
   * that now fits a smaller class moves, so the bigger slot is not held for nothing.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  resizeInPlace(address: number, size: number): boolean {
    const owner = this.map.ownerOf(address);
    const kind = owner & OWNER_KIND_MASK;
    if (kind === PAGE_SLAB) {
      const objectSize = this.caches.objectSize(address, owner);
      return size <= objectSize && classOf(size) === classOf(objectSize);
    }
    if (kind !== PAGE_LARGE || ownerStart(owner) !== address) throw notAllocated(address);
    if (size <= MAX_CLASS_BYTES) return false;
    const count = this.runLength(address, owner);
    const wanted = Math.ceil(size / PAGE_SIZE);
    if (wanted === count) return true;
    const end = address + count * PAGE_SIZE;
    if (wanted < count) {
      // The shorter length first: from that store on, the tail pages name a start whose
      // run does not reach them, which recovery frees (see layout.ts).
      const tail = address + wanted * PAGE_SIZE;
      this.map.setRunPages(address, wanted);
      this.map.markFree(tail, end);
      this.pages.deallocPages(tail, count - wanted);
    } else {
      if (wanted > this.map.pages || !this.map.allFree(end, wanted - count)) return false;
      this.pages.allocPagesAt(end, wanted - count, PAGE_SIZE);
      // The new pages first, the longer length last: it publishes them.
      this.map.markOwners(end, address + wanted * PAGE_SIZE, owner);
      this.map.setRunPages(address, wanted);
    }
    const u32 = this.u32;
    u32[this.sLargePages] = u32[this.sLargePages]! + wanted - count;
    this.addUsed((wanted - count) * PAGE_SIZE);
    return true;
  }

  // --- page runs -------------------------------------------------------------------------------

  /**
   * A block of whole pages for `size` bytes at `align`, its owner word recording the
   * alignment; 0 when no run fits.
   */
  private allocateRun(size: number, align: number): number {
    const count = size <= PAGE_SIZE ? 1 : Math.ceil(size / PAGE_SIZE);
    if (count > this.map.pages) return 0;
    const start = this.caches.takePages(count, align > PAGE_SIZE ? align : PAGE_SIZE);
    if (start === 0) return 0;
    this.map.markRun(start, count, start + ((alignCode(align) << OWNER_CLASS_SHIFT) | PAGE_LARGE));
    const u32 = this.u32;
    u32[this.sLargeRuns]!++;
    u32[this.sLargePages] = u32[this.sLargePages]! + count;
    this.countAllocated(count * PAGE_SIZE);
    return start;
  }

  private releaseRun(start: number, owner: number): void {
    const u32 = this.u32;
    const count = this.runLength(start, owner);
    this.map.freeRun(start, count);
    this.pages.deallocPages(start, count);
    u32[this.sLargeRuns]!--;
    u32[this.sLargePages] = u32[this.sLargePages]! - count;
    this.countFreed(count * PAGE_SIZE);
  }

  /**
   * The length of the large run at `start` whose first page carries `owner`, once it is
   * known to end inside the arena on a page of the run, with the next page not of it (in
   * checked mode, every page of it carries `owner`).
   * @throws AllocError `HeapCorrupted` otherwise: a length that would lead a free past the run
   */
  private runLength(start: number, owner: number): number {
    const map = this.map;
    const count = map.runPages(start);
    const last = start + (count - 1) * PAGE_SIZE;
    if (
      count === 0 ||
      last >= this.arenaEnd ||
      map.ownerOf(last) !== owner ||
      (last + PAGE_SIZE < this.arenaEnd && map.ownerOf(last + PAGE_SIZE) === owner) ||
      (this.checked && !map.isRun(start, count, owner))
    ) {
      throw corrupt(`the large run at ${hex(start)} has length ${count} pages, which its page-map entries do not bear out`);
    }
    return count;
  }

  // --- accounting ------------------------------------------------------------------------------

  /** Counts a new block of `bytes` usable bytes. */
  private countAllocated(bytes: number): void {
    this.addUsed(bytes);
    this.u32[this.sLive]!++;
  }

  /** Counts a freed block of `bytes` usable bytes. */
  private countFreed(bytes: number): void {
    const u32 = this.u32;
    u32[this.sUsed] = u32[this.sUsed]! - bytes;
    u32[this.sLive]!--;
  }

  /** Adds `bytes` (negative to take away) to the used bytes and keeps the peak. */
  private addUsed(bytes: number): void {
    const u32 = this.u32;
    const used = u32[this.sUsed]! + bytes;
    u32[this.sUsed] = used;
    if (used > u32[this.sPeak]!) u32[this.sPeak] = used;
  }

  /** Managed pages, less the page map's, in bytes: what live blocks could take. */
  totalBytes(): number {
    return (this.pages.totalPages() - this.u32[this.sPageMapPages]!) * PAGE_SIZE;
  }

  /** Usable bytes of live blocks (objects at their class size, runs at their pages). */
  usedBytes(): number {
    return this.u32[this.sUsed]!;
  }

  /** `totalBytes() - usedBytes()`. */
  availableBytes(): number {
    return this.totalBytes() - this.u32[this.sUsed]!;
  }

  /** The counters, and a walk of the page map for the largest block and the free blocks. */
  stats(): BackendStats {
    return slabStats(this);
  }

  /**
   * Walks the page map, every slab and every list, and checks every invariant.
   * @throws AllocError `HeapCorrupted` naming the first violation and its address
   */
  check(): CheckReport {
    return checkSlabHeap(this);
  }

  /**
   * Rebuilds the lists, counts, counters and the page allocator's bitmaps from the page map
   * and the slab headers after a thread died holding the heap lock (see "What a dead thread
   * leaves" in layout.ts).
   * @throws AllocError `HeapCorrupted` when those records are damaged themselves
   */
  recover(cause: RepairCause): BackendRepair {
    return recoverSlabHeap(this, cause);
  }
}
