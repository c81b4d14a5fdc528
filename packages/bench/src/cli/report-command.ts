/**
 * `heaplab report <files...> --out r.html`: one report page from the JSON of one or more
 * `heaplab bench --json` runs (from two machines, say: a workload's rows from every file side
 * by side, labelled by host or file where they collide) and from heap maps (`heaplab map
 * --out DIR` writes DIR/map.json). A file that cannot be read or is not a heaplab file exits
 * with status 1 and names the file, as bad arguments do elsewhere in the CLI.
 */

import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

import type { Command } from 'commander';

import { writeReportPage } from '../report/html-report.js';
import { mergeRuns, ReportInputError, readReportSource, type ReportSource } from '../report/sources.js';
import { failRun } from './fail-run.js';
import { printStatus } from './json-output.js';
import { checkOutputPath } from './output-path.js';

interface ReportOptions {
  out: string;
}

/** Reads `files`, merges them and writes the page; the files written go to stderr. */
export async function reportCommand(files: string[], options: ReportOptions, command: Command): Promise<void> {
  checkOutputPath(command, '--out', options.out, 'file');
  let sources: ReportSource[];
  try {
    sources = files.map(readReportSource);
  } catch (error) {
    if (error instanceof ReportInputError) failRun(command, `error: ${error.message}`);
    throw error;
  }
  const benches = sources.flatMap((source) => (source.kind === 'bench' ? [{ file: source.file, results: source.results }] : []));
  const maps = sources.flatMap((source) => (source.kind === 'map' ? [{ file: source.file, map: source.map }] : []));
  const merged = benches.length > 0 ? mergeRuns(benches) : null;
  mkdirSync(dirname(options.out), { recursive: true });
  let written: string[];
  try {
    ({ files: written } = await writeReportPage(
      {
        results: merged?.results ?? null,
        runs: merged?.runs.map((run) => ({ meta: run.meta, file: run.file, tag: run.tag })) ?? [],
        maps,
      },
      options.out,
    ));
  } catch (error) {
    // The files passed the checks of their shape (sources.ts), not of every figure a row
    // must carry: a row without one fails here, which is the input's fault, not a bug.
    if (!(error instanceof TypeError)) throw error;
    failRun(command, `error: ${files.join(', ')}: a row lacks a figure the report needs (${error.message}); was the file edited?`);
  }
  printStatus(`wrote ${written.join(', ')}`);
}

/** Adds `report` to `program`. */
export function addReportCommand(program: Command): void {
  program
    .command('report')
    .description('write one HTML report from the JSON of heaplab bench --json runs (merged side by side) and heap maps (map.json)')
    .argument('<files...>', 'files written by heaplab bench --json, or the map.json of heaplab map --out DIR')
    .requiredOption('-o, --out <file>', 'the HTML page to write (each chart also as an SVG beside it)')
    .action(reportCommand);
}
