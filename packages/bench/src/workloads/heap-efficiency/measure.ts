/**
 * The trials of heap efficiency (docs/workloads/heap-efficiency.md): random allocations,
 * frees and reallocations on one target, each trial until the first failure.
 */

import { Random } from '@heaplab/core';

import type { EfficiencyTarget } from './targets.js';

/** The result of `measureEfficiency`. */
export interface EfficiencyFigures {
  efficiencyPercent: number;
  usedBytes: number;
  totalBytes: number;
  actions: number;
  seconds: number;
}

/** Growable model of the live blocks: parallel arrays, removal by swapping with the last. */
class LiveBlocks {
  count = 0;
  addresses = new Float64Array(1024);
  sizes = new Float64Array(1024);
  aligns = new Float64Array(1024);

  add(address: number, size: number, align: number): void {
    if (this.count === this.addresses.length) this.grow();
    this.addresses[this.count] = address;
    this.sizes[this.count] = size;
    this.aligns[this.count] = align;
    this.count++;
  }

  removeAt(index: number): void {
    const last = --this.count;
    this.addresses[index] = this.addresses[last]!;
    this.sizes[index] = this.sizes[last]!;
    this.aligns[index] = this.aligns[last]!;
  }

  private grow(): void {
    const widen = (old: Float64Array<ArrayBuffer>): Float64Array<ArrayBuffer> => {
      const wider = new Float64Array(old.length * 2);
      wider.set(old);
      return wider;
    };
    this.addresses = widen(this.addresses);
    this.sizes = widen(this.sizes);
    this.aligns = widen(this.aligns);
  }
}

/** Trailing zero bits of a 16-bit value; 16 for 0. */
function trailingZeros16(value: number): number {
  return value === 0 ? 16 : 31 - Math.clz32(value & -value);
}

/**
 * Runs the trials on `target` (which is emptied and checked after each trial).
 * @throws Error when the target is not empty after a trial, or from the allocator
 */
export function measureEfficiency(target: EfficiencyTarget, trials: number, seed: number): EfficiencyFigures {
  const random = new Random(seed);
  const live = new LiveBlocks();
  let usedBytes = 0;
  let totalBytes = 0;
  let actions = 0;
  const started = performance.now();
  for (let trial = 0; trial < trials; trial++) {
    for (;;) {
      actions++;
      const action = random.int(0, 100);
      if (action < 50) {
        const cap = random.int(16, 10000);
        const size = random.int(4, cap);
        const align = 8 << (trailingZeros16(random.nextU32() & 0xffff) >> 1);
        const address = target.alloc(size, align);
        if (address === 0) break;
        live.add(address, size, align);
      } else if (action < 60) {
        if (live.count === 0) continue;
        const index = random.int(0, live.count);
        target.free(live.addresses[index]!);
        live.removeAt(index);
      } else {
        if (live.count === 0) continue;
        const index = random.int(0, live.count);
        const size = random.int(1, 100000);
        const oldSize = live.sizes[index]!;
        const address = target.realloc(live.addresses[index]!, oldSize, size, live.aligns[index]!);
        if (address === 0) break;
        live.addresses[index] = address;
        live.sizes[index] = size;
      }
    }
    for (let index = 0; index < live.count; index++) {
      usedBytes += live.sizes[index]!;
      target.free(live.addresses[index]!);
    }
    live.count = 0;
    totalBytes += target.heapBytes;
    target.verifyEmpty();
  }
  return {
    efficiencyPercent: totalBytes === 0 ? 0 : (usedBytes / totalBytes) * 100,
    usedBytes,
    totalBytes,
    actions,
    seconds: (performance.now() - started) / 1000,
  };
}
