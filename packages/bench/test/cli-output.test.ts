/**
 * The command line's output conventions: `--version`, and `--json -` putting the JSON alone
 * on stdout (the human-readable text then on stderr), run as a user runs heaplab: a process
 * of its own, from source.
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';

import { printStatus, writeJsonOutput } from '../src/cli/json-output.js';
import { makeProgram } from '../src/cli/program.js';
import { TEXT_WIDTH } from '../src/report/text-table.js';
import { widestLine } from './text-width.js';

const SOURCE_CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const SHORT_TRACE = fileURLToPath(new URL('./fixtures/traces/1-short.rep', import.meta.url));
const TSX = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const BENCH_VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const scratch = mkdtempSync(join(tmpdir(), 'heaplab-cli-output-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function heaplab(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, ['--conditions=heaplab-source', '--import', TSX, SOURCE_CLI, ...args], { encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('command-line output', () => {
  it('--version prints the version of @heaplab/bench', () => {
    const { status, stdout } = heaplab(['--version']);
    expect(status).toBe(0);
    expect(stdout.trim()).toBe(BENCH_VERSION);
  });

  it('--json - writes the JSON alone to stdout and the tables to stderr', () => {
    const { status, stdout, stderr } = heaplab(['replay', SHORT_TRACE, '--backend', 'tlsf', '--repeat', '1', '--json', '-', '-q']);
    expect(status, stderr).toBe(0);
    const results = JSON.parse(stdout) as { kind: string; backends: { backend: string }[] };
    expect(results.kind).toBe('heaplab-replay');
    expect(results.backends.map((row) => row.backend)).toEqual(['tlsf']);
    expect(stderr).toMatch(/Perf index = /);
    expect(stderr).not.toMatch(/wrote -/);
  });

  it('--json FILE makes the folders and names the file on stderr', () => {
    const file = join(scratch, 'a', 'b', 'out.json');
    const error = console.error;
    const said: string[] = [];
    console.error = (text: string) => void said.push(text);
    try {
      writeJsonOutput(file, { kind: 'x', n: 1 });
    } finally {
      console.error = error;
    }
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ kind: 'x', n: 1 });
    expect(said).toEqual([`wrote ${file}`]);
  });

  it('a status line fits an 80-column terminal, and stays one line into a pipe', () => {
    const paths = ['report/index.html', 'report/glibc-thread-throughput.svg', 'report/glibc-thread-memory.svg'];
    const line = `wrote ${paths.join(', ')}`;
    expect(line.length).toBeGreaterThan(80);
    const error = console.error;
    const said: string[] = [];
    console.error = (text: string) => void said.push(text);
    try {
      printStatus(line, { isTTY: true, columns: 80 });
      printStatus(line, { isTTY: false });
    } finally {
      console.error = error;
    }
    const [terminal, pipe] = said;
    for (const row of terminal!.split('\n')) expect(row.length).toBeLessThanOrEqual(80);
    expect(terminal!.split('\n').length).toBeGreaterThan(1);
    expect(terminal!.replace(/\n\s+/g, ' ')).toBe(line);
    expect(pipe).toBe(line);
  });
});

/** Every command of `program`, subcommands of subcommands too (`heaplab trace record`). */
function commandsOf(command: Command): Command[] {
  return [command, ...command.commands.flatMap(commandsOf)];
}

/** `command`'s help as commander writes it to stdout when stdout is `width` columns wide. */
function helpAt(command: Command, width: number): string {
  let text = '';
  command.configureOutput({ getOutHelpWidth: () => width, writeOut: (part) => void (text += part) });
  command.outputHelp();
  return text;
}

/** `text` as one line of words: what wrapping must keep. */
function wordsOf(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

describe('help', () => {
  const program = makeProgram();
  const named = commandsOf(program).map((command) => [command.name(), command] as const);

  it.each(named)('of %s fits 80 columns and TEXT_WIDTH, and keeps every word', (_, command) => {
    const wide = helpAt(command, 10_000);
    for (const width of [80, TEXT_WIDTH]) {
      const help = helpAt(command, width);
      expect(widestLine(help), help).toBeLessThanOrEqual(width);
      expect(wordsOf(help)).toBe(wordsOf(wide));
    }
  });

  it('lays the notes after the options out too (the lines that ran past 300 columns)', () => {
    const record = named.find(([name]) => name === 'record')![1];
    const help = helpAt(record, 80);
    expect(help).toMatch(/^On one thread: glibc-thread,/m);
    expect(help.split('\n').filter((line) => line.includes('arceos:')).length).toBeGreaterThan(1);
  });

  it('into a pipe is TEXT_WIDTH wide, as the rest of heaplab', () => {
    const { status, stdout } = heaplab(['trace', 'record', '--help']);
    expect(status).toBe(0);
    expect(widestLine(stdout)).toBeLessThanOrEqual(TEXT_WIDTH);
    expect(widestLine(stdout)).toBeGreaterThan(80);
  });
});

describe('error messages', () => {
  const long = `error: no workload 'nope' one can record; one of: ${Array.from({ length: 20 }, (_, n) => `workload-${n}`).join(', ')}`;

  /** What the program's `outputError` writes for `long` with stderr as `stderr` says. */
  function written(stderr: { isTTY: boolean; columns?: number }): string {
    const { outputError } = makeProgram().configureOutput();
    const saved = { isTTY: process.stderr.isTTY, columns: process.stderr.columns };
    Object.assign(process.stderr, stderr);
    let text = '';
    try {
      outputError!(`${long}\n`, (part) => void (text += part));
    } finally {
      Object.assign(process.stderr, saved);
    }
    return text;
  }

  it('are wrapped on an 80-column terminal, and stay one line into a pipe', () => {
    const terminal = written({ isTTY: true, columns: 80 });
    expect(widestLine(terminal)).toBeLessThanOrEqual(80);
    expect(terminal.trimEnd().split('\n').length).toBeGreaterThan(1);
    expect(wordsOf(terminal)).toBe(wordsOf(long));
    expect(written({ isTTY: false })).toBe(`${long}\n`);
  });
});
