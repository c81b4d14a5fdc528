import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import type { BackendContender } from '../src/contenders/contender.js';
import type { AddressAllocator, LoopLimits } from '../src/run/address-allocator.js';
import { buildNativeProgram } from '../src/run/native-program.js';
import type { ThreadParams } from '../src/run/thread-loop.js';
import { runThreaded } from '../src/run/threaded-run.js';
import { runThrashLoop, THRASH_OBJECT_SIZE, thrashFillByte, writeRepeatedly } from '../src/workloads/cache-thrash/loop.js';
import { CACHE_THRASH_PROGRAM, parseRounds, runNativeCacheThrash } from '../src/workloads/cache-thrash/native.js';
import { cacheThrashLoop, cacheThrashWorkload } from '../src/workloads/cache-thrash/workload.js';

/** An allocator over a small buffer that hands out 8-byte slots and records every call. */
class RecordingAllocator implements AddressAllocator {
  readonly mallocs: number[] = [];
  readonly frees: number[] = [];
  private readonly freeSlots: number[] = [];
  private top = 64;

  malloc(size: number): number {
    this.mallocs.push(size);
    const address = this.freeSlots.pop() ?? this.top;
    if (address === this.top) this.top += 8;
    return address;
  }

  free(address: number): void {
    this.frees.push(address);
    this.freeSlots.push(address);
  }

  realloc(): number {
    throw new Error('cache-thrash never resizes');
  }
}

const oneThread: ThreadParams = { threadIndex: 0, threads: 1, verify: true, runState: null };
const limits = (maxIterations: number, stop = new Int32Array(1)): LoopLimits => ({ stop, deadline: Infinity, maxIterations });

describe('the cache-thrash loop', () => {
  it('runs maxIterations rounds, each a malloc of the object size and its free', () => {
    const allocator = new RecordingAllocator();
    const u8 = new Uint8Array(1024);
    const outcome = runThrashLoop(allocator, u8, limits(50), { ...oneThread, threadIndex: 2 });
    expect(outcome.iterations).toBe(50);
    expect(allocator.mallocs).toEqual(new Array(50).fill(THRASH_OBJECT_SIZE));
    // Each object is freed before the next is taken, so the one slot comes back every round.
    expect(allocator.frees).toEqual(new Array(50).fill(64));
    expect(u8[64]).toBe(thrashFillByte(2));
    expect(outcome.highWater).toBe(64 + THRASH_OBJECT_SIZE);
  });

  it('stops on the stop flag', () => {
    const allocator = new RecordingAllocator();
    const outcome = runThrashLoop(allocator, new Uint8Array(1024), limits(50, Int32Array.of(1)), oneThread);
    expect(outcome.iterations).toBe(0);
    expect(allocator.mallocs).toEqual([]);
  });

  it('fails when the heap is full', () => {
    const full: AddressAllocator = { malloc: () => 0, free: () => undefined, realloc: () => 0 };
    expect(() => runThrashLoop(full, new Uint8Array(64), limits(5), oneThread)).toThrow(/malloc\(1\) returned 0 after 0 rounds/);
  });

  it('writes and reads back every byte on every pass, and gives each thread its own byte', () => {
    const u8 = new Uint8Array(32);
    expect(writeRepeatedly(u8, 8, 4, 3, 7)).toBe(0);
    expect([...u8.subarray(7, 13)]).toEqual([0, 7, 7, 7, 7, 0]);
    expect(new Set([0, 1, 2, 3].map(thrashFillByte)).size).toBe(4);
    expect(thrashFillByte(0)).not.toBe(0);
  });
});

describe('cache-thrash on shared heaps', () => {
  let contenders: BackendContender[];
  beforeAll(async () => {
    await discoverBackends();
    contenders = resolveBackendContenders([
      { name: 'basic', options: {} },
      { name: 'mimalloc', options: {} },
    ]);
  });

  it.each(['basic', 'mimalloc'])('%s, 2 threads: every round counted, the heap checks clean and is as empty as it started', async (name) => {
    const contender = contenders.find((candidate) => candidate.label === name)!;
    const heapBytes = 16 << 20;
    const fresh = createBackendHeap(contender.spec, heapBytes);
    const emptyUsedBytes = fresh.stats().usedBytes;
    fresh.detach();
    const run = await runThreaded({ contender, loop: cacheThrashLoop, threads: 2, durationSeconds: Infinity, maxIterations: 300, verify: true, heapBytes });
    expect(run.perThreadIterations).toEqual([300, 300]);
    expect(run.iterations).toBe(600);
    expect(run.check).not.toBeNull();
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(emptyUsedBytes);
    expect(run.peakFootprintBytes).toBeGreaterThan(0);
  });

  it('gives no peak footprint for a heap of two arenas, whose threads each reach into their own', async () => {
    const [contender] = resolveBackendContenders([{ name: 'basic', options: { arenas: 2 } }]);
    const run = await runThreaded({
      contender: contender!,
      loop: cacheThrashLoop,
      threads: 2,
      durationSeconds: Infinity,
      maxIterations: 300,
      verify: true,
      heapBytes: 16 << 20,
    });
    expect(run.iterations).toBe(600);
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.peakFootprintBytes).toBeNull();
  });
});

describe('the cache-thrash workload', () => {
  it('applies to heaplab backends, thi.ng and native, not to system or bump', () => {
    expect(cacheThrashWorkload.appliesTo({ kind: 'heaplab', label: 'basic', spec: { name: 'basic', options: {} } })).toBe(true);
    expect(cacheThrashWorkload.appliesTo({ kind: 'thing', label: '@thi.ng/malloc' })).toBe(true);
    expect(cacheThrashWorkload.appliesTo({ kind: 'native', label: 'native glibc', allocator: 'glibc' })).toBe(true);
    expect(cacheThrashWorkload.appliesTo({ kind: 'system', label: 'system' })).toBe(false);
    expect(cacheThrashWorkload.appliesTo({ kind: 'bump', label: 'bump' })).toBe(false);
  });

  it('has its docs page', () => {
    expect(existsSync(fileURLToPath(new URL('../../../docs/workloads/cache-thrash.md', import.meta.url)))).toBe(true);
  });
});

describe('the native port', () => {
  const build = buildNativeProgram(CACHE_THRASH_PROGRAM);
  if ('missing' in build) console.warn(`cache-thrash native test skipped: ${build.missing}`);

  it('reads the port line', () => {
    expect(parseRounds(['1234 rounds'])).toBe(1234);
    expect(() => parseRounds(['1234 iterations'])).toThrow(/unexpected output/);
  });

  it.runIf('binary' in build)('runs against the C library with 1 and 2 threads and counts rounds', async () => {
    for (const threads of [1, 2]) {
      const row = await runNativeCacheThrash({ kind: 'native', label: 'native glibc', allocator: 'glibc' }, threads, 0.05);
      expect(row.error).toBeUndefined();
      expect(row.threads).toBe(threads);
      expect(row.iterations).toBeGreaterThan(0);
      expect(row.perSecond).toBeGreaterThan(0);
    }
  });
});
