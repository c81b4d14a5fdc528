/**
 * Recording what a program asks of its heap, so the same requests can be replayed on any
 * backend: a `TraceRecorder` given to `GlobalAllocator.create` or `attach` (the `trace`
 * option) logs every allocator call of that handle into a shared buffer, and `trace()` turns
 * the log into a `Trace` (trace-format.ts). Every handle attached with a recorder over the
 * same buffer (`TraceRecorder.over(recorder.buffer)` in a worker) appends to one log.
 *
 * ```text
 *  byte offset
 *  0     +---------------------------------------------+  header (HEADER_BYTES)
 *        | magic (TRACE_LOG_MAGIC)                     |
 *  4     | capacity: records the log holds             |
 *  8     | next: the next free record index (atomic)   |  fetch-add reserves a record
 *  12    | overflow: 1 once a call found the log full  |
 *  16    | handles: recording handles so far (atomic)  |  each handle's thread number
 *  20    | reserved                                    |
 *  32    +---------------------------------------------+  record 0, RECORD_BYTES long
 *        | +0 word: kind (8 bits) | handle << 16       |  stored last, with Atomics.store:
 *        | +4 address                                  |  a kind of 0 is a record not yet
 *        | +8 bytes                                    |  (or never) published
 *        | +12 align (alloc) / leave record (realloc)  |
 *  48    +---------------------------------------------+  record 1, ...
 * ```
 *
 * A record names its thread by the number the log gave the handle when it was installed
 * (1, 2, ... in order of `install`), not by the heap's thread slot: a worker that detached
 * frees its slot for the next one, and two threads must not become one in the trace.
 *
 * The ordering rule, which makes the log of several threads one valid trace: a block's
 * address is reused only after it was freed, so the free's record must come before the
 * allocation that gets the address again. A free therefore reserves its record before the
 * backend frees; an allocation writes its record after the backend returned; a realloc
 * reserves a "leave" record before the call (its id leaves the old address, which another
 * thread may get while the call runs) and writes an "arrive" record after it (the id now
 * lives at the new address, with its new size). A record is published by storing its kind
 * word last; one still 0 when the trace is built (a thread inside the call, or one that died
 * there) is skipped and counted.
 *
 * Recording costs nothing on a heap without a recorder: `install` puts wrappers on the one
 * handle as own properties, over the prototype's methods, which stay as they are.
 */

import { AllocError } from '../errors.js';
import { MIN_ALIGN } from '../sizes.js';
import { checkTrace, MAX_TRACE_THREADS, type Trace, type TraceRequest, traceFigures } from './trace-format.js';

/** 'HPTR' as a little-endian word: a buffer made by `TraceRecorder`. */
export const TRACE_LOG_MAGIC = 0x52545048;

/** Header word offsets, in 32-bit words. */
const HEADER_MAGIC = 0;
const HEADER_CAPACITY = 1;
/** The append index; exported for tests that reserve a record the way a call does. */
export const HEADER_NEXT = 2;
const HEADER_OVERFLOW = 3;
const HEADER_HANDLES = 4;
/** Bytes of the header, before record 0: two records' worth, so records stay 16-byte aligned. */
export const HEADER_BYTES = 32;

/** Bytes of one record: four 32-bit words. */
export const RECORD_BYTES = 16;
const RECORD_WORDS = RECORD_BYTES / 4;
/** Record word offsets. */
const RECORD_KIND = 0;
const RECORD_ADDRESS = 1;
const RECORD_BYTES_WORD = 2;
/** The alignment of an allocation; the index of its leave record for a realloc's arrival. */
const RECORD_EXTRA = 3;

/** The kind word's low byte; the handle's number sits at `THREAD_SHIFT`. */
const KIND_MASK = 0xff;
const THREAD_SHIFT = 16;
/** Handles one log can tell apart: their numbers fill the kind word's upper 16 bits. */
export const MAX_RECORDING_HANDLES = 0xffff;

/** What a record says. 0 is no kind: the record is not published. */
export const RecordKind = {
  /** malloc, alignedAlloc, memalign, alloc: a block of `bytes` at `address`. */
  alloc: 1,
  /** calloc: a zeroed block of `bytes` (count × size). */
  calloc: 2,
  /** free, dealloc, freeDelayed (recorded when asked for). */
  free: 3,
  /** realloc, before the call: the id leaves `address`. */
  reallocLeave: 4,
  /** realloc, after the call: the id lives at `address` with `bytes`; extra is its leave record. */
  reallocArrive: 5,
  /** A reserved record whose call failed (threw, or a realloc that returned 0): nothing happened. */
  cancelled: 6,
} as const;

