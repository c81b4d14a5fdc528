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
  // Word indices of the counters, as fields rather than module constants: this file imports,
  // so esbuild does not inline its top-level constants (see tsup.shared.ts), and each would
  // be a module-variable load, a small-integer check and an untag on every access, inlined
  // into every backend's malloc and free. A field of known small-integer type is one load.
  private readonly totalAt: number;
  private readonly usedAt: number;
  private readonly peakAt: number;
  private readonly requestedAt: number;
  private readonly grantedAt: number;
  private readonly liveAt: number;
  private readonly freeAt: number;
  private readonly metadataAt: number;

  constructor(memory: HeapMemory) {
    this.u32 = memory.u32;
    const base = BACKEND_COUNTERS >> 2;
    this.totalAt = base + BackendCounter.total;
    this.usedAt = base + BackendCounter.used;
    this.peakAt = base + BackendCounter.peak;
    this.requestedAt = base + BackendCounter.requested;
    this.grantedAt = base + BackendCounter.granted;
    this.liveAt = base + BackendCounter.live;
    this.freeAt = base + BackendCounter.free;
    this.metadataAt = base + BackendCounter.metadata;
  }

  /** Zeroes every counter: called by `init`, and by a repair before it recounts. */
  reset(): void {
    this.u32.fill(0, this.totalAt, this.metadataAt + 1);
  }

  /**
   * A live block was made: `used` bytes taken from the free memory (headers and padding
   * included), `requested` asked for, `granted` usable. Raises the peak. `freeBlocks` is the
   * change the same operation made to the free-block count (a free block taken: -1; its tail
   * listed again: +1), so a hot path updates the counter block once, not once per list edit.
   */
  allocated(used: number, requested: number, granted: number, freeBlocks = 0): void {
    const u32 = this.u32;
    const now = u32[this.usedAt]! + used;
    u32[this.usedAt] = now;
    if (now > u32[this.peakAt]!) u32[this.peakAt] = now;
    u32[this.requestedAt] = u32[this.requestedAt]! + requested;
    u32[this.grantedAt] = u32[this.grantedAt]! + granted;
    u32[this.liveAt] = u32[this.liveAt]! + 1;
    u32[this.freeAt] = u32[this.freeAt]! + freeBlocks;
  }

  /**
   * A live block was freed: the same figures `allocated` added for it, and the change the
   * same operation made to the free-block count (the block listed: +1; each free neighbour
   * merged into it: -1).
   */
  released(used: number, requested: number, granted: number, freeBlocks = 0): void {
    const u32 = this.u32;
    u32[this.usedAt] = u32[this.usedAt]! - used;
    u32[this.requestedAt] = u32[this.requestedAt]! - requested;
    u32[this.grantedAt] = u32[this.grantedAt]! - granted;
    u32[this.liveAt] = u32[this.liveAt]! - 1;
    u32[this.freeAt] = u32[this.freeAt]! + freeBlocks;
  }

  /**
   * A live block changed size in place: `used`, `requested` and `granted` change by these
   * (signed) amounts. Raises the peak.
   */
  resized(used: number, requested: number, granted: number): void {
    const u32 = this.u32;
    const now = u32[this.usedAt]! + used;
    u32[this.usedAt] = now;
    if (now > u32[this.peakAt]!) u32[this.peakAt] = now;
    u32[this.requestedAt] = u32[this.requestedAt]! + requested;
    u32[this.grantedAt] = u32[this.grantedAt]! + granted;
  }

  /** Adds `delta` (signed) to the free-block count. */
  addFree(delta: number): void {
    this.u32[this.freeAt] = this.u32[this.freeAt]! + delta;
  }

  /** Adds managed memory: `total` bytes usable by blocks, `metadata` bytes of bookkeeping. */
  addMemory(total: number, metadata: number): void {
    this.u32[this.totalAt] = this.u32[this.totalAt]! + total;
    this.u32[this.metadataAt] = this.u32[this.metadataAt]! + metadata;
  }

  get totalBytes(): number {
    return this.u32[this.totalAt]!;
  }
  get usedBytes(): number {
    return this.u32[this.usedAt]!;
  }
  get peakUsedBytes(): number {
    return this.u32[this.peakAt]!;
  }
  get requestedBytes(): number {
    return this.u32[this.requestedAt]!;
  }
  get grantedBytes(): number {
    return this.u32[this.grantedAt]!;
  }
  get liveBlocks(): number {
    return this.u32[this.liveAt]!;
  }
  get freeBlocks(): number {
    return this.u32[this.freeAt]!;
  }
  get metadataBytes(): number {
    return this.u32[this.metadataAt]!;
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
    u32[this.totalAt] = values.totalBytes;
    u32[this.usedAt] = values.usedBytes;
    if (values.usedBytes > u32[this.peakAt]!) u32[this.peakAt] = values.usedBytes;
    u32[this.requestedAt] = values.requestedBytes;
    u32[this.grantedAt] = values.grantedBytes;
    u32[this.liveAt] = values.liveBlocks;
    u32[this.freeAt] = values.freeBlocks;
    u32[this.metadataAt] = values.metadataBytes;
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
