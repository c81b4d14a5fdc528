/**
 * A `BackendContext` without a `GlobalAllocator`, for unit tests that drive a backend
 * instance directly (its own invariants, its internals) over a bare buffer.
 */

import { CONTROL_BYTES, LockIndex, ThreadRegistry } from '@heaplab/core';
import { type Backend, type BackendContext, type BackendDescriptor, type HeapMemory, PoolView, Qsbr, SharedMutex, StateCounters } from '@heaplab/core/backend';
import {
  BACKEND_STATE,
  formatQsbr,
  LOCK_NAMES,
  LOCK_RANK,
  LOCK_RECORD_BYTES,
  LOCK_TABLE,
  LockOrder,
  PoolTable,
  RecoveryRecord,
  SLOT_GENERATION_SHIFT,
  SLOT_STATE,
  SlotState,
  slotOffset,
} from '@heaplab/core/internal';

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
  /** Names of the backend's own locks, as its descriptor's `locks` (default none). */
  lockNames?: readonly string[];
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
  // In checked mode the context's locks assert the lock order, as a heap's do.
  const order = options.checked === true ? new LockOrder() : null;
  const lock = (index: number, name = LOCK_NAMES[index]!): SharedMutex => {
    const mutex = new SharedMutex(memory.i32, LOCK_TABLE + index * LOCK_RECORD_BYTES, name, threadId, lockTimeoutMs);
    if (order !== null) mutex.trackOrder(order, LOCK_RANK[index]!);
    return mutex;
  };
  const maxThreads = options.maxThreads ?? 64;
  const slotWord = (slotOffset(threadId) + SLOT_STATE) >> 2;
  if (Atomics.load(memory.i32, slotWord) === SlotState.free) {
    Atomics.store(memory.i32, slotWord, (1 << SLOT_GENERATION_SHIFT) | SlotState.active);
  }
  const record = new RecoveryRecord(memory, lock(LockIndex.recovery));
  const locks: Record<string, SharedMutex> = {};
  (options.lockNames ?? []).forEach((name, at) => {
    const index = at === 0 ? LockIndex.backend0 : LockIndex.backend1;
    locks[name] = lock(index, name);
  });
  if (options.memory === undefined) formatQsbr(memory);
  return {
    memory,
    stateOffset: BACKEND_STATE,
    stateBytes: options.stateBytes ?? CONTROL_BYTES - BACKEND_STATE,
    arenaStart: CONTROL_BYTES,
    arenaEnd: buffer.byteLength,
    threadId,
    cookie: options.cookie ?? 0x1234567,
    maxThreads,
    locks,
    counters: new StateCounters(memory),
    pools: new PoolView(memory),
    qsbr: new Qsbr(memory, threadId, maxThreads),
    checked: options.checked ?? false,
    threads: new ThreadRegistry(memory, maxThreads),
    reportLoss: (bytes, blocks) => record.addLoss(bytes, blocks),
  };
}

/**
 * Records `[start, start + size)` in core's pool table of `memory`, as the facade does after
 * a backend's `init` or `addMemory` returns, so the backend's `context.pools` lists it.
 */
export function recordPool(memory: HeapMemory, start: number, size: number): void {
  new PoolTable(memory, 0, memory.buffer.byteLength).record(start, size);
}

/**
 * One backend instance over a bare buffer, driven as the facade drives it but without a
 * lock or a `GlobalAllocator`: `init` and `addMemory` check the range and record the pool as
 * core does, so the backend sees the pool table it would see in a heap. For unit tests of a
 * backend's own invariants; `instance(threadId)` makes another thread's instance over the
 * same state.
 */
export class BackendFixture<Options, Instance extends Backend> {
  readonly context: BackendContext;
  readonly backend: Instance;
  readonly options: Options;

  constructor(
    readonly descriptor: BackendDescriptor<Options, Instance>,
    options: Record<string, unknown> = {},
    contextOptions: BackendContextOptions = {},
  ) {
    this.options = descriptor.normalizeOptions(options);
    this.context = makeBackendContext({
      stateBytes: descriptor.stateBytes,
      lockNames: descriptor.locks ?? [],
      ...contextOptions,
    });
    this.backend = descriptor.create(this.context, this.options);
  }

  get memory(): HeapMemory {
    return this.context.memory;
  }

  /** Formats the backend over `[start, start + size)` (default: the whole arena) and records the pool. */
  init(start = this.context.arenaStart, size = this.context.arenaEnd - start): this {
    this.pools().checkNew(start, size);
    this.backend.init(start, size);
    recordPool(this.memory, start, size);
    return this;
  }

  /** Adds a pool as `GlobalAllocator.addMemory` does: checked, given to the backend, recorded. */
  addMemory(start: number, size: number): void {
    this.pools().checkNew(start, size);
    this.backend.addMemory(start, size);
    recordPool(this.memory, start, size);
  }

  private pools(): PoolTable {
    return new PoolTable(this.memory, this.context.arenaStart, this.context.arenaEnd);
  }

  /** Another thread's instance over the same state. */
  instance(threadId: number, contextOptions: BackendContextOptions = {}): Instance {
    const context = makeBackendContext({
      memory: this.memory,
      threadId,
      stateBytes: this.descriptor.stateBytes,
      lockNames: this.descriptor.locks ?? [],
      checked: this.context.checked,
      ...contextOptions,
    });
    return this.descriptor.create(context, this.options);
  }
}
