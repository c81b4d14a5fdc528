/**
 * An app bundled with esbuild (issue #18): every heaplab package is compiled into the app's
 * own files, so a backend's `moduleUrl` (its `import.meta.url`) is the app's bundle. A worker
 * must find the backend its own bundle registered, or the descriptor it was given, and must
 * never import the app's bundle, which would run the app again (workers starting workers).
 *
 * The app is bundled from the built packages (dist/, under the `import` condition, as an
 * installed heaplab), and runs in a node of its own. In-process cases check the same refusal
 * where no bundle is needed.
 */

import { execFile } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { build } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { linkedProject, PACKAGES, staleBuild } from './built-packages.js';

import { AllocError, loadBackend } from '../src/index.js';

/** The packages the app imports, bundled from their dist/. */
const BUNDLED_PACKAGES = ['core', 'tlsf', 'buddy'];

/**
 * The app's main module. It counts its own runs on stdout (`app: started`): a worker that
 * imported the bundle would print it again. It makes a TLSF heap and a buddy heap, starts
 * two workers on the entry named by argv, frees every block they report from this thread,
 * and prints one JSON line of what happened.
 */
const MAIN = `
import { Worker } from 'node:worker_threads';
import { GlobalAllocator } from '@heaplab/core';
import '@heaplab/tlsf';
import '@heaplab/buddy';

console.log('app: started');
const entry = new URL(process.argv[2], import.meta.url);
const heaps = ['tlsf', 'buddy'].map((backend) => GlobalAllocator.create({ backend, heapBytes: 4 * 1024 * 1024 }));
const replies = await Promise.all([0, 1].map((index) => new Promise((resolve, reject) => {
  const worker = new Worker(entry, { workerData: { buffers: heaps.map((heap) => heap.buffer), seed: index + 1 } });
  worker.once('message', resolve);
  worker.once('error', reject);
})));
let freed = 0;
for (const reply of replies) {
  if (reply.error !== undefined) continue;
  reply.addresses.forEach((addresses, at) => {
    for (const address of addresses) heaps[at].free(address);
    freed += addresses.length;
  });
}
const after = heaps.map((heap) => {
  const report = heap.check();
  return { backend: heap.backendName, liveBlocks: report.liveBlocks, usedBytes: heap.usedBytes(), threads: heap.attachedThreads() };
});
console.log(JSON.stringify({ replies, freed, after }));
`;

/**
 * A worker as the README's Bundling section shows it: it imports the backend packages, so
 * its bundle registers them. The TLSF heap is found by name in that registry, the buddy heap
 * through the descriptor passed to attach. It fills each block, then detaches.
 */
const WORKER = `
import { parentPort, workerData } from 'node:worker_threads';
import { GlobalAllocator } from '@heaplab/core';
import '@heaplab/tlsf';
import { buddyBackend } from '@heaplab/buddy';

const [tlsfBuffer, buddyBuffer] = workerData.buffers;
const heaps = [await GlobalAllocator.attach(tlsfBuffer), await GlobalAllocator.attach(buddyBuffer, { backends: [buddyBackend] })];
const addresses = heaps.map((heap) => {
  const blocks = [];
  for (let i = 0; i < 100; i++) {
    const size = 16 + ((i * 37 + workerData.seed * 11) % 2000);
    const address = heap.malloc(size);
    if (address === 0) throw new Error('no room for ' + size + ' bytes');
    new Uint8Array(heap.buffer, address, size).fill(workerData.seed);
    blocks.push(address);
  }
  return blocks;
});
const backends = heaps.map((heap) => heap.backendName);
for (const heap of heaps) heap.detach();
parentPort.postMessage({ backends, addresses });
`;

/**
 * A worker that imports no backend package and passes no descriptor, so attach cannot know
 * TLSF: it must fail at once, and not import the app's bundle even when told to trust it.
 */
const BARE_WORKER = `
import { parentPort, workerData } from 'node:worker_threads';
import { GlobalAllocator } from '@heaplab/core';

const failures = [];
for (const trustModules of [[], [new URL('./main.js', import.meta.url).href]]) {
  try {
    await GlobalAllocator.attach(workerData.buffers[0], { trustModules });
    failures.push({ kind: 'none' });
  } catch (error) {
    failures.push({ kind: error.kind, message: error.message });
  }
}
parentPort.postMessage({ error: true, failures });
`;

/** What the app prints as its last line. */
interface AppReport {
  replies: ({ backends: string[]; addresses: number[][]; error?: undefined } | { error: true; failures: { kind: string; message?: string }[] })[];
  freed: number;
  after: { backend: string; liveBlocks: number; usedBytes: number; threads: number }[];
}

/** The longest an app may run; one that started workers from workers would run until killed. */
const APP_LIMIT_MS = 20_000;

