/**
 * The one place a lock-based backend gets its lock, as ArceOS wraps each allocator in a
 * `Mutex<...>`: every call runs with the heap's shared mutex held. Backends themselves are
 * written as if single-threaded.
 */

import type { BackendStats, CheckReport, HeapRegion, StatsTable } from '../interfaces.js';
import type { Backend, BlockLayout } from '../backend/contract.js';
import { MAX_ALIGN } from '../sizes.js';
import type { SharedMutex } from '../memory/mutex.js';

/**
 * The layouts `dealloc` accepts for the live block at `address`: the backend's own answer,
 * else exactly the requested size when it keeps it, else any size up to the usable one; any
 * alignment the address satisfies (the facade checks the address against it).
 * @throws AllocError `NotAllocated` when `address` is not the start of a live block
 */
export function layoutOfBlock(backend: Backend, address: number): BlockLayout {
  if (backend.blockLayout !== undefined) return backend.blockLayout(address);
  const usable = backend.usableSize(address);
  const requested = backend.requestedSize === undefined ? -1 : backend.requestedSize(address);
  return requested >= 0
    ? { minSize: requested, maxSize: requested, minAlign: 1, maxAlign: MAX_ALIGN }
    : { minSize: 0, maxSize: usable, minAlign: 1, maxAlign: MAX_ALIGN };
}

/** A `Backend` whose every call holds `mutex`. */
export class LockedBackend implements Backend {
  constructor(
    protected readonly inner: Backend,
    protected readonly mutex: SharedMutex,
  ) {}

  init(start: number, size: number): void {
    this.mutex.lock();
    try {
      this.inner.init(start, size);
    } finally {
      this.mutex.unlock();
    }
  }

  addMemory(start: number, size: number): void {
    this.mutex.lock();
    try {
      this.inner.addMemory(start, size);
    } finally {
      this.mutex.unlock();
    }
  }

  allocate(size: number, align: number): number {
    this.mutex.lock();
    try {
      return this.inner.allocate(size, align);
    } finally {
      this.mutex.unlock();
    }
  }

  release(address: number): void {
    this.mutex.lock();
    try {
      this.inner.release(address);
    } finally {
      this.mutex.unlock();
    }
  }

  usableSize(address: number): number {
    this.mutex.lock();
    try {
      return this.inner.usableSize(address);
    } finally {
      this.mutex.unlock();
    }
  }

  requestedSize(address: number): number {
    this.mutex.lock();
    try {
      return this.inner.requestedSize === undefined ? -1 : this.inner.requestedSize(address);
    } finally {
      this.mutex.unlock();
    }
  }

  blockLayout(address: number): BlockLayout {
    this.mutex.lock();
    try {
      return layoutOfBlock(this.inner, address);
    } finally {
      this.mutex.unlock();
    }
  }

  resizeInPlace(address: number, size: number): boolean {
    this.mutex.lock();
    try {
      return this.inner.resizeInPlace?.(address, size) ?? false;
    } finally {
      this.mutex.unlock();
    }
  }

  totalBytes(): number {
    this.mutex.lock();
    try {
      return this.inner.totalBytes();
    } finally {
      this.mutex.unlock();
    }
  }

  usedBytes(): number {
    this.mutex.lock();
    try {
      return this.inner.usedBytes();
    } finally {
      this.mutex.unlock();
    }
  }

  check(): CheckReport {
    this.mutex.lock();
    try {
      return this.inner.check();
    } finally {
      this.mutex.unlock();
    }
  }

  stats(): BackendStats {
    this.mutex.lock();
    try {
      return this.inner.stats();
    } finally {
      this.mutex.unlock();
    }
  }

  /** Present only when the inner backend walks (the facade asks before calling). */
  walk(visit: (region: HeapRegion) => void): void {
    const walk = this.inner.walk;
    if (walk === undefined) return;
    this.mutex.lock();
    try {
      walk.call(this.inner, visit);
    } finally {
      this.mutex.unlock();
    }
  }

  classStats(): StatsTable[] {
    const classStats = this.inner.classStats;
    if (classStats === undefined) return [];
    this.mutex.lock();
    try {
      return classStats.call(this.inner);
    } finally {
      this.mutex.unlock();
    }
  }
}
