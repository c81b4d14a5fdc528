/**
 * The refill-run suite: what `Backend.allocateRun` promises (contract.ts), checked on a
 * backend instance over a bare buffer (`BackendFixture`), for a backend that offers it.
 *
 * A run is what core's thread cache refills a bin with: blocks carved one after another from
 * one free region, starting on a line (`RUN_LINE_BYTES`) and owning their lines whole, so that
 * the blocks one thread's cache holds never share a line with another thread's
 * (docs/thread-cache.md, "Refill runs"). The suite checks that promise with the backend's own
 * walk: every region that overlaps the run's lines is one of the run's blocks or metadata.
 */

import { describe, expect, it } from 'vitest';

import { type Backend, type BackendDescriptor, type HeapRegion, MIN_ALIGN, RUN_LINE_BYTES, TC_MAX_REQUEST } from '@heaplab/core/backend';
import { BackendFixture } from './backend-context.js';
import { fillPattern, findPatternMismatch, Random } from './patterns.js';

/** Which backend the suite runs. */
export interface RunTarget {
  label: string;
  // biome-ignore lint/suspicious/noExplicitAny: descriptors of every options type
  descriptor: BackendDescriptor<any>;
  options?: Record<string, unknown>;
  /** Checked mode (`BackendContext.checked`), where a backend's carve verifies more (default off). */
  checked?: boolean;
}

/** The sizes the suite asks runs of: small classes, odd ones, and the cache's largest. */
const RUN_SIZES = [8, 16, 24, 32, 40, 48, 56, 64, 72, 96, 128, 200, 256, 520, TC_MAX_REQUEST] as const;

/** The block count core's cache asks for a size (its refill: 512 bytes, 1 to 64 blocks). */
function countFor(size: number): number {
  return Math.min(64, Math.max(1, (512 / size) | 0));
}

/** Raised by a `take` that stops a run partway, as a thread's death would. */
class StopRun extends Error {}

/** Runs `allocateRun` and returns the blocks it handed to `take`, checking its count. */
export function takeRun(backend: Backend, size: number, count: number): number[] {
  const blocks: number[] = [];
  const made = backend.allocateRun!(size, count, (block) => {
    blocks.push(block);
  });
  expect(made, `allocateRun(${size}, ${count}) returned ${made} after taking ${blocks.length}`).toBe(blocks.length);
  expect(made).toBeLessThanOrEqual(count);
  return blocks;
}

/** Every region of the backend's walk. */
function walkOf(backend: Backend): HeapRegion[] {
  const regions: HeapRegion[] = [];
  backend.walk?.((region) => regions.push(region));
  return regions;
}

/**
 * Expects `blocks` (one run of `size`-byte blocks) to keep the promise: the first on a line,
 * in address order without overlap, each at least `size` usable bytes, and, when the backend
 * walks, nothing but the run's blocks and metadata in the lines from the first block's start
 * to the end of the line holding the last one's last byte.
 */
export function expectRunHolds(backend: Backend, blocks: readonly number[], size: number): void {
  expect(blocks.length).toBeGreaterThan(0);
  expect(blocks[0]! % RUN_LINE_BYTES, `run of ${size}-byte blocks starts at ${blocks[0]}, off a line`).toBe(0);
  let end = 0;
  for (const block of blocks) {
    expect(block % MIN_ALIGN).toBe(0);
    expect(block, `run block at ${block} overlaps the previous one (ends ${end})`).toBeGreaterThanOrEqual(end);
    const usable = backend.usableSize(block);
    expect(usable).toBeGreaterThanOrEqual(size);
    end = block + usable;
  }
  if (backend.walk === undefined) return;
  const first = blocks[0]!;
  const last = blocks[blocks.length - 1]!;
  const linesEnd = Math.ceil((last + size) / RUN_LINE_BYTES) * RUN_LINE_BYTES;
  const mine = new Set(blocks);
  for (const region of walkOf(backend)) {
    if (region.address + region.bytes <= first || region.address >= linesEnd) continue;
    const what = `${region.kind} region ${region.address}+${region.bytes} in the lines ${first}..${linesEnd} of a run of ${blocks.length} ${size}-byte blocks`;
    if (region.kind === 'live') expect(mine.has(region.address), what).toBe(true);
    else expect(['header', 'metadata'], what).toContain(region.kind);
  }
}

/**
 * Registers the suite for a backend with `allocateRun`: runs on a fresh and on a fragmented
 * heap keep the promise and their blocks free one by one; a run stopped after each of its
 * first blocks leaves a heap that `check()` passes with exactly those blocks live; a full
 * heap gives 0 or a run that keeps it.
 */
