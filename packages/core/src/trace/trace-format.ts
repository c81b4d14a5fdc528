/**
 * Allocation traces: what a program asked of its allocator, request by request, so that any
 * backend can be made to answer the same requests again (`heaplab replay`).
 *
 * Two spellings of one model:
 *
 * - **text**, the format of CS:APP's malloc lab driver, so its tools and traces read here and
 *   ours read there. A four-line header, then one request per line:
 *
 *       20000        suggested heap bytes (a hint; heaplab sizes its own heaps)
 *       3            ids: every request names an id in 0 .. ids-1
 *       8            requests that follow
 *       1            weight (kept, unused, as in the driver)
 *       a 0 512      ptr[0] = malloc(512)
 *       r 0 640      ptr[0] = realloc(ptr[0], 640)
 *       f 0          free(ptr[0])
 *
 * - **JSON lines**, a superset for what the text cannot say: which thread made a request,
 *   an alignment, a zeroed allocation (calloc). The first line is the header object, each
 *   further line one request:
 *
 *       {"trace":"heaplab","version":1,"ids":3,"requests":8,"threads":2,"heapBytes":20000,"weight":1,"description":"…"}
 *       {"op":"a","id":0,"bytes":512,"thread":0,"align":64}
 *       {"op":"c","id":1,"bytes":100,"thread":1}
 *       {"op":"r","id":0,"bytes":640,"thread":0}
 *       {"op":"f","id":1,"thread":0}
 *
 *   `thread` defaults to 0, `align` to the heap's minimum alignment. `c` is `a` with the
 *   block's bytes zeroed (calloc of `bytes` bytes).
 *
 * Order is meaning: the requests are in one global order that really happened (or could
 * have), so a request on an id always comes after the request that made the id's block
 * live, even when the two came from different threads. Replay keeps that order per id and
 * lets threads run freely otherwise.
 *
 * Lines starting with `#` and blank lines are skipped in both spellings (the driver's own
 * traces have none; ours use them for a description in the text spelling).
 */

import { AllocError } from '../errors.js';
import { isPowerOfTwo, MAX_ALIGN } from '../sizes.js';
import { MAX_HEAP_BYTES } from '../memory/shared-heap.js';

/** One request. `thread` is the recording's thread number, 0 .. threads-1. */
export type TraceRequest =
  /** malloc (`zero` false) or calloc (`zero` true) of `bytes`, aligned to `align` (0: default). */
  | { op: 'a'; id: number; bytes: number; thread: number; align: number; zero: boolean }
  /** realloc of the id's block to `bytes`. */
  | { op: 'r'; id: number; bytes: number; thread: number }
  /** free of the id's block. */
  | { op: 'f'; id: number; thread: number };

/** A whole trace, as read from either spelling. */
export interface Trace {
  /** Distinct ids: every request's id is below this. */
  ids: number;
  /** Threads that made requests: every request's thread is below this. */
  threads: number;
  /** The recording's suggested heap size in bytes (a hint). */
  heapBytes: number;
  /** CS:APP's weight line, kept so a trace written back is the same trace. */
  weight: number;
  /** One line saying what the trace is (empty when none was given). */
  description: string;
  requests: TraceRequest[];
}

/** The spellings. */
export type TraceSpelling = 'text' | 'jsonl';

/** The largest thread number a trace may use (heaps have at most this many thread slots). */
export const MAX_TRACE_THREADS = 256;
/**
 * The largest size a request may name: the largest heap's arena (`MAX_HEAP_BYTES`, 8 MiB
 * short of 4 GiB), the most any block a recorder can see may hold. (It was 1 GiB, which
 * refused to read back the trace of a program that had allocated more at once.)
 */
export const MAX_TRACE_BYTES = MAX_HEAP_BYTES;
/** The most ids a trace may declare. */
export const MAX_TRACE_IDS = 2 ** 26;

