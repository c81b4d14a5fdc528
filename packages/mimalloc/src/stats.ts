/**
 * Figures in mimalloc's spirit: the `BackendStats` core asks for, and a detailed report (per
 * segment kind, per size class, per thread with its slow-path events) that prints as a
 * table or serialises as JSON. Figures are read racily while other threads run; they are
 * exact when the heap is idle.
 */

import { type BackendStats, type StatsTable, sequenceReached } from '@heaplab/core/backend';

import type { MiContext } from './context.js';
import { goalHolders, heldGoal } from './held-pages.js';
import { HUGE_BIN_STAT, isPageInUse, pageCountOf, pageDescriptor, pageListLength, pageOfBlock, SEGMENT_USABLE_BYTES, walkablePageCount } from './internal.js';
import { delayedListTotals, isFreedBlock } from './delayed-list.js';
import {
  BIN_STAT_BYTES,
  BS_ALLOCATED,
  BS_FREED,
  BS_PEAK,
  DELAYED_MASK,
  EVENT_COUNT,
  HeapEvent,
  HELD_LIMIT_BYTES,
  HP_ACTIVE,
  HP_BIN_STATS,
  HP_DELAYED_FREE,
  HP_DELAYED_KEY0,
  HP_DELAYED_KEY1,
  HP_EVENTS,
  HP_HELD_BYTES,
  HP_HELD_PAGES,
  MAP_KIND_MASK,
  PAGE_IN_FULL,
  PAGE_IN_USE,
  PG_BIN,
  PG_BLOCK_SIZE,
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
import { bufferedByPage } from './remote-buffer.js';
import { decodeLink } from './secure.js';
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
  let hugeBlocks = 0;
  // Free blocks (what `walk()` reports as `free`): each free segment of the pool (a huge
  // block can take it), and every extended block of a page in use that is not live: on its
  // free or local_free list (capacity - used), or freed by another thread and waiting on
  // its thread_free list or a delayed list (still counted in `used`, not in liveBlocks).
  // So it is the pages' capacity less their live blocks; blocks beyond the capacity were
  // never handed out and are not counted (the walk leaves them untouched).
  let capacity = 0;
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    const kind = u32[t.segmentMap + index]! & MAP_KIND_MASK;
    if (kind === 0 || kind > SEGMENT_HUGE) continue;
    headers++;
    if (kind === SEGMENT_HUGE) {
      hugeBlocks++;
      continue;
    }
    const segment = index * SEGMENT_BYTES;
    const pageCount = walkablePageCount(t, index);
    for (let i = 0; i < pageCount; i++) {
      const w = pageDescriptor(segment, i) >>> 2;
      if ((u32[w + (PG_FLAGS >>> 2)]! & PAGE_IN_USE) !== 0) capacity += u32[w + (PG_CAPACITY >>> 2)]!;
    }
  }
  const liveBlocks = liveTotals(t).blocks;
  // Racing other threads, the two walks may disagree; never below 0.
  const freeBlocks = t.pool.availablePages() + Math.max(0, capacity - (liveBlocks - hugeBlocks));
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
    liveBlocks,
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

/** Page kinds in `classStats`' second table, by segment map kind. */
const PAGE_KINDS = ['small', 'medium', 'large', 'huge'] as const;

/**
 * mimalloc's own tables (`Backend.classStats`), read as `walk()` reads: exact when no other
 * thread is inside the allocator.
 *
 * - `bins`, as `mi_stats_print` shows its bins: per size class with pages in use (and the
 *   huge blocks as a last row), the pages, the live and free blocks now (free: extended and
 *   not live, on any list, as `walk()` reports them, so the rows' free blocks and the free
 *   segments of the pool add up to `stats().freeBlocks`, and their live blocks to
 *   `stats().liveBlocks`), and, with the `stats` option (mimalloc's `MI_STAT`), the
 *   counters every thread keeps in its heap record (`HP_BIN_STATS`), summed over thread ids: blocks allocated and freed since the heap was
 *   formatted (a free counts for the thread that made it, as in mimalloc), and the sum of
 *   each thread's peak of `allocated - freed`. That sum is the bin's peak for one thread
 *   and an upper bound of it for several (a thread whose blocks others free has a peak that
 *   grows with its allocations). The counters are plain words their thread writes on the
 *   slow variants of malloc and free, so a read while other threads run may miss their
 *   latest counts.
 * - `page kinds`: segments, pages in use and their bytes, and live bytes, per page kind.
 */
