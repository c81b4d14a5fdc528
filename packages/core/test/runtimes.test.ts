/**
 * heaplab on Deno and Bun (issue #18, docs/deno-and-bun.md). Each runtime runs the smoke
 * script fixtures/runtime-smoke.mjs in a scratch project where the BUILT core, tlsf and
 * mimalloc are installed as a consumer installs them (their package.json and dist/, copied
 * into node_modules): tlsf and mimalloc heaps shared with a worker started through
 * spawnWorker, blocks freed by the thread that did not allocate them, check() on the result.
 * The worker runs once from JavaScript and once from TypeScript, which Deno and Bun load
 * themselves: the project has no tsx, so a worker sent through core's tsx bootstrap would
 * fail. The TypeScript run also loads a backend from a TypeScript module, in the main thread
 * and, through the bootstrap, in the worker. Every run ends with watchWorker reaping a worker
 * that exited without detaching. Node runs the same script as the control. Both runtimes
 * also run it on heaplab's TypeScript sources, with no build. The runtimes' binaries come
 * from the npm registry (runtime-binaries.ts), cached after the first run.
 */

import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { linkedProject, PACKAGES, staleBuild } from './built-packages.js';
import { RUNTIME_CACHE, RUNTIME_VERSIONS, type RuntimeName, runtimeBinaries } from './runtime-binaries.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
/** The packages the smoke script imports, installed from their dist/. */
const SMOKE_PACKAGES = ['core', 'tlsf', 'mimalloc'];
const SMOKE_FILES = [
  'runtime-smoke.mjs',
  'runtime-smoke-work.mjs',
  'runtime-smoke-worker.mjs',
  'runtime-smoke-worker.ts',
  'runtime-smoke-backend.ts',
  'runtime-smoke-abandon.mjs',
];

/**
 * The permissions Deno needs, and no more (docs/deno-and-bun.md): reading the project, for
 * the modules a worker loads (Deno checks a worker's imports, not the main module's static
 * ones); and the environment variables core reads (HEAPLAB_CHECKED in create, and
 * HEAPLAB_BACKEND when create names no backend).
 */
const DENO_FLAGS = ['--allow-read=.', '--allow-env=HEAPLAB_CHECKED,HEAPLAB_BACKEND'];

/**
 * Running heaplab's TypeScript sources instead of its build: both runtimes take the
 * `heaplab-source` export condition (and pass it on to workers); Deno also needs
 * `--sloppy-imports`, because the sources import each other as `./name.js`, and must read the
 * packages where the links in node_modules lead.
 */
const SOURCE_FLAGS: Record<RuntimeName, string[]> = {
  deno: ['--conditions=heaplab-source', '--sloppy-imports', `--allow-read=.,${PACKAGES}`, '--allow-env=HEAPLAB_CHECKED,HEAPLAB_BACKEND'],
  bun: ['--conditions=heaplab-source'],
};

/** The command line that runs the smoke script on each runtime, with its worker in `language`, on the build or the sources. */
function smokeCommand(runtime: RuntimeName | 'node', binary: string, language: 'js' | 'ts', from: 'dist' | 'src' = 'dist'): [string, string[]] {
  const flags = runtime === 'node' ? [] : from === 'src' ? SOURCE_FLAGS[runtime] : runtime === 'deno' ? DENO_FLAGS : [];
  return [binary, [...(runtime === 'deno' ? ['run'] : []), ...flags, 'runtime-smoke.mjs', language]];
}

/** The longest one run of the smoke script may take; it takes about a second. */
const RUN_LIMIT_MS = 30_000;

/** What the smoke script prints as its last line. */
interface SmokeReport {
  runtime: string;
  /** The URL `@heaplab/core` resolved to. */
  core: string;
  workerLanguage: string;
  heaps: Record<string, unknown>[];
  abandoned: Record<string, unknown>;
}

/** The abandoning worker's slot is reaped without a failure; its one block stays, leaked with it. */
const GOOD_REAP = { reapedThreads: 1, failed: 0, threadsAfter: 1, liveBlocksAfter: 1 };

/**
 * Every heap's figures after a good run: the worker saw the main block, every block came back.
 * With the TypeScript worker, a third heap's backend comes from a TypeScript module.
 */
const goodHeaps = (language: 'js' | 'ts'): Record<string, unknown>[] =>
  [...['tlsf', 'mimalloc'], ...(language === 'ts' ? ['smoke-basic'] : [])].map((backend) => ({
    backend,
    workerBackend: backend,
    sameCoreInWorker: true,
    workerSawMainBlock: true,
    workerBlocks: 50,
    intactWorkerBlocks: 50,
    liveBlocksAfter: 0,
    usedBytesAfter: 0,
    threadsAfter: 1,
  }));

/**
 * Runs `file` with `args` in `cwd`, without the test's NODE_OPTIONS (the script needs no
 * loader), without colours in error messages, and without Deno's check for a newer release,
 * which would print its notice on stderr where the test expects nothing.
 */
function runIn(cwd: string, file: string, args: string[]): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  const started = performance.now();
  const { NODE_OPTIONS: _dropped, ...env } = process.env;
  return new Promise((resolve) => {
    execFile(file, args, { cwd, env: { ...env, NO_COLOR: '1', DENO_NO_UPDATE_CHECK: '1' }, timeout: RUN_LIMIT_MS }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stdout, stderr, ms: performance.now() - started });
    });
  });
}

/** The report on the script's last line of output. */
function reportOf(stdout: string): SmokeReport {
  return JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as SmokeReport;
}

