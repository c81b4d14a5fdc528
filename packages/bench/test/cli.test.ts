import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { TEXT_WIDTH } from '../src/report/text-table.js';
import { benchMetaOn } from './bench-meta-fixture.js';
import { widestLine } from './text-width.js';

// The CLI runs from source: tsx for TypeScript, the "heaplab-source" condition for workspace packages.
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));

function heaplab(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--conditions=heaplab-source', '--import', 'tsx', CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('heaplab command line', () => {
  it('points a mistake in the command line to --help', () => {
    const result = heaplab('bench', '--threads', '0');
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/\(run with --help for usage\)/);
  });

  it.each([
    [['bench', '--threads', '0'], /--threads <list>' argument '0' is invalid/],
    [['bench', '--threads', 'two'], /argument 'two' is invalid/],
    [['bench', '--threads', '1,2,1'], /thread count 1 is given twice/],
    [['bench', '--backend', 'tlsf:arenas=2,arenas=3'], /backend option 'arenas' is given twice/],
    [['bench', '--backend', 'mimalloc:arenas=2'], /no option 'arenas'/],
    [['bench', '--duration', '-1'], /the duration is a number of seconds greater than 0; '-1' is not/],
    [['bench', '--duration', '1e-9'], /a run of 1e-9 s is too short to time; give at least 0.01/],
    [['bench', '--backend', 'nope'], /unknown backend 'nope' \(valid: .*basic/],
    [['bench', 'nonsense'], /value 'nonsense' is invalid for argument 'workload'/],
    [['bench', '--backend', 'basic,tlsf'], /argument 'basic,tlsf' is invalid.*repeat the option: --backend basic --backend tlsf/],
    [['bench', 'larson', '--format', 'mimalloc'], /--format mimalloc applies to glibc-thread only, not to larson/],
    [
      ['bench', 'glibc-thread', '--backend', 'mimalloc', '--backend', 'tlsf', '--threads', '1,2', '--heap-mib', '12'],
      /the heap is too small:\n {2}mimalloc needs a heap of at least 16 MiB for glibc-thread on 2 threads \(blocks up to 32768 bytes\); --heap-mib is 12\n/,
    ],
    [
      ['bench', 'alloc-pairs', '--backend', 'tlsf:arenas=3', '--threads', '2', '--heap-mib', '4'],
      /tlsf:arenas=3 needs a heap of at least 12 MiB for alloc-pairs on 2 threads; --heap-mib is 4/,
    ],
    [['bench', '--backend', 'tlsf:'], /backend spec 'tlsf:' has nothing after its ':'/],
    [['stats', '--backend', 'tlsf', '--workload', 'glibc-thread', '--iterations', '999999999999'], /at most 100000000 iterations \(about a minute\)/],
    // Output paths are checked before the run, not found wrong after it.
    [['stats', '--backend', 'tlsf', '--workload', 'glibc-thread', '--json', tmpdir()], /--json \S+: \S+ is a folder, not a file$/m],
    [['report', 'any.json', '--out', tmpdir()], /--out \S+: \S+ is a folder, not a file$/m],
  ])('refuses %j with a clear message and status 1', (args, message) => {
    const result = heaplab(...args);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(message);
  });

  it('lists basic and its options', () => {
    const result = heaplab('backends');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^basic {2}\(locked\)/m);
    expect(result.stdout).toMatch(/strategy \{first-fit \| best-fit \| worst-fit\} {2}default first-fit/);
    // Into a pipe: wrapped to TEXT_WIDTH.
    expect(widestLine(result.stdout)).toBeLessThanOrEqual(TEXT_WIDTH);
  });

  it('has --help on every command', () => {
    expect(heaplab('--help').stdout).toMatch(/bench \[options\] \[workload\]/);
    expect(heaplab('--help').stdout).toMatch(/Exit status: 0 when everything ran/);
    expect(heaplab('bench', '--help').stdout).toMatch(/--threads <list>/);
    expect(heaplab('backends', '--help').stdout).toMatch(/list the backends/);
    // Options a command cannot run without say so; the others do not.
    const map = heaplab('map', '--help').stdout;
    expect(map).toMatch(/--at <list> +\(required\) moments/);
    expect(map).not.toMatch(/--heap-mib <n> +\(required\)/);
  });

  it('runs a short glibc-thread bench and writes the table, JSON, HTML and SVG', () => {
    const directory = mkdtempSync(join(tmpdir(), 'heaplab-cli-'));
    const result = heaplab(
      'bench',
      'glibc-thread',
      '--backend',
      'basic',
      '--backend',
      'basic:strategy=best-fit',
      '--baselines',
      'system,bump',
      '--threads',
      '1',
      '--duration',
      '0.1',
      '--quiet',
      '--json',
      join(directory, 'out.json'),
      '--report',
      join(directory, 'report.html'),
    );
    expect(result.stderr).not.toMatch(/FAILED/);
    expect(result.status).toBe(0);
    // Nothing on the terminal but the files written: no vega warnings.
    expect(result.stderr.trim()).toMatch(/^wrote \S+out\.json\nwrote \S+report\.html, [^\n]+$/);
    expect(result.stdout).toMatch(/^basic:strategy=best-fit +1 +[\d.]+ [kM]\/s/m);
    const json = JSON.parse(readFileSync(join(directory, 'out.json'), 'utf8'));
    expect(json.glibcThread[0].upstream.functions.malloc[''].random_seed).toBe(88);
    // What made the run, for the report's header: heaplab's version and the command as typed.
    expect(json.meta.version).toMatch(/^\d+\.\d+\.\d+/);
    expect(json.meta.command).toMatch(/^heaplab bench glibc-thread --backend basic --backend basic:strategy=best-fit --baselines system,bump /);
    expect(typeof json.meta.host).toBe('string');
    expect(json.glibcThread[0].mimallocBenchLine).toMatch(/^\d+ iterations$/);
    const html = readFileSync(join(directory, 'report.html'), 'utf8');
    expect(html).toContain('<svg');
    expect(html).toContain('basic:strategy=best-fit');
    const svgs = readdirSync(directory).filter((name) => name.endsWith('.svg'));
    expect(svgs).toEqual(expect.arrayContaining(['report-throughput.svg', 'report-memory.svg']));
    const svg = readFileSync(join(directory, 'report-throughput.svg'), 'utf8');
    expect(svg).toMatch(/^<svg/);
    expect(svg).toContain('bump (speed of light)');
    expect(existsSync(join(directory, 'report-efficiency.svg'))).toBe(false);
  });

  it('merges bench JSON files and a heap map into one report, and refuses a file that is not heaplab', () => {
    const directory = mkdtempSync(join(tmpdir(), 'heaplab-cli-report-'));
    const results = (host: string) => ({
      meta: benchMetaOn(host),
      unavailable: [],
      glibcThread: [
        {
          label: 'tlsf',
          kind: 'heaplab',
          threads: 1,
          iterations: 1,
          wallSeconds: 1,
          perSecond: host === 'alpha' ? 1e6 : 2e6,
          peakUsedBytes: 1 << 16,
          peakFootprintBytes: null,
          touchedBytes: 1 << 17,
        },
      ],
    });
    writeFileSync(join(directory, 'a.json'), JSON.stringify(results('alpha')));
    writeFileSync(join(directory, 'b.json'), JSON.stringify(results('beta')));
    const out = join(directory, 'merged', 'r.html');
    const map = fileURLToPath(new URL('./fixtures/map.json', import.meta.url));
    const result = heaplab('report', join(directory, 'a.json'), join(directory, 'b.json'), map, '--out', out);
    expect(result.status).toBe(0);
    // Nothing on the terminal but the files written: no vega warnings.
    expect(result.stderr.trim()).toMatch(/^wrote [^\n]*r\.html, [^\n]*r-throughput\.svg, [^\n]*r-memory\.svg$/);
    const html = readFileSync(out, 'utf8');
    expect(html).toContain('tlsf @ alpha');
    expect(html).toContain('tlsf @ beta');
    expect(html).toContain('heap map: glibc-thread');
    expect(html).toContain('>largest free block</dt><dd>98,304</dd>');

    writeFileSync(join(directory, 'package.json'), '{"name": "x"}');
    const refused = heaplab('report', join(directory, 'a.json'), join(directory, 'package.json'), '--out', out);
    expect(refused.status).toBe(1);
    expect(refused.stderr).toMatch(/package\.json: not the JSON of heaplab bench --json/);
    const unreadable = heaplab('report', join(directory, 'none.json'), '--out', out);
    expect(unreadable.stderr).toMatch(/none\.json: cannot read it/);
    // A file that cannot be read is no mistake in the command line: no pointer to --help.
    expect(unreadable.stderr).not.toMatch(/--help/);
    expect(unreadable.status).toBe(1);
  });
});
