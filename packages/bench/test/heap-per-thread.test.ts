/**
 * tools/heap-per-thread: two threads on one heap against two threads on a heap each. Its
 * figures depend on the machine; this checks that the built tool runs both kinds of pair to
 * the end and prints them, and that it refuses bad arguments with a message.
 */

import { spawnSync } from 'node:child_process';

import { describe, expect, it } from 'vitest';

import { distFile, distMissing } from './dist-build.js';

const TOOL = distFile('tools/heap-per-thread.js');

function runTool(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  return spawnSync(process.execPath, [TOOL, ...args], { encoding: 'utf8', timeout: 120_000 });
}

describe('tools/heap-per-thread', () => {
  it('runs a pair on one heap and on a heap each, and prints both and their ratio', (context) => {
    const why = distMissing();
    if (why !== undefined) {
      console.log(`skipped tools/heap-per-thread: ${why}`);
      context.skip();
    }
    const result = runTool('tlsf', '1', '0.2');
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^bench-malloc-thread, tlsf, 2 threads, 0\.2 s a run$/m);
    expect(result.stdout).toMatch(/^pair 1: round trip \d+ then \d+ \((near|far|mixed)\)$/m);
    // Each thread's rate and its CPU per iteration (Linux gives every thread's CPU time).
    expect(result.stdout).toMatch(/^ {2}one heap: +\d+\.\d M\/s \(\d+\.\d M \d+\.\d ns, \d+\.\d M \d+\.\d ns\)$/m);
    expect(result.stdout).toMatch(/^ {2}a heap each: +\d+\.\d M\/s \(\d+\.\d M \d+\.\d ns, \d+\.\d M \d+\.\d ns\)$/m);
    expect(result.stdout).toMatch(
      /^(near|far|mixed), 1 pair: one heap \d+\.\d M\/s, a heap each \d+\.\d M\/s \(medians\)\n {2}one heap \/ a heap each: \d+\.\d\dx$/m,
    );
  });

  it('refuses a bad count or an unknown backend, with a message and exit code 1', (context) => {
    const why = distMissing();
    if (why !== undefined) {
      console.log(`skipped tools/heap-per-thread: ${why}`);
      context.skip();
    }
    const badPairs = runTool('tlsf', 'many');
    expect(badPairs.status).toBe(1);
    expect(badPairs.stderr).toContain("heap-per-thread: pairs must be a number of at least 1, not 'many'");
    const unknown = runTool('no-such-backend', '1', '0.2');
    expect(unknown.status).toBe(1);
    expect(unknown.stderr).toMatch(/no-such-backend/);
    expect(unknown.stdout).not.toMatch(/^pair/m);
  });
});
