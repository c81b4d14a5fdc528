import { readFileSync } from 'node:fs';

import { AllocError, basicBackend, type HeapMemory, MiB, parseTrace, registerBackend, registeredBackends, type Trace } from '@heaplab/core';
import type { Backend } from '@heaplab/core/backend';
import { describe, expect, it } from 'vitest';

import { discoverBackends } from '../src/contenders/backends.js';
import { OrderTable, ReplayStopped } from '../src/replay/order-table.js';
import { END_OF_TRACE_OP, replayTrace } from '../src/replay/replay-engine.js';
import { describeFailure } from '../src/replay/replay-table.js';
import { defaultReplayHeapBytes } from '../src/replay/trace-files.js';

await discoverBackends();
const realBackends = registeredBackends().map((descriptor) => descriptor.name);

/**
 * A test-only backend: basic, its instances changed by `wrap` to answer some requests wrongly.
 * Registered in this thread only, so only one-thread traces (replayed in this thread) use it.
 */
function registerBroken(name: string, wrap: (inner: Backend, memory: HeapMemory) => Partial<Backend>): string {
  registerBackend({
    ...basicBackend,
    name,
    summary: `basic, broken on purpose (${name}), for tests`,
    create(context, options) {
      const inner: Backend = basicBackend.create(context, options);
      return Object.assign(Object.create(inner) as Backend, wrap(inner, context.memory));
    },
  });
  return name;
}

/** Ignores alignments: every block is only 8-aligned. */
const IGNORES_ALIGN = registerBroken('ignores-align', (inner) => ({ allocate: (size) => inner.allocate(size, 8) }));
/** Hands out the block before again at its third allocation. */
const HANDS_OUT_TWICE = registerBroken('hands-out-twice', (inner) => {
  let count = 0;
  let last = 0;
  return {
    allocate(size, align) {
      const address = inner.allocate(size, align);
      if (++count !== 3) return (last = address);
      inner.release(address);
      return last;
    },
  };
});
/** Writes a byte into the block it handed out before, as a backend that keeps bookkeeping in a live block. */
const SCRIBBLES = registerBroken('scribbles', (inner, memory) => {
  let last = 0;
  return {
    allocate(size, align) {
      if (last !== 0) memory.u8[last] ^= 0xff;
      last = inner.allocate(size, align);
      return last;
    },
  };
});
/** Its walk shows the first live block as free. */
const HIDES_A_BLOCK = registerBroken('hides-a-block', (inner) => ({
  walk(visit) {
    let hidden = false;
    inner.walk!((region) => {
      if (region.kind === 'live' && !hidden) {
        hidden = true;
        visit({ ...region, kind: 'free' });
      } else visit(region);
    });
  },
}));

const fixture = (name: string): Trace => parseTrace(readFileSync(new URL(`./fixtures/traces/${name}`, import.meta.url), 'utf8'), name);
const text = (lines: string[]): Trace => parseTrace(lines.join('\n'));
const jsonl = (header: object, requests: object[]): Trace =>
  parseTrace(
    [{ trace: 'heaplab', version: 1, requests: requests.length, heapBytes: 0, ...header }, ...requests].map((line) => JSON.stringify(line)).join('\n'),
  );
const replay = (trace: Trace, name: string, heapBytes = 16 * MiB, options: Record<string, unknown> = {}) =>
  replayTrace(trace, { name, options }, { heapBytes, repeat: 1 });
/**
 * The broken backends' own answers, without core's thread cache in front: with it, their
 * allocations are a refill's batch, and what they break is first the cache's blocks.
 */
const BARE = { tcache: false };

