/**
 * The allocator interfaces users see, after ArceOS's `allocator` crate (names in TypeScript
 * casing). The contract a backend implements is in `backend/contract.ts`
 * (`@heaplab/core/backend`).
 *
 * Addresses are byte offsets into the heap's `SharedArrayBuffer`; 0 is never a block.
 */

import type { Layout } from './sizes.js';

/** The part every allocator shares: it is given memory to manage. */
export interface BaseAllocator {
  /**
   * Takes `[start, start + size)` as the first memory to manage; formats the allocator.
   * @throws AllocError `InvalidParam` for a range outside the arena or too small to use
   */
  init(start: number, size: number): void;
  /**
   * Adds `[start, start + size)` to the memory managed.
   * @throws AllocError `MemoryOverlap` when it overlaps memory already managed;
   *   `InvalidParam` for a range outside the arena or too small to use
   */
  addMemory(start: number, size: number): void;
}

/** An allocator of byte-granular blocks (ArceOS `ByteAllocator`). */
export interface ByteAllocator extends BaseAllocator {
  /**
   * Allocates a block for `layout`.
   * @throws AllocError `NoMemory` when nothing fits; `InvalidParam` for a bad layout
   */
  alloc(layout: Layout): number;
  /**
   * Frees a block, checking `layout` against what the allocator knows of the block.
   * @throws AllocError `NotAllocated` for an address that is not a live block; `InvalidParam`
   *   when `layout` does not match the block
   */
  dealloc(address: number, layout: Layout): void;
  /** Bytes managed: what could be handed out (headers included) when nothing is live. */
  totalBytes(): number;
  /** Bytes taken by live blocks, with their headers and padding. */
  usedBytes(): number;
  /** `totalBytes() - usedBytes()`. */
  availableBytes(): number;
}

/** An allocator of whole pages (ArceOS `PageAllocator`). */
export interface PageAllocator extends BaseAllocator {
  /** Bytes per page. */
  readonly pageSize: number;
  /**
   * Allocates `count` contiguous pages at an address that is a multiple of `alignBytes`.
   * @throws AllocError `InvalidParam` when `alignBytes` is not a power-of-two multiple of the
   *   page size or `count` is not a positive integer; `NoMemory` when no run fits
   */
  allocPages(count: number, alignBytes: number): number;
  /**
   * Frees `count` pages at `address`.
   * @throws AllocError `InvalidParam` for a range outside the managed memory or misaligned;
   *   `NotAllocated` when one of the pages is not allocated
   */
  deallocPages(address: number, count: number): void;
  /**
   * Allocates `count` pages exactly at `address`.
   * @throws AllocError `InvalidParam` for a bad address, count or alignment; `NoMemory` when
   *   one of those pages is taken
   */
  allocPagesAt(address: number, count: number, alignBytes: number): number;
  totalPages(): number;
  usedPages(): number;
  availablePages(): number;
}

/**
 * The C-style face that programs and the benchmarks use. `malloc`, `calloc`, `realloc` and
 * `alignedAlloc` return 0 when the heap has no room, as C does; every other failure throws.
 */
export interface CAllocator {
  /** @throws AllocError `InvalidParam` for a bad size */
  malloc(size: number): number;
  /** Zeroed memory for `count * size` bytes. @throws AllocError `InvalidParam` for bad counts or sizes */
  calloc(count: number, size: number): number;
  /**
   * Resizes a block, keeping its contents up to the smaller size; in place when the backend
   * can. `realloc(0, n)` is `malloc(n)`. On failure (0) the old block is untouched.
   * @throws AllocError `NotAllocated` / `InvalidParam` for a bad address or size
   */
  realloc(address: number, size: number, align?: number): number;
  /** @throws AllocError `InvalidParam` for a bad alignment or size */
  alignedAlloc(align: number, size: number): number;
  /** Frees a block; `free(0)` does nothing. @throws AllocError `NotAllocated` / `InvalidParam` */
  free(address: number): void;
  /** Bytes usable at `address` (at least what was asked for). @throws AllocError `NotAllocated` */
  usableSize(address: number): number;
}