const missingDist = staleBuild(SMOKE_PACKAGES);
if (missingDist !== undefined) console.warn(`runtimes test skipped: ${missingDist}`);
const runtimes = await runtimeBinaries();
const missingRuntimes = Object.values(runtimes.missing);
if (missingRuntimes.length > 0) {
  console.warn(
    `runtimes test skipped for ${missingRuntimes.join('; ')}. The test installs the binaries once from the npm registry into ${RUNTIME_CACHE}; ` +
      `with a registry reachable, rerun it, or install them there by hand: npm install --prefix ${RUNTIME_CACHE} ${Object.entries(RUNTIME_VERSIONS)
        .map(([name, version]) => `${name}@${version}`)
        .join(' ')}`,
  );
}
const foundRuntimes = Object.keys(runtimes.binaries);
if (foundRuntimes.length > 0) {
  console.info(
    `runtimes test: ${foundRuntimes.join(' and ')} ${runtimes.installed ? 'installed' : 'found'} in ${RUNTIME_CACHE} in ${Math.round(runtimes.ms)} ms`,
  );
}

describe.skipIf(missingDist !== undefined)('the built packages on Deno and Bun', () => {
  let project = '';

  beforeAll(() => {
    project = mkdtempSync(join(tmpdir(), 'heaplab-runtimes-'));
    for (const folder of SMOKE_PACKAGES) {
      const installed = join(project, 'node_modules', '@heaplab', folder);
      mkdirSync(installed, { recursive: true });
      cpSync(join(PACKAGES, folder, 'package.json'), join(installed, 'package.json'));
      cpSync(join(PACKAGES, folder, 'dist'), join(installed, 'dist'), { recursive: true });
    }
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'heaplab-runtime-smoke', private: true, type: 'module' }));
    for (const file of SMOKE_FILES) cpSync(join(FIXTURES, file), join(project, file));
  });

  afterAll(() => {
    if (project !== '') rmSync(project, { recursive: true, force: true });
  });

  it('node (the control) runs the smoke script with its JavaScript worker', async () => {
    const [file, args] = smokeCommand('node', process.execPath, 'js');
    const run = await runIn(project, file, args);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    expect(reportOf(run.stdout)).toEqual({
      runtime: `node ${process.versions.node}`,
      core: pathToFileURL(join(project, 'node_modules/@heaplab/core/dist/index.js')).href,
      workerLanguage: 'js',
      heaps: goodHeaps('js'),
      abandoned: GOOD_REAP,
    });
  });

  for (const runtime of Object.keys(RUNTIME_VERSIONS) as RuntimeName[]) {
    for (const language of ['js', 'ts'] as const) {
      const binary = runtimes.binaries[runtime];
      it.skipIf(binary === undefined)(
        `${runtime} ${RUNTIME_VERSIONS[runtime]}: create, attach from a ${language} worker, cross-thread frees, check(), watchWorker${language === 'ts' ? ', a backend module in TypeScript' : ''}`,
        async () => {
          const [file, args] = smokeCommand(runtime, binary!, language);
          const run = await runIn(project, file, args);
          expect(run.stderr).toBe('');
          expect(run.code).toBe(0);
          expect(reportOf(run.stdout)).toEqual({
            runtime: `${runtime} ${RUNTIME_VERSIONS[runtime]}`,
            core: pathToFileURL(join(project, 'node_modules/@heaplab/core/dist/index.js')).href,
            workerLanguage: language,
            heaps: goodHeaps(language),
            abandoned: GOOD_REAP,
          });
          expect(run.ms).toBeLessThan(RUN_LIMIT_MS);
        },
      );
    }
  }

  it.skipIf(runtimes.binaries.deno === undefined)('deno needs each of its flags: without one, the run fails naming it', async () => {
    for (const [dropped, failure] of [
      ['--allow-read', /Requires read access to "[^"]*runtime-smoke-worker\.mjs", run again with the --allow-read flag/],
      [
        '--allow-env',
        /AllocError: cannot read the environment variable HEAPLAB_CHECKED \(NotCapable: Requires env access to "HEAPLAB_CHECKED".*--allow-env=HEAPLAB_CHECKED,HEAPLAB_BACKEND/,
      ],
    ] as const) {
      const flags = DENO_FLAGS.filter((flag) => !flag.startsWith(dropped));
      const run = await runIn(project, runtimes.binaries.deno!, ['run', ...flags, 'runtime-smoke.mjs', 'js']);
      expect(run.code, `deno run without ${dropped}`).not.toBe(0);
      expect(run.stderr).toMatch(failure);
    }
  });
});

describe("heaplab's TypeScript sources on Deno and Bun, no build", () => {
  let project = '';

  beforeAll(() => {
    project = linkedProject('runtime-smoke-src', SMOKE_PACKAGES);
    for (const file of SMOKE_FILES) cpSync(join(FIXTURES, file), join(project, file));
  });

  afterAll(() => {
    if (project !== '') rmSync(project, { recursive: true, force: true });
  });

  for (const runtime of Object.keys(RUNTIME_VERSIONS) as RuntimeName[]) {
    const binary = runtimes.binaries[runtime];
    it.skipIf(binary === undefined)(`${runtime} ${RUNTIME_VERSIONS[runtime]} runs the smoke script on core's sources, in its workers too`, async () => {
      const [file, args] = smokeCommand(runtime, binary!, 'ts', 'src');
      const run = await runIn(project, file, args);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(reportOf(run.stdout)).toEqual({
        runtime: `${runtime} ${RUNTIME_VERSIONS[runtime]}`,
        core: pathToFileURL(join(PACKAGES, 'core/src/index.ts')).href,
        workerLanguage: 'ts',
        heaps: goodHeaps('ts'),
        abandoned: GOOD_REAP,
      });
    });
  }
});
