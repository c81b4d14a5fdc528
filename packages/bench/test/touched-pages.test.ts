import { describe, expect, it } from 'vitest';

import { countTouchedPages, TOUCHED_PAGE_BYTES } from '../src/run/touched-pages.js';

describe('memory touched', () => {
  it('counts the pages holding a non-zero byte, not the highest address', () => {
    const buffer = new SharedArrayBuffer(64 * TOUCHED_PAGE_BYTES);
    const bytes = new Uint8Array(buffer);
    expect(countTouchedPages(buffer, 0, buffer.byteLength)).toBe(0);
    // One byte high in the arena, as buddy's first block: one page, not 60 of them.
    bytes[60 * TOUCHED_PAGE_BYTES + 17] = 1;
    bytes[2 * TOUCHED_PAGE_BYTES] = 0xff;
    bytes[2 * TOUCHED_PAGE_BYTES + 4095] = 3;
    expect(countTouchedPages(buffer, 0, buffer.byteLength)).toBe(2);
    // The last byte of a page, seen through an unaligned range's tail.
    bytes[5 * TOUCHED_PAGE_BYTES - 1] = 9;
    expect(countTouchedPages(buffer, 0, buffer.byteLength)).toBe(3);
    expect(countTouchedPages(buffer, 4 * TOUCHED_PAGE_BYTES + 1, 5 * TOUCHED_PAGE_BYTES - 1)).toBe(0);
    expect(countTouchedPages(buffer, 4 * TOUCHED_PAGE_BYTES + 3, 5 * TOUCHED_PAGE_BYTES)).toBe(1);
    // A range that starts mid-page counts only its own bytes of that page.
    expect(countTouchedPages(buffer, 2 * TOUCHED_PAGE_BYTES + 1, 3 * TOUCHED_PAGE_BYTES)).toBe(1);
    expect(countTouchedPages(buffer, 2 * TOUCHED_PAGE_BYTES + 1, 2 * TOUCHED_PAGE_BYTES + 4095)).toBe(0);
  });

  it('refuses a range outside the buffer', () => {
    const buffer = new SharedArrayBuffer(TOUCHED_PAGE_BYTES);
    expect(() => countTouchedPages(buffer, 0, 2 * TOUCHED_PAGE_BYTES)).toThrow(RangeError);
    expect(() => countTouchedPages(buffer, 10, 5)).toThrow(RangeError);
  });
});
