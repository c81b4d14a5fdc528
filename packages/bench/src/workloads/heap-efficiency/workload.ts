/**
 * Heap efficiency, the Talc project's measure of how much of a fixed heap an allocator can
 * really hand out (see /work/shared/specs/heap-efficiency.md): trials of random allocations,
 * frees and reallocations over a 128 MiB heap, each until the first failure; efficiency is
 * the requested bytes live at the failures over the heap bytes, summed over all trials.
 */

import type { Contender } from '../../contenders/contender.js';
import { type EfficiencyTarget, HeaplabEfficiencyTarget, ThingEfficiencyTarget } from './targets.js';
import type { Progress } from '../../run/progress.js';
import type { EfficiencyRow } from '../../report/results.js';
import { Xorshift32 } from '../../xorshift.js';

/** The method's heap: 128 MiB. */
export const EFFICIENCY_HEAP_BYTES = 128 << 20;
/** The method's number of trials. */
export const EFFICIENCY_TRIALS = 300;
/**
 * Most trials run on @thi.ng/malloc: its `free` walks every live block and then its whole
 * free list, so one trial takes seconds; the first trials of the same seed are the sample.
 */
export const THING_MAX_EFFICIENCY_TRIALS = 10;
/** The seed when none is given. */
export const DEFAULT_EFFICIENCY_SEED = 1;

/** Settings of a heap-efficiency run. */
export interface EfficiencySettings {
  trials: number;
  seed: number;
  heapBytes: number;
}

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
  const random = new Xorshift32(seed);
  const live = new LiveBlocks();
  let usedBytes = 0;
  let totalBytes = 0;
  let actions = 0;
  const started = performance.now();
  for (let trial = 0; trial < trials; trial++) {
    for (;;) {
      actions++;
      const action = random.nextU32() % 100;
      if (action < 50) {
        const cap = random.between(16, 10000);
        const size = random.between(4, cap);
        const align = 8 << (trailingZeros16(random.nextU32() & 0xffff) >> 1);
        const address = target.alloc(size, align);
        if (address === 0) break;
        live.add(address, size, align);
      } else if (action < 60) {
        if (live.count === 0) continue;
        const index = random.nextU32() % live.count;
        target.free(live.addresses[index]!);
        live.removeAt(index);
      } else {
        if (live.count === 0) continue;
        const index = random.nextU32() % live.count;
        const size = random.between(1, 100000);
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

/** The target for a contender, or null when the method does not apply to it. */
function targetFor(
  contender: Contender,
  heapBytes: number,
  trials: number,
): { target: EfficiencyTarget; trials: number; note?: string } | null {
  if (contender.kind === 'heaplab') return { target: new HeaplabEfficiencyTarget(contender.backendSpec!, heapBytes), trials };
  if (contender.kind === 'thing') {
    const capped = Math.min(trials, THING_MAX_EFFICIENCY_TRIALS);
    return {
      target: new ThingEfficiencyTarget(heapBytes),
      trials: capped,
      note:
        'alignment by over-allocation; realloc as malloc + copy + free (its own leaks the old block when moving)' +
        (capped < trials ? `; ${capped} trials (its free is O(live blocks))` : ''),
    };
  }
  return null;
}

/**
 * Heap efficiency of each contender that has a fixed heap (the system, bump and native
 * baselines have none and are skipped). A failure becomes a row with `error`.
 */
export function runHeapEfficiencyBench(
  contenders: readonly Contender[],
  settings: EfficiencySettings,
  progress: Progress,
): EfficiencyRow[] {
  const rows: EfficiencyRow[] = [];
  for (const contender of contenders) {
    const base = { label: contender.label, kind: contender.kind, trials: settings.trials, seed: settings.seed, heapBytes: settings.heapBytes };
    let made: ReturnType<typeof targetFor>;
    try {
      made = targetFor(contender, settings.heapBytes, settings.trials);
    } catch (error) {
      rows.push({ ...base, efficiencyPercent: 0, seconds: 0, actions: 0, error: (error as Error).message });
      continue;
    }
    if (made === null) continue;
    progress.step(`heap-efficiency  ${contender.label}  ${made.trials} trials`);
    try {
      const figures = measureEfficiency(made.target, made.trials, settings.seed);
      rows.push({
        ...base,
        trials: made.trials,
        efficiencyPercent: figures.efficiencyPercent,
        seconds: figures.seconds,
        actions: figures.actions,
        ...(made.note !== undefined ? { note: made.note } : {}),
      });
    } catch (error) {
      rows.push({ ...base, efficiencyPercent: 0, seconds: 0, actions: 0, error: (error as Error).message });
    } finally {
      made.target.close();
    }
  }
  return rows;
}
