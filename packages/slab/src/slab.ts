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
  type Backend,
  type BackendContext,
  type BackendRepair,
  type BackendStats,
  BitmapPageAllocator,
  type BlockLayout,
  type CheckReport,
  type HeapRegion,
  hex,
  MIN_ALIGN,
  PAGE_SIZE,
  type PoolView,
  type RepairCause,
  type StateCounters,
  type StatsTable,
} from '@heaplab/core/backend';

import { SlabCaches } from './caches.js';
import { checkSlabHeap } from './check.js';
import type { SlabHeap } from './heap.js';
import {
  alignCode,
  codeAlign,
  corrupt,
  notLive,
  OWNER_CLASS_SHIFT,
  OWNER_KIND_MASK,
  ownerClass,
  ownerStart,
  PAGE_LARGE,
  PAGE_SLAB,
  SLAB_MAGIC,
  ST_CLASSES,
  ST_MAGIC,
  ST_PAGE_ALLOCATOR,
  ST_PAGE_MAP,
  ST_PAGE_MAP_PAGES,
  STATE_BYTES,
} from './layout.js';
import type { SlabOptions } from './options.js';
import { PageMap } from './page-map.js';
import { recoverSlabHeap } from './recover.js';
import { alignedClassOf, CLASS_SIZE, classOf, MAX_CLASS_BYTES, smallestSizeOf } from './size-classes.js';
import { slabStats } from './stats.js';
import { slabClassStats, walkSlabHeap } from './walk.js';

/**
 * One thread's handle on a slab heap. Create it through `slabBackend.create`; every instance
 * over the same buffer and state offset sees the same heap. Not thread-safe: call it under
 * the heap lock. Its fields are what check.ts, recover.ts and stats.ts read (`SlabHeap`).
 *
 * Of core's counters, `requested` stays 0 (an object keeps no requested size: a header per
 * object would cost up to a quarter of an 8-byte object's slab) and `free` is not kept: free
 * blocks are free objects plus free page runs, which change on every allocation and free,
 * so `stats()` counts them by a walk instead of every operation paying a store for them.
 */
export class SlabAllocator implements Backend, SlabHeap {
  readonly u32: Uint32Array;
  readonly cookie: number;
  readonly arenaStart: number;
  readonly arenaEnd: number;
  readonly stateOffset: number;
  /** Checked mode: every operation verifies the slab or run it touches. */
  readonly checked: boolean;
  readonly emptySlabs: number;
  readonly pages: BitmapPageAllocator;
  readonly map: PageMap;
  readonly caches: SlabCaches;
  readonly counters: StateCounters;
  readonly pools: PoolView;
  // Word indices of the control-state fields, computed once so hot paths only index.
  readonly sMagic: number;
  readonly sPageMap: number;
  readonly sPageMapPages: number;
  readonly sClasses: number;

