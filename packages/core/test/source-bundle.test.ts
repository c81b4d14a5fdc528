/**
 * Workers started from heaplab's sources on one bundle of their entry and backend modules
 * (platform/source-bundle.ts) instead of through tsx: what the worker sees must be what the
 * bootstrap gives it (its modules registered and listed, its own `import.meta.url`, a heap it
 * can attach to), an edited source must be bundled again, and what lies outside the
 * repository, or `HEAPLAB_WORKER_BUNDLE=0`, must still take the bootstrap.
 */

import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Worker } from 'node:worker_threads';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { GlobalAllocator, loadBackendModule, MiB, spawnWorker } from '../src/index.js';
import { sourceBundleFor, WORKER_BUNDLE_VARIABLE } from '../src/platform/source-bundle.js';
import { withoutTsxPreload } from '../src/platform/worker-spawn.js';

const PROBE = new URL('./workers/bundle-probe-worker.ts', import.meta.url);
/** A backend module of the repository's, in TypeScript: core's basic allocator as `smoke-basic`. */
const BACKEND_MODULE = new URL('./fixtures/runtime-smoke-backend.ts', import.meta.url).href;
/** Where the bundles of core's own test entries are kept (core's package directory). */
const CACHE = fileURLToPath(new URL('../node_modules/.cache/heaplab-workers/', import.meta.url));
/** Entries written by a test, inside the repository so that they are bundled. */
const GENERATED = fileURLToPath(new URL(`./workers/.generated-${process.pid}/`, import.meta.url));

interface ProbeReply {
  ownUrl: string;
  stack: string;
  loadedModules: string[];
  tag?: unknown;
  backend?: string;
  allocated?: number;
}

/** The first message of `worker`, then its exit. */
async function replyOf<T>(worker: Worker): Promise<T> {
  const reply = await new Promise<T>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`the worker exited (${code}) without a reply`)));
  });
  await worker.terminate();
  return reply;
}

const temporary: string[] = [];
afterAll(() => {
  rmSync(GENERATED, { recursive: true, force: true });
  for (const directory of temporary) rmSync(directory, { recursive: true, force: true });
});
afterEach(() => {
  delete process.env[WORKER_BUNDLE_VARIABLE];
});

describe('a worker bundled from the sources', () => {
  it('runs on a bundle, keeps its own import.meta.url, knows its backend modules and shares the heap', async () => {
    await loadBackendModule(BACKEND_MODULE);
    const heap = GlobalAllocator.create({ backend: 'smoke-basic', heapBytes: 4 * MiB });
    const block = heap.malloc(32);
    const bundle = sourceBundleFor(PROBE, [BACKEND_MODULE]);
    expect(bundle?.href).toContain('/node_modules/.cache/heaplab-workers/');
    expect(existsSync(fileURLToPath(bundle!))).toBe(true);
    const reply = await replyOf<ProbeReply>(spawnWorker(PROBE, { buffer: heap.buffer, mainBlock: block }, { backendModules: [BACKEND_MODULE] }));
    // The bundle spawnWorker starts on holds the thread's registered backends as well.
    expect(reply.stack).toContain('/node_modules/.cache/heaplab-workers/');
    expect(reply.stack).not.toContain(PROBE.pathname);
    expect(reply.ownUrl).toBe(PROBE.href);
    expect(reply.loadedModules).toEqual([BACKEND_MODULE]);
    // Found registered by the bundle's prelude: attach imported nothing.
    expect(reply.backend).toBe('smoke-basic');
    // The worker freed the main thread's block and kept one of its own.
    expect(heap.usableSize(reply.allocated!)).toBeGreaterThanOrEqual(64);
    expect(() => heap.free(block)).toThrow(/not|free/i);
    heap.free(reply.allocated!);
    heap.check();
    heap.detach();
  });

  it('uses a bundle again while its files are unchanged, and bundles an edited entry again', async () => {
    mkdirSync(GENERATED, { recursive: true });
    const entry = join(GENERATED, 'edited-worker.ts');
    const write = (word: string): void =>
      writeFileSync(
        entry,
        `import { parentPort } from 'node:worker_threads';\nconst said: string = ${JSON.stringify(word)};\nparentPort!.postMessage(said);\n`,
      );
    write('first');
    const url = pathToFileURL(entry);
    const bundle = sourceBundleFor(url, [])!;
    const made = statSync(fileURLToPath(bundle)).mtimeMs;
    expect(await replyOf<string>(spawnWorker(url, {}, { backendModules: [] }))).toBe('first');
    expect(sourceBundleFor(url, [])!.href).toBe(bundle.href);
    expect(statSync(fileURLToPath(bundle)).mtimeMs).toBe(made);
    write('second, longer');
    expect(await replyOf<string>(spawnWorker(url, {}, { backendModules: [] }))).toBe('second, longer');
  });

  it('leaves an entry outside the repository, and every entry under HEAPLAB_WORKER_BUNDLE=0, to the bootstrap', async () => {
    const outside = mkdtempSync(join(tmpdir(), 'heaplab-bundle-'));
    temporary.push(outside);
    writeFileSync(join(outside, 'package.json'), '{ "type": "module" }\n');
    const entry = pathToFileURL(join(outside, 'outside-worker.ts'));
    writeFileSync(entry, `import { parentPort } from 'node:worker_threads';\nparentPort!.postMessage(new Error('where').stack ?? '');\n`);
    expect(sourceBundleFor(entry, [])).toBeUndefined();
    // A repository entry whose thread registered a backend from outside: attach would import
    // that module with a core of its own, so the worker takes the bootstrap too.
    expect(sourceBundleFor(PROBE, [], [entry.href])).toBeUndefined();
    expect(sourceBundleFor(PROBE, [], [BACKEND_MODULE, 'not-a-file:backend'])).toBeDefined();
    const outsideStack = await replyOf<string>(spawnWorker(entry, {}, { backendModules: [] }));
    expect(outsideStack).toContain(entry.pathname);

    expect(sourceBundleFor(PROBE, [BACKEND_MODULE])).toBeDefined();
    process.env[WORKER_BUNDLE_VARIABLE] = '0';
    expect(sourceBundleFor(PROBE, [BACKEND_MODULE])).toBeUndefined();
    const reply = await replyOf<ProbeReply>(spawnWorker(PROBE, { tag: 'bootstrap' }, { backendModules: [BACKEND_MODULE] }));
    expect(reply.stack).toContain(PROBE.pathname);
    expect(reply.stack).not.toContain(CACHE);
    expect(reply.loadedModules).toEqual([BACKEND_MODULE]);
    expect(reply.tag).toBe('bootstrap');
  });

  it("starts a bundled worker without the process's tsx preload, keeping every other option", () => {
    const tsxLoader = 'file:///repo/node_modules/.pnpm/tsx@4/node_modules/tsx/dist/loader.mjs';
    expect(
      withoutTsxPreload([
        '--conditions=heaplab-source',
        '--import',
        'tsx',
        `--import=${tsxLoader}`,
        '--import',
        'tsx/esm',
        '--import',
        './tsx-like.mjs',
        '--no-warnings',
      ]),
    ).toEqual(['--conditions=heaplab-source', '--import', './tsx-like.mjs', '--no-warnings']);
    expect(withoutTsxPreload(['--import'])).toEqual(['--import']);
  });
});
