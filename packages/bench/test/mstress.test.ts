import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { GlobalAllocator } from '@heaplab/core';
import { beforeAll, describe, expect, it } from 'vitest';

import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { nativeContender } from '../src/contenders/contender.js';
import { type AddressAllocator, type LoopLimits, loopMemory } from '../src/run/address-allocator.js';
import { buildNativeProgram } from '../src/run/native-program.js';
import type { ThreadLoop, ThreadParams } from '../src/run/thread-loop.js';
import { runThreaded } from '../src/run/threaded-run.js';
import {
  ACTIVE_THREADS,
  COOKIE_HIGH,
  COOKIE_LOW,
  CorruptionError,
  DRAINED_BLOCKS,
  ITEM_BYTES,
  mstressRunState,
  REMOTE_FREES,
  roundAllocations,
  runMstressLoop,
  StressRandom,
  TAKEN_BLOCKS,
  TRANSFER_SLOT_COUNT,
  TRANSFER_SLOTS,
} from '../src/workloads/mstress/loop.js';
import { MSTRESS_PROGRAM, parseMstressOutput, runNativeMstress } from '../src/workloads/mstress/native.js';
import { mstressHeapBytes, mstressLoop } from '../src/workloads/mstress/workload.js';

const HEAP_BYTES = 64 << 20;
/** The loop's own arrays, which are not blocks of items: the retained array of thread 0 (2500 entries) and the short-lived array (100000). */
const ARRAY_BYTES = new Set([(roundAllocations(0) / 2) * 4, 100_000 * 4]);

/**
 * Wraps a heap and records, for each live block, the "thread" that allocated it (`current`),
 * so a test that runs threads one after the other in this thread can count frees of another
 * thread's blocks exactly, and catch a double or unknown free.
 */
class TaggingAllocator implements AddressAllocator {
  readonly owners = new Map<number, number>();
  readonly sizes: number[] = [];
  current = 0;
  crossFrees = 0;

  constructor(readonly inner: AddressAllocator) {}

  malloc(size: number): number {
    const address = this.inner.malloc(size);
    if (address !== 0) {
      this.owners.set(address, this.current);
      this.sizes.push(size);
    }
    return address;
  }

  free(address: number): void {
    const owner = this.owners.get(address);
    if (owner === undefined) throw new Error(`free of 0x${address.toString(16)}, which is not live`);
    if (owner !== this.current) this.crossFrees++;
    this.owners.delete(address);
    this.inner.free(address);
  }

  realloc(address: number, size: number): number {
    const owner = this.owners.get(address);
    const moved = this.inner.realloc(address, size);
    if (moved !== 0) {
      this.owners.delete(address);
      this.owners.set(moved, owner ?? this.current);
    }
    return moved;
  }
}

function limits(maxIterations: number): LoopLimits {
  return { stop: new Int32Array(1), deadline: Infinity, maxIterations };
}

function params(threadIndex: number, threads: number, runState: SharedArrayBuffer): ThreadParams {
  return { threadIndex, threads, verify: false, runState };
}

beforeAll(async () => {
  await discoverBackends();
});

function freshBasicHeap(): GlobalAllocator {
  return createBackendHeap({ name: 'basic', options: {} }, HEAP_BYTES);
}

describe('the mstress generator and sizes', () => {
  it('is the 32-bit hash of the original, with chance(p) true for (p + 1) draws in 100', () => {
    // The hash by hand for state 43, the first thread's seed.
    let x = 43;
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d) >>> 0;
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b) >>> 0;
    x ^= x >>> 16;
    expect(new StressRandom(43).pick()).toBe(x >>> 0);
    const random = new StressRandom(1);
    let hits = 0;
    for (let i = 0; i < 100_000; i++) if (random.chance(1)) hits++;
    expect(hits / 100_000).toBeCloseTo(0.02, 2);
  });

  it('gives some threads more work: 5000 short-lived allocations times (t % 8 + 1) per round', () => {
    expect([0, 1, 7, 8].map((thread) => roundAllocations(thread))).toEqual([5000, 10_000, 40_000, 5000]);
  });

  it('allocates mostly small blocks, a few large ones, all filled with the cookie pattern', () => {
    const heap = freshBasicHeap();
    const allocator = new TaggingAllocator(heap);
    runMstressLoop(allocator, loopMemory(heap.buffer), limits(20_000), params(0, 1, mstressRunState(1)));
    const sizes = allocator.sizes.filter((size) => !ARRAY_BYTES.has(size));
    expect(sizes.length).toBe(20_000);
    const small = sizes.filter((size) => size <= 64 * ITEM_BYTES).length;
    const large = sizes.filter((size) => size >= 100 * ITEM_BYTES).length;
    // 2 % of allocations are made large (x 100 or more).
    expect(small / sizes.length).toBeGreaterThan(0.97);
    expect(large / sizes.length).toBeGreaterThan(0.01);
    expect(Math.max(...sizes)).toBeGreaterThanOrEqual(1000 * ITEM_BYTES);
    expect(sizes.every((size) => size % ITEM_BYTES === 0)).toBe(true);
    heap.detach();
  });
});

