/**
 * A chart of the HTML report: a vega-lite specification a workload makes from its rows,
 * rendered to SVG by html-report.ts. The helpers here make the charts every workload shares
 * (bars per backend, grouped by thread count or by measure, with min..max error bars, direct
 * value labels and a tooltip per bar), so a workload's `charts()` only says what it measures.
 */

import type { TopLevelSpec } from 'vega-lite';

/**
 * A vega-lite specification as bench's public API types it: a JSON object, optionally naming
 * its schema. bench's own specs are checked against vega-lite's `TopLevelSpec` where they are
 * written (`vegaLiteSpec`), but that type stays out of the published declarations: vega-lite's
 * .d.ts does not compile under `exactOptionalPropertyTypes`, so naming it would fail the type
 * check of every strict program that imports @heaplab/bench.
 */
export interface ChartSpec {
  $schema?: string;
  [property: string]: unknown;
}

/** One chart. */
export interface Chart {
  /** File-name suffix and HTML anchor. */
  id: string;
  title: string;
  caption: string;
  spec: ChartSpec;
}

// The two conversions go through `unknown`: vega-lite's spec interfaces have no index
// signature, so TypeScript sees no overlap with `ChartSpec` either way.

/** `spec`, type-checked as vega-lite's `TopLevelSpec`, as the public `ChartSpec`. */
export function vegaLiteSpec(spec: TopLevelSpec): ChartSpec {
  return spec as unknown as ChartSpec;
}

/** `spec` as vega-lite's `TopLevelSpec`, for vega-lite's compiler (which validates it and logs what it rejects). */
export function asTopLevelSpec(spec: ChartSpec): TopLevelSpec {
  return spec as unknown as TopLevelSpec;
}

