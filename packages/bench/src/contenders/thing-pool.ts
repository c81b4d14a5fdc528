/**
 * The `@thi.ng/malloc` baseline: its `MemPool`, the one general-purpose allocator on npm
 * over an ArrayBuffer. It keeps its state in the buffer, so every worker can make a pool
 * over the same `SharedArrayBuffer`; it is not thread-safe, so multi-worker runs serialise
 * it with core's shared mutex, as heaplab's lock-based backends are.
 *
 * ```text
 *  buffer layout
 *  0    lock record (THING_LOCK_OFFSET, 64 bytes, core's SharedMutex record)
 *  64   MemPool state and arena (THING_POOL_START) ... end of buffer
 * ```
 */

import { DEFAULT_LOCK_TIMEOUT_MS, SharedMutex } from '@heaplab/core';
import { MemPool } from '@thi.ng/malloc';

import type { AddressAllocator } from '../run/address-allocator.js';

const THING_LOCK_OFFSET = 0;
/** Where the pool's state starts; its blocks follow. */
export const THING_POOL_START = 64;

/** Makes the shared buffer and formats the pool in it. */
export function createThingBuffer(bytes: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer(bytes);
  new MemPool({ buf: buffer, start: THING_POOL_START });
  return buffer;
}

/** A thread's pool over a buffer from `createThingBuffer`. */
export function openThingPool(buffer: SharedArrayBuffer): MemPool {
  return new MemPool({ buf: buffer, start: THING_POOL_START, skipInitialization: true });
}

/** `MemPool` behind a shared mutex, for runs with several workers. */
export class LockedThingPool implements AddressAllocator {
  private readonly mutex: SharedMutex;

  /** @param lockOwnerId a non-zero id unique among the threads sharing the pool */
  constructor(
    private readonly pool: MemPool,
    buffer: SharedArrayBuffer,
    lockOwnerId: number,
  ) {
    this.mutex = new SharedMutex(new Int32Array(buffer), THING_LOCK_OFFSET, '@thi.ng/malloc pool', lockOwnerId, DEFAULT_LOCK_TIMEOUT_MS);
  }

  /** @throws AllocError `LockTimeout` when the lock cannot be taken */
  malloc(size: number): number {
    this.mutex.lock();
    const address = this.pool.malloc(size);
    this.mutex.unlock();
    return address;
  }

  /** @throws AllocError `LockTimeout` when the lock cannot be taken */
  free(address: number): void {
    this.mutex.lock();
    this.pool.free(address);
    this.mutex.unlock();
  }

  /** @throws AllocError `LockTimeout` when the lock cannot be taken */
  realloc(address: number, size: number): number {
    this.mutex.lock();
    const moved = this.pool.realloc(address, size);
    this.mutex.unlock();
    return moved;
  }
}