describe('one mstress thread', () => {
  it('counts its allocations, runs whole rounds, and frees everything, the transfer array included', () => {
    const heap = freshBasicHeap();
    const start = heap.stats().usedBytes;
    const runState = mstressRunState(1);
    // Two rounds of thread 0 (7500 steps each) and part of a third.
    const outcome = runMstressLoop(heap, loopMemory(heap.buffer), limits(17_000), params(0, 1, runState));
    expect(outcome.iterations).toBe(17_000);
    expect(outcome.highWater).toBeGreaterThan(heap.arenaStart);
    const counters = new Int32Array(runState);
    expect(counters[ACTIVE_THREADS]).toBe(0);
    // A single thread swaps with itself: no block of another thread.
    expect(counters[TAKEN_BLOCKS]).toBeGreaterThan(0);
    expect(counters[REMOTE_FREES]).toBe(0);
    expect(counters[DRAINED_BLOCKS]).toBeGreaterThan(0);
    expect([...new Uint32Array(runState, TRANSFER_SLOTS * 4)].every((slot) => slot === 0)).toBe(true);
    heap.check();
    expect(heap.stats().usedBytes).toBe(start);
    heap.detach();
  });

  it('writes the original pattern: item i of n holds (n - i) ^ cookie, the 64-bit cookie 0xbf58476d1ce4e5b9', () => {
    const memory = loopMemory(new ArrayBuffer(1 << 20));
    let next = 8;
    const seen: { address: number; size: number }[] = [];
    const recording: AddressAllocator = {
      malloc: (size) => {
        const address = next;
        next += size;
        seen.push({ address, size });
        return address;
      },
      // Nothing is reused, so every block keeps what its allocation wrote.
      free: () => undefined,
      realloc: () => 0,
    };
    runMstressLoop(recording, memory, limits(50), params(0, 1, mstressRunState(1)));
    const block = seen.find(({ size }) => !ARRAY_BYTES.has(size) && size >= 4 * ITEM_BYTES)!;
    const items = block.size / ITEM_BYTES;
    for (let i = 0; i < items; i++) {
      expect(memory.view.getBigUint64(block.address + i * ITEM_BYTES, true)).toBe(BigInt(items - i) ^ 0xbf58476d1ce4e5b9n);
    }
    expect(memory.u32[block.address >>> 2]).toBe((items ^ COOKIE_LOW) >>> 0);
    expect(memory.u32[(block.address >>> 2) + 1]).toBe(COOKIE_HIGH);
  });

  it('stops on the stop flag, freeing what the round held', () => {
    const heap = freshBasicHeap();
    const start = heap.stats().usedBytes;
    const stop = new Int32Array(1);
    stop[0] = 1;
    const outcome = runMstressLoop(heap, loopMemory(heap.buffer), { stop, deadline: Infinity, maxIterations: 1000 }, params(0, 1, mstressRunState(1)));
    expect(outcome.iterations).toBe(0);
    expect(heap.stats().usedBytes).toBe(start);
    heap.detach();
  });
});