export function classStats(t: MiContext): StatsTable[] {
  const u32 = t.u32;
  interface BinRow {
    pages: number;
    full: number;
    capacity: number;
    used: number;
    pending: number;
  }
  const bins: BinRow[] = [];
  for (let bin = 0; bin <= BIN_MAX; bin++) bins.push({ pages: 0, full: 0, capacity: 0, used: 0, pending: 0 });
  const kinds = PAGE_KINDS.map(() => ({ segments: 0, pages: 0, pageBytes: 0, liveBytes: 0 }));
  for (let index = t.mapIndexStart; index < t.mapIndexEnd; index++) {
    const kind = u32[t.segmentMap + index]! & MAP_KIND_MASK;
    if (kind === 0 || kind > SEGMENT_HUGE) continue;
    const segment = index * SEGMENT_BYTES;
    const row = kinds[kind - 1]!;
    row.segments++;
    if (kind === SEGMENT_HUGE) {
      // A huge block is one page spanning its segments.
      const huge = bins[HUGE_BIN_STAT]!;
      huge.pages++;
      huge.capacity++;
      huge.used++;
      row.pages++;
      row.pageBytes += u32[(segment + SG_SPAN) >>> 2]! * SEGMENT_BYTES;
      row.liveBytes += u32[(segment + SG_HUGE_SIZE) >>> 2]!;
      continue;
    }
    const pageCount = walkablePageCount(t, index);
    const pageBytes = SEGMENT_BYTES / pageCount;
    for (let i = 0; i < pageCount; i++) {
      const page = pageDescriptor(segment, i);
      const w = page >>> 2;
      const flags = u32[w + (PG_FLAGS >>> 2)]!;
      if ((flags & PAGE_IN_USE) === 0) continue;
      const entry = bins[u32[w + (PG_BIN >>> 2)]!];
      if (entry === undefined || u32[w + (PG_BIN >>> 2)] === HUGE_BIN_STAT) continue;
      entry.pages++;
      if ((flags & PAGE_IN_FULL) !== 0) entry.full++;
      entry.capacity += u32[w + (PG_CAPACITY >>> 2)]!;
      entry.used += u32[w + (PG_USED >>> 2)]!;
      const word = Atomics.load(u32, w + (PG_THREAD_FREE >>> 2));
      const pending = word > DELAYED_MASK ? pageListLength(t, page, word - (word & DELAYED_MASK)) : 0;
      entry.pending += pending;
      row.pages++;
      // Page 0 is shortened by the segment header.
      row.pageBytes += i === 0 ? pageBytes - SEGMENT_HEADER_BYTES : pageBytes;
      row.liveBytes += (u32[w + (PG_USED >>> 2)]! - pending) * u32[w + (PG_BLOCK_SIZE >>> 2)]!;
    }
  }
  // Blocks on delayed lists are freed, still counted in their page's `used`.
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    forEachDelayed(t, t.heapOf(threadId), (block) => {
      const page = pageOfBlock(t, block);
      const entry = bins[u32[(page + PG_BIN) >>> 2]!];
      if (entry !== undefined) entry.pending++;
      const kind = kinds[(t.mapOf(block) & MAP_KIND_MASK) - 1];
      if (kind !== undefined) kind.liveBytes -= u32[(page + PG_BLOCK_SIZE) >>> 2]!;
    });
  }
  // So are blocks in remote-free buffers.
  for (const [page, blocks] of bufferedByPage(t)) {
    const entry = bins[u32[(page + PG_BIN) >>> 2]!];
    if (entry !== undefined) entry.pending += blocks.length;
    const kind = kinds[(t.mapOf(page) & MAP_KIND_MASK) - 1];
    if (kind !== undefined) kind.liveBytes -= blocks.length * u32[(page + PG_BLOCK_SIZE) >>> 2]!;
  }
  const counters = bins.map(() => ({ allocated: 0, freed: 0, peak: 0 }));
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const base = (t.heapOf(threadId) + HP_BIN_STATS) >>> 2;
    for (let bin = 0; bin <= BIN_MAX; bin++) {
      const c = base + bin * (BIN_STAT_BYTES >>> 2);
      const sum = counters[bin]!;
      sum.allocated += u32[c + (BS_ALLOCATED >>> 2)]!;
      sum.freed += u32[c + (BS_FREED >>> 2)]!;
      sum.peak += Math.max(0, t.i32[c + (BS_PEAK >>> 2)]!);
    }
  }
  const binRows: Record<string, number | string>[] = [];
  const order = [...Array.from({ length: BIN_MAX }, (_, i) => i + 1), HUGE_BIN_STAT];
  for (const bin of order) {
    const entry = bins[bin]!;
    const sum = counters[bin]!;
    if (entry.pages === 0 && sum.allocated === 0) continue;
    const live = Math.max(0, entry.used - entry.pending);
    const row: Record<string, number | string> = {
      bin: bin === HUGE_BIN_STAT ? 'huge' : bin,
      blockSize: bin === HUGE_BIN_STAT ? 'varies' : BIN_BLOCK_SIZE[bin]!,
      pages: entry.pages,
      fullPages: entry.full,
      live,
      free: Math.max(0, entry.capacity - live),
    };
    if (t.countBins) Object.assign(row, sum);
    binRows.push(row);
  }
  const counted = [
    { key: 'allocated', label: 'allocated' },
    { key: 'freed', label: 'freed' },
    { key: 'peak', label: 'peak' },
  ];
  return [
    {
      name: 'bins',
      description: t.countBins
        ? 'per size class (huge blocks last): pages in use, live and free blocks now, and blocks allocated, freed and the peak of live blocks since the heap was formatted, summed over threads'
        : 'per size class (huge blocks last): pages in use, live and free blocks now (the option stats=true adds cumulative and peak counts)',
      columns: [
        { key: 'bin', label: 'bin' },
        { key: 'blockSize', label: 'block' },
        { key: 'pages', label: 'pages' },
        { key: 'fullPages', label: 'full' },
        { key: 'live', label: 'live' },
        { key: 'free', label: 'free' },
        ...(t.countBins ? counted : []),
      ],
      rows: binRows,
    },
    {
      name: 'page kinds',
      description: 'per page kind: segments in use, pages in use and their bytes, and the bytes of their live blocks',
      columns: [
        { key: 'kind', label: 'kind' },
        { key: 'segments', label: 'segments' },
        { key: 'pages', label: 'pages' },
        { key: 'pageBytes', label: 'page bytes' },
        { key: 'liveBytes', label: 'live bytes' },
      ],
      rows: kinds.map((row, i) => ({ kind: PAGE_KINDS[i]!, ...row, liveBytes: Math.max(0, row.liveBytes) })),
    },
  ];
}