describe('replayTrace', () => {
  it.each(realBackends)('%s: the one-thread fixtures (realloc, calloc, aligned requests) are valid, with sane figures', async (backend) => {
    for (const name of ['1-short.rep', '2-mixed.jsonl']) {
      const trace = fixture(name);
      const result = await replay(trace, backend);
      expect(result.failure, `${name}: ${result.failure === null ? '' : describeFailure(result.failure)}`).toBeNull();
      expect(result.valid).toBe(true);
      expect(result.operations).toBe(trace.requests.length);
      expect(result.footprintBytes).toBeGreaterThanOrEqual(result.peakPayloadBytes);
      expect(result.utilization).toBeGreaterThan(0);
      expect(result.utilization).toBeLessThanOrEqual(1);
      expect(result.passes).toHaveLength(1);
      expect(result.seconds).toBeGreaterThan(0);
      expect(result.opsPerSecond).toBeCloseTo(trace.requests.length / result.seconds!, 6);
      expect(result.cpuSeconds).toBeGreaterThanOrEqual(0);
    }
  });

  it('measures the footprint as the highest usable end: one block of 1000 bytes on basic', async () => {
    const result = await replay(text(['0', '1', '1', '1', 'a 0 1000']), 'basic');
    // basic puts its first block right after a header at the arena's start; usable >= 1000.
    expect(result.footprintBytes).toBeGreaterThanOrEqual(1000);
    expect(result.footprintBytes).toBeLessThan(1100);
    expect(result.utilization).toBeCloseTo(1000 / result.footprintBytes!, 12);
    expect(result.peakPayloadBytes).toBe(1000);
  });

  it("counts each arena's footprint from its own slice's start, added up, with the arenas option", async () => {
    // Two threads of a two-arena heap allocate in their own halves: the second thread's
    // blocks lie past the first slice, which it never uses.
    const trace = fixture('3-two-threads.jsonl');
    const one = await replay(trace, 'basic', 16 * MiB);
    const two = await replay(trace, 'basic', 16 * MiB, { arenas: 2 });
    expect(two.failure).toBeNull();
    expect(two.footprintBytes).toBeGreaterThanOrEqual(two.peakPayloadBytes);
    // From the arena's start it would exceed the first slice (over 8 MiB); per slice it is
    // of the order of one heap's.
    expect(two.footprintBytes).toBeLessThan(4 * one.footprintBytes!);
  });

  it('refuses a repeat below 1 with an AllocError', async () => {
    await expect(replayTrace(fixture('1-short.rep'), { name: 'basic', options: {} }, { heapBytes: 16 * MiB, repeat: 0 })).rejects.toThrow(AllocError);
  });

  it('a block the heap cannot give (0: out of memory) makes the trace invalid, naming the request', async () => {
    const result = await replay(text(['0', '2', '2', '1', 'a 0 64', `a 1 ${64 * MiB}`]), 'tlsf');
    expect(result.valid).toBe(false);
    expect(result.failure).toMatchObject({
      index: 1,
      op: 'a',
      id: 1,
      thread: 0,
      message: expect.stringMatching(/ran out of memory: got 0 for 67108864 bytes/),
    });
    expect(describeFailure(result.failure!)).toMatch(/^request 2 \(a, id 1, thread 0\): ran out of memory/);
    expect(result.passes).toEqual([]);
    expect(result.utilization).toBeNull();
  });

  it('a block not aligned as asked is invalid, naming the aligned request', async () => {
    const trace = jsonl({ ids: 2, threads: 1 }, [
      { op: 'a', id: 0, bytes: 24 },
      { op: 'a', id: 1, bytes: 100, align: 4096 },
    ]);
    expect((await replay(trace, 'basic')).valid).toBe(true);
    const result = await replay(trace, IGNORES_ALIGN);
    expect(result.failure).toMatchObject({ index: 1, op: 'a', id: 1, message: expect.stringMatching(/is not aligned to 4096/) });
  });

  it('a block handed out while another live block holds its bytes is invalid: the overlap names both ids', async () => {
    const result = await replay(text(['0', '3', '4', '1', 'a 0 64', 'a 1 64', 'f 0', 'a 2 64']), HANDS_OUT_TWICE, 16 * MiB, BARE);
    expect(result.failure).toMatchObject({ index: 3, op: 'a', id: 2, message: expect.stringMatching(/overlaps id 1's live block/) });
  });

  it("a backend that writes into a live block is caught by the block's signature before its free", async () => {
    const result = await replay(text(['0', '3', '4', '1', 'a 0 64', 'a 1 64', 'a 2 64', 'f 0']), SCRIBBLES, 16 * MiB, BARE);
    expect(result.failure).toMatchObject({
      index: 3,
      op: 'f',
      id: 0,
      message: expect.stringMatching(/id 0's block 0x[0-9a-f]+ was overwritten at byte 0 of 64 \(before its free\)/),
    });
  });

  it('a broken backend behind the thread cache makes the trace invalid, never an error of the replay', async () => {
    for (const [backend, trace] of [
      [HANDS_OUT_TWICE, ['0', '3', '4', '1', 'a 0 64', 'a 1 64', 'f 0', 'a 2 64']],
      [SCRIBBLES, ['0', '3', '4', '1', 'a 0 64', 'a 1 64', 'a 2 64', 'f 0']],
    ] as const) {
      const result = await replay(text([...trace]), backend);
      expect(result.valid, backend).toBe(false);
      expect(result.failure, backend).not.toBeNull();
    }
  });

  it('a walk that does not show a live block fails the end-of-trace check', async () => {
    const result = await replay(text(['0', '2', '2', '1', 'a 0 64', 'a 1 64']), HIDES_A_BLOCK);
    expect(result.failure).toMatchObject({ op: END_OF_TRACE_OP, index: 2, message: expect.stringMatching(/the walk shows no live region at id 0's block/) });
    expect(describeFailure(result.failure!)).toMatch(/^at the end of the trace: /);
  });
});

describe('the order table', () => {
  it('a thread waiting for a request no thread makes gives up after the stall limit, with an error, not a hang', () => {
    const table = OrderTable.create(4, 2, 200);
    const started = performance.now();
    expect(() => table.awaitTurn(2, 1)).toThrow(/waited 0.2 s for the request before it on id 2 while no thread made progress/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(200);
  });

  it('a thread waiting for its turn gives up at once when another thread has failed', () => {
    const table = OrderTable.create(4, 2);
    table.stop();
    expect(() => table.awaitTurn(1, 1)).toThrow(ReplayStopped);
    // A request whose turn has come never waits.
    expect(() => table.awaitTurn(1, 0)).not.toThrow();
  });
});

describe('defaultReplayHeapBytes', () => {
  it('is 4 × the larger of the suggested heap and the peak payload, at least 16 MiB, in 4 MiB steps', () => {
    expect(defaultReplayHeapBytes(text(['20000', '1', '1', '1', 'a 0 100']))).toBe(16 * MiB);
    expect(defaultReplayHeapBytes(text([String(10 * MiB), '1', '1', '1', 'a 0 100']))).toBe(40 * MiB);
    expect(defaultReplayHeapBytes(text(['0', '1', '1', '1', `a 0 ${5 * MiB + 1}`]))).toBe(24 * MiB);
  });
});