describe('two mstress threads taking turns in this thread', () => {
  it("hands blocks over: the second frees the first one's blocks, and the last out empties the transfer array", () => {
    const heap = freshBasicHeap();
    const start = heap.stats().usedBytes;
    const allocator = new TaggingAllocator(heap);
    const memory = loopMemory(heap.buffer);
    const runState = mstressRunState(2);
    const counters = new Int32Array(runState);
    const slots = new Uint32Array(runState, TRANSFER_SLOTS * 4, TRANSFER_SLOT_COUNT);

    allocator.current = 0;
    runMstressLoop(allocator, memory, limits(4000), params(0, 2, runState));
    // Not the last: it leaves its blocks in the slots for the other thread.
    expect(counters[ACTIVE_THREADS]).toBe(1);
    expect(counters[DRAINED_BLOCKS]).toBe(0);
    const leftByFirst = slots.filter((slot) => slot !== 0).length;
    expect(leftByFirst).toBeGreaterThan(100);
    expect(allocator.owners.size).toBe(leftByFirst);

    allocator.current = 1;
    runMstressLoop(allocator, memory, limits(4000), params(1, 2, runState));
    expect(counters[ACTIVE_THREADS]).toBe(0);
    // The second thread freed blocks of the first: some in its loop, the rest in the drain.
    expect(allocator.crossFrees).toBeGreaterThan(0);
    expect(counters[REMOTE_FREES]).toBeGreaterThan(0);
    expect(counters[REMOTE_FREES]).toBeLessThanOrEqual(allocator.crossFrees);
    expect(counters[DRAINED_BLOCKS]).toBeGreaterThan(0);
    expect(slots.every((slot) => slot === 0)).toBe(true);
    expect(allocator.owners.size).toBe(0);
    heap.check();
    expect(heap.stats().usedBytes).toBe(start);
    heap.detach();
  });
});

describe("mstress's check", () => {
  /**
   * Over a heap, flips the low bit of the first word of the most recent block still live
   * whenever another block is freed: its pattern no longer matches its length.
   */
  class CorruptingAllocator extends TaggingAllocator {
    corruptions = 0;
    private last = 0;

    constructor(
      inner: AddressAllocator,
      private readonly u32: Uint32Array,
      private readonly afterMallocs: number,
    ) {
      super(inner);
    }

    override malloc(size: number): number {
      const address = super.malloc(size);
      if (!ARRAY_BYTES.has(size)) this.last = address;
      return address;
    }

    override free(address: number): void {
      if (this.sizes.length >= this.afterMallocs && this.corruptions === 0 && this.last !== 0 && this.last !== address && this.owners.has(this.last)) {
        this.u32[this.last >>> 2]! ^= 1;
        this.corruptions++;
      }
      super.free(address);
    }
  }

  it('catches a block whose pattern was changed, naming it', () => {
    const heap = freshBasicHeap();
    const corrupting = new CorruptingAllocator(heap, loopMemory(heap.buffer).u32, 500);
    const run = (): unknown => runMstressLoop(corrupting, loopMemory(heap.buffer), limits(10_000), params(0, 1, mstressRunState(1)));
    expect(run).toThrow(CorruptionError);
    expect(corrupting.corruptions).toBe(1);
    heap.detach();
    const again = freshBasicHeap();
    const corruptingAgain = new CorruptingAllocator(again, loopMemory(again.buffer).u32, 500);
    expect(() => runMstressLoop(corruptingAgain, loopMemory(again.buffer), limits(10_000), params(0, 1, mstressRunState(1)))).toThrow(
      /^memory corruption at block 0x[0-9a-f]+ at item \d+ \(thread 0, step \d+\)$/,
    );
    again.detach();
  });

  it('passes the same run without the corruption', () => {
    const heap = freshBasicHeap();
    const never = new CorruptingAllocator(heap, loopMemory(heap.buffer).u32, Infinity);
    expect(runMstressLoop(never, loopMemory(heap.buffer), limits(10_000), params(0, 1, mstressRunState(1))).iterations).toBe(10_000);
    expect(never.corruptions).toBe(0);
    heap.detach();
  });
});

