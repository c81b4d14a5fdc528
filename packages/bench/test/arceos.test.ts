import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { type GlobalAllocator, MiB } from '@heaplab/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';

import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { nativeContender } from '../src/contenders/contender.js';
import { loopMemory } from '../src/run/address-allocator.js';
import { buildNativeProgram } from '../src/run/native-program.js';
import { TEXT_WIDTH } from '../src/report/text-table.js';
import { silentProgress } from '../src/run/progress.js';
import { runThreaded } from '../src/run/threaded-run.js';
import type { BenchSettings } from '../src/run/workload.js';
import { HeapBTree, INTERNAL_NODE_BYTES, LEAF_NODE_BYTES } from '../src/workloads/arceos/heap-btree.js';
import { HeapVec } from '../src/workloads/arceos/heap-vec.js';
import { ARCEOS_SEED, LibaxRandom } from '../src/workloads/arceos/libax-random.js';
import { ARCEOS_PROGRAM, parseNativeRuns, runNativeArceosTest } from '../src/workloads/arceos/native.js';
import { alignTest, LARGE_MAX_BYTES, LARGE_MIN_BYTES, type SuiteHeap, vecTest } from '../src/workloads/arceos/single-thread-tests.js';
import { ARCEOS_TESTS, type ArceosRow, HEAPLAB_CHECKS, runBackendSuite, runSingleTest, TestFailure, testCount } from '../src/workloads/arceos/suite.js';
import { BLOCKS_PER_THREAD, remoteFreesOf, threadsRunState } from '../src/workloads/arceos/threads-loop.js';
import { arceosThreadsLoop, arceosWorkload } from '../src/workloads/arceos/workload.js';
import { widestLine } from './text-width.js';

await discoverBackends();

const NATIVE_DIR = fileURLToPath(new URL('../native/', import.meta.url));

const heaps: GlobalAllocator[] = [];
afterEach(() => {
  for (const heap of heaps.splice(0)) heap.detach();
});

function heapOf(backend: string, bytes = 64 * MiB): GlobalAllocator {
  const heap = createBackendHeap({ name: backend, options: {} }, bytes);
  heaps.push(heap);
  return heap;
}

/** Every call a test makes, recorded, before it goes to `heap`. */
function recording(heap: GlobalAllocator) {
  const calls: { kind: 'malloc' | 'free' | 'realloc' | 'aligned' | 'dealloc'; size: number; address: number }[] = [];
  const recorder: SuiteHeap & { check(): { liveBlocks: number } } = {
    buffer: heap.buffer,
    malloc: (size) => {
      const address = heap.malloc(size);
      calls.push({ kind: 'malloc', size, address });
      return address;
    },
    free: (address) => {
      calls.push({ kind: 'free', size: 0, address });
      heap.free(address);
    },
    realloc: (address, size) => {
      const moved = heap.realloc(address, size);
      calls.push({ kind: 'realloc', size, address: moved });
      return moved;
    },
    alignedAlloc: (align, size) => {
      const address = heap.alignedAlloc(align, size);
      calls.push({ kind: 'aligned', size, address });
      return address;
    },
    dealloc: (address, layout) => {
      calls.push({ kind: 'dealloc', size: layout.size, address });
      heap.dealloc(address, layout);
    },
    stats: () => heap.stats(),
    check: () => heap.check(),
  };
  return { recorder, calls };
}

const byName = (name: string) => ARCEOS_TESTS.find((test) => test.name === name)!;

describe("libax's generator", () => {
  it('is the 64-bit LCG seeded s - 1 whose output is the state shifted right by 33', () => {
    const random = new LibaxRandom(ARCEOS_SEED);
    let state = BigInt(ARCEOS_SEED - 1);
    for (let draw = 0; draw < 10_000; draw++) {
      state = (state * 6364136223846793005n + 1n) & 0xffff_ffff_ffff_ffffn;
      expect(random.u32()).toBe(Number(state >> 33n));
    }
  });

  it('takes rand_usize() % n as the 64-bit remainder, high half first', () => {
    const random = new LibaxRandom(7);
    const reference = new LibaxRandom(7);
    for (const modulus of [1, 3, 5, 30_000, 50_000, 1_000_003]) {
      const value = (BigInt(reference.u32()) << 32n) | BigInt(reference.u32());
      expect(random.usizeModulo(modulus)).toBe(Number(value % BigInt(modulus)));
    }
  });
});

