/**
 * `heaplab trace`: making allocation traces (docs/traces.md).
 *
 *   heaplab trace record --workload W --out FILE [--backend spec] [--threads N] [--iterations N]
 *   heaplab trace make --out DIR [--only file,...]
 *
 * `record` runs a workload on a heaplab backend with a `TraceRecorder` and writes its trace:
 * a `.jsonl` file in JSON lines, a `.rep` or `.txt` file in CS:APP's text spelling (refused
 * when the trace holds several threads, alignments or callocs). `make` writes heaplab's own
 * trace set. Figures go to stderr; bad options (and a log too small for the run) exit with
 * status 1, a run that failed with status 2.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, extname } from 'node:path';

import { AllocError, fitsTextSpelling, formatTrace, type TraceScan, type TraceSpelling, traceFigures } from '@heaplab/core';
import { type Command, InvalidArgumentError } from 'commander';

import type { BackendChoice } from '../contenders/backends.js';
import type { BackendContender } from '../contenders/contender.js';
import { DEFAULT_MAP_ITERATIONS } from '../inspect/heap-moments.js';
import { recordableNames, recordingSummary, recordWorkload } from '../traces/record-workload.js';
import { type MadeTrace, makeTraceSet, TRACE_SET } from '../traces/trace-set.js';
import { figureColumns, renderTable, textWidthOf } from '../report/text-table.js';
import { addBackendModuleOption } from './backend-module-option.js';
import { ALL_BACKENDS, parseBackendOption } from './backend-option.js';
import { failRun } from './fail-run.js';
import { helpNote } from './help-text.js';
import { backendErrorMessage, inspectedBackends } from './inspect-options.js';
import { printStatus } from './json-output.js';
import { MAX_THREADS, parseHeapMiB, parseIterations, parsePositiveInteger } from './options.js';
import { checkOutputPath } from './output-path.js';

/** The backend of a recording when `--backend` is not given. */
export const DEFAULT_RECORD_BACKEND = 'tlsf';
/** Records a recording's log holds when `--max-records` is not given. */
export const DEFAULT_RECORD_CAPACITY = 1 << 20;
/** The seed recorded when `--seed` is not given. */
const DEFAULT_RECORD_SEED = 1;

interface RecordOptions {
  workload: string;
  out: string;
  backend?: BackendChoice[];
  threads: number;
  iterations?: number;
  heapMib?: number;
  maxRecords: number;
  seed: number;
}

interface MakeOptions {
  out: string;
  only?: string[];
}

/** The spelling a file's extension names. @throws Error for any other extension */
export function spellingOfFile(file: string): TraceSpelling {
  const extension = extname(file).toLowerCase();
  if (extension === '.jsonl') return 'jsonl';
  if (extension === '.rep' || extension === '.txt') return 'text';
  throw new Error(`'${file}' must end in .jsonl (JSON lines) or .rep / .txt (the text spelling)`);
}

function parseThreads(value: string): number {
  const threads = parsePositiveInteger(value);
  if (threads > MAX_THREADS) throw new InvalidArgumentError(`at most ${MAX_THREADS} threads; '${value}' is more.`);
  return threads;
}

function parseTraceFiles(value: string): string[] {
  const files = value.split(',').map((part) => part.trim());
  const unknown = files.filter((file) => !TRACE_SET.some((entry) => entry.file === file));
  if (unknown.length > 0)
    throw new InvalidArgumentError(`not in the trace set: ${unknown.join(', ')}; it holds ${TRACE_SET.map((entry) => entry.file).join(', ')}.`);
  return files;
}

