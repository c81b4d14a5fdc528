/**
 * Figures in mimalloc's spirit: the `BackendStats` core asks for, and a detailed report (per
 * segment kind, per size class, per thread with its slow-path events) that prints as a
 * table or serialises as JSON. Figures are read racily while other threads run; they are
 * exact when the heap is idle.
 */

import { type BackendStats, sequenceReached } from '@heaplab/core/backend';

import type { MiContext } from './context.js';
import { delayedListTotals } from './delayed-list.js';
import { goalHolders, heldGoal } from './held-pages.js';
import { isPageInUse, pageCountOf, pageDescriptor, SEGMENT_USABLE_BYTES, walkablePageCount } from './internal.js';
import {
  DELAYED_MASK,
  EVENT_COUNT,
  HeapEvent,
  HELD_LIMIT_BYTES,
  HP_ACTIVE,
  HP_EVENTS,
  HP_HELD_BYTES,
  HP_HELD_PAGES,
  MAP_KIND_MASK,
  PAGE_IN_FULL,
  PAGE_IN_USE,
  PG_BIN,
  PG_CAPACITY,
  PG_FLAGS,
  PG_FREE,
  PG_LOCAL_FREE,
  PG_NEXT,
  PG_OWNER,
  PG_RESERVED,
  PG_RETIRE,
  PG_THREAD_FREE,
  PG_USED,
  QUEUE_FIRST,
  SEGMENT_BYTES,
  SEGMENT_HEADER_BYTES,
  SEGMENT_HUGE,
  SEGMENT_LARGE,
  SEGMENT_MEDIUM,
  SEGMENT_SMALL,
  SG_HUGE_SIZE,
  SG_OWNER,
  SG_SPAN,
  SG_USED_PAGES,
  ST_PEAK_USED,
} from './layout.js';
import { queueOf } from './page-queue.js';
import { liveTotals, samplePeak } from './peak.js';
import { BIN_BLOCK_SIZE, BIN_MAX, MEDIUM_OBJ_SIZE_MAX, SMALL_OBJ_SIZE_MAX } from './size-classes.js';

/** One size class in the report. */
export interface BinReport {
  bin: number;
  blockSize: number;
  /** Pages of this bin in use (owned or abandoned). */
  pages: number;
  /** Of those, pages in a full queue. */
  fullPages: number;
  /** Blocks handed out and not yet collected back (thread_free blocks included). */
  usedBlocks: number;
  /** Blocks the free lists were extended over. */
  capacityBlocks: number;
  /** Blocks that fit in the pages. */
  reservedBlocks: number;
}

/** One thread id's heap in the report. */
export interface ThreadReport {
  threadId: number;
  active: boolean;
  /** Bytes of blocks other threads freed that wait on this heap's delayed list. */
  delayedBytes: number;
  /** Bytes of the live huge blocks this thread allocated. */
  hugeBytes: number;
  /** Pages on this heap's held list (delayed page reuse), and the bytes of their blocks. */
  heldPages: number;
  heldBytes: number;
  events: Record<keyof typeof HeapEvent, number>;
}

/** The held pages of delayed page reuse (all zero without the option). */
export interface HeldReport {
  /** Pages held, on heaps' held lists and abandoned with their segments. */
  pages: number;
  /** Bytes of their blocks (capacity * block size). */
  bytes: number;
  /** Of those, held by abandoned segments (no heap's list). */
  abandonedPages: number;
  /** Held bytes of one heap past which its slow path polls every held page. */
  limitBytes: number;
  /** The oldest goal a held page waits for (0 when none is held) and the write sequence now. */
  oldestGoal: number;
  writeSequence: number;
  /**
   * The thread ids online in QSBR that have not passed `oldestGoal`: they keep the held
   * pages from going back (a thread that never calls `quiescent()` stays here for good).
   */
  heldBackBy: number[];
  /**
   * True when even `oldestGoal` is a deferred goal ahead of `writeSequence` (layout.ts,
   * "Delayed page reuse"): no thread can pass it until some thread advances (the holding
   * thread does at its next counted hold, collect, abandon, or an allocation about to fail),
   * so `heldBackBy` then names every thread online.
   */
  awaitingAdvance: boolean;
}

