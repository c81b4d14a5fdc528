import { describe, expect, it } from 'vitest';

import { HeaplabEfficiencyTarget, ThingEfficiencyTarget } from '../src/workloads/heap-efficiency/targets.js';
import { measureEfficiency } from '../src/workloads/heap-efficiency/measure.js';

const HEAP_BYTES = 8 << 20;
const BASIC = { name: 'basic', options: {} };

function basicEfficiency(seed: number, trials = 4): ReturnType<typeof measureEfficiency> {
  const target = new HeaplabEfficiencyTarget(BASIC, HEAP_BYTES);
  try {
    return measureEfficiency(target, trials, seed);
  } finally {
    target.close();
  }
}

describe('heap efficiency', () => {
  it('gives basic a sane efficiency on a small heap', () => {
    const figures = basicEfficiency(7);
    expect(figures.totalBytes).toBe(4 * HEAP_BYTES);
    expect(figures.efficiencyPercent).toBeGreaterThan(50);
    expect(figures.efficiencyPercent).toBeLessThan(100);
    expect(figures.usedBytes / figures.totalBytes).toBeCloseTo(figures.efficiencyPercent / 100, 10);
    expect(figures.actions).toBeGreaterThan(4 * 10);
  });

  it('is deterministic for a seed and varies with it', () => {
    const first = basicEfficiency(7);
    const again = basicEfficiency(7);
    const other = basicEfficiency(8);
    expect(again.usedBytes).toBe(first.usedBytes);
    expect(again.actions).toBe(first.actions);
    expect(other.usedBytes).not.toBe(first.usedBytes);
  });

  it('fails when a heap is not empty after a trial', () => {
    const target = new HeaplabEfficiencyTarget(BASIC, HEAP_BYTES);
    // A free that forgets every other block leaves live blocks behind.
    let calls = 0;
    const realFree = target.free.bind(target);
    target.free = (address: number) => {
      if (calls++ % 2 === 0) realFree(address);
    };
    expect(() => measureEfficiency(target, 1, 3)).toThrow(/not empty after freeing every block/);
    target.close();
  });

  it('measures @thi.ng/malloc too, alignments honoured', () => {
    const target = new ThingEfficiencyTarget(HEAP_BYTES);
    const aligned = target.alloc(100, 256);
    expect(aligned % 256).toBe(0);
    target.free(aligned);
    const figures = measureEfficiency(target, 2, 7);
    expect(figures.efficiencyPercent).toBeGreaterThan(50);
    expect(figures.efficiencyPercent).toBeLessThan(100);
  });
});