async function recordCommand(options: RecordOptions, command: Command): Promise<void> {
  let spelling: TraceSpelling;
  try {
    spelling = spellingOfFile(options.out);
  } catch (error) {
    command.error(`error: ${(error as Error).message}`, { exitCode: 1 });
  }
  if (spelling === 'text' && options.threads > 1) {
    command.error(`error: the text spelling holds one thread's requests, not ${options.threads} threads'; write the recording to a .jsonl file`, {
      exitCode: 1,
    });
  }
  checkOutputPath(command, '--out', options.out, 'file');
  const names = recordableNames();
  const known = options.threads === 1 ? names.single : names.threaded;
  if (!known.includes(options.workload)) {
    const where = options.threads === 1 ? 'one can record' : `runs on ${options.threads} threads (its thread loop, in workers)`;
    command.error(`error: no workload '${options.workload}' ${where}; one of: ${known.join(', ')}`, { exitCode: 1 });
  }
  const choices = options.backend ?? [{ name: DEFAULT_RECORD_BACKEND, options: {} }];
  if (choices.length !== 1 || choices[0] === ALL_BACKENDS) command.error('error: a recording runs on one backend: give one --backend spec', { exitCode: 1 });
  let contender: BackendContender;
  try {
    contender = (await inspectedBackends(choices)).contenders[0]!;
  } catch (error) {
    command.error(backendErrorMessage(error), { exitCode: 1 });
  }
  const iterations = options.iterations;
  const description =
    `heaplab trace record --workload ${options.workload} --backend ${contender.label} --threads ${options.threads}` +
    `${iterations === undefined ? '' : ` --iterations ${iterations}`} --seed ${options.seed}`;
  let scan: TraceScan;
  try {
    scan = await recordWorkload(contender, {
      workload: options.workload,
      threads: options.threads,
      iterations,
      heapBytes: options.heapMib === undefined ? undefined : options.heapMib << 20,
      capacity: options.maxRecords,
      description,
    });
  } catch (error) {
    // The log filling is the one failure an option fixes: say which.
    if (error instanceof AllocError && /trace log filled/.test(error.message)) {
      failRun(command, `error: the recording took more than its ${options.maxRecords} records; give a larger --max-records, or fewer --iterations`);
    }
    failRun(command, `error: recording ${options.workload} on ${contender.label} failed: ${error instanceof Error ? error.message : String(error)}`, 2);
  }
  const { trace } = scan;
  if (spelling === 'text' && !fitsTextSpelling(trace)) {
    command.error(
      `error: this trace has ${trace.threads > 1 ? `${trace.threads} threads` : 'alignments or callocs'}, which the text spelling cannot hold; write it to a .jsonl file`,
      { exitCode: 1 },
    );
  }
  mkdirSync(dirname(options.out), { recursive: true });
  writeFileSync(options.out, formatTrace(trace, spelling));
  printStatus(`${options.out}: ${recordingSummary(trace, scan, traceFigures(trace).peakPayloadBytes)}`);
}

/** The table of the traces `trace make` wrote: one row a trace, laid out to `width`. */
export function madeTraceTable(made: readonly MadeTrace[], width: number): string {
  const headers = ['trace', 'requests', 'ids', 'threads', 'peak payload (bytes)'];
  const rows = made.map((entry) => [entry.file, ...[entry.requests, entry.ids, entry.threads, entry.peakPayloadBytes].map(String)]);
  return renderTable(headers, rows, figureColumns(headers), { width });
}

async function makeCommand(options: MakeOptions, command: Command): Promise<void> {
  checkOutputPath(command, '--out', options.out, 'folder');
  const made = await makeTraceSet(options.out, options.only);
  console.error(madeTraceTable(made, textWidthOf(process.stderr)));
  printStatus(`wrote ${made.length} trace${made.length === 1 ? '' : 's'} to ${options.out}`);
}

/** Adds `heaplab trace record` and `heaplab trace make` to `program`. */
export function addTraceCommand(program: Command): void {
  const trace = program.command('trace').description("make allocation traces: record a workload, or write heaplab's own trace set (docs/traces.md)");
  const names = recordableNames();
  addBackendModuleOption(trace.command('record'))
    .description('run a workload on a heaplab backend with a trace recorder and write its trace')
    .requiredOption('-w, --workload <name>', 'what to run (listed below)')
    .requiredOption('-o, --out <file>', 'the trace file: .jsonl for JSON lines, .rep or .txt for the text spelling')
    .option('-b, --backend <spec>', `one backend spec (default ${DEFAULT_RECORD_BACKEND})`, parseBackendOption)
    .option('-t, --threads <n>', 'threads: more than one runs the thread loop in workers that record into one log', parseThreads, 1)
    .option(
      '--iterations <n>',
      `iterations of a loop, per thread (default ${DEFAULT_MAP_ITERATIONS}); for ArceOS's tests, at most this many of each test's steps`,
      parseIterations,
    )
    .option('--heap-mib <n>', "heap of the run, in MiB (multiple of 4; default 64, or the ArceOS tests' own size)", parseHeapMiB)
    .option('--max-records <n>', 'records the log holds (a realloc takes two, any other call one)', parsePositiveInteger, DEFAULT_RECORD_CAPACITY)
    .option(
      '--seed <n>',
      "written in the trace's description; the workloads draw from their own fixed seeds, as heaplab map's runs do",
      parsePositiveInteger,
      DEFAULT_RECORD_SEED,
    )
    .addHelpText(
      'after',
      helpNote(
        'One thread runs in this process and gives the same trace every time; several threads give one order their calls really took.',
        `On one thread: ${names.single.join(', ')}`,
        `On several threads: ${names.threaded.join(', ')}`,
      ),
    )
    .action(recordCommand);
  trace
    .command('make')
    .description("write heaplab's own trace set (the files of packages/bench/traces) into a directory")
    .requiredOption('-o, --out <dir>', 'the directory')
    .option('--only <files>', 'only these traces of the set, separated by commas', parseTraceFiles)
    .action(makeCommand);
}
