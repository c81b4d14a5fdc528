import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { BumpAllocator } from '../src/contenders/bump-allocator.js';
import { nativeContender } from '../src/contenders/contender.js';
import { type AddressAllocator, loopMemory } from '../src/run/address-allocator.js';
import { runNativeRateRow } from '../src/run/native-rate-row.js';
import { buildNativeProgram } from '../src/run/native-program.js';
import { silentProgress } from '../src/run/progress.js';
import { runThreaded } from '../src/run/threaded-run.js';
import type { BenchSettings } from '../src/run/workload.js';
import { runSh6Loop, SH6_TOTAL_SLOTS, sh6PassSizes, sh6Slots } from '../src/workloads/sh6bench/loop.js';
import { SH6_PORT } from '../src/workloads/sh6bench/native.js';
import { sh6Loop, sh6Workload } from '../src/workloads/sh6bench/workload.js';

await discoverBackends();

/** A bump allocator over a large plain buffer that records every call, in order. */
class RecordingAllocator implements AddressAllocator {
  /** Every call: the allocation's number for a malloc (from 0), its negation minus one for a free. */
  readonly calls: number[] = [];
  readonly live = new Map<number, number>();
  readonly memory = loopMemory(new ArrayBuffer(16 << 20));
  private readonly inner = new BumpAllocator(0, 16 << 20);
  private allocations = 0;
  maxLive = 0;

  malloc(size: number): number {
    const address = this.inner.malloc(size);
    this.live.set(address, this.allocations);
    this.calls.push(this.allocations++);
    this.maxLive = Math.max(this.maxLive, this.live.size);
    return address;
  }

  free(address: number): void {
    const allocation = this.live.get(address);
    if (allocation === undefined) throw new Error(`free of 0x${address.toString(16)}, which is not live`);
    this.live.delete(address);
    this.calls.push(-allocation - 1);
  }

  realloc(): number {
    throw new Error('sh6bench never resizes');
  }

  /** The allocations freed between the `from`-th and the `to`-th malloc, in the order freed. */
  freedBetween(from: number, to: number): number[] {
    const start = this.calls.indexOf(from);
    const end = to < this.allocations ? this.calls.indexOf(to) : this.calls.length;
    return this.calls
      .slice(start, end)
      .filter((call) => call < 0)
      .map((call) => -call - 1);
  }
}

const range = (from: number, to: number): number[] => Array.from({ length: Math.abs(to - from) + 1 }, (_, i) => (to >= from ? from + i : from - i));
const noStop = { stop: new Int32Array(1), deadline: Infinity };

/** The loop on one thread of a run of `threads` threads (100 threads: rings of 100 slots, fifths of 20). */
function runRecorded(allocations: number, threads = 100, verify = true): RecordingAllocator {
  const allocator = new RecordingAllocator();
  const outcome = runSh6Loop(allocator, allocator.memory, { ...noStop, maxIterations: allocations }, { threadIndex: 0, threads, verify, runState: null });
  expect(outcome.iterations).toBe(allocations);
  return allocator;
}

describe('the sh6bench pass', () => {
  it("is the original's 19300 allocations: 250 of each size below 100, 50 of each below 1000, bases 1, 2, 4, 7 ... 709", () => {
    const sizes = sh6PassSizes();
    expect(sizes.length).toBe(19_300);
    expect(sizes.reduce((sum, size) => sum + size, 0)).toBe(442_200);
    expect(Math.max(...sizes)).toBe(709);
    // Base 1, then base 2 halved: 2, 1, then base 4: 4, 2, 1.
    expect([...sizes.subarray(0, 250)].every((size) => size === 1)).toBe(true);
    expect([sizes[250], sizes[499], sizes[500], sizes[750], sizes[1000], sizes[1250]]).toEqual([2, 2, 1, 4, 2, 1]);
    // The largest base: 709 (50 times), 354, 177, then 88 (250 times).
    expect(sizes.indexOf(709)).toBe(19_300 - 1900);
    expect([...sizes.subarray(19_300 - 1900 + 150, 19_300 - 1900 + 151)]).toEqual([88]);
  });
});

