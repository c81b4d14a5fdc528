import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { baselineContender, type Contender } from '../src/contenders/contender.js';
import { buildNativeProgram } from '../src/run/native-program.js';
import { runThreaded } from '../src/run/threaded-run.js';
import type { ThroughputRow } from '../src/run/throughput-rows.js';
import type { BenchMeta, RunContext } from '../src/run/workload.js';
import { readXmallocProgress, readXmallocStats, type XmallocParameters, xmallocRole, xmallocRunState } from '../src/workloads/xmalloc-test/loop.js';
import { parseXmallocOutput, runNativeXmalloc, XMALLOC_PROGRAM, xmallocArguments } from '../src/workloads/xmalloc-test/native.js';
import { xmallocLoop, xmallocWorkload } from '../src/workloads/xmalloc-test/workload.js';

/** Small batches and a short stack, so short runs wait on both sides and leave batches behind. */
const SMALL: XmallocParameters = { objectSize: 64, batchObjects: 256, stackLimit: 4 };
const HEAP_BYTES = 16 << 20;

/** An xmalloc-test run bounded by `maxIterations`, with the run state kept for its counters. */
async function xmallocRun(contender: Contender, threads: number, maxIterations: number, parameters: XmallocParameters = SMALL, heapBytes = HEAP_BYTES) {
  let state: SharedArrayBuffer | null = null;
  const loop = { ...xmallocLoop, runState: (count: number) => (state = xmallocRunState(count, parameters)) };
  const run = await runThreaded({ contender, loop, threads, durationSeconds: Infinity, maxIterations, verify: true, heapBytes });
  return { run, stats: readXmallocStats(state!) };
}

/** What `check()` reports of a heap nothing was allocated from. */
function emptyUsedBytes(contender: Contender): number {
  if (contender.kind !== 'heaplab') throw new Error('a heaplab backend only');
  const heap = createBackendHeap(contender.spec, HEAP_BYTES);
  try {
    return heap.check().usedBytes;
  } finally {
    heap.detach();
  }
}

const backend = (name: string): Contender => resolveBackendContenders([{ name, options: {} }])[0]!;

beforeAll(async () => {
  await discoverBackends();
});

describe('the xmalloc-test roles', () => {
  it('one thread does both; more split into producers (even indexes) and consumers (odd ones)', () => {
    expect(xmallocRole(0, 1)).toBe('both');
    expect([0, 1].map((index) => xmallocRole(index, 2))).toEqual(['producer', 'consumer']);
    expect([0, 1, 2].map((index) => xmallocRole(index, 3))).toEqual(['producer', 'consumer', 'producer']);
  });
});

