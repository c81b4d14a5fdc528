/**
 * `heaplab stats`: runs a workload to its end (its final clean-up skipped, so the heap is as
 * the workload left it) on one backend, then prints the fragmentation figures and every
 * table of the backend's `classStats()` (slab's slabinfo, buddy's orders, ...), as text
 * tables; `--json` writes them too (docs/heap-maps.md).
 *
 *   heaplab stats --backend slab --workload glibc-thread [--json FILE]
 */

import type { StatsTable } from '@heaplab/core';
import type { Command } from 'commander';

import type { BackendChoice } from '../contenders/backends.js';
import type { BackendContender } from '../contenders/contender.js';
import { FIGURE_ROWS, type FragmentationFigures, formatFigure } from '../inspect/fragmentation.js';
import { heapBytesOf, type MapTarget, NoWalkError, takeMoments } from '../inspect/heap-moments.js';
import { renderTable, wrapText } from '../report/text-table.js';
import { failRun } from './fail-run.js';
import { backendErrorMessage, inspectedBackends } from './inspect-options.js';
import { textOut, textWidth, writeJsonOutput } from './json-output.js';
import { checkOutputPath } from './output-path.js';

export interface StatsOptions {
  backend?: BackendChoice[];
  workload: MapTarget;
  heapMib?: number;
  iterations?: number;
  seed: number;
  json?: string;
}

/** The figures as a two-column table. */
export function figuresTable(figures: FragmentationFigures): string {
  return renderTable(
    ['figure', 'value'],
    FIGURE_ROWS.map((row) => [row.label, formatFigure(figures[row.key], row.unit)]),
    new Set([1]),
  );
}

/** One `StatsTable` as a text table: numbers right-aligned, thousands separated, no wider than `width`. */
export function statsTableText(table: StatsTable, width?: number): string {
  const numeric = new Set(
    table.columns.map((column, index) => (table.rows.length > 0 && table.rows.every((row) => typeof row[column.key] === 'number') ? index : -1)),
  );
  const cell = (value: number | string | undefined): string => (value === undefined ? '-' : typeof value === 'number' ? value.toLocaleString('en-US') : value);
  return renderTable(
    table.columns.map((column) => column.label),
    table.rows.map((row) => table.columns.map((column) => cell(row[column.key]))),
    numeric,
    { width },
  );
}

export async function statsCommand(options: StatsOptions, command: Command): Promise<void> {
  let contenders: BackendContender[];
  try {
    ({ contenders } = await inspectedBackends(options.backend));
  } catch (error) {
    command.error(backendErrorMessage(error), { exitCode: 1 });
  }
  if (contenders.length !== 1) {
    command.error(`error: stats takes one backend, not ${contenders.length === 0 ? 'none' : contenders.map((contender) => contender.label).join(', ')}`, {
      exitCode: 1,
    });
  }
  checkOutputPath(command, '--json', options.json, 'file');
  const contender = contenders[0]!;
  const target = options.workload;
  const settings = { heapBytes: options.heapMib === undefined ? undefined : options.heapMib << 20, iterations: options.iterations };
  let moment: ReturnType<typeof takeMoments>[number];
  try {
    [moment] = takeMoments(contender, target, [{ label: '100%', fraction: 1 }], settings) as [ReturnType<typeof takeMoments>[number]];
  } catch (error) {
    if (error instanceof NoWalkError) failRun(command, `error: ${error.message}`);
    failRun(command, `error: ${target.name} on ${contender.label} failed: ${error instanceof Error ? error.message : String(error)}`, 2);
  }
  const heapBytes = heapBytesOf(target, settings);
  const print = textOut(options.json);
  const width = textWidth(options.json);
  print(`${contender.label}, ${target.name} to its end (final clean-up skipped), heap ${heapBytes >>> 20} MiB\n`);
  print(figuresTable(moment.figures));
  for (const table of moment.tables) print(`\n${wrapText(`${table.name}: ${table.description}`, width)}\n${statsTableText(table, width)}`);
  if (moment.tables.length === 0) print(`\n(${contender.label} keeps no per-class tables)`);
  if (options.json !== undefined) {
    const json = {
      kind: 'heaplab-stats',
      meta: {
        command: ['heaplab', ...process.argv.slice(2)].join(' '),
        date: new Date().toISOString(),
        node: process.version,
        heapBytes,
        seed: options.seed,
      },
      workload: target.name,
      backend: contender.label,
      figures: moment.figures,
      tables: moment.tables,
    };
    writeJsonOutput(options.json, json);
  }
}