/** Runs the bundled app on `workerEntry` in a node of its own, returning its output and time. */
function runApp(out: string, workerEntry: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  // Without the test's NODE_OPTIONS: the app is plain JavaScript and needs no loader.
  const { NODE_OPTIONS: _dropped, ...env } = process.env;
  return new Promise((resolve) => {
    execFile(process.execPath, [join(out, 'main.js'), `./${workerEntry}`], { cwd: out, env, timeout: APP_LIMIT_MS }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** The report on the app's last line of output. */
function reportOf(stdout: string): AppReport {
  const last = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(last) as AppReport;
}

const missing = staleBuild(BUNDLED_PACKAGES);
if (missing !== undefined) console.warn(`bundled-app test skipped: ${missing}`);

describe.skipIf(missing !== undefined)('an app bundled with esbuild', () => {
  let project = '';
  let out = '';

  beforeAll(async () => {
    // Installed as a workspace links them: esbuild follows the links to the real packages.
    project = linkedProject('bundled-app', BUNDLED_PACKAGES);
    const source = join(project, 'src');
    out = join(project, 'dist');
    mkdirSync(source);
    writeFileSync(join(source, 'main.js'), MAIN);
    writeFileSync(join(source, 'worker.js'), WORKER);
    writeFileSync(join(source, 'bare-worker.js'), BARE_WORKER);
    const result = await build({
      absWorkingDir: project,
      entryPoints: ['src/main.js', 'src/worker.js', 'src/bare-worker.js'],
      bundle: true,
      platform: 'node',
      format: 'esm',
      outdir: out,
      // The packages' `import` condition (dist/), as an app that installed heaplab bundles it;
      // never the `heaplab-source` condition the tests run under.
      conditions: [],
      logLevel: 'silent',
    });
    expect(result.errors).toEqual([]);
  }, 30_000);

  afterAll(() => {
    if (project !== '') rmSync(project, { recursive: true, force: true });
  });

  it('compiles heaplab into the app: no file of the bundle imports a @heaplab package', () => {
    expect(readdirSync(out).sort()).toEqual(['bare-worker.js', 'main.js', 'worker.js']);
    for (const file of readdirSync(out)) {
      expect(readFileSync(join(out, file), 'utf8')).not.toMatch(/(from|import\()\s*["']@heaplab\//);
    }
  });

  it('workers that import the backend packages attach and allocate; the main thread frees their blocks; the app runs once', async () => {
    const run = await runApp(out, 'worker.js');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.ms).toBeLessThan(APP_LIMIT_MS);
    expect(run.stdout.match(/^app: started$/gm)).toHaveLength(1);
    const report = reportOf(run.stdout);
    for (const reply of report.replies) {
      expect(reply.error).toBeUndefined();
      if (reply.error === undefined) {
        expect(reply.backends).toEqual(['tlsf', 'buddy']);
        expect(reply.addresses.map((blocks) => blocks.length)).toEqual([100, 100]);
      }
    }
    expect(report.freed).toBe(400);
    // check() passed in the app (it throws on a broken heap); every block is back, and both
    // workers have detached.
    expect(report.after).toEqual([
      { backend: 'tlsf', liveBlocks: 0, usedBytes: 0, threads: 1 },
      { backend: 'buddy', liveBlocks: 0, usedBytes: 0, threads: 1 },
    ]);
  });

  it('a worker whose bundle has no backend fails at once with UnknownBackend saying how to fix it, and never runs the app again', async () => {
    const run = await runApp(out, 'bare-worker.js');
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(run.ms).toBeLessThan(APP_LIMIT_MS);
    expect(run.stdout.match(/^app: started$/gm)).toHaveLength(1);
    const report = reportOf(run.stdout);
    expect(report.freed).toBe(0);
    for (const reply of report.replies) {
      expect(reply.error).toBe(true);
      if (reply.error !== true) continue;
      // Trusting the bundle's URL changes nothing: it is still the app, not a backend module.
      expect(reply.failures).toHaveLength(2);
      for (const failure of reply.failures) {
        expect(failure.kind).toBe('UnknownBackend');
        expect(failure.message).toContain(`"${pathToFileURL(join(out, 'main.js')).href}"`);
        expect(failure.message).toContain('the application bundle the heap was created in');
        expect(failure.message).toContain("import '@heaplab/tlsf'");
        expect(failure.message).toContain('attach(buffer, { backends: [descriptor] })');
      }
    }
    expect(report.after.map((heap) => heap.threads)).toEqual([1, 1]);
  });
});

describe('attach never imports an application module', () => {
  it("refuses the process's main module, even trusted", async () => {
    const main = pathToFileURL(process.argv[1]!).href;
    const error = await loadBackend('not-registered', main, [main]).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(AllocError);
    expect((error as AllocError).kind).toBe('UnknownBackend');
    expect((error as AllocError).message).toMatch(
      /which is the process's main module: .*pass its descriptor \(attach\(buffer, \{ backends: \[descriptor\] \}\)\)/,
    );
  });

  it('refuses a module the heap marks as bundled into the app, even trusted', async () => {
    const url = pathToFileURL(join(PACKAGES, 'tlsf', 'dist', 'index.js')).href;
    const error = await loadBackend('not-registered', url, [url], { bundled: true }).then(
      () => undefined,
      (reason: unknown) => reason,
    );
    expect(error).toBeInstanceOf(AllocError);
    expect((error as AllocError).message).toMatch(/which is the application bundle the heap was created in/);
  });
});
