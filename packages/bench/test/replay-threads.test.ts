import { readFileSync } from 'node:fs';

import { MiB, parseTrace, registerBackend, registeredBackends } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { discoverBackends } from '../src/contenders/backends.js';
import { END_OF_TRACE_OP, replayTrace } from '../src/replay/replay-engine.js';
import { describeFailure } from '../src/replay/replay-table.js';
import { SCRIBBLING_BACKEND, scribblingBackend } from './fixtures/scribbling-backend.js';

await discoverBackends();
const backends = registeredBackends().map((descriptor) => descriptor.name);
registerBackend(scribblingBackend);

const trace = parseTrace(readFileSync(new URL('./fixtures/traces/3-two-threads.jsonl', import.meta.url), 'utf8'), '3-two-threads.jsonl');

describe('replayTrace on two threads', () => {
  it('the fixture has cross-thread frees and reallocs (else this file tests nothing)', () => {
    const madeBy = new Map<number, number>();
    let remote = 0;
    for (const request of trace.requests) {
      if (request.op === 'a') madeBy.set(request.id, request.thread);
      else if (madeBy.get(request.id) !== request.thread) remote++;
    }
    expect(trace.threads).toBe(2);
    expect(remote).toBeGreaterThan(100);
  });

  // Each backend's validity pass and one timed pass: four workers from source, about two seconds.
  it.each(backends)('%s: two workers replay it in order, every block checked, and it is valid', async (backend) => {
    const result = await replayTrace(trace, { name: backend, options: {} }, { heapBytes: 16 * MiB, repeat: 1 });
    expect(result.failure, result.failure === null ? '' : describeFailure(result.failure)).toBeNull();
    expect(result.threads).toBe(2);
    expect(result.utilization).toBeGreaterThan(0);
    expect(result.utilization).toBeLessThanOrEqual(1);
    expect(result.seconds).toBeGreaterThan(0);
    expect(result.cpuSeconds).toBeGreaterThan(0);
  });

  it("a block one thread's backend wrote into is caught by the signature when the other thread frees it", async () => {
    const scribbled = parseTrace(
      [
        { trace: 'heaplab', version: 1, ids: 2, requests: 4, threads: 2, heapBytes: 0 },
        { op: 'a', id: 0, bytes: 64, thread: 1 },
        // Thread 1's second allocation writes into id 0's block.
        { op: 'a', id: 1, bytes: 64, thread: 1 },
        // Freeing id 1 first makes thread 0 wait for that allocation: requests on different
        // ids are not ordered, and a free of id 0 could otherwise come before the write.
        { op: 'f', id: 1, thread: 0 },
        { op: 'f', id: 0, thread: 0 },
      ]
        .map((line) => JSON.stringify(line))
        .join('\n'),
    );
    // Without core's thread cache: with it, thread 1's allocations are a refill's batch and
    // the backend writes into a block the cache holds; detaching thread 1 leaves that bin
    // allocated, and the end-of-trace checks find the blocks nobody holds.
    const result = await replayTrace(scribbled, { name: SCRIBBLING_BACKEND, options: { tcache: false } }, { heapBytes: 4 * MiB, repeat: 1 });
    expect(result.failure).toMatchObject({
      index: 3,
      op: 'f',
      id: 0,
      thread: 0,
      message: expect.stringMatching(/id 0's block 0x[0-9a-f]+ was overwritten at byte 0 of 64 \(before its free\)/),
    });
    const cached = await replayTrace(scribbled, { name: SCRIBBLING_BACKEND, options: {} }, { heapBytes: 4 * MiB, repeat: 1 });
    expect(cached.valid).toBe(false);
    expect(cached.failure).toMatchObject({
      op: END_OF_TRACE_OP,
      message: expect.stringMatching(/the walk shows \d+ live regions; the trace left 0 blocks live/),
    });
  });

  it('a heap too small for the trace is invalid on the thread that ran out, not a hang', async () => {
    // Each thread asks for more than half of a 4 MiB heap: whichever comes second gets 0.
    const big = parseTrace(
      [
        { trace: 'heaplab', version: 1, ids: 2, requests: 2, threads: 2, heapBytes: 0 },
        { op: 'a', id: 0, bytes: 3 * MiB, thread: 0 },
        { op: 'a', id: 1, bytes: 3 * MiB, thread: 1 },
      ]
        .map((line) => JSON.stringify(line))
        .join('\n'),
    );
    const result = await replayTrace(big, { name: 'tlsf', options: {} }, { heapBytes: 4 * MiB, repeat: 1 });
    expect(result.valid).toBe(false);
    expect(result.failure).toMatchObject({ op: 'a', message: expect.stringMatching(/ran out of memory/) });
  });
});