  /**
   * Makes a handle over `ctx`'s shared state; does not format it (`init` does). An instance
   * made after `init` (every attaching thread's) finds the page map from the state.
   * @throws AllocError `InvalidParam` when the state area is smaller than `STATE_BYTES` or
   *   misaligned, or the arena is not a whole number of pages
   */
  constructor(ctx: BackendContext, options: SlabOptions) {
    if (ctx.stateBytes < STATE_BYTES || ctx.stateOffset % 8 !== 0) {
      throw new AllocError('InvalidParam', `slab backend needs ${STATE_BYTES} bytes of 8-aligned state; got ${ctx.stateBytes} at ${hex(ctx.stateOffset)}`);
    }
    const arenaBytes = ctx.arenaEnd - ctx.arenaStart;
    if (ctx.arenaStart % PAGE_SIZE !== 0 || arenaBytes % PAGE_SIZE !== 0 || arenaBytes <= 0) {
      throw new AllocError('InvalidParam', `slab backend needs a page-aligned arena of whole pages; got ${hex(ctx.arenaStart)}..${hex(ctx.arenaEnd)}`);
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
    this.counters = ctx.counters;
    this.pools = ctx.pools;
    const base = ctx.stateOffset >>> 2;
    this.sMagic = base + (ST_MAGIC >>> 2);
    this.sPageMap = base + (ST_PAGE_MAP >>> 2);
    this.sPageMapPages = base + (ST_PAGE_MAP_PAGES >>> 2);
    this.sClasses = base + (ST_CLASSES >>> 2);
    this.pages = new BitmapPageAllocator(ctx.memory, ctx.stateOffset + ST_PAGE_ALLOCATOR, ctx.arenaStart, arenaPages, PAGE_SIZE);
    this.map = new PageMap(u32, ctx.arenaStart, arenaPages, u32[this.sPageMap]!);
    this.caches = new SlabCaches(u32, this.map, this.pages, this.sClasses, ctx.counters, ctx.cookie, options.emptySlabs, ctx.checked);
  }

  // --- memory given to the heap --------------------------------------------------------------

  /**
   * Formats the state and takes the whole pages of `[start, start + size)` (checked by core
   * to lie in the arena) as the first pool; its first pages become the page map, which
   * covers the whole arena so that later `addMemory` ranges anywhere in it are mapped too.
   * @throws AllocError `InvalidParam` for a range with too few whole pages for the page map
   *   and one page more
   */
  init(start: number, size: number): void {
    // Check before touching the state, so a refused init leaves the buffer as it was.
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
    this.counters.reset();
    this.counters.addMemory(end - first - mapPages * PAGE_SIZE, mapPages * PAGE_SIZE);
    this.u32[this.sMagic] = SLAB_MAGIC;
  }

  /**
   * Adds the whole pages of `[start, start + size)` to the page layer. Core has checked that
   * the range lies in the arena and overlaps no pool, so its whole pages are unmanaged; it
   * records the pool after this returns, and recovery takes back the pages of a range a dead
   * thread left unrecorded (layout.ts).
   * @throws AllocError `InvalidParam` when the state is not formatted or the range holds no
   *   whole page
   */
  addMemory(start: number, size: number): void {
    if (this.u32[this.sMagic] !== SLAB_MAGIC) {
      throw new AllocError('InvalidParam', `slab state at ${hex(this.stateOffset)} is not formatted; call init first`);
    }
    const first = alignUp(start, PAGE_SIZE);
    const end = alignDown(start + size, PAGE_SIZE);
    if (end <= first) {
      throw new AllocError('InvalidParam', `addMemory: memory range ${hex(start)}..${hex(start + size)} holds no whole page`);
    }
    this.pages.addMemory(start, size);
    this.map.markFree(first, end);
    this.counters.addMemory(end - first, 0);
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
          const bytes = CLASS_SIZE[cls]!;
          this.counters.allocated(bytes, 0, bytes);
          return address;
        }
      }
    }
    return this.allocatePageRun(size, align);
  }

  /**
   * A refill run for core's thread cache: up to `count` objects of `size`'s class (`size` is
   * at most `TC_MAX_REQUEST`, so always a class) from one slab, in whole line groups (see
   * `SlabCaches.allocateRun`); 0 when the class's groups ask more than `count` or no slab
   * can be had, and the cache falls back to `allocate`.
   */
  allocateRun(size: number, count: number, take: (block: number) => void): number {
    return this.caches.allocateRun(classOf(size), count, take);
  }

  /**
   * Frees the object or run at `address`.
   * @throws AllocError `NotAllocated` when `address` is not the start of a live block
   */
  release(address: number): void {
    const owner = this.map.ownerOf(address);
    const kind = owner & OWNER_KIND_MASK;
    if (kind === PAGE_SLAB) {
      const bytes = this.caches.release(address, owner);
      this.counters.released(bytes, 0, bytes);
    } else if (kind === PAGE_LARGE && ownerStart(owner) === address) {
      this.releaseRun(address, owner);
    } else {
      throw notLive(address);
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
    throw notLive(address);
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
    throw notLive(address);
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
    if (kind !== PAGE_LARGE || ownerStart(owner) !== address) throw notLive(address);
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
    const bytes = (wanted - count) * PAGE_SIZE;
    this.counters.resized(bytes, 0, bytes);
    return true;
  }

  // --- page runs -------------------------------------------------------------------------------

  /**
   * A block of whole pages for `size` bytes at `align`, its owner word recording the
   * alignment; 0 when no run fits.
   */
  private allocatePageRun(size: number, align: number): number {
    const count = size <= PAGE_SIZE ? 1 : Math.ceil(size / PAGE_SIZE);
    if (count > this.map.pages) return 0;
    const start = this.caches.takePages(count, Math.max(align, PAGE_SIZE));
    if (start === 0) return 0;
    this.map.markRun(start, count, start + ((alignCode(align) << OWNER_CLASS_SHIFT) | PAGE_LARGE));
    this.counters.allocated(count * PAGE_SIZE, 0, count * PAGE_SIZE);
    return start;
  }

  private releaseRun(start: number, owner: number): void {
    const count = this.runLength(start, owner);
    this.map.freeRun(start, count);
    this.pages.deallocPages(start, count);
    this.counters.released(count * PAGE_SIZE, 0, count * PAGE_SIZE);
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

  // --- figures ---------------------------------------------------------------------------------

  /** Managed pages, less the page map's, in bytes: what live blocks could take. */
  totalBytes(): number {
    return this.counters.totalBytes;
  }

  /** Usable bytes of live blocks (objects at their class size, runs at their pages). */
  usedBytes(): number {
    return this.counters.usedBytes;
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
   * Reports the page map, every slab's objects, header and tail, every large run and every
   * run of free pages, in address order (`walk.ts`); called under the heap lock.
   * @throws AllocError `HeapCorrupted` when the page map or a slab header is damaged
   */
  walk(visit: (region: HeapRegion) => void): void {
    walkSlabHeap(this, visit);
  }

  /**
   * The "slabinfo" table (per size class, as `/proc/slabinfo`) and the "pages" table (per
   * kind of page), from the same walk (`walk.ts`).
   * @throws AllocError `HeapCorrupted` when the page map or a slab header is damaged
   */
  classStats(): StatsTable[] {
    return slabClassStats(this);
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
