/**
 * The Deno and Bun binaries the runtime smoke test (runtimes.test.ts) runs, from the npm
 * registry: the `deno` and `bun` packages pull in their platform's binary as an optional
 * dependency. They are installed once, with the pinned versions below, into a cache under the
 * system's temporary directory, and found there on later runs without the network. The
 * install goes to a scratch folder that is renamed into place only when it is complete, so an
 * interrupted or concurrent install never leaves a half-filled cache behind.
 */

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The runtimes, with the exact versions tested (docs/deno-and-bun.md names the same). */
export const RUNTIME_VERSIONS = { deno: '2.9.6', bun: '1.4.5' } as const;

export type RuntimeName = keyof typeof RUNTIME_VERSIONS;

/** Where the binaries are cached: one folder per pair of versions, so a version bump installs afresh. */
export const RUNTIME_CACHE = join(
  tmpdir(),
  'heaplab-runtimes',
  Object.entries(RUNTIME_VERSIONS)
    .map(([name, version]) => `${name}-${version}`)
    .join('_'),
);

/** The longest the npm install may take (two binaries of about 100 MB each on a cold cache). */
const INSTALL_LIMIT_MS = 150_000;
/** The longest `<binary> --version` may take. */
const VERSION_LIMIT_MS = 15_000;

/** What the cache gave: each runtime's binary, or why it is missing. */
export interface RuntimeBinaries {
  binaries: Partial<Record<RuntimeName, string>>;
  missing: Partial<Record<RuntimeName, string>>;
  /** How long finding (and, on a cold cache, installing) them took. */
  ms: number;
  installed: boolean;
}

/** Runs a program; never rejects, the outcome says how it went. */
function run(
  file: string,
  args: string[],
  options: { cwd?: string; timeout: number },
): Promise<{ ok: boolean; stdout: string; stderr: string; error?: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { ...options, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
      resolve({ ok: error === null, stdout, stderr, ...(error === null ? {} : { error: error.message.split('\n')[0] }) });
    });
  });
}

/**
 * The binary of `name` under an npm project at `root`, checked to print the pinned version:
 * the platform package's own binary (`@deno/<platform>/deno`, `@oven/bun-<platform>/bin/bun`)
 * if it is still there, else `node_modules/.bin/<name>`, which the packages' install scripts
 * point at the platform binary (without them, Deno's is a Node wrapper around it).
 */
async function binaryIn(root: string, name: RuntimeName): Promise<string | undefined> {
  const modules = join(root, 'node_modules');
  const [scope, inPackage] = name === 'deno' ? ['@deno', 'deno'] : ['@oven', join('bin', 'bun')];
  const platformBinaries = existsSync(join(modules, scope)) ? readdirSync(join(modules, scope)).map((folder) => join(modules, scope, folder, inPackage)) : [];
  for (const candidate of [...platformBinaries, join(modules, '.bin', name)]) {
    if (!existsSync(candidate)) continue;
    const version = await run(candidate, ['--version'], { timeout: VERSION_LIMIT_MS });
    if (version.ok && version.stdout.includes(RUNTIME_VERSIONS[name])) return candidate;
  }
  return undefined;
}

/** Each runtime's binary in `root`, or why it is not there. */
async function binariesIn(root: string, installFailure?: string): Promise<Omit<RuntimeBinaries, 'ms' | 'installed'>> {
  const binaries: RuntimeBinaries['binaries'] = {};
  const missing: RuntimeBinaries['missing'] = {};
  for (const name of Object.keys(RUNTIME_VERSIONS) as RuntimeName[]) {
    const binary = await binaryIn(root, name);
    if (binary !== undefined) binaries[name] = binary;
    else missing[name] = `${name} ${RUNTIME_VERSIONS[name]} (npm package '${name}'): ${installFailure ?? 'the package installed no binary that runs here'}`;
  }
  return { binaries, missing };
}

/**
 * The Deno and Bun binaries, from the cache, installing them there first when it lacks
 * either (`npm install --prefer-offline`, so a warm npm cache needs no network).
 */
export async function runtimeBinaries(): Promise<RuntimeBinaries> {
  const started = performance.now();
  const cached = await binariesIn(RUNTIME_CACHE);
  if (Object.keys(cached.missing).length === 0) return { ...cached, ms: performance.now() - started, installed: false };

  mkdirSync(join(RUNTIME_CACHE, '..'), { recursive: true });
  const scratch = mkdtempSync(`${RUNTIME_CACHE}.installing-`);
  try {
    writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'heaplab-runtimes', private: true }));
    const specs = Object.entries(RUNTIME_VERSIONS).map(([name, version]) => `${name}@${version}`);
    const install = await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-save', ...specs], {
      cwd: scratch,
      timeout: INSTALL_LIMIT_MS,
    });
    // npm's own words for why (ECONNREFUSED, ENOTFOUND, E404...), without its log file's path.
    const npmErrors = install.stderr.split('\n').filter((line) => line.startsWith('npm error') && !line.includes('complete log'));
    const failure = install.ok ? undefined : `npm install ${specs.join(' ')} failed: ${npmErrors.slice(0, 3).join(' / ') || install.error}`;
    const fresh = await binariesIn(scratch, failure);
    if (Object.keys(fresh.binaries).length === 0) return { ...fresh, ms: performance.now() - started, installed: false };
    // A cache missing a runtime is replaced. A run installing at the same moment may put its
    // own in place between the two calls; then the rename fails, and that cache is used.
    try {
      rmSync(RUNTIME_CACHE, { recursive: true, force: true });
      renameSync(scratch, RUNTIME_CACHE);
    } catch {
      // The other run's cache holds the same versions.
    }
    return { ...(await binariesIn(RUNTIME_CACHE, failure)), ms: performance.now() - started, installed: true };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}
