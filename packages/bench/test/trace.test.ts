import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type GlobalAllocator, parseTrace, registeredBackends, type Trace, traceFigures } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { madeTraceTable } from '../src/cli/trace-command.js';
import { createBackendHeap, discoverBackends } from '../src/contenders/backends.js';
import { TEXT_WIDTH } from '../src/report/text-table.js';
import { TRACE_SET, traceFileText } from '../src/traces/trace-set.js';
import { heaplabInProcess } from './inspect-helpers.js';
import { widestLine } from './text-width.js';

const setDirectory = new URL('../traces/', import.meta.url);
const committed = (file: string): string => readFileSync(new URL(file, setDirectory), 'utf8');

describe("heaplab's trace set", () => {
  it('holds the files the set lists, at least 12, each small enough to replay on every backend in the suite', () => {
    expect(readdirSync(setDirectory).sort()).toEqual(TRACE_SET.map((entry) => entry.file).sort());
    expect(TRACE_SET.length).toBeGreaterThanOrEqual(12);
    for (const entry of TRACE_SET) {
      const trace = parseTrace(committed(entry.file), entry.file);
      const figures = traceFigures(trace);
      expect(figures.requests, entry.file).toBeLessThan(20_000);
      expect(figures.requests, entry.file).toBeGreaterThan(0);
      expect(figures.peakPayloadBytes, entry.file).toBeLessThan(16 << 20);
      // The text spelling carries the description as a comment line, which the parser skips.
      if (entry.file.endsWith('.jsonl')) expect(trace.description, entry.file).toBe(entry.stresses);
      else expect(committed(entry.file).startsWith(`# ${entry.stresses}\n`), entry.file).toBe(true);
    }
    const threaded = TRACE_SET.filter((entry) => parseTrace(committed(entry.file)).threads === 2).map((entry) => entry.file);
    expect(threaded.sort()).toEqual(['glibc-thread-2.jsonl', 'producer-consumer.jsonl']);
  });

  it('can be answered by every backend on a 64 MiB heap', async () => {
    await discoverBackends();
    const traces = TRACE_SET.map((entry) => ({ file: entry.file, trace: parseTrace(committed(entry.file)) }));
    for (const descriptor of registeredBackends()) {
      for (const { file, trace } of traces) {
        const heap = createBackendHeap({ name: descriptor.name, options: {} }, 64 << 20);
        try {
          answer(heap, trace, file);
        } finally {
          heap.detach();
        }
      }
    }
  }, 20_000);

  it('is what its generators make, byte for byte, and what one-thread recordings record again', async () => {
    for (const entry of TRACE_SET.filter((candidate) => candidate.deterministic)) {
      const { trace, unpublished, unknownAddresses } = await entry.make();
      expect(unpublished + unknownAddresses, entry.file).toBe(0);
      expect(traceFileText(entry.file, trace), entry.file).toBe(committed(entry.file));
    }
  }, 30_000);

  it('has a two-thread recording whose new recording is another valid order of the same calls', async () => {
    const entry = TRACE_SET.find((candidate) => candidate.file === 'glibc-thread-2.jsonl')!;
    expect(entry.deterministic).toBe(false);
    const { trace } = await entry.make();
    const old = parseTrace(committed(entry.file));
    expect(trace.threads).toBe(2);
    // The same calls per thread, whatever order the threads' calls took.
    expect(traceFigures(trace).perThread.sort()).toEqual(traceFigures(old).perThread.sort());
  }, 20_000);
});

/**
 * Runs `trace` on `heap` in its order (threads taken in turn, which the order allows); a
 * request the heap cannot answer fails the test. Not `heaplab replay`: only the set's check.
 */
function answer(heap: GlobalAllocator, trace: Trace, file: string): void {
  const addresses = new Array<number>(trace.ids).fill(0);
  for (const request of trace.requests) {
    if (request.op === 'f') {
      heap.free(addresses[request.id]!);
      continue;
    }
    const address =
      request.op === 'r'
        ? heap.realloc(addresses[request.id]!, request.bytes)
        : request.zero
          ? heap.calloc(1, request.bytes)
          : heap.alignedAlloc(Math.max(8, request.align), request.bytes);
    if (address === 0) throw new Error(`${file}: ${heap.backendName} had no room for ${JSON.stringify(request)}`);
    addresses[request.id] = address;
  }
  heap.check();
}

