/// <reference lib="dom" />
// The page-side checks run in the browser (page.evaluate), so this file also sees the DOM types.
/**
 * The heap playground in a real browser: Debian's chromium, headless, driven by
 * puppeteer-core, loads the page from the server `heaplab serve` runs (cross-origin
 * isolated, so SharedArrayBuffer exists), picks two backends and one of heaplab's traces
 * through the page's own pickers, and plays it to the end; then a workload with remote frees
 * on two other backends. It fails on a console error or page error, on a heap map that did
 * not change while requests were played, or on a figure on the page that disagrees with the
 * `stats()` the page drew it from. The `heaplab serve` command itself is run as a person
 * runs it: its URL, headers, refusals, a port in use, and SIGTERM.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type { HeapStats } from '@heaplab/core';
import type { Browser, Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasChromium, launchChromium, recordTabErrors } from '../../core/test/chromium.js';

import { bundlePlayground } from '../src/playground/bundle-playground.js';
import { ISOLATION_HEADERS, resolveRequestPath, type StaticServer, startStaticServer } from '../src/serve/static-server.js';

const hasBrowser = hasChromium('playground browser test');

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
/** What the built CLI serves: the playground bench's build bundled (`pnpm build`). */
const BUILT_PLAYGROUND = fileURLToPath(new URL('../dist/playground/', import.meta.url));
/** A play's bound: the two traces here take a few seconds each on a shared two-core machine. */
const PLAY_LIMIT_MS = 40_000;

/** What the page shows of one backend panel, gathered in the browser. */
interface PanelFindings {
  backend: string;
  /** The `stats()` the panel was drawn from (its `data-stats`). */
  stats: HeapStats;
  /** The play's counts the panel was drawn from (its `data-play`). */
  play: { done: number; total: number; failed: number; remoteFrees: number };
  /** Each figure's text, by its `data-figure` key. */
  figures: Record<string, string>;
  /** The heap map canvas as a PNG data URL. */
  map: string;
}

/** Every backend panel of the page, as it is now. */
function panelsOf(tab: Page): Promise<PanelFindings[]> {
  return tab.evaluate(() =>
    [...document.querySelectorAll<HTMLElement>('.backend-panel')].map((panel) => ({
      backend: panel.dataset['backend'] ?? '',
      stats: JSON.parse(panel.dataset['stats'] ?? 'null'),
      play: JSON.parse(panel.dataset['play'] ?? 'null'),
      figures: Object.fromEntries([...panel.querySelectorAll<HTMLElement>('[data-figure]')].map((cell) => [cell.dataset['figure'], cell.textContent ?? ''])),
      map: panel.querySelector('canvas')!.toDataURL('image/png'),
    })),
  );
}

/** Waits until the page is in `state` (or in error, which fails with the page's status line). */
async function waitForState(tab: Page, state: string, expectPanels: string[] = []): Promise<void> {
  await tab.waitForFunction(
    (wanted: string, labels: string[]) => {
      const now = document.body.dataset['state'];
      if (now === 'error') return true;
      const shown = [...document.querySelectorAll<HTMLElement>('.backend-panel')].map((panel) => panel.dataset['backend']);
      return now === wanted && labels.every((label, at) => shown[at] === label) && (labels.length === 0 || shown.length === labels.length);
    },
    { timeout: PLAY_LIMIT_MS },
    state,
    expectPanels,
  );
  const status = await tab.evaluate(() => [document.body.dataset['state'], document.getElementById('status')?.textContent ?? '']);
  expect(status[0], `the page's status: ${status[1]}`).toBe(state);
}

/**
 * Each figure as `stats()` (and the play's counts) say it should read: whole numbers exact,
 * fragmentation recomputed here from its definition, not from the page's code.
 */
function expectedFigures(stats: HeapStats, play: PanelFindings['play']): Record<string, string> {
  const whole = (value: number): string => value.toLocaleString('en-US');
  const fragmentation = stats.availableBytes > 0 ? Math.max(0, 1 - stats.largestFreeBlock / stats.availableBytes) : 0;
  return {
    requests: `${whole(play.done)} / ${whole(play.total)}`,
    remoteFrees: whole(play.remoteFrees),
    failed: whole(play.failed),
    liveBlocks: whole(stats.liveBlocks),
    cachedBlocks: stats.threadCache === null ? 'no cache' : whole(stats.threadCache.blocks),
    grantedBytes: whole(stats.grantedBytes),
    usedBytes: whole(stats.usedBytes),
    availableBytes: whole(stats.availableBytes),
    totalBytes: whole(stats.totalBytes),
    freeBlocks: whole(stats.freeBlocks),
    largestFreeBlock: whole(stats.largestFreeBlock),
    externalFragmentation: `${(100 * fragmentation).toFixed(1)} %`,
    peakUsedBytes: whole(stats.peakUsedBytes),
  };
}

