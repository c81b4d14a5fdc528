/**
 * Where a generated backend package gets heaplab's packages from: the registry (semver ranges
 * on the running bench's version), a folder of tarballs made by `pnpm pack` (`--packages`), or,
 * when the running command is a source checkout, tarballs packed from it into `vendor/`.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';

/** The npm spec of each heaplab package the generated package.json names. */
export interface HeaplabSpecs {
  core: string;
  testKit: string;
  bench: string;
  /** Specs npm must use wherever the package appears (package.json `overrides`). */
  overrides: Record<string, string>;
}

/** The packages a generated package installs directly. */
export const DIRECT_PACKAGES = ['@heaplab/core', '@heaplab/test-kit', '@heaplab/bench'] as const;
/** The folder of a generated package that holds the tarballs packed from a checkout. */
export const VENDOR_FOLDER = 'vendor';
/** Longest a `pnpm pack` may take (it packs dist/ and src/; a second or two on a laptop). */
const PACK_TIMEOUT_MS = 120_000;

/** What `pnpm pack` names the tarball of `@heaplab/<short>` at `version`. */
const TARBALL_NAME = /^heaplab-(.+?)-(\d+\.\d+\.\d+(?:-[\w.]+)?)\.tgz$/;

/** Refusals the command line shows as they are (exit status 1). */
export class PackageSourceError extends Error {
  override readonly name = 'PackageSourceError';
}

/** Semver ranges on `version` (the running bench's): packages from the npm registry. */
export function registrySpecs(version: string): HeaplabSpecs {
  return { core: `^${version}`, testKit: `^${version}`, bench: `^${version}`, overrides: {} };
}

/**
 * The heaplab tarballs in `folder`, by package name.
 * @throws PackageSourceError when two tarballs are of the same package (which one is meant?)
 */
export function heaplabTarballs(folder: string): Map<string, string> {
  const found = new Map<string, string>();
  for (const file of readdirSync(folder).sort()) {
    const match = TARBALL_NAME.exec(file);
    if (match === null) continue;
    const name = `@heaplab/${match[1]!}`;
    const earlier = found.get(name);
    if (earlier !== undefined) throw new PackageSourceError(`${folder} holds two tarballs of ${name}: ${earlier} and ${file}; keep one`);
    found.set(name, join(folder, file));
  }
  return found;
}

/**
 * `file:` specs to `tarballs`, relative to `packageFolder` (where package.json will be), for
 * every heaplab package found, and the registry range on `version` for a direct package that
 * has none. Every tarball is also an override, so bench's backends come from the same place.
 */
export function tarballSpecs(tarballs: ReadonlyMap<string, string>, packageFolder: string, version: string): HeaplabSpecs {
  const spec = (path: string): string => `file:${relative(resolve(packageFolder), resolve(path)).split(sep).join('/')}`;
  const overrides: Record<string, string> = {};
  for (const [name, path] of [...tarballs].sort(([a], [b]) => a.localeCompare(b))) overrides[name] = spec(path);
  const or = (name: string): string => overrides[name] ?? `^${version}`;
  return { core: or('@heaplab/core'), testKit: or('@heaplab/test-kit'), bench: or('@heaplab/bench'), overrides };
}

/**
 * The specs of `--packages folder`.
 * @throws PackageSourceError when the folder is missing or lacks core, test-kit or bench
 */
export function specsFromFolder(folder: string, packageFolder: string, version: string): HeaplabSpecs {
  if (!existsSync(folder)) throw new PackageSourceError(`--packages ${folder}: no such folder`);
  const tarballs = heaplabTarballs(folder);
  const missing = DIRECT_PACKAGES.filter((name) => !tarballs.has(name));
  if (missing.length > 0) {
    throw new PackageSourceError(
      `--packages ${folder} has no tarball of ${missing.join(', ')} (make them with pnpm pack in each package of a heaplab checkout, ` +
        'built with pnpm -r build)',
    );
  }
  return tarballSpecs(tarballs, packageFolder, version);
}

/**
 * True when the bench package at `benchRoot` sits in a pnpm workspace (a heaplab checkout:
 * packages/bench under a folder with pnpm-workspace.yaml), whose packages are not published
 * in the versions it has.
 */
export function isSourceCheckout(benchRoot: string): boolean {
  return existsSync(join(benchRoot, '..', '..', 'pnpm-workspace.yaml'));
}

/** The heaplab packages a generated package needs from a checkout: the direct ones and bench's backends. */
export function checkoutPackages(benchRoot: string): string[] {
  const manifest = JSON.parse(readFileSync(join(benchRoot, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
  const benchDependencies = Object.keys(manifest.dependencies ?? {}).filter((name) => name.startsWith('@heaplab/'));
  return [...new Set<string>([...DIRECT_PACKAGES, ...benchDependencies])];
}

/**
 * Packs each of `names` found in the checkout around `benchRoot` into `destination` with
 * `pnpm pack` (which writes workspace dependencies as versions). Returns the tarballs by
 * package name and the packages the checkout does not have.
 * @throws PackageSourceError when pnpm is missing or fails, or a package is not built
 */
export function packCheckout(benchRoot: string, names: readonly string[], destination: string): { tarballs: Map<string, string>; missing: string[] } {
  const packagesFolder = join(benchRoot, '..');
  const missing: string[] = [];
  const folders: string[] = [];
  for (const name of names) {
    const folder = join(packagesFolder, name.replace('@heaplab/', ''));
    if (!existsSync(join(folder, 'package.json'))) missing.push(name);
    else if (!existsSync(join(folder, 'dist'))) throw new PackageSourceError(`${name} is not built (no ${join(folder, 'dist')}): run pnpm -r build first`);
    else folders.push(folder);
  }
  for (const folder of folders) {
    const run = spawnSync('pnpm', ['pack', '--pack-destination', destination], { cwd: folder, encoding: 'utf8', timeout: PACK_TIMEOUT_MS });
    if (run.error !== undefined && (run.error as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new PackageSourceError(
        'this heaplab is a source checkout, whose packages are packed with pnpm, and pnpm is not on PATH: ' +
          'run corepack enable (or npm install -g pnpm), or pass --packages <folder> with tarballs made by pnpm pack',
      );
    }
    if (run.error !== undefined || run.status !== 0) {
      throw new PackageSourceError(`pnpm pack in ${folder} failed: ${run.error?.message ?? `${run.stdout}${run.stderr}`.trim()}`);
    }
  }
  return { tarballs: heaplabTarballs(destination), missing };
}
