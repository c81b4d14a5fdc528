/**
 * The shared heap: one `SharedArrayBuffer` holding a superblock, the thread registry, lock
 * records, the backend's control state and the 4 MiB-aligned arena (layout in
 * `heap-layout.ts`). This module formats a new buffer, recognises an existing one, and keeps
 * the pool table. It knows nothing of any backend's algorithm.
 */

import { AllocError, hex } from '../errors.js';
import {
  ARENA_POOL_COUNTS,
  arenaStagger,
  arenaStateStride,
  BACKEND_MODULE,
  BACKEND_MODULE_BYTES,
  BACKEND_NAME,
  BACKEND_NAME_BYTES,
  BACKEND_OPTIONS,
  BACKEND_OPTIONS_BYTES,
  BACKEND_STATE,
  BACKEND_STATE_MAX_BYTES,
  CONTROL_BYTES,
  HEAP_FLAGS_KNOWN,
  HEAP_MAGIC,
  LAYOUT_VERSION,
  LOCK_NAMES,
  LOCK_RECORD_BYTES,
  LOCK_TABLE,
  MAX_ARENAS,
  MAX_POOLS,
  MAX_THREADS_LIMIT,
  SB_ARENA_BYTES,
  SB_ARENA_COUNT,
  SB_ARENA_OFFSET,
  SB_BACKEND_STATE_BYTES,
  SB_HEAP_COOKIE,
  SB_HEAP_FLAGS,
  SB_LAYOUT_VERSION,
  SB_LOCK_TIMEOUT_MS,
  SB_MAGIC,
  SB_MAX_THREADS,
} from './heap-layout.js';
import type { HeapMemory } from '../interfaces.js';
import { HEAP_ALIGN, MiB } from '../sizes.js';
import { PoolTable } from '../backend/pools.js';
import { SharedMutex, type ThreadDescriber } from './mutex.js';

/** Default arena size: 512 MiB (committed lazily, so untouched memory costs nothing). */
export const DEFAULT_HEAP_BYTES = 512 * MiB;
/** Largest arena: the whole buffer must stay below 4 GiB so every address fits in 32 bits. */
export const MAX_HEAP_BYTES = 4096 * MiB - 2 * HEAP_ALIGN;
/** Default number of thread slots. */
export const DEFAULT_MAX_THREADS = 64;
/** Default bound on a lock wait before `LockTimeout`. */
export const DEFAULT_LOCK_TIMEOUT_MS = 10_000;
/** The longest lock timeout a heap may have: ten minutes. A wait is bounded or it is a hang. */
export const MAX_LOCK_TIMEOUT_MS = 600_000;
/** What a backend name looks like, in a spec and in the superblock. */
export const BACKEND_NAME_PATTERN = /^[a-z][a-z0-9-]*$/;

/** What `SharedHeap.format` writes into a new superblock. */
export interface HeapFormat {
  /** Arena bytes: a multiple of 4 MiB, from 4 MiB to `MAX_HEAP_BYTES`. */
  heapBytes: number;
  maxThreads: number;
  lockTimeoutMs: number;
  backendName: string;
  backendModuleUrl: string;
  backendOptionsJson: string;
  backendStateBytes: number;
  /** `HeapFlag` bits. */
  heapFlags: number;
  /** Arenas of a locked backend, 1 to `MAX_ARENAS` (docs/arenas.md); default 1. */
  arenaCount?: number;
}

/** A memory range of the arena given to the backend. */
export interface Pool {
  readonly start: number;
  readonly size: number;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Makes the typed-array views every component reads the heap through. */
export function viewsOf(buffer: SharedArrayBuffer): HeapMemory {
  return {
    buffer,
    u8: new Uint8Array(buffer),
    u32: new Uint32Array(buffer),
    i32: new Int32Array(buffer),
    f64: new Float64Array(buffer),
  };
}

/**
 * A handle on a formatted heap buffer for one thread: views, superblock fields, pool table.
 */
export class SharedHeap {
  readonly memory: HeapMemory;
  readonly arenaStart: number;
  readonly arenaBytes: number;
  readonly arenaEnd: number;
  readonly maxThreads: number;
  readonly lockTimeoutMs: number;
  readonly cookie: number;
  readonly backendStateBytes: number;
  /** `HeapFlag` bits chosen at creation. */
  readonly heapFlags: number;
  /** Arenas of a locked backend (1 for any other). */
  readonly arenaCount: number;

