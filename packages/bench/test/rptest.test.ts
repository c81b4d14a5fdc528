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
  DRAINED_BATCHES,
  INBOXES,
  READY_THREADS,
  REMOTE_FREES,
  rptestRunState,
  runRptestLoop,
  SENT_BATCHES,
  verifyBlock,
} from '../src/workloads/rptest/loop.js';
import { parseRptestOutput, RPTEST_PROGRAM, runNativeRptest } from '../src/workloads/rptest/native.js';
import {
  ALLOC_OPS_TABLE_LENGTH,
  buildRptestTables,
  FREE_OPS_TABLE_LENGTH,
  MIMALLOC_BENCH_PARAMETERS,
  parameterArguments,
  SIZE_TABLE_LENGTH,
} from '../src/workloads/rptest/tables.js';
import { rptestLoop } from '../src/workloads/rptest/workload.js';

const HEAP_BYTES = 64 << 20;
const parameters = MIMALLOC_BENCH_PARAMETERS;
const tables = buildRptestTables(parameters);

/** Records who allocated each live block (`current`), so frees of another "thread"'s blocks are counted exactly. */
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

  realloc(): number {
    throw new Error('rptest never resizes');
  }
}

function limits(maxIterations: number): LoopLimits {
  return { stop: new Int32Array(1), deadline: Infinity, maxIterations };
}

function params(threadIndex: number, threads: number, runState: SharedArrayBuffer, verify = true): ThreadParams {
  return { threadIndex, threads, verify, runState };
}

beforeAll(async () => {
  await discoverBackends();
});

function freshBasicHeap(): GlobalAllocator {
  return createBackendHeap({ name: 'basic', options: {} }, HEAP_BYTES);
}

/** Facts of the tables, as `rptest --tables` prints them. */
function tableFacts(): Record<string, number> {
  const sizes = [...tables.sizes];
  const sum = (values: Iterable<number>): number => [...values].reduce((total, value) => total + value, 0);
  return {
    sizeSum: sum(sizes),
    minSize: Math.min(...sizes),
    maxSize: Math.max(...sizes),
    size0: sizes[0]!,
    allocOpsSum: sum(tables.allocOps),
    freeOpsSum: sum(tables.freeOps),
    allocScatter: tables.allocScatter,
    freeScatter: tables.freeScatter,
  };
}

describe('the rptest tables', () => {
  it("have the original's lengths and ranges, with sizes dropping linearly from 8 towards 16000", () => {
    expect(tables.sizes.length).toBe(SIZE_TABLE_LENGTH);
    expect(tables.allocOps.length).toBe(ALLOC_OPS_TABLE_LENGTH);
    expect(tables.freeOps.length).toBe(FREE_OPS_TABLE_LENGTH);
    expect(Math.min(...tables.sizes)).toBeGreaterThanOrEqual(parameters.minSize);
    expect(Math.max(...tables.sizes)).toBeLessThanOrEqual(parameters.maxSize);
    // |w0 + w1 - 1| times a uniform spread: a third of the mean of the even distribution.
    const mean = tableFacts().sizeSum! / SIZE_TABLE_LENGTH;
    expect(mean).toBeGreaterThan(2300);
    expect(mean).toBeLessThan(3100);
    const below = (bound: number): number => tables.sizes.filter((size) => size < bound).length / SIZE_TABLE_LENGTH;
    expect(below(4000)).toBeGreaterThan(0.6);
    expect(below(12_000)).toBeGreaterThan(0.95);
    // Percentages 30..99 of 100 operations (29 when 0.29 * 100 rounds down), frees 80 % of that.
    expect(Math.min(...tables.allocOps)).toBeGreaterThanOrEqual(29);
    expect(Math.max(...tables.allocOps)).toBeLessThanOrEqual(99);
    expect(Math.max(...tables.freeOps)).toBeLessThanOrEqual(80);
    expect([tables.allocScatter, tables.freeScatter]).toEqual([7, 11]);
  });

  it('gives fixed mode one size, and refuses what the original refuses', () => {
    expect(new Set(buildRptestTables({ ...parameters, mode: 1, minSize: 64 }).sizes)).toEqual(new Set([64]));
    expect(() => buildRptestTables({ ...parameters, maxSize: 4 })).toThrow(/invalid size range/);
    expect(() => buildRptestTables({ ...parameters, sizeMode: 3 })).toThrow(/invalid size mode/);
    expect(parameterArguments(parameters)).toEqual(['0', '1', '2', '500', '1000', '100', '8', '16000']);
  });
});

