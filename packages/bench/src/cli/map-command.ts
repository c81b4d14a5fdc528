/**
 * `heaplab map`: runs a workload on each backend and draws the heap at given moments of the
 * run, one SVG per backend and moment, with `map.json` for tools and, with `--html`, one
 * page of them side by side (docs/heap-maps.md).
 *
 *   heaplab map --backend all --workload random-free --at 25%,50%,100% --out maps/ [--html]
 *
 * A backend without a walk fails the command when it is the only one named, and is skipped
 * with a line saying so under `--backend all`. Bad options exit with status 1; a run that
 * failed on some backend, with status 2.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Command } from 'commander';

import type { BackendChoice } from '../contenders/backends.js';
import type { BackendContender } from '../contenders/contender.js';
import { FIGURE_ROWS, type FragmentationFigures, formatFigure } from '../inspect/fragmentation.js';
import { heapMapSvg } from '../inspect/heap-map-svg.js';
import { heapBytesOf, type MapTarget, type MomentSpec, NoWalkError, takeMoments } from '../inspect/heap-moments.js';
import { renderTable, textWidthOf } from '../report/text-table.js';
import { failRun } from './fail-run.js';
import { backendErrorMessage, inspectedBackends } from './inspect-options.js';
import { printStatus } from './json-output.js';
import { checkOutputPath } from './output-path.js';

/** `map.json`'s `meta.version`: the version of its shape, raised when the shape changes. */
export const MAP_JSON_VERSION = 1;

export interface MapOptions {
  backend?: BackendChoice[];
  workload: MapTarget;
  at: MomentSpec[];
  out: string;
  html: boolean;
  heapMib?: number;
  iterations?: number;
  seed: number;
}

/** `map.json`: the shape the report reads. */
export interface MapJson {
  kind: 'heaplab-map';
  meta: { version: number; command: string; date: string; node: string; heapBytes: number; seed: number };
  workload: string;
  /** `svg` is the map's markup (what the report embeds); `file` the SVG file written beside it. */
  moments: { backend: string; at: string; file: string; svg: string; figures: Record<string, number | null> }[];
}

/** A file name part from a label (`basic:strategy=best-fit` → `basic_strategy_best-fit`). */
export function fileSafe(label: string): string {
  return label.replace(/[^A-Za-z0-9._-]+/g, '_');
}

/** The SVG file of one backend and moment: `tlsf-50.svg` for 50 %. */
export function svgFileName(backend: string, at: string): string {
  return `${fileSafe(backend)}-${fileSafe(at.replace(/%$/, ''))}.svg`;
}

