import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { type BackendContender, baselineContender } from '../src/contenders/contender.js';
import { type AddressAllocator, type LoopLimits, type LoopMemory, loopMemory } from '../src/run/address-allocator.js';
import { buildNativeProgram } from '../src/run/native-program.js';
import { silentProgress } from '../src/run/progress.js';
import { runThreaded } from '../src/run/threaded-run.js';
import type { BenchSettings } from '../src/run/workload.js';
import {
  CASE_BLOCKS,
  PASS_BLOCKS,
  runSimpleLoop,
  runSystemSimpleLoop,
  SIMPLE_BLOCK_COUNTS,
  SIMPLE_CASES,
  SIMPLE_SIZES,
  SimpleCursor,
} from '../src/workloads/glibc-simple/loop.js';
import { GLIBC_SIMPLE_PROGRAM, parseBlocks, runNativeGlibcSimple } from '../src/workloads/glibc-simple/native.js';
import { glibcSimpleLoop, glibcSimpleWorkload } from '../src/workloads/glibc-simple/workload.js';

/** An allocator of 64-byte slots over a small buffer (LIFO reuse) that records every call. */
class RecordingAllocator implements AddressAllocator {
  readonly mallocs: number[] = [];
  readonly frees: number[] = [];
  readonly live = new Set<number>();
  private readonly freeSlots: number[] = [];
  private top = 64;

  malloc(size: number): number {
    this.mallocs.push(size);
    let address = this.freeSlots.pop();
    if (address === undefined) {
      address = this.top;
      this.top += 64;
    }
    this.live.add(address);
    return address;
  }

  free(address: number): void {
    if (!this.live.delete(address)) throw new Error(`free of 0x${address.toString(16)}, which is not live`);
    this.frees.push(address);
    this.freeSlots.push(address);
  }

  realloc(): number {
    throw new Error('glibc-simple never resizes');
  }
}

const memory = (): LoopMemory => loopMemory(new ArrayBuffer(64 + 1600 * 64));
const limits = (maxIterations: number, stop = new Int32Array(1)): LoopLimits => ({ stop, deadline: Infinity, maxIterations });

describe('the glibc-simple loop', () => {
  it('allocates n blocks, frees the first half in order and the rest from the last back', () => {
    const allocator = new RecordingAllocator();
    const outcome = runSimpleLoop(allocator, memory(), limits(1), true);
    // One whole iteration of the first case: 25 blocks of 16 bytes.
    expect(outcome.iterations).toBe(25);
    expect(allocator.mallocs).toEqual(new Array(25).fill(16));
    const addresses = Array.from({ length: 25 }, (_, i) => 64 + i * 64);
    expect(allocator.frees).toEqual([...addresses.slice(0, 12), ...addresses.slice(12).reverse()]);
    expect(allocator.live.size).toBe(0);
    expect(outcome.highWater).toBe(64 + 24 * 64 + 16);
  });

  it('fills each block with its index byte', () => {
    const allocator = new RecordingAllocator();
    const views = memory();
    runSimpleLoop(allocator, views, limits(1), false);
    expect([...views.u8.subarray(64 + 3 * 64, 64 + 3 * 64 + 17)]).toEqual([...new Array(16).fill(3), 0]);
  });

  it('goes through the twelve cases in order, each CASE_BLOCKS blocks, and wraps', () => {
    const cursor = new SimpleCursor();
    const seen: string[] = [];
    let blocks = 0;
    while (blocks < PASS_BLOCKS + CASE_BLOCKS) {
      const name = `${cursor.size}x${cursor.blocks}`;
      if (seen.at(-1) !== name) seen.push(name);
      blocks += cursor.blocks;
      cursor.advance();
    }
    const expected = SIMPLE_SIZES.flatMap((size) => SIMPLE_BLOCK_COUNTS.map((count) => `${size}x${count}`));
    expect(seen).toEqual([...expected, expected[0]]);
    expect(SIMPLE_CASES).toBe(12);
    for (const count of SIMPLE_BLOCK_COUNTS) expect(CASE_BLOCKS % count).toBe(0);
  });

  it('counts blocks and ends at the first whole iteration that reaches maxIterations', () => {
    const allocator = new RecordingAllocator();
    const outcome = runSimpleLoop(allocator, memory(), limits(CASE_BLOCKS + 30), true);
    // The first case is CASE_BLOCKS blocks of 25; the second case's first iteration has 100.
    expect(outcome.iterations).toBe(CASE_BLOCKS + 100);
    expect(allocator.mallocs.length).toBe(CASE_BLOCKS + 100);
    expect(allocator.frees.length).toBe(CASE_BLOCKS + 100);
  });

  it('stops on the stop flag at its first check', () => {
    const outcome = runSimpleLoop(new RecordingAllocator(), memory(), limits(Infinity, Int32Array.of(1)), false);
    // The flag is read once 1024 blocks have passed: 41 iterations of 25.
    expect(outcome.iterations).toBe(41 * 25);
  });

  it('in verify mode, catches an allocator that hands out overlapping blocks', () => {
    const overlapping: AddressAllocator = { malloc: () => 64, free: () => undefined, realloc: () => 64 };
    expect(() => runSimpleLoop(overlapping, memory(), limits(25), true)).toThrow(/verify: block 0 at 0x40 has word 0 = 0x18181818, expected 0x0/);
  });

  it('has a system copy that counts the same blocks', () => {
    expect(runSystemSimpleLoop(limits(CASE_BLOCKS + 30), true).iterations).toBe(CASE_BLOCKS + 100);
  });
});

