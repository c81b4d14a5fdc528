import { describe, expect, it } from 'vitest';

import { GlibcRandom } from '../src/workloads/glibc-thread/glibc-rand.js';
import { buildRequestTables, capRequestSizes, NUM_BLOCK_SIZES, NUM_OFFSETS, WORKING_SET_SIZE } from '../src/workloads/glibc-thread/request-tables.js';

describe('glibc rand() (TYPE_3, default seed)', () => {
  it("gives glibc's first outputs", () => {
    const random = new GlibcRandom();
    expect([random.next(), random.next(), random.next()]).toEqual([1804289383, 846930886, 1681692777]);
  });

  it('treats seed 0 as 1 and differs for another seed', () => {
    expect(new GlibcRandom(0).next()).toBe(1804289383);
    expect(new GlibcRandom(2).next()).not.toBe(1804289383);
  });
});

describe('bench-malloc-thread tables', () => {
  const tables = buildRequestTables();
  const sorted = [...tables.sizes].sort((a, b) => a - b);

  it('has the sizes of the C benchmark', () => {
    expect(tables.sizes.length).toBe(NUM_BLOCK_SIZES);
    expect(sorted[0]).toBe(4);
    expect(sorted[NUM_BLOCK_SIZES - 1]).toBe(31126);
    expect(sorted[NUM_BLOCK_SIZES / 2]).toBe(8);
    expect(sorted.reduce((sum, size) => sum + size, 0)).toBe(311130);
    expect(tables.sizes[0]).toBe(25);
  });

  it('has the offsets of the C benchmark', () => {
    expect(tables.offsets.length).toBe(NUM_OFFSETS);
    expect(tables.offsets[0]).toBe(546);
    expect(Math.max(...tables.offsets)).toBeLessThan(WORKING_SET_SIZE);
    expect(new Set(tables.offsets).size).toBe(1005);
  });

  it('caps sizes for the tools, leaving smaller ones as they are', () => {
    const capped = buildRequestTables();
    capRequestSizes(capped, 1024);
    expect(Math.max(...capped.sizes)).toBe(1024);
    for (const [index, size] of tables.sizes.entries()) expect(capped.sizes[index]).toBe(Math.min(size, 1024));
    expect(capped.offsets).toEqual(tables.offsets);
  });
});
