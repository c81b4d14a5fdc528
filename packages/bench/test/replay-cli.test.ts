import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { replayTraceFiles } from '../src/replay/replay-suite.js';
import { TEXT_WIDTH } from '../src/report/text-table.js';
import { heaplabInProcess } from './inspect-helpers.js';
import { widestLine } from './text-width.js';

const FIXTURES = new URL('./fixtures/traces/', import.meta.url).pathname;

describe('heaplab replay', () => {
  const replay = (...args: string[]) => heaplabInProcess('replay', ...args);

  it('replays a directory in name order on a backend and the reference, prints the tables and writes the JSON', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'heaplab-replay-')), 'replay.json');
    const result = await replay(FIXTURES, '--backend', 'basic', '--repeat', '1', '-q', '--json', file);
    expect(result.stderr).not.toMatch(/replaying/);
    expect(result.status).toBe(0);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json).toMatchObject({ kind: 'heaplab-replay', weights: { utilization: 0.6, throughput: 0.4 }, repeat: 1, reference: { backend: 'tlsf' } });
    expect(json.meta.command).toMatch(/^heaplab/);
    expect(json.traces.map((trace: { trace: string }) => trace.trace)).toEqual(['1-short.rep', '2-mixed.jsonl', '3-two-threads.jsonl']);
    expect(json.traces[2].threads).toBe(2);
    expect(json.traces[2].description).toBe('two threads, each freeing and resizing blocks the other made');
    expect(json.backends.map((row: { backend: string; reference: boolean }) => [row.backend, row.reference])).toEqual([
      ['basic', false],
      ['tlsf', true],
    ]);
    for (const row of json.backends) {
      expect(row.traces).toHaveLength(3);
      expect(row.score.validTraces).toBe(3);
      expect(row.score.index).toBeGreaterThan(0);
      expect(row.score.index).toBeLessThanOrEqual(100);
      expect(row.score.index).toBeCloseTo(row.score.utilizationPoints + row.score.throughputPoints, 10);
      for (const trace of row.traces)
        expect(Object.keys(trace)).toEqual(
          expect.arrayContaining(['trace', 'valid', 'utilization', 'operations', 'seconds', 'cpuSeconds', 'opsPerSecond', 'footprintBytes']),
        );
    }
    // The reference's own throughput is T_ref, so its throughput part is full.
    expect(json.backends[1].score.throughputRatio).toBe(1);
    expect(json.reference.throughput).toBeCloseTo(json.backends[1].score.throughput, 6);
    expect(result.stdout).toMatch(/^basic:\ntrace +valid +util +ops +secs +cpu secs +Kops\/s\n/);
    expect(result.stdout).toMatch(/^tlsf \(reference\):$/m);
    expect(result.stdout).toMatch(/^Perf index = \d+\.\d \(util\) \+ 40\.0 \(thru\) = \d+\.\d\/100$/m);
    expect(result.stdout).toMatch(/^Perf index = 100 × \(0\.6 × util \+ 0\.4 × min\(1, Kops\/s ÷ reference's\)\); reference tlsf at/m);
    expect(result.stdout).toMatch(/^backend +valid +util +Kops\/s +vs ref +index$/m);
    expect(widestLine(result.stdout)).toBeLessThanOrEqual(TEXT_WIDTH);
  });

  it('exits with 2 and names the request when a trace is invalid, and the backend scores 0', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'heaplab-replay-'));
    const trace = join(directory, 'too-big.rep');
    writeFileSync(trace, `0\n2\n3\n1\na 0 64\na 1 ${32 << 20}\nf 0\n`);
    const result = await replay(trace, '--backend', 'tlsf', '--heap-mib', '16', '--repeat', '1', '-q');
    expect(result.status).toBe(2);
    expect(result.stdout).toMatch(/^too-big\.rep +no +- +3 /m);
    expect(result.stdout).toMatch(/invalid: too-big\.rep: request 2 \(a, id 1, thread 0\): ran out of memory/);
    expect(result.stdout).toMatch(/= 0\.0\/100/);
    expect(widestLine(result.stdout)).toBeLessThanOrEqual(TEXT_WIDTH);
  });

  it('exits with 1 for a malformed trace (file and line named), a missing path and a bad reference', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'heaplab-replay-'));
    const bad = join(directory, 'bad.rep');
    writeFileSync(bad, '0\n1\n2\n1\na 0 64\nx 0\n');
    expect(await replay(bad, '--backend', 'basic')).toMatchObject({ status: 1, stderr: expect.stringContaining(`${bad}:6: a request is`) });
    const missing = await replay(join(directory, 'missing.rep'), '--backend', 'basic');
    expect(missing).toMatchObject({ status: 1, stderr: expect.stringMatching(/cannot read .*missing\.rep/) });
    // A file that is not there is no mistake in the command line: no pointer to --help.
    expect(missing.stderr).not.toMatch(/run with --help/);
    expect(await replay(directory.concat('/none'))).toMatchObject({ status: 1 });
    expect(await replay(FIXTURES, '--reference', 'all')).toMatchObject({
      status: 1,
      stderr: expect.stringMatching(/the reference is one backend spec, not all/),
    });
    expect(await replay(FIXTURES, '--backend', 'nosuch')).toMatchObject({ status: 1, stderr: expect.stringMatching(/nosuch/) });
    const empty = mkdtempSync(join(tmpdir(), 'heaplab-replay-'));
    expect(await replay(empty, '--backend', 'basic')).toMatchObject({ status: 1, stderr: expect.stringMatching(/holds no trace files/) });
  });
});

describe('replayTraceFiles (what heaplab grade calls)', () => {
  it('replays the files on the specs given and the reference, and scores each', async () => {
    const files = ['1-short.rep', '2-mixed.jsonl'].map((name) => join(FIXTURES, name));
    const results = await replayTraceFiles(files, [{ name: 'basic', options: { strategy: 'best-fit' } }], {
      reference: { name: 'slab', options: {} },
      repeat: 1,
    });
    expect(results.reference.backend).toBe('slab');
    expect(results.backends.map((row) => row.backend)).toEqual(['basic:strategy=best-fit', 'slab']);
    for (const row of results.backends) {
      expect(row.traces.map((trace) => [trace.trace, trace.valid])).toEqual([
        ['1-short.rep', true],
        ['2-mixed.jsonl', true],
      ]);
      expect(row.score.index).toBeGreaterThan(0);
    }
    await expect(replayTraceFiles([join(FIXTURES, 'nothing.rep')], ['all'])).rejects.toThrow(/cannot read/);
  });
});