  private constructor(memory: HeapMemory) {
    this.memory = memory;
    const u32 = memory.u32;
    this.arenaStart = u32[SB_ARENA_OFFSET >> 2]!;
    this.arenaBytes = u32[SB_ARENA_BYTES >> 2]!;
    this.arenaEnd = this.arenaStart + this.arenaBytes;
    this.maxThreads = u32[SB_MAX_THREADS >> 2]!;
    this.lockTimeoutMs = u32[SB_LOCK_TIMEOUT_MS >> 2]!;
    this.cookie = u32[SB_HEAP_COOKIE >> 2]!;
    this.backendStateBytes = u32[SB_BACKEND_STATE_BYTES >> 2]!;
    this.heapFlags = u32[SB_HEAP_FLAGS >> 2]!;
    this.arenaCount = u32[SB_ARENA_COUNT >> 2]!;
  }

  /**
   * Allocates and formats a new heap buffer. The magic word is written last, so a buffer is
   * never recognised half-formatted; `publish()` writes it once the backend is formatted.
   * @throws AllocError `InvalidParam` for a heap size that is not a multiple of 4 MiB or out
   *   of range, a bad thread count or timeout, or strings that do not fit
   */
  static format(format: HeapFormat): SharedHeap {
    const { heapBytes, maxThreads, lockTimeoutMs } = format;
    if (!Number.isSafeInteger(heapBytes) || heapBytes < HEAP_ALIGN || heapBytes % HEAP_ALIGN !== 0) {
      throw new AllocError('InvalidParam', `heap size ${String(heapBytes)} is not a positive multiple of 4 MiB (${HEAP_ALIGN} bytes)`);
    }
    if (heapBytes > MAX_HEAP_BYTES) {
      throw new AllocError('InvalidParam', `heap size ${heapBytes} exceeds the largest heap, ${MAX_HEAP_BYTES} bytes (addresses must fit in 32 bits)`);
    }
    if (!Number.isInteger(maxThreads) || maxThreads < 1 || maxThreads > MAX_THREADS_LIMIT) {
      throw new AllocError('InvalidParam', `maxThreads ${String(maxThreads)} is not an integer from 1 to ${MAX_THREADS_LIMIT}`);
    }
    if (!Number.isInteger(lockTimeoutMs) || lockTimeoutMs < 1 || lockTimeoutMs > MAX_LOCK_TIMEOUT_MS) {
      throw new AllocError('InvalidParam', `lockTimeoutMs ${String(lockTimeoutMs)} is not an integer from 1 to ${MAX_LOCK_TIMEOUT_MS} (ten minutes)`);
    }
    if (format.backendStateBytes > BACKEND_STATE_MAX_BYTES) {
      throw new AllocError(
        'InvalidParam',
        `backend '${format.backendName}' asks for ${format.backendStateBytes} bytes of state; ` +
          `at most ${BACKEND_STATE_MAX_BYTES} fit in the control region`,
      );
    }
    const arenaCount = format.arenaCount ?? 1;
    if (!Number.isInteger(arenaCount) || arenaCount < 1 || arenaCount > MAX_ARENAS) {
      throw new AllocError('InvalidParam', `arenas ${String(arenaCount)} is not an integer from 1 to ${MAX_ARENAS}`);
    }
    if (arenaCount > 1) {
      if (heapBytes < arenaCount * HEAP_ALIGN) {
        throw new AllocError('InvalidParam', `a heap of ${arenaCount} arenas needs at least ${arenaCount * 4} MiB (4 MiB an arena); got ${heapBytes} bytes`);
      }
      if (arenaCount * arenaStateStride(format.backendStateBytes) > BACKEND_STATE_MAX_BYTES) {
        throw new AllocError(
          'InvalidParam',
          `backend '${format.backendName}' needs ${format.backendStateBytes} bytes of state an arena; ${arenaCount} arenas' do not fit in the ${BACKEND_STATE_MAX_BYTES} of the control region`,
        );
      }
    }
    const memory = viewsOf(new SharedArrayBuffer(CONTROL_BYTES + heapBytes));
    const u32 = memory.u32;
    u32[SB_LAYOUT_VERSION >> 2] = LAYOUT_VERSION;
    u32[SB_ARENA_OFFSET >> 2] = CONTROL_BYTES;
    u32[SB_ARENA_BYTES >> 2] = heapBytes;
    u32[SB_MAX_THREADS >> 2] = maxThreads;
    u32[SB_LOCK_TIMEOUT_MS >> 2] = lockTimeoutMs;
    u32[SB_HEAP_COOKIE >> 2] = crypto.getRandomValues(new Uint32Array(1))[0]! | 1;
    u32[SB_BACKEND_STATE_BYTES >> 2] = format.backendStateBytes;
    u32[SB_HEAP_FLAGS >> 2] = format.heapFlags;
    u32[SB_ARENA_COUNT >> 2] = arenaCount;
    writeString(memory.u8, BACKEND_NAME, BACKEND_NAME_BYTES, format.backendName, 'backend name');
    writeString(memory.u8, BACKEND_MODULE, BACKEND_MODULE_BYTES, format.backendModuleUrl, 'backend module URL');
    writeString(memory.u8, BACKEND_OPTIONS, BACKEND_OPTIONS_BYTES, format.backendOptionsJson, 'backend options');
    return new SharedHeap(memory);
  }