/** The whole report. */
export interface MimallocReport {
  secure: boolean;
  arenaBytes: number;
  totalBytes: number;
  usedBytes: number;
  peakUsedBytes: number;
  liveBlocks: number;
  segments: { small: number; medium: number; large: number; huge: number; abandoned: number; free: number };
  hugeBytes: number;
  /** `held`: pages kept empty for delayed page reuse until their QSBR goal is reached. */
  pages: { inUse: number; full: number; retired: number; held: number };
  /** Delayed page reuse: what the held pages keep from other size classes, and who keeps it. */
  held: HeldReport;
  bins: BinReport[];
  threads: ThreadReport[];
}

/** The figures core's `stats()` reports. */
export function backendStats(t: MiContext): BackendStats {
  const u32 = t.u32;
  const used = samplePeak(t);
  let headers = 0;
  let freeBlocks = t.pool.availablePages();
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    const kind = u32[t.segmentMap + index]! & MAP_KIND_MASK;
    if (kind === 0 || kind > SEGMENT_HUGE) continue;
    headers++;
    if (kind === SEGMENT_HUGE) continue;
    const segment = index * SEGMENT_BYTES;
    const pageCount = walkablePageCount(t, index);
    for (let i = 0; i < pageCount; i++) {
      const w = pageDescriptor(segment, i) >>> 2;
      if ((u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_USE) !== 0) freeBlocks += u32[w + (PG_CAPACITY >>> 2)]! - u32[w + (PG_USED >>> 2)]!;
    }
  }
  return {
    totalBytes: t.pool.totalPages() * SEGMENT_USABLE_BYTES,
    usedBytes: used,
    peakUsedBytes: Math.max(used, u32[(t.state + ST_PEAK_USED) >>> 2]!),
    // Sampled every so many page and huge-block takes, and here (see `samplePeak`).
    peakUsedSampled: true,
    requestedBytes: null,
    grantedBytes: used,
    metadataBytes: headers * SEGMENT_HEADER_BYTES,
    largestFreeBlock: largestFreeBlock(t),
    liveBlocks: liveTotals(t).blocks,
    freeBlocks,
  };
}

/**
 * The largest size `allocate(size, 8)` gets now from this thread: a run of free segments
 * (as a huge block), else the largest block size of a page of this heap that has a free
 * block or room to extend, or of a free page slot in one of its segments.
 */
export function largestFreeBlock(t: MiContext): number {
  const run = t.pool.largestFreeRun();
  if (run > 0) return run * SEGMENT_USABLE_BYTES;
  const u32 = t.u32;
  let best = 0;
  for (let bin = 1; bin <= BIN_MAX; bin++) {
    // A figure: the walk stops at a link that is no page in use, and after as many pages as
    // the arena has, never throws.
    for (
      let page = u32[(queueOf(t.heap, bin) + QUEUE_FIRST) >>> 2]!, steps = 0;
      page !== 0 && isPageInUse(t, page) && steps < t.pageSlots;
      page = u32[(page + PG_NEXT) >>> 2]!, steps++
    ) {
      const w = page >>> 2;
      const hasFree =
        u32[w + (PG_FREE >>> 2)] !== 0 ||
        u32[w + (PG_LOCAL_FREE >>> 2)] !== 0 ||
        u32[w + (PG_THREAD_FREE >>> 2)]! > DELAYED_MASK ||
        u32[w + (PG_CAPACITY >>> 2)]! < u32[w + (PG_RESERVED >>> 2)]!;
      if (hasFree && BIN_BLOCK_SIZE[bin]! > best) best = BIN_BLOCK_SIZE[bin]!;
    }
  }
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    const kind = u32[t.segmentMap + index]! & MAP_KIND_MASK;
    if (kind !== SEGMENT_SMALL && kind !== SEGMENT_MEDIUM) continue;
    const segment = index * SEGMENT_BYTES;
    if (u32[(segment + SG_OWNER) >>> 2] !== t.threadId) continue;
    if (u32[(segment + SG_USED_PAGES) >>> 2]! >= pageCountOf(t, segment)) continue;
    const size = kind === SEGMENT_SMALL ? SMALL_OBJ_SIZE_MAX : MEDIUM_OBJ_SIZE_MAX;
    if (size > best) best = size;
  }
  return best;
}

