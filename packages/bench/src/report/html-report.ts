/**
 * The HTML report (`heaplab bench --report FILE`, `heaplab report FILES --out FILE`): one
 * self-contained page (inline SVG charts, tables, no scripts or external files) and each
 * chart also as `FILE-<chart>.svg` next to it. Each workload makes its charts as vega-lite
 * specifications; vega renders them headless to SVG here, with `CHART_CONFIG` under each
 * spec's own config, a `<title>` tooltip on every mark that has a description, and vega's
 * warnings gathered rather than printed (the page lists them, the terminal stays clean).
 */

import { writeFileSync } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';

import type * as Vega from 'vega';
import type * as VegaLite from 'vega-lite';

import type { BenchMeta } from '../run/workload.js';
import { WORKLOAD_LIST } from '../workloads/index.js';
import { asTopLevelSpec, CHART_CONFIG, type Chart, type ChartSpec, NARROW_CHART_WIDTH, NARROW_SCREEN_PX } from './chart.js';
import { type BenchResults, rowsOf } from './results.js';
import type { HeapMapFile } from './sources.js';
import { summary } from './summary.js';

/** The charts the results allow, each workload's in list order (a workload that did not run has none). */
export function reportCharts(results: BenchResults): Chart[] {
  return WORKLOAD_LIST.flatMap((workload) => workload.charts(rowsOf(results, workload).filter((row) => row.error === undefined)));
}

/**
 * vega and vega-lite, imported on the first chart: they are most of what installing the
 * bench brings (tens of MB) and take a good part of a second to load, which every command
 * that writes no report (and `--help`) should not pay.
 */
let charting: Promise<{ vega: typeof Vega; vegaLite: typeof VegaLite }> | null = null;

function loadCharting(): Promise<{ vega: typeof Vega; vegaLite: typeof VegaLite }> {
  charting ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vegaLite]) => ({ vega, vegaLite }));
  return charting;
}

/** A rendered chart, with what vega and vega-lite said while making it. */
export interface RenderedSvg {
  svg: string;
  warnings: string[];
}

/** A logger for vega and vega-lite that keeps warnings and errors in `into` instead of printing them. */
function gatheringLogger(into: string[]): Vega.LoggerInterface {
  const logger: Vega.LoggerInterface = {
    level: ((_level?: number) => logger) as Vega.LoggerInterface['level'],
    error: (...args: readonly unknown[]) => {
      into.push(`error: ${args.map(String).join(' ')}`);
      return logger;
    },
    warn: (...args: readonly unknown[]) => {
      into.push(args.map(String).join(' '));
      return logger;
    },
    info: () => logger,
    debug: () => logger,
  };
  return logger;
}

/**
 * A tooltip for every mark vega described: vega's SVG gives a described mark an `aria-label`
 * (vega-lite's `description` channel) but draws no tooltip, and a `<title>` child is what a
 * browser shows on hover, with no script.
 */
function addTitles(svg: string): string {
  return svg.replace(
    /<(path|rect|circle|line|text)(\s[^>]*?\baria-label="([^"]*)"[^>]*?role="graphics-symbol"[^>]*?)\/>/g,
    (_match, tag: string, attributes: string, label: string) => `<${tag}${attributes}><title>${label}</title></${tag}>`,
  );
}

/** `CHART_CONFIG` under a spec's own config, one level deep (a spec's `legend` keeps the common legend's other settings). */
function mergedConfig(own: Record<string, unknown>): Record<string, unknown> {
  const merged: Record<string, unknown> = { ...CHART_CONFIG };
  for (const [key, value] of Object.entries(own)) {
    const common = merged[key];
    const bothObjects = typeof common === 'object' && common !== null && typeof value === 'object' && value !== null && !Array.isArray(value);
    merged[key] = bothObjects ? { ...common, ...value } : value;
  }
  return merged;
}

/** Renders a vega-lite spec to SVG, headless, with the report's common config. */
export async function renderChart(spec: ChartSpec): Promise<RenderedSvg> {
  const { vega, vegaLite } = await loadCharting();
  const warnings: string[] = [];
  const logger = gatheringLogger(warnings);
  const withConfig = asTopLevelSpec({ ...spec, config: mergedConfig((spec as { config?: Record<string, unknown> }).config ?? {}) });
  const compiled = vegaLite.compile(withConfig, { logger: logger as never }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logger, logLevel: vega.Warn });
  const svg = addTitles(await view.toSVG());
  view.finalize();
  return { svg, warnings };
}

/** Renders a vega-lite spec to SVG (its warnings dropped: `renderChart` has them). */
export async function renderSvg(spec: ChartSpec): Promise<string> {
  return (await renderChart(spec)).svg;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"]/g, (char) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[char]!);
}