describe('the xmalloc-test loop', () => {
  it.each(['basic', 'mimalloc'])('%s, 1 thread: makes and frees batches in turn, nothing remote, the heap as it was', async (name) => {
    const contender = backend(name);
    const { run, stats } = await xmallocRun(contender, 1, 10 * SMALL.batchObjects + 1);
    // Counted in whole batches: the eleventh batch passes the limit.
    expect(run.iterations).toBe(11 * SMALL.batchObjects);
    expect(stats.threads).toEqual([expect.objectContaining({ role: 'both', frees: run.iterations, remoteFrees: 0, allocated: run.iterations })]);
    expect(stats.drainedBatches).toBe(0);
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(emptyUsedBytes(contender));
  });

  it.each(['basic', 'mimalloc'])('%s, 2 threads: every free is of a block the producer allocated, and the heap ends empty', async (name) => {
    const contender = backend(name);
    const objects = 40 * SMALL.batchObjects;
    const { run, stats } = await xmallocRun(contender, 2, objects);
    const [producer, consumer] = stats.threads;
    expect(producer).toEqual(expect.objectContaining({ role: 'producer', frees: 0, allocated: objects }));
    expect(consumer).toEqual(expect.objectContaining({ role: 'consumer', frees: objects, remoteFrees: objects, allocated: 0 }));
    // The outcome counts frees only, as the original does.
    expect(run.perThreadIterations).toEqual([0, objects]);
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(emptyUsedBytes(contender));
  });

  it('3 threads: producers outlive the consumer, give up waiting for room, and the last thread out frees the stack', async () => {
    const contender = backend('mimalloc');
    const objects = 20 * SMALL.batchObjects;
    const { run, stats } = await xmallocRun(contender, 3, objects);
    expect(stats.threads.map((thread) => thread.role)).toEqual(['producer', 'consumer', 'producer']);
    expect(stats.threads[1]).toEqual(expect.objectContaining({ frees: objects, remoteFrees: objects }));
    // Two producers of 20 batches each, one consumer of 20, a stack of 4: some batches
    // could not be pushed (their producer freed them) and a full stack was left behind.
    expect(stats.unpushedBatches).toBeGreaterThanOrEqual(1);
    expect(stats.drainedBatches).toBe(SMALL.stackLimit);
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(emptyUsedBytes(contender));
  });

  it('@thi.ng/malloc, 2 threads: the same hand-off behind the shared lock', async () => {
    const { run, stats } = await xmallocRun(baselineContender('thi.ng'), 2, 8 * SMALL.batchObjects);
    expect(run.iterations).toBe(8 * SMALL.batchObjects);
    expect(stats.threads[1]!.remoteFrees).toBe(8 * SMALL.batchObjects);
  });

  it('a run stopped by its duration ends both sides and frees every block, the stack included', async () => {
    const contender = backend('mimalloc');
    // Workers started from the TypeScript sources take a good part of a second to start:
    // the run must end cleanly whether they did much or nothing before the flag.
    const run = await runThreaded({
      contender,
      loop: xmallocLoop,
      threads: 2,
      durationSeconds: 1,
      maxIterations: Infinity,
      verify: false,
      heapBytes: 64 << 20,
    });
    expect(run.check!.liveBlocks).toBe(0);
  });

  it('a producer that fails fails the run, and the consumer does not wait for it', async () => {
    // 64 KiB holds a batch block and a few hundred objects, not a whole batch.
    const failing = xmallocRun(baselineContender('thi.ng'), 2, 10 * 4096, { objectSize: 64, batchObjects: 4096, stackLimit: 100 }, 64 << 10);
    await expect(failing).rejects.toThrow(/thread 1 of 2: malloc\(64\) returned 0/);
  });

  it('tells a watcher when the threads start, with the run state and the heap, and when they end; the stack reads as it went', async () => {
    const contender = backend('mimalloc');
    let state: SharedArrayBuffer | null = null;
    const loop = { ...xmallocLoop, runState: (count: number) => (state = xmallocRunState(count, SMALL)) };
    const seen: string[] = [];
    let watched: SharedArrayBuffer | null = null;
    const objects = 20 * SMALL.batchObjects;
    await runThreaded({
      contender,
      loop,
      threads: 2,
      durationSeconds: Infinity,
      maxIterations: objects,
      verify: true,
      heapBytes: HEAP_BYTES,
      watch: {
        started(runState, heap) {
          watched = runState;
          seen.push(`started on ${heap?.backendName ?? 'no heap'}`);
        },
        ended() {
          seen.push(`ended at depth ${readXmallocProgress(watched!).depth}`);
        },
      },
    });
    expect(watched).toBe(state);
    expect(seen).toEqual(['started on mimalloc', 'ended at depth 0']);
    // 20 batches pushed and popped; each thread bumps both counts once more as it leaves.
    expect(readXmallocProgress(state!)).toEqual({ depth: 0, pushes: 22, pops: 22 });
  });

  it('refuses parameters it cannot run', () => {
    expect(() => xmallocRunState(2, { ...SMALL, batchObjects: 0 })).toThrow(/bad parameters/);
  });
});

