/**
 * The counters every backend reports (`BACKEND_COUNTERS` in heap-layout.ts): total, used,
 * peak, requested and granted bytes, live and free blocks, metadata. One class keeps them, so
 * the peak is raised in one place and `stats()` reads them the same way for every backend.
 *
 * Plain u32 reads and writes: a locked backend calls these under the heap lock. A thread-safe
 * backend that keeps its figures elsewhere (mimalloc samples them) need not use them.
 */

import { BACKEND_COUNTERS, BackendCounter } from '../memory/heap-layout.js';
import type { HeapMemory } from '../interfaces.js';

const TOTAL = (BACKEND_COUNTERS >> 2) + BackendCounter.total;
const USED = (BACKEND_COUNTERS >> 2) + BackendCounter.used;
const PEAK = (BACKEND_COUNTERS >> 2) + BackendCounter.peak;
const REQUESTED = (BACKEND_COUNTERS >> 2) + BackendCounter.requested;
const GRANTED = (BACKEND_COUNTERS >> 2) + BackendCounter.granted;
const LIVE = (BACKEND_COUNTERS >> 2) + BackendCounter.live;
const FREE = (BACKEND_COUNTERS >> 2) + BackendCounter.free;
const METADATA = (BACKEND_COUNTERS >> 2) + BackendCounter.metadata;

/** What the counters say, as `stats()` and `check()` read them. */
export interface CounterValues {
  totalBytes: number;
  usedBytes: number;
  peakUsedBytes: number;
  requestedBytes: number;
  grantedBytes: number;
  liveBlocks: number;
  freeBlocks: number;
  metadataBytes: number;
}

export class StateCounters {
  private readonly u32: Uint32Array;

  constructor(memory: HeapMemory) {
    this.u32 = memory.u32;
  }

  /** Zeroes every counter: called by `init`, and by a repair before it recounts. */
  reset(): void {
    this.u32.fill(0, TOTAL, METADATA + 1);
  }

  /**
   * A live block was made: `used` bytes taken from the free memory (headers and padding
   * included), `requested` asked for, `granted` usable. Raises the peak.
   */
  allocated(used: number, requested: number, granted: number): void {
    const u32 = this.u32;
    const now = u32[USED]! + used;
    u32[USED] = now;
    if (now > u32[PEAK]!) u32[PEAK] = now;
    u32[REQUESTED] = u32[REQUESTED]! + requested;
    u32[GRANTED] = u32[GRANTED]! + granted;
    u32[LIVE] = u32[LIVE]! + 1;
  }

  /** A live block was freed: the same figures `allocated` added for it. */
  released(used: number, requested: number, granted: number): void {
    const u32 = this.u32;
    u32[USED] = u32[USED]! - used;
    u32[REQUESTED] = u32[REQUESTED]! - requested;
    u32[GRANTED] = u32[GRANTED]! - granted;
    u32[LIVE] = u32[LIVE]! - 1;
  }

  /**
   * A live block changed size in place: `used`, `requested` and `granted` change by these
   * (signed) amounts. Raises the peak.
   */
  resized(used: number, requested: number, granted: number): void {
    const u32 = this.u32;
    const now = u32[USED]! + used;
    u32[USED] = now;
    if (now > u32[PEAK]!) u32[PEAK] = now;
    u32[REQUESTED] = u32[REQUESTED]! + requested;
    u32[GRANTED] = u32[GRANTED]! + granted;
  }

  /** Adds `delta` (signed) to the free-block count. */
  addFree(delta: number): void {
    this.u32[FREE] = this.u32[FREE]! + delta;
  }

  /** Adds managed memory: `total` bytes usable by blocks, `metadata` bytes of bookkeeping. */
  addMemory(total: number, metadata: number): void {
    this.u32[TOTAL] = this.u32[TOTAL]! + total;
    this.u32[METADATA] = this.u32[METADATA]! + metadata;
  }

  get totalBytes(): number {
    return this.u32[TOTAL]!;
  }
  get usedBytes(): number {
    return this.u32[USED]!;
  }
  get peakUsedBytes(): number {
    return this.u32[PEAK]!;
  }
  get requestedBytes(): number {
    return this.u32[REQUESTED]!;
  }
  get grantedBytes(): number {
    return this.u32[GRANTED]!;
  }
  get liveBlocks(): number {
    return this.u32[LIVE]!;
  }
  get freeBlocks(): number {
    return this.u32[FREE]!;
  }
  get metadataBytes(): number {
    return this.u32[METADATA]!;
  }

  /** Every counter at once. */
  values(): CounterValues {
    return {
      totalBytes: this.totalBytes,
      usedBytes: this.usedBytes,
      peakUsedBytes: this.peakUsedBytes,
      requestedBytes: this.requestedBytes,
      grantedBytes: this.grantedBytes,
      liveBlocks: this.liveBlocks,
      freeBlocks: this.freeBlocks,
      metadataBytes: this.metadataBytes,
    };
  }

  /**
   * Sets every counter from a recount (a repair, or a test), keeping the peak at least the
   * used bytes.
   */
  restore(values: Omit<CounterValues, 'peakUsedBytes'>): void {
    const u32 = this.u32;
    u32[TOTAL] = values.totalBytes;
    u32[USED] = values.usedBytes;
    if (values.usedBytes > u32[PEAK]!) u32[PEAK] = values.usedBytes;
    u32[REQUESTED] = values.requestedBytes;
    u32[GRANTED] = values.grantedBytes;
    u32[LIVE] = values.liveBlocks;
    u32[FREE] = values.freeBlocks;
    u32[METADATA] = values.metadataBytes;
  }

  /**
   * The check every backend's `check()` makes against its own walk: each counter the walk
   * recounted equals what it found, and the peak is not below the used bytes. Returns the
   * first mismatch, or null.
   */
  mismatch(walked: Partial<Omit<CounterValues, 'peakUsedBytes'>>): string | null {
    const kept = this.values();
    for (const key of Object.keys(walked) as (keyof typeof walked)[]) {
      if (kept[key] !== walked[key]) return `${key} is ${kept[key]} but the walk found ${walked[key]}`;
    }
    if (kept.peakUsedBytes < kept.usedBytes) return `peakUsedBytes ${kept.peakUsedBytes} is below usedBytes ${kept.usedBytes}`;
    return null;
  }
}
