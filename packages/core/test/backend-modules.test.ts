/**
 * Backends loaded from modules outside heaplab's packages (`loadBackendModule`): by relative
 * and absolute path, by package name, the errors, and workers that load the same modules
 * before their entry (`spawnWorker`'s bootstrap), so that they can attach to such a heap.
 */

import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { AllocError, findBackend, GlobalAllocator, loadBackendModule, loadedBackendModules, MiB, spawnWorker } from '../src/index.js';

/** The fixtures of a backend written outside heaplab's packages (the bench's tests use them too). */
const OUTSIDE = fileURLToPath(new URL('../../bench/test/fixtures/outside-backend/', import.meta.url));
const MINE_TS = join(OUTSIDE, 'mine.ts');
const MINE_JS = join(OUTSIDE, 'minejs.mjs');
const ATTACH_WORKER = new URL('./workers/attach-worker.mjs', import.meta.url);

/** The error `promise` rejects with, which must be an AllocError. */
async function allocErrorOf(promise: Promise<unknown>): Promise<AllocError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(AllocError);
  return error as AllocError;
}

const temporary: string[] = [];
afterAll(() => {
  for (const directory of temporary) rmSync(directory, { recursive: true, force: true });
});

/**
 * A project directory with a package `heaplab-outside` that exports two backend modules for
 * `import` only. It is linked into node_modules from the project's packages/ folder, as a
 * workspace or `npm link` installs one: the module's real path lies outside node_modules, so
 * vitest loads it as it loads this test, rather than handing it to Node, which cannot load
 * the TypeScript that `@heaplab/core` resolves to here. (The bench's command-line test loads
 * a package copied into node_modules, in a process of its own.)
 */
function projectWithPackage(): string {
  const project = mkdtempSync(join(tmpdir(), 'heaplab-backend-modules-'));
  temporary.push(project);
  const root = join(project, 'packages', 'heaplab-outside');
  mkdirSync(join(root, 'lib'), { recursive: true });
  // `import` only, as many ES module packages: `require.resolve` finds nothing here.
  const manifest = { name: 'heaplab-outside', type: 'module', exports: { '.': { import: './lib/index.mjs' }, './extra': { import: './lib/extra.mjs' } } };
  writeFileSync(join(root, 'package.json'), JSON.stringify(manifest));
  const wrap = (name: string): string =>
    `import { minejsBackend } from ${JSON.stringify(pathToFileURL(MINE_JS).href)};\n` +
    `export const backend = { ...minejsBackend, name: ${JSON.stringify(name)}, moduleUrl: import.meta.url };\n`;
  writeFileSync(join(root, 'lib', 'index.mjs'), wrap('outside-pkg'));
  writeFileSync(join(root, 'lib', 'extra.mjs'), wrap('outside-extra'));
  mkdirSync(join(project, 'node_modules'));
  symlinkSync(root, join(project, 'node_modules', 'heaplab-outside'), 'dir');
  return project;
}