describe('the xmalloc-test workload', () => {
  it('says so under the table when a row timed nothing', () => {
    const row = (threads: number, iterations: number): ThroughputRow => ({
      label: 'basic',
      kind: 'heaplab',
      threads,
      iterations,
      wallSeconds: 0.3,
      perSecond: iterations / 0.3,
      peakUsedBytes: null,
      peakFootprintBytes: null,
    });
    const context: RunContext = { meta: {} as BenchMeta, rowsOf: () => [] };
    const notes = xmallocWorkload.section([row(1, 1000), row(2, 0)], context).notes ?? [];
    expect(notes.filter((note) => note.includes('the run ended before every thread had started'))).toEqual([expect.stringContaining('basic with 2 threads')]);
  });

  it('names under the table the rows measured while the two CPUs were far apart', () => {
    const row = (label: string, lineRoundTripNs: number[]): ThroughputRow => ({
      label,
      kind: 'heaplab',
      threads: 2,
      iterations: 1000,
      wallSeconds: 0.3,
      perSecond: 1000 / 0.3,
      peakUsedBytes: null,
      peakFootprintBytes: null,
      lineRoundTripNs,
    });
    const context: RunContext = { meta: {} as BenchMeta, rowsOf: () => [] };
    const notes = xmallocWorkload.section([row('basic', [95, 110]), row('mimalloc', [102, 640])], context).notes ?? [];
    const far = notes.filter((note) => note.includes('far apart'));
    expect(far).toEqual([expect.stringContaining('mimalloc on 2 threads (102 and 640 ns)')]);
    expect(far[0]).not.toContain('basic');
  });

  it('applies to heaplab backends, thi.ng and native, not to system or bump', () => {
    expect(xmallocWorkload.appliesTo(backend('basic'))).toBe(true);
    expect(xmallocWorkload.appliesTo(baselineContender('thi.ng'))).toBe(true);
    expect(xmallocWorkload.appliesTo({ kind: 'native', label: 'native glibc', allocator: 'glibc' })).toBe(true);
    expect(xmallocWorkload.appliesTo(baselineContender('system'))).toBe(false);
    expect(xmallocWorkload.appliesTo(baselineContender('bump'))).toBe(false);
  });

  it('has its page, which names its parameters and its unit', () => {
    const page = fileURLToPath(new URL('../../../docs/workloads/xmalloc-test.md', import.meta.url));
    expect(existsSync(page)).toBe(true);
    const text = readFileSync(page, 'utf8');
    for (const fact of ['xmalloc-test -w N -t 5 -s 64', 'runState', 'frees per second', 'last thread out']) expect(text).toContain(fact);
  });
});

describe('the xmalloc-test C port', () => {
  const build = buildNativeProgram(XMALLOC_PROGRAM);
  if ('missing' in build) console.warn(`xmalloc-test native tests skipped: ${build.missing}`);
  const binary = 'binary' in build ? build.binary : '';
  /** The port's own lines, read. */
  const runPort = (threads: number) => {
    const output = spawnSync(binary, xmallocArguments(threads, 0.1, SMALL), { encoding: 'utf8' });
    expect(output.status).toBe(0);
    return parseXmallocOutput(output.stdout.split('\n').filter((line) => line !== '' && !line.startsWith('# ')));
  };

  it.runIf('binary' in build)('compiles without warnings under -Wall', () => {
    const source = fileURLToPath(new URL('../native/xmalloc-test.c', import.meta.url));
    const include = fileURLToPath(new URL('../native/', import.meta.url));
    const compiled = spawnSync(process.env['CC'] ?? 'cc', ['-O2', '-pthread', '-Wall', '-Wextra', '-fsyntax-only', '-I', include, source], {
      encoding: 'utf8',
    });
    expect(compiled.status).toBe(0);
    expect(compiled.stderr).toBe('');
  });

  it.runIf('binary' in build)('splits threads into producers and consumers as the TypeScript loop does', () => {
    const alone = runPort(1);
    expect(alone.frees).toBeGreaterThan(0);
    expect(alone.remoteFrees).toBe(0);
    const pair = runPort(2);
    expect(pair.remoteFrees).toBe(pair.frees);
    expect(pair.rtimeLine).toMatch(/^rtime: [\d.]+, free\/sec: [\d.]+ M$/);
    const three = runPort(3);
    expect(three.remoteFrees).toBe(three.frees);
  });

  it.runIf('binary' in build)('gives a row of frees per second', async () => {
    const row = await runNativeXmalloc({ kind: 'native', label: 'native glibc', allocator: 'glibc' }, 2, 0.1, SMALL);
    expect(row.error).toBeUndefined();
    expect(row.iterations).toBeGreaterThan(0);
    expect(row.perSecond).toBeCloseTo(row.iterations / row.wallSeconds);
  });

  it.runIf('binary' in build)('refuses bad arguments', () => {
    expect(spawnSync(binary, ['0', '1'], { encoding: 'utf8' }).status).not.toBe(0);
    expect(spawnSync(binary, ['1', '1', '64', '0', '4'], { encoding: 'utf8' }).status).not.toBe(0);
  });
});
