/**
 * A locked backend with a thread cache in front (thread-cache.ts): small mallocs and frees
 * go to this thread's bins, everything else to the backend under the heap lock, as
 * `LockedBackend` does. Chosen by the `tcache` option that `defineBackend` gives every
 * locked backend. With several arenas the bins hold blocks of this thread's home arena only.
 *
 * What the program sees of cached blocks: they are free. So before any figure is read
 * (`usedBytes`, `stats`, `check`, `walk`, `classStats`) this thread's cache is given back to
 * the backend, which makes the figures exact for a thread that works alone; blocks held by
 * other live threads' caches count as live there, and `stats().threadCache` says how many.
 * An address that sits in a cache is refused where a free block is (`usableSize`, `realloc`,
 * `dealloc`, a second `free`).
 */

import type { HeapRegion, BackendStats, CheckReport, StatsTable } from '../interfaces.js';
import type { BlockLayout } from '../backend/contract.js';
import type { Arenas } from '../facade/arenas.js';
import { LockedBackend } from '../facade/locked-backend.js';
import { TC_CLASS_BYTES, TC_MAX_REQUEST } from '../memory/heap-layout.js';
import type { ThreadRegistry } from '../memory/thread-registry.js';
import { MIN_ALIGN } from '../sizes.js';
import type { ThreadCache } from './thread-cache.js';

/** A `Backend` whose small blocks pass through this thread's cache; the rest hold their arena's lock. */
export class CachedBackend extends LockedBackend {
  constructor(
    arenas: Arenas,
    readonly cache: ThreadCache,
    private readonly registry: ThreadRegistry,
  ) {
    super(arenas);
  }

  override allocate(size: number, align: number): number {
    const cached = size <= TC_MAX_REQUEST && align <= MIN_ALIGN;
    let address = cached ? this.cache.allocate(size) : super.allocate(size, align);
    if (address === 0 && !this.cache.isEmpty()) {
      // The backend is out of room, maybe because this cache holds it: give it back, retry.
      this.cache.flushAll();
      address = cached ? this.cache.allocate(size) : super.allocate(size, align);
    }
    if (cached) {
      if (address !== 0 || this.arenas.count === 1) return address;
      // The home arena is full: a block of another arena, which this cache never holds.
      address = this.allocateElsewhere(size, MIN_ALIGN);
    }
    if (address !== 0) this.cache.forget(address);
    return address;
  }

  override release(address: number): void {
    this.cache.release(address);
  }

  override usableSize(address: number): number {
    this.cache.refuseCached(address);
    return super.usableSize(address);
  }

  /** Unknown with the cache on: a cached block serves any request of its class. */
  override requestedSize(address: number): number {
    this.cache.refuseCached(address);
    super.usableSize(address);
    return -1;
  }

  /**
   * The backend's answer, widened for blocks the cache hands out: those were asked of the
   * backend as 8c bytes (a multiple of 8 up to `TC_MAX_REQUEST`) at alignment `MIN_ALIGN`
   * and serve requests of 8c - 7 to 8c bytes. A block the backend says takes only alignments
   * above `MIN_ALIGN` never passed through the cache, so the backend's exact size stands.
   */
  override blockLayout(address: number): BlockLayout {
    this.cache.refuseCached(address);
    const layout = super.blockLayout(address);
    const { minSize } = layout;
    if (layout.minAlign <= MIN_ALIGN && minSize > 0 && minSize <= TC_MAX_REQUEST && minSize % TC_CLASS_BYTES === 0) {
      return { ...layout, minSize: minSize === TC_CLASS_BYTES ? 0 : minSize - TC_CLASS_BYTES + 1 };
    }
    return layout;
  }

  override resizeInPlace(address: number, size: number): boolean {
    this.cache.refuseCached(address);
    // After a resize its class would no longer say what it holds, so its entry goes first (a
    // thread that dies inside the resize leaves no entry promising more than the block has):
    // its next free takes the validated way.
    this.cache.forget(address);
    return super.resizeInPlace(address, size);
  }

  override usedBytes(): number {
    this.cache.flushAll();
    return super.usedBytes();
  }

  override check(): CheckReport {
    this.mutex.lock();
    try {
      this.cache.verify(this.registry);
    } finally {
      this.mutex.unlock();
    }
    this.cache.flushAll();
    return super.check();
  }

  override stats(): BackendStats {
    this.cache.flushAll();
    return { ...super.stats(), requestedBytes: null };
  }

  override walk(visit: (region: HeapRegion) => void): void {
    this.cache.flushAll();
    super.walk((region) => {
      if (region.requested === undefined) {
        visit(region);
        return;
      }
      const { requested: _unknown, ...rest } = region;
      visit(rest);
    });
  }

  override classStats(): StatsTable[] {
    this.cache.flushAll();
    return super.classStats();
  }
}
