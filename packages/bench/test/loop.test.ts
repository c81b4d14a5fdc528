import { describe, expect, it } from 'vitest';

import { BumpAllocator, MIN_BUMP_REGION_BYTES } from '../src/contenders/bump-allocator.js';
import { type AddressAllocator, type LoopMemory, loopMemory } from '../src/run/address-allocator.js';
import { fillBytes, runGlibcThreadLoop, verifyFill } from '../src/workloads/glibc-thread/loop.js';
import { buildRequestTables, NUM_BLOCK_SIZES } from '../src/workloads/glibc-thread/request-tables.js';

const tables = buildRequestTables();

/** A bump allocator that records every call. */
class RecordingAllocator implements AddressAllocator {
  readonly mallocs: number[] = [];
  readonly frees: number[] = [];
  private readonly inner = new BumpAllocator(0, 4 * MIN_BUMP_REGION_BYTES);

  malloc(size: number): number {
    this.mallocs.push(size);
    return this.inner.malloc(size);
  }

  free(address: number): void {
    this.frees.push(address);
  }

  realloc(): number {
    throw new Error('the glibc-thread loop never resizes');
  }
}

function memory(): LoopMemory {
  return loopMemory(new ArrayBuffer(4 * MIN_BUMP_REGION_BYTES));
}

const noStop = { stop: new Int32Array(1), deadline: Infinity };

describe('the glibc-thread loop', () => {
  it('advances both cursors before use and fills each block with the iteration byte', () => {
    const allocator = new RecordingAllocator();
    const views = memory();
    const outcome = runGlibcThreadLoop(allocator, views, tables, { ...noStop, maxIterations: 5 }, true);
    expect(outcome.iterations).toBe(5);
    expect(allocator.mallocs).toEqual([...tables.sizes.subarray(1, 6)]);
    // Fresh slots: nothing to free in the first iterations (offsets 1..5 are distinct).
    expect(new Set(tables.offsets.subarray(1, 6)).size).toBe(5);
    expect(allocator.frees).toEqual([]);
    // The first block (iteration 0, fill 0) follows address 8; the second holds byte 1.
    const second = 8 + ((tables.sizes[1]! + 7) & ~7);
    expect(views.u8[second]).toBe(1);
    expect(views.u8[second + tables.sizes[2]! - 1]).toBe(1);
    expect(outcome.highWater).toBeGreaterThan(second);
  });

  it('frees the block a slot held when the offset comes round again, and wraps the size cursor', () => {
    const allocator = new RecordingAllocator();
    const iterations = NUM_BLOCK_SIZES + 2;
    runGlibcThreadLoop(allocator, memory(), tables, { ...noStop, maxIterations: iterations }, true);
    expect(allocator.mallocs[NUM_BLOCK_SIZES - 2]).toBe(tables.sizes[NUM_BLOCK_SIZES - 1]);
    expect(allocator.mallocs[NUM_BLOCK_SIZES - 1]).toBe(tables.sizes[0]);
    expect(allocator.mallocs[NUM_BLOCK_SIZES]).toBe(tables.sizes[1]);
    // Every malloc after the first use of a slot is paired with a free of that slot.
    const distinctSlots = new Set<number>();
    for (let i = 1; i <= iterations; i++) distinctSlots.add(tables.offsets[i % 4096]!);
    expect(allocator.frees.length).toBe(iterations - distinctSlots.size);
  });

  it('stops on the stop flag', () => {
    const stop = new Int32Array(1);
    stop[0] = 1;
    const outcome = runGlibcThreadLoop(new RecordingAllocator(), memory(), tables, { stop, deadline: Infinity, maxIterations: 100 }, false);
    expect(outcome.iterations).toBe(0);
  });

  it('in verify mode, catches an allocator that hands out overlapping blocks', () => {
    // Every block at the same address: the next fill overwrites the live block's bytes.
    const overlapping: AddressAllocator = { malloc: () => 64, free: () => undefined, realloc: () => 64 };
    expect(() => runGlibcThreadLoop(overlapping, memory(), tables, { ...noStop, maxIterations: 5000 }, true)).toThrow(
      /verify: the \d+-byte block in slot \d+ at 0x40 has byte 0 = \d+, expected \d+/,
    );
  });

  it('fills and verifies every byte, including the tail, for every byte value', () => {
    const views = memory();
    for (let fill = 0; fill < 256; fill++) {
      fillBytes(views, 64, 45, fill);
      expect(() => verifyFill(views.u8, views.u32, 64, 45, fill, 0), `fill ${fill}`).not.toThrow();
    }
    views.u8.fill(0);
    for (const size of [1, 2, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31126]) {
      fillBytes(views, 64, size, 0xab);
      expect(views.u8[64 + size - 1]).toBe(0xab);
      // Nothing outside the block: the overlapping last store ends exactly at its end.
      expect(views.u8[63]).not.toBe(0xab);
      expect(views.u8[64 + size]).not.toBe(0xab);
      expect(() => verifyFill(views.u8, views.u32, 64, size, 0xab, 0)).not.toThrow();
      views.u8[64 + size - 1] = 0;
      expect(() => verifyFill(views.u8, views.u32, 64, size, 0xab, 0)).toThrow(`byte ${size - 1} = 0`);
      views.u8.fill(0);
    }
  });
});
