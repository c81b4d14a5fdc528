/**
 * heaplab as a user gets it from a registry: every workspace package packed with `pnpm pack`,
 * the tarballs installed with npm in a scratch project outside the repository (the registry
 * for everything else), then what the user does with them. The tarballs hold what a registry
 * page and an import need; a strict TypeScript consumer (customConditions ["source"] included,
 * which once resolved heaplab to its .ts sources) type-checks with the installed typescript and
 * runs a heap shared with a plain .mjs worker on tlsf and on mimalloc; bench's types check and
 * it draws a chart with the vega it installed; a test file using the kit type-checks; require()
 * of any package says it is ESM only; the installed `heaplab` command runs. The consumer is
 * fixtures/strict-consumer/ (.mts files: the repository's own type check leaves them to this one).
 *
 * It packs the build: `pnpm -r build` must have run (the test command builds before vitest);
 * a missing or stale dist/ fails with that command. Tarballs are cached under the OS temp
 * folder by a hash of their inputs (packed-project.ts), and npm takes registry packages from
 * its cache when it has them (--prefer-offline): about 30 s warm, 70 s with neither cache.
 */

import { execFileSync } from 'node:child_process';
import { cpSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type ExportConditions,
  exportTargets,
  INSTALL_TIMEOUT_MS,
  type InstalledProject,
  installedProject,
  REPO_ROOT,
  runIn,
  type WorkspacePackage,
} from './packaging/packed-project.js';

const CONSUMER_FIXTURE = join(import.meta.dirname, 'fixtures', 'strict-consumer');
/** Longest the consumer's type check may take (it checks every declaration file it reaches: about 10 s). */
const TYPECHECK_TIMEOUT_MS = 60_000;
/** Longest one of the consumer's programs may run (each is under a second). */
const RUN_TIMEOUT_MS = 30_000;

const rootManifest = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };

/** A manifest as pnpm pack writes it into a tarball. */
interface PackedManifest {
  name: string;
  version: string;
  engines?: { node?: string };
  repository?: { type?: string; url?: string; directory?: string };
  sideEffects?: boolean;
  exports: Record<string, ExportConditions>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
}

