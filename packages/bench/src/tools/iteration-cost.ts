/**
 * Where one bench-malloc-thread iteration's time goes, for one backend (or one larson
 * operation's, with the workload's name after the seconds). A measurement, not a test: it
 * prints figures and asserts nothing.
 *
 *   pnpm build && node packages/bench/dist/tools/iteration-cost.js [backend-spec] [seconds] [glibc-thread|larson]
 *
 * The same one-thread loop runs once per variant, each in a process of its own (see
 * src/run/isolated-run.ts for why), over:
 * 1. the bump allocator: the loop, the fill and a pointer bump (larson, whose blocks live on,
 *    cannot run on a bump region: its loop alone, over an allocator that hands out 1 KiB
 *    steps of a 1 MiB region and frees nothing, `loopOnly`);
 * 2. the backend instance, called directly (`backendInstance.allocate` / `release`): adds the
 *    backend's own malloc and free;
 * 3. for a locked backend, the heap's `malloc` / `free` with its thread cache off
 *    (`tcache=false`): adds core's checks and counts and the heap lock around every call;
 * 4. the heap's `malloc` / `free` as the spec configures it, as the benchmark calls them: for a
 *    locked backend with its thread cache (docs/thread-cache.md), for a thread-safe one the
 *    facade's checks and counts.
 * The differences between them are each layer's share of an iteration. Each variant prints
 * wall and CPU nanoseconds per iteration (CPU: the child process's, every thread of it). A
 * backend from outside heaplab is named by `HEAPLAB_BACKEND_MODULES`, which each process
 * inherits and loads.
 */

import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import { type BackendSpec, findBackend, MiB, parseBackendSpec } from '@heaplab/core';

import { loadBackendModules } from '../cli/backend-module-option.js';
import { createBackendHeap, resolveBackendContenders } from '../contenders/backends.js';
import { BumpAllocator, MIN_BUMP_REGION_BYTES } from '../contenders/bump-allocator.js';
import { type AddressAllocator, loopMemory } from '../run/address-allocator.js';
import { runGlibcThreadLoop } from '../workloads/glibc-thread/loop.js';
import { buildRequestTables } from '../workloads/glibc-thread/request-tables.js';
import { glibcThreadWorkload } from '../workloads/glibc-thread/workload.js';
import { larsonRunState, runLarsonLoop } from '../workloads/larson/loop.js';
import { larsonWorkload } from '../workloads/larson/workload.js';

const VARIANTS = ['loop and fill (bump)', 'backend, called directly', 'heap, no thread cache', 'heap malloc/free'] as const;
/** The workloads whose one-thread loop the tool runs; only larson's is chosen by name. */
const WORKLOAD_NAMES = [glibcThreadWorkload.name, larsonWorkload.name];

/**
 * Larson's loop alone: blocks are 1 KiB steps round a 1 MiB region at `start` (the loop writes
 * two bytes of each), and nothing is freed, so the figure is the loop's own work.
 */
function loopOnly(start: number): AddressAllocator {
  let next = 0;
  return {
    malloc: () => {
      next = (next + 1024) & 0xf_ffff;
      return start + next;
    },
    free: () => {},
    realloc: () => {
      throw new Error('the larson loop never resizes');
    },
  };
}
/** The variant that only a locked backend has. */
const UNCACHED_VARIANT = 2;

/** Runs variant `index` here and prints its wall and CPU nanoseconds per iteration ('-' when it does not apply). */
async function runVariant(index: number, spec: BackendSpec, seconds: number, larson: boolean): Promise<void> {
  await loadBackendModules([]);
  if (index === UNCACHED_VARIANT && findBackend(spec.name).concurrency !== 'locked') {
    process.stdout.write('-\n');
    return;
  }
  const options = index === UNCACHED_VARIANT ? { ...spec.options, tcache: false } : spec.options;
  const heap = createBackendHeap({ ...spec, options }, 64 * MiB);
  heap.prefault();
  let allocator: AddressAllocator = heap;
  if (index === 0) {
    allocator = larson ? loopOnly(heap.arenaStart) : new BumpAllocator(heap.arenaStart, heap.arenaStart + 4 * MIN_BUMP_REGION_BYTES);
  } else if (index === 1) {
    const backend = heap.backendInstance;
    allocator = {
      malloc: (size) => backend.allocate(size, 8),
      free: (address) => backend.release(address),
      realloc: () => {
        throw new Error('the loops here never resize');
      },
    };
  }
  const limits = { stop: new Int32Array(1), deadline: performance.now() + seconds * 1000, maxIterations: Infinity };
  const cpuStarted = process.cpuUsage();
  const outcome = larson
    ? runLarsonLoop(allocator, loopMemory(heap.buffer), limits, { threadIndex: 0, threads: 1, verify: false, runState: larsonRunState(1) })
    : runGlibcThreadLoop(allocator, loopMemory(heap.buffer), buildRequestTables(), limits, false);
  const cpu = process.cpuUsage(cpuStarted);
  process.stdout.write(`${(outcome.seconds * 1e9) / outcome.iterations} ${((cpu.user + cpu.system) * 1e3) / outcome.iterations}\n`);
}

