import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { beforeAll, describe, expect, it } from 'vitest';

import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import type { BackendContender } from '../src/contenders/contender.js';
import type { AddressAllocator, LoopLimits } from '../src/run/address-allocator.js';
import { buildNativeProgram } from '../src/run/native-program.js';
import type { ThreadLoop, ThreadParams } from '../src/run/thread-loop.js';
import { runThreaded } from '../src/run/threaded-run.js';
import { runScratchLoop, SCRATCH_OBJECT_SIZE, scratchFillByte, scratchRemoteFrees, scratchRunState } from '../src/workloads/cache-scratch/loop.js';
import { CACHE_SCRATCH_PROGRAM, parseRounds, runNativeCacheScratch } from '../src/workloads/cache-scratch/native.js';
import { cacheScratchLoop, cacheScratchWorkload } from '../src/workloads/cache-scratch/workload.js';

/**
 * One pool of 8-byte slots that several simulated threads share, each through its own
 * `ThreadAllocator`, so a test sees which thread freed what another allocated.
 */
class SlotPool {
  readonly owner = new Map<number, number>();
  readonly remoteFrees: { address: number; allocatedBy: number; freedBy: number }[] = [];
  private readonly freeSlots: number[] = [];
  private top = 64;

  constructor(private readonly failAfter = Infinity) {}

  allocatorOf(threadIndex: number): AddressAllocator & { mallocs: number; frees: number } {
    const allocator = {
      mallocs: 0,
      frees: 0,
      malloc: (size: number): number => {
        expect(size).toBe(SCRATCH_OBJECT_SIZE);
        if (this.owner.size >= this.failAfter) return 0;
        allocator.mallocs++;
        let address = this.freeSlots.pop();
        if (address === undefined) {
          address = this.top;
          this.top += 8;
        }
        this.owner.set(address, threadIndex);
        return address;
      },
      free: (address: number): void => {
        allocator.frees++;
        const allocatedBy = this.owner.get(address);
        if (allocatedBy === undefined) throw new Error(`free of 0x${address.toString(16)}, which is not live`);
        if (allocatedBy !== threadIndex) this.remoteFrees.push({ address, allocatedBy, freedBy: threadIndex });
        this.owner.delete(address);
        this.freeSlots.push(address);
      },
      realloc: (): number => {
        throw new Error('cache-scratch never resizes');
      },
    };
    return allocator;
  }
}

const limits = (maxIterations: number, stop = new Int32Array(1)): LoopLimits => ({ stop, deadline: Infinity, maxIterations });
const params = (threadIndex: number, threads: number, runState: SharedArrayBuffer): ThreadParams => ({ threadIndex, threads, verify: true, runState });

describe('the cache-scratch loop', () => {
  it('with one thread: thread 0 allocates its own object, frees it, then runs its rounds', () => {
    const pool = new SlotPool();
    const allocator = pool.allocatorOf(0);
    const state = scratchRunState(1);
    const u8 = new Uint8Array(1024);
    const outcome = runScratchLoop(allocator, u8, limits(40), params(0, 1, state));
    expect(outcome.iterations).toBe(40);
    expect(allocator.mallocs).toBe(41);
    expect(allocator.frees).toBe(41);
    expect(pool.owner.size).toBe(0);
    expect(scratchRemoteFrees(state)).toBe(0);
    // The freed hand-over object is reused by the rounds (this pool is LIFO).
    expect(u8[64]).toBe(scratchFillByte(0));
  });

  it('with three threads: each other thread frees the object thread 0 allocated for it, a remote free', () => {
    const pool = new SlotPool();
    const state = scratchRunState(3);
    const u8 = new Uint8Array(1024);
    // Thread 0 first (it hands over without waiting), then the others, one after the other in this thread.
    const outcomes = [0, 1, 2].map((index) => runScratchLoop(pool.allocatorOf(index), u8, limits(10), params(index, 3, state)));
    expect(outcomes.map((outcome) => outcome.iterations)).toEqual([10, 10, 10]);
    // Thread 0 took the three objects back to back (64, 72, 80); threads 1 and 2 freed theirs.
    expect(pool.remoteFrees).toEqual([
      { address: 72, allocatedBy: 0, freedBy: 1 },
      { address: 80, allocatedBy: 0, freedBy: 2 },
    ]);
    expect(scratchRemoteFrees(state)).toBe(2);
    expect(pool.owner.size).toBe(0);
  });

  it('leaves no object behind when a thread stops before the hand-over: the last one out frees it', () => {
    const pool = new SlotPool();
    const state = scratchRunState(2);
    const stopped = Int32Array.of(1);
    // Thread 1 finds no objects and the run stopped: it leaves at once, without waiting.
    const early = runScratchLoop(pool.allocatorOf(1), new Uint8Array(256), limits(10, stopped), params(1, 2, state));
    expect(early.iterations).toBe(0);
    // Thread 0 still hands over (untimed), runs no round, and as the last one out frees thread 1's object.
    const late = runScratchLoop(pool.allocatorOf(0), new Uint8Array(256), limits(10, stopped), params(0, 2, state));
    expect(late.iterations).toBe(0);
    expect(pool.owner.size).toBe(0);
    expect(scratchRemoteFrees(state)).toBe(0);
  });

  it('when thread 0 cannot allocate the objects, it fails and the others do not wait for them', () => {
    const pool = new SlotPool(1);
    const state = scratchRunState(2);
    expect(() => runScratchLoop(pool.allocatorOf(0), new Uint8Array(256), limits(10), params(0, 2, state))).toThrow(
      /returned 0 for the object of thread 2: the heap is full/,
    );
    expect(pool.owner.size).toBe(0);
    expect(() => runScratchLoop(pool.allocatorOf(1), new Uint8Array(256), limits(10), params(1, 2, state))).toThrow(/could not allocate the objects/);
  });

  it('needs its run state', () => {
    expect(() => runScratchLoop(new SlotPool().allocatorOf(0), new Uint8Array(64), limits(1), { ...params(0, 1, scratchRunState(1)), runState: null })).toThrow(
      /needs its run state/,
    );
  });
});

