/**
 * The counters every backend reports (`BACKEND_COUNTERS` in heap-layout.ts): total, used,
 * peak, requested and granted bytes, live and free blocks, metadata. One class keeps them, so
 * the peak is raised in one place and `stats()` reads them the same way for every backend.
 *
 * Plain u32 reads and writes: a locked backend calls these under the heap lock (its arena's). A thread-safe
 * backend that keeps its figures elsewhere (mimalloc samples them) need not use them.
 */

import { BACKEND_COUNTERS, BACKEND_COUNTERS_BYTES, BackendCounter } from '../memory/heap-layout.js';
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

/**
 * The counters' word indices in the buffer, `(BACKEND_COUNTERS >> 2) + BackendCounter.x`,
 * written as an enum because esbuild inlines enum members as literals into every method
 * that V8 then inlines into a backend's malloc and free. A module constant would not be
 * inlined (this file imports, see tsup.shared.ts) and would cost a module-variable load, a
 * small-integer check and an untag per access; fields holding them measured 5 % slower on
 * tlsf's malloc/free than these literals. heap-layout.ts stays the one source: the module
 * checks these against it when it loads (and a counter it adds fails to compile here).
 */
enum Word {
  total = 11376,
  used = 11377,
  peak = 11378,
  requested = 11379,
  granted = 11380,
  live = 11381,
  free = 11382,
  metadata = 11383,
}

for (const name of Object.keys(BackendCounter) as (keyof typeof BackendCounter)[]) {
  const word = (BACKEND_COUNTERS >> 2) + BackendCounter[name];
  if (Word[name] !== word) throw new Error(`counters.ts puts counter '${name}' at word ${Word[name]}, heap-layout.ts at ${word}`);
}

export class StateCounters {
  private readonly u32: Uint32Array;

  /**
   * @param arena whose counters (0, the only one of a heap of one arena). Arena i's block is
   *   `i * BACKEND_COUNTERS_BYTES` further on, so its instance gets a view of the buffer that
   *   starts that much later: the same literal word indices then name its own counters.
   *   (That view is a plain one over `memory.buffer`: a test's instrumented `memory.u32`, as
   *   the test kit's dying memory, sees arena 0's counter stores only.)
   */
  constructor(memory: HeapMemory, arena = 0) {
    this.u32 = arena === 0 ? memory.u32 : new Uint32Array(memory.buffer, arena * BACKEND_COUNTERS_BYTES);
  }

  /** Zeroes every counter: called by `init`, and by a repair before it recounts. */
  reset(): void {
    this.u32.fill(0, Word.total, Word.metadata + 1);
  }

  /**
   * A live block was made: `used` bytes taken from the free memory (headers and padding
   * included), `requested` asked for, `granted` usable. Raises the peak. `freeBlocks` is the
   * change the same operation made to the free-block count (a free block taken: -1; its tail
   * listed again: +1), so a hot path updates the counter block once, not once per list edit.
   */
  allocated(used: number, requested: number, granted: number, freeBlocks = 0): void {
    const u32 = this.u32;
    const now = u32[Word.used]! + used;
    u32[Word.used] = now;
    if (now > u32[Word.peak]!) u32[Word.peak] = now;
    u32[Word.requested] = u32[Word.requested]! + requested;
    u32[Word.granted] = u32[Word.granted]! + granted;
    u32[Word.live] = u32[Word.live]! + 1;
    u32[Word.free] = u32[Word.free]! + freeBlocks;
  }

  /**
   * A live block was freed: the same figures `allocated` added for it, and the change the
   * same operation made to the free-block count (the block listed: +1; each free neighbour
   * merged into it: -1).
   */
  released(used: number, requested: number, granted: number, freeBlocks = 0): void {
    const u32 = this.u32;
    u32[Word.used] = u32[Word.used]! - used;
    u32[Word.requested] = u32[Word.requested]! - requested;
    u32[Word.granted] = u32[Word.granted]! - granted;
    u32[Word.live] = u32[Word.live]! - 1;
    u32[Word.free] = u32[Word.free]! + freeBlocks;
  }

  /**
   * A live block changed size in place: `used`, `requested` and `granted` change by these
   * (signed) amounts. Raises the peak.
   */
  resized(used: number, requested: number, granted: number): void {
    const u32 = this.u32;
    const now = u32[Word.used]! + used;
    u32[Word.used] = now;
    if (now > u32[Word.peak]!) u32[Word.peak] = now;
    u32[Word.requested] = u32[Word.requested]! + requested;
    u32[Word.granted] = u32[Word.granted]! + granted;
  }

  /** Adds `delta` (signed) to the free-block count. */
  addFree(delta: number): void {
    this.u32[Word.free] = this.u32[Word.free]! + delta;
  }

  /** Adds managed memory: `total` bytes usable by blocks, `metadata` bytes of bookkeeping. */
  addMemory(total: number, metadata: number): void {
    this.u32[Word.total] = this.u32[Word.total]! + total;
    this.u32[Word.metadata] = this.u32[Word.metadata]! + metadata;
  }

  get totalBytes(): number {
    return this.u32[Word.total]!;
  }
  get usedBytes(): number {
    return this.u32[Word.used]!;
  }
  get peakUsedBytes(): number {
    return this.u32[Word.peak]!;
  }
  get requestedBytes(): number {
    return this.u32[Word.requested]!;
  }
  get grantedBytes(): number {
    return this.u32[Word.granted]!;
  }
  get liveBlocks(): number {
    return this.u32[Word.live]!;
  }
  get freeBlocks(): number {
    return this.u32[Word.free]!;
  }
  get metadataBytes(): number {
    return this.u32[Word.metadata]!;
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
    u32[Word.total] = values.totalBytes;
    u32[Word.used] = values.usedBytes;
    if (values.usedBytes > u32[Word.peak]!) u32[Word.peak] = values.usedBytes;
    u32[Word.requested] = values.requestedBytes;
    u32[Word.granted] = values.grantedBytes;
    u32[Word.live] = values.liveBlocks;
    u32[Word.free] = values.freeBlocks;
    u32[Word.metadata] = values.metadataBytes;
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