/**
 * An SVG that scales to its column: the root's fixed width and height give way to a
 * viewBox (added from them when missing), CSS width 100 % and at most its own width, so a
 * chart shrinks on a narrow screen instead of running off it.
 */
function fluidSvg(svg: string): string {
  return svg.replace(/^\s*<svg\b([^>]*)>/, (_root, attributes: string) => {
    const width = Number(/\swidth="([\d.]+)(px)?"/.exec(attributes)?.[1]);
    const height = Number(/\sheight="([\d.]+)(px)?"/.exec(attributes)?.[1]);
    let rest = attributes.replace(/\s(width|height)="[^"]*"/g, '');
    if (!/\sviewBox=/.test(rest) && width > 0 && height > 0) rest += ` viewBox="0 0 ${width} ${height}"`;
    const style = width > 0 ? ` style="max-width: ${width}px"` : '';
    return `<svg${rest}${style} class="fluid" preserveAspectRatio="xMinYMin meet">`;
  });
}

/** The page's CSS: one column that reflows; nothing wider than the screen. */
const STYLE = `
*, *::before, *::after { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; max-width: 1000px; margin: 0 auto; padding: 1.5rem 1rem 3rem; background: #fafbfc; overflow-wrap: anywhere; }
h1 { font-size: 1.6rem; margin: 0 0 .4rem; line-height: 1.2; } h2 { font-size: 1.2rem; margin-top: 2.2rem; border-bottom: 1px solid #dde2ea; padding-bottom: .3rem; }
h3 { font-size: 1rem; margin: 1.4rem 0 .3rem; }
.meta { color: #3a4356; margin: .2rem 0; } .meta code { background: #eef1f6; padding: .1rem .35rem; border-radius: 4px; font-size: .9em; white-space: pre-wrap; }
.caption { color: #4a5468; margin-top: -.3rem; }
.chart { background: white; border: 1px solid #e3e7ee; border-radius: 8px; padding: .6rem; }
.chart svg.fluid { display: block; width: 100%; height: auto; }
nav ul { padding-left: 1.2rem; columns: 14rem; } nav li { break-inside: avoid; }
dl.figures { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; margin: .5rem 0 0; } dl.figures div { display: flex; gap: .4rem; }
dl.figures dt { color: #4a5468; } dl.figures dd { margin: 0; font-variant-numeric: tabular-nums; }
pre { background: #1d2330; color: #e8ecf3; padding: 1rem; border-radius: 8px; font-size: 12px; line-height: 1.45; white-space: pre-wrap; overflow-wrap: anywhere; }
.warnings { color: #8a4b00; }
.chart .narrow { display: none; }
@media (max-width: ${NARROW_SCREEN_PX}px) { .chart .wide { display: none; } .chart .narrow { display: block; } }
@media (max-width: 600px) { body { font-size: 14px; padding: 1rem .6rem 2rem; } pre { font-size: 10.5px; padding: .6rem; } }
`;

/** One run's header lines: version and command, then when, where and how. */
function metaLines(meta: BenchMeta, file?: string): string {
  const version = meta.version !== undefined ? `heaplab ${escapeHtml(meta.version)}` : 'heaplab (version not recorded)';
  const command = meta.command !== undefined ? `<code>${escapeHtml(meta.command)}</code>` : '(command not recorded)';
  const host = meta.host !== undefined ? `${escapeHtml(meta.host)}: ` : '';
  return [
    `<p class="meta">${file !== undefined ? `<strong>${escapeHtml(basename(file))}</strong> &middot; ` : ''}${version} &middot; ${command}</p>`,
    `<p class="meta">${escapeHtml(meta.date)} &middot; ${host}Node ${escapeHtml(meta.node)}, ${meta.cpus} &times; ${escapeHtml(meta.cpuModel)} &middot; ` +
      `${meta.durationSeconds} s per timed run, ${meta.repeat} run${meta.repeat === 1 ? '' : 's'} per row &middot; threads ${meta.threads.join(', ')}` +
      `${meta.verify ? ' &middot; verified' : ''}</p>`,
  ].join('\n');
}

/** What a report page shows. */
export interface ReportPage {
  /** The bench results (merged when from several runs), or null for a page of heap maps only. */
  results: BenchResults | null;
  /** Each run's meta, with its file for a merged report. */
  runs: { meta: BenchMeta; file?: string; tag?: string }[];
  maps: { file: string; map: HeapMapFile }[];
}

/** A figure as a map's list shows it: integers with separators, others with four digits. */
function formatFigure(value: number | null): string {
  if (value === null) return '-';
  return Number.isInteger(value) ? value.toLocaleString('en-US') : value.toPrecision(4);
}

/**
 * Writes the HTML page at `path` and one SVG per chart beside it; returns the files written
 * and the warnings vega gave (also listed at the page's end).
 * @throws Error when a file cannot be written
 */
