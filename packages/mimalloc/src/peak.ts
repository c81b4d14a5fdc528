/**
 * usedBytes and its peak, from a walk of what the pages, the delayed lists and the segment
 * map hold (no path keeps a byte counter: see "A heap record" in `layout.ts`). The walk only
 * reads, so every layer may sample the peak: a page or huge-block take does (`notePageTake`),
 * and so does every read of the figures.
 */

import type { MiContext } from './context.js';
import { delayedListTotals } from './delayed-list.js';
import { pageListLength, walkablePageCount } from './internal.js';
import {
  DELAYED_MASK,
  MAP_KIND_MASK,
  PAGE_DESCRIPTOR_BYTES,
  PAGE_IN_USE,
  PG_BLOCK_SIZE,
  PG_FLAGS,
  PG_THREAD_FREE,
  PG_USED,
  SEGMENT_BYTES,
  SEGMENT_HUGE,
  segmentMagic,
  SG_HUGE_SIZE,
  SG_MAGIC,
  SG_PAGES,
  SG_USED_PAGES,
  ST_PEAK_USED,
} from './layout.js';
import { bufferedTotals } from './remote-buffer.js';

/** Live block bytes and blocks of the whole heap, from a walk of the pages. */
export interface LiveTotals {
  bytes: number;
  blocks: number;
  /** Page descriptors and list blocks the walk read: what it cost. */
  descriptorsRead: number;
}

/**
 * usedBytes and liveBlocks of the whole heap: `used * blockSize` over every in-use page,
 * less the blocks on each page's thread_free list, on every heap's delayed list and in every
 * thread's remote-free buffer (`used` still counts them), plus the huge blocks the segment map names (see the heap record in
 * `layout.ts`). Exact while no other thread is inside the allocator; a consistent estimate
 * otherwise: a segment taken or given back during its walk (its map word or magic changed)
 * counts for nothing, so memory that is no segment header never passes for pages, and every
 * list walk is bounded and stops at a link that is no block of its page. A segment's walk
 * stops once it has seen as many pages in use as `SG_USED_PAGES` says it has.
 */
export function liveTotals(t: MiContext): LiveTotals {
  const u32 = t.u32;
  let bytes = 0;
  let blocks = 0;
  let descriptorsRead = 0;
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    const segment = index * SEGMENT_BYTES;
    if ((Atomics.load(u32, t.segmentMap + index) & MAP_KIND_MASK) === SEGMENT_HUGE) {
      const size = u32[(segment + SG_HUGE_SIZE) >>> 2]!;
      if (u32[(segment + SG_MAGIC) >>> 2] !== segmentMagic(segment, t.cookie)) continue;
      if ((Atomics.load(u32, t.segmentMap + index) & MAP_KIND_MASK) !== SEGMENT_HUGE) continue;
      bytes += size;
      blocks++;
      continue;
    }
    const pageCount = walkablePageCount(t, index);
    if (pageCount === 0) continue;
    const s = segment >>> 2;
    let inUseLeft = u32[s + (SG_USED_PAGES >>> 2)]!;
    let segmentBytes = 0;
    let segmentBlocks = 0;
    let read = 0;
    for (let page = segment + SG_PAGES; read < pageCount && inUseLeft > 0; read++, page += PAGE_DESCRIPTOR_BYTES) {
      const w = page >>> 2;
      if ((u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_USE) === 0) continue;
      inUseLeft--;
      const threadFree = Atomics.load(u32, w + (PG_THREAD_FREE >>> 2));
      const pending = threadFree > DELAYED_MASK ? pageListLength(t, page, threadFree - (threadFree & DELAYED_MASK)) : 0;
      descriptorsRead += pending;
      const used = u32[w + (PG_USED >>> 2)]! - pending;
      segmentBlocks += used;
      segmentBytes += used * u32[w + (PG_BLOCK_SIZE >>> 2)]!;
    }
    descriptorsRead += read;
    if (walkablePageCount(t, index) !== pageCount) continue;
    bytes += segmentBytes;
    blocks += segmentBlocks;
  }
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const delayed = delayedListTotals(t, t.heapOf(threadId));
    bytes -= delayed.bytes;
    blocks -= delayed.blocks;
    descriptorsRead += delayed.blocks;
  }
  const buffered = bufferedTotals(t);
  bytes -= buffered.bytes;
  blocks -= buffered.blocks;
  // Only a walk racing other threads can go below 0 (a delayed or buffered block counted as
  // pending after its segment's walk was discarded).
  return { bytes: Math.max(0, bytes), blocks: Math.max(0, blocks), descriptorsRead };
}

/**
 * Page and huge-block takes between two samples are at most 1/2^SAMPLE_SHIFT of the page
 * descriptors the last sample read. The walk then costs each take about 2^SAMPLE_SHIFT
 * descriptor reads, however large the heap, and a peak reached by taking fresh pages is
 * missed by at most that share of them.
 */
export const SAMPLE_SHIFT = 5;

/**
 * Raises the recorded peak of usedBytes to the current total and returns the total.
 * Sampled whenever figures are read and, by `notePageTake`, at page and huge-block takes.
 * No per-block counter is kept (see `layout.ts`), so the peak is a lower bound: it misses
 * a high point reached between two samples by the blocks handed out meanwhile, which can
 * be most of the heap's blocks when its pages are reused rather than taken anew.
 */
export function samplePeak(t: MiContext): number {
  const totals = liveTotals(t);
  const used = totals.bytes;
  t.takesUntilSample = Math.max(1, totals.descriptorsRead >>> SAMPLE_SHIFT);
  const peakWord = (t.state + ST_PEAK_USED) >>> 2;
  for (;;) {
    const peak = Atomics.load(t.u32, peakWord);
    if (used <= peak || Atomics.compareExchange(t.u32, peakWord, peak, used) === peak) break;
  }
  return used;
}

/**
 * Called when this thread takes a page slot or a huge block: the heap is growing, so the
 * peak is sampled, as often as `SAMPLE_SHIFT` allows.
 */
export function notePageTake(t: MiContext): void {
  if (--t.takesUntilSample <= 0) samplePeak(t);
}