/** Records a recorder holds when its constructor is not told: 1 Mi (16 MiB). */
export const DEFAULT_TRACE_CAPACITY = 1 << 20;
/** The most records one log may hold: 64 Mi (1 GiB of buffer). */
export const MAX_TRACE_CAPACITY = 1 << 26;

/** Options of `new TraceRecorder`. */
export interface TraceRecorderOptions {
  /** Records the log holds (a realloc takes two, every other call one). Default 1 Mi. */
  capacity?: number;
}

/** What `scan` found besides the trace. */
export interface TraceScan {
  trace: Trace;
  /** Records reserved but never published (a thread inside its call, or dead there): skipped. */
  unpublished: number;
  /** Frees and reallocs of addresses the log never saw allocated (blocks made by an unrecorded handle): skipped. */
  unknownAddresses: number;
}

/** The calls a recorder wraps: `GlobalAllocator`'s, named structurally so this file needs no import of it. */
export interface RecordableHeap {
  malloc(size: number): number;
  calloc(count: number, size: number): number;
  alignedAlloc(align: number, size: number): number;
  realloc(address: number, size: number, align?: number): number;
  free(address: number): void;
  freeDelayed(address: number): void;
}

/** A shared log of allocator calls; see the file's comment. */
export class TraceRecorder {
  /** The log: send it to a worker, which attaches with `trace: TraceRecorder.over(buffer)`. */
  readonly buffer: SharedArrayBuffer;
  /** Records the log holds. */
  readonly capacity: number;
  private readonly words: Uint32Array;

  /** @throws AllocError `InvalidParam` for a capacity that is not a whole number from 1 to `MAX_TRACE_CAPACITY` */
  constructor(options: TraceRecorderOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_TRACE_CAPACITY;
    if (!Number.isSafeInteger(capacity) || capacity < 1 || capacity > MAX_TRACE_CAPACITY) {
      throw new AllocError('InvalidParam', `trace capacity ${String(capacity)} is not a whole number of records from 1 to ${MAX_TRACE_CAPACITY}`);
    }
    this.buffer = new SharedArrayBuffer(HEADER_BYTES + capacity * RECORD_BYTES);
    this.words = new Uint32Array(this.buffer);
    this.capacity = capacity;
    this.words[HEADER_CAPACITY] = capacity;
    Atomics.store(this.words, HEADER_MAGIC, TRACE_LOG_MAGIC);
  }

