/**
 * `heaplab new-backend`: the files it writes and their contents, where it takes heaplab's
 * packages from, and what it refuses. In this process and on made-up tarballs, so it is fast;
 * new-backend-e2e.test.ts installs a generated package with npm and runs its tests.
 */

import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { nextSteps } from '../src/cli/new-backend-command.js';
import {
  checkoutPackages,
  heaplabTarballs,
  isSourceCheckout,
  PackageSourceError,
  packCheckout,
  registrySpecs,
  tarballSpecs,
} from '../src/new-backend/package-sources.js';
import { CONTRACT_FILE, NAME_PLACEHOLDER, packageManifest, renderTemplate, TOOL_VERSIONS, templateFolder } from '../src/new-backend/template.js';
import { benchPackageRoot, heaplabVersion } from '../src/report/provenance.js';
import { TEXT_WIDTH } from '../src/report/text-table.js';
import { heaplabInProcess } from './inspect-helpers.js';

const REPO = resolve(import.meta.dirname, '..', '..', '..');
const scratch = mkdtempSync(join(tmpdir(), 'heaplab-new-backend-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** A folder of empty files named as `pnpm pack` names heaplab's tarballs (enough to render). */
function fakeTarballs(folder: string, shortNames: readonly string[]): string {
  mkdirSync(folder, { recursive: true });
  for (const short of shortNames) writeFileSync(join(folder, `heaplab-${short}-0.1.0.tgz`), '');
  return folder;
}

/** Every file below `folder`, relative, with `/`. */
function listFiles(folder: string): string[] {
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name).slice(folder.length + 1))
    .sort();
}

