/// <reference lib="dom" />
// The page-side checks run in the browser (page.evaluate), so this file also sees the DOM types.
/**
 * A heap in a real browser (issue #18): Debian's chromium, headless, driven by puppeteer-core,
 * opens a page served by a small HTTP server here. The page's script and its web worker's are
 * bundled by esbuild for a browser from the sources. Served cross-origin isolated, the page
 * makes a TLSF heap and a mimalloc heap, posts their buffers to a web worker that attaches
 * with the descriptors, frees a block the page allocated in each and allocates its own
 * (filled, for the page to verify); then the worker holds the TLSF heap's lock while the
 * page's main thread, which may not block, waits for it by spinning; the page frees the
 * worker's blocks and checks both heaps. Served without the two headers, the same
 * page shows the `Unsupported` error naming them. Any console error or page error fails.
 */

import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { build } from 'esbuild';
import type { Browser } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { hasChromium, launchChromium, recordTabErrors } from './chromium.js';

import { ISOLATION_HEADERS } from '../src/index.js';
import { linkedProject } from './built-packages.js';

const hasBrowser = hasChromium('browser heap test');

/** The packages the page and the worker import. */
const BUNDLED_PACKAGES = ['core', 'tlsf', 'mimalloc'];

/** How long one page may take to report, in ms. */
const PAGE_TIMEOUT_MS = 20_000;
/** How long the worker keeps holding the heap lock once the page is waiting for it, in ms. */
const HOLD_MS = 150;

/**
 * The page: makes the heap, hands it to a web worker, waits on the lock the worker holds,
 * frees the worker's blocks and checks the heap. What happened goes into the document and
 * into `window.heaplabResult`; an error is shown the same way.
 */
const PAGE = `
import { AllocError, GlobalAllocator, LockIndex, THREAD_CAN_BLOCK } from '@heaplab/core';
import { mimallocBackend } from '@heaplab/mimalloc';
import { tlsfBackend } from '@heaplab/tlsf';

function show(result) {
  document.getElementById('result').textContent = result.error === undefined ? JSON.stringify(result) : result.error.kind + ': ' + result.error.message;
  window.heaplabResult = result;
}

function nextMessage(worker) {
  return new Promise((resolve, reject) => {
    worker.addEventListener('message', (event) => resolve(event.data), { once: true });
    worker.addEventListener('error', (event) => reject(new Error('worker error: ' + event.message)), { once: true });
  });
}

try {
  // No thread cache: every call takes the heap lock, the one the worker will hold.
  const heap = GlobalAllocator.create({ backend: 'tlsf', options: { tcache: false }, heapBytes: 8 * 1024 * 1024 });
  const pageBlock = heap.malloc(200);
  const keptBlock = heap.malloc(300);
  // A mimalloc heap as well: the worker's free of a page block is a remote free there.
  const mi = GlobalAllocator.create({ backend: mimallocBackend, heapBytes: 16 * 1024 * 1024 });
  const miPageBlock = mi.malloc(200);
  const miKeptBlock = mi.malloc(300);
  const signal = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker('./worker.js', { type: 'module' });
  worker.postMessage({ buffer: heap.buffer, pageBlock, miBuffer: mi.buffer, miPageBlock, signal: signal.buffer, holdMs: ${HOLD_MS} });
  const holding = await nextMessage(worker);
  if (holding.error !== undefined) throw new Error('worker: ' + holding.error);
  // Tell the worker this thread is about to wait, then take the lock it holds.
  Atomics.store(signal, 0, 1);
  Atomics.notify(signal, 0);
  const started = performance.now();
  const waitedBlock = heap.malloc(48);
  const waitedMs = performance.now() - started;
  const report = await nextMessage(worker);
  if (report.error !== undefined) throw new Error('worker: ' + report.error);
  let wrongBytes = 0;
  for (const [index, address] of report.addresses.entries()) {
    if (heap.memory.u8[address] !== (index & 0xff) || heap.memory.u8[address + 31] !== (index & 0xff)) wrongBytes++;
    heap.free(address);
  }
  heap.free(keptBlock);
  heap.free(waitedBlock);
  for (const [index, address] of report.miAddresses.entries()) {
    if (mi.memory.u8[address] !== (index & 0xff) || mi.memory.u8[address + 31] !== (index & 0xff)) wrongBytes++;
    mi.free(address);
  }
  mi.free(miKeptBlock);
  const miCheck = mi.check();
  const check = heap.check();
  const heapLock = heap.stats().locks[LockIndex.heap];
  show({
    crossOriginIsolated: globalThis.crossOriginIsolated,
    pageCanBlock: THREAD_CAN_BLOCK,
    workerCanBlock: report.canBlock,
    workerThreadId: report.threadId,
    workerFreedPageBlock: report.freedPageBlock,
    workerBlocks: report.addresses.length,
    workerMimallocBlocks: report.miAddresses.length,
    mimallocLiveBlocks: miCheck.liveBlocks,
    mimallocAttachedThreads: mi.attachedThreads(),
    wrongBytes,
    waitedMs,
    heapLockContended: heapLock.contended,
    liveBlocks: check.liveBlocks,
    usedBytes: heap.usedBytes(),
    attachedThreads: heap.attachedThreads(),
  });
  worker.terminate();
} catch (error) {
  show({ error: { kind: error instanceof AllocError ? error.kind : error.name, message: error.message } });
}
`;

