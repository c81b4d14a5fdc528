/**
 * `--report FILE`: one self-contained HTML page (inline SVG charts, tables, no scripts or
 * external files) and each chart also as `FILE-<chart>.svg` next to it. Charts are
 * vega-lite specifications rendered headless by vega to SVG.
 */

import { writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

import { formatBytes } from './format.js';
import type { BenchResults } from './results.js';
import { summary } from './summary.js';

/** A chart of the report. */
interface Chart {
  /** File-name suffix and HTML anchor. */
  id: string;
  title: string;
  caption: string;
  spec: vegaLite.TopLevelSpec;
}

const PALETTE = { scheme: 'tableau10' } as const;
const WIDTH = 560;

/** The charts the results allow (a workload that did not run has none). */
export function reportCharts(results: BenchResults): Chart[] {
  const charts: Chart[] = [];
  const okThroughput = results.glibcThread.filter((row) => row.error === undefined);
  if (okThroughput.length > 0) {
    charts.push({
      id: 'throughput',
      title: 'glibc-thread: iterations per second against threads',
      caption: 'bench-malloc-thread, higher is better. One line per backend; baselines dashed.',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        width: WIDTH,
        height: 320,
        data: { values: okThroughput.map((row) => ({ backend: row.label, threads: row.threads, rate: row.perSecond, baseline: row.kind !== 'heaplab' })) },
        mark: { type: 'line', point: { size: 60 }, strokeWidth: 2.5 },
        encoding: {
          x: { field: 'threads', type: 'quantitative', axis: { tickMinStep: 1, format: 'd' }, title: 'threads' },
          y: { field: 'rate', type: 'quantitative', scale: { type: 'log' }, axis: { format: '~s' }, title: 'iterations / s (log)' },
          color: { field: 'backend', type: 'nominal', scale: PALETTE, title: null },
          strokeDash: { field: 'baseline', type: 'nominal', legend: null },
          tooltip: [{ field: 'backend' }, { field: 'threads' }, { field: 'rate', format: '.3s' }],
        },
      },
    });
    const withFootprint = okThroughput.filter((row) => row.peakFootprintBytes !== null);
    if (withFootprint.length > 0) {
      charts.push({
        id: 'footprint',
        title: 'glibc-thread: peak footprint',
        caption: 'Highest byte any block reached, from the start of the heap: the heap each backend needed. Lower is better.',
        spec: {
          $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
          width: WIDTH,
          height: 280,
          data: { values: withFootprint.map((row) => ({ backend: row.label, threads: `${row.threads} thr`, kib: row.peakFootprintBytes! / 1024 })) },
          mark: { type: 'bar', cornerRadiusEnd: 2 },
          encoding: {
            y: { field: 'backend', type: 'nominal', title: null },
            yOffset: { field: 'threads', type: 'nominal' },
            x: { field: 'kib', type: 'quantitative', title: 'peak footprint (KiB)' },
            color: { field: 'threads', type: 'nominal', scale: { scheme: 'set2' as const }, title: null },
          },
        },
      });
    }
  }
  const okEfficiency = results.heapEfficiency.filter((row) => row.error === undefined);
  if (okEfficiency.length > 0) {
    charts.push({
      id: 'efficiency',
      title: 'heap efficiency',
      caption: `Requested bytes live when the heap first fails, over the heap size (${formatBytes(okEfficiency[0]!.heapBytes)}, ${okEfficiency[0]!.trials} trials, seed ${okEfficiency[0]!.seed}). Higher is better; Talc's published figures: dlmalloc 97.7 %, TLSF 97.3 %, buddy 58.9 %.`,
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        width: WIDTH,
        height: { step: 28 },
        data: { values: okEfficiency.map((row) => ({ backend: row.label, efficiency: row.efficiencyPercent })) },
        layer: [
          { mark: { type: 'bar', cornerRadiusEnd: 2 }, encoding: { color: { field: 'backend', type: 'nominal', scale: PALETTE, legend: null } } },
          { mark: { type: 'text', align: 'left', dx: 4 }, encoding: { text: { field: 'efficiency', type: 'quantitative', format: '.1f' } } },
        ],
        encoding: {
          y: { field: 'backend', type: 'nominal', sort: '-x', title: null },
          x: { field: 'efficiency', type: 'quantitative', scale: { domain: [0, 100] }, title: 'heap efficiency (%)' },
        },
      },
    });
  }
  const okPairs = results.allocPairs.filter((row) => row.error === undefined);
  if (okPairs.length > 0) {
    charts.push({
      id: 'alloc-pairs',
      title: 'alloc-pairs: pairs per second',
      caption: 'A random free and an allocation of 16..512 bytes per pair, 1000 live blocks per thread. Higher is better.',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        width: WIDTH,
        height: 280,
        data: { values: okPairs.map((row) => ({ backend: row.label, threads: `${row.threads} thr`, rate: row.perSecond })) },
        mark: { type: 'bar', cornerRadiusEnd: 2 },
        encoding: {
          y: { field: 'backend', type: 'nominal', title: null },
          yOffset: { field: 'threads', type: 'nominal' },
          x: { field: 'rate', type: 'quantitative', axis: { format: '~s' }, title: 'pairs / s' },
          color: { field: 'threads', type: 'nominal', scale: { scheme: 'set2' as const }, title: null },
        },
      },
    });
  }
  return charts;
}

