import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Random } from '@heaplab/core';
import { Int32Histogram, JsHistogram } from 'hdr-histogram-js';
import { beforeAll, describe, expect, it } from 'vitest';

import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { type BackendContender, baselineContender, type Contender, nativeContender } from '../src/contenders/contender.js';
import { renderSvg } from '../src/report/html-report.js';
import { TEXT_WIDTH } from '../src/report/text-table.js';
import { silentProgress } from '../src/run/progress.js';
import type { BenchSettings } from '../src/run/workload.js';
import { type ClockCalibration, calibrateClock, chooseClock, PERFORMANCE_NOW_CLOCK } from '../src/workloads/latency/clock.js';
import {
  batchFor,
  createLatencyTarget,
  FRAGMENT_BLOCKS,
  LATENCY_LEVELS,
  LATENCY_OPS,
  latencyFigures,
  latencyHistogram,
  latencyHistograms,
  MAX_BATCH,
  prepareLevel,
  runLevel,
} from '../src/workloads/latency/measure.js';
import { drawLatencySize, LATENCY_MAX_SIZE, LATENCY_MIN_SIZE, LATENCY_OCTAVE_WEIGHTS, LATENCY_OCTAVES } from '../src/workloads/latency/sizes.js';
import { measureLevel } from '../src/workloads/latency/rows.js';
import { formatNs, latencyWorkload } from '../src/workloads/latency/workload.js';
import { widestLine } from './text-width.js';

const STEPS = 1_500;

const SETTINGS: BenchSettings = {
  threads: [1],
  durationSeconds: Infinity,
  repeat: 1,
  warmup: false,
  fill: 'memset',
  maxIterations: STEPS,
  verify: false,
  heapBytes: 64 << 20,
  isolate: false,
  seed: 1,
  inAll: false,
};

let backends: BackendContender[];
let calibration: ClockCalibration;

beforeAll(async () => {
  await discoverBackends();
  backends = resolveBackendContenders(['all']);
  calibration = calibrateClock(PERFORMANCE_NOW_CLOCK);
});

describe('the size mix', () => {
  it('draws every octave from 16 B to 64 KiB, small ones most, the same for the same seed', () => {
    const random = new Random(7);
    const perOctave = new Array<number>(LATENCY_OCTAVES).fill(0);
    const first: number[] = [];
    let smallest = Infinity;
    let largest = 0;
    for (let index = 0; index < 100_000; index++) {
      const size = drawLatencySize(random);
      if (index < 20) first.push(size);
      smallest = Math.min(smallest, size);
      largest = Math.max(largest, size);
      perOctave[Math.min(LATENCY_OCTAVES - 1, Math.floor(Math.log2(size / LATENCY_MIN_SIZE)))]!++;
    }
    expect(smallest).toBe(LATENCY_MIN_SIZE);
    expect(largest).toBeLessThanOrEqual(LATENCY_MAX_SIZE);
    expect(largest).toBeGreaterThan(LATENCY_MAX_SIZE - 1024);
    const again = new Random(7);
    expect(Array.from({ length: 20 }, () => drawLatencySize(again))).toEqual(first);
    expect(LATENCY_OCTAVE_WEIGHTS.reduce((sum, weight) => sum + weight, 0)).toBeCloseTo(1, 12);
    for (let octave = 0; octave < LATENCY_OCTAVES; octave++) {
      // Within 15 % of its weight (the top octave is drawn about 390 times here).
      expect(perOctave[octave]! / 100_000).toBeGreaterThan(LATENCY_OCTAVE_WEIGHTS[octave]! * 0.85);
      expect(perOctave[octave]! / 100_000).toBeLessThan(LATENCY_OCTAVE_WEIGHTS[octave]! * 1.15);
      if (octave > 0) expect(perOctave[octave]!).toBeLessThan(perOctave[octave - 1]!);
    }
  });
});