describe('heaplab new-backend', () => {
  it('says what to do next within the width, nothing lost; the commands stay whole, to be pasted', () => {
    const target = join('/home/someone/projects/allocators', 'a-backend-with-a-rather-long-name');
    const wide = nextSteps('a-backend-with-a-rather-long-name', target, 10_000);
    for (const width of [80, TEXT_WIDTH]) {
      const text = nextSteps('a-backend-with-a-rather-long-name', target, width);
      for (const line of text.split('\n')) if (!line.startsWith('  cd ')) expect(line.length, text).toBeLessThanOrEqual(width);
      expect(text).toContain(`\n  cd ${target}\n`);
      expect(text.replace(/\s+/g, ' ')).toBe(wide.replace(/\s+/g, ' '));
    }
    // Unwrapped, the last line runs past 80 columns: the case the width is for.
    expect(wide.split('\n').at(-1)!.length).toBeGreaterThan(80);
  });

  const tarballs = fakeTarballs(join(scratch, 'tarballs'), ['core', 'test-kit', 'bench', 'tlsf', 'buddy']);

  it('writes the package: the allocator under its name, tests, configs, README with the contract, package.json', async () => {
    const run = await heaplabInProcess('new-backend', 'my-alloc', '--dir', scratch, '--packages', tarballs);
    expect(run.status, run.stderr).toBe(0);
    const target = join(scratch, 'my-alloc');
    expect(run.stderr).toContain(`cd ${target}`);
    expect(run.stderr).toMatch(/npm install[\s\S]*npm test[\s\S]*npm run grade/);
    expect(listFiles(target)).toEqual([
      '.gitignore',
      'README.md',
      'package.json',
      'src/my-alloc.ts',
      'test/my-alloc.test.ts',
      'tsconfig.json',
      'vitest.config.ts',
    ]);
    for (const file of listFiles(target)) expect(readFileSync(join(target, file), 'utf8'), file).not.toContain(NAME_PLACEHOLDER);

    const source = readFileSync(join(target, 'src/my-alloc.ts'), 'utf8');
    expect(source).toContain("export const BACKEND_NAME = 'my-alloc';");
    expect(source).not.toContain("'template'");
    expect(readFileSync(join(target, 'test/my-alloc.test.ts'), 'utf8')).toContain("from '../src/my-alloc.js'");
    const readme = readFileSync(join(target, 'README.md'), 'utf8');
    expect(readme).toContain(readFileSync(join(templateFolder(), CONTRACT_FILE), 'utf8').trimEnd());
    expect(readFileSync(join(target, 'vitest.config.ts'), 'utf8')).not.toMatch(/conditions|alias/);

    const manifest = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8'));
    expect(manifest).toMatchObject({ name: 'heaplab-backend-my-alloc', type: 'module', private: true });
    expect(manifest.scripts).toEqual({
      test: 'vitest run',
      typecheck: 'tsc --noEmit',
      grade: 'heaplab grade --backend-module ./src/my-alloc.ts',
      replay: 'heaplab replay node_modules/@heaplab/bench/traces --backend-module ./src/my-alloc.ts --backend my-alloc --backend tlsf',
    });
    expect(manifest.dependencies).toEqual({ '@heaplab/core': 'file:../tarballs/heaplab-core-0.1.0.tgz' });
    expect(manifest.devDependencies).toMatchObject({
      '@heaplab/bench': 'file:../tarballs/heaplab-bench-0.1.0.tgz',
      '@heaplab/test-kit': 'file:../tarballs/heaplab-test-kit-0.1.0.tgz',
      ...TOOL_VERSIONS,
    });
    // Bench's backends come from the tarballs too, wherever npm meets them.
    expect(manifest.overrides['@heaplab/tlsf']).toBe('file:../tarballs/heaplab-tlsf-0.1.0.tgz');
    expect(manifest.overrides['@heaplab/core']).toBe(manifest.dependencies['@heaplab/core']);
  });

  it('accepts an empty existing folder', async () => {
    mkdirSync(join(scratch, 'empty'));
    const run = await heaplabInProcess('new-backend', 'empty', '--dir', scratch, '--packages', tarballs);
    expect(run.status, run.stderr).toBe(0);
    expect(existsSync(join(scratch, 'empty', 'src', 'empty.ts'))).toBe(true);
  });

  it.each(['MyAlloc', '1st', 'my_alloc', 'über', 'a b'])('refuses the name %j', async (name) => {
    const run = await heaplabInProcess('new-backend', name, '--dir', scratch, '--packages', tarballs);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/is not a backend name: lowercase letters/);
    expect(existsSync(join(scratch, name))).toBe(false);
  });

  it('refuses a folder that is not empty, and leaves it as it was', async () => {
    const taken = join(scratch, 'taken');
    mkdirSync(taken);
    writeFileSync(join(taken, 'notes.txt'), 'mine');
    const run = await heaplabInProcess('new-backend', 'taken', '--dir', scratch, '--packages', tarballs);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${taken} already exists and is not an empty folder`);
    expect(readdirSync(taken)).toEqual(['notes.txt']);
  });

  it("refuses a name heaplab already uses (a backend's, or all), and writes nothing", async () => {
    for (const name of ['tlsf', 'basic', 'all']) {
      const run = await heaplabInProcess('new-backend', name, '--dir', scratch, '--packages', tarballs);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain(`'${name}' is taken`);
      expect(existsSync(join(scratch, name))).toBe(false);
    }
  });

  it('refuses --packages without core, test-kit or bench, or with two of one, and writes nothing', async () => {
    const partial = fakeTarballs(join(scratch, 'tarballs-partial'), ['core', 'bench']);
    let run = await heaplabInProcess('new-backend', 'partial', '--dir', scratch, '--packages', partial);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/has no tarball of @heaplab\/test-kit \(make them with pnpm pack/);
    expect(existsSync(join(scratch, 'partial', 'package.json'))).toBe(false);
    const doubled = fakeTarballs(join(scratch, 'tarballs-doubled'), ['core', 'test-kit', 'bench']);
    writeFileSync(join(doubled, 'heaplab-core-0.2.0.tgz'), '');
    run = await heaplabInProcess('new-backend', 'doubled', '--dir', scratch, '--packages', doubled);
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/two tarballs of @heaplab\/core/);
    run = await heaplabInProcess('new-backend', 'nowhere', '--dir', scratch, '--packages', join(scratch, 'no-such-folder'));
    expect(run.status).toBe(1);
    expect(run.stderr).toMatch(/no such folder/);
    expect(existsSync(join(scratch, 'nowhere'))).toBe(false);
  });

  it('asks the registry for the running version when neither tarballs nor a checkout are there', () => {
    const version = heaplabVersion();
    const specs = registrySpecs(version);
    expect(specs).toEqual({ core: `^${version}`, testKit: `^${version}`, bench: `^${version}`, overrides: {} });
    const manifest = JSON.parse(packageManifest('x', specs));
    expect(manifest.overrides).toBeUndefined();
    expect(manifest.devDependencies['@heaplab/test-kit']).toBe(`^${version}`);
  });

  it('knows this repository as a source checkout, and what to pack from it', () => {
    const benchRoot = benchPackageRoot()!;
    expect(isSourceCheckout(benchRoot)).toBe(true);
    const bench = JSON.parse(readFileSync(join(benchRoot, 'package.json'), 'utf8'));
    const backends = Object.keys(bench.dependencies).filter((name) => name.startsWith('@heaplab/') && name !== '@heaplab/core');
    expect(backends.length).toBeGreaterThan(0);
    expect(checkoutPackages(benchRoot).sort()).toEqual(['@heaplab/bench', '@heaplab/core', '@heaplab/test-kit', ...backends].sort());
    expect(bench.files).toContain('templates');
  });

  it('from this checkout, packs its packages into vendor/ and says so (needs the packages built)', async () => {
    const run = await heaplabInProcess('new-backend', 'vendored', '--dir', scratch);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toMatch(/source checkout .*packing its packages with pnpm pack into .*vendored\/vendor/);
    const target = join(scratch, 'vendored');
    const manifest = JSON.parse(readFileSync(join(target, 'package.json'), 'utf8'));
    expect(manifest.dependencies['@heaplab/core']).toBe('file:vendor/heaplab-core-0.1.0.tgz');
    expect(manifest.devDependencies['@heaplab/bench']).toBe('file:vendor/heaplab-bench-0.1.0.tgz');
    for (const name of checkoutPackages(benchPackageRoot()!)) {
      const packed = existsSync(join(REPO, 'packages', name.replace('@heaplab/', ''), 'package.json'));
      if (packed) expect(manifest.overrides[name], name).toMatch(/^file:vendor\/heaplab-.*\.tgz$/);
      else expect(run.stderr).toContain(`the checkout has no ${name}; package.json asks the registry`);
    }
    // Every tarball packed is named in overrides, so npm takes bench's backends from vendor/ too.
    expect(readdirSync(join(target, 'vendor')).length).toBe(Object.keys(manifest.overrides).length);
  });

  it('says how to get pnpm when a checkout must be packed without it', () => {
    const path = process.env['PATH'];
    process.env['PATH'] = join(scratch, 'no-bin');
    try {
      expect(() => packCheckout(benchPackageRoot()!, ['@heaplab/core'], join(scratch, 'unused'))).toThrow(PackageSourceError);
      expect(() => packCheckout(benchPackageRoot()!, ['@heaplab/core'], join(scratch, 'unused'))).toThrow(/pnpm is not on PATH: run corepack enable/);
    } finally {
      process.env['PATH'] = path;
    }
  });

  it('writes file: specs relative to the new package, falling back to the registry for a missing one', () => {
    const found = heaplabTarballs(fakeTarballs(join(scratch, 'vendor-like'), ['core', 'bench']));
    const specs = tarballSpecs(found, join(scratch, 'pkg'), '1.2.3');
    expect(specs.core).toBe('file:../vendor-like/heaplab-core-0.1.0.tgz');
    expect(specs.testKit).toBe('^1.2.3');
    expect(Object.keys(specs.overrides)).toEqual(['@heaplab/bench', '@heaplab/core']);
  });

  it("pins the tools as the repository's package.json does", () => {
    const root = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8'));
    for (const [name, range] of Object.entries(TOOL_VERSIONS)) expect(root.devDependencies[name], name).toBe(range);
  });

  it('renders a template whose sources import nothing relative outside the package', () => {
    const files = renderTemplate('probe', registrySpecs('0.1.0'));
    for (const file of files.filter((each) => each.path.endsWith('.ts'))) {
      const specifiers = [...file.content.matchAll(/from '([^']+)'/g)].map((match) => match[1]!);
      for (const specifier of specifiers) {
        const allowed = ['@heaplab/core', '@heaplab/core/backend', '@heaplab/test-kit', 'vitest', 'vitest/config', '../src/probe.js'];
        expect(allowed, `${file.path} imports ${specifier}`).toContain(specifier);
      }
    }
  });

  it("docs/write-a-backend.md holds the template's contract word for word (one text, two places)", () => {
    const doc = readFileSync(join(REPO, 'docs', 'write-a-backend.md'), 'utf8');
    const contract = readFileSync(join(templateFolder(), CONTRACT_FILE), 'utf8');
    const start = doc.indexOf('<!-- contract: start -->');
    const end = doc.indexOf('<!-- contract: end -->');
    expect(start, 'the doc marks the contract with <!-- contract: start --> and <!-- contract: end -->').toBeGreaterThanOrEqual(0);
    expect(doc.slice(doc.indexOf('\n', start) + 1, end)).toBe(contract);
  });
});
