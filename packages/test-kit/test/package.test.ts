import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { promisify } from 'node:util';

import { satisfies } from 'semver';
import { describe, expect, it } from 'vitest';

import { type ExportConditions, exportTargets } from './packaging/packed-project.js';

// The kit is a package of its own so that a backend outside heaplab can install it beside
// the vitest it already has: these tests hold its manifest, core's and the kit's imports to
// that, and check that the build (what such a backend gets) starts its workers by itself.

const PACKAGES = fileURLToPath(new URL('../../', import.meta.url));

interface Manifest {
  name: string;
  version: string;
  license: string;
  type: string;
  files: string[];
  /** Subpaths to their conditions; `./package.json` maps to the file itself. */
  exports: Record<string, ExportConditions>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  devDependencies?: Record<string, string>;
}

function manifest(folder: string): Manifest {
  return JSON.parse(readFileSync(join(PACKAGES, folder, 'package.json'), 'utf8')) as Manifest;
}

const kit = manifest('test-kit');
const core = manifest('core');
const KIT_SOURCES = join(PACKAGES, 'test-kit', 'src');
const BUILT_KIT_CHURN = fileURLToPath(new URL('./fixtures/built-kit-churn.mjs', import.meta.url));
const run = promisify(execFile);

/** This process's environment without NODE_OPTIONS, so a child node starts as a user's would. */
function withoutNodeOptions(): NodeJS.ProcessEnv {
  const { NODE_OPTIONS: _dropped, ...rest } = process.env;
  return rest;
}

/** The module specifiers of every import and export ... from in the kit's sources. */
function kitImports(): { file: string; specifier: string }[] {
  return readdirSync(KIT_SOURCES)
    .filter((name) => name.endsWith('.ts'))
    .flatMap((file) =>
      [...readFileSync(join(KIT_SOURCES, file), 'utf8').matchAll(/^(?:import|export)\b[^;]*?\bfrom '([^']+)'/gms)].map((match) => ({
        file,
        specifier: match[1]!,
      })),
    );
}