  /**
   * Recognises a formatted heap buffer, as `attach` does in a worker.
   * @throws AllocError `InvalidHeap` naming what is wrong with the buffer
   */
  static open(buffer: unknown): SharedHeap {
    if (!(buffer instanceof SharedArrayBuffer)) {
      const what = buffer instanceof ArrayBuffer ? 'an ArrayBuffer (not shared)' : typeof buffer;
      throw new AllocError('InvalidHeap', `a heaplab heap is a SharedArrayBuffer; got ${what}`);
    }
    if (buffer.byteLength < CONTROL_BYTES + HEAP_ALIGN) {
      throw new AllocError('InvalidHeap', `a buffer of ${buffer.byteLength} bytes is too small to be a heaplab heap`);
    }
    const memory = viewsOf(buffer);
    const magic = Atomics.load(memory.u32, SB_MAGIC >> 2);
    if (magic !== HEAP_MAGIC) {
      throw new AllocError('InvalidHeap', `this SharedArrayBuffer is not a heaplab heap (magic ${hex(magic)}, expected ${hex(HEAP_MAGIC)})`);
    }
    const version = memory.u32[SB_LAYOUT_VERSION >> 2]!;
    if (version !== LAYOUT_VERSION) {
      throw new AllocError('InvalidHeap', `heap layout version ${version} is not supported (this heaplab reads version ${LAYOUT_VERSION})`);
    }
    const heap = new SharedHeap(memory);
    heap.validate();
    return heap;
  }