describe('the clock', () => {
  it('measures a positive resolution and cost, and chooses a clock', () => {
    expect(calibration.resolutionNs).toBeGreaterThan(0);
    expect(calibration.costNs).toBeGreaterThanOrEqual(0);
    const { chosen, all } = chooseClock();
    expect(all.map((clock) => clock.clock.name)).toEqual(['performance.now()', 'process.hrtime.bigint()']);
    expect(all).toContain(chosen);
  });

  it('batches calls only when one is shorter than the resolution', () => {
    expect(batchFor(120, 40)).toBe(1);
    expect(batchFor(40, 40)).toBe(1);
    expect(batchFor(15, 40)).toBe(3);
    expect(batchFor(0.001, 40)).toBe(MAX_BATCH);
    expect(batchFor(0, 40)).toBe(MAX_BATCH);
  });
});

describe('the levels', () => {
  it('leaves more free blocks on the fragmented heap than on the fresh one, for every heaplab backend', () => {
    expect(backends.map((backend) => backend.spec.name)).toEqual(expect.arrayContaining(['basic', 'tlsf', 'buddy', 'slab', 'mimalloc']));
    for (const backend of backends) {
      const freeBlocks = LATENCY_LEVELS.map((level) => {
        const heap = createBackendHeap(backend.spec, 64 << 20);
        try {
          const kept = prepareLevel(heap, level, new Random(1));
          expect(kept.length, `${backend.label} ${level}`).toBe(level === 'fresh' ? 0 : FRAGMENT_BLOCKS / 2);
          expect(heap.stats().liveBlocks).toBe(kept.length);
          return heap.stats().freeBlocks;
        } finally {
          heap.detach();
        }
      });
      // Every other of 8192 blocks freed: thousands of holes, where a fresh heap has a handful.
      expect(freeBlocks[1]!, backend.label).toBeGreaterThan(freeBlocks[0]! + FRAGMENT_BLOCKS / 8);
    }
  });

  it('does the same to @thi.ng/malloc', () => {
    const counts = LATENCY_LEVELS.map((level) => {
      const target = createLatencyTarget(baselineContender('thi.ng'));
      prepareLevel(target.allocator, level, new Random(1));
      return target.freeBlocks();
    });
    expect(counts[1]!).toBeGreaterThan(counts[0]! + FRAGMENT_BLOCKS / 8);
  });

  it('keeps the fragmentation while timing, and leaves the heap empty', () => {
    const tlsf = backends.find((backend) => backend.spec.name === 'tlsf')!;
    const target = createLatencyTarget(tlsf);
    try {
      const histograms = latencyHistograms();
      const run = runLevel(target, { level: 'fragmented', calibration, batch: 'pilot', durationSeconds: Infinity, maxSteps: STEPS, seed: 3 }, histograms);
      expect(run.steps).toBe(STEPS);
      expect(run.freeBlocksAtStart).toBeGreaterThan(FRAGMENT_BLOCKS / 4);
      expect(run.freeBlocksAtEnd).toBeGreaterThan(FRAGMENT_BLOCKS / 4);
      // runLevel checked the heap empty; the allocator agrees.
      expect((target.allocator as ReturnType<typeof createBackendHeap>).stats().liveBlocks).toBe(0);
    } finally {
      target.close();
    }
  });

  it('refuses the contenders it cannot time', () => {
    expect(() => createLatencyTarget(baselineContender('system'))).toThrow(/does not time system/);
    expect(() => createLatencyTarget(nativeContender('glibc'))).toThrow(/does not time/);
  });
});