describe('a Rust Vec in the heap', () => {
  it('grows by doubling from 4 elements, the first buffer by malloc and the rest by realloc', () => {
    const heap = heapOf('basic');
    const { recorder, calls } = recording(heap);
    const vec = new HeapVec(recorder, 4);
    for (let index = 0; index < 33; index++) vec.pushSlot();
    expect(calls.map((call) => `${call.kind} ${call.size}`)).toEqual(['malloc 16', 'realloc 32', 'realloc 64', 'realloc 128', 'realloc 256']);
    vec.drop();
    expect(heap.check().liveBlocks).toBe(0);
  });
});

describe.each(['basic', 'tlsf'])('the single-thread tests on %s', (backend) => {
  it.each(ARCEOS_TESTS.filter((test) => test.run !== undefined).map((test) => [test.name, test] as const))(
    '%s passes its own check, the heap check and leaves the heap empty',
    (_name, test) => {
      const heap = heapOf(backend, 256 * MiB);
      const count = Math.min(test.count, test.name === 'vec' ? 100_000 : 3_000);
      const run = runSingleTest(heap, loopMemory(heap.buffer), test.run!, count);
      expect(run.checksPassed).toBe(HEAPLAB_CHECKS);
      expect(run.seconds).toBeGreaterThan(0);
      const memory = run.memory!;
      expect(memory.requestedBytes).toBeGreaterThan(0);
      expect(memory.usedBytes).toBeGreaterThanOrEqual(memory.requestedBytes);
      expect(memory.extraRate).toBeGreaterThanOrEqual(0);
      expect(memory.extraRate).toBeLessThan(1);
      expect(memory.availableBytes + memory.usedBytes).toBe(heap.totalBytes());
      expect(heap.stats().usedBytes).toBe(0);
      expect(heap.check().liveBlocks).toBe(0);
    },
  );

  it('align allocates with the drawn alignments and frees with the layouts it allocated', () => {
    const heap = heapOf(backend);
    const { recorder, calls } = recording(heap);
    runSingleTest(recorder, loopMemory(heap.buffer), alignTest, 2_000);
    const aligned = calls.filter((call) => call.kind === 'aligned');
    const freed = calls.filter((call) => call.kind === 'dealloc');
    // Two thirds of the steps allocate (every one while nothing is live); all are freed with their sizes.
    expect(aligned.length).toBeGreaterThan(1_200);
    expect(aligned.length).toBeLessThan(1_450);
    expect(freed.length).toBe(aligned.length);
    const live = new Map<number, number>();
    for (const call of calls) {
      if (call.kind === 'aligned') live.set(call.address, call.size);
      if (call.kind !== 'dealloc') continue;
      expect(call.size).toBe(live.get(call.address));
      live.delete(call.address);
    }
    expect(live.size).toBe(0);
    expect(Math.max(...aligned.map((call) => call.size))).toBeLessThanOrEqual(65_536);
  });
});

describe('the checks can fail', () => {
  it('align fails on an allocator that ignores the alignment', () => {
    const heap = heapOf('basic');
    const { recorder } = recording(heap);
    // Every block 8 bytes past a 64-aligned one: aligned to 8, never to 16 or more.
    const real = new Map<number, number>();
    const careless = {
      ...recorder,
      alignedAlloc: (_align: number, size: number) => {
        const block = heap.alignedAlloc(64, size + 8);
        real.set(block + 8, block);
        return block + 8;
      },
      dealloc: (address: number) => heap.free(real.get(address)!),
    };
    expect(() => runSingleTest(careless, loopMemory(heap.buffer), alignTest, 100)).toThrow(/not aligned to (16|32|64|128)/);
  });

  it('vec fails on a realloc that loses the contents', () => {
    const heap = heapOf('basic');
    const { recorder } = recording(heap);
    const forgetful = {
      ...recorder,
      realloc: (address: number, size: number) => {
        const moved = heap.malloc(size);
        heap.free(address);
        return moved;
      },
    };
    let failure: unknown;
    try {
      runSingleTest(forgetful, loopMemory(heap.buffer), vecTest, 1_000);
    } catch (error) {
      failure = error;
    }
    expect(failure).toBeInstanceOf(TestFailure);
    expect((failure as TestFailure).message).toMatch(/lost its value/);
    expect((failure as TestFailure).checksPassed).toBe(0);
  });

  it('the heap check fails a test that leaves a block behind', () => {
    const heap = heapOf('basic');
    const leaky = (suiteHeap: SuiteHeap) => {
      suiteHeap.malloc(100);
      return { checks: 1, memory: null };
    };
    let failure: unknown;
    try {
      runSingleTest(heap, loopMemory(heap.buffer), leaky, 1);
    } catch (error) {
      failure = error;
    }
    expect((failure as TestFailure).message).toMatch(/1 live blocks/);
    expect((failure as TestFailure).checksPassed).toBe(2);
  });
});