/** The paths in `tarball`, without npm's `package/` prefix. */
function tarballEntries(tarball: string): string[] {
  return execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replace(/^package\//, ''));
}

/** The package.json inside `tarball`. */
function packedManifest(tarball: string): PackedManifest {
  return JSON.parse(execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' })) as PackedManifest;
}

/** The JSON lines a consumer program printed. */
function jsonLines(stdout: string): Record<string, unknown>[] {
  return stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

describe('packed and installed from tarballs', () => {
  let project: InstalledProject | undefined;
  /** The project, once beforeAll made it (a test reaching here without one fails on beforeAll's error). */
  const installed = (): InstalledProject => project!;
  const packages = (): WorkspacePackage[] => [...installed().packed.packages.values()];

  beforeAll(async () => {
    project = await installedProject({
      name: 'strict-consumer',
      packages: ['@heaplab/core', '@heaplab/tlsf', '@heaplab/buddy', '@heaplab/slab', '@heaplab/mimalloc', '@heaplab/test-kit', '@heaplab/bench'],
      extraDependencies: { typescript: rootManifest.devDependencies['typescript']!, '@types/node': rootManifest.devDependencies['@types/node']! },
    });
    cpSync(CONSUMER_FIXTURE, project.folder, { recursive: true });
  }, 2 * INSTALL_TIMEOUT_MS);

  afterAll(() => project?.remove());

  it('packs every workspace package, each tarball with README.md, LICENSE, package.json, dist/ and every export target', () => {
    expect(packages().map((pkg) => pkg.name)).toEqual([
      '@heaplab/bench',
      '@heaplab/buddy',
      '@heaplab/core',
      '@heaplab/mimalloc',
      '@heaplab/slab',
      '@heaplab/test-kit',
      '@heaplab/tlsf',
    ]);
    for (const pkg of packages()) {
      const tarball = installed().packed.tarballs.get(pkg.name)!;
      const entries = new Set(tarballEntries(tarball));
      for (const required of ['README.md', 'LICENSE', 'package.json', 'dist/index.js', 'dist/index.d.ts', 'dist/esm-only.cjs', 'esm-only.d.cts']) {
        expect(entries.has(required), `${basename(tarball)} holds ${required}`).toBe(true);
      }
      const manifest = packedManifest(tarball);
      const targets = Object.entries(manifest.exports).flatMap(([subpath, conditions]) =>
        exportTargets(conditions).map(({ condition, target }) => ({ subpath, condition, target })),
      );
      const missing = targets
        .filter(({ target }) => !entries.has(target.replace(/^\.\//, '')))
        .map(({ subpath, condition, target }) => `${subpath} ${condition}: ${target}`);
      expect(missing, `${pkg.name}: export targets missing from the tarball`).toEqual([]);
      expect(manifest.exports['./package.json']).toBe('./package.json');
      expect(manifest.engines?.node).toBe('>=20');
      expect(manifest.repository?.directory).toBe(`packages/${basename(pkg.folder)}`);
      // pnpm pack turns workspace: ranges into versions; one left would not install from a registry.
      const workspaceRanges = Object.entries({ ...manifest.dependencies, ...manifest.peerDependencies }).filter(([, range]) => range.startsWith('workspace:'));
      expect(workspaceRanges, `${pkg.name}: workspace ranges in the packed manifest`).toEqual([]);
    }
  });

  it('installs every heaplab package from its tarball, the ones other packages depend on included', () => {
    const lock = JSON.parse(readFileSync(join(installed().folder, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { resolved?: string; version?: string }>;
    };
    const heaplabEntries = Object.entries(lock.packages).filter(([path]) => /(^|\/)node_modules\/@heaplab\//.test(path));
    expect(heaplabEntries.length).toBeGreaterThanOrEqual(packages().length);
    const fromElsewhere = heaplabEntries
      .filter(([, entry]) => !(entry.resolved ?? '').startsWith('file:'))
      .map(([path, entry]) => `${path}: ${entry.resolved}`);
    expect(fromElsewhere).toEqual([]);
  });

  it(
    'type-checks a strict consumer with the installed typescript, then runs it: a tlsf and a mimalloc heap shared with a .mjs worker',
    async () => {
      const folder = installed().folder;
      const typecheck = await runIn(folder, process.execPath, [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'], TYPECHECK_TIMEOUT_MS);
      expect(typecheck.status, typecheck.output).toBe(0);

      // CommonJS TypeScript that imports heaplab fails to compile, as it would fail to load
      // (TypeScript 5.8 and later would otherwise accept the import: Node 22 can require ESM).
      const cjs = await runIn(folder, process.execPath, [join('node_modules', 'typescript', 'bin', 'tsc'), '-p', 'cjs'], TYPECHECK_TIMEOUT_MS);
      expect(cjs.status, cjs.output).not.toBe(0);
      expect(cjs.output).toMatch(/consumer\.cts.*has no exported member 'GlobalAllocator'/);

      const main = await runIn(folder, process.execPath, [join('out', 'main.mjs')], RUN_TIMEOUT_MS);
      expect(main.status, main.output).toBe(0);
      const heaps = jsonLines(main.stdout);
      expect(heaps.map((heap) => heap['label'])).toEqual(['tlsf', 'mimalloc']);
      for (const heap of heaps) {
        // The worker read the main thread's bytes and freed its block; its own block was live
        // until the main thread freed it; a second free of the first block was refused.
        expect(heap).toEqual({
          label: heap['label'],
          exitCode: 0,
          sawPattern: true,
          liveAfterWorker: 1,
          liveAtEnd: 0,
          usedBytesAtEnd: 0,
          doubleFree: 'NotAllocated',
        });
      }

      const bench = await runIn(folder, process.execPath, [join('out', 'bench-chart.mjs')], RUN_TIMEOUT_MS);
      expect(bench.status, bench.output).toBe(0);
      const [chart] = jsonLines(bench.stdout);
      expect(chart?.['workloads']).toContain('glibc-thread');
      expect(chart?.['firstTag']).toBe('<svg');
      expect(chart?.['warnings']).toEqual([]);
    },
    TYPECHECK_TIMEOUT_MS + 2 * RUN_TIMEOUT_MS,
  );

  it(
    'answers require() of every package and entry point with the ESM-only error, and loads ./package.json',
    async () => {
      const modules = packages().flatMap((pkg) =>
        Object.keys(packedManifest(installed().packed.tarballs.get(pkg.name)!).exports)
          .filter((subpath) => subpath !== './package.json')
          .map((subpath) => ({ pkg: pkg.name, module: subpath === '.' ? pkg.name : `${pkg.name}/${subpath.slice(2)}` })),
      );
      expect(modules.length).toBeGreaterThan(packages().length);
      const run = await runIn(
        installed().folder,
        process.execPath,
        ['require-each.cjs', ...modules.map(({ module }) => module), '@heaplab/core/package.json'],
        RUN_TIMEOUT_MS,
      );
      expect(run.status, run.output).toBe(0);
      const results = jsonLines(run.stdout);
      expect(results.map((result) => result['name'])).toEqual([...modules.map(({ module }) => module), '@heaplab/core/package.json']);
      for (const [index, { pkg }] of modules.entries()) {
        const result = results[index]!;
        expect(result['loaded'], `${String(result['name'])} loaded under require()`).toBe(false);
        expect(result['code']).toBe('ERR_REQUIRE_ESM');
        expect(result['message']).toContain(`${pkg} is ESM only`);
        expect(result['message']).toContain(`await import('${pkg}')`);
      }
      expect(results.at(-1)).toEqual({ name: '@heaplab/core/package.json', loaded: true });
    },
    RUN_TIMEOUT_MS,
  );

  it(
    "runs the installed heaplab command: --version prints bench's version",
    async () => {
      const bench = installed().packed.packages.get('@heaplab/bench')!;
      const version = await runIn(installed().folder, join(installed().folder, 'node_modules', '.bin', 'heaplab'), ['--version'], RUN_TIMEOUT_MS);
      expect(version.status, version.output).toBe(0);
      expect(version.stdout.trim()).toBe(bench.version);
    },
    RUN_TIMEOUT_MS,
  );
});
