/**
 * The heap walk's agreement check, shared by every backend's tests (issue #15): a quiescent
 * heap's `walk()` must tile the arena and agree with its `stats()` and `usableSize`.
 *
 * ```ts
 * import { expectWalkAgrees } from '@heaplab/test-kit';
 * const regions = expectWalkAgrees(heap);   // the walk, once it agreed
 * ```
 */

import fc from 'fast-check';
import { expect } from 'vitest';

import { type GlobalAllocator, type HeapRegion, hex } from '@heaplab/core';

/** What a walk adds up to, as `expectWalkAgrees` counts it. */
export interface WalkTotals {
  live: number;
  liveBytes: number;
  /** Sum of `requested` over live regions; null when some live region has none. */
  requested: number | null;
  free: number;
  freeBytes: number;
  largestFree: number;
}

/** Counts a walk's live and free regions and their bytes. */
export function walkTotals(regions: readonly HeapRegion[]): WalkTotals {
  const totals: WalkTotals = { live: 0, liveBytes: 0, requested: 0, free: 0, freeBytes: 0, largestFree: 0 };
  for (const region of regions) {
    if (region.kind === 'live') {
      totals.live++;
      totals.liveBytes += region.bytes;
      totals.requested = region.requested === undefined || totals.requested === null ? null : totals.requested + region.requested;
    } else if (region.kind === 'free') {
      totals.free++;
      totals.freeBytes += region.bytes;
      if (region.bytes > totals.largestFree) totals.largestFree = region.bytes;
    }
  }
  return totals;
}

/**
 * Walks `heap` (quiescent: no other thread allocating or freeing) and expects the walk to
 * agree with the heap's figures:
 *  1. the regions tile `[arenaStart, arenaEnd)` in address order, without gaps or overlaps;
 *  2. the number of `live` regions is `stats().liveBlocks`;
 *  3. their bytes sum to `stats().grantedBytes`, and each spans `usableSize(address)` bytes;
 *  4. when every live region has `requested`, those sum to `stats().requestedBytes`; a
 *     backend whose `requestedBytes` is null reports no `requested`;
 *  5. the number of `free` regions is `stats().freeBlocks`.
 * Every disagreement is listed in one failure. Returns the regions.
 */
export function expectWalkAgrees(heap: GlobalAllocator): HeapRegion[] {
  const regions = heap.walk();
  const stats = heap.stats();
  const problems: string[] = [];
  let cursor = heap.arenaStart;
  for (const [i, region] of regions.entries()) {
    if (region.address !== cursor) {
      problems.push(`rule 1 (tiling): region ${i} (${region.kind}) starts at ${hex(region.address)}, the region before it ends at ${hex(cursor)}`);
    }
    if (!(region.bytes > 0)) problems.push(`rule 1 (tiling): region ${i} (${region.kind}) at ${hex(region.address)} has ${region.bytes} bytes`);
    cursor = region.address + region.bytes;
  }
  if (cursor !== heap.arenaEnd) problems.push(`rule 1 (tiling): the regions end at ${hex(cursor)}, the arena at ${hex(heap.arenaEnd)}`);
  const totals = walkTotals(regions);
  if (totals.live !== stats.liveBlocks) problems.push(`rule 2: the walk has ${totals.live} live regions, stats().liveBlocks is ${stats.liveBlocks}`);
  if (totals.liveBytes !== stats.grantedBytes) {
    problems.push(`rule 3: live regions hold ${totals.liveBytes} bytes, stats().grantedBytes is ${stats.grantedBytes}`);
  }
  let wrongSizes = 0;
  for (const region of regions) {
    if (region.kind !== 'live') continue;
    let usable: number | string;
    try {
      usable = heap.usableSize(region.address);
    } catch (error) {
      usable = `an error (${(error as Error).message})`;
    }
    if (usable !== region.bytes && wrongSizes++ < 5) {
      problems.push(`rule 3: the live region at ${hex(region.address)} has ${region.bytes} bytes, usableSize gives ${usable}`);
    }
  }
  if (wrongSizes > 5) problems.push(`rule 3: ... and ${wrongSizes - 5} more live regions whose bytes are not their usableSize`);
  // A backend that keeps no requested sizes (stats().requestedBytes null) reports none; an
  // empty heap's walk has no live region, so its vacuous sum of 0 says nothing then.
  if (stats.requestedBytes === null) {
    if (regions.some((region) => region.kind === 'live' && region.requested !== undefined)) {
      problems.push('rule 4: live regions carry requested sizes, but stats().requestedBytes is null');
    }
  } else if (totals.requested !== null && totals.requested !== stats.requestedBytes) {
    problems.push(`rule 4: live regions' requested sizes sum to ${totals.requested}, stats().requestedBytes is ${stats.requestedBytes}`);
  }
  if (totals.free !== stats.freeBlocks) problems.push(`rule 5: the walk has ${totals.free} free regions, stats().freeBlocks is ${stats.freeBlocks}`);
  expect(problems, `${stats.backend}: the heap walk disagrees with the heap (${regions.length} regions)`).toEqual([]);
  return regions;
}

/** A step of a random operation sequence (`heapStep`), for walk and model tests. */
export type HeapStep =
  | { kind: 'malloc'; size: number }
  | { kind: 'aligned'; size: number; alignLog: number }
  | { kind: 'free'; pick: number }
  | { kind: 'realloc'; pick: number; size: number };

/**
 * Random steps: mallocs up to 3,000 bytes, aligned allocations up to 4 KiB alignment, frees
 * (twice as likely, so the heap fills and empties) and reallocs up to 5,000 bytes; `pick`
 * chooses among the live blocks.
 */
export const heapStep: fc.Arbitrary<HeapStep> = fc.oneof(
  fc.record({ kind: fc.constant('malloc' as const), size: fc.nat(3000) }),
  fc.record({ kind: fc.constant('aligned' as const), size: fc.nat(2000), alignLog: fc.integer({ min: 0, max: 12 }) }),
  fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('realloc' as const), pick: fc.nat(), size: fc.nat(5000) }),
);

/**
 * Runs one step on `heap`, keeping `model` (live address -> requested size) up to date.
 * Expects every allocation to succeed: use a heap with room for the sequence.
 */
export function applyHeapStep(heap: GlobalAllocator, model: Map<number, number>, step: HeapStep): void {
  const live = [...model.keys()];
  switch (step.kind) {
    case 'malloc':
      model.set(heap.malloc(step.size), step.size);
      break;
    case 'aligned':
      model.set(heap.alignedAlloc(2 ** step.alignLog, step.size), step.size);
      break;
    case 'free': {
      if (live.length === 0) break;
      const address = live[step.pick % live.length]!;
      heap.free(address);
      model.delete(address);
      break;
    }
    case 'realloc': {
      if (live.length === 0) break;
      const address = live[step.pick % live.length]!;
      const moved = heap.realloc(address, step.size);
      model.delete(address);
      model.set(moved, step.size);
      break;
    }
  }
  expect(model.has(0), 'an allocation failed: the heap is too small for the sequence').toBe(false);
}