/** The package a bare specifier names: `@scope/name` or `name`, without a subpath. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

describe('@heaplab/test-kit manifest', () => {
  it('is an MIT ESM package that ships its build and its sources', () => {
    expect(kit).toMatchObject({ name: '@heaplab/test-kit', version: '0.1.0', license: 'MIT', type: 'module' });
    expect(kit.files).toEqual(['dist', 'src', 'README.md', 'LICENSE', 'esm-only.d.cts']);
    expect(Object.keys(kit.exports)).toEqual(['.', './grade', './package.json']);
    // require() gets the stub that says the kit is ESM only (tsup.shared.ts writes it), and
    // CommonJS TypeScript types with nothing to import, so that the mistake fails to compile.
    const esmOnly = { types: './esm-only.d.cts', default: './dist/esm-only.cjs' };
    expect(kit.exports['.']).toEqual({
      'heaplab-source': './src/index.ts',
      import: { types: './dist/index.d.ts', default: './dist/index.js' },
      require: esmOnly,
    });
    // What heaplab grade reads without vitest: the suite file's path and its variables.
    expect(kit.exports['./grade']).toEqual({
      'heaplab-source': './src/grade.ts',
      import: { types: './dist/grade.d.ts', default: './dist/grade.js' },
      require: esmOnly,
    });
    expect(kit.exports['./package.json']).toBe('./package.json');
  });

  it('accepts vitest 4 from 4.1.12 and vitest 5 as its peer, and nothing older or newer', () => {
    const range = kit.peerDependencies?.['vitest'];
    expect(range).toBeDefined();
    for (const version of ['4.1.12', '4.2.0', '4.9.3', '5.0.0', '5.4.1']) expect(satisfies(version, range!), version).toBe(true);
    for (const version of ['3.2.4', '4.1.11', '6.0.0', '5.0.0-beta.1']) expect(satisfies(version, range!), version).toBe(false);
    expect(kit.peerDependenciesMeta?.['vitest']?.optional).not.toBe(true);
  });

  it('declares every package its sources import, with tsx and core as dependencies', () => {
    expect(kit.dependencies?.['@heaplab/core']).toBe('workspace:^');
    expect(kit.dependencies?.['tsx']).toBeDefined();
    // The kit's entry point loads the conformance suite, which draws on fast-check.
    expect(kit.peerDependencies?.['fast-check']).toBeDefined();
    const declared = new Set([...Object.keys(kit.dependencies ?? {}), ...Object.keys(kit.peerDependencies ?? {})]);
    const undeclared = kitImports()
      .filter(({ specifier }) => !specifier.startsWith('.') && !specifier.startsWith('node:'))
      .filter(({ specifier }) => !declared.has(packageOf(specifier)))
      .map(({ file, specifier }) => `${file}: ${specifier}`);
    expect(undeclared).toEqual([]);
  });

  it('reaches core only through its public entry points and @heaplab/core/internal', () => {
    const imports = kitImports();
    expect(imports.length).toBeGreaterThan(20);
    const allowed = new Set(['@heaplab/core', '@heaplab/core/backend', '@heaplab/core/internal']);
    const stray = imports
      .filter(({ specifier }) => (specifier.startsWith('.') && specifier.includes('..')) || (specifier.startsWith('@heaplab/') && !allowed.has(specifier)))
      .map(({ file, specifier }) => `${file}: ${specifier}`);
    expect(stray).toEqual([]);
  });
});

describe('@heaplab/core manifest without the kit', () => {
  it('has no peer on vitest or fast-check, tsx only as an optional peer, and no ./test-kit export', () => {
    // tsx is what its worker bootstrap loads to start a worker on a TypeScript entry or backend.
    expect(core.peerDependencies ?? {}).toEqual({ tsx: '^4.20.0' });
    expect(core.peerDependenciesMeta?.['tsx']?.optional).toBe(true);
    expect(Object.keys(core.dependencies ?? {})).not.toContain('vitest');
    expect(Object.keys(core.exports)).toEqual(['.', './backend', './internal', './package.json']);
  });
});

describe('exports after the build', () => {
  for (const [folder, pkg] of [
    ['test-kit', kit],
    ['core', core],
  ] as const) {
    it(`${pkg.name}: every export condition names a file that exists`, () => {
      const missing: string[] = [];
      for (const [subpath, conditions] of Object.entries(pkg.exports)) {
        for (const { condition, target } of exportTargets(conditions)) {
          if (!existsSync(join(PACKAGES, folder, target))) missing.push(`${subpath} (${condition}): ${target}`);
        }
      }
      expect(missing, `missing after 'pnpm -r build'`).toEqual([]);
    });
  }

  it('ships the kit worker entry beside the built index', () => {
    expect(existsSync(join(PACKAGES, 'test-kit', 'dist', 'kit-worker.js')), `dist/kit-worker.js after 'pnpm -r build'`).toBe(true);
  });

  it('runs from the build in plain Node: the kit worker starts (kit-worker.js) and churns a heap', async () => {
    // In a child process of its own: vitest's workers run with --conditions=heaplab-source, which
    // worker threads inherit, so only a fresh node shows what an installed kit does.
    const { stdout } = await run(process.execPath, [BUILT_KIT_CHURN], { cwd: join(PACKAGES, 'test-kit'), timeout: 15_000, env: withoutNodeOptions() });
    const report = JSON.parse(stdout) as {
      iterations: number;
      churn: { allocations: number; reallocs: number };
      liveBlocks: number;
      usedBytes: number;
      kitEntry: string;
    };
    expect(report.kitEntry).toBe(pathToFileURL(join(PACKAGES, 'test-kit', 'dist', 'index.js')).href);
    expect(report.churn.allocations + report.churn.reallocs).toBe(report.iterations);
    expect(report.liveBlocks).toBe(0);
    expect(report.usedBytes).toBe(0);
  }, 20_000);
});
