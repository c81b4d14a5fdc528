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
import { type LarsonParameters, larsonRunState, readLarsonStats } from '../src/workloads/larson/loop.js';
import { Lran2, LRAN2_MODULUS, LRAN2_STATE_WORDS } from '../src/workloads/larson/lran2.js';
import { LARSON_PROGRAM, larsonArguments, parseLarsonOutput, runNativeLarson } from '../src/workloads/larson/native.js';
import { larsonLoop, larsonWorkload } from '../src/workloads/larson/workload.js';

/** Small enough that a run of a few thousand operations spans many generations. */
const SMALL: LarsonParameters = { minSize: 8, maxSize: 200, chunksPerThread: 100, rounds: 5, seed: 4141 };
const GENERATION_OPS = SMALL.rounds * SMALL.chunksPerThread;
const HEAP_BYTES = 16 << 20;

/** A larson run bounded by `maxIterations`, with the run state kept for its counters. */
async function larsonRun(contender: Contender, threads: number, maxIterations: number, parameters: LarsonParameters = SMALL) {
  let state: SharedArrayBuffer | null = null;
  const loop = { ...larsonLoop, runState: (count: number) => (state = larsonRunState(count, parameters)) };
  const run = await runThreaded({ contender, loop, threads, durationSeconds: Infinity, maxIterations, verify: true, heapBytes: HEAP_BYTES });
  return { run, stats: readLarsonStats(state!) };
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

beforeAll(async () => {
  await discoverBackends();
});

describe("Gloger's lran2", () => {
  it('draws the same sequence from the same seed, in range, and carries on from a saved state', () => {
    const a = new Lran2(4141);
    const b = new Lran2(4141);
    const drawn = Array.from({ length: 1000 }, () => a.next());
    expect(Array.from({ length: 1000 }, () => b.next())).toEqual(drawn);
    for (const value of drawn) expect(value >= 0 && value < LRAN2_MODULUS && Number.isInteger(value)).toBe(true);
    expect(new Set(drawn).size).toBeGreaterThan(990);
    const words = new Int32Array(LRAN2_STATE_WORDS);
    a.save(words, 0);
    const resumed = new Lran2();
    resumed.load(words, 0);
    expect(Array.from({ length: 100 }, () => resumed.next())).toEqual(Array.from({ length: 100 }, () => a.next()));
    expect(new Lran2(1).next()).not.toBe(new Lran2(2).next());
  });
});

describe('the larson loop', () => {
  const backends = (): Contender[] =>
    resolveBackendContenders([
      { name: 'basic', options: {} },
      { name: 'mimalloc', options: {} },
    ]);

  it('one thread: continues on its own array, frees nothing remote, leaves the heap as it found it', async () => {
    for (const contender of backends()) {
      const { run, stats } = await larsonRun(contender, 1, 10 * GENERATION_OPS + 123);
      expect(run.iterations).toBe(10 * GENERATION_OPS + 123);
      expect(stats).toEqual([expect.objectContaining({ ops: run.iterations, remoteFrees: 0, takeovers: 0, generations: 10 })]);
      expect(run.check!.liveBlocks).toBe(0);
      expect(run.check!.usedBytes).toBe(emptyUsedBytes(contender));
    }
  });

  it.each(['basic', 'mimalloc'])('%s, 2 threads: every generation runs on an array the other thread released, and frees its blocks', async (name) => {
    const contender = resolveBackendContenders([{ name, options: {} }])[0]!;
    const generations = 12;
    const { run, stats } = await larsonRun(contender, 2, generations * GENERATION_OPS);
    expect(run.perThreadIterations).toEqual([generations * GENERATION_OPS, generations * GENERATION_OPS]);
    for (const thread of stats) {
      expect(thread.generations).toBe(generations);
      expect(thread.takeovers).toBe(generations);
      // The first free of a slot in each generation is of a block the other thread allocated:
      // with 500 draws over 100 slots, nearly every slot is drawn at least once.
      expect(thread.remoteFrees).toBeGreaterThan(generations * SMALL.chunksPerThread * 0.9);
      expect(thread.remoteFrees).toBeLessThanOrEqual(generations * SMALL.chunksPerThread);
    }
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(emptyUsedBytes(contender));
  });

  it('3 threads on mimalloc: arrays go round, nobody waits for good, the heap ends empty', async () => {
    const contender = resolveBackendContenders([{ name: 'mimalloc', options: {} }])[0]!;
    const { run, stats } = await larsonRun(contender, 3, 9 * GENERATION_OPS + 77);
    expect(run.iterations).toBe(3 * (9 * GENERATION_OPS + 77));
    // Two threads may pass arrays between themselves while the third lags; once they are
    // gone, the third takes their two arrays, then its own: so at least 2 of its 10
    // generations begin on another thread's array.
    for (const thread of stats) {
      expect(thread.takeovers).toBeGreaterThanOrEqual(2);
      expect(thread.takeovers).toBeLessThanOrEqual(10);
      expect(thread.remoteFrees).toBeGreaterThan(0);
    }
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(emptyUsedBytes(contender));
  });

  it('@thi.ng/malloc, 2 threads: the same hand-over behind the shared lock', async () => {
    const { run, stats } = await larsonRun(baselineContender('thi.ng'), 2, 4 * GENERATION_OPS);
    expect(run.iterations).toBe(8 * GENERATION_OPS);
    for (const thread of stats) expect(thread.remoteFrees).toBeGreaterThan(0);
  });

  it('a run stopped by its duration ends every thread, and frees every block', async () => {
    const contender = resolveBackendContenders([{ name: 'mimalloc', options: {} }])[0]!;
    // Workers started from the TypeScript sources take a good part of a second to start:
    // the run must end cleanly whether they did much or nothing before the flag.
    const run = await runThreaded({
      contender,
      loop: larsonLoop,
      threads: 2,
      durationSeconds: 1,
      maxIterations: Infinity,
      verify: false,
      heapBytes: 64 << 20,
    });
    expect(run.check!.liveBlocks).toBe(0);
  });

  it("times the run after every thread's warm-up, however slow the warm-up", async () => {
    // basic's first fit takes longer to warm 5000 chunks up than this run lasts, and a
    // worker started from the sources takes longer still to start: a clock started before
    // the warm-ups left each thread next to no time at all.
    const contender = resolveBackendContenders([{ name: 'basic', options: {} }])[0]!;
    const durationSeconds = 0.1;
    for (const threads of [1, 2]) {
      const run = await runThreaded({
        contender,
        loop: larsonLoop,
        threads,
        durationSeconds,
        maxIterations: Infinity,
        verify: false,
        heapBytes: 64 << 20,
      });
      // Not the whole duration to the millisecond: each thread's clock starts after the first
      // hand-over, which waits for the other thread, and on a loaded machine a thread woken
      // for it can wait some milliseconds for a core (CI once saw 44.6 ms of a 50 ms run).
      for (const seconds of run.threadSeconds) expect(seconds).toBeGreaterThanOrEqual(durationSeconds / 2);
      for (const iterations of run.perThreadIterations) expect(iterations).toBeGreaterThan(0);
      expect(run.check!.liveBlocks).toBe(0);
    }
  });

  it('a thread that fails fails the run, and does not leave the other waiting', async () => {
    // Each thread's warm-up takes about 10 MB of the 16 MiB heap: the second one cannot.
    const failing = larsonRun(baselineContender('thi.ng'), 2, 5 * GENERATION_OPS, { ...SMALL, chunksPerThread: 5000, maxSize: 4000 });
    await expect(failing).rejects.toThrow(/returned 0/);
  });

  it('refuses parameters it cannot run', () => {
    expect(() => larsonRunState(2, { ...SMALL, minSize: 4 })).toThrow(/bad parameters/);
    expect(() => larsonRunState(2, { ...SMALL, maxSize: 8 })).toThrow(/bad parameters/);
  });
});

describe('the larson workload', () => {
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
    const notes = larsonWorkload.section([row(1, 1000), row(2, 0)], context).notes ?? [];
    expect(notes.filter((note) => note.includes('stopped before its threads were past their warm-up'))).toEqual([
      expect.stringContaining('basic with 2 threads'),
    ]);
  });

  it('applies to heaplab backends, thi.ng and native, not to system or bump', () => {
    expect(larsonWorkload.appliesTo(resolveBackendContenders([{ name: 'basic', options: {} }])[0]!)).toBe(true);
    expect(larsonWorkload.appliesTo(baselineContender('thi.ng'))).toBe(true);
    expect(larsonWorkload.appliesTo({ kind: 'native', label: 'native glibc', allocator: 'glibc' })).toBe(true);
    expect(larsonWorkload.appliesTo(baselineContender('system'))).toBe(false);
    expect(larsonWorkload.appliesTo(baselineContender('bump'))).toBe(false);
  });

  it('has its page, which names its parameters', () => {
    const page = fileURLToPath(new URL('../../../docs/workloads/larson.md', import.meta.url));
    expect(existsSync(page)).toBe(true);
    const text = readFileSync(page, 'utf8');
    for (const fact of ['larson 5 8 1000 5000 100 4141', 'runState', 'remote']) expect(text).toContain(fact);
  });
});