export async function mapCommand(options: MapOptions, command: Command): Promise<void> {
  let contenders: BackendContender[];
  let all: boolean;
  try {
    ({ contenders, all } = await inspectedBackends(options.backend));
  } catch (error) {
    command.error(backendErrorMessage(error), { exitCode: 1 });
  }
  const target = options.workload;
  const settings = { heapBytes: options.heapMib === undefined ? undefined : options.heapMib << 20, iterations: options.iterations };
  checkOutputPath(command, '--out', options.out, 'folder');
  mkdirSync(options.out, { recursive: true });
  const moments: MapJson['moments'] = [];
  const rows: string[][] = [];
  let failed = false;
  for (const contender of contenders) {
    let taken: ReturnType<typeof takeMoments>;
    try {
      taken = takeMoments(contender, target, options.at, settings);
    } catch (error) {
      if (error instanceof NoWalkError && all) {
        console.error(`skipped ${contender.label}: its backend has no walk(), so it cannot be mapped`);
        continue;
      }
      if (error instanceof NoWalkError) failRun(command, `error: ${error.message}`);
      console.error(`${contender.label}: FAILED: ${error instanceof Error ? error.message : String(error)}`);
      failed = true;
      continue;
    }
    for (const moment of taken) {
      const file = svgFileName(contender.label, moment.at.label);
      const arenaStart = moment.regions[0]?.address ?? 0;
      const svg = heapMapSvg(moment.regions, arenaStart, moment.figures, { backend: contender.label, workload: target.name, at: moment.at.label });
      writeFileSync(join(options.out, file), svg);
      moments.push({ backend: contender.label, at: moment.at.label, file, svg, figures: { ...moment.figures } });
      rows.push(summaryRow(contender.label, moment.at.label, moment.figures));
    }
  }
  if (rows.length > 0) {
    console.log(
      renderTable(
        ['backend', 'at', 'live blocks', 'free', 'free blocks', 'largest free', 'external frag', 'internal frag', 'extra memory rate'],
        rows,
        new Set([2, 3, 4, 5, 6, 7, 8]),
        // Split, the free space's figures stay together, and the fragmentation's.
        { width: textWidthOf(process.stdout), keyColumns: 2, groupStarts: [2, 3, 6] },
      ),
    );
  }
  const json: MapJson = {
    kind: 'heaplab-map',
    meta: {
      version: MAP_JSON_VERSION,
      command: ['heaplab', ...process.argv.slice(2)].join(' '),
      date: new Date().toISOString(),
      node: process.version,
      heapBytes: heapBytesOf(target, settings),
      seed: options.seed,
    },
    workload: target.name,
    moments,
  };
  writeFileSync(join(options.out, 'map.json'), `${JSON.stringify(json, null, 2)}\n`);
  const written = [`${moments.length} SVG${moments.length === 1 ? '' : 's'}`, 'map.json'];
  if (options.html) {
    writeFileSync(join(options.out, 'index.html'), mapPage(json));
    written.push('index.html');
  }
  printStatus(`wrote ${written.join(', ')} in ${options.out}`);
  if (moments.length === 0 && !failed) failRun(command, 'error: no backend could be mapped');
  if (failed) process.exitCode = 2;
}

/** One line of the terminal summary. */
function summaryRow(backend: string, at: string, figures: FragmentationFigures): string[] {
  const short = (bytes: number): string => formatFigure(bytes, 'bytes').replace(/^.*\((.*)\)$/, '$1');
  return [
    backend,
    at,
    formatFigure(figures.liveBlocks, 'count'),
    short(figures.freeBytes),
    formatFigure(figures.freeBlocks, 'count'),
    short(figures.largestFreeBlock),
    formatFigure(figures.externalFragmentation, 'share'),
    formatFigure(figures.internalFragmentationShare, 'share'),
    formatFigure(figures.extraMemoryRate, 'share'),
  ];
}

function html(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** `index.html`: every map as an image, a row per moment, side by side, reflowing on a narrow screen. */
function mapPage(json: MapJson): string {
  const ats = [...new Set(json.moments.map((moment) => moment.at))];
  const sections = ats.map((at) => {
    const figures = json.moments
      .filter((moment) => moment.at === at)
      .map(
        (moment) =>
          `<figure><a href="${html(encodeURI(moment.file))}"><img src="${html(encodeURI(moment.file))}" alt="${html(`heap map of ${moment.backend} at ${at}`)}"></a>` +
          `<figcaption>${html(moment.backend)}: external fragmentation ${html(formatFigure(moment.figures.externalFragmentation ?? 0, 'share'))}, ` +
          `extra memory rate ${html(formatFigure(moment.figures.extraMemoryRate ?? 0, 'share'))}</figcaption></figure>`,
      );
    return `<h2>at ${html(at)}</h2>\n<div class="maps">\n${figures.join('\n')}\n</div>`;
  });
  const legend = FIGURE_ROWS.map((row) => row.label).join(', ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${html(`heaplab heap maps: ${json.workload}`)}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 1.5rem; color: #222; }
.maps { display: flex; flex-wrap: wrap; gap: 1rem; }
figure { margin: 0; flex: 1 1 36rem; max-width: 60rem; }
figure img { width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: 0.9rem; color: #444; }
</style>
</head>
<body>
<h1>${html(`Heap maps: ${json.workload}`)}</h1>
<p>${html(`${json.meta.command} (${json.meta.date}, Node ${json.meta.node}). Each map draws the arena in rows, coloured by region kind; beside it: ${legend}.`)}</p>
${sections.join('\n')}
</body>
</html>
`;
}
