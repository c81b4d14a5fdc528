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
import { build } from 'esbuild';

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
    // The workspace's packages from their TypeScript sources, as the tests run them; with
    // platform 'browser', esbuild also resolves under the `browser` condition, which picks
    // core's browser platform module (#platform): no Node module reaches the bundle, and a
    // bare `node:` import anywhere would fail the build.
    conditions: ['heaplab-source'],
    minify: true,
    sourcemap: 'linked',
    metafile: true,
    logLevel: 'warning',
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
