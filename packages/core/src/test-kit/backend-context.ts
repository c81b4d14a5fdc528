/**
 * A `BackendContext` without a `GlobalAllocator`, for unit tests that drive a backend
 * instance directly (its own invariants, its internals) over a bare buffer.
 */

import {
  BACKEND_STATE,
  CONTROL_BYTES,
  LOCK_NAMES,
  LOCK_RECORD_BYTES,
  LOCK_TABLE,
  LockIndex,
  SLOT_GENERATION_SHIFT,
  SLOT_STATE,
  SlotState,
} from '../heap-layout.js';
import type { BackendContext, HeapMemory } from '../interfaces.js';
import { SharedMutex } from '../mutex.js';
import { RecoveryRecord } from '../recovery.js';
import { slotOffset, ThreadRegistry } from '../thread-registry.js';

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
  /** Checked mode (default off). */
  checked?: boolean;
}

/**
 * Makes views of a new (or the given) buffer and a context over them, as a heap would. The
 * thread's registry slot is marked active (if it was free), so `context.threads` says the
 * thread is alive until a test releases the slot with a `ThreadRegistry` over the same memory.
 */
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
  const maxThreads = options.maxThreads ?? 64;
  const slotWord = (slotOffset(threadId) + SLOT_STATE) >> 2;
  if (Atomics.load(memory.i32, slotWord) === SlotState.free) {
    Atomics.store(memory.i32, slotWord, (1 << SLOT_GENERATION_SHIFT) | SlotState.active);
  }
  const record = new RecoveryRecord(memory, lock(LockIndex.recovery));
  return {
    memory,
    stateOffset: BACKEND_STATE,
    stateBytes: options.stateBytes ?? CONTROL_BYTES - BACKEND_STATE,
    arenaStart: CONTROL_BYTES,
    arenaEnd: buffer.byteLength,
    threadId,
    cookie: options.cookie ?? 0x1234567,
    maxThreads,
    locks: { backend0: lock(LockIndex.backend0), backend1: lock(LockIndex.backend1) },
    checked: options.checked ?? false,
    threads: new ThreadRegistry(memory, maxThreads),
    reportLoss: (bytes, blocks) => record.addLoss(bytes, blocks),
  };
}
