/**
 * heaplab's packages as a registry would serve them, for tests that install them the way a
 * user does: `packWorkspace()` packs every workspace package with `pnpm pack` (which writes
 * `workspace:` ranges as versions) into a cache folder under the OS temp folder, named by a
 * hash of everything the tarballs are made of, so a second run with the same build reuses
 * them; `installedProject()` makes a scratch project outside the repository and installs
 * tarballs there with npm, every heaplab package a dependency pulls in coming from its
 * tarball too (npm `overrides`), never from the registry.
 *
 * Packing needs the build (`pnpm -r build`, which the test command runs before vitest): a
 * package without dist/, or whose sources are newer than its dist/, is refused with that
 * command rather than packed stale.
 */

import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve, sep } from 'node:path';
import { promisify } from 'node:util';

const execFileAsync = promisify(execFile);

/** The repository root (this file is packages/test-kit/test/packaging/packed-project.ts). */
export const REPO_ROOT = resolve(import.meta.dirname, '..', '..', '..', '..');
const PACKAGES_FOLDER = join(REPO_ROOT, 'packages');
/** Where packed workspaces are cached, one folder per input hash. */
export const PACK_CACHE_FOLDER = join(tmpdir(), 'heaplab-pack-cache');
/** A cached packing unused for this long is deleted by the next packing of other inputs. */
const STALE_CACHE_MS = 24 * 60 * 60 * 1000;
/** Longest one `pnpm pack` may take (it copies dist/ and src/: a second or two). */
const PACK_TIMEOUT_MS = 60_000;
/** Longest `npm install` of tarballs may take: registry packages come from npm's cache when there. */
export const INSTALL_TIMEOUT_MS = 180_000;
/** Output a child may print before it is cut off (npm's and tsc's reports are far smaller). */
const MAX_OUTPUT_BYTES = 16 * 1024 * 1024;

/** A package of the workspace, as its manifest describes it. */
export interface WorkspacePackage {
  name: string;
  version: string;
  /** Absolute path of its folder. */
  folder: string;
  /** Its manifest's `files`: what `pnpm pack` puts in the tarball beside package.json. */
  files: string[];
}