describe('cache-scratch on shared heaps', () => {
  let contenders: BackendContender[];
  beforeAll(async () => {
    await discoverBackends();
    contenders = resolveBackendContenders([
      { name: 'basic', options: {} },
      { name: 'mimalloc', options: {} },
    ]);
  });

  it.each(['basic', 'mimalloc'])('%s, 2 threads: the remote free happens, the heap checks clean and is as empty as it started', async (name) => {
    const contender = contenders.find((candidate) => candidate.label === name)!;
    const heapBytes = 16 << 20;
    const fresh = createBackendHeap(contender.spec, heapBytes);
    const emptyUsedBytes = fresh.stats().usedBytes;
    fresh.detach();
    // The same loop, keeping the run state the run makes so that its counter can be read after.
    let runState: SharedArrayBuffer | null = null;
    const watched: ThreadLoop = { ...cacheScratchLoop, runState: (threads) => (runState = scratchRunState(threads)) };
    const run = await runThreaded({ contender, loop: watched, threads: 2, durationSeconds: Infinity, maxIterations: 300, verify: true, heapBytes });
    expect(run.perThreadIterations).toEqual([300, 300]);
    expect(scratchRemoteFrees(runState!)).toBe(1);
    expect(run.check).not.toBeNull();
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(emptyUsedBytes);
  });

  it('a timed 2-thread run ends by its duration with nothing left live, even when it stops before the hand-over', async () => {
    // From source a worker takes longer to start than this run lasts: the threads may stop
    // before thread 0 hands the objects over, and the last one out frees what nobody took.
    const contender = contenders.find((candidate) => candidate.label === 'basic')!;
    const run = await runThreaded({
      contender,
      loop: cacheScratchLoop,
      threads: 2,
      durationSeconds: 0.05,
      maxIterations: Infinity,
      verify: false,
      heapBytes: 16 << 20,
    });
    expect(run.perThreadIterations).toHaveLength(2);
    expect(run.check!.liveBlocks).toBe(0);
  });
});

describe('the cache-scratch workload', () => {
  it('applies to heaplab backends, thi.ng and native, not to system or bump', () => {
    expect(cacheScratchWorkload.appliesTo({ kind: 'heaplab', label: 'basic', spec: { name: 'basic', options: {} } })).toBe(true);
    expect(cacheScratchWorkload.appliesTo({ kind: 'thing', label: '@thi.ng/malloc' })).toBe(true);
    expect(cacheScratchWorkload.appliesTo({ kind: 'native', label: 'native glibc', allocator: 'glibc' })).toBe(true);
    expect(cacheScratchWorkload.appliesTo({ kind: 'system', label: 'system' })).toBe(false);
    expect(cacheScratchWorkload.appliesTo({ kind: 'bump', label: 'bump' })).toBe(false);
    expect(cacheScratchLoop.runSystem).toBeUndefined();
  });

  it('has its docs page', () => {
    expect(existsSync(fileURLToPath(new URL('../../../docs/workloads/cache-scratch.md', import.meta.url)))).toBe(true);
  });
});

describe('the native port', () => {
  const build = buildNativeProgram(CACHE_SCRATCH_PROGRAM);
  if ('missing' in build) console.warn(`cache-scratch native test skipped: ${build.missing}`);

  it('reads the port line', () => {
    expect(parseRounds(['1234 rounds'])).toBe(1234);
    expect(() => parseRounds(['1234 rounds', 'more'])).toThrow(/unexpected output/);
  });

  it.runIf('binary' in build)('runs against the C library with 1 and 2 threads and counts rounds', async () => {
    for (const threads of [1, 2]) {
      const row = await runNativeCacheScratch({ kind: 'native', label: 'native glibc', allocator: 'glibc' }, threads, 0.05);
      expect(row.error).toBeUndefined();
      expect(row.threads).toBe(threads);
      expect(row.iterations).toBeGreaterThan(0);
    }
  });
});