  /**
   * Checks every superblock field a thread relies on before it trusts the heap: a buffer
   * written by something other than heaplab (or damaged) is refused here, naming the field,
   * instead of failing later in a backend or waiting days on a lock.
   * @throws AllocError `InvalidHeap` naming the first bad field
   */
  private validate(): void {
    const bad = (field: string, problem: string): never => {
      throw new AllocError('InvalidHeap', `heap superblock is inconsistent: field ${field} ${problem}`);
    };
    const length = this.memory.buffer.byteLength;
    if (this.arenaStart !== CONTROL_BYTES) bad('arenaOffset', `is ${hex(this.arenaStart)}, not ${hex(CONTROL_BYTES)}`);
    if (this.arenaBytes % HEAP_ALIGN !== 0 || this.arenaBytes < HEAP_ALIGN || this.arenaEnd !== length) {
      bad('arenaBytes', `is ${this.arenaBytes}: not a multiple of 4 MiB filling the buffer of ${length} bytes`);
    }
    if (this.maxThreads < 1 || this.maxThreads > MAX_THREADS_LIMIT) {
      bad('maxThreads', `is ${this.maxThreads}, not from 1 to ${MAX_THREADS_LIMIT}`);
    }
    if (this.lockTimeoutMs < 1 || this.lockTimeoutMs > MAX_LOCK_TIMEOUT_MS) {
      bad('lockTimeoutMs', `is ${this.lockTimeoutMs}, not from 1 to ${MAX_LOCK_TIMEOUT_MS}`);
    }
    if ((this.cookie & 1) === 0) bad('heapCookie', `is ${hex(this.cookie)}; a heap's cookie is odd`);
    if (this.backendStateBytes > BACKEND_STATE_MAX_BYTES) {
      bad('backendStateBytes', `is ${this.backendStateBytes}, more than the ${BACKEND_STATE_MAX_BYTES} the control region holds`);
    }
    if ((this.heapFlags & ~HEAP_FLAGS_KNOWN) !== 0) bad('heapFlags', `has unknown bits ${hex(this.heapFlags)}`);
    if (this.arenaCount < 1 || this.arenaCount > MAX_ARENAS || this.arenaBytes < this.arenaCount * HEAP_ALIGN) {
      bad('arenaCount', `is ${this.arenaCount}, not from 1 to ${MAX_ARENAS} arenas of at least 4 MiB`);
    }
    if (this.arenaCount * arenaStateStride(this.backendStateBytes) > BACKEND_STATE_MAX_BYTES) {
      bad('backendStateBytes', `is ${this.backendStateBytes}: ${this.arenaCount} arenas' state does not fit in the control region`);
    }
    for (let arena = 0; arena < this.arenaCount; arena++) {
      const poolCount = this.memory.u32[ARENA_POOL_COUNTS[arena]! >> 2]!;
      const field = arena === 0 ? 'poolCount' : `poolCount of arena ${arena}`;
      if (poolCount < 1 || poolCount > MAX_POOLS) bad(field, `is ${poolCount}, not from 1 to ${MAX_POOLS}`);
      const slice = this.arenaSlice(arena);
      const pools = this.poolTable(arena).list();
      pools.forEach((pool, index) => {
        const name = arena === 0 ? `pool[${index}]` : `arena ${arena}'s pool[${index}]`;
        if (pool.end <= pool.start || pool.start < slice.start || pool.end > slice.end) {
          bad(
            name,
            `${hex(pool.start)}+${pool.end - pool.start} is not a range inside ${arena === 0 && this.arenaCount === 1 ? 'the arena' : `arena ${arena}'s slice`}`,
          );
        }
        for (let other = 0; other < index; other++) {
          const earlier = pools[other]!;
          if (pool.start < earlier.end && earlier.start < pool.end) bad(name, `${hex(pool.start)}+${pool.end - pool.start} overlaps pool[${other}]`);
        }
      });
    }
    const name = readField(this.memory.u8, BACKEND_NAME, BACKEND_NAME_BYTES, 'backendName');
    if (!BACKEND_NAME_PATTERN.test(name)) bad('backendName', `${JSON.stringify(name)} is not a backend name`);
    const moduleUrl = readField(this.memory.u8, BACKEND_MODULE, BACKEND_MODULE_BYTES, 'backendModule');
    if (!URL.canParse(moduleUrl)) bad('backendModule', `${JSON.stringify(moduleUrl)} is not a URL`);
    parseOptionsField(readField(this.memory.u8, BACKEND_OPTIONS, BACKEND_OPTIONS_BYTES, 'backendOptions'));
  }

  /** Marks the heap as formatted: from now on `open` accepts it. */
  publish(): void {
    Atomics.store(this.memory.u32, SB_MAGIC >> 2, HEAP_MAGIC);
  }

  get buffer(): SharedArrayBuffer {
    return this.memory.buffer;
  }

  get backendName(): string {
    return readString(this.memory.u8, BACKEND_NAME, BACKEND_NAME_BYTES);
  }

  get backendModuleUrl(): string {
    return readString(this.memory.u8, BACKEND_MODULE, BACKEND_MODULE_BYTES);
  }

  get backendOptionsJson(): string {
    return readString(this.memory.u8, BACKEND_OPTIONS, BACKEND_OPTIONS_BYTES);
  }

  /** The backend options stored in the heap, parsed. @throws AllocError `InvalidHeap` */
  backendOptions(): Record<string, unknown> {
    return parseOptionsField(this.backendOptionsJson);
  }

  /** Start of the backend's control state (arena `arena`'s). */
  backendStateOffset(arena = 0): number {
    return BACKEND_STATE + arena * arenaStateStride(this.backendStateBytes);
  }

