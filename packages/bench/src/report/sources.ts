/**
 * What `heaplab report` reads: the JSON of `heaplab bench --json` (a `BenchResults`) and the
 * heap maps of `heaplab map --out DIR` (DIR/map.json, a `HeapMapFile`). Both are checked on
 * the way in, so a wrong file is named in a clear error rather than drawn as an empty page.
 */

import { readFileSync } from 'node:fs';
import { basename } from 'node:path';

import type { BenchMeta, WorkloadRow } from '../run/workload.js';
import { WORKLOAD_LIST } from '../workloads/index.js';
import { type BenchResults, rowsOf } from './results.js';

/** The `kind` a heap-map file declares. */
export const HEAP_MAP_KIND = 'heaplab-map';

/** One moment of a heap map: a backend's heap drawn at a point of a workload. */
export interface HeapMapMoment {
  backend: string;
  /** When it was drawn (`after warm-up`, `at the peak`...). */
  at: string;
  /** The map itself, inline SVG markup. */
  svg: string;
  /** Figures of that moment, by name; null where not measured. */
  figures: Record<string, number | null>;
}

/** What `heaplab map --out DIR` writes as DIR/map.json. */
export interface HeapMapFile {
  kind: typeof HEAP_MAP_KIND;
  meta: Partial<BenchMeta>;
  workload: string;
  moments: HeapMapMoment[];
}

/** One file given to `heaplab report`. */
export type ReportSource = { file: string; kind: 'bench'; results: BenchResults } | { file: string; kind: 'map'; map: HeapMapFile };