describe('one rptest loop', () => {
  it('fills the first allocation count of slots with the next sizes of the table, each counted', () => {
    const heap = freshBasicHeap();
    const allocator = new TaggingAllocator(heap);
    const outcome = runRptestLoop(allocator, loopMemory(heap.buffer), tables, parameters, limits(1), params(0, 1, rptestRunState(1)));
    const allocs = tables.allocOps[0]!;
    expect(outcome.iterations).toBe(allocs);
    // The slots array, then the blocks: round 0 of thread 0 starts at size index 37, and reads 2 ahead.
    expect(allocator.sizes.slice(1)).toEqual(Array.from({ length: allocs }, (_, i) => tables.sizes[37 + 2 + i]));
    expect(allocator.owners.size).toBe(0);
    heap.detach();
  });

  it('writes blocks as the original: its size first, 1 in its last byte, the rest zero or 0xCD', () => {
    const heap = freshBasicHeap();
    const memory = loopMemory(heap.buffer);
    const live: number[] = [];
    const keeping: AddressAllocator = {
      malloc: (size) => {
        const address = heap.malloc(size);
        live.push(address);
        return address;
      },
      free: () => undefined,
      realloc: () => 0,
    };
    runRptestLoop(keeping, memory, tables, parameters, limits(1), params(0, 1, rptestRunState(1)));
    const blocks = live.slice(1);
    const fills = new Set<number>();
    for (const address of blocks) {
      const size = memory.u32[address >>> 2]!;
      expect(memory.u8[address + size - 1]).toBe(1);
      verifyBlock(memory.u8, memory.u32, address, parameters);
      fills.add(memory.u8[address + 4]!);
    }
    expect(fills).toEqual(new Set([0, 0xcd]));
  });
});