describe('heaplab trace', () => {
  const directory = mkdtempSync(join(tmpdir(), 'heaplab-trace-'));

  it('records a one-thread workload in the text spelling, the same trace each time', async () => {
    const out = join(directory, 'glibc.rep');
    const result = await heaplabInProcess('trace', 'record', '--workload', 'glibc-thread', '--iterations', '500', '--out', out);
    expect(result.status).toBe(0);
    const trace = parseTrace(readFileSync(out, 'utf8'), out);
    expect(trace.ids).toBe(500);
    expect(result.stderr).toContain(`${trace.requests.length} requests, 500 ids, 1 thread, peak payload ${traceFigures(trace).peakPayloadBytes} bytes`);
    const again = join(directory, 'again.rep');
    await heaplabInProcess('trace', 'record', '--workload', 'glibc-thread', '--iterations', '500', '--out', again, '--backend', 'buddy');
    // Another backend, other addresses: the same requests (the description names the backend).
    expect(parseTrace(readFileSync(again, 'utf8')).requests).toEqual(trace.requests);
  });

  it('records two workers into one JSON-lines trace, and refuses the text spelling for it', async () => {
    const out = join(directory, 'two.jsonl');
    const result = await heaplabInProcess('trace', 'record', '--workload', 'glibc-thread', '-t', '2', '--iterations', '300', '--out', out);
    expect(result.status).toBe(0);
    const trace = parseTrace(readFileSync(out, 'utf8'));
    expect(trace.threads).toBe(2);
    expect(trace.ids).toBe(600);
    const refused = await heaplabInProcess(
      'trace',
      'record',
      '--workload',
      'glibc-thread',
      '--threads',
      '2',
      '--iterations',
      '50',
      '--out',
      join(directory, 'two.rep'),
    );
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/the text spelling holds one thread's requests, not 2 threads'; write the recording to a \.jsonl file/);
    // A one-thread recording whose trace has alignments is refused once its trace is known.
    const aligned = await heaplabInProcess('trace', 'record', '--workload', 'arceos:align', '--iterations', '20', '--out', join(directory, 'align.rep'));
    expect(aligned.status).toBe(1);
    expect(aligned.stderr).toMatch(/alignments or callocs, which the text spelling cannot hold/);
  }, 20_000);

  it('refuses a bad file name, workload or backend, and a log too small, with status 1', async () => {
    const cases: [string[], RegExp][] = [
      [['--workload', 'glibc-thread', '--out', join(directory, 'x.bin')], /must end in \.jsonl/],
      [['--workload', 'nothing', '--out', join(directory, 'x.rep')], /no workload 'nothing'/],
      [['--workload', 'arceos:vec', '--threads', '2', '--out', join(directory, 'x.jsonl')], /no workload 'arceos:vec' runs on 2 threads/],
      [['--workload', 'glibc-thread', '--backend', 'nope', '--out', join(directory, 'x.rep')], /unknown backend 'nope'/],
      [['--workload', 'glibc-thread', '--max-records', '10', '--out', join(directory, 'x.rep')], /more than its 10 records; give a larger --max-records/],
    ];
    for (const [args, message] of cases) {
      const result = await heaplabInProcess('trace', 'record', ...args);
      expect(result.status, args.join(' ')).toBe(1);
      expect(result.stderr, args.join(' ')).toMatch(message);
    }
  });

  it('make writes the set, or the traces named', async () => {
    const out = join(directory, 'set');
    const result = await heaplabInProcess('trace', 'make', '--out', out, '--only', 'short.rep,fragmentation.rep');
    expect(result.status).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['fragmentation.rep', 'short.rep']);
    expect(readFileSync(join(out, 'short.rep'), 'utf8')).toBe(committed('short.rep'));
    expect((await heaplabInProcess('trace', 'make', '--out', out, '--only', 'cs-app.rep')).status).toBe(1);
  });

  it("make prints the traces' figures as a table within TEXT_WIDTH (stderr is no terminal here), a row a trace", async () => {
    const out = join(directory, 'table');
    const result = await heaplabInProcess('trace', 'make', '--out', out, '--only', 'short.rep,producer-consumer.jsonl');
    expect(result.status).toBe(0);
    expect(widestLine(result.stderr)).toBeLessThanOrEqual(TEXT_WIDTH);
    const trace = parseTrace(readFileSync(join(out, 'producer-consumer.jsonl'), 'utf8'));
    const { requests, peakPayloadBytes } = traceFigures(trace);
    expect(result.stderr).toMatch(new RegExp(`^producer-consumer\\.jsonl +${requests} +${trace.ids} +2 +${peakPayloadBytes}$`, 'm'));
    expect(result.stderr).toContain(`wrote 2 traces to ${out}`);
  });

  it("make's table fits 80 columns and a 50-column terminal, every figure kept", () => {
    const made = TRACE_SET.map((entry, n) => ({
      file: entry.file,
      requests: 10_000 + n,
      ids: 5000 + n,
      threads: 1 + (n % 2),
      peakPayloadBytes: 12_345_678 + n,
    }));
    for (const width of [80, 50]) {
      const table = madeTraceTable(made, width);
      expect(widestLine(table), table).toBeLessThanOrEqual(width);
      for (const entry of made) {
        for (const figure of [entry.requests, entry.ids, entry.peakPayloadBytes]) expect(table).toMatch(new RegExp(`\\b${figure}\\b`));
        expect(table).toContain(entry.file);
      }
    }
  });
});
