/**
 * Builds the playground into a directory the static server serves: page.js and
 * heap-worker.js bundled by esbuild for browsers (with their shared chunks), index.html and
 * playground.css copied, and heaplab's trace set copied under traces/ with an index.json the
 * page lists them from. bench's tsup build runs it into dist/playground; `heaplab serve`
 * run from the sources runs it into a temporary directory at start.
 *
 * esbuild is a development dependency of the workspace, not of bench: only those two callers,
 * both in a checkout, import this module.
 */

import { copyFileSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseTrace, traceFigures } from '@heaplab/core';
import { build, type Plugin } from 'esbuild';

import { TRACE_EXTENSIONS } from '../replay/trace-files.js';
import { TRACE_DIRECTORY, TRACE_INDEX, type TraceEntry } from './trace-list.js';

/** This directory: the page's sources. */
const SOURCES = fileURLToPath(new URL('.', import.meta.url));
/** bench's trace set. */
const TRACES = fileURLToPath(new URL('../../traces/', import.meta.url));

/** What a build made. */
export interface PlaygroundBuild {
  directory: string;
  /** Bytes of the JavaScript written (page, worker and chunks, without source maps). */
  scriptBytes: number;
}

/**
 * TEMPORARY, until @heaplab/core chooses its platform module by export condition (the
 * `platform` branch): core's facade imports `threadId` and `Worker` from
 * node:worker_threads at its top level. On a page there is one thread per heap handle's
 * realm and no Node worker, so the stub gives thread id 0 (the registry records it only for
 * reaping Node workers). Node modules and tsx, which core imports inside functions (loading
 * backend modules by path), are left as imports that fail if ever run; the page never runs them.
 */
const temporaryNodeStubs: Plugin = {
  name: 'heaplab-temporary-node-stubs',
  setup(esbuild) {
    esbuild.onResolve({ filter: /^node:worker_threads$/ }, () => ({ path: 'worker_threads', namespace: 'heaplab-node-stub' }));
    esbuild.onLoad({ filter: /.*/, namespace: 'heaplab-node-stub' }, () => ({
      contents:
        'export const threadId = 0; export const isMainThread = true; export const Worker = undefined; export const parentPort = null; export const workerData = undefined;',
      loader: 'js',
    }));
    esbuild.onResolve({ filter: /^node:/ }, (args) => ({ path: args.path, external: true }));
    // Core imports tsx inside a function, to load backend modules written in TypeScript.
    esbuild.onResolve({ filter: /^tsx(\/|$)/ }, (args) => ({ path: args.path, external: true }));
  },
};

/** Builds the playground into `directory` (emptied first). */
export async function bundlePlayground(directory: string): Promise<PlaygroundBuild> {
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(join(directory, TRACE_DIRECTORY), { recursive: true });
  const result = await build({
    entryPoints: { page: join(SOURCES, 'page.ts'), 'heap-worker': join(SOURCES, 'heap-worker.ts') },
    outdir: directory,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    // The workspace's packages from their TypeScript sources, as the tests run them.
    conditions: ['heaplab-source'],
    minify: true,
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [temporaryNodeStubs],
  });
  for (const file of ['index.html', 'playground.css']) copyFileSync(join(SOURCES, file), join(directory, file));
  const entries: TraceEntry[] = [];
  for (const file of readdirSync(TRACES).sort()) {
    if (!TRACE_EXTENSIONS.some((extension) => file.endsWith(extension)) || !statSync(join(TRACES, file)).isFile()) continue;
    const text = readFileSync(join(TRACES, file), 'utf8');
    const trace = parseTrace(text, file);
    copyFileSync(join(TRACES, file), join(directory, TRACE_DIRECTORY, file));
    entries.push({ file, description: trace.description, requests: traceFigures(trace).requests, threads: trace.threads });
  }
  writeFileSync(join(directory, TRACE_DIRECTORY, TRACE_INDEX), `${JSON.stringify(entries, null, 2)}\n`);
  const scriptBytes = Object.entries(result.metafile.outputs)
    .filter(([file]) => file.endsWith('.js'))
    .reduce((sum, [, output]) => sum + output.bytes, 0);
  return { directory, scriptBytes };
}
