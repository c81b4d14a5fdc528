import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { benchMetaOn } from './bench-meta-fixture.js';

import type { BenchResults } from '../src/report/results.js';
import { mergeRuns, ReportInputError, readReportSource } from '../src/report/sources.js';
import { WORKLOAD_LIST } from '../src/workloads/index.js';

const MAP_FIXTURE = fileURLToPath(new URL('./fixtures/map.json', import.meta.url));

/** Results of one run on `host` with one glibc-thread row per label. */
function run(host: string, labels: string[]): BenchResults {
  const empty = Object.fromEntries(WORKLOAD_LIST.map((workload) => [workload.resultKey, []]));
  return {
    ...empty,
    meta: benchMetaOn(host),
    unavailable: [],
    glibcThread: labels.map((label) => ({
      label,
      kind: 'heaplab',
      threads: 1,
      iterations: 1,
      wallSeconds: 1,
      perSecond: 1e6,
      peakUsedBytes: null,
      peakFootprintBytes: null,
    })),
  } as unknown as BenchResults;
}

describe('merging runs', () => {
  it('labels colliding rows by host, and leaves a workload without collisions alone', () => {
    const merged = mergeRuns([
      { file: 'x/a.json', results: run('alpha', ['tlsf', 'basic']) },
      { file: 'y/a.json', results: run('beta', ['tlsf']) },
    ]);
    expect(merged.results.glibcThread.map((row) => row.label)).toEqual(['tlsf @ alpha', 'basic @ alpha', 'tlsf @ beta']);
    expect(merged.runs.map((entry) => entry.tag)).toEqual(['alpha', 'beta']);
    const apart = mergeRuns([
      { file: 'a.json', results: run('alpha', ['tlsf']) },
      { file: 'b.json', results: run('alpha', ['buddy']) },
    ]);
    expect(apart.results.glibcThread.map((row) => row.label)).toEqual(['tlsf', 'buddy']);
  });

  it('labels by file name when the hosts are the same', () => {
    const merged = mergeRuns([
      { file: 'runs/before.json', results: run('alpha', ['tlsf']) },
      { file: 'runs/after.json', results: run('alpha', ['tlsf']) },
    ]);
    expect(merged.results.glibcThread.map((row) => row.label)).toEqual(['tlsf @ before.json', 'tlsf @ after.json']);
  });
});

describe('report inputs', () => {
  const directory = mkdtempSync(join(tmpdir(), 'heaplab-sources-'));
  const write = (name: string, text: string): string => {
    const path = join(directory, name);
    writeFileSync(path, text);
    return path;
  };

  it('reads bench JSON and heap maps', () => {
    const bench = readReportSource(write('bench.json', JSON.stringify(run('alpha', ['tlsf']))));
    expect(bench.kind).toBe('bench');
    const map = readReportSource(MAP_FIXTURE);
    expect(map.kind === 'map' && map.map.moments.map((moment) => moment.backend)).toEqual(['tlsf', 'buddy']);
  });

  it.each([
    ['missing.json', null, /missing\.json: cannot read it/],
    ['text.json', 'not json', /text\.json: not JSON/],
    ['list.json', '[1, 2]', /list\.json: not a heaplab file/],
    ['other.json', '{"name": "some package"}', /other\.json: not the JSON of heaplab bench --json: no meta/],
    ['rows.json', JSON.stringify({ ...run('a', []), glibcThread: 'x' }), /rows\.json: .*glibcThread is not a list of rows/],
    [
      'map.json',
      JSON.stringify({ kind: 'heaplab-map', meta: {}, workload: 'w', moments: [{ backend: 'b', at: 'now', svg: '<svg onload="x()"></svg>', figures: {} }] }),
      /map\.json: not a heaplab heap map: moment 1's SVG holds scripts/,
    ],
    [
      'map2.json',
      JSON.stringify({ kind: 'heaplab-map', meta: {}, workload: 'w', moments: [{ backend: 'b', at: 'now', svg: '<svg></svg>', figures: { a: 'x' } }] }),
      /figures are not numbers/,
    ],
  ])('refuses %s with a message naming it', (name, text, message) => {
    const path = text === null ? join(directory, name) : write(name, text);
    expect(() => readReportSource(path)).toThrow(ReportInputError);
    expect(() => readReportSource(path)).toThrow(message);
  });
});