describe('glibc-simple on shared heaps', () => {
  let contenders: BackendContender[];
  beforeAll(async () => {
    await discoverBackends();
    contenders = resolveBackendContenders([
      { name: 'basic', options: {} },
      { name: 'mimalloc', options: {} },
    ]);
  });

  // The workload runs one thread; two threads of the loop on one heap check the backends too.
  it.each(['basic', 'mimalloc'])('%s, 1 and 2 threads: the heap checks clean and is as empty as it started', async (name) => {
    const contender = contenders.find((candidate) => candidate.label === name)!;
    const heapBytes = 16 << 20;
    const fresh = createBackendHeap(contender.spec, heapBytes);
    const emptyUsedBytes = fresh.stats().usedBytes;
    fresh.detach();
    for (const threads of [1, 2]) {
      const run = await runThreaded({
        contender,
        loop: glibcSimpleLoop,
        threads,
        durationSeconds: Infinity,
        maxIterations: 2 * CASE_BLOCKS,
        verify: true,
        heapBytes,
      });
      expect(run.perThreadIterations).toEqual(new Array(threads).fill(2 * CASE_BLOCKS));
      expect(run.check!.liveBlocks).toBe(0);
      expect(run.check!.usedBytes).toBe(emptyUsedBytes);
      // 100 blocks of 16 bytes at most live at once, with headers: well under 8 KiB per thread.
      expect(run.peakFootprintBytes).toBeGreaterThanOrEqual(100 * 16);
    }
  });
});

describe('the glibc-simple workload', () => {
  it('runs one-thread rows whatever the thread counts asked', async () => {
    await discoverBackends();
    const settings: BenchSettings = {
      threads: [1, 2],
      durationSeconds: Infinity,
      repeat: 1,
      warmup: false,
      fill: 'memset',
      maxIterations: 500,
      verify: true,
      heapBytes: 16 << 20,
      isolate: false,
      seed: 1,
      inAll: false,
    };
    const contenders = [...resolveBackendContenders([{ name: 'basic', options: {} }]), baselineContender('system')];
    const rows = await glibcSimpleWorkload.run(contenders, settings, silentProgress);
    expect(rows.map((row) => [row.label, row.threads, row.iterations, row.error])).toEqual([
      ['basic', 1, 500, undefined],
      ['system', 1, 500, undefined],
    ]);
    expect(glibcSimpleWorkload.stepsPerContender(settings)).toBe(1);
  });

  it('applies to heaplab backends, thi.ng, system and native, not to bump', () => {
    expect(glibcSimpleWorkload.appliesTo({ kind: 'heaplab', label: 'basic', spec: { name: 'basic', options: {} } })).toBe(true);
    expect(glibcSimpleWorkload.appliesTo({ kind: 'thing', label: '@thi.ng/malloc' })).toBe(true);
    expect(glibcSimpleWorkload.appliesTo({ kind: 'system', label: 'system' })).toBe(true);
    expect(glibcSimpleWorkload.appliesTo({ kind: 'native', label: 'native glibc', allocator: 'glibc' })).toBe(true);
    expect(glibcSimpleWorkload.appliesTo({ kind: 'bump', label: 'bump' })).toBe(false);
  });

  it('has its docs page', () => {
    expect(existsSync(fileURLToPath(new URL('../../../docs/workloads/glibc-simple.md', import.meta.url)))).toBe(true);
  });
});

describe('the native port', () => {
  const build = buildNativeProgram(GLIBC_SIMPLE_PROGRAM);
  if ('missing' in build) console.warn(`glibc-simple native test skipped: ${build.missing}`);

  it('reads the port line', () => {
    expect(parseBlocks(['1234 blocks'])).toBe(1234);
    expect(() => parseBlocks(['1234 rounds'])).toThrow(/unexpected output/);
  });

  it.runIf('binary' in build)('runs against the C library and counts blocks in whole iterations', async () => {
    const row = await runNativeGlibcSimple({ kind: 'native', label: 'native glibc', allocator: 'glibc' }, 0.05);
    expect(row.error).toBeUndefined();
    expect(row.threads).toBe(1);
    expect(row.iterations).toBeGreaterThan(0);
    expect(row.iterations % 25).toBe(0);
  });
});
