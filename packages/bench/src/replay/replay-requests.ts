/**
 * A trace's requests packed for replay: one `Int32Array` per thread, a fixed number of words
 * per request, so a worker gets its share as one copied buffer and the replay loop reads
 * numbers rather than objects. Each request also carries its *ordinal*: how many requests
 * on the same id come before it in the trace's order, which is what the order table
 * (order-table.ts) waits on when threads replay at once.
 */

import { MIN_ALIGN, type Trace, type TraceRequest } from '@heaplab/core';

// The operation word of a packed request.
export const OP_MALLOC = 0;
export const OP_CALLOC = 1;
export const OP_REALLOC = 2;
export const OP_FREE = 3;

/** How each operation is spelled in messages, by its number: the trace's own letters. */
export const OP_LETTERS: readonly string[] = ['a', 'c', 'r', 'f'];

// --- one packed request: REQUEST_WORDS words ---------------------------------------------

/** `OP_MALLOC`, `OP_CALLOC`, `OP_REALLOC` or `OP_FREE`. */
export const REQUEST_OP = 0;
/** The id the request names. */
export const REQUEST_ID = 1;
/** Bytes asked for (0 for a free). */
export const REQUEST_BYTES = 2;
/** The alignment to check the block against: the request's own, or `MIN_ALIGN`. */
export const REQUEST_ALIGN = 3;
/** Requests on the same id before this one, in the trace's order. */
export const REQUEST_ORDINAL = 4;
/** The request's place in the whole trace, 0-based: failures name it. */
export const REQUEST_INDEX = 5;
export const REQUEST_WORDS = 6;

/**
 * Each thread's requests, packed, in the trace's order.
 * @returns one array per thread of `trace` (a thread without requests gets an empty one)
 */
export function packRequests(trace: Trace): Int32Array[] {
  const perThread = new Array<number>(trace.threads).fill(0);
  for (const request of trace.requests) perThread[request.thread]! += 1;
  const packed = perThread.map((count) => new Int32Array(count * REQUEST_WORDS));
  const filled = new Array<number>(trace.threads).fill(0);
  // The trace's ids are dense (below `ids`), so a typed array counts each id's requests.
  const ordinals = new Int32Array(trace.ids);
  trace.requests.forEach((request, index) => {
    const words = packed[request.thread]!;
    const at = filled[request.thread]! * REQUEST_WORDS;
    filled[request.thread]! += 1;
    words[at + REQUEST_ORDINAL] = ordinals[request.id]!;
    ordinals[request.id]! += 1;
    words[at + REQUEST_INDEX] = index;
    writeRequestWords(words, at, request);
  });
  return packed;
}

/**
 * Writes the words every packed request starts with: operation, id, bytes and alignment (at
 * least `MIN_ALIGN`). The playground's shared requests (playground/requests.ts) start with
 * the same four.
 */
export function writeRequestWords(words: Int32Array, at: number, request: TraceRequest): void {
  words[at + REQUEST_ID] = request.id;
  words[at + REQUEST_ALIGN] = MIN_ALIGN;
  words[at + REQUEST_BYTES] = 0;
  if (request.op === 'a') {
    words[at + REQUEST_OP] = request.zero ? OP_CALLOC : OP_MALLOC;
    words[at + REQUEST_BYTES] = request.bytes;
    words[at + REQUEST_ALIGN] = Math.max(request.align, MIN_ALIGN);
  } else if (request.op === 'r') {
    words[at + REQUEST_OP] = OP_REALLOC;
    words[at + REQUEST_BYTES] = request.bytes;
  } else {
    words[at + REQUEST_OP] = OP_FREE;
  }
}

/** A request named as failures name it: `request 12 (r, id 3, thread 1)`, 1-based as the trace's lines are counted. */
export function describeRequest(words: Int32Array, at: number, thread: number): string {
  const op = OP_LETTERS[words[at + REQUEST_OP]!]!;
  return `request ${words[at + REQUEST_INDEX]! + 1} (${op}, id ${words[at + REQUEST_ID]!}, thread ${thread})`;
}
