/**
 * `--interleave`: the timed runs of the threaded workloads in rounds, one run of every row per
 * round, each row still the median of its own runs; and the progress steps counted to match.
 */

import { describe, expect, it } from 'vitest';

import { discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { baselineContender } from '../src/contenders/contender.js';
import { LineRoundTripTimeout } from '../src/run/line-round-trip.js';
import type { Progress } from '../src/run/progress.js';
import { countSteps } from '../src/run/run-bench.js';
import { medianRow, medianRunIndex, roundTripIfMeasurable, type ThroughputRow } from '../src/run/throughput-rows.js';
import type { BenchSettings } from '../src/run/workload.js';
import { glibcThreadWorkload } from '../src/workloads/glibc-thread/workload.js';

function settings(interleave: boolean): BenchSettings {
  return {
    threads: [1, 2],
    durationSeconds: Infinity,
    repeat: 3,
    warmup: true,
    interleave,
    fill: 'memset',
    maxIterations: 2000,
    verify: true,
    heapBytes: 16 << 20,
    isolate: false,
    seed: 1,
    inAll: false,
  };
}

/** A progress that keeps the labels of its steps. */
function recording(): Progress & { steps: string[] } {
  const steps: string[] = [];
  return { steps, step: (label) => void steps.push(label), done: () => undefined };
}

describe('interleaved runs', () => {
  it('runs one run of every row per round, and makes each row the median of its own three runs', async () => {
    await discoverBackends();
    const contenders = [...resolveBackendContenders([{ name: 'tlsf', options: {} }]), baselineContender('bump')];
    const progress = recording();
    const rows = await glibcThreadWorkload.run(contenders, settings(true), progress);
    const bump = contenders[1]!.label;
    const order = ['tlsf  1 thread', 'tlsf  2 threads', `${bump}  1 thread`, `${bump}  2 threads`];
    expect(progress.steps).toEqual([1, 2, 3].flatMap((run) => order.map((row) => `glibc-thread  ${row}  (run ${run} of 3)`)));
    expect(countSteps([glibcThreadWorkload], contenders, settings(true))).toBe(progress.steps.length);
    expect(rows.map((row) => [row.label, row.threads, row.error, row.runs?.length])).toEqual([
      ['tlsf', 1, undefined, 3],
      ['tlsf', 2, undefined, 3],
      [bump, 1, undefined, 3],
      [bump, 2, undefined, 3],
    ]);
    // Every run of a row made the same iterations (bounded runs), two threads twice one's.
    for (const row of rows) expect(row.iterations).toBe(2000 * row.threads);
    // The round trips of a 2-thread row are those around its median run: one pair (none when
    // the machine was too loaded to measure one, which a test run on two cores can be).
    for (const row of rows) expect(row.threads === 2 ? [0, 2] : [0]).toContain(row.lineRoundTripNs?.length ?? 0);
  });

  it('counts one step per row when the runs are not interleaved', async () => {
    await discoverBackends();
    const contenders = resolveBackendContenders([{ name: 'tlsf', options: {} }]);
    const progress = recording();
    await glibcThreadWorkload.run(contenders, { ...settings(false), repeat: 2 }, progress);
    expect(progress.steps).toEqual(['glibc-thread  tlsf  1 thread', 'glibc-thread  tlsf  2 threads']);
    expect(countSteps([glibcThreadWorkload], contenders, settings(false))).toBe(2);
  });

  it('leaves a row without its round trip when the machine is too loaded to measure one, and passes other errors on', async () => {
    expect(await roundTripIfMeasurable(async () => 87)).toBe(87);
    expect(
      await roundTripIfMeasurable(async () => {
        throw new LineRoundTripTimeout('line round trip: the answering thread stopped answering');
      }),
    ).toBeNull();
    await expect(
      roundTripIfMeasurable(async () => {
        throw new TypeError('a bug');
      }),
    ).rejects.toThrow('a bug');
  });

  it('takes the lower middle run by rate as the median, and reports the others as min and max', () => {
    const run = (perSecond: number): ThroughputRow => ({
      label: 'x',
      kind: 'bump',
      threads: 1,
      iterations: 1,
      wallSeconds: 1,
      perSecond,
      peakUsedBytes: null,
      peakFootprintBytes: null,
    });
    const runs = [run(30), run(10), run(20), run(40)];
    expect(medianRunIndex(runs)).toBe(2);
    expect(medianRow(runs)).toMatchObject({ perSecond: 20, perSecondMin: 10, perSecondMax: 40, runs: [30, 10, 20, 40] });
  });
});