describe('the histograms', () => {
  it('come from hdr-histogram-js, and the figures are its percentiles', () => {
    const histogram = latencyHistogram();
    expect(histogram).toBeInstanceOf(JsHistogram);
    expect(histogram).toBeInstanceOf(Int32Histogram);
    for (let value = 1; value <= 1000; value++) histogram.recordValue(value);
    expect(latencyFigures(histogram)).toEqual({ count: 1000, p50Ns: 500, p90Ns: 900, p99Ns: 990, p999Ns: 999, p9999Ns: 1000, maxNs: 1000, meanNs: 500.5 });
  });

  it('never give a percentile above the largest value recorded (the top bucket ends above it)', () => {
    const histogram = latencyHistogram();
    for (let value = 1; value <= 999; value++) histogram.recordValue(value);
    // A bucket of this size holds 4,095,744 to 4,095,999: the histogram's answer for the
    // top percentiles is that bucket's end, above the one value in it.
    histogram.recordValue(4_095_869);
    expect(histogram.getValueAtPercentile(99.99)).toBeGreaterThan(histogram.maxValue);
    const figures = latencyFigures(histogram);
    expect(figures.maxNs).toBe(4_095_869);
    expect(figures.p9999Ns).toBe(4_095_869);
    expect(figures.p999Ns).toBeLessThanOrEqual(figures.p9999Ns);
  });

  it('receive one sample per step and op, batched or not', () => {
    const basic = backends.find((backend) => backend.spec.name === 'basic')!;
    for (const batch of [1, 4]) {
      const target = createLatencyTarget(basic);
      try {
        const histograms = latencyHistograms();
        const run = runLevel(target, { level: 'fresh', calibration, batch, durationSeconds: Infinity, maxSteps: 500, seed: 1 }, histograms);
        expect(run.batch).toBe(batch);
        for (const op of LATENCY_OPS) {
          expect(histograms[op].totalCount).toBe(500);
          expect(run.zeroSamples[op]).toBeLessThanOrEqual(500);
        }
      } finally {
        target.close();
      }
    }
  });
});

describe('a row with a warm-up', () => {
  it('takes its batch from the warm-up and keeps it for every timed run', () => {
    const mimalloc = backends.find((backend) => backend.spec.name === 'mimalloc')!;
    const rows = measureLevel(mimalloc, 'fresh', { ...SETTINGS, warmup: true, repeat: 2, maxIterations: 300 }, calibration, false);
    expect(rows.map((row) => row.op)).toEqual([...LATENCY_OPS]);
    for (const row of rows) {
      expect(row.batch).toBeGreaterThanOrEqual(1);
      expect(row.batch).toBeLessThanOrEqual(MAX_BATCH);
      expect(row.runs).toBe(2);
      expect(row.count).toBe(600);
      expect(row.calls).toBe(600 * row.batch);
      expect(row.note ?? '').not.toMatch(/no warm-up/);
    }
  });
});