/** What a backend knows of its own memory; the facade adds call counts. */
export interface BackendStats {
  /** Bytes managed (`totalBytes()`). */
  totalBytes: number;
  /** Bytes taken by live blocks, headers and padding included (`usedBytes()`). */
  usedBytes: number;
  /** Highest `usedBytes` seen since the heap was formatted (see `peakUsedSampled`). */
  peakUsedBytes: number;
  /**
   * False when the peak is kept at every call, so exact. True when the backend samples it
   * instead (mimalloc, whose fast paths keep no shared byte count): the peak is then a lower
   * bound, which misses at most what was handed out between two samples.
   */
  peakUsedSampled: boolean;
  /**
   * Sum of the sizes callers asked for, over live blocks; null when the backend does not
   * record requested sizes (size-class backends, whose blocks carry no header, need not:
   * a benchmark that knows its requests measures internal fragmentation from `usableSize`).
   */
  requestedBytes: number | null;
  /** Sum of the usable sizes handed out, over live blocks. */
  grantedBytes: number;
  /** Bytes of live-block headers, pool sentinels and other bookkeeping inside the arena. */
  metadataBytes: number;
  /**
   * The largest size one `malloc` could get right now (for mimalloc a lower bound: a `malloc`
   * that finds no room first collects segments it can give back, which this does not count).
   */
  largestFreeBlock: number;
  /** Number of live blocks. */
  liveBlocks: number;
  /** Number of free blocks or runs (fragmentation: many small ones is bad). */
  freeBlocks: number;
}

/** What `check()` found when every invariant held. */
export interface CheckReport {
  /** Blocks walked, live and free. */
  blocks: number;
  liveBlocks: number;
  freeBlocks: number;
  usedBytes: number;
  freeBytes: number;
  /** Pools walked. */
  pools: number;
}

/**
 * What a stretch of the arena holds, as `walk` reports it:
 * - `live`: a block handed out (from its address to its usable end);
 * - `free`: a block or run the backend can hand out;
 * - `header`: per-block bookkeeping and padding next to a block (a boundary tag, alignment
 *   padding, a split remainder too small to list);
 * - `metadata`: the backend's own structures inside the arena (order maps, slab and segment
 *   headers, bitmaps, pool sentinels);
 * - `untouched`: arena the backend has not taken into any structure (beyond its pools, or a
 *   segment never committed), which the facade fills in between the regions a backend reports.
 */
export type HeapRegionKind = 'live' | 'free' | 'header' | 'metadata' | 'untouched';

/** One region of a heap walk. Regions come in address order and tile the arena exactly. */
export interface HeapRegion {
  /** Byte offset in the heap buffer. */
  address: number;
  bytes: number;
  kind: HeapRegionKind;
  /** A live block's requested size, when the backend keeps it. */
  requested?: number;
  /**
   * What the backend knows of it, in its own words and few of them, for maps and tooltips:
   * a size class ("64 B"), an order ("order 7"), a slab or page ("slab of 32 B objects"),
   * a mimalloc page kind.
   */
  detail?: string;
  /** The thread that owns it (mimalloc's pages), 1-based; absent where threads own nothing. */
  thread?: number;
}

/**
 * One table of a backend's own statistics (`Backend.classStats`): slab's per-cache table as
 * `/proc/slabinfo` shows it, buddy's free blocks per order, TLSF's occupied lists, basic's
 * free-block sizes, mimalloc's bins. Columns are named once; each row holds a value per
 * column key. Counts are numbers, so tools can sum or chart them.
 */
export interface StatsTable {
  /** A short name for the table ("slabinfo", "orders"). */
  name: string;
  /** One line saying what a row is. */
  description: string;
  columns: readonly { key: string; label: string }[];
  rows: readonly Record<string, number | string>[];
}

/**
 * The views over one heap's buffer that every part of heaplab reads through. They are made
 * once per attached thread and shared by all its components.
 */
export interface HeapMemory {
  readonly buffer: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
}
