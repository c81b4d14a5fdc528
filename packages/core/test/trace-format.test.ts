import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  AllocError,
  checkTrace,
  formatTrace,
  MAX_HEAP_BYTES,
  MAX_TRACE_BYTES,
  parseTrace,
  type Trace,
  type TraceRequest,
  traceFigures,
  traceSpellingOf,
} from '../src/index.js';

/** The driver's own example from its trace README, in the text spelling. */
const DRIVER_EXAMPLE = ['20000', '3', '8', '1', 'a 0 512', 'a 1 128', 'r 0 640', 'a 2 128', 'f 1', 'r 0 768', 'f 0', 'f 2', ''].join('\n');

function refusal(text: string): string {
  try {
    parseTrace(text, 't.rep');
  } catch (error) {
    expect(error).toBeInstanceOf(AllocError);
    expect((error as AllocError).kind).toBe('InvalidParam');
    return (error as Error).message;
  }
  throw new Error('the trace was accepted');
}

describe('trace format', () => {
  it('reads the CS:APP text spelling and writes it back unchanged', () => {
    const trace = parseTrace(DRIVER_EXAMPLE);
    expect(trace).toMatchObject({ ids: 3, threads: 1, heapBytes: 20000, weight: 1 });
    expect(trace.requests[2]).toEqual({ op: 'r', id: 0, bytes: 640, thread: 0 });
    expect(formatTrace(trace, 'text')).toBe(DRIVER_EXAMPLE);
  });

  it('counts requests and the peak live payload in trace order', () => {
    const figures = traceFigures(parseTrace(DRIVER_EXAMPLE));
    // 512+128 = 640; r 0 640 → 768; +128 → 896; f 1 → 768; r 0 768 → 896; ...
    expect(figures).toMatchObject({ requests: 8, allocs: 3, reallocs: 2, frees: 3, peakPayloadBytes: 896, liveAtEnd: 0 });
  });

  it('reads JSON lines with threads, alignment and calloc, and round-trips them', () => {
    const text = [
      '{"trace":"heaplab","version":1,"ids":2,"requests":4,"threads":2,"heapBytes":0,"weight":1,"description":"two threads"}',
      '{"op":"a","id":0,"bytes":100,"thread":0,"align":64}',
      '{"op":"c","id":1,"bytes":24,"thread":1}',
      '{"op":"f","id":0,"thread":1}',
      '{"op":"r","id":1,"bytes":48,"thread":1}',
    ].join('\n');
    expect(traceSpellingOf(text)).toBe('jsonl');
    const trace = parseTrace(text);
    expect(trace.requests[0]).toEqual({ op: 'a', id: 0, bytes: 100, thread: 0, align: 64, zero: false });
    expect(trace.requests[1]).toEqual({ op: 'a', id: 1, bytes: 24, thread: 1, align: 0, zero: true });
    expect(parseTrace(formatTrace(trace, 'jsonl'))).toEqual(trace);
    expect(() => formatTrace(trace, 'text')).toThrow(/only the JSON-lines spelling/);
  });

  it('refuses malformed traces with the line and the reason', () => {
    expect(refusal('20000\n1\n')).toMatch(/four header lines/);
    expect(refusal('0\n1\n2\n1\na 0 8\n')).toMatch(/announces 2 requests and 1 follow/);
    expect(refusal('0\n1\n1\n1\nx 0 8\n')).toMatch(/^t\.rep:5: a request is/);
    expect(refusal('0\n1\n1\n1\na 0 -8\n')).toMatch(/t\.rep:5: a size must be a whole number/);
    expect(refusal('0\n1\n1\n1\nf 0\n')).toMatch(/t\.rep:5: 'f' of id 0, which has no live block/);
    expect(refusal('0\n1\n2\n1\na 0 8\na 0 8\n')).toMatch(/t\.rep:6: id 0 is allocated again/);
    expect(refusal('0\n1\n1\n1\na 1 8\n')).toMatch(/id 1 is not below the header's 1 ids/);
    expect(refusal('{"trace":"other"}\n')).toMatch(/first line of a JSON-lines trace/);
    expect(refusal('{"trace":"heaplab","version":1,"ids":1,"requests":1,"threads":1}\n{"op":"a","id":0,"bytes":8,"align":3}\n')).toMatch(
      /:2: align must be a power of two/,
    );
    expect(refusal('{"trace":"heaplab","version":1,"ids":1,"requests":1,"threads":1}\n{"op":"a","id":0,"bytes":8,"thread":1}\n')).toMatch(
      /thread 1 is not below the header's 1 threads/,
    );
  });

  it('reads a request as large as the largest heap can hold, and refuses one byte more', () => {
    expect(MAX_TRACE_BYTES).toBe(MAX_HEAP_BYTES);
    const text = (bytes: number): string => `0\n1\n2\n1\na 0 ${bytes}\nf 0\n`;
    expect(parseTrace(text(MAX_TRACE_BYTES)).requests[0]).toMatchObject({ op: 'a', bytes: MAX_TRACE_BYTES });
    expect(refusal(text(MAX_TRACE_BYTES + 1))).toMatch(/t\.rep:5: a size must be a whole number from 0 to/);
    const json = (bytes: number): string =>
      `{"trace":"heaplab","version":1,"ids":1,"requests":2,"threads":1}\n{"op":"c","id":0,"bytes":${bytes}}\n{"op":"r","id":0,"bytes":${bytes}}\n`;
    expect(parseTrace(json(3 * 2 ** 30)).requests[1]).toEqual({ op: 'r', id: 0, bytes: 3 * 2 ** 30, thread: 0 });
    expect(refusal(json(MAX_TRACE_BYTES + 1))).toMatch(/:2: bytes must be a whole number from 0 to/);
  });

  it('round-trips any valid trace through both spellings (fuzzed against a model of live ids)', () => {
    const traces = fc
      .record({
        ids: fc.integer({ min: 1, max: 12 }),
        threads: fc.integer({ min: 1, max: 3 }),
        steps: fc.array(fc.tuple(fc.nat(), fc.nat({ max: 5000 }), fc.nat(), fc.boolean(), fc.constantFrom(0, 16, 256)), { maxLength: 60 }),
      })
      .map(({ ids, threads, steps }): Trace => {
        // The model: which ids are live. Each step picks an id and does what is legal for it.
        const live = new Set<number>();
        const requests: TraceRequest[] = steps.map(([pick, bytes, thread, zero, align]) => {
          const id = pick % ids;
          const by = thread % threads;
          if (!live.has(id)) {
            live.add(id);
            return { op: 'a', id, bytes, thread: by, align, zero };
          }
          if (bytes % 2 === 0) return { op: 'r', id, bytes, thread: by };
          live.delete(id);
          return { op: 'f', id, thread: by };
        });
        return { ids, threads, heapBytes: 0, weight: 1, description: '', requests };
      });
    fc.assert(
      fc.property(traces, (trace) => {
        checkTrace(trace);
        expect(parseTrace(formatTrace(trace, 'jsonl'))).toEqual(trace);
        const single = {
          ...trace,
          threads: 1,
          requests: trace.requests.map((request) => (request.op === 'a' ? { ...request, thread: 0, align: 0, zero: false } : { ...request, thread: 0 })),
        };
        expect(parseTrace(formatTrace(single, 'text'))).toEqual(single);
      }),
    );
  });
});
