import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { spansDecades } from '../src/report/chart.js';
import { throughputChart } from '../src/report/throughput-chart.js';
import { renderChart, writeReportPage } from '../src/report/html-report.js';
import type { BenchResults } from '../src/report/results.js';
import { summary } from '../src/report/summary.js';
import { TEXT_WIDTH } from '../src/report/text-table.js';
import { widestLine } from './text-width.js';

const results: BenchResults = {
  meta: {
    version: '0.1.0',
    command: 'heaplab bench glibc-thread --threads 1,2',
    host: 'test-host',
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
      threadSeconds: [1],
      threadCpuSeconds: [0.97],
      perSecond: 2e6,
      runs: [1.9e6, 2e6, 2.1e6],
      perSecondMin: 1.9e6,
      perSecondMax: 2.1e6,
      peakUsedBytes: 100_000,
      peakFootprintBytes: 60 << 20,
      touchedBytes: 120 << 10,
    },
    {
      label: 'tlsf',
      kind: 'heaplab',
      threads: 1,
      iterations: 4e6,
      wallSeconds: 1,
      perSecond: 4e6,
      peakUsedBytes: 90_000,
      peakFootprintBytes: 100_000,
      touchedBytes: 96 << 10,
    },
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
    // Wide enough for the whole table in one.
    const text = summary(results, 200);
    // The median of the repeats, their spread, CPU time over wall time, and each thread's
    // CPU time over its loop time.
    expect(text).toMatch(/^basic +1 +2\.00 M\/s +1\.90\.\.2\.10 M +0\.25x +0\.50x +1\.02 +510\.0 +0\.97 +97\.7 KiB +120 KiB +93\.4 %$/m);
    expect(text).toMatch(/^tlsf +1 +4\.00 M\/s +- +0\.50x +1\.00x +- /m);
    // A sampled peak is marked as a lower bound, once explained.
    expect(text).toMatch(/^mimalloc +1 +1\.00 M\/s +- +0\.13x +0\.25x +- +- +- +>=59\.6 KiB /m);
    expect(text).toMatch(/^basic +1 .* 97\.7 KiB /m);
    expect(text.match(/note: peak used marked >=/g)?.length).toBe(1);
    expect(text).toContain('FAILED: buddy (1 thread): boom');
    expect(text).toContain('not available: @heaplab/slab: not built');
  });

  it(`fits ${TEXT_WIDTH} columns by default: a speed table and a memory table, the same rows in each, notes wrapped`, () => {
    const text = summary(results);
    expect(widestLine(text)).toBeLessThanOrEqual(TEXT_WIDTH);
    expect(text).toMatch(/^basic +1 +2\.00 M\/s +1\.90\.\.2\.10 M +0\.25x +0\.50x +1\.02 +510\.0 +0\.97$/m);
    expect(text).toMatch(/^basic +1 +97\.7 KiB +120 KiB +93\.4 %$/m);
    expect(text).toMatch(/^mimalloc +1 +>=59\.6 KiB +- +-$/m);
    expect(text).toMatch(/^note: peak used marked >=: .*\n {2}\S/m);
  });

  it('fits a narrower terminal', () => {
    const text = summary(results, 60);
    expect(widestLine(text)).toBeLessThanOrEqual(60);
    for (const figure of ['1.90..2.10 M', '0.50x', '510.0', '0.97', '>=59.6 KiB', '120 KiB', '93.4 %']) expect(text).toContain(figure);
  });
});

describe('HTML report', () => {
  it('writes a self-contained page and one SVG per chart, with version, command and host in its header', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'heaplab-report-'));
    const { files, warnings } = await writeReportPage({ results, runs: [{ meta: results.meta }], maps: [] }, join(directory, 'bench.html'));
    expect(warnings).toEqual([]);
    expect(files.map((file) => file.slice(directory.length + 1))).toEqual(['bench.html', 'bench-throughput.svg', 'bench-memory.svg', 'bench-efficiency.svg']);
    const html = readFileSync(files[0]!, 'utf8');
    // Each chart twice: the wide copy and the phone's.
    expect(html.match(/<svg/g)?.length).toBe(6);
    expect(html.match(/<div class="narrow"><svg/g)?.length).toBe(3);
    expect(html).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
    expect(html).toContain('heaplab 0.1.0');
    expect(html).toContain('<code>heaplab bench glibc-thread --threads 1,2</code>');
    expect(html).toContain('test-host: Node v20');
    for (const svgFile of files.slice(1)) {
      const svg = readFileSync(svgFile, 'utf8');
      expect(svg).toMatch(/^<svg/);
      expect(svg).toContain('basic');
      // A tooltip on every bar, and no label cut short.
      expect(svg).toMatch(/<title>basic/);
      expect(svg).not.toContain('…');
    }
    expect(readFileSync(files[1]!, 'utf8')).toContain('tlsf');
    // The repeats' spread: the tooltip names it, a rule draws it.
    expect(readFileSync(files[1]!, 'utf8')).toContain('median of 3 runs, 1.90 M/s..2.10 M/s');
    // Memory touched is what the memory chart shows beside peak used, not the highest address (60 MiB).
    const memory = readFileSync(files[2]!, 'utf8');
    expect(memory).toContain('basic, memory touched: 120 KiB');
    expect(memory).toContain('basic, peak used: 97.7 KiB');
    expect(memory).not.toContain('60.0 MiB');
    expect(memory).toMatch(/bytes \(log\)/);
  });
});

describe('charts', () => {
  const long = 'basic:strategy=best-fit,some-option=a-rather-long-value';
  const rows = [1, 2].flatMap((threads) =>
    [long, 'bump (speed of light)', 'tlsf'].map((label, index) => ({
      label,
      kind: 'heaplab' as const,
      threads,
      iterations: 1,
      wallSeconds: 1,
      perSecond: 10 ** (5 + index) * threads,
      runs: [1, 2],
      perSecondMin: 10 ** (5 + index) * threads * 0.9,
      perSecondMax: 10 ** (5 + index) * threads * 1.1,
      peakUsedBytes: null,
      peakFootprintBytes: null,
    })),
  );

  it('groups bars by thread count, takes a log axis across decades, and never cuts a label', async () => {
    const chart = throughputChart({ id: 't', title: 't', caption: 'c', rows, unit: 'pairs' });
    const { svg, warnings } = await renderChart(chart.spec);
    expect(warnings).toEqual([]);
    expect(svg).toContain(`>${long}</text>`);
    expect(svg).toContain('>bump (speed of light)</text>');
    expect(svg).not.toContain('…');
    expect(svg).toContain('pairs per second (log)');
    // One legend entry per thread count, each thread count its own bar.
    expect(svg).toContain('>1 thread</text>');
    expect(svg).toContain('>2 threads</text>');
    expect(svg.match(/aria-roledescription="bar"/g)?.length).toBe(6);
    // Error bars from the repeats.
    expect(JSON.stringify(chart.spec)).toContain('"x2":{"field":"high"}');
  });

  it('keeps a linear axis from zero when values are close', () => {
    const close = rows.map((row) => ({ ...row, perSecond: 1e6 + row.perSecond / 1e3 }));
    expect(JSON.stringify(throughputChart({ id: 't', title: 't', caption: 'c', rows: close, unit: 'pairs' }).spec)).not.toContain('"log"');
    expect(spansDecades([1, 10])).toBe(false);
    expect(spansDecades([1, 1000])).toBe(true);
  });
});