/**
 * Calls `visit` for each block on the delayed list of the heap at `heap`: a figure's walk,
 * which stops at a link that is no freed block of a paged segment and after as many blocks
 * as the arena holds, so a list drained meanwhile or corrupted costs a bounded walk.
 */
function forEachDelayed(t: MiContext, heap: number, visit: (block: number) => void): void {
  const u32 = t.u32;
  const limit = (t.arenaEnd - t.arenaStart) >>> 3;
  let at = Atomics.load(u32, (heap + HP_DELAYED_FREE) >>> 2);
  for (let steps = 0; at !== 0 && steps < limit && isFreedBlock(t, at); steps++) {
    visit(at);
    const link = u32[at >>> 2]!;
    at = t.secure ? decodeLink(link, u32[(heap + HP_DELAYED_KEY0) >>> 2]!, u32[(heap + HP_DELAYED_KEY1) >>> 2]!) : link;
  }
}

/** A `StatsTable` as aligned text: one header line, one line per row. */
export function formatStatsTable(table: StatsTable): string {
  const cells = [table.columns.map((c) => c.label), ...table.rows.map((r) => table.columns.map((c) => String(r[c.key] ?? '')))];
  const widths = table.columns.map((_, i) => Math.max(...cells.map((line) => line[i]!.length)) + 1);
  return cells.map((line) => line.map((cell, i) => cell.padStart(widths[i]!)).join(' ')).join('\n');
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

/**
 * The report as a table, as `mi_stats_print` prints, followed by `tables` (`classStats`,
 * for the per-class figures; none for the summary alone).
 */
export function formatReport(report: MimallocReport, tables: readonly StatsTable[]): string {
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
  for (const table of tables) {
    lines.push('');
    lines.push(`${table.name}: ${table.description}`);
    lines.push(formatStatsTable(table));
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
