/**
 * `heaplab replay <files or directories...>`: replays allocation traces on backends, checks
 * every answer, times the replays and scores each backend with CS:APP's performance index
 * against a reference backend replayed in the same run (docs/replay.md).
 *
 *   heaplab replay traces/ --backend all --reference tlsf --repeat 3 --json replay.json
 *
 * Status 1 for bad arguments (an unreadable or malformed trace names its file and line), 2
 * when any trace was invalid on any backend.
 */

import { AllocError, type BackendSpec } from '@heaplab/core';
import { type Command, InvalidArgumentError } from 'commander';

import { type BackendChoice, discoverBackends, resolveBackendContenders } from '../contenders/backends.js';
import type { BackendContender } from '../contenders/contender.js';
import { replayText } from '../replay/replay-table.js';
import { THROUGHPUT_WEIGHT, UTILIZATION_WEIGHT } from '../replay/replay-score.js';
import { DEFAULT_REFERENCE, DEFAULT_REPLAY_REPEAT, type ReplayResults, replaySuite } from '../replay/replay-suite.js';
import { MIN_REPLAY_HEAP_BYTES, REPLAY_HEAP_FACTOR, readTraceFiles, TRACE_EXTENSIONS, type TraceFile } from '../replay/trace-files.js';
import { addBackendModuleOption } from './backend-module-option.js';
import { ALL_BACKENDS, parseBackendOption } from './backend-option.js';
import { failRun } from './fail-run.js';
import { helpNote } from './help-text.js';
import { textOut, textWidth, writeJsonOutput } from './json-output.js';
import { parseHeapMiB, parsePositiveInteger } from './options.js';
import { checkOutputPath } from './output-path.js';

interface ReplayOptions {
  /** Undefined when not given: every backend. */
  backend?: BackendChoice[];
  reference?: BackendSpec;
  repeat: number;
  heapMib?: number;
  json?: string;
  quiet: boolean;
}

/** `--reference`: one backend spec (not `all`). */
export function parseReferenceOption(value: string): BackendSpec {
  const [choice] = parseBackendOption(value);
  if (choice === ALL_BACKENDS) throw new InvalidArgumentError('the reference is one backend spec, not all.');
  return choice!;
}

async function replayCommand(paths: string[], options: ReplayOptions, command: Command): Promise<void> {
  let traces: TraceFile[];
  let contenders: BackendContender[];
  let reference: BackendContender;
  try {
    traces = readTraceFiles(paths);
  } catch (error) {
    // A file that cannot be read or parsed is no mistake in the command line: no usage hint.
    if (error instanceof AllocError) failRun(command, `error: ${error.message}`);
    throw error;
  }
  try {
    const unavailable = await discoverBackends();
    for (const missing of unavailable) console.error(`note: ${missing.package} is not available: ${missing.reason}`);
    contenders = resolveBackendContenders(options.backend ?? [ALL_BACKENDS]);
    [reference] = resolveBackendContenders([options.reference ?? DEFAULT_REFERENCE]) as [BackendContender];
  } catch (error) {
    if (error instanceof AllocError) command.error(`error: ${error.message}`, { exitCode: 1 });
    throw error;
  }
  checkOutputPath(command, '--json', options.json, 'file');
  let results: ReplayResults;
  try {
    results = await replaySuite(traces, contenders, reference, {
      repeat: options.repeat,
      ...(options.heapMib === undefined ? {} : { heapBytes: options.heapMib * 1024 * 1024 }),
      onStart: options.quiet ? undefined : (backend, trace) => console.error(`replaying ${trace} on ${backend}`),
    });
  } catch (error) {
    // A heap that cannot be made (a size the backend refuses) is a bad argument too.
    if (error instanceof AllocError) command.error(`error: ${error.message}`, { exitCode: 1 });
    throw error;
  }
  textOut(options.json)(replayText(results, textWidth(options.json)));
  if (options.json !== undefined) {
    const meta = { command: ['heaplab', ...process.argv.slice(2)].join(' '), date: new Date().toISOString(), node: process.version };
    writeJsonOutput(options.json, { ...results, meta });
  }
  if (results.backends.some((row) => row.score.validTraces < row.score.traces)) process.exitCode = 2;
}

/** Adds `replay` to `program`. */
export function addReplayCommand(program: Command): void {
  addBackendModuleOption(program.command('replay'))
    .description("replay allocation traces on backends: check every block, time the replays, and score each backend with CS:APP's performance index")
    .argument('<paths...>', `trace files (${TRACE_EXTENSIONS.join(', ')}: CS:APP's text or heaplab's JSON lines), or directories of them (read in name order)`)
    .option('-b, --backend <spec>', `a backend spec, or ${ALL_BACKENDS}; repeat the option for more backends (default: all)`, parseBackendOption)
    .option(
      '--reference <spec>',
      `the backend whose throughput, measured in the same run, counts as full marks (default ${DEFAULT_REFERENCE.name})`,
      parseReferenceOption,
    )
    .option('--repeat <n>', 'timed passes per trace; the table shows their median', parsePositiveInteger, DEFAULT_REPLAY_REPEAT)
    .option(
      '--heap-mib <n>',
      `every trace's heap, in MiB (multiple of 4; default: for each trace ${REPLAY_HEAP_FACTOR} × the larger of its suggested heap and its peak ` +
        `payload, at least ${MIN_REPLAY_HEAP_BYTES >>> 20} MiB, rounded up to 4 MiB)`,
      parseHeapMiB,
    )
    .option('--json <file>', 'also write every figure as JSON (- for stdout, the tables then on stderr)')
    .option('-q, --quiet', 'no progress lines', false)
    .addHelpText(
      'after',
      helpNote(
        `Perf index = 100 × (${UTILIZATION_WEIGHT} × util + ${THROUGHPUT_WEIGHT} × min(1, throughput ÷ the reference's)), 0 when a trace is invalid; util is the peak ` +
          'live payload over the high-water footprint. Status 2 when a trace is invalid on any backend. See docs/replay.md.',
      ),
    )
    .action(replayCommand);
}