describe('the larson C port', () => {
  const build = buildNativeProgram(LARSON_PROGRAM);
  if ('missing' in build) console.warn(`larson native tests skipped: ${build.missing}`);
  const binary = 'binary' in build ? build.binary : '';

  it.runIf('binary' in build)('compiles without warnings under -Wall', () => {
    const source = fileURLToPath(new URL('../native/larson.c', import.meta.url));
    const include = fileURLToPath(new URL('../native/', import.meta.url));
    const compiled = spawnSync(process.env['CC'] ?? 'cc', ['-O2', '-pthread', '-Wall', '-Wextra', '-fsyntax-only', '-I', include, source], {
      encoding: 'utf8',
    });
    expect(compiled.status).toBe(0);
    expect(compiled.stderr).toBe('');
  });

  it.runIf('binary' in build)('runs on 2 threads, hands arrays to new threads, and reports operations per second', async () => {
    const row = await runNativeLarson({ kind: 'native', label: 'native glibc', allocator: 'glibc' }, 2, 0.2, SMALL);
    expect(row.error).toBeUndefined();
    expect(row.iterations).toBeGreaterThan(0);
    expect(row.perSecond).toBeGreaterThan(0);
    const output = spawnSync(binary, larsonArguments(1, 0.05, SMALL), { encoding: 'utf8' });
    const parsed = parseLarsonOutput(output.stdout.split('\n').filter((line) => line !== '' && !line.startsWith('# ')));
    expect(parsed.generations).toBeGreaterThan(0);
    expect(parsed.throughputLine).toMatch(/^Throughput = +\d+ operations per second, relative time: [\d.]+s\.$/);
  });

  it.runIf('binary' in build)('refuses bad arguments', () => {
    expect(spawnSync(binary, ['0', '1'], { encoding: 'utf8' }).status).not.toBe(0);
    expect(spawnSync(binary, ['1', '1', '8', '8', '10', '1', '1'], { encoding: 'utf8' }).status).not.toBe(0);
  });
});
