import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { highestBit, lowestBit } from '@heaplab/core/backend';
import { goodFitSearchSize, listMinSize, listOf } from '../src/size-classes.js';
import { FL_COUNT, LIST_COUNT, SL_COUNT, SL_COUNT_LOG2, SMALL_BLOCK_BYTES } from '../src/layout.js';
import { expectedList, expectedListMin } from './walk.js';

/** Block sizes the allocator can meet: multiples of 8 from 16 to just below 4 GiB. */
const blockSize = fc.integer({ min: 2, max: 0x1fff_fffe }).map((units) => units * 8);

describe('the two levels', () => {
  it('uses 32 second-level lists and first levels up to 4 GiB', () => {
    expect(SL_COUNT_LOG2).toBe(5);
    expect(SL_COUNT).toBe(32);
    expect(SMALL_BLOCK_BYTES).toBe(256);
    expect(FL_COUNT).toBe(25);
    expect(LIST_COUNT).toBe(800);
  });

  it('maps known sizes to their lists', () => {
    expect(listOf(16)).toBe(2);
    expect(listOf(248)).toBe(31);
    expect(listOf(256)).toBe(32);
    expect(listOf(264)).toBe(33);
    expect(listOf(511)).toBe(63);
    expect(listOf(512)).toBe(64);
    expect(listOf(4096)).toBe(5 * 32);
    expect(listOf(4096 + 127)).toBe(5 * 32);
    expect(listOf(4096 + 128)).toBe(5 * 32 + 1);
    expect(listOf(2 ** 31)).toBe(24 * 32);
    expect(listOf(0xffff_fff8)).toBe(LIST_COUNT - 1);
  });

  it('agrees with the definition for every block size, above 2^31 too', () => {
    fc.assert(
      fc.property(blockSize, (size) => {
        expect(listOf(size)).toBe(expectedList(size));
      }),
      { numRuns: 2000 },
    );
  });

  it('puts each size between its list minimum and the next list minimum', () => {
    fc.assert(
      fc.property(blockSize, (size) => {
        const list = listOf(size);
        expect(listMinSize(list)).toBe(expectedListMin(list));
        expect(listMinSize(list)).toBeLessThanOrEqual(size);
        const nextMin = list + 1 < LIST_COUNT ? listMinSize(list + 1) : 2 ** 32;
        expect(size).toBeLessThan(nextMin);
      }),
      { numRuns: 2000 },
    );
  });

  it('is monotonic: a larger size never maps to a lower list', () => {
    fc.assert(
      fc.property(blockSize, blockSize, (a, b) => {
        const [small, large] = a <= b ? [a, b] : [b, a];
        expect(listOf(small)).toBeLessThanOrEqual(listOf(large));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('the good-fit search size', () => {
  it('leads to a list whose every block fits, passing over less than 1/32 of the request', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 0x1f80_0000 }).map((units) => units * 8),
        (size) => {
          const list = listOf(goodFitSearchSize(size));
          expect(listMinSize(list)).toBeGreaterThanOrEqual(size);
          // The lists below it hold blocks smaller than size + size / 32 at most.
          expect(listMinSize(list) - size).toBeLessThanOrEqual(Math.max(0, size / SL_COUNT));
          // And it is the lowest such list.
          if (list > 0) expect(listMinSize(list - 1)).toBeLessThan(size);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('leaves small sizes alone: their lists are exact', () => {
    for (let size = 16; size < SMALL_BLOCK_BYTES; size += 8) {
      expect(goodFitSearchSize(size)).toBe(size);
      expect(listMinSize(listOf(size))).toBe(size);
    }
  });

  it('goes past 2^32 - 1 for the largest sizes, which no list can guarantee', () => {
    expect(goodFitSearchSize(0xffff_fff0)).toBeGreaterThan(0xffff_ffff);
  });
});

describe("bit scans (the kit's, which the free lists use)", () => {
  it('finds the lowest and highest set bits, bit 31 included', () => {
    expect(lowestBit(1)).toBe(0);
    expect(lowestBit(0b1011000)).toBe(3);
    expect(lowestBit(0x8000_0000)).toBe(31);
    expect(highestBit(1)).toBe(0);
    expect(highestBit(0b1011000)).toBe(6);
    expect(highestBit(0xffff_ffff)).toBe(31);
  });
});
