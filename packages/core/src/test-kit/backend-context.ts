/**
 * A `BackendContext` without a `GlobalAllocator`, for unit tests that drive a backend
 * instance directly (its own invariants, its internals) over a bare buffer.
 */

import { BACKEND_STATE, CONTROL_BYTES, LOCK_NAMES, LOCK_RECORD_BYTES, LOCK_TABLE, LockIndex } from '../heap-layout.js';
import type { BackendContext, HeapMemory } from '../interfaces.js';
import { SharedMutex } from '../mutex.js';

/** What `makeBackendContext` can be told; every field has a default. */
export interface BackendContextOptions {
  /** Views of an existing buffer (to make a second thread's context over the same state). */
  memory?: HeapMemory;
  /** Arena bytes after the 4 MiB control region (default 8 MiB). */
  arenaBytes?: number;
  /** Bytes of backend state at `BACKEND_STATE` (default: the rest of the control region). */
  stateBytes?: number;
  threadId?: number;
  maxThreads?: number;
  cookie?: number;
  lockTimeoutMs?: number;
}

/** Makes views of a new (or the given) buffer and a context over them, as a heap would. */
export function makeBackendContext(options: BackendContextOptions = {}): BackendContext {
  const arenaBytes = options.arenaBytes ?? 8 * 1024 * 1024;
  const buffer = options.memory?.buffer ?? new SharedArrayBuffer(CONTROL_BYTES + arenaBytes);
  const memory: HeapMemory = options.memory ?? {
    buffer,
    u8: new Uint8Array(buffer),
    u32: new Uint32Array(buffer),
    i32: new Int32Array(buffer),
    f64: new Float64Array(buffer),
  };
  const threadId = options.threadId ?? 1;
  const lockTimeoutMs = options.lockTimeoutMs ?? 10_000;
  const lock = (index: number): SharedMutex =>
    new SharedMutex(memory.i32, LOCK_TABLE + index * LOCK_RECORD_BYTES, LOCK_NAMES[index]!, threadId, lockTimeoutMs);
  return {
    memory,
    stateOffset: BACKEND_STATE,
    stateBytes: options.stateBytes ?? CONTROL_BYTES - BACKEND_STATE,
    arenaStart: CONTROL_BYTES,
    arenaEnd: buffer.byteLength,
    threadId,
    cookie: options.cookie ?? 0x1234567,
    maxThreads: options.maxThreads ?? 64,
    locks: { backend0: lock(LockIndex.backend0), backend1: lock(LockIndex.backend1) },
  };
}