describe('a backend that cannot run', () => {
  it('gets a row with the reason for every test, and the bench goes on', async () => {
    const rows = await runBackendSuite(
      { kind: 'heaplab', label: 'nowhere', spec: { name: 'nowhere', options: {} } },
      {
        threads: [1],
        durationSeconds: Infinity,
        repeat: 1,
        warmup: true,
        fill: 'memset',
        verify: false,
        heapBytes: 64 * MiB,
        isolate: false,
        seed: 1,
        inAll: true,
      },
      arceosThreadsLoop,
      () => undefined,
    );
    expect(rows.map((row) => row.test)).toEqual(ARCEOS_TESTS.map((test) => test.name));
    for (const row of rows) {
      expect(row.error).toMatch(/nowhere/);
      expect(row.checksPassed).toBe(0);
    }
  });
});

describe("the map: Rust's BTreeMap<String, usize>", () => {
  it('has Rust 64-bit node sizes', () => {
    expect([LEAF_NODE_BYTES, INTERNAL_NODE_BYTES]).toEqual([368, 464]);
  });

  it("after test_btree_map's 50,000 steps holds the pairs and the nodes Rust's own map holds", () => {
    // Figures of rustc 1.95's BTreeMap driven by the same generator and steps, counted with
    // a global allocator that tracks the 368- and 464-byte blocks.
    const heap = heapOf('tlsf');
    const { recorder, calls } = recording(heap);
    const tree = new HeapBTree(recorder, loopMemory(heap.buffer));
    const random = new LibaxRandom(ARCEOS_SEED);
    for (let step = 0; step < 50_000; step++) {
      if (random.usizeModulo(5) === 0 && tree.length > 0) tree.popFirst();
      else tree.insertFormatted(random.u32(), random.u32());
    }
    expect({ length: tree.length, leaves: tree.leafNodes, internals: tree.internalNodes }).toEqual({ length: 30_312, leaves: 3_585, internals: 482 });
    expect(calls.filter((call) => call.kind === 'malloc').length).toBe(45_473);
    expect(calls.filter((call) => call.kind === 'realloc').length).toBe(40_156);
    expect(tree.verify()).toBe(30_312);
    tree.drop();
    expect(heap.stats().usedBytes).toBe(0);
  });

  it('finds a key that lost its value', () => {
    const heap = heapOf('basic');
    const tree = new HeapBTree(heap, loopMemory(heap.buffer));
    // Keys "key_1000" to "key_1099": eight bytes each, none a prefix of another.
    for (let value = 1000; value < 1100; value++) tree.insertFormatted(0, value);
    const bytes = Buffer.from(heap.buffer);
    const at = bytes.indexOf('key_1042');
    expect(at).toBeGreaterThan(0);
    bytes[at + 7] = 0x33;
    expect(() => tree.verify()).toThrow(/value of 'key_1042' under 'key_1043'/);
    bytes[at + 7] = 0x32;
    expect(tree.verify()).toBe(100);
    tree.drop();
    expect(heap.check().liveBlocks).toBe(0);
  });
});

describe('vec_2', () => {
  it.each([
    [64, 512],
    [520, 4160],
  ])('capacity %i: blocks of %i bytes, the sort scratch, and frees in shuffled order', (capacity, blockBytes) => {
    const heap = heapOf('basic');
    const { recorder, calls } = recording(heap);
    const test = byName(`vec2-${capacity}`);
    const count = 200;
    runSingleTest(recorder, loopMemory(heap.buffer), test.run!, count);
    const blocks = calls.filter((call) => call.kind === 'malloc' && call.size === blockBytes);
    expect(blocks.length).toBe(count);
    // The 2023 merge sort's scratch for every block: half the block, and a stack of 16 runs of 16 bytes.
    const scratch = (bytes: number): number => calls.filter((call) => call.kind === 'malloc' && call.size === bytes).length;
    if (capacity === 64) expect(scratch(256)).toBe(2 * count);
    else expect([scratch(2080), scratch(256)]).toEqual([count, count]);
    const blockSet = new Set(blocks.map((call) => call.address));
    const freedBlocks = calls.filter((call) => call.kind === 'free' && blockSet.has(call.address)).map((call) => call.address);
    const lastFrees = freedBlocks.slice(-count);
    expect(new Set(lastFrees).size).toBe(count);
    expect(lastFrees).not.toEqual(blocks.map((call) => call.address));
  });
});