/**
 * Runs every variant in a child process and prints the table. The spec is parsed and
 * normalized here, once; each child gets the result as JSON.
 * @throws AllocError for an unknown backend or bad options
 */
async function runAll(specText: string, seconds: number, workload: string): Promise<void> {
  await loadBackendModules([]);
  const [row] = resolveBackendContenders([parseBackendSpec(specText)]);
  const label = row!.label;
  const specJson = JSON.stringify(row!.spec);
  const self = fileURLToPath(import.meta.url);
  const results: (VariantCost | null)[] = [];
  const next = (index: number): void => {
    if (index === VARIANTS.length) {
      print(label, results, workload === larsonWorkload.name);
      return;
    }
    let output = '';
    const child = fork(self, [VARIANT_FLAG, String(index), String(seconds), specJson, workload], { stdio: ['ignore', 'pipe', 'inherit', 'ipc'] });
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', (error) => {
      console.error(`iteration-cost: variant '${VARIANTS[index]}' could not run: ${error.message}`);
      process.exitCode = 1;
    });
    // 'close', not 'exit': only then has all of the child's output been read.
    child.on('close', (code, signal) => {
      const text = output.trim();
      const [wall, cpu] = text.split(' ').map(Number);
      const valid = text === '-' || (Number.isFinite(wall) && Number.isFinite(cpu));
      if (code !== 0 || !valid) {
        const how = signal !== null ? `was killed by ${signal}` : code !== 0 ? `exited with code ${code}` : `printed '${text}'`;
        console.error(`iteration-cost: variant '${VARIANTS[index]}' ${how}`);
        process.exitCode = 1;
        return;
      }
      results.push(text === '-' ? null : { wall: wall!, cpu: cpu! });
      next(index + 1);
    });
  };
  next(0);
}

/** One variant's nanoseconds per iteration. */
interface VariantCost {
  wall: number;
  cpu: number;
}

function print(label: string, costs: (VariantCost | null)[], larson: boolean): void {
  // Two lines, so the table fits a terminal 80 columns wide.
  console.log(`${larson ? larsonWorkload.name : 'bench-malloc-thread'}, one thread, ${label}: nanoseconds per ${larson ? 'operation' : 'iteration'}`);
  console.log('(wall time, and the CPU time of the process that ran the variant)');
  let previous: VariantCost | null = null;
  VARIANTS.forEach((variant, index) => {
    const name = larson && index === 0 ? 'the loop alone' : variant;
    const cost = costs[index] ?? null;
    if (cost === null) {
      console.log(`  ${name.padEnd(26)}      -  (a thread-safe backend takes no heap lock)`);
      return;
    }
    const added = previous === null ? '' : `  (${cost.wall >= previous.wall ? '+' : ''}${(cost.wall - previous.wall).toFixed(1)} ns)`;
    console.log(
      `  ${name.padEnd(26)} ${cost.wall.toFixed(1).padStart(6)} ns  ${(1e3 / cost.wall).toFixed(1).padStart(5)} M/s  cpu ${cost.cpu.toFixed(1).padStart(6)} ns${added}`,
    );
    previous = cost;
  });
}

/** How the tool starts itself on one variant: `--variant <index> <seconds> <spec as JSON>`. */
const VARIANT_FLAG = '--variant';

const fail = (error: unknown): never => {
  console.error(`iteration-cost: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
};

const args = process.argv.slice(2);
if (args[0] === VARIANT_FLAG) {
  const [, variant, secondsArgument, specJson, workload] = args;
  await runVariant(Number(variant), JSON.parse(specJson!) as BackendSpec, Number(secondsArgument), workload === larsonWorkload.name).catch(fail);
} else {
  const [spec = 'mimalloc', secondsArgument = '2', workload = glibcThreadWorkload.name] = args;
  const seconds = Number(secondsArgument);
  if (!(seconds > 0) || !WORKLOAD_NAMES.includes(workload)) {
    console.error(`usage: iteration-cost [backend-spec] [seconds > 0] [${WORKLOAD_NAMES.join('|')}]; got '${secondsArgument}' '${workload}'`);
    process.exit(1);
  }
  await runAll(spec, seconds, workload).catch(fail);
}
