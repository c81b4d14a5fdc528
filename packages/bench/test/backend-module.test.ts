/**
 * `--backend-module` and `HEAPLAB_BACKEND_MODULES`: backends from outside heaplab's packages
 * (the fixtures in fixtures/outside-backend/), listed by `heaplab backends` and benchmarked
 * with their one-thread rows in isolated processes and their two-thread rows in workers, by
 * the command line from source and, when it is built and up to date, from dist/.
 */

import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { delimiter, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import { BACKEND_MODULES_VARIABLE } from '../src/cli/backend-module-option.js';
import { resolveBackendContenders } from '../src/contenders/backends.js';
import { DIST_CLI, distMissing } from './dist-build.js';
import { heaplabInProcess } from './inspect-helpers.js';

const OUTSIDE = fileURLToPath(new URL('./fixtures/outside-backend/', import.meta.url));
const MINE_TS = join(OUTSIDE, 'mine.ts');
const MINE_JS = join(OUTSIDE, 'minejs.mjs');
const SOURCE_CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
/** tsx's loader by its path: a process started in a temporary directory would not find the package `tsx`. */
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

const temporary: string[] = [];
afterAll(() => {
  for (const directory of temporary) rmSync(directory, { recursive: true, force: true });
});

function temporaryDirectory(): string {
  const directory = mkdtempSync(join(tmpdir(), 'heaplab-backend-module-'));
  temporary.push(directory);
  return directory;
}

/** `heaplab ...args` in a process of its own: from source (tsx, the "heaplab-source" condition) or the build. */
function heaplab(
  from: 'source' | 'dist',
  args: string[],
  { cwd, env }: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): { status: number | null; stdout: string; stderr: string } {
  const node = from === 'source' ? ['--conditions=heaplab-source', '--import', TSX, SOURCE_CLI] : [DIST_CLI];
  const result = spawnSync(process.execPath, [...node, ...args], { encoding: 'utf8', timeout: 60_000, cwd, env: { ...process.env, ...env } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A short glibc-thread run on `backends`, one and two threads, every one-thread row in an isolated process. */
function benchArgs(modules: string[], backends: string[], json: string): string[] {
  return [
    'bench',
    'glibc-thread',
    ...modules.flatMap((module) => ['--backend-module', module]),
    ...backends.flatMap((backend) => ['--backend', backend]),
    ...['--threads', '1,2', '--duration', '0.1', '--repeat', '1', '--no-warmup', '--baselines', 'none', '--quiet', '--json', json],
  ];
}

/** Expects a row per backend and thread count in the run's JSON, none failed. */
function expectEveryRow(json: string, backends: string[]): void {
  const rows = (JSON.parse(readFileSync(json, 'utf8')) as { glibcThread: { label: string; threads: number; error?: string }[] }).glibcThread;
  expect(rows.map((row) => `${row.label}/${row.threads}: ${row.error ?? 'ok'}`).sort()).toEqual(
    backends.flatMap((backend) => [`${backend}/1: ok`, `${backend}/2: ok`]).sort(),
  );
}

describe('--backend-module in this process', () => {
  it('lists the backends of a TypeScript module named by absolute path and of a JavaScript one named by relative path', async () => {
    const result = await heaplabInProcess('backends', '--backend-module', MINE_TS, '--backend-module', `./${relative(process.cwd(), MINE_JS)}`);
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^mine {2}\(locked\)$/m);
    expect(result.stdout).toContain(`    from ${MINE_TS}`);
    expect(result.stdout).toMatch(/^minejs {2}\(locked\)$/m);
    expect(result.stdout).toMatch(/^basic {2}\(locked\)$/m);
    // Loaded before --backend is read: `all` includes them.
    expect(resolveBackendContenders(['all']).map((row) => row.label)).toEqual(expect.arrayContaining(['mine', 'minejs', 'tlsf']));
  });

  it(`honours ${BACKEND_MODULES_VARIABLE}, and names it when an entry cannot be loaded`, async () => {
    try {
      process.env[BACKEND_MODULES_VARIABLE] = `${MINE_JS}${delimiter}${delimiter}${MINE_TS}`;
      const listed = await heaplabInProcess('backends');
      expect(listed.status).toBe(0);
      expect(listed.stdout).toMatch(/^minejs {2}\(locked\)$/m);
      process.env[BACKEND_MODULES_VARIABLE] = 'nope-env.ts';
      const refused = await heaplabInProcess('bench', 'glibc-thread', '--backend', 'basic');
      expect(refused.status).toBe(1);
      expect(refused.stderr).toMatch(
        new RegExp(`^error: ${BACKEND_MODULES_VARIABLE} entry 'nope-env.ts': there is no file \\S+nope-env\\.ts, and no package 'nope-env.ts' is installed`),
      );
    } finally {
      delete process.env[BACKEND_MODULES_VARIABLE];
    }
  });

  it('exits with status 1 and a clear message for a missing module and for a module without backends', async () => {
    const commands = [
      ['bench', 'glibc-thread', '--backend', 'basic'],
      ['map', '--backend', 'basic', '--workload', 'glibc-thread', '--at', '50%', '--out', tmpdir()],
      ['stats', '--backend', 'basic', '--workload', 'glibc-thread'],
      ['backends'],
    ];
    for (const command of commands) {
      const missing = await heaplabInProcess(...command, '--backend-module', 'nope.ts');
      expect(missing.status, command.join(' ')).toBe(1);
      expect(missing.stderr).toMatch(
        /^error: --backend-module nope\.ts: there is no file \S+nope\.ts, and no package 'nope\.ts' is installed in \S+ or a directory above it/,
      );
    }
    const empty = await heaplabInProcess('backends', '--backend-module', join(OUTSIDE, 'not-a-backend.mjs'));
    expect(empty.status).toBe(1);
    expect(empty.stderr).toMatch(/^error: --backend-module \S+not-a-backend\.mjs: the backend module \S+not-a-backend\.mjs exports no backend descriptor/);
  });
});

describe('--backend-module on the command line', () => {
  it("from source: a TypeScript module runs every row, one thread in an isolated process and two in workers, beside heaplab's own", () => {
    const json = join(temporaryDirectory(), 'out.json');
    const result = heaplab('source', benchArgs([MINE_TS], ['mine', 'tlsf'], json));
    expect(result.stderr).not.toMatch(/FAILED|unknown backend/);
    expect(result.status).toBe(0);
    expectEveryRow(json, ['mine', 'tlsf']);
  });

  it('from source: lists the backends of a package installed in the working directory', () => {
    const project = temporaryDirectory();
    const root = join(project, 'node_modules', 'heaplab-outside');
    mkdirSync(root, { recursive: true });
    // `import` exports only; its module builds on minejs (its own @heaplab/core would be another copy).
    writeFileSync(join(root, 'package.json'), JSON.stringify({ name: 'heaplab-outside', type: 'module', exports: { '.': { import: './index.mjs' } } }));
    writeFileSync(
      join(root, 'index.mjs'),
      `import { minejsBackend } from ${JSON.stringify(pathToFileURL(MINE_JS).href)};\n` +
        "export const outsideBackend = { ...minejsBackend, name: 'outside-pkg', moduleUrl: import.meta.url };\n",
    );
    const result = heaplab('source', ['backends', '--backend-module', 'heaplab-outside'], { cwd: project });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^outside-pkg {2}\(locked\)$/m);
    expect(result.stdout).toContain(`from ${join(root, 'index.mjs')}`);
  });

  it('from dist: the JavaScript and the TypeScript module run every row, the second through tsx that heaplab registers', (context) => {
    const why = distMissing();
    if (why !== undefined) {
      console.log(`skipped the run from dist: ${why}`);
      context.skip();
    }
    const json = join(temporaryDirectory(), 'out.json');
    const result = heaplab('dist', benchArgs([MINE_TS, MINE_JS], ['mine', 'minejs'], json));
    expect(result.stderr).not.toMatch(/FAILED|unknown backend/);
    expect(result.status).toBe(0);
    expectEveryRow(json, ['mine', 'minejs']);
  });
});
