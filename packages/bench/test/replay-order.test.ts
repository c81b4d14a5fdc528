/**
 * The validity pass of a multi-thread trace follows the trace's global order, so its
 * footprint is the trace's own interleaving's: the same on every run, and consistent with
 * the peak live payload it is divided into. Free-running threads (the old validity pass)
 * let the producer run far ahead of the consumer, and utilization fell to a few percent.
 */

import { readFileSync } from 'node:fs';

import { MiB, parseTrace } from '@heaplab/core';
import { describe, expect, it } from 'vitest';

import { discoverBackends } from '../src/contenders/backends.js';
import { replayTrace } from '../src/replay/replay-engine.js';
import { describeFailure } from '../src/replay/replay-table.js';

await discoverBackends();

const readTrace = (path: string, name: string) => parseTrace(readFileSync(new URL(path, import.meta.url), 'utf8'), name);

describe('the validity pass of several threads, in the trace order', () => {
  // producer-consumer.jsonl: free-running, how far the producer got ahead changed every run.
  it('gives the same footprint on two runs of a two-thread trace', async () => {
    const trace = readTrace('../traces/producer-consumer.jsonl', 'producer-consumer.jsonl');
    expect(trace.threads).toBe(2);
    const tlsf = { name: 'tlsf', options: {} };
    const first = await replayTrace(trace, tlsf, { heapBytes: 16 * MiB, repeat: 1 });
    const second = await replayTrace(trace, tlsf, { heapBytes: 16 * MiB, repeat: 1 });
    expect(first.failure, first.failure === null ? '' : describeFailure(first.failure)).toBeNull();
    expect(first.footprintBytes).toBeGreaterThan(0);
    expect(second.footprintBytes).toBe(first.footprintBytes);
  });

  it("producer-consumer.jsonl's utilization on tlsf is above 50 % (free-running threads gave about 6 %)", async () => {
    const trace = readTrace('../traces/producer-consumer.jsonl', 'producer-consumer.jsonl');
    expect(trace.threads).toBe(2);
    // tlsf alone (about 90 %): this is about the order the pass keeps. With core's thread
    // cache the producer's bins hold the refills' spare blocks, which no free of the consumer
    // ever returns (remote frees go to tlsf), and the figure was about 20 %.
    const result = await replayTrace(trace, { name: 'tlsf', options: { tcache: false } }, { heapBytes: 16 * MiB, repeat: 1 });
    expect(result.failure, result.failure === null ? '' : describeFailure(result.failure)).toBeNull();
    expect(result.utilization).toBeGreaterThan(0.5);
  });
});
