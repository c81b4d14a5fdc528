import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  BIN_BLOCK_SIZE,
  BIN_MAX,
  BIN_QUEUES,
  binForAligned,
  binOfSize,
  blockGrid,
  blockSizeOfBin,
  LARGE_OBJ_SIZE_MAX,
  naturalAlignment,
  onBlockGrid,
} from '../src/size-classes.js';
import { BLOCK_ALIGN, RETIRED_BIN_WORDS, SEGMENT_BYTES } from '../src/layout.js';
import { HEAP_ALIGN, MIN_ALIGN } from '@heaplab/core';

describe('size classes', () => {
  it('has mimalloc v1 bins: one per word up to 64 bytes, then four per doubling up to 2 MiB', () => {
    expect([8, 16, 24, 32, 40, 48, 56, 64].map((size) => binOfSize(size))).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect([0, 1, 8].map((size) => binOfSize(size))).toEqual([1, 1, 1]);
    expect([72, 80, 88, 96, 112, 128, 129, 160].map((size) => BIN_BLOCK_SIZE[binOfSize(size)])).toEqual([80, 80, 96, 96, 112, 128, 160, 160]);
    expect(BIN_MAX).toBe(68);
    expect(BIN_BLOCK_SIZE[BIN_MAX]).toBe(LARGE_OBJ_SIZE_MAX);
    for (let bin = 2; bin <= BIN_MAX; bin++) expect(BIN_BLOCK_SIZE[bin]!).toBeGreaterThan(BIN_BLOCK_SIZE[bin - 1]!);
  });

  it('maps every size to the smallest bin that holds it, wasting at most a quarter above 64 bytes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: LARGE_OBJ_SIZE_MAX }), (size) => {
        const bin = binOfSize(size);
        const block = blockSizeOfBin(bin);
        expect(block).toBeGreaterThanOrEqual(size);
        expect(block % 8).toBe(0);
        if (bin > 1) expect(blockSizeOfBin(bin - 1)).toBeLessThan(size);
        if (size > 64) expect(block - size).toBeLessThanOrEqual(size / 4);
      }),
      { numRuns: 2000, seed: 11 },
    );
  });

  it('finds aligned bins whose block size is a multiple of the alignment', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 300_000 }), fc.integer({ min: 4, max: 20 }), (size, log) => {
        const align = 2 ** log;
        const bin = binForAligned(size, align);
        if (bin === 0) {
          expect(Math.max(size, align)).toBeGreaterThan(LARGE_OBJ_SIZE_MAX / 2);
          return;
        }
        expect(BIN_BLOCK_SIZE[bin]! % align).toBe(0);
        expect(BIN_BLOCK_SIZE[bin]!).toBeGreaterThanOrEqual(size);
        expect(naturalAlignment(BIN_BLOCK_SIZE[bin]!, 1 << 22)).toBeGreaterThanOrEqual(align);
      }),
      { numRuns: 2000, seed: 12 },
    );
  });

  it("tests 'a multiple of the block size' exactly for every bin, without dividing", () => {
    const mismatches: string[] = [];
    const check = (blockSize: number, offset: number): void => {
      const { inverse, shift, limit } = blockGrid(blockSize);
      if (onBlockGrid(offset | 0, inverse, shift, limit) !== (offset % blockSize === 0)) mismatches.push(`${offset} for ${blockSize}`);
    };
    for (let bin = 1; bin <= BIN_MAX; bin++) {
      const blockSize = BIN_BLOCK_SIZE[bin]!;
      // The neighbours of multiples spread over a whole segment, the first ones all.
      const blocks = SEGMENT_BYTES / blockSize;
      for (let k = 0; k < blocks; k += k < 64 ? 1 : Math.ceil(blocks / 512)) {
        for (const delta of [-8, -1, 0, 1, 4, 8]) {
          const offset = k * blockSize + delta;
          if (offset >= 0) check(blockSize, offset);
        }
      }
    }
    // Any size and offset, beyond the bins (block sizes with large odd parts, offsets to 2^32).
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 2 ** 20 }), (size, offset, k) => {
        check(size, offset);
        if (k * size < 2 ** 32) check(size, k * size);
      }),
      { numRuns: 5000, seed: 3 },
    );
    expect(mismatches).toEqual([]);
  });

  it("keeps its own copies of core's constants equal to core's", () => {
    // layout.ts imports nothing, so that the bundler inlines its constants (see there).
    expect(SEGMENT_BYTES).toBe(HEAP_ALIGN);
    expect(BLOCK_ALIGN).toBe(MIN_ALIGN);
    // (No QSBR offsets are mirrored any more: the held-page figures read other threads'
    // sequences through the context's handle, `Qsbr.sequenceOf`.)
    // And the retired-bin bitmap has a bit for every queue.
    expect(BIN_QUEUES).toBeLessThanOrEqual(RETIRED_BIN_WORDS * 32);
  });
});
