/**
 * `heaplab new-backend <name>`: writes a package with a working backend to start from (CS:APP's
 * implicit free list), its tests, and the scripts that grade and replay it
 * (docs/write-a-backend.md).
 *
 *   heaplab new-backend <name> [--dir <parent>] [--packages <folder of tarballs>]
 */

import { existsSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';

import { BACKEND_NAME_PATTERN, registeredBackends } from '@heaplab/core';
import type { Command } from 'commander';

import {
  checkoutPackages,
  type HeaplabSpecs,
  isSourceCheckout,
  PackageSourceError,
  packCheckout,
  registrySpecs,
  specsFromFolder,
  tarballSpecs,
  VENDOR_FOLDER,
} from '../new-backend/package-sources.js';
import { renderTemplate, templateFolder } from '../new-backend/template.js';
import { benchPackageRoot, heaplabVersion } from '../report/provenance.js';
import { textWidthOf, wrapText } from '../report/text-table.js';
import { discoverBackends } from '../contenders/backends.js';
import { ALL_BACKENDS } from './backend-option.js';
import { failRun } from './fail-run.js';
import { printStatus } from './json-output.js';
import { outputPathProblem } from './output-path.js';

export interface NewBackendOptions {
  /** The folder to create the package in (default: the current one). */
  dir?: string;
  /** A folder of heaplab tarballs made by `pnpm pack`. */
  packages?: string;
}

/** `new-backend`'s refusals of its arguments. */
export class NewBackendError extends Error {
  override readonly name = 'NewBackendError';
}

/**
 * Writes backend package `name` into `<dir>/<name>/` and returns its folder. Progress and
 * where the packages come from go to `note` (stderr).
 * @throws NewBackendError for a bad name or an existing non-empty folder;
 *   PackageSourceError when the packages cannot be found or packed
 */
export function newBackend(name: string, options: NewBackendOptions, note: (line: string) => void): string {
  if (!BACKEND_NAME_PATTERN.test(name)) {
    throw new NewBackendError(`${JSON.stringify(name)} is not a backend name: lowercase letters, digits and '-', starting with a letter (like my-alloc)`);
  }
  const target = resolve(options.dir ?? '.', name);
  const problem = outputPathProblem(target, 'folder');
  if (problem !== null) throw new NewBackendError(problem);
  if (existsSync(target) && (!statSync(target).isDirectory() || readdirSync(target).length > 0)) {
    throw new NewBackendError(`${target} already exists and is not an empty folder: pick another name or --dir`);
  }
  const template = templateFolder();
  const version = heaplabVersion();
  const created = !existsSync(target);
  mkdirSync(target, { recursive: true });
  try {
    const specs = packageSpecs(target, options, version, note);
    for (const file of renderTemplate(name, specs, template)) {
      const path = join(target, ...file.path.split('/'));
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, file.content);
    }
  } catch (error) {
    // Leave nothing half-written behind: the same command can be run again.
    if (created) rmSync(target, { recursive: true, force: true });
    else for (const entry of readdirSync(target)) rmSync(join(target, entry), { recursive: true, force: true });
    throw error;
  }
  return target;
}

/** Where heaplab's packages come from: `--packages`, a checkout packed into vendor/, or the registry. */
function packageSpecs(target: string, options: NewBackendOptions, version: string, note: (line: string) => void): HeaplabSpecs {
  if (options.packages !== undefined) return specsFromFolder(resolve(options.packages), target, version);
  const benchRoot = benchPackageRoot();
  if (benchRoot === null || !isSourceCheckout(benchRoot)) return registrySpecs(version);
  const vendor = join(target, VENDOR_FOLDER);
  mkdirSync(vendor);
  note(`heaplab is running from a source checkout (${resolve(benchRoot, '..', '..')}): packing its packages with pnpm pack into ${vendor}`);
  const { tarballs, missing } = packCheckout(benchRoot, checkoutPackages(benchRoot), vendor);
  for (const name of missing) note(`warning: the checkout has no ${name}; package.json asks the registry for ^${version}`);
  return tarballSpecs(tarballs, target, version);
}

async function newBackendAction(name: string, options: NewBackendOptions, command: Command): Promise<void> {
  // A name heaplab already uses could never be loaded beside it (the registry refuses a
  // second backend of one name), and `all` means every backend on the command line.
  await discoverBackends();
  const taken = [ALL_BACKENDS, ...registeredBackends().map((descriptor) => descriptor.name)];
  if (taken.includes(name)) failRun(command, `error: '${name}' is taken (${taken.join(', ')}): pick another name`);
  let target: string;
  try {
    target = newBackend(name, options, (line) => printStatus(line));
  } catch (error) {
    if (error instanceof NewBackendError || error instanceof PackageSourceError) failRun(command, `error: ${error.message}`);
    throw error;
  }
  printStatus(`wrote ${target}`);
  console.error(nextSteps(name, target, textWidthOf(process.stderr)));
}

/**
 * What to do with the package `new-backend` wrote. The commands stay whole, to be pasted (the
 * path may be longer than any width); the sentence after them is laid out to `width` (the
 * terminal's, or TEXT_WIDTH into a pipe): it is read, not parsed, as status lines may be.
 */
export function nextSteps(name: string, target: string, width: number): string {
  return [
    'next:',
    `  cd ${target}`,
    '  npm install',
    '  npm test          # the conformance, multi-worker and crash-recovery suites',
    '  npm run grade     # the suites, the trace replay and the score',
    wrapText(`then make src/${name}.ts faster and tighter (README.md says what it must keep true).`, width),
  ].join('\n');
}

/** Registers `heaplab new-backend`. */
export function addNewBackendCommand(program: Command): void {
  program
    .command('new-backend')
    .description('write a package with a backend to start from (an implicit free list), its tests, and grade and replay scripts')
    .argument(
      '<name>',
      "the backend name: lowercase letters, digits and -, starting with a letter, and none of heaplab's own (nor all); the package is written to <dir>/<name>/",
    )
    .option('--dir <parent>', 'the folder to create <name>/ in (default: the current folder)')
    .option(
      '--packages <dir>',
      "a folder of heaplab tarballs made by pnpm pack (core, test-kit, bench and bench's backends), installed from there " +
        '(default: the registry, or, from a source checkout, tarballs packed from it into <name>/vendor/)',
    )
    .action(newBackendAction);
}