  /**
   * A recorder over the log of another (in a worker: `TraceRecorder.over(recorder.buffer)`).
   * @throws AllocError `InvalidParam` when `buffer` is not a recorder's log
   */
  static over(buffer: SharedArrayBuffer): TraceRecorder {
    if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength < HEADER_BYTES) {
      throw new AllocError('InvalidParam', 'a trace log is the SharedArrayBuffer of a TraceRecorder (recorder.buffer)');
    }
    const words = new Uint32Array(buffer);
    const capacity = words[HEADER_CAPACITY]!;
    if (Atomics.load(words, HEADER_MAGIC) !== TRACE_LOG_MAGIC || buffer.byteLength !== HEADER_BYTES + capacity * RECORD_BYTES) {
      throw new AllocError('InvalidParam', 'this buffer is not a trace log: no TraceRecorder made it (its magic word or length is wrong)');
    }
    const recorder = Object.create(TraceRecorder.prototype) as { buffer: SharedArrayBuffer; capacity: number; words: Uint32Array };
    recorder.buffer = buffer;
    recorder.capacity = capacity;
    recorder.words = words;
    return recorder as unknown as TraceRecorder;
  }

  /** Records reserved so far (published or not), at most `capacity`. */
  get recorded(): number {
    return Math.min(Atomics.load(this.words, HEADER_NEXT), this.capacity);
  }

  /** Whether a call found the log full (recording stopped there). */
  get overflowed(): boolean {
    return Atomics.load(this.words, HEADER_OVERFLOW) !== 0;
  }

  /**
   * Makes `heap`'s allocator calls record into this log: wrappers as own properties of that
   * one handle. `memalign`, `alloc` and `allocPages` reach `alignedAlloc`, `dealloc` and
   * `deallocPages` reach `free`, and `realloc(0, n)` reaches `malloc` or `alignedAlloc`
   * through the handle, so each call is recorded once, by the wrapper of what it reaches.
   */
  install(heap: RecordableHeap): void {
    const thread = Atomics.add(this.words, HEADER_HANDLES, 1) + 1;
    if (thread > MAX_RECORDING_HANDLES) {
      throw new AllocError(
        'InvalidParam',
        `this trace log has recorded ${MAX_RECORDING_HANDLES} handles, all it can tell apart; record the next run into a new TraceRecorder`,
      );
    }
    const malloc = heap.malloc.bind(heap);
    const calloc = heap.calloc.bind(heap);
    const alignedAlloc = heap.alignedAlloc.bind(heap);
    const realloc = heap.realloc.bind(heap);
    const free = heap.free.bind(heap);
    const freeDelayed = heap.freeDelayed.bind(heap);
    const own = (name: keyof RecordableHeap, value: unknown): void => {
      Object.defineProperty(heap, name, { value, writable: true, configurable: true, enumerable: false });
    };
    own('malloc', (size: number): number => {
      const address = malloc(size);
      if (address !== 0) this.append(RecordKind.alloc, thread, address, size, 0);
      return address;
    });
    own('calloc', (count: number, size: number): number => {
      const address = calloc(count, size);
      if (address !== 0) this.append(RecordKind.calloc, thread, address, count * size, 0);
      return address;
    });
    own('alignedAlloc', (align: number, size: number): number => {
      const address = alignedAlloc(align, size);
      if (address !== 0) this.append(RecordKind.alloc, thread, address, size, align > MIN_ALIGN ? align : 0);
      return address;
    });
    own('free', (address: number): void => {
      // free(0) does nothing and is no request.
      if (address === 0) free(address);
      else this.reserveAround(RecordKind.free, thread, address, free);
    });
    own('freeDelayed', (address: number): void => {
      this.reserveAround(RecordKind.free, thread, address, freeDelayed);
    });
    own('realloc', (address: number, size: number, align: number = MIN_ALIGN): number => {
      // realloc(0, n) allocates through the handle's own malloc or alignedAlloc, which record it.
      if (address === 0) return realloc(address, size, align);
      const leave = this.reserve();
      let moved = 0;
      try {
        moved = realloc(address, size, align);
      } finally {
        // A throw or a 0 left the old block as it was: the leave record says nothing happened.
        if (leave >= 0) this.publish(leave, moved === 0 ? RecordKind.cancelled : RecordKind.reallocLeave, thread, address, 0, 0);
      }
      if (moved !== 0) this.append(RecordKind.reallocArrive, thread, moved, size, leave >= 0 ? leave : 0xffff_ffff);
      return moved;
    });
  }

  /**
   * Builds the trace of the log: records in index order, ids numbered in order of
   * allocation (never reused), threads (recording handles) renumbered 0.. by first appearance.
   * @throws AllocError `InvalidParam` when the log filled (recording stopped there), or when
   *   more than `MAX_TRACE_THREADS` handles made calls
   */
  trace(options: { description?: string } = {}): Trace {
    return this.scan(options).trace;
  }

  /** `trace()` with what was skipped. @throws AllocError as `trace` */
  scan(options: { description?: string } = {}): TraceScan {
    if (this.overflowed) {
      throw new AllocError(
        'InvalidParam',
        `the trace log filled: its ${this.capacity} records were all taken and recording stopped there; make a TraceRecorder with a larger capacity (new TraceRecorder({ capacity }))`,
      );
    }
    const words = this.words;
    const count = this.recorded;
    const idAt = new Map<number, number>();
    /** The id a realloc's leave record took, by the leave record's index; -1 for an unknown address. */
    const leaving = new Map<number, number>();
    const threadNumbers = new Map<number, number>();
    /** A handle's thread number, given when its first request is written. */
    const threadOf = (handle: number): number => {
      let thread = threadNumbers.get(handle);
      if (thread === undefined) {
        thread = threadNumbers.size;
        threadNumbers.set(handle, thread);
      }
      return thread;
    };
    const requests: TraceRequest[] = [];
    let ids = 0;
    let unpublished = 0;
    let unknownAddresses = 0;
    for (let index = 0; index < count; index++) {
      const base = (HEADER_BYTES >> 2) + index * RECORD_WORDS;
      const kindWord = Atomics.load(words, base + RECORD_KIND);
      const kind = kindWord & KIND_MASK;
      if (kind === 0) {
        unpublished++;
        continue;
      }
      if (kind === RecordKind.cancelled) continue;
      const handle = kindWord >>> THREAD_SHIFT;
      const address = words[base + RECORD_ADDRESS]!;
      const bytes = words[base + RECORD_BYTES_WORD]!;
      const extra = words[base + RECORD_EXTRA]!;
      switch (kind) {
        case RecordKind.alloc:
        case RecordKind.calloc: {
          // An address still mapped means its free was never published: that id stays live.
          const id = ids++;
          idAt.set(address, id);
          requests.push({ op: 'a', id, bytes, thread: threadOf(handle), align: extra, zero: kind === RecordKind.calloc });
          break;
        }
        case RecordKind.free: {
          const id = idAt.get(address);
          if (id === undefined) {
            unknownAddresses++;
            break;
          }
          idAt.delete(address);
          requests.push({ op: 'f', id, thread: threadOf(handle) });
          break;
        }
        case RecordKind.reallocLeave: {
          const id = idAt.get(address);
          if (id === undefined) unknownAddresses++;
          else idAt.delete(address);
          leaving.set(index, id ?? -1);
          break;
        }
        case RecordKind.reallocArrive: {
          // A thread publishes its leave record before it writes the arrival, so the leave
          // was read; -1 when it named an unknown address (counted there).
          const id = leaving.get(extra) ?? -1;
          leaving.delete(extra);
          if (id === -1) break;
          idAt.set(address, id);
          requests.push({ op: 'r', id, bytes, thread: threadOf(handle) });
          break;
        }
        default:
          throw new AllocError('InvalidParam', `trace log record ${index} has kind ${kind}, which no recorder writes: the log was overwritten`);
      }
    }
    if (threadNumbers.size > MAX_TRACE_THREADS) {
      throw new AllocError('InvalidParam', `${threadNumbers.size} handles made calls into this log; a trace holds at most ${MAX_TRACE_THREADS} threads`);
    }
    const trace: Trace = { ids, threads: Math.max(1, threadNumbers.size), heapBytes: 0, weight: 1, description: options.description ?? '', requests };
    trace.heapBytes = traceFigures(trace).peakPayloadBytes;
    checkTrace(trace, 'recorded trace');
    return { trace, unpublished, unknownAddresses };
  }

  /** Reserves a record; -1 once the log is full (and marks it so). */
  private reserve(): number {
    const words = this.words;
    if (Atomics.load(words, HEADER_OVERFLOW) !== 0) return -1;
    const index = Atomics.add(words, HEADER_NEXT, 1);
    if (index >= this.capacity) {
      Atomics.store(words, HEADER_OVERFLOW, 1);
      return -1;
    }
    return index;
  }

  /** Writes record `index`, its kind word last so a reader sees all or nothing of it. */
  private publish(index: number, kind: number, thread: number, address: number, bytes: number, extra: number): void {
    const words = this.words;
    const base = (HEADER_BYTES >> 2) + index * RECORD_WORDS;
    words[base + RECORD_ADDRESS] = address;
    words[base + RECORD_BYTES_WORD] = bytes;
    words[base + RECORD_EXTRA] = extra;
    Atomics.store(words, base + RECORD_KIND, kind | (thread << THREAD_SHIFT));
  }

  /** Reserves and writes a record at once (after an allocation returned). */
  private append(kind: number, thread: number, address: number, bytes: number, extra: number): void {
    const index = this.reserve();
    if (index >= 0) this.publish(index, kind, thread, address, bytes, extra);
  }

  /**
   * Reserves a record, runs `call(address)`, then publishes it, or cancels it when `call`
   * threw. `call` takes the address, so a recorded free makes no closure per call.
   */
  private reserveAround(kind: number, thread: number, address: number, call: (address: number) => void): void {
    const index = this.reserve();
    let done = false;
    try {
      call(address);
      done = true;
    } finally {
      if (index >= 0) this.publish(index, done ? kind : RecordKind.cancelled, thread, address, 0, 0);
    }
  }
}