/** The schema every spec names. */
export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** One colour per backend (20, so that `bench all`'s variants do not share one). */
export const CHART_PALETTE = { scheme: 'tableau20' } as const;

/** One colour per thread count. */
export const THREADS_PALETTE = { scheme: 'set2' } as const;

/**
 * Plot width in pixels. The page scales each SVG down to its column (CSS), so this is the
 * width on a wide screen; the backend names on the left come on top of it, never cut.
 */
export const CHART_WIDTH = 520;

/**
 * What every chart gets, the latency workload's own included (html-report.ts merges it under
 * each spec's own `config`): axis and legend labels are never truncated (vega's default cuts
 * them at 180 and 160 pixels with an ellipsis, which hid the very option a row compares).
 */
export const CHART_CONFIG = {
  axis: { labelLimit: 0, labelFontSize: 12, titleFontSize: 12, titleFontWeight: 'normal' },
  legend: { labelLimit: 0, titleLimit: 0, labelFontSize: 12, orient: 'top', direction: 'horizontal', columns: 2 },
  text: { limit: 0 },
  font: 'system-ui, -apple-system, "Segoe UI", sans-serif',
  view: { stroke: null },
} as const;

/**
 * Plot width of the copy of each chart a phone shows (the page switches at `NARROW_SCREEN_PX`
 * by CSS): scaling the wide chart down to a 375 px screen would shrink its text to a few
 * pixels, while this one, beside its labels, fits at about its own size.
 */
export const NARROW_CHART_WIDTH = 190;

/** Below this screen width the page shows the narrow copies. */
export const NARROW_SCREEN_PX = 640;

/** Values spanning more than this ratio get a log axis: bars that differ by decades stay visible. */
export const LOG_SPAN = 20;

/** Height in pixels of one bar. */
const BAR_PIXELS = 14;
/** Space between two backends' groups of bars. */
const GROUP_GAP_PIXELS = 10;

/** One bar of `barChart`. */
export interface BarDatum {
  /** The group, on the vertical axis: usually the backend. */
  group: string;
  /** The bar within its group (a thread count, a measure); undefined when groups have one bar. */
  series?: string;
  value: number;
  /** The spread of repeated runs, when the row has repeats. */
  low?: number;
  high?: number;
  /** The value as the label beside the bar shows it. */
  label: string;
  /** The bar's tooltip (an SVG `<title>`). */
  tip: string;
}

/** How `barChart` draws. */
export interface BarChartOptions {
  id: string;
  title: string;
  caption: string;
  data: readonly BarDatum[];
  /** The value axis's title, without the "(log)" the chart adds when the axis is logarithmic. */
  axisTitle: string;
  /** vega's number format of the value axis. */
  axisFormat?: string;
  /** A fixed value domain (a percentage's 0..100); the axis is then linear. */
  domain?: [number, number];
  /** `auto` (the default) takes a log axis when the values span more than `LOG_SPAN`. */
  scale?: 'auto' | 'linear' | 'log';
  /** The legend's title, for series. */
  seriesTitle?: string;
  /** A dashed vertical line at this value, with its label (a bound, a reference). */
  reference?: { value: number; label: string };
  /** Colour the bars by group (each backend its colour) when there are no series. */
  colourGroups?: boolean;
}

/** Whether `values` (positive ones) span more than `LOG_SPAN`. */
export function spansDecades(values: readonly number[]): boolean {
  const positive = values.filter((value) => value > 0);
  if (positive.length < 2) return false;
  return Math.max(...positive) / Math.min(...positive) > LOG_SPAN;
}

/**
 * Horizontal bars, one group per `group` (in the order of `data`), one bar per `series`
 * within it, each with its value written beside it, min..max error bars where the data has
 * them, and a tooltip. A log axis drops bars of zero (they have no place on it).
 */
export function barChart(options: BarChartOptions): Chart {
  const series = [...new Set(options.data.flatMap((datum) => (datum.series === undefined ? [] : [datum.series])))];
  const log = options.domain === undefined && (options.scale === 'log' || (options.scale !== 'linear' && spansDecades(options.data.map((d) => d.value))));
  const data = log ? options.data.filter((datum) => datum.value > 0) : options.data;
  const groups = [...new Set(data.map((datum) => datum.group))];
  const perGroup = Math.max(1, series.length);
  const values = data.map((datum) => ({ ...datum, series: datum.series ?? '', end: Math.max(datum.value, datum.high ?? datum.value) }));
  const scale = options.domain !== undefined ? { domain: options.domain } : log ? { type: 'log' as const, nice: true } : { zero: true, nice: true };
  const x = {
    field: 'value',
    type: 'quantitative' as const,
    stack: null,
    scale,
    axis: { format: options.axisFormat ?? '~s', grid: true },
    title: log ? `${options.axisTitle} (log)` : options.axisTitle,
  };
  // Series given are shown, even one: arceos's one backend is named by its legend.
  const withSeries = series.length > 0;
  const colour = withSeries
    ? {
        color: {
          field: 'series',
          type: 'nominal' as const,
          sort: series,
          scale: series.length > 8 ? CHART_PALETTE : THREADS_PALETTE,
          title: options.seriesTitle ?? null,
        },
      }
    : options.colourGroups === true
      ? { color: { field: 'group', type: 'nominal' as const, sort: groups, scale: CHART_PALETTE, legend: null } }
      : { color: { value: '#4c78a8' } };
  // Each layer of bars places itself; the reference line spans the whole height instead.
  const position = {
    y: { field: 'group', type: 'nominal', sort: groups, title: null, axis: { ticks: false, labelPadding: 6 } },
    ...(withSeries ? { yOffset: { field: 'series', type: 'nominal', sort: series } } : {}),
  };
  const layers: object[] = [
    { mark: { type: 'bar', cornerRadiusEnd: 2 }, encoding: { ...position, x, ...colour, description: { field: 'tip' } } },
    {
      mark: { type: 'text', align: 'left', baseline: 'middle', dx: 5, fontSize: 11, aria: false },
      encoding: { ...position, x: { field: 'end', type: 'quantitative' }, text: { field: 'label' }, color: { value: '#3a4356' } },
    },
  ];
  if (values.some((datum) => datum.low !== undefined && datum.high !== undefined && datum.high > datum.low)) {
    layers.splice(1, 0, {
      transform: [{ filter: 'isValid(datum.low) && isValid(datum.high)' }],
      mark: { type: 'rule', strokeWidth: 1.5, aria: false },
      encoding: { ...position, x: { field: 'low', type: 'quantitative' }, x2: { field: 'high' }, color: { value: '#1d2330' } },
    });
  }
  if (options.reference !== undefined) {
    layers.push({
      data: { values: [options.reference] },
      layer: [
        { mark: { type: 'rule', strokeDash: [4, 3], color: '#b03a2e' }, encoding: { x: { field: 'value', type: 'quantitative' } } },
        {
          mark: { type: 'text', align: 'left', baseline: 'bottom', dx: 4, y: -3, color: '#b03a2e', fontSize: 11 },
          encoding: { x: { field: 'value', type: 'quantitative' }, text: { field: 'label' } },
        },
      ],
    });
  }
  const spec = {
    $schema: VEGA_LITE_SCHEMA,
    width: CHART_WIDTH,
    height: { step: perGroup * BAR_PIXELS + GROUP_GAP_PIXELS, for: 'position' },
    data: { values },
    layer: layers,
  };
  return { id: options.id, title: options.title, caption: options.caption, spec };
}

/** `1 thread`, `2 threads`. */
export function threadsLabel(threads: number): string {
  return `${threads} thread${threads === 1 ? '' : 's'}`;
}