/** Checks a panel's figures against its stats, and the stats against themselves. */
function expectFiguresMatchStats(panel: PanelFindings): void {
  expect(panel.stats, `${panel.backend}: no data-stats`).not.toBeNull();
  expect(panel.stats.backend).toBe(panel.backend.split(':')[0]);
  expect(panel.stats.availableBytes).toBe(panel.stats.totalBytes - panel.stats.usedBytes);
  expect(panel.figures, panel.backend).toEqual(expectedFigures(panel.stats, panel.play));
}

describe.skipIf(!hasBrowser)('the heap playground in headless chromium', () => {
  let directory: string;
  let server: StaticServer;
  let browser: Browser;
  let scriptBytes = 0;

  beforeAll(async () => {
    directory = mkdtempSync(join(tmpdir(), 'heaplab-playground-test-'));
    ({ scriptBytes } = await bundlePlayground(directory));
    server = await startStaticServer({ root: directory, port: 0, host: '127.0.0.1' });
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true });
  });

  /** A fresh tab on the playground that records every console error, page error and failed request. */
  async function openPlayground(url = server.url): Promise<{ tab: Page; errors: string[] }> {
    const tab = await browser.newPage();
    const errors = recordTabErrors(tab);
    await tab.setViewport({ width: 1400, height: 900 });
    await tab.goto(url, { waitUntil: 'load' });
    await waitForState(tab, 'ready');
    expect(await tab.evaluate(() => globalThis.crossOriginIsolated)).toBe(true);
    return { tab, errors };
  }

  /**
   * Plays what the pickers name: one step first (the maps must change from the empty heap),
   * then Play to the end. Returns the panels at the start, after the step and at the end.
   */
  async function playToEnd(tab: Page, labels: string[]): Promise<{ start: PanelFindings[]; stepped: PanelFindings[]; end: PanelFindings[]; playMs: number }> {
    await waitForState(tab, 'ready', labels);
    const start = await panelsOf(tab);
    await tab.select('#speed', '500');
    await tab.click('#step');
    await waitForState(tab, 'paused', labels);
    const stepped = await panelsOf(tab);
    await tab.click('#reset');
    await waitForState(tab, 'ready', labels);
    await tab.click('#play');
    await waitForState(tab, 'done', labels);
    const end = await panelsOf(tab);
    const playMs = Number(await tab.evaluate(() => document.body.dataset['playMs']));
    return { start, stepped, end, playMs };
  }

  it('serves a bundle of the page and its worker with real core and no Node module in it', () => {
    expect(scriptBytes).toBeGreaterThan(10_000);
    const scripts = readdirSync(directory).filter((file) => file.endsWith('.js'));
    expect(scripts).toContain('heap-worker.js');
    for (const file of scripts) expect(readFileSync(join(directory, file), 'utf8'), file).not.toMatch(/["']node:/);
    console.log(`playground script: ${(scriptBytes / 1024).toFixed(0)} KiB`);
  });

  it('plays a heaplab trace on two backends side by side, maps changing and figures equal to stats()', async () => {
    const { tab, errors } = await openPlayground();
    await tab.select('#backend-1', 'tlsf');
    await tab.select('#backend-2', 'buddy');
    await tab.select('#source', 'trace');
    await tab.select('#trace', 'glibc-thread-2.jsonl');
    // The whole arena at one scale: a map that changes does so because the heap did.
    await tab.select('#map-extent', 'arena');
    const { start, stepped, end, playMs } = await playToEnd(tab, ['tlsf', 'buddy']);
    console.log(`glibc-thread-2.jsonl on tlsf and buddy: played in ${playMs} ms`);
    expect(await tab.evaluate(() => document.getElementById('description')?.textContent)).toContain('glibc-thread-2.jsonl');
    for (let at = 0; at < 2; at++) {
      expect(stepped[at]!.map, `${end[at]!.backend}: the map did not change after a step`).not.toBe(start[at]!.map);
      expect(end[at]!.map, `${end[at]!.backend}: the map at the end is the empty heap's`).not.toBe(start[at]!.map);
      for (const panel of [start[at]!, stepped[at]!, end[at]!]) expectFiguresMatchStats(panel);
      expect(stepped[at]!.play.done).toBe(500);
      expect(stepped[at]!.stats.liveBlocks).toBeGreaterThan(0);
      expect(end[at]!.play.done).toBe(end[at]!.play.total);
      expect(end[at]!.play.failed).toBe(0);
    }
    expect(errors).toEqual([]);
    await tab.close();
  });

  it('plays a workload with remote frees on two other backends, a worker freeing what the page allocated', async () => {
    const { tab, errors } = await openPlayground();
    await tab.select('#backend-1', 'mimalloc');
    await tab.select('#backend-2', 'slab');
    await tab.select('#source', 'workload');
    await tab.select('#workload', 'producer-consumer');
    const { start, stepped, end, playMs } = await playToEnd(tab, ['mimalloc', 'slab']);
    console.log(`producer-consumer on mimalloc and slab: played in ${playMs} ms`);
    for (let at = 0; at < 2; at++) {
      expect(stepped[at]!.map, `${end[at]!.backend}: the map did not change after a step`).not.toBe(start[at]!.map);
      expect(end[at]!.map).not.toBe(start[at]!.map);
      for (const panel of [start[at]!, stepped[at]!, end[at]!]) expectFiguresMatchStats(panel);
      // Thread 1 (the worker) frees the 5000 messages thread 0 (the page) allocated.
      expect(end[at]!.play.remoteFrees).toBeGreaterThanOrEqual(5000);
      // Every message is freed by the end: what is still live is what thread caches hold.
      expect(end[at]!.stats.liveBlocks, end[at]!.backend).toBe(end[at]!.stats.threadCache?.blocks ?? 0);
      expect(end[at]!.play.failed).toBe(0);
    }
    expect(errors).toEqual([]);
    await tab.close();
  });

  it('the built playground (what the built `heaplab serve` serves) plays a two-thread trace as well', async (context) => {
    if (!existsSync(join(BUILT_PLAYGROUND, 'page.js'))) {
      console.warn(`built playground case skipped: no ${BUILT_PLAYGROUND}page.js (run pnpm build; the test command does)`);
      context.skip();
    }
    const built = await startStaticServer({ root: BUILT_PLAYGROUND, port: 0, host: '127.0.0.1' });
    try {
      const { tab, errors } = await openPlayground(built.url);
      await tab.select('#backend-1', 'basic');
      await tab.select('#backend-2', 'mimalloc');
      await tab.select('#source', 'trace');
      await tab.select('#trace', 'glibc-thread-2.jsonl');
      const { start, end } = await playToEnd(tab, ['basic', 'mimalloc']);
      for (let at = 0; at < 2; at++) {
        expect(end[at]!.map, end[at]!.backend).not.toBe(start[at]!.map);
        expectFiguresMatchStats(end[at]!);
        expect(end[at]!.play.done).toBe(end[at]!.play.total);
      }
      expect(errors).toEqual([]);
      await tab.close();
    } finally {
      await built.close();
    }
  });

  it("plays a person's own trace file, and refuses one that is no trace in the status line without a console error", async () => {
    const { tab, errors } = await openPlayground();
    const scratch = mkdtempSync(join(tmpdir(), 'heaplab-playground-file-'));
    try {
      const own = join(scratch, 'mine.rep');
      writeFileSync(own, '# mine\n0\n2\n4\n1\na 0 100\na 1 5000\nf 0\nf 1\n');
      const broken = join(scratch, 'broken.rep');
      writeFileSync(broken, '0\n2\n2\n1\na 0 100\nq 1 5\n');
      await tab.select('#backend-2', '');
      await tab.select('#source', 'file');
      const picker = await tab.$('#trace-file');
      await (picker as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(own);
      await tab.waitForFunction(() => document.getElementById('description')?.textContent?.startsWith('mine.rep'), { timeout: PLAY_LIMIT_MS });
      await waitForState(tab, 'ready', ['tlsf']);
      await tab.click('#play');
      await waitForState(tab, 'done', ['tlsf']);
      const [panel] = await panelsOf(tab);
      expect(panel!.play).toEqual({ done: 4, total: 4, failed: 0, remoteFrees: 0 });
      expectFiguresMatchStats(panel!);
      await (picker as unknown as { uploadFile(path: string): Promise<void> }).uploadFile(broken);
      await tab.waitForFunction(() => document.body.dataset['state'] === 'error', { timeout: PLAY_LIMIT_MS });
      expect(await tab.evaluate(() => document.getElementById('status')?.textContent)).toMatch(/^broken\.rep:6: /);
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
    expect(errors).toEqual([]);
    await tab.close();
  });
});

/** The serve command, run as a person runs it. */
describe('heaplab serve', () => {
  /** Runs `heaplab serve args` from the sources; resolves with the process and its URL once printed. */
  function startServe(...args: string[]): { child: ChildProcess; url: Promise<string>; exit: Promise<{ code: number | null; stderr: string }> } {
    const child = spawn(process.execPath, ['--conditions=heaplab-source', '--import', 'tsx', CLI, 'serve', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const url = new Promise<string>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
        const found = /http:\/\/\S+/.exec(stdout);
        if (found !== null) resolve(found[0]);
      });
      child.once('exit', () => reject(new Error(`serve exited before printing a URL: ${stderr}`)));
    });
    const exit = new Promise<{ code: number | null; stderr: string }>((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
    return { child, url, exit };
  }

  /** A raw GET (or `method`) of `path` as written: fetch would normalise `..` away. */
  function raw(url: string, path: string, method = 'GET'): Promise<{ status: number; headers: Record<string, string | string[] | undefined> }> {
    const { hostname, port } = new URL(url);
    return new Promise((resolve, reject) => {
      const sent = request({ hostname, port, path, method }, (response) => {
        response.resume();
        response.on('end', () => resolve({ status: response.statusCode ?? 0, headers: response.headers }));
      });
      sent.on('error', reject);
      sent.end();
    });
  }

  it('prints its URL, serves the page cross-origin isolated, refuses what it should, and exits 0 on SIGTERM', async () => {
    const serve = startServe('--port', '0');
    try {
      await servesAndRefuses(serve);
    } finally {
      // A failed expectation must not leave a server listening past the test.
      if (serve.child.exitCode === null) serve.child.kill('SIGKILL');
    }
  });

  /** The first case's body: everything a person would check of a running `heaplab serve`. */
  async function servesAndRefuses(serve: ReturnType<typeof startServe>): Promise<void> {
    const url = await serve.url;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    for (const [name, value] of Object.entries(ISOLATION_HEADERS)) expect(page.headers.get(name), name).toBe(value);
    expect(await page.text()).toContain('heaplab heap playground');
    const script = await fetch(`${url}page.js`);
    expect(script.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(script.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect((await raw(url, '/../../../etc/passwd')).status).toBe(403);
    expect((await raw(url, '/%2e%2e/%2e%2e/etc/passwd')).status).toBe(403);
    expect((await raw(url, '/%')).status).toBe(400);
    expect((await raw(url, '/no-such-file.js')).status).toBe(404);
    const post = await raw(url, '/', 'POST');
    expect(post.status).toBe(405);
    expect(post.headers['cross-origin-opener-policy']).toBe('same-origin');

    // A second server on the same port is refused, saying why.
    const port = new URL(url).port;
    const second = startServe('--port', port);
    second.url.catch(() => {});
    const refused = await second.exit;
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`port ${port} on 127.0.0.1 is in use`);

    serve.child.kill('SIGTERM');
    expect((await serve.exit).code).toBe(0);
  }

  it('refuses a port that is no port, with status 1', async () => {
    for (const port of ['70000', '0x1F90']) {
      const serve = startServe('--port', port);
      serve.url.catch(() => {});
      const { code, stderr } = await serve.exit;
      expect(code).toBe(1);
      expect(stderr).toContain(`a port is an integer from 0 (any free port) to 65535; '${port}' is not.`);
    }
  });

  it('does not follow a symbolic link out of the served directory', () => {
    const root = mkdtempSync(join(tmpdir(), 'heaplab-serve-root-'));
    const outside = mkdtempSync(join(tmpdir(), 'heaplab-serve-outside-'));
    try {
      writeFileSync(join(root, 'inside.txt'), 'in');
      writeFileSync(join(outside, 'secret.txt'), 'out');
      symlinkSync(outside, join(root, 'out'), 'dir');
      symlinkSync(join(root, 'inside.txt'), join(root, 'alias.txt'));
      expect('file' in resolveRequestPath(root, '/inside.txt')).toBe(true);
      // A link that stays inside is served; one that leads out is not.
      expect('file' in resolveRequestPath(root, '/alias.txt')).toBe(true);
      expect(resolveRequestPath(root, '/out/secret.txt')).toEqual({ status: 403 });
    } finally {
      rmSync(root, { recursive: true, force: true });
      rmSync(outside, { recursive: true, force: true });
    }
  });
});
