import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { CLASS_COUNT } from '../src/size-classes.js';
import type { SlabAllocator } from '../src/slab.js';
import { census, listCounts, makeSlab } from './harness.js';

type Step = { kind: 'alloc'; size: number; alignLog: number } | { kind: 'free'; pick: number } | { kind: 'resize'; pick: number; size: number };

const size = fc.oneof({ weight: 6, arbitrary: fc.nat(600) }, { weight: 3, arbitrary: fc.nat(9000) }, { weight: 1, arbitrary: fc.nat(200_000) });
const step: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      size,
      alignLog: fc.oneof(fc.constant(3), fc.integer({ min: 3, max: 15 })),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('resize' as const), pick: fc.nat(), size }) },
);

/**
 * The heap's own invariants against the model: every block the model holds is live, every
 * other slot and page is free (each block in exactly one state), blocks do not overlap,
 * list lengths agree with the slabs found, empty slabs stay within the option, and the
 * figures agree with the model.
 */
function expectAgrees(slab: SlabAllocator, model: Map<number, number>, emptySlabs: number): void {
  slab.check();
  const seen = census(slab);
  expect(seen.live).toEqual(model);
  let end = 0;
  for (const [address, usable] of [...model].sort((a, b) => a[0] - b[0])) {
    expect(address).toBeGreaterThanOrEqual(end);
    end = address + usable;
  }
  for (let cls = 0; cls < CLASS_COUNT; cls++) {
    const lists = listCounts(slab, cls);
    expect(lists.partial + lists.full + lists.empty).toBe(seen.slabsPerClass[cls]);
    expect(lists.empty).toBe(seen.emptyPerClass[cls]);
    expect(lists.empty).toBeLessThanOrEqual(emptySlabs);
  }
  const stats = slab.stats();
  const granted = [...model.values()].reduce((sum, usable) => sum + usable, 0);
  expect(stats.liveBlocks).toBe(model.size);
  expect(stats.usedBytes).toBe(granted);
  expect(stats.grantedBytes).toBe(granted);
  expect(stats.largestFreeBlock).toBeLessThanOrEqual(slab.totalBytes() - slab.usedBytes());
}

describe('slab backend: model-checked random sequences', () => {
  it('keeps its invariants after every step, and gives everything back at the end', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 3 }), fc.array(step, { minLength: 1, maxLength: 80 }), (emptySlabs, steps) => {
        const { slab } = makeSlab({ emptySlabs });
        const total = slab.totalBytes();
        const model = new Map<number, number>();
        for (const action of steps) {
          const live = [...model.keys()];
          if (action.kind === 'alloc') {
            const align = 2 ** action.alignLog;
            const address = slab.allocate(action.size, align);
            if (address === 0) {
              expect(action.size).toBeGreaterThan(slab.stats().largestFreeBlock - align);
            } else {
              expect(address % align).toBe(0);
              expect(model.has(address)).toBe(false);
              const usable = slab.usableSize(address);
              expect(usable).toBeGreaterThanOrEqual(action.size);
              model.set(address, usable);
            }
          } else if (live.length > 0) {
            const address = live[action.pick % live.length]!;
            if (action.kind === 'free') {
              slab.release(address);
              model.delete(address);
            } else if (slab.resizeInPlace(address, action.size)) {
              expect(slab.usableSize(address)).toBeGreaterThanOrEqual(action.size);
              model.set(address, slab.usableSize(address));
            } else {
              expect(slab.usableSize(address)).toBe(model.get(address));
            }
          }
          expectAgrees(slab, model, emptySlabs);
        }
        for (const address of model.keys()) slab.release(address);
        model.clear();
        expectAgrees(slab, model, emptySlabs);
        expect(slab.usedBytes()).toBe(0);
        expect(slab.stats().largestFreeBlock).toBe(total);
        expect(slab.allocate(total, 8)).not.toBe(0);
        slab.check();
      }),
      { numRuns: 60, seed: 0x51ab },
    );
  });
});
