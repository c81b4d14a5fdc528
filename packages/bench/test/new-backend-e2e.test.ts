/**
 * `heaplab new-backend` end to end, as a student meets it: heaplab's packages packed into
 * tarballs, a package generated outside the repository from them, `npm install` (from the
 * registry, for everything but heaplab), then the generated package's own type check and
 * tests. It needs the @heaplab/test-kit package, which the generated tests import: without
 * packages/test-kit it is skipped, and says so.
 *
 * The tarballs are the pack-install test's (packWorkspace in
 * packages/test-kit/test/packaging/packed-project.ts): packed from the build, which `pnpm -r
 * build` must have made (the test command builds first), and cached under the OS temp folder
 * by a hash of their inputs, so the two tests pack once between them.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { stripVTControlCharacters } from 'node:util';

import { afterAll, describe, expect, it } from 'vitest';

import { packWorkspace } from '../../test-kit/test/packaging/packed-project.js';
import { checkoutPackages } from '../src/new-backend/package-sources.js';
import { benchPackageRoot } from '../src/report/provenance.js';
import { heaplabInProcess } from './inspect-helpers.js';

const REPO = resolve(import.meta.dirname, '..', '..', '..');
const TEST_KIT = join(REPO, 'packages', 'test-kit', 'package.json');
const hasTestKit = existsSync(TEST_KIT);
/** npm install fetches vitest, typescript and tsx: about 30 s on a good connection. */
const INSTALL_TIMEOUT_MS = 150_000;
const TEST_TIMEOUT_MS = 120_000;

if (!hasTestKit) {
  console.warn(`new-backend-e2e: skipped: ${TEST_KIT} does not exist, and the generated package's tests import @heaplab/test-kit`);
}

/** The environment without this vitest's own variables, so the generated package's vitest starts afresh. */
function cleanEnvironment(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !name.startsWith('VITEST') && name !== 'NODE_OPTIONS'));
}

/** Runs `command args` in `cwd`, bounded by `timeout`; returns its status and its output. */
function run(command: string, args: string[], cwd: string, timeout: number): { status: number | null; output: string } {
  const result = spawnSync(command, args, { cwd, env: cleanEnvironment(), encoding: 'utf8', timeout });
  return { status: result.status, output: `${result.error?.message ?? ''}${result.stdout}${result.stderr}` };
}

describe('heaplab new-backend, end to end', () => {
  let scratch: string | undefined;
  afterAll(() => {
    if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  });

  it.skipIf(!hasTestKit)(
    `generates a package from packed tarballs; npm install, its type check and npm test pass${hasTestKit ? '' : ' (skipped: no packages/test-kit)'}`,
    async () => {
      // Outside the repository, as a student's package would be: nothing resolves through the workspace.
      scratch = mkdtempSync(join(tmpdir(), 'heaplab-new-backend-e2e-'));
      const packed = await packWorkspace();
      // Every package a generated package installs (the direct ones and bench's backends) is packed.
      const unpacked = checkoutPackages(benchPackageRoot()!).filter((name) => !packed.tarballs.has(name));
      expect(unpacked).toEqual([]);

      const generated = await heaplabInProcess('new-backend', 'mine', '--dir', scratch, '--packages', packed.folder);
      expect(generated.status, generated.stderr).toBe(0);
      const target = join(scratch, 'mine');

      const install = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], target, INSTALL_TIMEOUT_MS);
      expect(install.status, install.output).toBe(0);
      const typecheck = run('npm', ['run', 'typecheck'], target, TEST_TIMEOUT_MS);
      expect(typecheck.status, typecheck.output).toBe(0);
      // The verbose reporter names every test: the multi-worker suite ran, not only the rest.
      const test = run('npm', ['test', '--', '--reporter=verbose'], target, TEST_TIMEOUT_MS);
      expect(test.status, test.output).toBe(0);
      const plain = stripVTControlCharacters(test.output);
      expect(plain).toMatch(/multi-worker: mine > 4 worker\(s\) free blocks that other workers allocated/);
      expect(plain).toMatch(/check\(\) reports a block header that a buggy program overwrote/);
      // The crash-recovery suite ran on the generated backend: its recover() and store order.
      expect(plain).toMatch(/mine: crash recovery > a thread killed at every store of malloc\(40\) in a fragmented heap/);
      expect(plain).toMatch(/mine: crash recovery > a worker that dies inside the heap lock is reaped by watchWorker/);
    },
    INSTALL_TIMEOUT_MS + 2 * TEST_TIMEOUT_MS,
  );
});
