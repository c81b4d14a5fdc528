import { describe, expect, it } from 'vitest';

import type { TraceReplay } from '../src/replay/replay-engine.js';
import { scoreBackend, throughputOf } from '../src/replay/replay-score.js';

/** A replayed trace with the figures the score reads. */
function replayed(valid: boolean, utilization: number, operations: number, seconds: number): TraceReplay {
  return {
    valid,
    failure: valid ? null : { index: 0, op: 'a', id: 0, thread: 0, message: 'made up' },
    operations,
    threads: 1,
    heapBytes: 16 << 20,
    peakPayloadBytes: 0,
    footprintBytes: valid ? 1 : null,
    utilization: valid ? utilization : null,
    passes: valid ? [{ seconds, cpuSeconds: seconds }] : [],
    seconds: valid ? seconds : null,
    cpuSeconds: valid ? seconds : null,
    opsPerSecond: valid ? operations / seconds : null,
  };
}

describe('the score', () => {
  // U = (0.5 + 0.9) / 2 = 0.7; T = (100 + 300) / (0.01 + 0.03) = 10 000 ops/s.
  const traces = [replayed(true, 0.5, 100, 0.01), replayed(true, 0.9, 300, 0.03)];

  it('T is total operations over total seconds, not the mean of the rates', () => {
    expect(throughputOf(traces)).toEqual({ operations: 400, seconds: 0.04, throughput: 10_000 });
  });

  it('index = 100 × (0.6 U + 0.4 min(1, T / T_ref))', () => {
    // Half the reference's throughput: 42 + 20.
    const half = scoreBackend(traces, 20_000);
    expect(half.utilization).toBeCloseTo(0.7, 12);
    expect(half.throughputRatio).toBeCloseTo(0.5, 12);
    expect(half.utilizationPoints).toBeCloseTo(42, 10);
    expect(half.throughputPoints).toBeCloseTo(20, 10);
    expect(half.index).toBeCloseTo(62, 10);
    // Faster than the reference: throughput counts full marks, no more.
    const faster = scoreBackend(traces, 5_000);
    expect(faster.throughputRatio).toBe(1);
    expect(faster.index).toBeCloseTo(82, 10);
  });

  it('is 0 when any trace is invalid; U and T still come from the valid ones', () => {
    const score = scoreBackend([...traces, replayed(false, 0, 50, 0)], 20_000);
    expect(score).toMatchObject({ traces: 3, validTraces: 2, operations: 400, throughput: 10_000, index: 0, utilizationPoints: 0, throughputPoints: 0 });
    expect(score.utilization).toBeCloseTo(0.7, 12);
  });

  it('counts no throughput points without a reference throughput', () => {
    const score = scoreBackend(traces, null);
    expect(score.throughputRatio).toBeNull();
    expect(score.index).toBeCloseTo(42, 10);
  });
});
