import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { baselineContender, type Contender } from '../src/contenders/contender.js';
import { renderChart } from '../src/report/html-report.js';
import { rowsOf } from '../src/report/results.js';
import { runContextOf, summary } from '../src/report/summary.js';
import { TEXT_WIDTH, wrapText } from '../src/report/text-table.js';
import { silentProgress } from '../src/run/progress.js';
import { countSteps, runBench } from '../src/run/run-bench.js';
import { FAR_ROUND_TRIP_NS } from '../src/run/line-round-trip.js';
import type { ThroughputRow } from '../src/run/throughput-rows.js';
import type { BenchSettings, WorkloadRow } from '../src/run/workload.js';
import { ALL, selectWorkloads, WORKLOAD_LIST } from '../src/workloads/index.js';
import { widestLine } from './text-width.js';

/** Labels of `heaplab bench all --baselines all`, the longest of each kind. */
const LONG_LABELS = ['basic:strategy=worst-fit', 'mimalloc:secure=true', '@thi.ng/malloc', 'bump (speed of light)', 'native mimalloc 2.0.9'];

/** `row` under `label`; a row with a figure per thread as a 4-thread row, its cores far apart. */
function crowdedRow(row: WorkloadRow, label: string): WorkloadRow {
  const perThread = row as WorkloadRow & Partial<Pick<ThroughputRow, 'threadSeconds' | 'threadCpuSeconds' | 'lineRoundTripNs'>>;
  if (perThread.threadSeconds === undefined || perThread.threadCpuSeconds === undefined) return { ...row, label };
  const four = <T>(values: readonly T[]): T[] => [values[0]!, values[0]!, values[0]!, values[0]!];
  return {
    ...row,
    label,
    threads: 4,
    threadSeconds: four(perThread.threadSeconds),
    threadCpuSeconds: four(perThread.threadCpuSeconds),
    lineRoundTripNs: [FAR_ROUND_TRIP_NS + 12.3, FAR_ROUND_TRIP_NS + 45.6],
  } as WorkloadRow;
}

// "A new workload is a folder and a line in the list": these hold for every listed workload,
// so one added without its folder, its page or its table fails here.

const PACKAGE = fileURLToPath(new URL('..', import.meta.url));
const SOURCES = join(PACKAGE, 'src');
const WORKLOADS_DIR = join(SOURCES, 'workloads');
const DOCS = fileURLToPath(new URL('../../../docs/workloads/', import.meta.url));

function sourceFiles(directory: string): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sourceFiles(join(directory, entry.name)) : entry.name.endsWith('.ts') ? [join(directory, entry.name)] : [],
  );
}

