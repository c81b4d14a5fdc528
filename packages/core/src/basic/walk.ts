/**
 * The basic backend's heap walk and per-class statistics (issue #15). A pool of core's table
 * is walked block by block, as check() walks it, and reported region by region:
 *
 * ```text
 *  pool [start, end)
 *  |pad|hdr| live (usable) |hdr| free (usable...footer) |hdr| live |...|sentinel|pad|
 *   ^ header: the bytes the 8-byte rounding of the pool's bounds leaves out
 *       ^ header: every block's 8-byte header (size, flags, and a live block's tag)
 *                                                               metadata: 8 bytes ^
 * ```
 *
 * A live region spans the usable bytes (`usableSize`: size - 8, slack included) and carries
 * the requested size the tag keeps; a free region spans the free block past its header (its
 * links and footer included: they are what a malloc of that block would overwrite), so the
 * largest free region is `stats().largestFreeBlock`.
 *
 * The free list is read first, bounded by the free-block count and with every link checked
 * before it is followed, and the pools' free blocks must be exactly the listed ones: a damaged
 * chain becomes `HeapCorrupted`, as a damaged header does, and every loop is bounded by the
 * arena (each block step moves forward by at least `MIN_BLOCK`).
 */

import { hex } from '../errors.js';
import type { HeapRegion, StatsTable } from '../interfaces.js';
import { corrupt } from './errors.js';
import { B_NEXT, B_TAG, type BasicHeapView, FLAGS, HEADER_BYTES, MIN_BLOCK, poolBlocks, SENTINEL_BYTES, SLACK_MASK, tagMatches, USED } from './layout.js';

/**
 * The free list in list order (address order), as block addresses.
 * @throws AllocError `HeapCorrupted` for a link that is not a free block of the arena, or a
 *   list longer than the free-block count (a cycle)
 */
export function readFreeList(heap: BasicHeapView): number[] {
  const u32 = heap.u32;
  const listed: number[] = [];
  const count = heap.counters.freeBlocks;
  let b = u32[heap.sHead]!;
  let prev = 0;
  while (b !== 0) {
    if (listed.length >= count) {
      throw corrupt(`walk: the free list is longer than its ${count} blocks (a cycle, or a stray link) at ${hex(b)} after ${hex(prev)}`);
    }
    if ((b & 7) !== 0 || b < heap.arenaStart || b + MIN_BLOCK > heap.arenaEnd || (u32[b >>> 2]! & USED) !== 0) {
      throw corrupt(`walk: the free list links to ${hex(b)} after ${hex(prev)}, which is not a free block of the arena`);
    }
    if (b <= prev) throw corrupt(`walk: the free list is not in address order: ${hex(b)} follows ${hex(prev)}`);
    listed.push(b);
    prev = b;
    b = u32[(b + B_NEXT) >>> 2]!;
  }
  if (listed.length !== count) throw corrupt(`walk: the free list holds ${listed.length} blocks but the counters say ${count}`);
  return listed;
}

/**
 * Reports every region of every pool to `visit`, in address order.
 * @throws AllocError `HeapCorrupted` for a damaged header, tag, footer or free list
 */
