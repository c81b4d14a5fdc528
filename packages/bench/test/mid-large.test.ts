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
import { runThreaded } from '../src/run/threaded-run.js';
import type { BenchMeta } from '../src/run/workload.js';
import {
  MID_LARGE_MAX_SIZE,
  MID_LARGE_MIN_SIZE,
  MID_LARGE_WORKING_SET,
  midLargeRandom,
  midLargeSize,
  runMidLargeLoop,
  runSystemMidLargeLoop,
} from '../src/workloads/mid-large/loop.js';
import { MID_LARGE_PORT } from '../src/workloads/mid-large/native.js';
import { MID_LARGE_HEAP_BYTES, midLargeLoop, midLargeWorkload } from '../src/workloads/mid-large/workload.js';

await discoverBackends();

/** Thread 0's set-up bytes and first draws (slot, size), as the C port's `--draws 3` printed them. */
const C_DRAWS_3 = {
  setupBytes: 5_094_836,
  draws: [
    [179, 9021],
    [205, 31720],
    [86, 30569],
  ],
};

/** A bump allocator over a large plain buffer that records every call. */
class RecordingAllocator implements AddressAllocator {
  readonly mallocs: { size: number; address: number }[] = [];
  readonly frees: number[] = [];
  readonly memory = loopMemory(new ArrayBuffer(64 << 20));
  private readonly inner = new BumpAllocator(0, 64 << 20);

  malloc(size: number): number {
    const address = this.inner.malloc(size);
    this.mallocs.push({ size, address });
    return address;
  }

  free(address: number): void {
    this.frees.push(address);
  }

  realloc(): number {
    throw new Error('mid-large never resizes');
  }
}

const noStop = { stop: new Int32Array(1), deadline: Infinity };
const thread0 = { threadIndex: 0, threads: 1, verify: true, runState: null };

describe('the mid-large loop', () => {
  it('fills its working set, then replaces a drawn slot per iteration: its block freed, a block of a drawn size in its place', () => {
    const allocator = new RecordingAllocator();
    const outcome = runMidLargeLoop(allocator, allocator.memory, { ...noStop, maxIterations: 3 }, thread0);
    expect(outcome.iterations).toBe(3);
    const setup = allocator.mallocs.slice(0, MID_LARGE_WORKING_SET);
    expect(setup.reduce((sum, block) => sum + block.size, 0)).toBe(C_DRAWS_3.setupBytes);
    const replaced = allocator.mallocs.slice(MID_LARGE_WORKING_SET);
    expect(replaced.map((block) => block.size)).toEqual(C_DRAWS_3.draws.map(([, size]) => size));
    // The first three frees are the drawn slots' blocks (slots are filled in order in the set-up).
    expect(allocator.frees.slice(0, 3)).toEqual(C_DRAWS_3.draws.map(([slot]) => setup[slot!]!.address));
    // Then the working set is freed, every block still held once.
    expect(allocator.frees.length).toBe(3 + MID_LARGE_WORKING_SET);
    expect(new Set(allocator.frees).size).toBe(allocator.frees.length);
    expect(outcome.highWater).toBe(Math.max(...allocator.mallocs.map((block) => block.address + block.size)));
  });

  it('draws sizes of 8..32 KiB, and writes the first and last byte of each block', () => {
    const random = midLargeRandom(3);
    for (let i = 0; i < 10_000; i++) {
      const size = midLargeSize(random);
      expect(size).toBeGreaterThanOrEqual(MID_LARGE_MIN_SIZE);
      expect(size).toBeLessThanOrEqual(MID_LARGE_MAX_SIZE);
    }
    const allocator = new RecordingAllocator();
    runMidLargeLoop(allocator, allocator.memory, { ...noStop, maxIterations: 2 }, thread0);
    // The second replacement (iteration 1) wrote 1 at both ends of its block.
    const second = allocator.mallocs[MID_LARGE_WORKING_SET + 1]!;
    expect(allocator.memory.u8[second.address]).toBe(1);
    expect(allocator.memory.u8[second.address + second.size - 1]).toBe(1);
    expect(allocator.memory.u8[second.address + 1]).toBe(0);
  });

  it('in verify mode, catches an allocator that hands out overlapping blocks', () => {
    const overlapping = new RecordingAllocator();
    overlapping.malloc = () => 64;
    expect(() => runMidLargeLoop(overlapping, overlapping.memory, { ...noStop, maxIterations: 1000 }, thread0)).toThrow(
      /verify: the \d+-byte block in slot \d+ at 0x40 has end bytes/,
    );
  });

  it('has a system loop that makes the same number of replacements', () => {
    expect(runSystemMidLargeLoop({ ...noStop, maxIterations: 500 }, thread0).iterations).toBe(500);
  });

  it('stops at the end of the batch in which the stop flag rises, and fails when the run is over before it starts', () => {
    const stop = new Int32Array(1);
    const allocator = new RecordingAllocator();
    const inner = allocator.malloc.bind(allocator);
    allocator.malloc = (size) => {
      if (allocator.mallocs.length === MID_LARGE_WORKING_SET + 10) stop[0] = 1;
      return inner(size);
    };
    expect(runMidLargeLoop(allocator, allocator.memory, { stop, deadline: Infinity, maxIterations: 5000 }, thread0).iterations).toBe(64);
    const late = { stop: new Int32Array([1]), deadline: Infinity, maxIterations: 500 };
    expect(() => runMidLargeLoop(new RecordingAllocator(), allocator.memory, late, thread0)).toThrow(/run was over before this thread began timing/);
    expect(() => runSystemMidLargeLoop(late, thread0)).toThrow(/run was over before this thread began timing/);
  });
});

