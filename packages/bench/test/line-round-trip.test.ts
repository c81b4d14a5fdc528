/**
 * A cache line's round trip between two threads' cores (run/line-round-trip.ts): it is
 * measured, glibc-thread records it around each multi-thread row, and the summary names the
 * rows measured while it was long. Figures are only checked to be figures: how long a round
 * trip takes is the machine's, never asserted.
 */

import { describe, expect, it } from 'vitest';

import type { Contender } from '../src/contenders/contender.js';
import { farPlacementNotes } from '../src/report/throughput-columns.js';
import { FAR_ROUND_TRIP_NS, measureLineRoundTrip, measureLineRoundTrips } from '../src/run/line-round-trip.js';
import { silentProgress } from '../src/run/progress.js';
import type { ThroughputRow } from '../src/run/throughput-rows.js';
import type { BenchSettings } from '../src/run/workload.js';
import { glibcThreadWorkload } from '../src/workloads/glibc-thread/workload.js';

describe('the line round trip', () => {
  it('gives one positive figure per sample, and a median of three', async () => {
    const figures = await measureLineRoundTrips(3, 2000);
    expect(figures).toHaveLength(3);
    for (const ns of figures) expect(ns).toBeGreaterThan(0);
    expect(await measureLineRoundTrip(2000)).toBeGreaterThan(0);
  });

  it('is recorded before and after each multi-thread glibc-thread row, and not for one thread', async () => {
    const basic: Contender = { kind: 'heaplab', label: 'basic', spec: { name: 'basic', options: {} } };
    const settings: BenchSettings = {
      threads: [1, 2],
      durationSeconds: 0.1,
      repeat: 1,
      warmup: false,
      fill: 'memset',
      verify: false,
      heapBytes: 64 << 20,
      isolate: false,
      seed: 1,
      inAll: false,
    };
    const rows = await glibcThreadWorkload.run([basic], settings, silentProgress);
    const [one, two] = rows;
    expect(one!.lineRoundTripNs).toBeUndefined();
    expect(two!.lineRoundTripNs).toHaveLength(2);
    for (const ns of two!.lineRoundTripNs!) expect(ns).toBeGreaterThan(0);
  });

  it('names in a note the rows measured while it was long, before or after', () => {
    const row = (label: string, lineRoundTripNs?: number[]): ThroughputRow =>
      ({ label, kind: 'heaplab', threads: 2, iterations: 1, wallSeconds: 1, perSecond: 1, peakUsedBytes: null, lineRoundTripNs }) as ThroughputRow;
    expect(farPlacementNotes([row('tlsf', [98, 110]), row('mimalloc')])).toEqual([]);
    const notes = farPlacementNotes([row('tlsf', [98, FAR_ROUND_TRIP_NS + 150]), row('slab', [101, 99]), row('buddy', [412, 399])]);
    expect(notes).toHaveLength(1);
    expect(notes[0]).toContain('tlsf on 2 threads (98 and 400 ns), buddy on 2 threads (412 and 399 ns)');
    expect(notes[0]).not.toContain('slab');
  });
});