describe('loadBackendModule', () => {
  it('loads a JavaScript module by a path relative to `from`, registers its backend and remembers its URL', async () => {
    const descriptors = await loadBackendModule('./minejs.mjs', { from: OUTSIDE });
    expect(descriptors.map((descriptor) => descriptor.name)).toEqual(['minejs']);
    expect(findBackend('minejs')).toBe(descriptors[0]);
    expect(loadedBackendModules()).toContain(pathToFileURL(MINE_JS).href);
    const heap = GlobalAllocator.create({ backend: 'minejs', heapBytes: 8 * MiB });
    const address = heap.malloc(64);
    expect(address).not.toBe(0);
    heap.free(address);
    heap.detach();
  });

  it('loads a TypeScript module by absolute path, and by a bare file name that exists relative to `from`', async () => {
    const [mine] = await loadBackendModule(MINE_TS);
    expect(mine!.name).toBe('mine');
    expect(findBackend('mine')).toBe(mine);
    const again = await loadBackendModule('mine.ts', { from: OUTSIDE });
    expect(again[0]).toBe(mine);
    const urls = loadedBackendModules();
    expect(urls.filter((url) => url === pathToFileURL(MINE_TS).href)).toHaveLength(1);
  });

  it('takes the file URL that loadedBackendModules gives, as a worker does', async () => {
    const [mine] = await loadBackendModule(pathToFileURL(MINE_TS).href);
    expect(mine!.name).toBe('mine');
  });

  it("resolves a package name from `from`'s node_modules by its import exports, a subpath too", async () => {
    const project = projectWithPackage();
    const [outside] = await loadBackendModule('heaplab-outside', { from: project });
    expect(outside!.name).toBe('outside-pkg');
    expect(findBackend('outside-pkg').moduleUrl).toMatch(/packages\/heaplab-outside\/lib\/index\.mjs$/);
    // A directory below the project finds the package above it, as import does.
    const below = join(project, 'src', 'deep');
    mkdirSync(below, { recursive: true });
    const [extra] = await loadBackendModule('heaplab-outside/extra', { from: below });
    expect(extra!.name).toBe('outside-extra');
    const missing = await allocErrorOf(loadBackendModule('heaplab-outside/nothing', { from: project }));
    expect(missing.kind).toBe('UnknownBackend');
    expect(missing.message).toMatch(/package 'heaplab-outside' .* exports no module '\.\/nothing' for import/);
  });

  it('refuses a module that exports no backend descriptor, naming the file', async () => {
    const error = await allocErrorOf(loadBackendModule(join(OUTSIDE, 'not-a-backend.mjs')));
    expect(error.kind).toBe('UnknownBackend');
    expect(error.message).toMatch(/not-a-backend\.mjs exports no backend descriptor/);
    expect(loadedBackendModules().some((url) => url.endsWith('not-a-backend.mjs'))).toBe(false);
  });

  it('refuses a missing file and a package that is not installed', async () => {
    const file = await allocErrorOf(loadBackendModule('./nope.ts', { from: OUTSIDE }));
    expect(file.kind).toBe('UnknownBackend');
    expect(file.message).toBe(`there is no backend module file ${join(OUTSIDE, 'nope.ts')}`);
    const bare = await allocErrorOf(loadBackendModule('nope-backend', { from: OUTSIDE }));
    expect(bare.message).toMatch(/no package 'nope-backend' is installed in .*outside-backend or a directory above it/);
    const empty = await allocErrorOf(loadBackendModule(' '));
    expect(empty.message).toMatch(/the name is empty/);
    const data = await allocErrorOf(loadBackendModule('data:text/javascript,export default 1'));
    expect(data.message).toMatch(/neither a file nor a package name/);
  });
});

describe('workers started with spawnWorker load the backend modules first', () => {
  /** Starts the JavaScript attach worker on `buffer` and resolves with its reply. */
  function attachInWorker(buffer: SharedArrayBuffer, workerData: Record<string, unknown> = {}, backendModules?: string[]): Promise<Record<string, unknown>> {
    const worker = spawnWorker(ATTACH_WORKER, { buffer, ...workerData }, backendModules === undefined ? {} : { backendModules });
    return new Promise((resolve, reject) => {
      worker.once('message', (reply: Record<string, unknown>) => {
        resolve(reply);
        void worker.terminate();
      });
      worker.once('error', reject);
    });
  }

  it('attaches from a JavaScript entry to a heap of the TypeScript backend: by default the modules this thread loaded', async () => {
    await loadBackendModule(MINE_TS);
    const heap = GlobalAllocator.create({ backend: 'mine', heapBytes: 8 * MiB });
    try {
      const reply = await attachInWorker(heap.buffer);
      expect(reply).toMatchObject({ ok: true, backend: 'mine' });
      expect(reply['address']).toBeGreaterThanOrEqual(heap.arenaStart);
      heap.check();
    } finally {
      heap.detach();
    }
  });

  it('loads the modules listed in workerData.heaplabBackendModules, and a worker told of other modules cannot attach', async () => {
    await loadBackendModule(MINE_TS);
    const heap = GlobalAllocator.create({ backend: 'mine', heapBytes: 8 * MiB });
    try {
      const listed = await attachInWorker(heap.buffer, { heaplabBackendModules: [pathToFileURL(MINE_TS).href] }, []);
      expect(listed).toMatchObject({ ok: true, backend: 'mine' });
      // The control: told of minejs only, the worker does not know mine, and attach does not
      // import a module outside heaplab's packages that it was not told to trust.
      const other = await attachInWorker(heap.buffer, {}, [MINE_JS]);
      expect(other).toMatchObject({ ok: false, kind: 'UnknownBackend' });
      expect(other['message']).toMatch(/backend 'mine': the heap names the module .*mine\.ts.* not one of heaplab's backend packages/);
    } finally {
      heap.detach();
    }
  });

  it('refuses a heaplabBackendModules that is not a list of strings', () => {
    expect(() => spawnWorker(ATTACH_WORKER, { heaplabBackendModules: 'mine.ts' })).toThrow(/must be a list of module URLs or paths/);
  });
});
