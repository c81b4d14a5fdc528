import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { writeReport } from '../src/report/html-report.js';
import type { BenchResults } from '../src/report/results.js';
import { summary } from '../src/report/summary.js';

const results: BenchResults = {
  meta: {
    date: '2025-01-01T00:00:00Z',
    node: 'v20',
    cpus: 2,
    cpuModel: 'test cpu',
    durationSeconds: 0.5,
    repeat: 3,
    warmup: true,
    threads: [1, 2],
    heapBytes: 64 << 20,
    verify: false,
    isolate: true,
  },
  unavailable: [{ package: '@heaplab/slab', reason: 'not built' }],
  glibcThread: [
    {
      label: 'basic',
      kind: 'heaplab',
      threads: 1,
      iterations: 2e6,
      wallSeconds: 1,
      cpuSeconds: 1.02,
      perSecond: 2e6,
      runs: [1.9e6, 2e6, 2.1e6],
      perSecondMin: 1.9e6,
      perSecondMax: 2.1e6,
      peakUsedBytes: 100_000,
      peakFootprintBytes: 120_000,
    },
    { label: 'tlsf', kind: 'heaplab', threads: 1, iterations: 4e6, wallSeconds: 1, perSecond: 4e6, peakUsedBytes: 90_000, peakFootprintBytes: 100_000 },
    {
      label: 'mimalloc',
      kind: 'heaplab',
      threads: 1,
      iterations: 1e6,
      wallSeconds: 1,
      perSecond: 1e6,
      peakUsedBytes: 61_000,
      peakUsedSampled: true,
      peakFootprintBytes: 4 << 20,
    },
    { label: 'system', kind: 'system', threads: 1, iterations: 8e6, wallSeconds: 1, perSecond: 8e6, peakUsedBytes: null, peakFootprintBytes: null },
    { label: 'buddy', kind: 'heaplab', threads: 1, iterations: 0, wallSeconds: 0, perSecond: 0, peakUsedBytes: null, peakFootprintBytes: null, error: 'boom' },
  ],
  allocPairs: [],
  heapEfficiency: [{ label: 'basic', kind: 'heaplab', efficiencyPercent: 93.4, trials: 30, seed: 1, heapBytes: 128 << 20, seconds: 4, actions: 1000 }],
  larson: [],
  xmallocTest: [],
  cacheScratch: [],
  cacheThrash: [],
  glibcSimple: [],
  mstress: [],
  rptest: [],
  allocTest: [],
  sh6bench: [],
  midLarge: [],
  robson: [],
  arceos: [],
  latency: [],
};

describe('summary table', () => {
  it('gives ratios to system and to the best backend, efficiency, failures and missing packages', () => {
    const text = summary(results);
    // The median of the repeats, their spread, and CPU time over wall time.
    expect(text).toMatch(/^basic +1 +2\.00 M\/s +1\.90\.\.2\.10 M +0\.25x +0\.50x +1\.02 +97\.7 KiB +117 KiB +93\.4 %$/m);
    expect(text).toMatch(/^tlsf +1 +4\.00 M\/s +- +0\.50x +1\.00x +- /m);
    // A sampled peak is marked as a lower bound, once explained.
    expect(text).toMatch(/^mimalloc +1 +1\.00 M\/s +- +0\.13x +0\.25x +- +>=59\.6 KiB /m);
    expect(text).toMatch(/^basic +1 .* 97\.7 KiB /m);
    expect(text.match(/note: peak used marked >=/g)?.length).toBe(1);
    expect(text).toContain('FAILED: buddy (1 thread): boom');
    expect(text).toContain('not available: @heaplab/slab: not built');
  });
});

describe('HTML report', () => {
  it('writes a self-contained page and one SVG per chart', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'heaplab-report-'));
    const files = await writeReport(results, join(directory, 'bench.html'));
    expect(files.map((file) => file.slice(directory.length + 1))).toEqual([
      'bench.html',
      'bench-throughput.svg',
      'bench-footprint.svg',
      'bench-efficiency.svg',
    ]);
    const html = readFileSync(files[0]!, 'utf8');
    expect(html.match(/<svg/g)?.length).toBe(3);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    for (const svgFile of files.slice(1)) {
      const svg = readFileSync(svgFile, 'utf8');
      expect(svg).toMatch(/^<svg/);
      expect(svg).toContain('basic');
    }
    expect(readFileSync(files[1]!, 'utf8')).toContain('tlsf');
  });
});