describe('two rptest threads taking turns in this thread', () => {
  it('sends a batch every other loop while all threads run, and the receiver frees it', () => {
    const heap = freshBasicHeap();
    const start = heap.stats().usedBytes;
    const allocator = new TaggingAllocator(heap);
    const memory = loopMemory(heap.buffer);
    const runState = rptestRunState(2);
    const counters = new Int32Array(runState);
    const inboxes = new Uint32Array(runState, INBOXES * 4, 2);
    const allocs = tables.allocOps[0]!;
    // Thread 1 stands at the start line already, so thread 0 does not wait for it.
    counters[READY_THREADS] = 1;

    allocator.current = 0;
    const first = runRptestLoop(allocator, memory, tables, parameters, limits(1), params(0, 2, runState));
    // Loop 0: its allocations, then a batch (header, array, blocks) for thread 1.
    expect(first.iterations).toBe(allocs + 2 + allocs);
    expect(inboxes[1]).not.toBe(0);
    expect(counters[ACTIVE_THREADS]).toBe(1);

    allocator.current = 1;
    const second = runRptestLoop(allocator, memory, tables, parameters, limits(1), params(1, 2, runState));
    // Thread 0's batch freed, then its own allocations; no batch, since thread 0 has left.
    expect(second.iterations).toBe(allocs + 2 + allocs);
    expect(counters[REMOTE_FREES]).toBe(allocs);
    expect(allocator.crossFrees).toBe(allocs + 2);
    expect(counters[SENT_BATCHES]).toBe(1);
    expect(counters[DRAINED_BATCHES]).toBe(0);
    expect([...inboxes]).toEqual([0, 0]);
    expect(allocator.owners.size).toBe(0);
    heap.check();
    expect(heap.stats().usedBytes).toBe(start);
    heap.detach();
  });

  it('leaves to the last thread out a batch sent to a thread that had already left', () => {
    const heap = freshBasicHeap();
    const start = heap.stats().usedBytes;
    const memory = loopMemory(heap.buffer);
    const runState = rptestRunState(2);
    const counters = new Int32Array(runState);
    const inboxes = new Uint32Array(runState, INBOXES * 4, 2);
    // Thread 1 has come and gone, and a batch of three 16-byte blocks arrived in its inbox after.
    counters[READY_THREADS] = 1;
    counters[ACTIVE_THREADS] = 1;
    const blocks = [0, 1, 2].map(() => {
      const block = heap.malloc(16);
      memory.u8.fill(0, block, block + 16);
      memory.u32[block >>> 2] = 16;
      memory.u8[block + 15] = 1;
      return block;
    });
    const array = heap.malloc(blocks.length * 4);
    memory.u32.set(blocks, array >>> 2);
    const header = heap.malloc(16);
    memory.u32.set([0, blocks.length, array, 0], header >>> 2);
    inboxes[1] = header;

    runRptestLoop(heap, memory, tables, parameters, limits(1), params(0, 2, runState));
    expect(counters[ACTIVE_THREADS]).toBe(0);
    expect(counters[SENT_BATCHES]).toBe(0);
    expect(counters[DRAINED_BATCHES]).toBe(1);
    expect([...inboxes]).toEqual([0, 0]);
    heap.check();
    expect(heap.stats().usedBytes).toBe(start);
    heap.detach();
  });

  it('waits at the start line for a bounded time only', () => {
    const heap = freshBasicHeap();
    const runState = rptestRunState(2);
    const stop = new Int32Array(1);
    stop[0] = 1;
    // The other thread never comes; the stop flag ends the wait (and the run) at once.
    const outcome = runRptestLoop(heap, loopMemory(heap.buffer), tables, parameters, { stop, deadline: Infinity, maxIterations: 100 }, params(0, 2, runState));
    expect(outcome.iterations).toBe(0);
    expect(new Int32Array(runState)[READY_THREADS]).toBe(1);
    heap.detach();
  });
});

describe("rptest's verify", () => {
  /** Writes a stray byte into the newest live block whenever another block is freed, once. */
  class CorruptingAllocator extends TaggingAllocator {
    corruptions = 0;
    private last = 0;

    constructor(
      inner: AddressAllocator,
      private readonly u8: Uint8Array,
    ) {
      super(inner);
    }

    override malloc(size: number): number {
      const address = super.malloc(size);
      if (size >= 8 && size <= parameters.maxSize) this.last = address;
      return address;
    }

    override free(address: number): void {
      if (this.sizes.length > 2000 && this.corruptions === 0 && this.last !== address && this.owners.has(this.last)) {
        this.u8[this.last + 5] = 0x77;
        this.corruptions++;
      }
      super.free(address);
    }
  }

  it('catches a block overwritten while live, and only verify does', () => {
    const heap = freshBasicHeap();
    const corrupting = new CorruptingAllocator(heap, loopMemory(heap.buffer).u8);
    expect(() => runRptestLoop(corrupting, loopMemory(heap.buffer), tables, parameters, limits(50_000), params(0, 1, rptestRunState(1)))).toThrow(
      /^verify: the rptest block at 0x[0-9a-f]+ \(\d+ bytes by its first word\) has byte 5 = 119, expected (0|205)$/,
    );
    heap.detach();
    const again = freshBasicHeap();
    const unverified = new CorruptingAllocator(again, loopMemory(again.buffer).u8);
    runRptestLoop(unverified, loopMemory(again.buffer), tables, parameters, limits(50_000), params(0, 1, rptestRunState(1), false));
    expect(unverified.corruptions).toBe(1);
    again.detach();
  });
});

