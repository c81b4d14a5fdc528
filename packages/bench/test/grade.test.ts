/**
 * `heaplab grade` end to end, from the build (the test command builds first; grade has vitest
 * run the kit's suite file, which a test cannot do inside vitest's own worker): a correct
 * backend from outside the packages passes with status 0, a backend that scribbles over live
 * blocks fails its suites and its traces with status 2, and bad arguments exit 1.
 */

import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';

import type { GradeResults } from '../src/grade/report-card.js';
import { TEXT_WIDTH } from '../src/report/text-table.js';
import { widestLine } from './text-width.js';

const DIST_CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const TEMPLATE = fileURLToPath(new URL('../templates/backend/src/__NAME__.ts', import.meta.url));
const SCRIBBLING = fileURLToPath(new URL('./fixtures/scribbling-backend.ts', import.meta.url));
const NOT_A_BACKEND = fileURLToPath(new URL('./fixtures/outside-backend/not-a-backend.mjs', import.meta.url));
const TRACES = fileURLToPath(new URL('./fixtures/traces/', import.meta.url));

const scratch = mkdtempSync(join(tmpdir(), 'heaplab-grade-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function grade(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [DIST_CLI, 'grade', ...args], { encoding: 'utf8', timeout: 170_000, cwd: scratch });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const built = existsSync(DIST_CLI);
if (!built) console.warn(`grade.test: skipped: ${DIST_CLI} is missing; run pnpm build (pnpm test does)`);

describe.runIf(built)('heaplab grade', () => {
  it('passes a correct backend with status 0: every suite test, every trace valid, a score', { timeout: 180_000 }, () => {
    const json = join(scratch, 'template.json');
    const { status, stdout, stderr } = grade(['--backend-module', TEMPLATE, '--traces', TRACES, '--repeat', '1', '--json', json, '-q']);
    expect(status, stderr).toBe(0);
    expect(stdout).toMatch(/conformance\s+17\/17 passed/);
    expect(stdout).toMatch(/multi-worker\s+6\/6 passed/);
    expect(stdout).toMatch(/Score of template: \d+\.\d\/100 \(3\/3 traces valid\)/);
    expect(stdout).toMatch(/Result: PASS$/m);
    // Printed to a pipe: laid out to TEXT_WIDTH.
    expect(widestLine(stdout)).toBeLessThanOrEqual(TEXT_WIDTH);
    const results = JSON.parse(readFileSync(json, 'utf8')) as GradeResults;
    expect(results.passed).toBe(true);
    expect(results.tests!.every((test) => test.passed)).toBe(true);
    expect(results.replay.backends.map((row) => row.backend)).toEqual(['template', 'tlsf']);
  });

  it('fails a backend that writes into live blocks with status 2, naming the first error of each failed test', { timeout: 180_000 }, () => {
    const json = join(scratch, 'scribbling.json');
    const { status, stdout } = grade(['--backend-module', SCRIBBLING, '--traces', TRACES, '--repeat', '1', '--json', json, '-q']);
    expect(status).toBe(2);
    expect(stdout).toMatch(/FAILED conformance: scribbling > /);
    expect(stdout).toMatch(/Result: FAIL$/m);
    expect(widestLine(stdout)).toBeLessThanOrEqual(TEXT_WIDTH);
    const results = JSON.parse(readFileSync(json, 'utf8')) as GradeResults;
    expect(results.passed).toBe(false);
    const failed = results.tests!.filter((test) => !test.passed);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((test) => test.error !== null && test.error !== '')).toBe(true);
    const row = results.replay.backends.find((candidate) => candidate.backend === 'scribbling')!;
    expect(row.score.validTraces).toBeLessThan(row.score.traces);
    expect(row.score.index).toBe(0);
  });

  it('replays the bare algorithms with --bare: the backend and the reference without the thread cache', { timeout: 120_000 }, () => {
    const json = join(scratch, 'bare.json');
    const { status, stdout, stderr } = grade([
      '--backend-module',
      TEMPLATE,
      '--traces',
      TRACES,
      '--repeat',
      '1',
      '--no-suites',
      '--bare',
      '--json',
      json,
      '-q',
    ]);
    expect(status, stderr).toBe(0);
    expect(stdout).toMatch(/^template:tcache=false +3\/3 +\d+\.\d% +\d+ +\d+\.\d\d +\d+\.\d$/m);
    expect(stdout).toMatch(/^tlsf:tcache=false \(reference\) +3\/3 /m);
    expect(stdout).toMatch(/Result: PASS$/m);
    const results = JSON.parse(readFileSync(json, 'utf8')) as GradeResults;
    expect(results.replay.backends.map((row) => row.backend)).toEqual(['template:tcache=false', 'tlsf:tcache=false']);
  });

  it('refuses a module without backends, a backend the module lacks, and no module at all, with status 1', { timeout: 60_000 }, () => {
    const none = grade(['--backend-module', NOT_A_BACKEND, '--no-suites']);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/--backend-module .*not-a-backend\.mjs/);
    const lacking = grade(['--backend-module', TEMPLATE, '--backend', 'other', '--no-suites']);
    expect(lacking.status).toBe(1);
    expect(lacking.stderr).toMatch(/the modules export template, not other/);
    const missing = grade([]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/grade needs the backend to grade: --backend-module/);
    // A reference that names no backend, or an option it lacks: one sentence, no stack.
    for (const [reference, said] of [
      ['nosuch', /unknown backend 'nosuch'/],
      ['mimalloc:arenas=2', /no option 'arenas'/],
    ] as const) {
      const bad = grade(['--backend-module', TEMPLATE, '--no-suites', '--traces', TRACES, '--reference', reference]);
      expect(bad.status, bad.stderr).toBe(1);
      expect(bad.stderr).toMatch(said);
      expect(bad.stderr).not.toMatch(/\n\s+at /);
    }
  });
});
