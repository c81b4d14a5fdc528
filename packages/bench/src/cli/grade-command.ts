/**
 * `heaplab grade --backend-module ./src/mine.ts`: the malloc-lab driver's verdict on a
 * backend from outside heaplab, in one command: the test kit's conformance and multi-worker
 * suites (grade/kit-suites.ts), then a replay of heaplab's trace set with the score against
 * a reference replayed in the same run (replay/), then a report card
 * (grade/report-card.ts). Status 0 only when everything passed; 2 when something failed; 1
 * for bad arguments or a missing test kit.
 */

import { AllocError, BACKEND_NAME_PATTERN, type BackendSpec, findBackend, loadBackendModule } from '@heaplab/core';
import { type Command, InvalidArgumentError } from 'commander';

import { resolveBackendContenders } from '../contenders/backends.js';
import { runKitSuites, type SuiteTest } from '../grade/kit-suites.js';
import { type GradeResults, gradePassed, reportCard } from '../grade/report-card.js';
import { DEFAULT_REFERENCE, DEFAULT_REPLAY_REPEAT, replaySuite } from '../replay/replay-suite.js';
import { readTraceFiles } from '../replay/trace-files.js';
import { shippedTracesDir } from '../traces/trace-set.js';
import { addBackendModuleOption } from './backend-module-option.js';
import { failRun } from './fail-run.js';
import { helpNote } from './help-text.js';
import { textOut, textWidth, writeJsonOutput } from './json-output.js';
import { parsePositiveInteger } from './options.js';
import { parseReferenceOption } from './replay-command.js';
import { checkOutputPath } from './output-path.js';

interface GradeOptions {
  backendModule?: string[];
  backend?: string[];
  traces?: string;
  reference?: BackendSpec;
  repeat: number;
  suites: boolean;
  bare: boolean;
  json?: string;
  quiet: boolean;
}

function collectName(value: string, previous: readonly string[] = []): string[] {
  if (!BACKEND_NAME_PATTERN.test(value)) throw new InvalidArgumentError(`'${value}' is not a backend name (grade takes names, not specs).`);
  return [...previous, value];
}

/**
 * `spec` as `--bare` replays it: without core's thread cache (`tcache=false`) when it is a
 * locked backend, which has the option, and the spec does not set it; anything else as given.
 */
function bareSpec(spec: BackendSpec): BackendSpec {
  const hasCache = findBackend(spec.name).options.some((option) => option.name === 'tcache');
  return hasCache && !('tcache' in spec.options) ? { ...spec, options: { ...spec.options, tcache: false } } : spec;
}

async function gradeCommand(options: GradeOptions, command: Command): Promise<void> {
  const modules = options.backendModule ?? [];
  if (modules.length === 0) command.error('error: grade needs the backend to grade: --backend-module <path or package>', { exitCode: 1 });
  checkOutputPath(command, '--json', options.json, 'file');
  const fail = (error: unknown): never => {
    if (error instanceof AllocError) failRun(command, `error: ${error.message}`);
    throw error;
  };
  let graded: string[] = [];
  let traces: ReturnType<typeof readTraceFiles> = [];
  try {
    // Loaded already by the option's hook; loading again returns the same descriptors.
    const exported = (await Promise.all(modules.map((module) => loadBackendModule(module)))).flat().map((descriptor) => descriptor.name);
    const missing = (options.backend ?? []).filter((name) => !exported.includes(name));
    if (missing.length > 0) throw new AllocError('UnknownBackend', `the modules export ${exported.join(', ')}, not ${missing.join(', ')}`);
    graded = options.backend ?? [...new Set(exported)];
    traces = readTraceFiles([options.traces ?? shippedTracesDir()]);
  } catch (error) {
    fail(error);
  }
  let tests: SuiteTest[] | null = null;
  if (options.suites) {
    if (!options.quiet) console.error(`running the test kit's suites on ${graded.join(', ')}`);
    try {
      tests = await runKitSuites({ modules, backends: graded, from: process.cwd() });
    } catch (error) {
      fail(error);
    }
  }
  const replayed = (spec: BackendSpec): BackendSpec => (options.bare ? bareSpec(spec) : spec);
  let contenders: ReturnType<typeof resolveBackendContenders> = [];
  let reference: (typeof contenders)[number] | undefined;
  try {
    // An unknown reference or a bad option of it is the user's to fix: a sentence, not a trace.
    contenders = resolveBackendContenders(graded.map((name) => replayed({ name, options: {} })));
    [reference] = resolveBackendContenders([replayed(options.reference ?? DEFAULT_REFERENCE)]);
  } catch (error) {
    fail(error);
  }
  const replay = await replaySuite(traces, contenders, reference!, {
    repeat: options.repeat,
    onStart: options.quiet ? undefined : (backend, trace) => console.error(`replaying ${trace} on ${backend}`),
  }).catch(fail);
  const results: GradeResults = { kind: 'heaplab-grade', backends: graded, tests, replay, passed: gradePassed(tests, replay, graded) };
  textOut(options.json)(reportCard(results, textWidth(options.json)));
  if (options.json !== undefined) writeJsonOutput(options.json, results);
  if (!results.passed) process.exitCode = 2;
}

/** Adds `grade` to `program`. */
export function addGradeCommand(program: Command): void {
  addBackendModuleOption(program.command('grade'))
    .description(
      "grade a backend from outside heaplab: the test kit's conformance and multi-worker suites, a replay of heaplab's trace set and its " +
        'score, as a report card; status 0 only when everything passed',
    )
    .option('-b, --backend <name>', 'a backend of the modules to grade; repeat for more (default: every backend they export)', collectName)
    .option('--traces <path>', "a trace file or directory to replay (default: heaplab's own trace set)")
    .option('--reference <spec>', `the backend whose throughput counts as full marks (default ${DEFAULT_REFERENCE.name})`, parseReferenceOption)
    .option('--repeat <n>', 'timed passes per trace', parsePositiveInteger, DEFAULT_REPLAY_REPEAT)
    .option('--no-suites', "skip the test kit's suites (replay and score only)")
    .option(
      '--bare',
      "replay the algorithm alone: every locked backend, the reference too, without core's thread cache (tcache=false), which otherwise serves most small requests itself",
      false,
    )
    .option('--json <file>', 'also write the report card as JSON (- for stdout, the card then on stderr)')
    .option('-q, --quiet', 'no progress lines', false)
    .addHelpText(
      'after',
      helpNote(
        'Needs @heaplab/test-kit and vitest installed beside the backend (the package heaplab new-backend writes has them). See docs/write-a-backend.md.',
      ),
    )
    .action(gradeCommand);
}
