/**
 * Refill runs (`allocateRun`): the test kit's suite, in default and checked mode, then what
 * the TLSF carve itself promises: every size from a free block at every place in its line
 * makes a run of back-to-back blocks whose layouts are those of `allocate(size, 8)`, the last
 * one padded through a trailer only when the header cannot hold its slack; a lone free block
 * with room for a block and `RUN_EXTRA_BYTES` always gives a run; runs from one free block
 * follow each other without gaps; bad sizes are refused; and core's thread cache, on a TLSF
 * heap, refills from runs, but for a batch of one block.
 */

import { GlobalAllocator, layout } from '@heaplab/core';
import { RUN_LINE_BYTES, TC_MAX_REQUEST } from '@heaplab/core/backend';
import { describeRefillRuns, expectRunHolds, takeRun } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { tlsfBackend } from '../src/index.js';
import { HEADER_BYTES, MAX_LINE_SLACK, MAX_SLACK, TRAILER_BYTES } from '../src/layout.js';
import { RUN_EXTRA_BYTES } from '../src/run.js';
import { errorOf, makeTlsf, MiB } from './fixture.js';

describeRefillRuns({ label: 'tlsf', descriptor: tlsfBackend });
describeRefillRuns({ label: 'tlsf (checked)', descriptor: tlsfBackend, checked: true });

/** The block count core's cache asks a run of `size`-byte blocks for. */
function countFor(size: number): number {
  return Math.min(64, Math.max(1, (512 / size) | 0));
}

/** Every size a run is asked for: the multiples of 8 up to the cache's largest request. */
const SIZES = Array.from({ length: TC_MAX_REQUEST / 8 }, (_, i) => 8 * (i + 1));

/**
 * Expects `blocks` to be a TLSF run of `size`-byte blocks: back to back, each exactly what
 * `allocate(size, 8)` gives (requested size, layout, usable size) but the last, which may be
 * larger by its line's slack, in its header's bits or, padded, in a trailer.
 */