/** The detailed report over the whole heap. */
export function mimallocReport(t: MiContext): MimallocReport {
  const u32 = t.u32;
  const used = samplePeak(t);
  const bins: BinReport[] = [];
  for (let bin = 1; bin <= BIN_MAX; bin++) {
    bins.push({ bin, blockSize: BIN_BLOCK_SIZE[bin]!, pages: 0, fullPages: 0, usedBlocks: 0, capacityBlocks: 0, reservedBlocks: 0 });
  }
  const segments = { small: 0, medium: 0, large: 0, huge: 0, abandoned: 0, free: t.pool.availablePages() };
  const pages = { inUse: 0, full: 0, retired: 0, held: 0 };
  const held: HeldReport = {
    pages: 0,
    bytes: 0,
    abandonedPages: 0,
    limitBytes: HELD_LIMIT_BYTES,
    oldestGoal: 0,
    writeSequence: 0,
    heldBackBy: [],
    awaitingAdvance: false,
  };
  let hugeBytes = 0;
  const hugeByOwner = new Map<number, number>();
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    const kind = u32[t.segmentMap + index]! & MAP_KIND_MASK;
    if (kind === 0 || kind > SEGMENT_HUGE) continue;
    const segment = index * SEGMENT_BYTES;
    if (kind === SEGMENT_HUGE) {
      segments.huge += u32[(segment + SG_SPAN) >>> 2]!;
      hugeBytes += u32[(segment + SG_HUGE_SIZE) >>> 2]!;
      const owner = u32[(segment + SG_OWNER) >>> 2]!;
      hugeByOwner.set(owner, (hugeByOwner.get(owner) ?? 0) + u32[(segment + SG_HUGE_SIZE) >>> 2]!);
      continue;
    }
    if (kind === SEGMENT_SMALL) segments.small++;
    else if (kind === SEGMENT_MEDIUM) segments.medium++;
    else if (kind === SEGMENT_LARGE) segments.large++;
    if (Atomics.load(u32, (segment + SG_OWNER) >>> 2) === 0) segments.abandoned++;
    const pageCount = walkablePageCount(t, index);
    for (let i = 0; i < pageCount; i++) {
      const w = pageDescriptor(segment, i) >>> 2;
      const flags = u32[w + (PG_FLAGS >>> 2)]!;
      if ((flags & PAGE_IN_USE) === 0) continue;
      const entry = bins[u32[w + (PG_BIN >>> 2)]! - 1];
      if (entry === undefined) continue;
      pages.inUse++;
      entry.pages++;
      if ((flags & PAGE_IN_FULL) !== 0) {
        pages.full++;
        entry.fullPages++;
      }
      if (u32[w + (PG_RETIRE >>> 2)] !== 0) pages.retired++;
      const goal = heldGoal(t, w << 2);
      if (goal !== 0) {
        pages.held++;
        held.pages++;
        held.bytes += u32[w + (PG_CAPACITY >>> 2)]! * BIN_BLOCK_SIZE[u32[w + (PG_BIN >>> 2)]!]!;
        if (Atomics.load(u32, w + (PG_OWNER >>> 2)) === 0) held.abandonedPages++;
        if (held.oldestGoal === 0 || !sequenceReached(goal, held.oldestGoal)) held.oldestGoal = goal;
      }
      entry.usedBlocks += u32[w + (PG_USED >>> 2)]!;
      entry.capacityBlocks += u32[w + (PG_CAPACITY >>> 2)]!;
      entry.reservedBlocks += u32[w + (PG_RESERVED >>> 2)]!;
    }
  }
  const names = Object.keys(HeapEvent) as (keyof typeof HeapEvent)[];
  const threads: ThreadReport[] = [];
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const heap = t.heapOf(threadId);
    const events = {} as Record<keyof typeof HeapEvent, number>;
    let any = false;
    for (const name of names) {
      events[name] = u32[((heap + HP_EVENTS) >>> 2) + HeapEvent[name]]!;
      if (events[name] !== 0) any = true;
    }
    const active = u32[(heap + HP_ACTIVE) >>> 2] === 1;
    const delayedBytes = delayedListTotals(t, heap).bytes;
    const hugeBytes = hugeByOwner.get(threadId) ?? 0;
    const heldPages = u32[(heap + HP_HELD_PAGES) >>> 2]!;
    const heldBytes = u32[(heap + HP_HELD_BYTES) >>> 2]!;
    if (active || any || delayedBytes !== 0 || hugeBytes !== 0 || heldPages !== 0) {
      threads.push({ threadId, active, delayedBytes, hugeBytes, heldPages, heldBytes, events });
    }
  }
  if (t.qsbr !== null) {
    held.writeSequence = t.qsbr.writeSequence();
    if (held.oldestGoal !== 0) {
      held.heldBackBy = goalHolders(t, held.oldestGoal);
      held.awaitingAdvance = !sequenceReached(held.writeSequence, held.oldestGoal);
    }
  }
  return {
    secure: t.secure,
    arenaBytes: t.arenaEnd - t.arenaStart,
    totalBytes: t.pool.totalPages() * SEGMENT_USABLE_BYTES,
    usedBytes: used,
    peakUsedBytes: Math.max(used, u32[(t.state + ST_PEAK_USED) >>> 2]!),
    liveBlocks: liveTotals(t).blocks,
    segments,
    hugeBytes,
    pages,
    held,
    bins: bins.filter((entry) => entry.pages > 0),
    threads,
  };
}

