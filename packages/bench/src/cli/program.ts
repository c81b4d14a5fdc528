/**
 * The `heaplab` command line:
 *
 *   heaplab bench [glibc-thread|heap-efficiency|alloc-pairs|random-free|all] --backend <name|all>
 *           --threads 1,2 --duration 2 --json FILE --report FILE
 *   heaplab backends
 *
 * Progress goes to stderr, results to stdout. Bad arguments exit with status 1.
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { AllocError, type BackendDescriptor } from '@heaplab/core';
import { Argument, Command } from 'commander';

import { availableBackends } from '../contenders/backends.js';
import {
  parseBackendList,
  parseBaselines,
  parseDuration,
  parseHeapMiB,
  parsePositiveInteger,
  parseThreadList,
} from './options.js';
import { BASELINE_NAMES, type BaselineName } from '../contenders/contender.js';
import { DEFAULT_EFFICIENCY_SEED, EFFICIENCY_HEAP_BYTES, EFFICIENCY_TRIALS } from '../workloads/heap-efficiency/workload.js';
import { createProgress, silentProgress } from '../run/progress.js';
import { writeReport } from '../report/html-report.js';
import type { BenchResults } from '../report/results.js';
import { countSteps, resolveBackends, runBench, type WorkloadName, WORKLOADS } from '../run/run-bench.js';
import { summary } from '../report/summary.js';

/** Trials of heap efficiency inside `bench all`, so the whole comparison takes minutes. */
const ALL_EFFICIENCY_TRIALS = 30;

interface BenchOptions {
  backend: string[];
  baselines: BaselineName[];
  threads: number[];
  duration: number;
  verify: boolean;
  isolate: boolean;
  trials?: number;
  seed: number;
  heapMib: number;
  json?: string;
  report?: string;
  format: 'table' | 'mimalloc' | 'glibc';
  quiet: boolean;
}

function describeBackend(descriptor: BackendDescriptor): string {
  const lines = [`${descriptor.name}  (${descriptor.concurrency})  ${descriptor.summary}`];
  for (const option of descriptor.options) {
    const values = option.values !== undefined ? ` {${option.values.join(' | ')}}` : '';
    lines.push(`    ${option.name}${values}  default ${String(option.default)}: ${option.description}`);
  }
  if (descriptor.options.length === 0) lines.push('    (no options)');
  return lines.join('\n');
}

async function listBackends(): Promise<void> {
  const { backends, unavailable } = await availableBackends();
  console.log('backends (use as --backend name or name:option=value,...):\n');
  console.log(backends.map(describeBackend).join('\n\n'));
  for (const missing of unavailable) console.log(`\nnot available: ${missing.package}: ${missing.reason}`);
  console.log(`\nbaselines (--baselines): ${BASELINE_NAMES.join(', ')}`);
}

function printRaw(results: BenchResults, format: 'mimalloc' | 'glibc'): void {
  for (const row of results.glibcThread) {
    if (row.error !== undefined) continue;
    console.log(`# ${row.label}, ${row.threads} thread${row.threads === 1 ? '' : 's'}`);
    console.log(format === 'mimalloc' ? row.mimallocBenchLine : JSON.stringify(row.upstream));
  }
}

