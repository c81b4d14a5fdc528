/**
 * `--report FILE`: one self-contained HTML page (inline SVG charts, tables, no scripts or
 * external files) and each chart also as `FILE-<chart>.svg` next to it. Each workload makes
 * its charts as vega-lite specifications; vega renders them headless to SVG.
 */

import { writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

import * as vega from 'vega';
import * as vegaLite from 'vega-lite';

import { WORKLOAD_LIST } from '../workloads/index.js';
import type { Chart } from './chart.js';
import { type BenchResults, rowsOf } from './results.js';
import { summary } from './summary.js';

/** The charts the results allow, each workload's in list order (a workload that did not run has none). */
export function reportCharts(results: BenchResults): Chart[] {
  return WORKLOAD_LIST.flatMap((workload) => workload.charts(rowsOf(results, workload).filter((row) => row.error === undefined)));
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
    sections.push(
      `<section id="${chart.id}"><h2>${escapeHtml(chart.title)}</h2><p class="caption">${escapeHtml(chart.caption)}</p><div class="chart">${svg}</div></section>`,
    );
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