/** The header object of the JSON-lines spelling. */
interface JsonHeader {
  trace: 'heaplab';
  version: 1;
  ids: number;
  requests: number;
  threads: number;
  heapBytes: number;
  weight: number;
  description?: string;
}

/** The spelling of `text`: JSON lines when its first meaningful character opens an object. */
export function traceSpellingOf(text: string): TraceSpelling {
  for (const line of text.split('\n')) {
    const trimmed = line.trim();
    if (trimmed === '' || trimmed.startsWith('#')) continue;
    return trimmed.startsWith('{') ? 'jsonl' : 'text';
  }
  return 'text';
}

/**
 * Reads a trace in either spelling (found by `traceSpellingOf`) and checks it with
 * `checkTrace`.
 * @param source names the trace in error messages (a file name)
 * @throws AllocError `InvalidParam` naming the source, the line and what is wrong with it
 */
export function parseTrace(text: string, source = 'trace'): Trace {
  const lines = meaningfulLines(text);
  const json = traceSpellingOf(text) === 'jsonl';
  const trace = json ? parseJsonLines(lines, source) : parseText(lines, source);
  // The requests' own lines, after the header (one JSON line, or four text lines).
  checkTrace(
    trace,
    source,
    lines.slice(json ? 1 : 4).map((line) => line.number),
  );
  return trace;
}

interface NumberedLine {
  number: number;
  text: string;
}

function meaningfulLines(text: string): NumberedLine[] {
  const lines: NumberedLine[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.trim();
    if (line !== '' && !line.startsWith('#')) lines.push({ number: index + 1, text: line });
  });
  return lines;
}

function refuse(source: string, line: number | undefined, message: string): never {
  throw new AllocError('InvalidParam', `${source}${line === undefined ? '' : `:${line}`}: ${message}`);
}

/** A whole, non-negative number no larger than `max`, or a refusal naming `what`. */
function count(value: unknown, what: string, max: number, source: string, line: number | undefined): number {
  const number = typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 0 || number > max) {
    refuse(source, line, `${what} must be a whole number from 0 to ${max}, not ${JSON.stringify(value)}`);
  }
  return number;
}

function parseText(lines: NumberedLine[], source: string): Trace {
  if (lines.length < 4) refuse(source, undefined, 'a trace starts with four header lines: heap bytes, ids, requests, weight');
  const header = lines.slice(0, 4).map((line, at) => {
    const what = ['the suggested heap size', 'the number of ids', 'the number of requests', 'the weight'][at]!;
    return count(line.text, what, at === 1 ? MAX_TRACE_IDS : Number.MAX_SAFE_INTEGER, source, line.number);
  });
  const [heapBytes, ids, requestCount, weight] = header as [number, number, number, number];
  const requests = lines.slice(4).map(({ number, text }): TraceRequest => {
    const fields = text.split(/\s+/);
    const op = fields[0];
    if (op === 'a' || op === 'r') {
      if (fields.length !== 3) refuse(source, number, `'${op}' takes an id and a size: '${op} <id> <bytes>', not '${text}'`);
      const id = count(fields[1], 'an id', MAX_TRACE_IDS, source, number);
      const bytes = count(fields[2], 'a size', MAX_TRACE_BYTES, source, number);
      return op === 'a' ? { op, id, bytes, thread: 0, align: 0, zero: false } : { op, id, bytes, thread: 0 };
    }
    if (op === 'f') {
      if (fields.length !== 2) refuse(source, number, `'f' takes an id: 'f <id>', not '${text}'`);
      return { op, id: count(fields[1], 'an id', MAX_TRACE_IDS, source, number), thread: 0 };
    }
    return refuse(
      source,
      number,
      `a request is 'a <id> <bytes>', 'r <id> <bytes>' or 'f <id>', not '${text}' (threads, alignment and calloc need the JSON-lines spelling)`,
    );
  });
  if (requests.length !== requestCount) {
    refuse(source, undefined, `the header announces ${requestCount} requests and ${requests.length} follow`);
  }
  return { ids, threads: 1, heapBytes, weight, description: '', requests };
}