/** Why a file cannot go into a report. */
export class ReportInputError extends Error {
  override name = 'ReportInputError';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Markup a map's SVG must not hold: the report is a page of figures, not of scripts, and a
 * map file may come from anywhere.
 */
const UNSAFE_SVG = /<\s*(script|foreignObject|iframe|object|embed)\b|\son[a-z]+\s*=|javascript:/i;

/** `value` as a heap-map file, or the reason it is not one. */
function asHeapMap(value: Record<string, unknown>, file: string): HeapMapFile {
  const fail = (why: string): never => {
    throw new ReportInputError(`${file}: not a heaplab heap map: ${why}`);
  };
  if (typeof value.workload !== 'string') fail('no workload name');
  if (!isRecord(value.meta)) fail('no meta object');
  if (!Array.isArray(value.moments)) fail('no moments list');
  for (const [index, moment] of (value.moments as unknown[]).entries()) {
    if (!isRecord(moment)) {
      fail(`moment ${index + 1} is not an object`);
      continue;
    }
    if (typeof moment.backend !== 'string' || typeof moment.at !== 'string') fail(`moment ${index + 1} has no backend or no 'at'`);
    if (typeof moment.svg !== 'string' || !/^\s*<svg[\s>]/.test(moment.svg)) fail(`moment ${index + 1} has no SVG`);
    if (UNSAFE_SVG.test(moment.svg as string)) fail(`moment ${index + 1}'s SVG holds scripts or embedded content`);
    if (!isRecord(moment.figures) || !Object.values(moment.figures).every((figure) => figure === null || typeof figure === 'number')) {
      fail(`moment ${index + 1}'s figures are not numbers`);
    }
  }
  return value as unknown as HeapMapFile;
}

/** `value` as bench results, or the reason it is not. */
function asBenchResults(value: Record<string, unknown>, file: string): BenchResults {
  const fail = (why: string): never => {
    throw new ReportInputError(`${file}: not the JSON of heaplab bench --json: ${why}`);
  };
  const meta = value.meta;
  if (!isRecord(meta) || typeof meta.date !== 'string' || !Array.isArray(meta.threads)) fail('no meta with a date and thread counts');
  const known = WORKLOAD_LIST.filter((workload) => workload.resultKey in value);
  if (known.length === 0) fail(`no workload's rows (keys: ${Object.keys(value).join(', ') || 'none'})`);
  for (const workload of known) {
    const rows = value[workload.resultKey];
    if (!Array.isArray(rows) || !rows.every((row) => isRecord(row) && typeof row.label === 'string')) fail(`${workload.resultKey} is not a list of rows`);
    const badThreads = (rows as Record<string, unknown>[]).find((row) => 'threads' in row && !Number.isInteger(row.threads));
    if (badThreads !== undefined) fail(`${workload.resultKey} row '${badThreads.label}' has threads ${JSON.stringify(badThreads.threads)}, not a number`);
  }
  // Results of an older heaplab lack the newer keys: every listed workload gets its list.
  const filled = Object.fromEntries(WORKLOAD_LIST.map((workload) => [workload.resultKey, (value[workload.resultKey] as WorkloadRow[] | undefined) ?? []]));
  return { ...value, ...filled, unavailable: Array.isArray(value.unavailable) ? value.unavailable : [] } as unknown as BenchResults;
}

/**
 * Reads and checks one file.
 * @throws ReportInputError naming the file: unreadable, not JSON, or neither kind of heaplab file
 */
export function readReportSource(file: string): ReportSource {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new ReportInputError(`${file}: cannot read it: ${(error as Error).message}`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ReportInputError(`${file}: not JSON: ${(error as Error).message}`);
  }
  if (!isRecord(value)) throw new ReportInputError(`${file}: not a heaplab file: the JSON is not an object`);
  if (value.kind === HEAP_MAP_KIND) return { file, kind: 'map', map: asHeapMap(value, file) };
  if (typeof value.kind === 'string') {
    throw new ReportInputError(`${file}: a '${value.kind}' file; report reads the JSON of heaplab bench --json and heaplab map only`);
  }
  return { file, kind: 'bench', results: asBenchResults(value, file) };
}

/** The bench runs of a report, each with its file and the name its rows carry when labels collide. */
export interface MergedRuns {
  /** Every run's rows together, labels made distinct. */
  results: BenchResults;
  /** Each run's meta and the suffix its colliding rows got (empty when none). */
  runs: { file: string; meta: BenchMeta; tag: string }[];
}

/**
 * Puts the rows of several bench runs side by side: a workload's rows from every run, in file
 * order. Where two runs have rows of the same label and thread count in a workload, every
 * row of that workload gets its run's tag (`tlsf @ hostA`): the host when the runs' hosts
 * differ, else the file's name.
 */
export function mergeRuns(sources: readonly { file: string; results: BenchResults }[]): MergedRuns {
  if (sources.length === 0) throw new ReportInputError('no bench results to merge');
  const hosts = new Set(sources.map((source) => source.results.meta.host));
  const byHost = hosts.size === sources.length && !hosts.has(undefined as unknown as string);
  const files = new Set(sources.map((source) => basename(source.file)));
  const tagOf = (file: string, meta: BenchMeta): string => (byHost ? meta.host : files.size === sources.length ? basename(file) : file);
  const runs = sources.map((source) => ({ file: source.file, meta: source.results.meta, tag: '' }));
  const merged: Record<string, WorkloadRow[]> = {};
  for (const workload of WORKLOAD_LIST) {
    const perRun = sources.map((source) => rowsOf(source.results, workload));
    const keys = new Set<string>();
    let collide = false;
    for (const rows of perRun) {
      const own = new Set(rows.map((row) => `${row.label}\u0000${row.threads ?? ''}\u0000${(row as { test?: string }).test ?? ''}`));
      for (const key of own) keys.has(key) ? (collide = true) : keys.add(key);
    }
    merged[workload.resultKey] = perRun.flatMap((rows, index) => {
      if (!collide || sources.length === 1) return rows;
      const tag = tagOf(sources[index]!.file, sources[index]!.results.meta);
      runs[index]!.tag = tag;
      return rows.map((row) => ({ ...row, label: `${row.label} @ ${tag}` }));
    });
  }
  const unavailable = sources.flatMap((source) => source.results.unavailable);
  return { results: { ...sources[0]!.results, ...merged, unavailable } as BenchResults, runs };
}
