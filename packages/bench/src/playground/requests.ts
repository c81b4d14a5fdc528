/**
 * A trace laid out in shared memory for playing, and the loop that performs a stretch of it
 * on one thread's heap handle. The page and every web worker of a heap read the same
 * buffers: the requests (`REQUEST_WORDS` words each, in the trace's one global order) and
 * the id table (each id's block address and the heap thread that allocated it). A worker
 * that frees an id reads the address the page's handle got, so its free is a real remote
 * free, counted as one when the allocating thread differs.
 */

import { type GlobalAllocator, MIN_ALIGN, type Trace } from '@heaplab/core';

import {
  OP_CALLOC,
  OP_FREE,
  OP_MALLOC,
  OP_REALLOC,
  REQUEST_ALIGN,
  REQUEST_BYTES,
  REQUEST_ID,
  REQUEST_OP,
  writeRequestWords,
} from '../replay/replay-requests.js';
import { zeroedBlock } from '../replay/replay-thread.js';

// --- one request: REQUEST_WORDS Int32 words --------------------------------------------------
// Words 0-3 are replay's (replay-requests.ts: operation, id, bytes, alignment), written by
// its `writeRequestWords`: one encoding of a trace's requests. Then the playground's own:

/** The trace's thread that makes the request: 0 is the page, n the page's n-th worker. */
const REQUEST_THREAD = 4;
export const REQUEST_WORDS = 5;

// --- one id: ID_WORDS Float64 words (addresses reach past 2^31) -------------------------------

/** The id's block address, 0 when it has none (never allocated, freed, or refused). */
const ID_ADDRESS = 0;
/** The heap thread id (1-based) of the handle that allocated the block. */
const ID_OWNER = 1;
const ID_WORDS = 2;

/** The shared buffers of one play of a trace on one heap. */
export interface PlayBuffers {
  requests: SharedArrayBuffer;
  ids: SharedArrayBuffer;
}

/** What performing some requests did. */
export interface StretchOutcome {
  /** Allocations and reallocs that got 0 (the heap had no room). */
  failed: number;
  /** Frees (and reallocs) of blocks another thread allocated. */
  remoteFrees: number;
}

/** Packs `trace` into fresh shared buffers (an empty id table). */
export function packTrace(trace: Trace): PlayBuffers {
  const requests = new SharedArrayBuffer(Math.max(1, trace.requests.length) * REQUEST_WORDS * 4);
  const words = new Int32Array(requests);
  trace.requests.forEach((request, index) => {
    const at = index * REQUEST_WORDS;
    writeRequestWords(words, at, request);
    words[at + REQUEST_THREAD] = request.thread;
  });
  return { requests, ids: new SharedArrayBuffer(Math.max(1, trace.ids) * ID_WORDS * 8) };
}

/** The trace thread of request `index`. */
export function threadOfRequest(buffers: PlayBuffers, index: number): number {
  return new Int32Array(buffers.requests)[index * REQUEST_WORDS + REQUEST_THREAD]!;
}

/** The end of the run of requests from `from` (below `to`) that one thread makes in a row. */
export function endOfThreadRun(buffers: PlayBuffers, from: number, to: number): number {
  const words = new Int32Array(buffers.requests);
  const thread = words[from * REQUEST_WORDS + REQUEST_THREAD];
  let end = from + 1;
  while (end < to && words[end * REQUEST_WORDS + REQUEST_THREAD] === thread) end++;
  return end;
}

/** An allocation of `bytes` at `align` (at least `MIN_ALIGN`), zeroed for a calloc; 0 when nothing fits. */
function allocate(heap: GlobalAllocator, op: number, bytes: number, align: number): number {
  if (op === OP_CALLOC) return zeroedBlock(heap, bytes, align);
  return align === MIN_ALIGN ? heap.malloc(bytes) : heap.alignedAlloc(align, bytes);
}

/**
 * Performs requests `[from, to)` on `heap`, the calling thread's handle. Every one of them
 * must be this thread's (the caller splits a stretch at thread changes).
 */
export function performRequests(heap: GlobalAllocator, buffers: PlayBuffers, from: number, to: number): StretchOutcome {
  const words = new Int32Array(buffers.requests);
  const ids = new Float64Array(buffers.ids);
  const outcome: StretchOutcome = { failed: 0, remoteFrees: 0 };
  for (let index = from; index < to; index++) {
    const at = index * REQUEST_WORDS;
    const op = words[at + REQUEST_OP]!;
    const slot = words[at + REQUEST_ID]! * ID_WORDS;
    const bytes = words[at + REQUEST_BYTES]!;
    const address = ids[slot + ID_ADDRESS]!;
    if (address !== 0 && op !== OP_MALLOC && op !== OP_CALLOC && ids[slot + ID_OWNER] !== heap.threadId) outcome.remoteFrees += 1;
    if (op === OP_FREE) {
      if (address !== 0) heap.free(address);
      ids[slot + ID_ADDRESS] = 0;
      continue;
    }
    // A realloc of an id whose allocation was refused is the allocation again, as realloc(0, n).
    const result = op === OP_REALLOC ? heap.realloc(address, bytes) : allocate(heap, op, bytes, words[at + REQUEST_ALIGN]!);
    if (result === 0) {
      // On a refused realloc the old block stays the id's.
      if (bytes > 0) outcome.failed += 1;
      if (op !== OP_REALLOC) ids[slot + ID_ADDRESS] = 0;
      continue;
    }
    // A block realloc left in place is still its first allocator's (the heap thinks so too);
    // a moved one is this thread's.
    if (result !== address) ids[slot + ID_OWNER] = heap.threadId;
    ids[slot + ID_ADDRESS] = result;
  }
  return outcome;
}
