import { AllocError, GlobalAllocator, MiB } from '@heaplab/core';

import { expect } from 'vitest';

import { collect, heapReport, mimallocBackend, mimallocOf } from '../src/index.js';
import { PG_THREAD_FREE, SEGMENT_MASK, SG_PAGES, DELAYED_MASK, MAP_SHIFT_BITS, PAGE_DESCRIPTOR_SHIFT } from '../src/layout.js';

/**
 * A fresh mimalloc heap and a second handle on it (thread 2), both used from this thread.
 * Checked mode follows `HEAPLAB_CHECKED` unless `checked` says.
 */
export function twoHandles(options: Record<string, unknown> = {}, heapBytes = 16 * MiB, checked?: boolean): [GlobalAllocator, GlobalAllocator] {
  const first = GlobalAllocator.create({ backend: mimallocBackend, options, heapBytes, checked });
  const second = GlobalAllocator.attachSync(first.buffer, { backends: [mimallocBackend] });
  return [first, second];
}

/** The descriptor of the page holding `block`. */
export function pageOf(heap: GlobalAllocator, block: number): number {
  const context = mimallocOf(heap).context;
  const map = context.mapOf(block);
  const offset = block & SEGMENT_MASK;
  return block - offset + SG_PAGES + ((offset >>> (map >>> MAP_SHIFT_BITS)) << PAGE_DESCRIPTOR_SHIFT);
}

/** The delayed-free state of the page holding `block`. */
export function delayedState(heap: GlobalAllocator, block: number): number {
  return Atomics.load(heap.memory.u32, (pageOf(heap, block) + PG_THREAD_FREE) >>> 2) & DELAYED_MASK;
}

/** Waits (polling every 5 ms, at most 20 s) until `condition` holds; `what` names it in the timeout error. */
export async function until(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Frees `block`; a block that is already free is refused (NotAllocated), and that is fine. */
export function freeIfLive(heap: GlobalAllocator, block: number): boolean {
  try {
    heap.free(block);
    return true;
  } catch (error) {
    if (error instanceof AllocError && error.kind === 'NotAllocated') return false;
    throw error;
  }
}

/**
 * Checks `heap`, collects twice around quiescent points (so held and delayed pages go back),
 * checks again, and expects nothing used, no live block and no segment left.
 */
export function expectEmptied(heap: GlobalAllocator): void {
  heap.check();
  heap.quiescent();
  collect(heap, true);
  heap.quiescent();
  collect(heap, true);
  heap.check();
  expect(heap.usedBytes()).toBe(0);
  expect(heap.stats().liveBlocks).toBe(0);
  expect(heapReport(heap).segments).toMatchObject({ small: 0, medium: 0, large: 0, abandoned: 0 });
}