/** Renders a vega-lite spec to SVG, headless. */
export async function renderSvg(spec: vegaLite.TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(vegaLite.compile(spec).spec), { renderer: 'none', logLevel: vega.Error });
  const svg = await view.toSVG();
  view.finalize();
  return svg;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[char]!);
}

/**
 * Writes the HTML report at `path` and one SVG per chart beside it; returns the files written.
 * @throws Error when a file cannot be written
 */
export async function writeReport(results: BenchResults, path: string): Promise<string[]> {
  const charts = reportCharts(results);
  const stem = join(dirname(path), basename(path, extname(path)));
  const written: string[] = [];
  const sections: string[] = [];
  for (const chart of charts) {
    const svg = await renderSvg(chart.spec);
    const svgPath = `${stem}-${chart.id}.svg`;
    writeFileSync(svgPath, svg);
    written.push(svgPath);
    sections.push(`<section id="${chart.id}"><h2>${escapeHtml(chart.title)}</h2><p class="caption">${escapeHtml(chart.caption)}</p><div class="chart">${svg}</div></section>`);
  }
  const meta = results.meta;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heaplab bench report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; max-width: 980px; margin: 2rem auto; padding: 0 1.2rem; background: #fafbfc; }
h1 { font-size: 1.7rem; margin-bottom: .2rem; } h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #dde2ea; padding-bottom: .3rem; }
.meta { color: #5a6478; } .caption { color: #5a6478; margin-top: -.4rem; }
.chart { background: white; border: 1px solid #e3e7ee; border-radius: 8px; padding: .8rem; overflow-x: auto; }
pre { background: #1d2330; color: #e8ecf3; padding: 1rem; border-radius: 8px; overflow-x: auto; font-size: 12.5px; line-height: 1.45; }
</style></head><body>
<h1>heaplab bench report</h1>
<p class="meta">${escapeHtml(meta.date)} &middot; Node ${escapeHtml(meta.node)} &middot; ${meta.cpus} &times; ${escapeHtml(meta.cpuModel)} &middot; ${meta.durationSeconds} s per timed run &middot; threads ${meta.threads.join(', ')}${meta.verify ? ' &middot; verified' : ''}</p>
${sections.join('\n')}
<h2>Figures</h2>
<pre>${escapeHtml(summary(results))}</pre>
</body></html>
`;
  writeFileSync(path, html);
  written.unshift(path);
  return written;
}