  /**
   * The part of the arena that arena `arena`'s instance manages: boundary k (0 < k < count)
   * lies `k` whole 4 MiB units of `arenaBytes / count` and `k` staggers (`arenaStagger`) past
   * the arena's start, and the last slice takes what is left (with one arena, all of it).
   */
  arenaSlice(arena: number): { start: number; end: number } {
    const count = this.arenaCount;
    const sliceBytes = Math.floor(this.arenaBytes / count / HEAP_ALIGN) * HEAP_ALIGN;
    const boundary = (k: number): number => (k === count ? this.arenaEnd : this.arenaStart + k * (sliceBytes + arenaStagger(count)));
    return { start: boundary(arena), end: boundary(arena + 1) };
  }

  /** A handle on lock record `index` for thread `threadId`. */
  mutex(
    index: number,
    threadId: number,
    describeThread?: ThreadDescriber,
    explainPoison?: (deadThreadId: number, lockName: string) => string,
    name: string = LOCK_NAMES[index]!,
  ): SharedMutex {
    return new SharedMutex(this.memory.i32, LOCK_TABLE + index * LOCK_RECORD_BYTES, name, threadId, this.lockTimeoutMs, describeThread, explainPoison);
  }

  /** The pools given to the backend so far, arena by arena, each in the order they were added. */
  pools(): Pool[] {
    const pools: Pool[] = [];
    for (let arena = 0; arena < this.arenaCount; arena++) {
      for (const { start, end } of this.poolTable(arena).list()) pools.push({ start, size: end - start });
    }
    return pools;
  }

  /** Arena `arena`'s pool table with its writer side, bounded by its slice of the arena. */
  poolTable(arena = 0): PoolTable {
    const { start, end } = this.arenaSlice(arena);
    return new PoolTable(this.memory, start, end, arena);
  }

  /**
   * Checks that `[start, start + size)` lies in arena `arena`'s slice and overlaps no pool,
   * without recording it. Call with the pools lock held.
   * @throws AllocError as `PoolTable.checkNew`
   */
  checkNewPool(start: number, size: number, arena = 0): void {
    this.poolTable(arena).checkNew(start, size);
  }

  /** Records a checked pool of arena `arena`. Call with the pools lock held, after `checkNewPool`. */
  recordPool(start: number, size: number, arena = 0): void {
    this.poolTable(arena).record(start, size);
  }
}

function writeString(u8: Uint8Array, offset: number, capacity: number, value: string, what: string): void {
  const bytes = encoder.encode(value);
  if (bytes.length >= capacity) {
    throw new AllocError('InvalidParam', `${what} is ${bytes.length} bytes of UTF-8; at most ${capacity - 1} fit in the superblock`);
  }
  u8.set(bytes, offset);
  u8.fill(0, offset + bytes.length, offset + capacity);
}

/**
 * Reads a string field that must end with a NUL inside its capacity.
 * @throws AllocError `InvalidHeap` when it does not, or is not UTF-8
 */
function readField(u8: Uint8Array, offset: number, capacity: number, field: string): string {
  const length = u8.subarray(offset, offset + capacity).indexOf(0);
  if (length < 0) {
    throw new AllocError('InvalidHeap', `heap superblock field ${field} has no terminating NUL in its ${capacity} bytes`);
  }
  try {
    // TextDecoder refuses views of shared memory, so the bytes are copied out first.
    return new TextDecoder('utf-8', { fatal: true }).decode(u8.slice(offset, offset + length));
  } catch {
    throw new AllocError('InvalidHeap', `heap superblock field ${field} is not UTF-8 text`);
  }
}

/** Parses the options field: a JSON object. @throws AllocError `InvalidHeap` otherwise */
function parseOptionsField(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new AllocError('InvalidHeap', `heap superblock field backendOptions ${JSON.stringify(text.slice(0, 60))} is not JSON`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AllocError('InvalidHeap', `heap superblock field backendOptions ${JSON.stringify(text.slice(0, 60))} is not a JSON object`);
  }
  return value as Record<string, unknown>;
}

function readString(u8: Uint8Array, offset: number, capacity: number): string {
  let end = offset;
  while (end < offset + capacity && u8[end] !== 0) end++;
  // TextDecoder refuses views of shared memory, so copy the few bytes out first.
  return decoder.decode(u8.slice(offset, end));
}