export function describeRefillRuns(target: RunTarget): void {
  describe(`refill runs: ${target.label}`, () => {
    const fixture = (): BackendFixture<unknown, Backend> =>
      new BackendFixture(target.descriptor, target.options ?? {}, { checked: target.checked ?? false }).init();

    it('offers allocateRun', () => {
      expect(typeof fixture().backend.allocateRun).toBe('function');
    });

    it('carves each size as a run that owns its lines, on a fresh heap', () => {
      const { backend, memory } = fixture();
      const held: { block: number; size: number; seed: number }[] = [];
      for (const size of RUN_SIZES) {
        const blocks = takeRun(backend, size, countFor(size));
        expectRunHolds(backend, blocks, size);
        for (const block of blocks) {
          const seed = held.length & 0xff;
          fillPattern(memory.u8, block, size, seed);
          held.push({ block, size, seed });
        }
      }
      backend.check();
      for (const { block, size, seed } of held) {
        expect(findPatternMismatch(memory.u8, block, size, seed)).toBe(-1);
        backend.release(block);
      }
      backend.check();
      expect(backend.usedBytes()).toBe(0);
    });

    it('keeps the promise on a fragmented heap, and leaves other blocks intact', () => {
      const { backend, memory } = fixture();
      const random = new Random(17);
      const others: { block: number; size: number; seed: number }[] = [];
      for (let index = 0; index < 3000; index++) {
        const size = random.int(8, 700);
        const block = backend.allocate(size, MIN_ALIGN);
        expect(block).not.toBe(0);
        const seed = index & 0xff;
        fillPattern(memory.u8, block, size, seed);
        others.push({ block, size, seed });
      }
      // Free every other block: the free space is fragments between live blocks.
      const kept = others.filter((_, index) => {
        if (index % 2 === 0) return true;
        backend.release(others[index]!.block);
        return false;
      });
      const runs: { blocks: number[]; size: number }[] = [];
      for (let round = 0; round < 4; round++) {
        for (const size of RUN_SIZES) {
          const blocks = takeRun(backend, size, countFor(size));
          if (blocks.length > 0) expectRunHolds(backend, blocks, size);
          runs.push({ blocks, size });
        }
      }
      backend.check();
      for (const { block, size, seed } of kept) expect(findPatternMismatch(memory.u8, block, size, seed)).toBe(-1);
      for (const { blocks } of runs) for (const block of blocks) backend.release(block);
      for (const { block } of kept) backend.release(block);
      backend.check();
      expect(backend.usedBytes()).toBe(0);
    });

    it('leaves a consistent heap when a run stops after any of its first blocks', () => {
      for (const size of [16, 24, 64, 200]) {
        // A stop after as many blocks as the run makes is never met (200 bytes: a run of 2 at
        // most): learn that from the same run left to finish.
        const unstopped = fixture().backend;
        unstopped.allocate(100, MIN_ALIGN);
        const made = takeRun(unstopped, size, countFor(size)).length;
        expect(made, `a run of ${size}-byte blocks on a fresh heap`).toBeGreaterThan(0);
        for (let stopAfter = 0; stopAfter < Math.min(4, made); stopAfter++) {
          const { backend } = fixture();
          const before = backend.allocate(100, MIN_ALIGN);
          const taken: number[] = [];
          expect(() =>
            backend.allocateRun!(size, countFor(size), (block) => {
              if (taken.length === stopAfter) throw new StopRun(`stopped after ${stopAfter}`);
              taken.push(block);
            }),
          ).toThrow(StopRun);
          backend.check();
          // The blocks taken are live; the block the stop met is live too (it was carved),
          // and nothing else: the rest of the region is free.
          for (const block of taken) expect(backend.usableSize(block)).toBeGreaterThanOrEqual(size);
          for (const block of taken) backend.release(block);
          backend.release(before);
          backend.check();
          const carvedButRefused = backend.usedBytes();
          expect(carvedButRefused, `bytes live after a run of ${size}-byte blocks stopped after ${stopAfter}`).toBeLessThanOrEqual(
            Math.max(size, RUN_LINE_BYTES) * 2,
          );
        }
      }
    });

    it('returns 0 or a run that keeps the promise when the heap is nearly full', () => {
      const { backend } = fixture();
      for (let size = 1 << 20; size >= MIN_ALIGN; size >>>= 1) {
        while (backend.allocate(size, MIN_ALIGN) !== 0) {
          // fill with blocks of this size while any fits
        }
      }
      for (const size of RUN_SIZES) {
        const blocks = takeRun(backend, size, countFor(size));
        if (blocks.length > 0) expectRunHolds(backend, blocks, size);
      }
      backend.check();
    });
  });
}
