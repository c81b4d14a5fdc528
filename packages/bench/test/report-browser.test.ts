/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
// The page-side checks run in the browser (page.evaluate), so this file also sees the DOM types.
/**
 * The report in a real browser: Debian's chromium, headless, driven by puppeteer-core. The
 * page is made the way a user makes it (short `heaplab bench --json` runs of a few
 * workloads, merged by `heaplab report` with a heap map), then opened at a desktop and at a
 * phone's width. It fails on a console error or a page error, a chart container without a
 * drawn SVG, a bar without a tooltip, an element whose content is wider than its box (text
 * running off the page), an SVG label outside its SVG or cut with an ellipsis.
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasChromium, launchChromium, recordTabErrors } from '../../core/test/chromium.js';

const hasBrowser = hasChromium('report browser test');

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const MAP_FIXTURE = fileURLToPath(new URL('./fixtures/map.json', import.meta.url));
/** A bench run of this test: tiny, but every row real. */
const RUN_TIMEOUT_MS = 300_000;

function heaplab(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--conditions=heaplab-source', '--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: RUN_TIMEOUT_MS });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The smallest chart text (its box's height, in CSS pixels) a reader is asked to read. */
const MIN_TEXT_PX = 8;

/** The widths the page is checked at: a desktop's and a phone's. */
const VIEWPORTS = [
  { width: 1280, height: 900 },
  { width: 375, height: 740 },
];

/** What the page shows of itself, gathered in the browser. */
interface PageFindings {
  charts: number;
  chartsWithoutSvg: string[];
  bars: number;
  barsWithoutTitle: number;
  overflowing: string[];
  pageWiderThanScreen: boolean;
  /** Height in CSS pixels of the smallest chart text shown. */
  smallestText: number;
  labelsOutside: string[];
  ellipses: string[];
}

describe.skipIf(!hasBrowser)('the report in headless chromium', () => {
  let browser: Browser;
  let page: string;
  let stderr = '';

  beforeAll(async () => {
    const directory = mkdtempSync(join(tmpdir(), 'heaplab-browser-'));
    const common = ['--threads', '1,2', '--duration', '0.05', '--repeat', '2', '--no-warmup', '--no-isolate', '--quiet'];
    const runs: [string, string[]][] = [
      ['glibc-thread', ['--backend', 'basic:strategy=best-fit', '--backend', 'buddy', '--backend', 'tlsf', '--baselines', 'system,bump']],
      ['alloc-pairs', ['--backend', 'tlsf', '--backend', 'buddy', '--baselines', 'system']],
      ['cache-thrash', ['--backend', 'tlsf', '--baselines', 'bump']],
    ];
    const files: string[] = [];
    for (const [workload, args] of runs) {
      const json = join(directory, `${workload}.json`);
      const run = heaplab('bench', workload, ...args, ...common, '--json', json);
      expect(run.status, run.stderr).toBe(0);
      files.push(json);
    }
    page = join(directory, 'report.html');
    const report = heaplab('report', ...files, MAP_FIXTURE, '--out', page);
    expect(report.status, report.stderr).toBe(0);
    stderr = report.stderr;
    browser = await launchChromium();
  }, 4 * RUN_TIMEOUT_MS);

  afterAll(async () => {
    await browser?.close();
  });

  it('writes nothing but the files on the terminal', () => {
    expect(stderr.trim()).toMatch(/^wrote \S+report\.html, [^\n]+$/);
    const html = readFileSync(page, 'utf8');
    expect(html).toContain('basic:strategy=best-fit');
    expect(html).not.toContain('Chart warnings');
  });

  it.each(VIEWPORTS)('renders every chart, without errors or overflow, at $width px', async (viewport) => {
    const tab = await browser.newPage();
    const errors = recordTabErrors(tab);
    await tab.setViewport(viewport);
    await tab.goto(pathToFileURL(page).href, { waitUntil: 'load' });
    const found: PageFindings = await tab.evaluate(() => {
      const describe = (element: Element): string => {
        const text = (element.textContent ?? '').trim().replace(/\s+/g, ' ').slice(0, 60);
        return `<${element.tagName.toLowerCase()}${element.id ? `#${element.id}` : ''}${element.className && typeof element.className === 'string' ? `.${element.className}` : ''}> ${text}`;
      };
      const charts = [...document.querySelectorAll('.chart')];
      const chartsWithoutSvg = charts
        .filter((chart) => {
          // The one SVG shown at this width (a chart has a wide and a narrow copy).
          const shown = [...chart.querySelectorAll('svg')].filter((svg) => svg.getBoundingClientRect().width > 0);
          if (shown.length !== 1) return true;
          const box = shown[0]!.getBoundingClientRect();
          return box.width < 10 || box.height < 10 || shown[0]!.querySelectorAll('path, rect, line').length === 0;
        })
        .map(describe);
      const bars = [...document.querySelectorAll('[aria-roledescription="bar"]')];
      // Text too small to read: a chart scaled down past this is what the narrow copies avoid.
      const smallest = Math.min(
        ...[...document.querySelectorAll('.chart svg text')].map((text) => text.getBoundingClientRect().height).filter((height) => height > 0),
      );
      // HTML elements only: an SVG's children have no client box of their own.
      const overflowing = [...document.body.querySelectorAll('*')]
        .filter((element) => element instanceof HTMLElement && element.clientWidth > 0 && element.scrollWidth > element.clientWidth + 1)
        .map(describe);
      const labelsOutside: string[] = [];
      const ellipses: string[] = [];
      for (const svg of document.querySelectorAll('.chart svg')) {
        const frame = svg.getBoundingClientRect();
        for (const text of svg.querySelectorAll('text')) {
          const label = text.textContent ?? '';
          if (label.includes('…')) ellipses.push(label);
          const box = text.getBoundingClientRect();
          if (box.width === 0) continue;
          if (box.left < frame.left - 1 || box.right > frame.right + 1 || box.top < frame.top - 1 || box.bottom > frame.bottom + 1) labelsOutside.push(label);
        }
      }
      return {
        charts: charts.length,
        chartsWithoutSvg,
        bars: bars.length,
        barsWithoutTitle: bars.filter((bar) => bar.querySelector('title') === null).length,
        overflowing,
        pageWiderThanScreen: document.documentElement.scrollWidth > window.innerWidth,
        smallestText: smallest,
        labelsOutside,
        ellipses,
      };
    });
    await tab.close();
    expect(errors).toEqual([]);
    // glibc-thread's rate and memory, alloc-pairs, cache-thrash, and the map's two moments.
    expect(found.charts).toBe(6);
    expect(found.chartsWithoutSvg).toEqual([]);
    expect(found.bars).toBeGreaterThan(10);
    expect(found.barsWithoutTitle).toBe(0);
    expect(found.overflowing).toEqual([]);
    expect(found.pageWiderThanScreen).toBe(false);
    expect(found.smallestText).toBeGreaterThanOrEqual(MIN_TEXT_PX);
    expect(found.labelsOutside).toEqual([]);
    expect(found.ellipses).toEqual([]);
  });
});