async function bench(workload: WorkloadName, options: BenchOptions, command: Command): Promise<void> {
  let contenders;
  try {
    contenders = await resolveBackends(options.backend);
  } catch (error) {
    if (error instanceof AllocError) command.error(`error: ${error.message}`, { exitCode: 1 });
    throw error;
  }
  const request = {
    workload,
    backends: options.backend,
    baselines: options.baselines,
    threads: options.threads,
    durationSeconds: options.duration,
    verify: options.verify,
    heapBytes: options.heapMib * 1024 * 1024,
    isolate: options.isolate,
    trials: options.trials ?? (workload === 'all' ? ALL_EFFICIENCY_TRIALS : EFFICIENCY_TRIALS),
    seed: options.seed,
    efficiencyHeapBytes: EFFICIENCY_HEAP_BYTES,
  };
  const progress = options.quiet ? silentProgress : createProgress(countSteps(request, contenders.length));
  const results = await runBench(request, contenders, progress);
  progress.done();
  if (options.format === 'table') console.log(summary(results));
  else printRaw(results, options.format);
  if (options.json !== undefined) {
    mkdirSync(dirname(options.json), { recursive: true });
    writeFileSync(options.json, `${JSON.stringify(results, null, 2)}\n`);
    console.error(`wrote ${options.json}`);
  }
  if (options.report !== undefined) {
    mkdirSync(dirname(options.report), { recursive: true });
    const files = await writeReport(results, options.report);
    console.error(`wrote ${files.join(', ')}`);
  }
  const failed = [...results.glibcThread, ...results.allocPairs, ...results.heapEfficiency, ...results.randomFree].some(
    (row) => row.error !== undefined && row.kind !== 'native',
  );
  if (failed) process.exitCode = 2;
}

/** The `heaplab` program (exported for tests that parse without a process). */
export function makeProgram(): Command {
  const program = new Command('heaplab')
    .description('heaplab: compare memory allocators over one SharedArrayBuffer heap')
    .showHelpAfterError('(run with --help for usage)');
  program
    .command('bench')
    .description(
      'run benchmarks over backends and baselines, then print a summary table\n' +
        '  glibc-thread     glibc bench-malloc-thread (mimalloc-bench glibc-thread), 1 thread in this thread, N in workers\n' +
        '  heap-efficiency  share of a 128 MiB heap usable before the first failure (Talc\'s method)\n' +
        '  alloc-pairs      alloc+free pairs per second, 1000 live blocks per thread\n' +
        '  random-free      ArceOS: 25,000 x 64 B and 7,500 x 520 B, freed in random order\n' +
        `  all              glibc-thread + heap-efficiency (${ALL_EFFICIENCY_TRIALS} trials unless --trials) + random-free`,
    )
    .addArgument(new Argument('[workload]', 'what to run').choices(WORKLOADS).default('all'))
    .option('-b, --backend <list>', "backend specs separated by commas (basic,tlsf or 'basic:strategy=best-fit'), or all", parseBackendList, ['all'])
    .option('--baselines <list>', `baselines: ${BASELINE_NAMES.join(', ')}, all or none`, parseBaselines, [...BASELINE_NAMES])
    .option('-t, --threads <list>', 'thread counts separated by commas', parseThreadList, [1, 2])
    .option('-d, --duration <seconds>', 'seconds per timed run', parseDuration, 2)
    .option('--verify', "check every block's bytes before freeing it (glibc-thread)", false)
    .option('--no-isolate', 'run one-thread rows in this process, one after another (by default each runs in a process of its own, so no row inherits the JIT state of the rows before)')
    .option('--trials <n>', `heap-efficiency trials (default ${EFFICIENCY_TRIALS}; ${ALL_EFFICIENCY_TRIALS} in all)`, parsePositiveInteger)
    .option('--seed <n>', 'seed of heap-efficiency and random-free', parsePositiveInteger, DEFAULT_EFFICIENCY_SEED)
    .option('--heap-mib <n>', 'heap size of glibc-thread and alloc-pairs runs, in MiB (multiple of 4)', parseHeapMiB, 64)
    .option('--json <file>', 'write every figure as JSON (with the upstream glibc JSON of each run)')
    .option('--report <file>', 'write an HTML report with charts, and each chart as an SVG beside it')
    .addOption(
      new Command().createOption('--format <format>', 'stdout: table, mimalloc (N iterations) or glibc (upstream JSON)').choices(['table', 'mimalloc', 'glibc']).default('table'),
    )
    .option('-q, --quiet', 'no progress indicator', false)
    .action(bench);
  program.command('backends').description('list the backends, their options and the baselines').action(listBackends);
  return program;
}
