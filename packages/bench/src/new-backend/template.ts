/**
 * The files `heaplab new-backend <name>` writes: the template folder
 * (packages/bench/templates/backend/, shipped in the bench package) rendered for one name, and
 * the package.json made for it. The template's allocator is real code, tested in the
 * repository as it stands (test/template-backend.test.ts): rendering only renames it.
 */

import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

import { benchPackageRoot } from '../report/provenance.js';
import type { HeaplabSpecs } from './package-sources.js';

/** Stands for the name in the template's file names and texts. */
export const NAME_PLACEHOLDER = '__NAME__';
/**
 * The template allocator's name line, which keeps it valid TypeScript (and a valid backend
 * name) in the repository; rendering writes the chosen name into it.
 */
export const TEMPLATE_NAME_LINE = "export const BACKEND_NAME = 'template';";
/** Where the README takes the contract text (CONTRACT.md, also in docs/write-a-backend.md). */
export const CONTRACT_PLACEHOLDER = '__CONTRACT__';
export const CONTRACT_FILE = 'CONTRACT.md';
/**
 * Files stored under another name: npm and pnpm leave every `.gitignore` out of a package
 * tarball, so the template's is `gitignore`.
 */
const STORED_AS: Readonly<Record<string, string>> = { gitignore: '.gitignore' };

/**
 * Versions of the tools the generated package installs, as the heaplab repository pins them
 * (a test checks them against its root package.json).
 */
export const TOOL_VERSIONS = {
  '@types/node': '^20.19.0',
  'fast-check': '^4.3.0',
  tsx: '^4.20.0',
  typescript: '~5.9.3',
  vitest: '^4.1.12',
} as const;

/** One file to write: its path in the new package (with `/`) and its text. */
export interface RenderedFile {
  path: string;
  content: string;
}

/**
 * The template folder of the running bench package.
 * @throws Error when the bench package or its templates cannot be found (a broken install)
 */
export function templateFolder(): string {
  const root = benchPackageRoot();
  if (root === null) throw new Error('cannot find the @heaplab/bench package this command runs from, nor its templates/');
  return join(root, 'templates', 'backend');
}

/** Every file below `folder`, as paths relative to it. */
function filesBelow(folder: string): string[] {
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(folder, join(entry.parentPath, entry.name)))
    .sort();
}

/**
 * The template rendered for backend `name`: `__NAME__` replaced in paths and texts, the
 * allocator's name line rewritten, the contract put into the README, and package.json added.
 * @throws Error when the template is broken (its name line or the README's placeholder is
 *   missing): a bug of the bench package, not of the caller
 */
export function renderTemplate(name: string, specs: HeaplabSpecs, folder = templateFolder()): RenderedFile[] {
  const contract = readFileSync(join(folder, CONTRACT_FILE), 'utf8');
  const files: RenderedFile[] = [];
  for (const path of filesBelow(folder)) {
    if (path === CONTRACT_FILE) continue;
    let content = readFileSync(join(folder, path), 'utf8');
    if (path.endsWith('.ts') && content.includes('BACKEND_NAME = ')) {
      if (content.split(TEMPLATE_NAME_LINE).length !== 2) throw new Error(`template ${path}: expected the line ${TEMPLATE_NAME_LINE} once`);
      content = content.replace(TEMPLATE_NAME_LINE, `export const BACKEND_NAME = '${name}';`);
    }
    if (path === 'README.md') {
      if (!content.includes(CONTRACT_PLACEHOLDER)) throw new Error(`template README.md has no ${CONTRACT_PLACEHOLDER}`);
      content = content.replace(CONTRACT_PLACEHOLDER, contract.trimEnd());
    }
    const parts = path.split(sep).map((part) => STORED_AS[part] ?? part);
    files.push({ path: parts.join('/').replaceAll(NAME_PLACEHOLDER, name), content: content.replaceAll(NAME_PLACEHOLDER, name) });
  }
  files.push({ path: 'package.json', content: packageManifest(name, specs) });
  return files;
}

/** The generated package.json: its scripts, heaplab's packages from `specs`, the tools pinned. */
export function packageManifest(name: string, specs: HeaplabSpecs): string {
  const module = `./src/${name}.ts`;
  const manifest = {
    name: `heaplab-backend-${name}`,
    version: '0.1.0',
    private: true,
    description: `heaplab backend '${name}'`,
    type: 'module',
    engines: { node: '>=20' },
    scripts: {
      test: 'vitest run',
      typecheck: 'tsc --noEmit',
      grade: `heaplab grade --backend-module ${module}`,
      replay: `heaplab replay node_modules/@heaplab/bench/traces --backend-module ${module} --backend ${name} --backend tlsf`,
    },
    dependencies: { '@heaplab/core': specs.core },
    devDependencies: {
      '@heaplab/bench': specs.bench,
      '@heaplab/test-kit': specs.testKit,
      ...TOOL_VERSIONS,
    },
    // npm takes heaplab's packages that the ones above depend on (bench's backends, core
    // under test-kit) from the same tarballs: a registry may not have those versions.
    ...(Object.keys(specs.overrides).length > 0 ? { overrides: specs.overrides } : {}),
  };
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