function expectTlsfRun(tlsf: ReturnType<typeof makeTlsf>['tlsf'], blocks: number[], size: number): void {
  expectRunHolds(tlsf, blocks, size);
  blocks.forEach((block, i) => {
    expect(tlsf.requestedSize(block)).toBe(size);
    expect(tlsf.blockLayout(block)).toEqual({ minSize: size, maxSize: size, minAlign: 8, maxAlign: 8 });
    if (i < blocks.length - 1) {
      expect(tlsf.usableSize(block), `block ${i} of a run of ${size}-byte blocks`).toBe(size);
      expect(blocks[i + 1]).toBe(block + size + HEADER_BYTES);
    }
  });
  const last = blocks[blocks.length - 1]!;
  const slack = tlsf.usableSize(last) - size;
  const regions: { kind: string; detail?: string }[] = [];
  tlsf.walk((region) => {
    if (region.address === last || region.address === last + size + slack) regions.push(region);
  });
  if (regions[0]!.detail!.includes('padded')) {
    // The trailer holds what the header's slack bits cannot (more than MAX_SLACK bytes, its
    // own 8 among them), and nothing pads more than a line.
    expect(slack).toBeGreaterThanOrEqual(MAX_SLACK);
    expect(slack).toBeLessThanOrEqual(MAX_LINE_SLACK);
    expect(regions.map((region) => region.detail)).toEqual([expect.stringMatching(/padded to a line's end/), 'slack trailer']);
  } else {
    expect(slack).toBeLessThanOrEqual(MAX_SLACK);
  }
}

describe('tlsf refill runs: the carve', () => {
  it('carves every size from a free block at each place in its line, back to back, as allocate would', () => {
    // A first block of 16 to 72 bytes puts the free block after it at each multiple of 8 in a line.
    for (let lead = 16; lead <= 72; lead += 8) {
      const { tlsf } = makeTlsf(2 * MiB);
      const leading = tlsf.allocate(lead - HEADER_BYTES, 8);
      const used = tlsf.usedBytes();
      for (const size of SIZES) {
        const count = countFor(size);
        const blocks = takeRun(tlsf, size, count);
        // Never below three quarters of the count when the free block has room for all.
        expect(blocks.length, `a run of ${count} ${size}-byte blocks after a ${lead}-byte block`).toBeGreaterThanOrEqual(count - (count >>> 2));
        expectTlsfRun(tlsf, blocks, size);
        const report = tlsf.check();
        expect(report.liveBlocks).toBe(1 + blocks.length);
        expect(tlsf.stats().requestedBytes).toBe(lead - HEADER_BYTES + blocks.length * size);
        for (const block of blocks) tlsf.release(block);
        // Everything merged back: the heap is as before the run.
        expect(tlsf.usedBytes()).toBe(used);
        expect(tlsf.check().freeBlocks).toBe(1);
      }
      tlsf.release(leading);
    }
  });

  it('makes a run from a lone free block of any size with room for one block and RUN_EXTRA_BYTES, and keeps the promise in tighter ones', () => {
    for (const size of [8, 24, 64, 200, 520, TC_MAX_REQUEST]) {
      const blockSize = size + HEADER_BYTES;
      for (let bytes = 16; bytes <= blockSize + RUN_EXTRA_BYTES + 3 * RUN_LINE_BYTES; bytes += 8) {
        for (const shift of [0, 40]) {
          // A pool of one free block of `bytes` between two live blocks: its sentinel, the
          // block, a 16-byte block after it, and its end sentinel.
          const fixture = makeTlsf(1 * MiB, 0);
          fixture.init(fixture.ctx.arenaStart + shift, bytes + 32);
          const { tlsf } = fixture;
          const hole = tlsf.allocate(bytes - HEADER_BYTES, 8);
          const after = tlsf.allocate(8, 8);
          expect(hole === 0 || after === 0).toBe(false);
          tlsf.release(hole);
          const blocks = takeRun(tlsf, size, countFor(size));
          const where = `${size}-byte blocks from a free block of ${bytes} bytes at ${hole - HEADER_BYTES}`;
          if (bytes >= blockSize + RUN_EXTRA_BYTES) expect(blocks.length, where).toBeGreaterThan(0);
          if (blocks.length > 0) expectTlsfRun(tlsf, blocks, size);
          tlsf.check();
          for (const block of blocks) tlsf.release(block);
          tlsf.release(after);
          expect(tlsf.check()).toMatchObject({ liveBlocks: 0, freeBlocks: 1 });
        }
      }
    }
  });

  it('leaves the free block ready for the next run: runs of 16-byte blocks follow each other with no gap', () => {
    const { tlsf } = makeTlsf(2 * MiB);
    let end = 0;
    for (let run = 0; run < 8; run++) {
      const blocks = takeRun(tlsf, 16, countFor(16));
      expect(blocks.length).toBe(32);
      if (end !== 0) expect(blocks[0]! - HEADER_BYTES, `run ${run}`).toBe(end);
      const last = blocks[blocks.length - 1]!;
      end = last + tlsf.usableSize(last);
    }
    // The first run's gap (the pool's free block starts 8 bytes into a line) and the rest.
    expect(tlsf.check()).toMatchObject({ liveBlocks: 8 * 32, freeBlocks: 2 });
  });

  it('a padded last block is an ordinary live block: it resizes in place and frees', () => {
    const { tlsf } = makeTlsf(2 * MiB);
    const [block] = takeRun(tlsf, 520, 1);
    expect(tlsf.usableSize(block!)).toBeGreaterThan(520 + MAX_SLACK);
    expect(tlsf.stats().grantedBytes).toBe(tlsf.usableSize(block!));
    expect(tlsf.stats().usedBytes).toBe(tlsf.usableSize(block!) + HEADER_BYTES + TRAILER_BYTES);
    expect(tlsf.resizeInPlace(block!, 300)).toBe(true);
    expect(tlsf.blockLayout(block!)).toEqual({ minSize: 300, maxSize: 300, minAlign: 8, maxAlign: 8 });
    tlsf.check();
    expect(tlsf.resizeInPlace(block!, 900)).toBe(true);
    expect(tlsf.requestedSize(block!)).toBe(900);
    tlsf.check();
    tlsf.release(block!);
    expect(tlsf.check()).toMatchObject({ liveBlocks: 0, freeBlocks: 1 });
  });

  it('refuses a size that is not a multiple of 8 from 8 to the cache bound, and makes nothing of a count of 0', () => {
    const { tlsf } = makeTlsf(2 * MiB);
    for (const size of [0, 4, 12, TC_MAX_REQUEST + 8, -8, Number.NaN]) {
      const error = errorOf(() => tlsf.allocateRun(size, 4, () => {}));
      expect(error.kind, `size ${size}`).toBe('InvalidParam');
    }
    expect(tlsf.allocateRun(64, 0, () => {})).toBe(0);
    expect(tlsf.check()).toMatchObject({ liveBlocks: 0, freeBlocks: 1 });
  });
});

describe("core's thread cache on a TLSF heap", () => {
  it('refills a bin with one run: its blocks are back to back from a line; a refill of one block is no run', () => {
    const heap = GlobalAllocator.create({ backend: 'tlsf', heapBytes: 8 * MiB });
    try {
      const blocks = Array.from({ length: 20 }, () => heap.malloc(24));
      expect(heap.stats().threadCache).toMatchObject({ refills: 1 });
      const sorted = [...blocks].sort((a, b) => a - b);
      expect(sorted[0]! % RUN_LINE_BYTES).toBe(0);
      expect(sorted).toEqual(sorted.map((_, i) => sorted[0]! + i * 32));
      for (const block of blocks) heap.dealloc(block, layout(24));
      // A refill of one block (520 bytes: a refill takes 512 bytes of blocks) is no run: the
      // cache takes it with allocate, which places the next one right after it, not on the
      // next line with 56 bytes left free between. Any size of its class frees it.
      const big = heap.malloc(515);
      const next = heap.malloc(515);
      expect(next - big).toBe(520 + HEADER_BYTES);
      heap.dealloc(big, layout(515));
      heap.dealloc(next, layout(520));
      heap.dealloc(heap.malloc(520), layout(513));
      heap.check();
    } finally {
      heap.detach();
    }
  });
});