export function walkBasicHeap(heap: BasicHeapView, visit: (region: HeapRegion) => void): void {
  const u32 = heap.u32;
  const listed = readFreeList(heap);
  const position = new Map<number, number>();
  for (const [i, b] of listed.entries()) position.set(b, i);
  let seenFree = 0;
  for (const pool of heap.pools.inAddressOrder()) {
    const { first, sentinel } = poolBlocks(pool.start, pool.end);
    if (pool.start < heap.arenaStart || pool.end > heap.arenaEnd || sentinel - first < MIN_BLOCK) {
      throw corrupt(`walk: pool ${pool.index} ${hex(pool.start)}..${hex(pool.end)} is outside the arena or too small`);
    }
    if (first > pool.start) visit({ address: pool.start, bytes: first - pool.start, kind: 'header', detail: 'pool start padding (8-byte rounding)' });
    let b = first;
    while (b < sentinel) {
      const hdr = u32[b >>> 2]!;
      const size = hdr - (hdr & FLAGS);
      const where = `walk: block ${hex(b)} (pool ${pool.index})`;
      if (size < MIN_BLOCK || b + size > sentinel) {
        throw corrupt(`${where}: size ${size} is below the minimum block or runs past the pool sentinel at ${hex(sentinel)}`);
      }
      if ((hdr & USED) !== 0) {
        const tag = u32[(b + B_TAG) >>> 2]!;
        if (!tagMatches(tag, b, size, heap.cookie)) throw corrupt(`${where}: live block has a bad tag ${hex(tag)}`);
        const usable = size - HEADER_BYTES;
        visit({ address: b, bytes: HEADER_BYTES, kind: 'header', detail: 'block header (size, flags, tag)' });
        visit({ address: b + HEADER_BYTES, bytes: usable, kind: 'live', requested: usable - (tag & SLACK_MASK), detail: `${size} B block` });
      } else {
        const at = position.get(b);
        if (at === undefined) throw corrupt(`${where}: free block is not on the free list`);
        if (u32[(b + size - 4) >>> 2] !== size) throw corrupt(`${where}: footer ${u32[(b + size - 4) >>> 2]} differs from size ${size}`);
        seenFree++;
        visit({ address: b, bytes: HEADER_BYTES, kind: 'header', detail: 'block header (size, flags)' });
        visit({ address: b + HEADER_BYTES, bytes: size - HEADER_BYTES, kind: 'free', detail: `${size} B free block, #${at + 1} on the free list` });
      }
      b += size;
    }
    if (b !== sentinel) throw corrupt(`walk: pool ${pool.index}: the block walk ends at ${hex(b)}, not at the sentinel ${hex(sentinel)}`);
    visit({ address: sentinel, bytes: SENTINEL_BYTES, kind: 'metadata', detail: `pool ${pool.index} sentinel` });
    const poolEnd = sentinel + SENTINEL_BYTES;
    if (pool.end > poolEnd) visit({ address: poolEnd, bytes: pool.end - poolEnd, kind: 'header', detail: 'pool end padding (8-byte rounding)' });
  }
  if (seenFree !== listed.length) throw corrupt(`walk: the free list holds ${listed.length} blocks but the pools hold ${seenFree} free blocks`);
}

/** `[low, high)` of a power-of-two bucket, as "64-127 B". */
function bucketLabel(log2: number): string {
  return `${2 ** log2}-${2 ** (log2 + 1) - 1} B`;
}

/**
 * Basic's tables: the free list (its length and bytes, whole blocks and usable) and a
 * histogram of free-block sizes in power-of-two buckets (block sizes, header included).
 * @throws AllocError `HeapCorrupted` for a damaged free list
 */
export function basicClassStats(heap: BasicHeapView): StatsTable[] {
  const u32 = heap.u32;
  const listed = readFreeList(heap);
  const buckets = new Map<number, { count: number; bytes: number }>();
  let bytes = 0;
  let largest = 0;
  for (const b of listed) {
    const hdr = u32[b >>> 2]!;
    const size = hdr - (hdr & FLAGS);
    if (size < MIN_BLOCK || b + size > heap.arenaEnd) throw corrupt(`free block ${hex(b)} has size ${size}, outside the arena or below the minimum`);
    bytes += size;
    if (size > largest) largest = size;
    const log2 = 31 - Math.clz32(size);
    const bucket = buckets.get(log2) ?? { count: 0, bytes: 0 };
    bucket.count++;
    bucket.bytes += size;
    buckets.set(log2, bucket);
  }
  const freeList: StatsTable = {
    name: 'free list',
    description: 'the address-ordered free list: blocks on it, their bytes (headers included) and usable bytes',
    columns: [
      { key: 'length', label: 'blocks' },
      { key: 'bytes', label: 'bytes' },
      { key: 'usable', label: 'usable bytes' },
      { key: 'largest', label: 'largest block' },
    ],
    rows: [{ length: listed.length, bytes, usable: bytes - listed.length * HEADER_BYTES, largest }],
  };
  const histogram: StatsTable = {
    name: 'free sizes',
    description: 'free blocks by size (header included), in power-of-two buckets',
    columns: [
      { key: 'bucket', label: 'size' },
      { key: 'count', label: 'blocks' },
      { key: 'bytes', label: 'bytes' },
    ],
    rows: [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([log2, bucket]) => ({ bucket: bucketLabel(log2), count: bucket.count, bytes: bucket.bytes })),
  };
  return [freeList, histogram];
}
