/**
 * A chart of the HTML report: a vega-lite specification a workload makes from its rows,
 * rendered to SVG by html-report.ts. The constants keep every workload's charts alike.
 */

import type { TopLevelSpec } from 'vega-lite';

/** One chart. */
export interface Chart {
  /** File-name suffix and HTML anchor. */
  id: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

/** The schema every spec names. */
export const VEGA_LITE_SCHEMA = 'https://vega.github.io/schema/vega-lite/v5.json';

/** One colour per backend. */
export const CHART_PALETTE = { scheme: 'tableau10' } as const;

/** One colour per thread count. */
export const THREADS_PALETTE = { scheme: 'set2' } as const;

/** Plot width in pixels. */
export const CHART_WIDTH = 560;