describe('the workload list', () => {
  it('has unique names and result keys, and a folder for each workload and nothing else', () => {
    const names = WORKLOAD_LIST.map((workload) => workload.name);
    expect(new Set(names).size).toBe(names.length);
    expect(new Set(WORKLOAD_LIST.map((workload) => workload.resultKey)).size).toBe(names.length);
    const folders = readdirSync(WORKLOADS_DIR, { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    expect(folders.sort()).toEqual([...names].sort());
    for (const name of names) expect(existsSync(join(WORKLOADS_DIR, name, 'workload.ts')), name).toBe(true);
  });

  it('has a page under docs/workloads/ for each workload, and every page a source points to exists', () => {
    for (const workload of WORKLOAD_LIST) expect(existsSync(join(DOCS, `${workload.name}.md`)), workload.name).toBe(true);
    for (const file of [...sourceFiles(SOURCES), join(PACKAGE, 'native', 'bench-malloc-thread.c')]) {
      const text = readFileSync(file, 'utf8');
      expect(text, relative(PACKAGE, file)).not.toMatch(/shared\/specs/);
      for (const [, page] of text.matchAll(/docs\/workloads\/([\w-]+\.md)/g))
        expect(existsSync(join(DOCS, page!)), `${relative(PACKAGE, file)}: ${page}`).toBe(true);
    }
  });

  it('is the only place outside each folder that names a workload', () => {
    for (const file of sourceFiles(SOURCES)) {
      const text = readFileSync(file, 'utf8');
      for (const workload of WORKLOAD_LIST) {
        if (file.startsWith(join(WORKLOADS_DIR, workload.name))) continue;
        expect(text, `${relative(PACKAGE, file)} names '${workload.name}'`).not.toMatch(new RegExp(`['"\`]${workload.name}['"\`]`));
      }
    }
  });

  it("chooses each workload by its name, and 'all' as every workload", () => {
    for (const workload of WORKLOAD_LIST) expect(selectWorkloads(workload.name)).toEqual([workload]);
    expect(selectWorkloads(ALL)).toEqual(WORKLOAD_LIST);
    expect(() => selectWorkloads('nonsense')).toThrow(/valid: .*all/);
  });
});

describe('every workload, run over basic and the baselines', () => {
  const settings: BenchSettings = {
    threads: [1],
    durationSeconds: Infinity,
    repeat: 1,
    warmup: false,
    fill: 'memset',
    maxIterations: 2_000,
    verify: true,
    heapBytes: 64 << 20,
    isolate: false,
    trials: 1,
    seed: 1,
    inAll: false,
  };
  let contenders: Contender[];
  let results: Awaited<ReturnType<typeof runBench>>;
  beforeAll(async () => {
    await discoverBackends();
    contenders = [...resolveBackendContenders([{ name: 'basic', options: {} }]), baselineContender('thi.ng'), baselineContender('bump')];
    let steps = 0;
    const progress = { step: () => void steps++, done: () => undefined };
    results = await runBench(WORKLOAD_LIST, contenders, settings, progress);
    expect(steps).toBe(countSteps(WORKLOAD_LIST, contenders, settings));
  }, 120_000);

  it.each(WORKLOAD_LIST.map((workload) => [workload.name, workload] as const))('%s: rows under its JSON key, a table, charts', async (_name, workload) => {
    const rows = rowsOf(results, workload);
    expect(Object.keys(results)).toContain(workload.resultKey);
    expect(JSON.parse(JSON.stringify(results))[workload.resultKey]).toEqual(rows);
    expect(rows.map((row) => row.label)).toContain('basic');
    expect(rows.filter((row) => row.error !== undefined)).toEqual([]);
    const section = workload.section(rows, runContextOf(results));
    expect(summary(results)).toContain(`${wrapText(section.title)}\n${section.table}`);
    expect(section.table).toMatch(/^basic /m);
    // The report has a chart for every workload that has rows, drawn without a warning or a cut label.
    const charts = workload.charts(rows.filter((row) => row.error === undefined));
    expect(charts.length).toBeGreaterThan(0);
    for (const chart of charts) {
      const { svg, warnings } = await renderChart(chart.spec);
      expect(warnings, chart.id).toEqual([]);
      expect(svg, chart.id).toContain('>basic</text>');
      expect(svg, chart.id).not.toContain('…');
    }
  });

  it('gives each workload exactly the contenders it applies to', () => {
    for (const workload of WORKLOAD_LIST) {
      const labels = new Set(rowsOf(results, workload).map((row) => row.label));
      const applies = contenders.filter((contender) => workload.appliesTo(contender)).map((contender) => contender.label);
      expect([...labels], workload.name).toEqual(applies);
    }
  });

  it(`prints no line wider than ${TEXT_WIDTH} columns, nor a narrower terminal's, with every contender's longest label`, () => {
    expect(widestLine(summary(results))).toBeLessThanOrEqual(TEXT_WIDTH);
    // The rows again under the labels of a run of every backend and baseline, and as
    // 4-thread rows (a figure per thread) measured with the cores far apart (a note naming them).
    const crowded = Object.fromEntries(
      Object.entries(results).map(([key, value]) =>
        key === 'meta' || key === 'unavailable'
          ? [key, value]
          : [key, (value as WorkloadRow[]).flatMap((row) => LONG_LABELS.map((label) => crowdedRow(row, label)))],
      ),
    ) as typeof results;
    for (const width of [TEXT_WIDTH, 80]) {
      const text = summary(crowded, width);
      expect(widestLine(text), text).toBeLessThanOrEqual(width);
      expect(text).toMatch(/^native mimalloc 2\.0\.9 +4 /m);
      expect(text).toContain('note: a cache line took');
    }
  });

  it('has every key, empty, for workloads that did not run', async () => {
    const nothing = await runBench([], [], settings, silentProgress);
    for (const workload of WORKLOAD_LIST) expect(rowsOf(nothing, workload)).toEqual([]);
  });
});