describe('mstress on two workers', () => {
  /** mstressLoop, keeping each run's shared buffer for the test to read (workers find the loop by name). */
  function capturingLoop(buffers: SharedArrayBuffer[]): ThreadLoop {
    return {
      ...mstressLoop,
      runState: (threads) => {
        const buffer = mstressLoop.runState!(threads);
        buffers.push(buffer);
        return buffer;
      },
    };
  }

  it.each(['basic', 'mimalloc'])('%s: blocks freed across threads, the transfer array emptied, the heap back to where it started', async (backend) => {
    const [contender] = resolveBackendContenders([{ name: backend, options: {} }]);
    const empty = createBackendHeap(contender!.spec, mstressHeapBytes(2, HEAP_BYTES));
    const startUsed = empty.stats().usedBytes;
    const startLive = empty.check().liveBlocks;
    empty.detach();
    const buffers: SharedArrayBuffer[] = [];
    // Thread 0 finishes a round (7500 steps) and starts another; thread 1 is inside its first.
    const steps = 9000;
    const run = await runThreaded({
      contender: contender!,
      loop: capturingLoop(buffers),
      threads: 2,
      durationSeconds: Infinity,
      maxIterations: steps,
      verify: false,
      heapBytes: mstressHeapBytes(2, HEAP_BYTES),
    });
    expect(run.perThreadIterations).toEqual([steps, steps]);
    expect(run.check!.usedBytes).toBe(startUsed);
    expect(run.check!.liveBlocks).toBe(startLive);
    const counters = new Int32Array(buffers[0]!);
    expect(counters[ACTIVE_THREADS]).toBe(0);
    expect(counters[TAKEN_BLOCKS]).toBeGreaterThan(0);
    expect(counters[REMOTE_FREES]).toBeGreaterThan(0);
    expect([...new Uint32Array(buffers[0]!, TRANSFER_SLOTS * 4)].every((slot) => slot === 0)).toBe(true);
  });

  it("sizes the heap to the threads' load", () => {
    expect(mstressHeapBytes(1, HEAP_BYTES)).toBe(HEAP_BYTES);
    expect(mstressHeapBytes(2, HEAP_BYTES)).toBe(96 << 20);
    expect(mstressHeapBytes(4, HEAP_BYTES)).toBe(320 << 20);
    expect(mstressHeapBytes(2, 512 << 20)).toBe(512 << 20);
  });
});

describe('the mstress C port', () => {
  const build = buildNativeProgram(MSTRESS_PROGRAM);
  const missing = 'missing' in build ? build.missing : null;
  if (missing !== null) console.warn(`mstress native tests skipped: ${missing}`);

  it.skipIf(missing !== null)('allocates the same sizes in the same order as the TypeScript loop', () => {
    const count = 20_000;
    const printed = spawnSync((build as { binary: string }).binary, ['--sizes', String(count)], { encoding: 'utf8' });
    expect(printed.status).toBe(0);
    const heap = freshBasicHeap();
    const allocator = new TaggingAllocator(heap);
    runMstressLoop(allocator, loopMemory(heap.buffer), limits(count), params(0, 1, mstressRunState(1)));
    heap.detach();
    expect(printed.stdout.trim().split('\n').map(Number)).toEqual(allocator.sizes.filter((size) => !ARRAY_BYTES.has(size)));
  });

  it.skipIf(missing !== null)('runs on two threads against the C library and reports its rate', async () => {
    const row = await runNativeMstress(nativeContender('glibc'), 2, 0.2);
    expect(row.error).toBeUndefined();
    expect(row.iterations).toBeGreaterThan(0);
    expect(row.perSecond).toBeGreaterThan(0);
    expect(row.note).toMatch(/C library/);
  });

  it("reads the port's lines, and refuses others", () => {
    expect(parseMstressOutput(['12 allocations', '340 allocations/s', '5 drained'])).toEqual({ allocations: 12, perSecond: 340, drained: 5 });
    expect(() => parseMstressOutput(['12 allocations'])).toThrow(/unexpected output/);
  });
});

describe('the mstress page', () => {
  it('exists and states the parameters kept and scaled', () => {
    const page = fileURLToPath(new URL('../../../docs/workloads/mstress.md', import.meta.url));
    expect(existsSync(page)).toBe(true);
    const text = readFileSync(page, 'utf8');
    for (const fact of ['mstress THREADS 50 25', 'SCALE', 'ITER', 'transfer', 'last thread']) expect(text).toContain(fact);
  });
});