describe('malloc-large', () => {
  it('keeps ten buffers of 2 to 5 MiB, replacing one per iteration', () => {
    const heap = heapOf('tlsf', 128 * MiB);
    const { recorder, calls } = recording(heap);
    runSingleTest(recorder, loopMemory(heap.buffer), byName('malloc-large').run!, 500);
    const sizes = calls.filter((call) => call.kind === 'malloc').map((call) => call.size);
    expect(sizes.length).toBe(510);
    for (const size of sizes) {
      expect(size).toBeGreaterThanOrEqual(LARGE_MIN_BYTES);
      expect(size).toBeLessThanOrEqual(LARGE_MAX_BYTES);
    }
    expect(new Set(sizes).size).toBeGreaterThan(400);
  });
});

describe('the thread test', () => {
  it.each(['basic', 'mimalloc'])('%s, 2 threads: frees cross threads, the heap checks clean and ends empty', async (backend) => {
    let runState: SharedArrayBuffer | null = null;
    const rounds = 2;
    const run = await runThreaded({
      contender: { kind: 'heaplab', label: backend, spec: { name: backend, options: {} } },
      loop: { ...arceosThreadsLoop, runState: (threads) => (runState = threadsRunState(threads)) },
      threads: 2,
      durationSeconds: Infinity,
      maxIterations: rounds,
      verify: true,
      heapBytes: 64 * MiB,
    });
    expect(run.perThreadIterations).toEqual([rounds, rounds]);
    // Thread t frees the upper-half slots t, t + 2, ...: the first half of them were filled by thread 0, the rest by thread 1.
    expect(remoteFreesOf(runState!)).toBe((rounds * BLOCKS_PER_THREAD) / 2);
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(0);
  });

  it('runs on one thread, with no remote frees', async () => {
    let runState: SharedArrayBuffer | null = null;
    const run = await runThreaded({
      contender: { kind: 'heaplab', label: 'tlsf', spec: { name: 'tlsf', options: {} } },
      loop: { ...arceosThreadsLoop, runState: (threads) => (runState = threadsRunState(threads)) },
      threads: 1,
      durationSeconds: Infinity,
      maxIterations: 3,
      verify: true,
      heapBytes: 64 * MiB,
    });
    expect(run.iterations).toBe(3);
    expect(remoteFreesOf(runState!)).toBe(0);
    expect(run.check!.liveBlocks).toBe(0);
  });
});