describe('mid-large on a shared heap', () => {
  /** A run of `threads` threads on the workload's heap, checked clean and empty against a fresh heap of the backend. */
  async function expectCleanRun(backend: string, threads: number): Promise<void> {
    const [contender] = resolveBackendContenders([{ name: backend, options: {} }]);
    if (contender === undefined || contender.kind !== 'heaplab') throw new Error(`no backend ${backend}`);
    const fresh = createBackendHeap(contender.spec, MID_LARGE_HEAP_BYTES);
    const startUsed = fresh.stats().usedBytes;
    fresh.detach();
    const run = await runThreaded({
      contender,
      loop: midLargeLoop,
      threads,
      durationSeconds: Infinity,
      maxIterations: 5000,
      verify: true,
      heapBytes: MID_LARGE_HEAP_BYTES,
    });
    expect(run.perThreadIterations).toEqual(new Array(threads).fill(5000));
    // A working set is 256 blocks of 8 KiB at least.
    expect(run.peakUsedBytes).toBeGreaterThan(MID_LARGE_WORKING_SET * MID_LARGE_MIN_SIZE);
    expect(run.check!.liveBlocks).toBe(0);
    expect(run.check!.usedBytes).toBe(startUsed);
  }

  it.each(['basic', 'mimalloc'])('%s, 2 threads: the heap checks clean and empties', (backend) => expectCleanRun(backend, 2));

  // The two backends that need the most heap for these sizes (docs/workloads/mid-large.md).
  it.each(['mimalloc', 'buddy'])('%s, 4 threads: runs on the workload heap', (backend) => expectCleanRun(backend, 4));
});

describe('the mid-large C port', () => {
  const build = buildNativeProgram(MID_LARGE_PORT.program);
  if ('missing' in build) console.warn(`mid-large native tests skipped: ${build.missing}`);

  it.runIf('binary' in build)('draws the same slots and sizes as the TypeScript loop', () => {
    const printed = JSON.parse(execFileSync((build as { binary: string }).binary, ['--draws', '3'], { encoding: 'utf8' })) as typeof C_DRAWS_3;
    expect(printed).toEqual(C_DRAWS_3);
  });

  it.runIf('binary' in build)('runs and reports its replacements and rate', async () => {
    const row = await runNativeRateRow(MID_LARGE_PORT, nativeContender('glibc'), 1, 0.2);
    expect(row.error).toBeUndefined();
    expect(row.iterations).toBeGreaterThan(0);
    expect(row.perSecond).toBeGreaterThan(0);
  });
});

describe('the mid-large workload', () => {
  it('applies to all but bump, runs on at least its own heap, and has its page', () => {
    expect(midLargeWorkload.appliesTo({ kind: 'bump', label: 'bump' })).toBe(false);
    expect(midLargeWorkload.appliesTo({ kind: 'system', label: 'system' })).toBe(true);
    expect(midLargeWorkload.appliesTo(nativeContender('glibc'))).toBe(true);
    const meta = { durationSeconds: 1, heapBytes: 64 << 20 } as BenchMeta;
    const title = midLargeWorkload.section([], { meta, rowsOf: () => [] }).title;
    expect(title).toContain('a 128 MiB heap');
    expect(existsSync(fileURLToPath(new URL('../../../docs/workloads/mid-large.md', import.meta.url)))).toBe(true);
  });
});