function parseJsonLines(lines: NumberedLine[], source: string): Trace {
  const objects = lines.map(({ number, text }) => {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (error) {
      refuse(source, number, `not JSON: ${(error as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) refuse(source, number, 'each line is one JSON object');
    return value as Record<string, unknown>;
  });
  const header = objects[0];
  const headerLine = lines[0]?.number;
  if (header === undefined || header.trace !== 'heaplab') {
    refuse(source, headerLine, 'the first line of a JSON-lines trace is its header: {"trace":"heaplab","version":1,...}');
  }
  if (header.version !== 1) refuse(source, headerLine, `this heaplab reads trace version 1, not ${JSON.stringify(header.version)}`);
  const ids = count(header.ids, 'ids', MAX_TRACE_IDS, source, headerLine);
  const threads = count(header.threads ?? 1, 'threads', MAX_TRACE_THREADS, source, headerLine);
  const requestCount = count(header.requests, 'requests', Number.MAX_SAFE_INTEGER, source, headerLine);
  const heapBytes = count(header.heapBytes ?? 0, 'heapBytes', Number.MAX_SAFE_INTEGER, source, headerLine);
  const weight = count(header.weight ?? 1, 'weight', Number.MAX_SAFE_INTEGER, source, headerLine);
  const description = header.description ?? '';
  if (typeof description !== 'string') refuse(source, headerLine, 'description must be a string');
  const requests = objects.slice(1).map((object, at): TraceRequest => {
    const line = lines[at + 1]!.number;
    const id = count(object.id, 'id', MAX_TRACE_IDS, source, line);
    const thread = count(object.thread ?? 0, 'thread', MAX_TRACE_THREADS - 1, source, line);
    switch (object.op) {
      case 'a':
      case 'c': {
        const align = count(object.align ?? 0, 'align', MAX_ALIGN, source, line);
        if (align !== 0 && !isPowerOfTwo(align)) refuse(source, line, `align must be a power of two, not ${align}`);
        return { op: 'a', id, bytes: count(object.bytes, 'bytes', MAX_TRACE_BYTES, source, line), thread, align, zero: object.op === 'c' };
      }
      case 'r':
        return { op: 'r', id, bytes: count(object.bytes, 'bytes', MAX_TRACE_BYTES, source, line), thread };
      case 'f':
        return { op: 'f', id, thread };
      default:
        return refuse(source, line, `op must be "a", "c", "r" or "f", not ${JSON.stringify(object.op)}`);
    }
  });
  if (requests.length !== requestCount) {
    refuse(source, undefined, `the header announces ${requestCount} requests and ${requests.length} follow`);
  }
  return { ids, threads, heapBytes, weight, description, requests };
}

/**
 * Checks what the grammar cannot: every id below `ids`, every thread below `threads`, and
 * each id's requests in a possible order (an `a` only on an id that is not live, an `r` or
 * `f` only on one that is). A trace may end with blocks still live (as the driver's
 * unbalanced traces do).
 * @param lineNumbers each request's line in the source, for messages (optional)
 * @throws AllocError `InvalidParam` naming the request
 */
export function checkTrace(trace: Trace, source = 'trace', lineNumbers: readonly number[] = []): void {
  const live = new Uint8Array(trace.ids);
  trace.requests.forEach((request, at) => {
    const line = lineNumbers[at];
    const where = line === undefined ? `request ${at + 1}` : undefined;
    const fail = (message: string): never => refuse(source, line, where === undefined ? message : `${where}: ${message}`);
    if (request.id >= trace.ids) fail(`id ${request.id} is not below the header's ${trace.ids} ids`);
    if (request.thread >= trace.threads) fail(`thread ${request.thread} is not below the header's ${trace.threads} threads`);
    if (request.op === 'a') {
      if (live[request.id] === 1) fail(`id ${request.id} is allocated again while its block is live`);
      live[request.id] = 1;
    } else {
      if (live[request.id] === 0) fail(`'${request.op}' of id ${request.id}, which has no live block`);
      if (request.op === 'f') live[request.id] = 0;
    }
  });
}

/** What a trace asks for, found by running it in its own order (no allocator involved). */
export interface TraceFigures {
  requests: number;
  allocs: number;
  reallocs: number;
  frees: number;
  /** The most payload bytes live at once, in the trace's order: utilization's numerator. */
  peakPayloadBytes: number;
  /** Blocks still live when the trace ends. */
  liveAtEnd: number;
  /** Requests per thread. */
  perThread: number[];
}

/** Counts `trace`'s requests and its peak live payload. */
export function traceFigures(trace: Trace): TraceFigures {
  const sizes = new Float64Array(trace.ids);
  const live = new Uint8Array(trace.ids);
  const perThread = new Array<number>(trace.threads).fill(0);
  let payload = 0;
  let peak = 0;
  let liveBlocks = 0;
  const figures = { allocs: 0, reallocs: 0, frees: 0 };
  for (const request of trace.requests) {
    perThread[request.thread]! += 1;
    if (request.op === 'a') {
      figures.allocs++;
      live[request.id] = 1;
      liveBlocks++;
      sizes[request.id] = request.bytes;
      payload += request.bytes;
    } else if (request.op === 'r') {
      figures.reallocs++;
      payload += request.bytes - sizes[request.id]!;
      sizes[request.id] = request.bytes;
    } else {
      figures.frees++;
      live[request.id] = 0;
      liveBlocks--;
      payload -= sizes[request.id]!;
    }
    if (payload > peak) peak = payload;
  }
  return { requests: trace.requests.length, ...figures, peakPayloadBytes: peak, liveAtEnd: liveBlocks, perThread };
}

/** Whether `trace` can be written in the text spelling: one thread, no alignment, no calloc. */
export function fitsTextSpelling(trace: Trace): boolean {
  return trace.threads <= 1 && trace.requests.every((request) => request.op !== 'a' || (request.align === 0 && !request.zero));
}

/**
 * Writes `trace` in `spelling`. The text spelling carries the description as `#` lines
 * before the header (the driver does not read them; heaplab skips them).
 * @throws AllocError `InvalidParam` when the text spelling cannot say what the trace holds
 */
export function formatTrace(trace: Trace, spelling: TraceSpelling): string {
  if (spelling === 'text') {
    if (!fitsTextSpelling(trace)) {
      throw new AllocError('InvalidParam', 'this trace has several threads, alignments or callocs, which only the JSON-lines spelling can hold');
    }
    const comment = trace.description === '' ? [] : trace.description.split('\n').map((line) => `# ${line}`);
    const requests = trace.requests.map((request) => (request.op === 'f' ? `f ${request.id}` : `${request.op} ${request.id} ${request.bytes}`));
    return `${[...comment, trace.heapBytes, trace.ids, trace.requests.length, trace.weight, ...requests].join('\n')}\n`;
  }
  const header: JsonHeader = {
    trace: 'heaplab',
    version: 1,
    ids: trace.ids,
    requests: trace.requests.length,
    threads: trace.threads,
    heapBytes: trace.heapBytes,
    weight: trace.weight,
    ...(trace.description === '' ? {} : { description: trace.description }),
  };
  const lines = trace.requests.map((request) => {
    if (request.op === 'f') return JSON.stringify({ op: 'f', id: request.id, thread: request.thread });
    if (request.op === 'r') return JSON.stringify({ op: 'r', id: request.id, bytes: request.bytes, thread: request.thread });
    return JSON.stringify({
      op: request.zero ? 'c' : 'a',
      id: request.id,
      bytes: request.bytes,
      thread: request.thread,
      ...(request.align === 0 ? {} : { align: request.align }),
    });
  });
  return `${[JSON.stringify(header), ...lines].join('\n')}\n`;
}
