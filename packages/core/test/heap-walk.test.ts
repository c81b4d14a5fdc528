import { describe, expect, it } from 'vitest';

import { AllocError, type HeapRegion } from '../src/index.js';
import { tileArena } from '../src/facade/heap-walk.js';

const START = 0x40_0000;
const END = START + 0x1000;

function walkOf(regions: HeapRegion[]): (visit: (region: HeapRegion) => void) => void {
  return (visit) => {
    for (const region of regions) visit(region);
  };
}

function corruption(regions: HeapRegion[]): string {
  try {
    tileArena(walkOf(regions), START, END);
  } catch (error) {
    expect(error).toBeInstanceOf(AllocError);
    expect((error as AllocError).kind).toBe('HeapCorrupted');
    return (error as AllocError).message;
  }
  throw new Error('no HeapCorrupted');
}

describe('tileArena (the facade half of walk)', () => {
  it('fills the gaps with untouched regions, merging neighbours, so the arena is tiled exactly', () => {
    const regions = tileArena(
      walkOf([
        { address: START + 0x100, bytes: 0x40, kind: 'live', requested: 60 },
        { address: START + 0x140, bytes: 0x40, kind: 'untouched' },
        { address: START + 0x200, bytes: 0x100, kind: 'free' },
      ]),
      START,
      END,
    );
    expect(regions).toEqual([
      { address: START, bytes: 0x100, kind: 'untouched' },
      { address: START + 0x100, bytes: 0x40, kind: 'live', requested: 60 },
      { address: START + 0x140, bytes: 0xc0, kind: 'untouched' },
      { address: START + 0x200, bytes: 0x100, kind: 'free' },
      { address: START + 0x300, bytes: 0xd00, kind: 'untouched' },
    ]);
  });

  it('gives one untouched region for a backend that reports nothing', () => {
    expect(tileArena(walkOf([]), START, END)).toEqual([{ address: START, bytes: 0x1000, kind: 'untouched' }]);
  });

  it('reports overlapping, out-of-order, empty, outside and unknown regions as HeapCorrupted', () => {
    expect(
      corruption([
        { address: START, bytes: 0x100, kind: 'free' },
        { address: START + 0x80, bytes: 0x10, kind: 'live' },
      ]),
    ).toMatch(/out of order or overlapping/);
    expect(corruption([{ address: START - 0x10, bytes: 0x20, kind: 'live' }])).toMatch(/before/);
    expect(corruption([{ address: START, bytes: 0, kind: 'live' }])).toMatch(/positive/);
    expect(corruption([{ address: END - 0x10, bytes: 0x20, kind: 'free' }])).toMatch(/past the arena's end/);
    expect(corruption([{ address: START, bytes: 0x10, kind: 'hole' as never }])).toMatch(/no known kind/);
  });
});