describe('the sh6bench ring', () => {
  it('frees four fifths of the first full ring, the top part from the last slot down, and keeps the first fifth', () => {
    const allocator = runRecorded(101);
    expect(allocator.freedBetween(99, 100)).toEqual(range(99, 20));
  });

  it('then fills the ring past the kept fifth, and at the next full ring frees below the next fifth in order and above it in reverse', () => {
    const allocator = runRecorded(181);
    // Allocations 100..179 went to slots 20..99; the kept fifth moves to slots 20..39.
    expect(allocator.freedBetween(100, 179)).toEqual([]);
    expect(allocator.freedBetween(179, 180)).toEqual([...range(0, 19), ...range(179, 120)]);
  });

  it('never loses a block over many rings, the kept fifth at the start included, and holds at most one ring of blocks', () => {
    const allocator = runRecorded(20_000, 97);
    expect(allocator.live.size).toBe(0);
    expect(allocator.calls.filter((call) => call < 0).length).toBe(20_000);
    expect(allocator.maxLive).toBe(sh6Slots(97));
  });

  it('writes the first and last byte of each block, and in verify mode catches overlapping blocks', () => {
    const allocator = runRecorded(300);
    // Allocation 255 (of size 2) at 8 + 250 * 8 + 5 * 8: its two bytes hold 255.
    expect(allocator.memory.u8[8 + 255 * 8]).toBe(255);
    expect(allocator.memory.u8[8 + 255 * 8 + 1]).toBe(255);
    const overlapping = new RecordingAllocator();
    overlapping.malloc = () => 64;
    overlapping.free = () => undefined;
    const run = () =>
      runSh6Loop(overlapping, overlapping.memory, { ...noStop, maxIterations: 1000 }, { threadIndex: 0, threads: 100, verify: true, runState: null });
    expect(run).toThrow(/verify: the \d+-byte block in slot \d+ at 0x40 has end bytes/);
  });

  it('stops at the end of the batch in which the stop flag rises, and fails when the run is over before it starts', () => {
    const stop = new Int32Array(1);
    const allocator = new RecordingAllocator();
    const inner = allocator.malloc.bind(allocator);
    allocator.malloc = (size) => {
      if (allocator.calls.length === 10) stop[0] = 1;
      return inner(size);
    };
    const thread = { threadIndex: 0, threads: 100, verify: true, runState: null };
    expect(runSh6Loop(allocator, allocator.memory, { stop, deadline: Infinity, maxIterations: 5000 }, thread).iterations).toBe(256);
    const late = { stop: new Int32Array([1]), deadline: Infinity, maxIterations: 500 };
    expect(() => runSh6Loop(new RecordingAllocator(), allocator.memory, late, thread)).toThrow(/run was over before this thread began timing/);
  });

  it('gives each thread its share of the 10000 slots', () => {
    expect(sh6Slots(1)).toBe(SH6_TOTAL_SLOTS);
    expect(sh6Slots(2)).toBe(5000);
    expect(sh6Slots(16)).toBe(625);
  });
});

describe('sh6bench on a shared heap', () => {
  it.each(['basic', 'mimalloc'])('%s, 2 threads: rings of 5000 slots, the heap checks clean and empties', async (backend) => {
    const [contender] = resolveBackendContenders([{ name: backend, options: {} }]);
    if (contender === undefined || contender.kind !== 'heaplab') throw new Error(`no backend ${backend}`);
    const fresh = createBackendHeap(contender.spec, 64 << 20);
    const startUsed = fresh.stats().usedBytes;
    fresh.detach();
    // 30000 allocations: full rings at 5000, 9000, 13000 ... each freeing 4000 blocks.
    const run = await runThreaded({
      contender,
      loop: sh6Loop,
      threads: 2,
      durationSeconds: Infinity,
      maxIterations: 30_000,
      verify: true,
      heapBytes: 64 << 20,
    });
    expect(run.perThreadIterations).toEqual([30_000, 30_000]);
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(startUsed);
  });

  it('runs twice the --threads count, as mimalloc-bench runs it', async () => {
    const settings: BenchSettings = {
      threads: [1],
      durationSeconds: Infinity,
      repeat: 1,
      warmup: false,
      fill: 'memset',
      maxIterations: 1000,
      verify: true,
      heapBytes: 64 << 20,
      isolate: false,
      seed: 1,
      inAll: false,
    };
    const rows = await sh6Workload.run(resolveBackendContenders([{ name: 'basic', options: {} }]), settings, silentProgress);
    expect(rows.map((row) => [row.threads, row.iterations, row.error])).toEqual([[2, 2000, undefined]]);
  });
});

describe('the sh6bench C port', () => {
  const build = buildNativeProgram(SH6_PORT.program);
  if ('missing' in build) console.warn(`sh6bench native tests skipped: ${build.missing}`);

  it.runIf('binary' in build)('replays the same pass', () => {
    const printed = JSON.parse(execFileSync((build as { binary: string }).binary, ['--pass'], { encoding: 'utf8' })) as { length: number; bytes: number };
    const sizes = sh6PassSizes();
    expect(printed).toEqual({ length: sizes.length, bytes: sizes.reduce((sum, size) => sum + size, 0) });
  });

  it.runIf('binary' in build)('runs on two threads and reports its allocations and rate', async () => {
    const row = await runNativeRateRow(SH6_PORT, nativeContender('glibc'), 2, 0.2);
    expect(row.error).toBeUndefined();
    expect(row.iterations).toBeGreaterThan(0);
    expect(row.perSecond).toBeGreaterThan(0);
  });
});

describe('the sh6bench workload', () => {
  it('applies to the heaplab backends, thi.ng and native, and has its page', () => {
    expect(sh6Workload.appliesTo({ kind: 'bump', label: 'bump' })).toBe(false);
    expect(sh6Workload.appliesTo({ kind: 'system', label: 'system' })).toBe(false);
    expect(sh6Workload.appliesTo({ kind: 'thing', label: 'thi.ng' })).toBe(true);
    expect(sh6Workload.appliesTo(nativeContender('glibc'))).toBe(true);
    expect(existsSync(fileURLToPath(new URL('../../../docs/workloads/sh6bench.md', import.meta.url)))).toBe(true);
  });
});