/**
 * The web worker: attaches with the descriptor (a browser cannot import a backend module by
 * path), frees the page's block, allocates and fills its own, then holds the heap lock until
 * the page is waiting for it, and a little longer.
 */
const WORKER = `
import { GlobalAllocator, LockIndex, park, SharedHeap, THREAD_CAN_BLOCK } from '@heaplab/core';
import { mimallocBackend } from '@heaplab/mimalloc';
import { tlsfBackend } from '@heaplab/tlsf';

/** Frees the page's block, then allocates 100 blocks and fills the first 32 bytes of each with its index. */
function exchange(heap, pageBlock) {
  heap.free(pageBlock);
  const addresses = [];
  for (let index = 0; index < 100; index++) {
    const address = heap.malloc(32 + (index % 7) * 40);
    heap.memory.u8.fill(index & 0xff, address, address + 32);
    addresses.push(address);
  }
  return addresses;
}

self.addEventListener('message', async (event) => {
  const { buffer, pageBlock, miBuffer, miPageBlock, signal, holdMs } = event.data;
  try {
    const heap = await GlobalAllocator.attach(buffer, { backends: [tlsfBackend] });
    const addresses = exchange(heap, pageBlock);
    const mi = await GlobalAllocator.attach(miBuffer, { backends: [mimallocBackend] });
    const miAddresses = exchange(mi, miPageBlock);
    mi.detach();
    const lock = SharedHeap.open(buffer).mutex(LockIndex.heap, heap.threadId);
    lock.lock();
    self.postMessage({ holding: true });
    const words = new Int32Array(signal);
    const deadline = performance.now() + 10000;
    while (Atomics.load(words, 0) === 0 && performance.now() < deadline) park(words, 0, 0, 50);
    const until = performance.now() + holdMs;
    while (performance.now() < until) park(words, 0, 1, until - performance.now());
    lock.unlock();
    const threadId = heap.threadId;
    heap.detach();
    self.postMessage({ addresses, miAddresses, canBlock: THREAD_CAN_BLOCK, threadId, freedPageBlock: true });
  } catch (error) {
    self.postMessage({ error: (error.kind ?? error.name) + ': ' + error.message });
  }
});
`;

const HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>heaplab in a browser</title><link rel="icon" href="data:,"></head>
<body><pre id="result">running</pre><script type="module" src="./page.js"></script></body></html>
`;

/** What the page reports (`window.heaplabResult`). */
interface PageResult {
  error?: { kind: string; message: string };
  crossOriginIsolated?: boolean;
  pageCanBlock?: boolean;
  workerCanBlock?: boolean;
  workerThreadId?: number;
  workerFreedPageBlock?: boolean;
  workerBlocks?: number;
  workerMimallocBlocks?: number;
  mimallocLiveBlocks?: number;
  mimallocAttachedThreads?: number;
  wrongBytes?: number;
  waitedMs?: number;
  heapLockContended?: number;
  liveBlocks?: number;
  usedBytes?: number;
  attachedThreads?: number;
}

const CONTENT_TYPES: Record<string, string> = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8' };

describe.skipIf(!hasBrowser)('a heap in headless chromium', () => {
  let project = '';
  let server: Server;
  let origin = '';
  let browser: Browser;

  beforeAll(async () => {
    project = linkedProject('browser-heap', BUNDLED_PACKAGES);
    const site = join(project, 'site');
    writeFileSync(join(project, 'page.js'), PAGE);
    writeFileSync(join(project, 'worker.js'), WORKER);
    // Two bundles, as an app ships a page and a worker: each has its own copy of heaplab.
    const result = await build({
      absWorkingDir: project,
      entryPoints: ['page.js', 'worker.js'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      target: 'es2022',
      conditions: ['heaplab-source', 'browser'],
      outdir: site,
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
    writeFileSync(join(site, 'index.html'), HTML);
    // /isolated/ sends the two headers with every file; /plain/ sends neither.
    server = createServer((request, response) => {
      const match = /^\/(isolated|plain)\/([a-z-]+\.(html|js))$/.exec(request.url ?? '');
      const file = match === null ? undefined : join(site, match[2]!);
      if (match === null || file === undefined || !existsSync(file)) {
        response.writeHead(404).end();
        return;
      }
      const headers: Record<string, string> = { 'Content-Type': CONTENT_TYPES[`.${match[3]}`]!, 'Cache-Control': 'no-store' };
      if (match[1] === 'isolated') Object.assign(headers, ISOLATION_HEADERS);
      response.writeHead(200, headers).end(readFileSync(file));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
    if (project !== '') rmSync(project, { recursive: true, force: true });
  });

  /** Opens `path`, waits for the page's result, and returns it with everything that went wrong in the console. */
  async function open(path: string): Promise<{ result: PageResult; shown: string; errors: string[] }> {
    const tab = await browser.newPage();
    const errors = recordTabErrors(tab);
    try {
      await tab.goto(`${origin}${path}`, { waitUntil: 'load' });
      await tab.waitForFunction(() => (window as unknown as { heaplabResult?: unknown }).heaplabResult !== undefined, { timeout: PAGE_TIMEOUT_MS });
      const result = await tab.evaluate(() => (window as unknown as { heaplabResult: PageResult }).heaplabResult);
      const shown = await tab.evaluate(() => document.getElementById('result')?.textContent ?? '');
      return { result, shown, errors };
    } finally {
      await tab.close();
    }
  }

  it('an isolated page shares TLSF and mimalloc heaps with a web worker: each frees the other’s blocks, the page waits on the lock by spinning', async () => {
    const { result, errors } = await open('/isolated/index.html');
    expect(errors).toEqual([]);
    expect(result.error).toBeUndefined();
    expect(result.crossOriginIsolated).toBe(true);
    // The page's main thread may not block; the worker may.
    expect(result.pageCanBlock).toBe(false);
    expect(result.workerCanBlock).toBe(true);
    expect(result.workerFreedPageBlock).toBe(true);
    expect(result.workerBlocks).toBe(100);
    expect(result.workerMimallocBlocks).toBe(100);
    expect(result.wrongBytes).toBe(0);
    expect(result.mimallocLiveBlocks).toBe(0);
    expect(result.mimallocAttachedThreads).toBe(1);
    // The page's malloc waited for the worker to let go of the lock, and counted as contended.
    expect(result.waitedMs).toBeGreaterThanOrEqual(HOLD_MS - 20);
    expect(result.heapLockContended).toBeGreaterThanOrEqual(1);
    expect(result.liveBlocks).toBe(0);
    expect(result.usedBytes).toBe(0);
    expect(result.attachedThreads).toBe(1);
  }, 60_000);

  it('a page served without the headers shows the Unsupported error naming them', async () => {
    const { result, shown, errors } = await open('/plain/index.html');
    expect(errors).toEqual([]);
    expect(result.error?.kind).toBe('Unsupported');
    for (const [name, value] of Object.entries(ISOLATION_HEADERS)) expect(shown).toContain(`${name}: ${value}`);
    expect(shown).toMatch(/^Unsupported: heaplab needs SharedArrayBuffer/);
  }, 60_000);
});
