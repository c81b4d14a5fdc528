/**
 * Making and opening the allocators a benchmark thread runs on. The main thread makes a
 * *source* (a heap or buffer, prefaulted so page faults are not timed), passes it to each
 * worker, and every thread opens its own allocator over it: heaplab backends by
 * `GlobalAllocator.attach`, @thi.ng/malloc by a `MemPool` over the same buffer.
 */

import { GlobalAllocator, PAGE_SIZE, TraceRecorder } from '@heaplab/core';

import { createBackendHeap } from './backends.js';
import { BumpAllocator } from './bump-allocator.js';
import type { Contender } from './contender.js';
import { type AddressAllocator, type LoopMemory, loopMemory } from '../run/address-allocator.js';
import { createThingBuffer, LockedThingPool, openThingPool, THING_POOL_START } from './thing-pool.js';

/** What a worker needs to open the allocator of a run; structured-cloneable. */
export type AllocatorSource =
  /** `traceLog`: a `TraceRecorder`'s buffer every thread's handle records into (`heaplab trace record`). */
  | { kind: 'heaplab'; buffer: SharedArrayBuffer; traceLog?: SharedArrayBuffer }
  | { kind: 'thing'; buffer: SharedArrayBuffer; locked: boolean }
  | { kind: 'bump'; buffer: SharedArrayBuffer; regionBytes: number }
  | { kind: 'system' };

/** One thread's allocator; `allocator` is null for `system`, which has its own loops. */
export interface ThreadAllocator {
  readonly allocator: AddressAllocator | null;
  readonly memory: LoopMemory | null;
  /** Gives back what the thread holds (its heap handle). */
  release(): void;
}

/** A source made by the main thread, with its own handle for figures and the final check. */
export interface PreparedSource {
  readonly source: AllocatorSource;
  /** Address from which the footprint counts (the arena's start), or null when no heap. */
  readonly footprintBase: number | null;
  /** Where the arena ends (exclusive), or null when no heap: "memory touched" counts the pages of base..end. */
  readonly footprintEnd: number | null;
  /** The creator's handle on a heaplab heap. */
  readonly heap: GlobalAllocator | null;
}

/** Bytes of each thread's bump region. */
const BUMP_REGION_BYTES = 16 << 20;

/**
 * Makes the source of a run with `threads` threads over a heap of `heapBytes`.
 * @throws AllocError from `GlobalAllocator.create`
 */
export function prepareSource(contender: Contender, threads: number, heapBytes: number, trace?: TraceRecorder): PreparedSource {
  switch (contender.kind) {
    case 'heaplab': {
      const heap = createBackendHeap(contender.spec, heapBytes, trace);
      heap.prefault();
      const source: AllocatorSource = { kind: 'heaplab', buffer: heap.buffer, ...(trace === undefined ? {} : { traceLog: trace.buffer }) };
      return { source, footprintBase: heap.arenaStart, footprintEnd: heap.arenaEnd, heap };
    }
    case 'thing': {
      const buffer = createThingBuffer(heapBytes);
      prefaultBuffer(buffer);
      return { source: { kind: 'thing', buffer, locked: threads > 1 }, footprintBase: THING_POOL_START, footprintEnd: buffer.byteLength, heap: null };
    }
    case 'bump': {
      const buffer = new SharedArrayBuffer(BUMP_REGION_BYTES * threads);
      prefaultBuffer(buffer);
      return { source: { kind: 'bump', buffer, regionBytes: BUMP_REGION_BYTES }, footprintBase: null, footprintEnd: null, heap: null };
    }
    case 'system':
      return { source: { kind: 'system' }, footprintBase: null, footprintEnd: null, heap: null };
    case 'native':
      throw new Error('the native baseline runs as its own program, not on a source');
  }
}

/**
 * Opens thread `threadIndex`'s allocator over `source`. The creator passes its own heap
 * handle as `creatorHeap` to run in the calling thread without attaching a second time.
 * @throws AllocError from `GlobalAllocator.attach` when the heap cannot be attached
 */
export async function openThreadAllocator(source: AllocatorSource, threadIndex: number, creatorHeap: GlobalAllocator | null = null): Promise<ThreadAllocator> {
  switch (source.kind) {
    case 'heaplab': {
      const trace = source.traceLog === undefined ? {} : { trace: TraceRecorder.over(source.traceLog) };
      const heap = creatorHeap ?? (await GlobalAllocator.attach(source.buffer, trace));
      // The creator detaches when the run is finished, after its figures and check.
      const release = creatorHeap === null ? () => heap.detach() : () => undefined;
      return { allocator: heap, memory: loopMemory(heap.buffer), release };
    }
    case 'thing': {
      const pool = openThingPool(source.buffer);
      const allocator = source.locked ? new LockedThingPool(pool, source.buffer, threadIndex + 1) : pool;
      return { allocator, memory: loopMemory(source.buffer), release: () => undefined };
    }
    case 'bump': {
      const start = threadIndex * source.regionBytes;
      const allocator = new BumpAllocator(start, start + source.regionBytes);
      return { allocator, memory: loopMemory(source.buffer), release: () => undefined };
    }
    case 'system':
      return { allocator: null, memory: null, release: () => undefined };
  }
}

/** Touches every page so the operating system commits the buffer before timing. */
function prefaultBuffer(buffer: SharedArrayBuffer): void {
  const u8 = new Uint8Array(buffer);
  for (let at = 0; at < u8.length; at += PAGE_SIZE) u8[at] = 0;
}