export async function writeReportPage(page: ReportPage, path: string): Promise<{ files: string[]; warnings: string[] }> {
  const charts = page.results === null ? [] : reportCharts(page.results);
  const stem = join(dirname(path), basename(path, extname(path)));
  const written: string[] = [];
  const sections: string[] = [];
  const contents: string[] = [];
  const warnings: string[] = [];
  for (const chart of charts) {
    const rendered = await renderChart(chart.spec);
    warnings.push(...rendered.warnings.map((warning) => `${chart.id}: ${warning}`));
    // The phone's copy: the same chart with a narrower plot (a spec of a fixed width only).
    const narrow =
      typeof (chart.spec as { width?: unknown }).width === 'number'
        ? await renderChart({
            ...chart.spec,
            width: NARROW_CHART_WIDTH,
            // One legend entry a line: two side by side are wider than the narrow plot.
            config: {
              ...(chart.spec as { config?: object }).config,
              legend: { ...(chart.spec as { config?: { legend?: object } }).config?.legend, columns: 1 },
            },
          } as typeof chart.spec)
        : null;
    const drawn =
      narrow === null ? fluidSvg(rendered.svg) : `<div class="wide">${fluidSvg(rendered.svg)}</div><div class="narrow">${fluidSvg(narrow.svg)}</div>`;
    const svgPath = `${stem}-${chart.id}.svg`;
    writeFileSync(svgPath, rendered.svg);
    written.push(svgPath);
    contents.push(`<li><a href="#${chart.id}">${escapeHtml(chart.title)}</a></li>`);
    sections.push(
      `<section id="${chart.id}"><h2>${escapeHtml(chart.title)}</h2><p class="caption">${escapeHtml(chart.caption)}</p>` +
        `<div class="chart" data-chart="${chart.id}">${drawn}</div></section>`,
    );
  }
  page.maps.forEach(({ file, map }, mapIndex) => {
    const id = `map-${mapIndex + 1}`;
    contents.push(`<li><a href="#${id}">heap map: ${escapeHtml(map.workload)}</a></li>`);
    const moments = map.moments.map((moment, index) => {
      const figures = Object.entries(moment.figures)
        .map(([name, value]) => `<div><dt>${escapeHtml(name)}</dt><dd>${formatFigure(value)}</dd></div>`)
        .join('');
      return (
        `<h3>${escapeHtml(moment.backend)}: ${escapeHtml(moment.at)}</h3>` +
        `<div class="chart" data-chart="${id}-${index + 1}">${fluidSvg(moment.svg)}</div><dl class="figures">${figures}</dl>`
      );
    });
    sections.push(
      `<section id="${id}"><h2>heap map: ${escapeHtml(map.workload)}</h2><p class="caption">From ${escapeHtml(basename(file))}` +
        `${map.meta.date !== undefined ? `, ${escapeHtml(String(map.meta.date))}` : ''}${map.meta.command !== undefined ? `: <code>${escapeHtml(String(map.meta.command))}</code>` : ''}. ` +
        `Each map draws the arena at one moment of the run; its figures are below it.</p>${moments.join('\n')}</section>`,
    );
  });
  const header = page.runs.map((run) => metaLines(run.meta, page.runs.length > 1 ? run.file : undefined)).join('\n');
  const tags = page.runs.filter((run) => run.tag !== undefined && run.tag !== '');
  const tagNote =
    tags.length > 0
      ? `<p class="meta">Rows that both runs have are labelled by run: ${tags.map((run) => `&ldquo;@ ${escapeHtml(run.tag!)}&rdquo;`).join(', ')}.</p>`
      : '';
  const figures = page.results === null ? '' : `<section id="figures"><h2>Figures</h2><pre>${escapeHtml(summary(page.results))}</pre></section>`;
  if (page.results !== null) contents.push('<li><a href="#figures">Figures (the terminal summary)</a></li>');
  const warningList =
    warnings.length === 0 ? '' : `<h2>Chart warnings</h2><ul class="warnings">${warnings.map((warning) => `<li>${escapeHtml(warning)}</li>`).join('')}</ul>`;
  const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heaplab report</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>${STYLE}</style></head><body>
<header><h1>heaplab report</h1>
${header}
${tagNote}
<p class="meta">Hover a bar for its figures. Bars are medians; a black line across a bar spans the slowest to the fastest of its repeated runs.</p></header>
<nav><ul>${contents.join('')}</ul></nav>
${sections.join('\n')}
${figures}
${warningList}
</body></html>
`;
  writeFileSync(path, html);
  written.unshift(path);
  return { files: written, warnings };
}

/**
 * Writes the report of one bench run at `path` and one SVG per chart beside it; returns the
 * files written.
 * @throws Error when a file cannot be written
 */
export async function writeReport(results: BenchResults, path: string): Promise<string[]> {
  return (await writeReportPage({ results, runs: [{ meta: results.meta }], maps: [] }, path)).files;
}