function bytes(value: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB'];
  let v = value;
  let unit = 0;
  while (Math.abs(v) >= 1024 && unit < units.length - 1) {
    v /= 1024;
    unit++;
  }
  return unit === 0 ? `${v} B` : `${v.toFixed(1)} ${units[unit]}`;
}

function row(cells: (string | number)[], widths: number[]): string {
  return cells.map((cell, i) => String(cell).padStart(widths[i]!)).join(' ');
}

/** The report as a table, as `mi_stats_print` prints; per size class when `perBin`. */
export function formatReport(report: MimallocReport, perBin: boolean): string {
  const lines: string[] = [];
  const s = report.segments;
  lines.push(`mimalloc heap${report.secure ? ' (secure)' : ''}: arena ${bytes(report.arenaBytes)}, usable ${bytes(report.totalBytes)}`);
  lines.push(`  used      ${bytes(report.usedBytes)} in ${report.liveBlocks} blocks, peak ${bytes(report.peakUsedBytes)}`);
  lines.push(
    `  segments  ${s.small} small, ${s.medium} medium, ${s.large} large, ${s.huge} huge (${bytes(report.hugeBytes)}), ` +
      `${s.abandoned} abandoned, ${s.free} free`,
  );
  lines.push(`  pages     ${report.pages.inUse} in use, ${report.pages.full} full, ${report.pages.retired} retired, ${report.pages.held} held`);
  if (report.held.pages > 0) {
    let who = report.held.heldBackBy.length === 0 ? 'nobody (the next poll gives them back)' : `thread ${report.held.heldBackBy.join(', ')}`;
    if (report.held.awaitingAdvance) who = `an advance of the write sequence (deferred goals), then ${who}`;
    lines.push(`  held      ${bytes(report.held.bytes)} in ${report.held.pages} pages (${report.held.abandonedPages} abandoned), held back by ${who}`);
  }
  if (perBin) {
    const widths = [5, 10, 7, 6, 11, 11, 11, 12];
    lines.push('');
    lines.push(row(['bin', 'block', 'pages', 'full', 'used', 'capacity', 'reserved', 'used bytes'], widths));
    for (const b of report.bins) {
      lines.push(row([b.bin, b.blockSize, b.pages, b.fullPages, b.usedBlocks, b.capacityBlocks, b.reservedBlocks, bytes(b.usedBlocks * b.blockSize)], widths));
    }
  }
  const names = Object.keys(HeapEvent) as (keyof typeof HeapEvent)[];
  lines.push('');
  lines.push(['thread', 'active', 'delayed', 'huge', ...names].join(' '));
  for (const th of report.threads) {
    lines.push([th.threadId, th.active ? 'yes' : 'no', bytes(th.delayedBytes), bytes(th.hugeBytes), ...names.map((name) => th.events[name])].join(' '));
  }
  return lines.join('\n');
}

/** Checks at load that every event has a name (the report reads them by name). */
if (Object.keys(HeapEvent).length !== EVENT_COUNT) throw new Error('mimalloc: HeapEvent and EVENT_COUNT disagree');