describe('rptest on two workers', () => {
  function capturingLoop(buffers: SharedArrayBuffer[]): ThreadLoop {
    return {
      ...rptestLoop,
      runState: (threads) => {
        const buffer = rptestLoop.runState!(threads);
        buffers.push(buffer);
        return buffer;
      },
    };
  }

  it.each(['basic', 'mimalloc'])('%s: batches freed by the other thread, every inbox emptied, the heap back to where it started', async (backend) => {
    const [contender] = resolveBackendContenders([{ name: backend, options: {} }]);
    const empty = createBackendHeap(contender!.spec, HEAP_BYTES);
    const startUsed = empty.stats().usedBytes;
    const startLive = empty.check().liveBlocks;
    empty.detach();
    const buffers: SharedArrayBuffer[] = [];
    // About 90,000 operations make a round: the threads free all their slots once.
    const operations = 100_000;
    const run = await runThreaded({
      contender: contender!,
      loop: capturingLoop(buffers),
      threads: 2,
      durationSeconds: Infinity,
      maxIterations: operations,
      verify: true,
      heapBytes: HEAP_BYTES,
    });
    // A thread stops at the first loop that starts with its count reached (a loop that takes
    // many batches at once goes well past it).
    for (const count of run.perThreadIterations) expect(count).toBeGreaterThanOrEqual(operations);
    expect(run.check!.usedBytes).toBe(startUsed);
    expect(run.check!.liveBlocks).toBe(startLive);
    const counters = new Int32Array(buffers[0]!);
    expect(counters[ACTIVE_THREADS]).toBe(0);
    expect(counters[SENT_BATCHES]).toBeGreaterThan(0);
    expect(counters[REMOTE_FREES]).toBeGreaterThan(0);
    expect([...new Uint32Array(buffers[0]!, INBOXES * 4, 2)]).toEqual([0, 0]);
  });
});

describe('the rptest C port', () => {
  const build = buildNativeProgram(RPTEST_PROGRAM);
  const missing = 'missing' in build ? build.missing : null;
  if (missing !== null) console.warn(`rptest native tests skipped: ${missing}`);

  it.skipIf(missing !== null)('builds the same tables as the TypeScript', () => {
    const printed = spawnSync((build as { binary: string }).binary, ['--tables', ...parameterArguments(parameters)], { encoding: 'utf8' });
    expect(printed.status).toBe(0);
    expect(JSON.parse(printed.stdout)).toEqual(tableFacts());
  });

  it.skipIf(missing !== null)('runs on two threads against the C library and reports its rate', async () => {
    const row = await runNativeRptest(nativeContender('glibc'), 2, 0.2);
    expect(row.error).toBeUndefined();
    expect(row.iterations).toBeGreaterThan(0);
    expect(row.perSecond).toBeGreaterThan(0);
  });

  it("reads the port's lines, and refuses others", () => {
    expect(parseRptestOutput(['10 memory ops', '50 memory ops/s', '25 memory ops/CPU second', '1 drained'])).toEqual({
      operations: 10,
      perSecond: 50,
      perThreadSecond: 25,
      drained: 1,
    });
    expect(() => parseRptestOutput(['10 memory ops'])).toThrow(/unexpected output/);
  });
});

describe('the rptest page', () => {
  it("exists and states mimalloc-bench's arguments", () => {
    const page = fileURLToPath(new URL('../../../docs/workloads/rptest.md', import.meta.url));
    expect(existsSync(page)).toBe(true);
    const text = readFileSync(page, 'utf8');
    for (const fact of ['rptest THREADS 0 1 2 500 1000 100 8 16000', 'memory ops', 'last thread']) expect(text).toContain(fact);
  });
});