describe('the workload', () => {
  const settings: BenchSettings = {
    threads: [1],
    durationSeconds: Infinity,
    repeat: 2,
    warmup: true,
    fill: 'memset',
    maxIterations: 2_000,
    verify: false,
    heapBytes: 64 * MiB,
    isolate: false,
    seed: 1,
    inAll: true,
  };
  let rows: ArceosRow[];
  beforeAll(async () => {
    const contenders = resolveBackendContenders([
      { name: 'basic', options: {} },
      { name: 'tlsf', options: {} },
    ]);
    rows = await arceosWorkload.run(contenders, settings, silentProgress);
  }, 120_000);

  it('counts a tenth of the original under bench all, bounded by maxIterations in tests', () => {
    expect(testCount(byName('align'), { inAll: true })).toBe(5_000);
    expect(testCount(byName('threads'), { inAll: false })).toBe(100);
    expect(testCount(byName('threads'), { inAll: true, maxIterations: 2_000 })).toBe(2);
    expect(testCount(byName('vec'), { inAll: false, maxIterations: 2_000 })).toBe(2_000);
  });

  it('has one row per backend and test, with times, checks and the memory check', () => {
    expect(rows.map((row) => `${row.label} ${row.test}`)).toEqual(['basic', 'tlsf'].flatMap((label) => ARCEOS_TESTS.map((test) => `${label} ${test.name}`)));
    const json = JSON.parse(JSON.stringify(rows)) as ArceosRow[];
    for (const row of json) {
      expect(row.error).toBeUndefined();
      expect(row.runs).toHaveLength(2);
      expect(row.seconds).toBeGreaterThanOrEqual(row.secondsMin);
      expect(row.seconds).toBeLessThanOrEqual(row.secondsMax);
      expect(row.checksPassed).toBe(row.checksTotal);
      expect(row.checksTotal).toBe(HEAPLAB_CHECKS);
      if (row.test === 'threads') {
        expect(row.threads).toBe(10);
        expect(row.memory).toBeNull();
        expect(row.remoteFrees).toBeGreaterThan(0);
      } else {
        expect(Object.keys(row.memory!).sort()).toEqual(['availableBytes', 'extraRate', 'requestedBytes', 'usedBytes']);
      }
      if (row.test.startsWith('vec2')) expect(row.freeSeconds).toBeGreaterThan(0);
    }
  });

  it('shows a row per backend and a column per test, and the memory check', () => {
    // A terminal wide enough for the whole table in one.
    const section = arceosWorkload.section(rows, { meta: {} as never, rowsOf: () => [], width: 200 });
    const lines = section.table.split('\n');
    expect(lines[0]).toMatch(/^backend +align +vec +vec_2 64 +free +vec_2 520 +free +btree_map +vec_3 +malloc_large +10 threads +checks$/);
    expect(section.table).toMatch(/^basic .* 24\/24$/m);
    expect(section.table).toMatch(/^tlsf .* 24\/24$/m);
    expect(section.table).toMatch(/extra memory rate/);
    expect(section.table).toMatch(/^basic +\d+\.\d %/m);
    expect(section.notes?.join('\n')).toMatch(/reduced counts/);
    // By default, split into tables of at most TEXT_WIDTH columns, each with the backend.
    const narrow = arceosWorkload.section(rows, { meta: {} as never, rowsOf: () => [] }).table;
    expect(widestLine(narrow)).toBeLessThanOrEqual(TEXT_WIDTH);
    expect(narrow).toMatch(/^backend +align +vec +vec_2 64 +free /m);
    expect(narrow).toMatch(/^backend .*10 threads +checks$/m);
    expect(narrow).toMatch(/^tlsf .* 24\/24$/m);
  });
});

describe('the C port', () => {
  const build = buildNativeProgram(ARCEOS_PROGRAM);

  it('reads one line per run', () => {
    expect(parseNativeRuns(['run 0.5 - 1', 'run 0.25 0.125 1'], 2)).toEqual([
      { seconds: 0.5, memory: null, checksPassed: 1 },
      { seconds: 0.25, freeSeconds: 0.125, memory: null, checksPassed: 1 },
    ]);
    expect(() => parseNativeRuns(['run 0.5 - 1'], 2)).toThrow(/1 of 2 runs/);
  });

  it.each(ARCEOS_TESTS.map((test) => [test.name, test] as const))('runs %s against the C library', async (_name, test) => {
    if ('missing' in build) {
      console.warn(`native arceos port not built: ${build.missing}`);
      return;
    }
    const row = await runNativeArceosTest(nativeContender('glibc'), test, testCount(test, { inAll: true, maxIterations: 2_000 }), 2);
    expect(row.error).toBeUndefined();
    expect(row.runs).toHaveLength(2);
    expect(row.checksPassed).toBe(1);
    expect(row.memory).toBeNull();
    if (test.name.startsWith('vec2')) expect(row.freeSeconds).toBeGreaterThan(0);
  });

  it('compiles without a warning under -Wall -Wextra', () => {
    const compiled = spawnSync(
      process.env['CC'] ?? 'cc',
      ['-O2', '-pthread', '-Wall', '-Wextra', '-Werror', '-fsyntax-only', '-I', NATIVE_DIR, join(NATIVE_DIR, 'arceos.c')],
      {
        encoding: 'utf8',
      },
    );
    if (compiled.error !== undefined) {
      console.warn(`no C compiler: ${compiled.error.message}`);
      return;
    }
    expect(compiled.stderr).toBe('');
    expect(compiled.status).toBe(0);
  });
});

describe('the docs', () => {
  it('has a page for the workload, naming every test', () => {
    const page = fileURLToPath(new URL('../../../docs/workloads/arceos.md', import.meta.url));
    expect(existsSync(page)).toBe(true);
    const text = readFileSync(page, 'utf8');
    for (const test of ARCEOS_TESTS) expect(text).toContain(test.header);
  });
});