/** Every package under packages/, sorted by name. */
export function workspacePackages(): WorkspacePackage[] {
  return readdirSync(PACKAGES_FOLDER)
    .map((entry) => join(PACKAGES_FOLDER, entry))
    .filter((folder) => existsSync(join(folder, 'package.json')))
    .map((folder) => {
      const manifest = JSON.parse(readFileSync(join(folder, 'package.json'), 'utf8')) as { name: string; version: string; files?: string[] };
      return { name: manifest.name, version: manifest.version, folder, files: manifest.files ?? [] };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** Every file under `path` (itself when a file), absolute, sorted. */
function filesUnder(path: string): string[] {
  if (!existsSync(path)) return [];
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/** The newest modification time among `paths`' files, 0 when none. */
function newestMtime(paths: readonly string[]): number {
  let newest = 0;
  for (const file of paths.flatMap(filesUnder)) newest = Math.max(newest, statSync(file).mtimeMs);
  return newest;
}

/**
 * Refuses a package whose build is missing or older than its sources: its tarball would not
 * hold what the sources say.
 * @throws Error naming the package and the command that builds it
 */
function checkBuilt(pkg: WorkspacePackage): void {
  const dist = join(pkg.folder, 'dist');
  if (!existsSync(dist)) throw new Error(`${pkg.name} is not built (no ${dist}): run pnpm -r build first`);
  const newestSource = newestMtime([join(pkg.folder, 'src'), join(pkg.folder, 'package.json'), join(pkg.folder, 'tsup.config.ts')]);
  // Written by every build of every package (each has an index entry).
  const built = statSync(join(dist, 'index.js')).mtimeMs;
  if (newestSource > built) throw new Error(`${pkg.name}'s dist/ is older than its sources: run pnpm -r build first`);
}

/** A hash of every file the tarballs are made of: each package's manifest and its `files`. */
function packedInputsHash(packages: readonly WorkspacePackage[]): string {
  const hash = createHash('sha256');
  for (const pkg of packages) {
    for (const file of [join(pkg.folder, 'package.json'), ...pkg.files.flatMap((entry) => filesUnder(join(pkg.folder, entry)))]) {
      hash.update(relative(REPO_ROOT, file).split(sep).join('/'));
      hash.update('\0');
      hash.update(readFileSync(file));
      hash.update('\0');
    }
  }
  return hash.digest('hex').slice(0, 16);
}

/** The workspace packed: a folder of tarballs and each package's tarball by name. */
export interface PackedWorkspace {
  /** The folder holding the tarballs (and nothing else). */
  folder: string;
  /** Absolute tarball path by package name. */
  tarballs: Map<string, string>;
  /** Packages by name, as their manifests describe them. */
  packages: Map<string, WorkspacePackage>;
  /** True when the tarballs came from the cache, packed by an earlier run. */
  cached: boolean;
}

/** The tarballs in a cache folder, by the package name `pnpm pack` encodes in each file name. */
function tarballsIn(folder: string, packages: readonly WorkspacePackage[]): Map<string, string> {
  const tarballs = new Map<string, string>();
  for (const pkg of packages) {
    const file = join(folder, `${pkg.name.replace(/^@/, '').replace('/', '-')}-${pkg.version}.tgz`);
    if (existsSync(file)) tarballs.set(pkg.name, file);
  }
  return tarballs;
}

/** Deletes cached packings of other inputs that nothing has used for a day (other checkouts may still be using recent ones). */
function pruneCache(keep: string): void {
  for (const entry of readdirSync(PACK_CACHE_FOLDER)) {
    const path = join(PACK_CACHE_FOLDER, entry);
    if (path !== keep && Date.now() - statSync(path).mtimeMs > STALE_CACHE_MS) rmSync(path, { recursive: true, force: true });
  }
}

/**
 * Packs every workspace package with `pnpm pack`, or reuses the tarballs an earlier run packed
 * from the same inputs. Safe to call from parallel test files: each packs into a folder of its
 * own and renames it into place; the first rename wins and the others use its tarballs.
 * @throws Error when a package is not built or stale, or pnpm fails
 */
export async function packWorkspace(): Promise<PackedWorkspace> {
  const packages = workspacePackages();
  for (const pkg of packages) checkBuilt(pkg);
  const byName = new Map(packages.map((pkg) => [pkg.name, pkg]));
  mkdirSync(PACK_CACHE_FOLDER, { recursive: true });
  const folder = join(PACK_CACHE_FOLDER, packedInputsHash(packages));
  const cachedTarballs = existsSync(folder) ? tarballsIn(folder, packages) : new Map<string, string>();
  if (cachedTarballs.size === packages.length) {
    writeFileSync(join(folder, '.last-used'), new Date().toISOString());
    return { folder, tarballs: cachedTarballs, packages: byName, cached: true };
  }

  const partial = mkdtempSync(`${folder}.partial-`);
  try {
    // One at a time: the machine running the suite is busy enough, and each pack is short.
    for (const pkg of packages) {
      try {
        await execFileAsync('pnpm', ['pack', '--pack-destination', partial], { cwd: pkg.folder, timeout: PACK_TIMEOUT_MS, maxBuffer: MAX_OUTPUT_BYTES });
      } catch (error) {
        const failure = error as { stdout?: string; stderr?: string; message: string };
        throw new Error(`pnpm pack in ${pkg.folder} failed: ${failure.message}\n${failure.stdout ?? ''}${failure.stderr ?? ''}`);
      }
    }
    if (tarballsIn(partial, packages).size !== packages.length) throw new Error(`pnpm pack left ${readdirSync(partial).join(', ')} in ${partial}`);
    // A folder left incomplete (its tarballs deleted by hand) is replaced; a complete one may
    // be another run's, in use: it is never deleted.
    if (existsSync(folder) && tarballsIn(folder, packages).size !== packages.length) rmSync(folder, { recursive: true, force: true });
    try {
      renameSync(partial, folder);
    } catch (error) {
      // Another run renamed its own packing into place first: the same inputs, so the same tarballs.
      if (tarballsIn(folder, packages).size !== packages.length) throw error;
    }
  } finally {
    rmSync(partial, { recursive: true, force: true });
  }
  pruneCache(folder);
  return { folder, tarballs: tarballsIn(folder, packages), packages: byName, cached: false };
}

/** A child's exit status and everything it printed. */
export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
  /** stdout and stderr with the error (a timeout, a missing command) first: for assertion messages. */
  output: string;
}

/** This process's environment without vitest's variables and NODE_OPTIONS: a child starts as a user's would. */
export function userEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST') && name !== 'NODE_OPTIONS'));
}

/** Runs `command args` in `cwd` with a user's environment, bounded by `timeout` ms. Never throws. */
export async function runIn(cwd: string, command: string, args: readonly string[], timeout: number): Promise<RunResult> {
  try {
    const { stdout, stderr } = await execFileAsync(command, args, { cwd, env: userEnvironment(), timeout, maxBuffer: MAX_OUTPUT_BYTES });
    return { status: 0, stdout, stderr, output: `${stdout}${stderr}` };
  } catch (error) {
    const failure = error as { code?: number | string; killed?: boolean; message: string; stdout?: string; stderr?: string };
    const stdout = failure.stdout ?? '';
    const stderr = failure.stderr ?? '';
    const status = typeof failure.code === 'number' ? failure.code : null;
    const why = failure.killed === true ? `killed after ${timeout} ms: ` : '';
    return { status, stdout, stderr, output: `${why}${failure.message}\n${stdout}${stderr}` };
  }
}

/** What `installedProject` makes. */
export interface InstalledProjectOptions {
  /** The scratch folder's name prefix and the project's package name. */
  name: string;
  /** heaplab packages the project depends on directly. */
  packages: readonly string[];
  /** Registry packages it depends on too, by name, with their ranges. */
  extraDependencies?: Readonly<Record<string, string>>;
}

/** A scratch project with heaplab's tarballs installed. */
export interface InstalledProject {
  /** Its folder, under the OS temp folder. */
  folder: string;
  /** The packing its heaplab packages came from. */
  packed: PackedWorkspace;
  /** How long `npm install` took, in milliseconds. */
  installMs: number;
  /** Deletes the folder. */
  remove(): void;
}

/** A `file:` spec of `tarball`, as npm writes it into package.json. */
function fileSpec(tarball: string): string {
  return `file:${tarball.split(sep).join('/')}`;
}

/**
 * A project outside the repository (so nothing resolves through the workspace) that depends on
 * `packages` and `extraDependencies`, installed with npm from the workspace's tarballs. Every
 * tarball is an override too, so a heaplab package that another one depends on (core under
 * tlsf, the backends under bench) is the tarball as well, never the registry's.
 * @throws Error when a package is not in the workspace, or packing or npm install fails
 */
export async function installedProject(options: InstalledProjectOptions): Promise<InstalledProject> {
  const packed = await packWorkspace();
  const unknown = options.packages.filter((name) => !packed.tarballs.has(name));
  if (unknown.length > 0) throw new Error(`no workspace package named ${unknown.join(', ')}`);
  const folder = mkdtempSync(join(tmpdir(), `heaplab-${options.name}-`));
  const remove = (): void => rmSync(folder, { recursive: true, force: true });
  try {
    const overrides = Object.fromEntries([...packed.tarballs].map(([name, tarball]) => [name, fileSpec(tarball)]));
    const dependencies = { ...Object.fromEntries(options.packages.map((name) => [name, overrides[name]!])), ...options.extraDependencies };
    const manifest = { name: options.name, version: '0.0.0', private: true, type: 'module', dependencies, overrides };
    writeFileSync(join(folder, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    const started = performance.now();
    const install = await runIn(folder, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], INSTALL_TIMEOUT_MS);
    if (install.status !== 0) throw new Error(`npm install in ${folder} failed (status ${install.status}):\n${install.output}`);
    return { folder, packed, installMs: performance.now() - started, remove };
  } catch (error) {
    remove();
    throw error;
  }
}

/** An `exports` entry of a manifest: a target, or conditions, which may nest. */
export type ExportConditions = string | { [condition: string]: ExportConditions };

/** Every target an `exports` entry names, each with the conditions that lead to it (`import.types`). */
export function exportTargets(conditions: ExportConditions, path = ''): { condition: string; target: string }[] {
  if (typeof conditions === 'string') return [{ condition: path || 'default', target: conditions }];
  return Object.entries(conditions).flatMap(([condition, nested]) => exportTargets(nested, path === '' ? condition : `${path}.${condition}`));
}
