import { describe, expect, it } from 'vitest';

import {
  alignedClassOf,
  CLASS_BITMAP_WORDS,
  CLASS_CODE_BITS,
  CLASS_COUNT,
  CLASS_HEADER_OFFSET,
  CLASS_OBJECTS,
  CLASS_PAGES,
  CLASS_SIZE,
  classOf,
  headerBytes,
  MAX_CLASS_BYTES,
} from '../src/size-classes.js';
import { MAX_CLASSES } from '../src/layout.js';

const PAGE = 4096;

/** The smallest class of at least `size` bytes that is a multiple of `align`, by search. */
function smallestClass(size: number, align = 8): number {
  for (let cls = 0; cls < CLASS_COUNT; cls++) {
    if (CLASS_SIZE[cls]! >= size && CLASS_SIZE[cls]! % align === 0) return cls;
  }
  return -1;
}

describe('size classes', () => {
  it('steps by 8 up to 64, then four classes per power of two, up to 8 KiB', () => {
    expect(Array.from(CLASS_SIZE.slice(0, 12))).toEqual([8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128]);
    expect(Array.from(CLASS_SIZE.slice(-5))).toEqual([4096, 5120, 6144, 7168, 8192]);
    expect(CLASS_COUNT).toBe(36);
    expect(CLASS_COUNT).toBeLessThanOrEqual(MAX_CLASSES);
    expect(CLASS_SIZE[CLASS_COUNT - 1]).toBe(MAX_CLASS_BYTES);
  });

  it('maps every size from 0 to the largest class to the smallest class that holds it', () => {
    for (let size = 0; size <= MAX_CLASS_BYTES; size++) {
      const cls = classOf(size);
      if (cls !== smallestClass(size)) expect(cls, `classOf(${size})`).toBe(smallestClass(size));
    }
  });

  it('wastes at most 7 bytes below 64 and a fifth of the class above', () => {
    for (let size = 1; size <= MAX_CLASS_BYTES; size++) {
      const granted = CLASS_SIZE[classOf(size)]!;
      const bound = size <= 64 ? size + 7 : size * 1.25;
      if (granted > bound) expect(granted, `class of ${size}`).toBeLessThanOrEqual(bound);
    }
    expect(CLASS_SIZE[classOf(0)]).toBe(8);
  });

  it('finds the smallest class aligned as asked, or none past the page size', () => {
    for (let align = 16; align <= PAGE; align *= 2) {
      for (let size = 0; size <= MAX_CLASS_BYTES; size += 1 + (size >> 4)) {
        const cls = alignedClassOf(size, align);
        expect(cls, `alignedClassOf(${size}, ${align})`).toBe(smallestClass(size, align));
        if (cls >= 0) expect(CLASS_SIZE[cls]! % align).toBe(0);
      }
    }
    expect(alignedClassOf(10, 2 * PAGE)).toBe(-1);
    expect(alignedClassOf(MAX_CLASS_BYTES + 1, 16)).toBe(-1);
    expect(CLASS_SIZE[alignedClassOf(100, 64)]).toBe(128);
    expect(CLASS_SIZE[alignedClassOf(5000, PAGE)]).toBe(8192);
  });

  it('shapes each slab to hold at least 8 objects and its header, wasting little', () => {
    for (let cls = 0; cls < CLASS_COUNT; cls++) {
      const size = CLASS_SIZE[cls]!;
      const bytes = CLASS_PAGES[cls]! * PAGE;
      const objects = CLASS_OBJECTS[cls]!;
      expect(CLASS_PAGES[cls]).toBeGreaterThanOrEqual(1);
      expect(CLASS_PAGES[cls]).toBeLessThanOrEqual(32);
      expect(objects, `objects of class ${size}`).toBeGreaterThanOrEqual(8);
      expect(CLASS_BITMAP_WORDS[cls]).toBe(Math.ceil(objects / 32));
      expect(CLASS_HEADER_OFFSET[cls]).toBe(objects * size);
      expect(CLASS_HEADER_OFFSET[cls]! % 8).toBe(0);
      expect(objects * size + headerBytes(objects, CLASS_CODE_BITS[cls]!), `class ${size} fits its slab`).toBeLessThanOrEqual(bytes);
      // One more object would not fit with its header: the slab is packed.
      expect(objects * size + size + headerBytes(objects + 1, CLASS_CODE_BITS[cls]!)).toBeGreaterThan(bytes);
      const waste = (bytes - objects * size) / bytes;
      expect(waste, `waste of class ${size} (${CLASS_PAGES[cls]} pages)`).toBeLessThan(1 / 30);
    }
    // Small classes take a single page; the largest take many, so the header costs one object in 15 or more.
    expect(CLASS_PAGES[classOf(16)]).toBe(1);
    expect(CLASS_OBJECTS[classOf(8192)]).toBeGreaterThanOrEqual(15);
  });
});
