/**
 * The `heaplab` command line:
 *
 *   heaplab bench [<workload>|all] --backend <spec|all> [--backend <spec> ...]
 *           --threads 1,2 --duration 2 --json FILE --report FILE
 *   heaplab report <files...> --out FILE
 *   heaplab backends
 *   heaplab map --backend <spec|all> --workload W --at 25%,50%,100% --out DIR [--html]
 *   heaplab stats --backend <spec> --workload W [--json FILE]
 *   heaplab trace record --workload W --out FILE [--backend <spec>] [--threads N]
 *   heaplab trace make --out DIR
 *   heaplab replay <files or directories...> --backend <spec|all> --reference tlsf --repeat 3 [--json FILE]
 *   heaplab new-backend <name> [--dir <parent>] [--packages <dir>]
 *   heaplab grade --backend-module <path|package> [--backend name] [--traces PATH] [--json FILE]
 *   heaplab serve [--port 8080] [--host 127.0.0.1]
 *
 * Every command that takes backends also takes `--backend-module <path|package>` (and
 * `HEAPLAB_BACKEND_MODULES`): backends from outside heaplab (backend-module-option.ts).
 *
 * The workloads, their help lines and their output formats come from the workload list.
 * Progress goes to stderr, results to stdout. Bad arguments exit with status 1; a run in
 * which a row failed, with status 2.
 */

import { mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

import { AllocError, type BackendDescriptor, type BackendOptionSpec, loadedBackendModules } from '@heaplab/core';
import { Argument, Command, Help, Option } from 'commander';

import { availableBackends, type BackendChoice, discoverBackends, resolveBackendContenders } from '../contenders/backends.js';
import { ALL_BASELINES, BASELINE_NAMES, type BaselineName, baselineContenders, type Contender } from '../contenders/contender.js';
import { writeReport } from '../report/html-report.js';
import { type BenchResults, rowsOf } from '../report/results.js';
import { summary } from '../report/summary.js';
import { textWidthOf, wrapText } from '../report/text-table.js';
import { heapTooSmall } from '../run/heap-size.js';
import { createProgress, silentProgress } from '../run/progress.js';
import { countSteps, runBench } from '../run/run-bench.js';
import type { BenchSettings, Workload } from '../run/workload.js';
import { ALL_EFFICIENCY_TRIALS, EFFICIENCY_TRIALS } from '../workloads/heap-efficiency/workload.js';
import { ALL, selectWorkloads, WORKLOAD_LIST } from '../workloads/index.js';
import { addBackendModuleOption } from './backend-module-option.js';
import { ALL_BACKENDS, parseBackendOption } from './backend-option.js';
import { helpAfter, helpList, helpNote, wrapped } from './help-text.js';
import { printStatus, statusText, textOut, textWidth, writeJsonOutput } from './json-output.js';
import { checkOutputPath } from './output-path.js';
import { heaplabVersion } from '../report/provenance.js';
import { parseMoments, parseTarget } from './inspect-options.js';
import { mapCommand } from './map-command.js';
import { addNewBackendCommand } from './new-backend-command.js';
import { addGradeCommand } from './grade-command.js';
import { DEFAULT_MAP_HEAP_BYTES, DEFAULT_MAP_ITERATIONS, mapTargets } from '../inspect/heap-moments.js';
import { statsCommand } from './stats-command.js';
import { addReplayCommand } from './replay-command.js';
import { addReportCommand } from './report-command.js';
import { addServeCommand } from './serve-command.js';
import { addTraceCommand } from './trace-command.js';
import { parseBaselines, parseDuration, parseHeapMiB, parseIterations, parsePositiveInteger, parseThreadList } from './options.js';

/** Timed runs per row, when `--repeat` is not given. */
export const DEFAULT_REPEAT = 3;
/** The same under `bench all`, which is a tour of every workload at short durations. */
export const ALL_REPEAT = 1;
/** Seconds per timed run, and under `bench all`, which runs every workload and variant once in two and a half to four and a half minutes on two cores. */
export const DEFAULT_DURATION = 2;
export const ALL_DURATION = 0.2;
/**
 * The baselines of `bench all` when none are named: @thi.ng/malloc's free walks its live
 * blocks, which on the workloads that keep many took a quarter of the tour (alloc-test's
 * set-up alone over ten seconds at two threads); name it to see it.
 */
export const TOUR_BASELINES: readonly BaselineName[] = ['system', 'bump', 'native'];

/** The seed of the workloads that draw random numbers, when none is given. */
export const DEFAULT_SEED = 1;

/** The stdout formats: the summary table, and those the workloads offer. */
const FORMATS = new Map<string, string>([['table', 'the summary table'], ...WORKLOAD_LIST.flatMap((workload) => Object.entries(workload.rawFormats ?? {}))]);

interface BenchOptions {
  /** Undefined when `--backend` was not given: every backend. */
  backend?: BackendChoice[];
  /** Undefined when not given: every baseline, or `TOUR_BASELINES` under `bench all`. */
  baselines?: BaselineName[];
  threads: number[];
  duration?: number;
  /** Undefined when not given: 3, or 1 under `bench all`. */
  repeat?: number;
  interleave: boolean;
  /** Undefined when neither --warmup nor --no-warmup was given: on, or off under `bench all`. */
  warmup?: boolean;
  fill: 'memset' | 'bytes';
  verify: boolean;
  /** Undefined when neither --isolate nor --no-isolate was given: on, or off under `bench all`. */
  isolate?: boolean;
  trials?: number;
  seed: number;
  heapMib: number;
  json?: string;
  report?: string;
  format: string;
  quiet: boolean;
}

/** The values an option takes, as a listing shows them: `a | b | c`, `true | false`, `0..64`. */
function optionValues(option: BackendOptionSpec): string {
  switch (option.kind) {
    case 'boolean':
      return 'true | false';
    case 'integer':
      return `${option.min}..${option.max}`;
    case 'enum':
      return option.values.join(' | ');
  }
}

/**
 * A backend as `heaplab backends` lists it, its texts wrapped to `width` columns; one loaded
 * from a module outside heaplab (`--backend-module`) says which.
 */
function describeBackend(descriptor: BackendDescriptor, width: number): string {
  const lines = [`${descriptor.name}  (${descriptor.concurrency})`, ...wrapped(descriptor.summary, 4, width)];
  if (loadedBackendModules().includes(descriptor.moduleUrl)) lines.push(`    from ${fileURLToPath(descriptor.moduleUrl)}`);
  for (const option of descriptor.options) {
    lines.push(`    ${option.name} {${optionValues(option)}}  default ${String(option.default)}`);
    lines.push(...wrapped(option.description, 8, width));
  }
  if (descriptor.options.length === 0) lines.push('    (no options)');
  return lines.join('\n');
}

async function listBackends(): Promise<void> {
  const { backends, unavailable } = await availableBackends();
  console.log('backends (--backend name or name:option=value,...; one spec per --backend):\n');
  const width = textWidthOf(process.stdout);
  console.log(backends.map((descriptor) => describeBackend(descriptor, width)).join('\n\n'));
  for (const missing of unavailable) console.log(`\n${wrapText(`not available: ${missing.package}: ${missing.reason}`, width)}`);
  console.log(`\n${wrapText(`baselines (--baselines): ${BASELINE_NAMES.join(', ')}`, width)}`);
}

/** The lines of `--format format` (not `table`), from each workload that ran and offers it. */
function rawOutput(results: BenchResults, format: string): string[] {
  return WORKLOAD_LIST.flatMap((workload) =>
    workload.rawOutput !== undefined && workload.rawFormats?.[format] !== undefined
      ? workload.rawOutput(
          rowsOf(results, workload).filter((row) => row.error === undefined),
          format,
        )
      : [],
  );
}

async function bench(choice: string, options: BenchOptions, command: Command): Promise<void> {
  const workloads = selectWorkloads(choice);
  if (options.format !== 'table' && !workloads.some((workload) => workload.rawFormats?.[options.format] !== undefined)) {
    // Checked before anything runs: a run whose stdout would be empty is a mistake in the command.
    const offering = WORKLOAD_LIST.filter((workload) => workload.rawFormats?.[options.format] !== undefined).map((workload) => workload.name);
    command.error(`error: --format ${options.format} applies to ${offering.join(', ')} only, not to ${choice}; use --format table (the default) or --json`, {
      exitCode: 1,
    });
  }
  await discoverBackends();
  let contenders: Contender[];
  try {
    contenders = [
      ...resolveBackendContenders(options.backend ?? [ALL_BACKENDS], { variants: choice === ALL }),
      ...uniqueByLabel((options.baselines ?? (choice === ALL ? TOUR_BASELINES : ALL_BASELINES)).flatMap(baselineContenders)),
    ];
  } catch (error) {
    if (error instanceof AllocError) command.error(`error: ${error.message}`, { exitCode: 1 });
    throw error;
  }
  const settings: BenchSettings = {
    threads: options.threads,
    durationSeconds: options.duration ?? (choice === ALL ? ALL_DURATION : DEFAULT_DURATION),
    repeat: options.repeat ?? (choice === ALL ? ALL_REPEAT : DEFAULT_REPEAT),
    warmup: options.warmup ?? choice !== ALL,
    ...(options.interleave ? { interleave: true } : {}),
    fill: options.fill,
    verify: options.verify,
    heapBytes: options.heapMib * 1024 * 1024,
    isolate: options.isolate ?? choice !== ALL,
    ...(options.trials !== undefined ? { trials: options.trials } : {}),
    seed: options.seed,
    inAll: choice === ALL,
  };
  checkOutputPath(command, '--json', options.json, 'file');
  checkOutputPath(command, '--report', options.report, 'file');
  const tooSmall = heapTooSmall(workloads, contenders, settings);
  if (tooSmall.length > 0) command.error(`error: the heap is too small:\n  ${tooSmall.join('\n  ')}`, { exitCode: 1 });
  if (options.baselines !== undefined) {
    // A baseline asked for by name and left out of a workload is said, not silently dropped.
    for (const workload of workloads) {
      const skipped = contenders.filter((contender) => contender.kind !== 'heaplab' && !workload.appliesTo(contender));
      if (skipped.length > 0)
        printStatus(`note: ${workload.name} has no row for ${skipped.map((contender) => contender.label).join(', ')}: not a baseline it applies to`);
    }
  }
  const cores = availableParallelism();
  const tooMany = settings.threads.filter((threads) => threads > cores);
  if (tooMany.length > 0) {
    printStatus(`warning: this machine has ${cores} cores; rows with ${tooMany.join(', ')} threads measure threads taking turns, not running at once`);
  }
  const progress = options.quiet ? silentProgress : createProgress(countSteps(workloads, contenders, settings));
  const results = await runBench(workloads, contenders, settings, progress);
  progress.done();
  const print = textOut(options.json);
  if (options.format === 'table') print(summary(results, textWidth(options.json)));
  else for (const line of rawOutput(results, options.format)) print(line);
  if (options.json !== undefined) writeJsonOutput(options.json, results);
  if (options.report !== undefined) {
    mkdirSync(dirname(options.report), { recursive: true });
    const files = await writeReport(results, options.report);
    printStatus(`wrote ${files.join(', ')}`);
  }
  // A native row fails where there is no C compiler or allocator library; that says nothing about heaplab.
  const failed = WORKLOAD_LIST.some((workload) => rowsOf(results, workload).some((row) => row.error !== undefined && row.kind !== 'native'));
  if (failed) process.exitCode = 2;
}

/** Each contender once (`native,native:glibc` names glibc twice). */
function uniqueByLabel(contenders: Contender[]): Contender[] {
  const seen = new Set<string>();
  return contenders.filter((contender) => !seen.has(contender.label) && seen.add(contender.label) !== undefined);
}

/** `bench --help`'s list of workloads, from the workload list, `width` columns wide. */
function workloadHelp(workloads: readonly Workload[], width: number): string {
  const shortened = workloads.filter((workload) => workload.allNote !== undefined).map((workload) => `${workload.name} ${workload.allNote}`);
  const allLine =
    `every workload above in two and a half to four and a half minutes on two cores: ${ALL_DURATION} s per timed run, one run per row, no warm-up, one-thread rows in this ` +
    `process; each backend's variants (basic's strategies, mimalloc's secure mode) as rows of their own; ${shortened.join('; ')}`;
  return helpList([...workloads.map((workload) => [workload.name, workload.summary] as const), [ALL, allLine]], width);
}

/** The `heaplab` program (exported for tests that parse without a process). */
export function makeProgram(): Command {
  const program = new Command('heaplab')
    .description('heaplab: compare memory allocators over one SharedArrayBuffer heap')
    .showHelpAfterError('(run with --help for usage)')
    .version(heaplabVersion(), '-V, --version', "print heaplab's version")
    // Before any subcommand, which copies these: help laid out to the width of heaplab's other
    // text (the terminal's, or TEXT_WIDTH into a pipe; commander's own is 80 there), and errors
    // wrapped on a terminal as status lines are, one line into a pipe.
    .configureOutput({
      getOutHelpWidth: () => textWidthOf(process.stdout),
      getErrHelpWidth: () => textWidthOf(process.stderr),
      outputError: (text, write) => write(statusText(text, process.stderr)),
    })
    .addHelpText(
      'after',
      helpNote(
        'Exit status: 0 when everything ran (for grade: and passed); 1 for a mistake in the command line, or a file or module that cannot be read; 2 when a row, a trace or a suite failed (the output says which and why).',
      ),
    )
    // Commander's help does not say which options a command cannot run without.
    .configureHelp({
      optionDescription: (option) => {
        const described = new Help().optionDescription(option);
        return option.mandatory ? `(required) ${described}` : described;
      },
    });
  addBackendModuleOption(
    program
      .command('bench')
      .description('run benchmarks over backends and baselines, then print a summary table')
      .addHelpText(
        'after',
        helpAfter((width) => `\nWorkloads:\n${workloadHelp(WORKLOAD_LIST, width)}`),
      )
      .addArgument(new Argument('[workload]', 'what to run').choices([...WORKLOAD_LIST.map((workload) => workload.name), ALL]).default(ALL))
      .option(
        '-b, --backend <spec>',
        `a backend spec (tlsf, or basic:strategy=best-fit with its options after a colon, separated by commas), or ${ALL_BACKENDS}; ` +
          'repeat the option for more backends (default: all; in bench all, all adds a row for each other value of an option that picks ' +
          "an algorithm: basic's strategies, mimalloc's secure mode)",
        parseBackendOption,
      ),
  )
    .option('--baselines <list>', `baselines: ${BASELINE_NAMES.join(', ')}, all or none (default: all; in all, ${TOUR_BASELINES.join(', ')})`, parseBaselines)
    .option('-t, --threads <list>', 'thread counts separated by commas', parseThreadList, [1, 2])
    .option('-d, --duration <seconds>', `seconds per timed run (default ${DEFAULT_DURATION}; ${ALL_DURATION} in all)`, parseDuration)
    .option(
      '--repeat <n>',
      `timed runs per row; the table shows their median, min and max (default ${DEFAULT_REPEAT}; ${ALL_REPEAT} in all)`,
      parsePositiveInteger,
    )
    .option(
      '--interleave',
      'run the timed runs of the threaded workloads in rounds, one run of every row per round, so rows compared in a ratio meet the same moments of a machine whose speed drifts',
      false,
    )
    .option('--warmup', "a shorter run before each row's timed runs, its figures dropped (the default, except in all)")
    .option('--no-warmup', 'no warm-up run')
    .addOption(
      new Option('--fill <fill>', "how the native C ports fill blocks: memset (as heaplab's loops) or bytes (p[i] = i, as mimalloc-bench's programs)")
        .choices(['memset', 'bytes'])
        .default('memset'),
    )
    .option('--verify', "check every block's bytes before freeing it (the workloads whose loops fill their blocks)", false)
    .option('--isolate', 'run each one-thread row in a process of its own, so no row inherits the JIT state of the rows before (the default, except in all)')
    .option('--no-isolate', 'run one-thread rows in this process, one after another')
    .option('--trials <n>', `heap-efficiency trials (default ${EFFICIENCY_TRIALS}; ${ALL_EFFICIENCY_TRIALS} in all)`, parsePositiveInteger)
    .option('--seed <n>', 'seed of heap-efficiency', parsePositiveInteger, DEFAULT_SEED)
    .option(
      '--heap-mib <n>',
      'heap of each timed run, in MiB (multiple of 4; mid-large and mstress take more when their threads need it; arceos, robson and heap-efficiency size their own)',
      parseHeapMiB,
      64,
    )
    .option('--json <file>', 'write every figure as JSON (with the upstream glibc JSON of each run); - for stdout, the table then on stderr')
    .option('--report <file>', 'write an HTML report with charts, and each chart as an SVG beside it')
    .addOption(
      new Option('--format <format>', `stdout: ${[...FORMATS].map(([name, help]) => `${name} (${help})`).join(', ')}`)
        .choices([...FORMATS.keys()])
        .default('table'),
    )
    .option('-q, --quiet', 'no progress indicator', false)
    .action(bench);
  addReportCommand(program);
  addBackendModuleOption(program.command('backends').description('list the backends, their options and the baselines')).action(listBackends);
  addInspectOptions(
    addBackendModuleOption(
      program
        .command('map')
        .description('run a workload on each backend and draw its heap at moments of the run: one SVG per backend and moment, and map.json')
        .option(
          '-b, --backend <spec>',
          `a backend spec, or ${ALL_BACKENDS} (every backend that can be walked); repeat for more (default: all)`,
          parseBackendOption,
        ),
    )
      .requiredOption(
        '--at <list>',
        "moments, separated by commas: percentages of the run's allocator calls (25%,50%,100%) or fractions (0.25,0.5,1)",
        parseMoments,
      )
      .requiredOption('-o, --out <dir>', 'the directory to write <backend>-<at>.svg and map.json to')
      .option('--html', 'also write index.html, the maps side by side', false),
  ).action(mapCommand);
  addInspectOptions(
    addBackendModuleOption(
      program
        .command('stats')
        .description("run a workload to its end on one backend, then print its fragmentation figures and the backend's per-class tables")
        .requiredOption('-b, --backend <spec>', 'one backend spec', parseBackendOption),
    ).option('--json <file>', 'also write the figures and tables as JSON (- for stdout, the tables then on stderr)'),
  ).action(statsCommand);
  addTraceCommand(program);
  addReplayCommand(program);
  addNewBackendCommand(program);
  addGradeCommand(program);
  addServeCommand(program);
  return program;
}

/** The options `map` and `stats` share, and the list of what they run in the help. */
function addInspectOptions(command: Command): Command {
  const targets = mapTargets().map((target) => [target.name, target.summary] as const);
  return command
    .addHelpText(
      'after',
      helpNote(
        "The run is deterministic: one thread in this process, on a fresh heap, with a fixed number of iterations. map draws the heap at moments (--at: a share of the run's allocator calls); stats reads it at 100%, the heap as the workload left it (its final clean-up skipped). See docs/heap-maps.md.",
      ),
    )
    .addHelpText(
      'after',
      helpAfter((width) => `\nWorkloads:\n${helpList(targets, width)}`),
    )
    .requiredOption('-w, --workload <name>', 'what to run (listed below)', parseTarget)
    .option(
      '--heap-mib <n>',
      `heap of the run, in MiB (multiple of 4; default ${DEFAULT_MAP_HEAP_BYTES >>> 20}, or the size the workload's own runs take: the ArceOS tests size theirs)`,
      parseHeapMiB,
    )
    .option(
      '--iterations <n>',
      `iterations of a workload's loop (default ${DEFAULT_MAP_ITERATIONS}); for ArceOS's tests, at most this many of each test's steps`,
      parseIterations,
    )
    .option('--seed <n>', "recorded with the figures; the loops here draw from their workloads' own fixed seeds", parsePositiveInteger, DEFAULT_SEED);
}