describe('the workload', () => {
  let contenders: Contender[];
  let rows: Awaited<ReturnType<typeof latencyWorkload.run>>;
  beforeAll(async () => {
    contenders = [...backends, baselineContender('thi.ng')];
    rows = await latencyWorkload.run(contenders, SETTINGS, silentProgress);
  }, 120_000);

  it('applies to heaplab backends and @thi.ng/malloc only', () => {
    expect(latencyWorkload.appliesTo(backends[0]!)).toBe(true);
    expect(latencyWorkload.appliesTo(baselineContender('thi.ng'))).toBe(true);
    for (const name of ['system', 'bump'] as const) expect(latencyWorkload.appliesTo(baselineContender(name))).toBe(false);
    expect(latencyWorkload.appliesTo(nativeContender('glibc'))).toBe(false);
  });

  it('has a row per contender, level and op, with ordered percentiles', () => {
    expect(rows.filter((row) => row.error !== undefined)).toEqual([]);
    expect(rows).toHaveLength(contenders.length * LATENCY_LEVELS.length * LATENCY_OPS.length);
    for (const contender of contenders) {
      for (const level of LATENCY_LEVELS) {
        for (const op of LATENCY_OPS) {
          const row = rows.find((candidate) => candidate.label === contender.label && candidate.level === level && candidate.op === op);
          expect(row, `${contender.label} ${level} ${op}`).toBeDefined();
          expect(row!.count).toBe(STEPS);
          expect(row!.calls).toBe(STEPS * row!.batch);
          expect(row!.batch).toBeGreaterThanOrEqual(1);
          expect(row!.p50Ns).toBeLessThanOrEqual(row!.p99Ns);
          expect(row!.p99Ns).toBeLessThanOrEqual(row!.p999Ns);
          expect(row!.p999Ns).toBeLessThanOrEqual(row!.maxNs);
          expect(row!.maxNs).toBeGreaterThan(0);
          expect(row!.timerCostNs).toBeGreaterThanOrEqual(0);
          expect(row!.isolated).toBe(false);
        }
      }
      const freeBlocks = (level: string): number => rows.find((row) => row.label === contender.label && row.level === level)!.freeBlocks;
      expect(freeBlocks('fragmented'), contender.label).toBeGreaterThan(freeBlocks('fresh'));
    }
  });

  it('shows a table row per contender and level, and a percentile chart that renders', async () => {
    // A terminal wide enough for the whole table in one.
    const section = latencyWorkload.section(rows, { meta: {} as never, rowsOf: () => [], width: 200 });
    for (const contender of contenders) {
      for (const level of LATENCY_LEVELS)
        expect(section.table).toMatch(new RegExp(`^${contender.label.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} +${level} `, 'm'));
    }
    expect(section.table.split('\n')).toHaveLength(2 + contenders.length * LATENCY_LEVELS.length);
    // By default split, malloc's figures in one table and free's in another, each row's key in both.
    const tables = latencyWorkload.section(rows, { meta: {} as never, rowsOf: () => [] }).table.split('\n\n');
    expect(tables.map((table) => table.split('\n')[0])).toEqual([
      expect.stringMatching(/^backend +level +free blocks +malloc p50 +p99 +p99\.9 +max$/),
      expect.stringMatching(/^backend +level +free p50 +p99 +p99\.9 +max +samples +batch$/),
    ]);
    for (const table of tables) {
      expect(widestLine(table)).toBeLessThanOrEqual(TEXT_WIDTH);
      expect(table.split('\n')).toHaveLength(2 + contenders.length * LATENCY_LEVELS.length);
    }
    const charts = latencyWorkload.charts(rows);
    expect(charts.map((chart) => chart.id)).toEqual(['latency']);
    const svg = await renderSvg(charts[0]!.spec);
    expect(svg).toMatch(/^<svg/);
    for (const panel of ['malloc, fresh', 'free, fragmented']) expect(svg).toContain(panel);
    expect(latencyWorkload.charts([])).toEqual([]);
  });

  it('formats nanoseconds', () => {
    expect(formatNs(48.4)).toBe('48 ns');
    expect(formatNs(1270)).toBe('1.27 µs');
    expect(formatNs(3_100_000)).toBe('3.10 ms');
  });
});

describe('heaplab bench latency', () => {
  it('writes p50/p99/p999/max per op, level and backend to the JSON', () => {
    const cli = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
    const directory = mkdtempSync(join(tmpdir(), 'heaplab-latency-'));
    const file = join(directory, 'l.json');
    const result = spawnSync(
      process.execPath,
      [
        '--conditions=heaplab-source',
        '--import',
        'tsx',
        cli,
        'bench',
        'latency',
        '--backend',
        'basic',
        '--backend',
        'tlsf',
        '--baselines',
        'none',
        '--duration',
        '0.05',
        '--repeat',
        '2',
        '--quiet',
        '--json',
        file,
      ],
      // Four processes of its own start from source through tsx: slow on a loaded machine.
      { encoding: 'utf8', timeout: 150_000 },
    );
    expect(result.stderr).not.toMatch(/FAILED/);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^latency \(one call, ns;/m);
    expect(result.stdout).toMatch(/^tlsf +fragmented +\d+ +\d/m);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json.latency).toHaveLength(2 * LATENCY_LEVELS.length * LATENCY_OPS.length);
    for (const row of json.latency) {
      expect(['basic', 'tlsf']).toContain(row.label);
      expect(LATENCY_LEVELS).toContain(row.level);
      expect(LATENCY_OPS).toContain(row.op);
      expect(row.kind).toBe('heaplab');
      expect(row.runs).toBe(2);
      // Each (contender, level) ran in a process of its own, the default outside `bench all`.
      expect(row.isolated).toBe(true);
      for (const field of ['count', 'p50Ns', 'p99Ns', 'p999Ns', 'maxNs', 'batch', 'freeBlocks', 'timerCostNs', 'clockResolutionNs']) {
        expect(typeof row[field], field).toBe('number');
      }
      expect(row.count).toBeGreaterThan(0);
      expect(row.p50Ns).toBeLessThanOrEqual(row.maxNs);
    }
  }, 180_000);
});
