import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import type { GlobalAllocator } from '@heaplab/core';
import { beforeAll, describe, expect, it } from 'vitest';

import { createBackendHeap, discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { baselineContender, nativeContender } from '../src/contenders/contender.js';
import { type AddressAllocator, loopMemory } from '../src/run/address-allocator.js';
import { buildNativeProgram } from '../src/run/native-program.js';
import { silentProgress } from '../src/run/progress.js';
import type { BenchSettings } from '../src/run/workload.js';
import { type RobsonParams, type RobsonPhase, robsonBoundBytes, runRobsonAdversary } from '../src/workloads/robson/adversary.js';
import { parseNativeRobsonOutput, ROBSON_PROGRAM, runNativeRobson } from '../src/workloads/robson/native.js';
import { ROBSON_HEAP_BYTES, runRobsonOnBackend, runRobsonOnThing, robsonWorkload } from '../src/workloads/robson/workload.js';

const PARAMS: RobsonParams = { liveLimitBytes: 64 << 10, minBlockBytes: 16, maxBlockBytes: 4096, maxOperations: Infinity, verify: true };
/**
 * First fit alone: the adversary's phases are about where the algorithm puts each block, and
 * core's thread cache in front would keep its frees (and refill 8 blocks at a time).
 */
const BASIC = {
  kind: 'heaplab',
  label: 'basic:strategy=first-fit,tcache=false',
  spec: { name: 'basic', options: { strategy: 'first-fit', tcache: false } },
} as const;
/** basic's block header, the most overhead the adversary may measure on it. */
const BASIC_HEADER_BYTES = 8;

const build = buildNativeProgram(ROBSON_PROGRAM);
const hasPort = 'binary' in build;
if (!hasPort) console.warn(`robson native tests skipped: ${build.missing}`);

/**
 * An allocator that watches the adversary from outside: it keeps its own map of live blocks
 * and its own high-water mark, and records every block each phase allocated.
 */
class Watched implements AddressAllocator {
  readonly live = new Map<number, number>();
  liveBytes = 0;
  maxLiveBytes = 0;
  lowest = Infinity;
  highWater = 0;
  /** Blocks allocated since the last `nextPhase`, with the high-water mark before them. */
  phaseBlocks: { address: number; size: number }[] = [];
  phaseStartHighWater = 0;

  constructor(private readonly inner: AddressAllocator) {}

  malloc(size: number): number {
    const address = this.inner.malloc(size);
    if (address === 0) return 0;
    this.live.set(address, size);
    this.liveBytes += size;
    this.maxLiveBytes = Math.max(this.maxLiveBytes, this.liveBytes);
    this.lowest = Math.min(this.lowest, address);
    this.highWater = Math.max(this.highWater, address + size);
    this.phaseBlocks.push({ address, size });
    return address;
  }

  free(address: number): void {
    const size = this.live.get(address);
    if (size === undefined) throw new Error(`free of ${address}, which is not live`);
    this.live.delete(address);
    this.liveBytes -= size;
    this.inner.free(address);
  }

  realloc(): number {
    throw new Error('the adversary never reallocates');
  }

  nextPhase(): void {
    this.phaseBlocks = [];
    this.phaseStartHighWater = this.highWater;
  }

  /**
   * The largest hole from the lowest block start ever (less `overhead`, its header) to the
   * high-water mark: before, between (less `overhead` before a block) and after live blocks.
   */
  largestHole(overhead: number): number {
    const blocks = [...this.live].sort((a, b) => a[0] - b[0]);
    let lastEnd = this.lowest - overhead;
    let largest = 0;
    for (const [address, size] of blocks) {
      largest = Math.max(largest, address - overhead - lastEnd);
      lastEnd = address + size;
    }
    return Math.max(largest, this.highWater - lastEnd);
  }
}

/** Runs the adversary over a fresh heap of `spec`, watched. */
function watchedRun(heap: GlobalAllocator, params: RobsonParams = PARAMS, onPhase?: (phase: RobsonPhase, watched: Watched) => void) {
  const watched = new Watched(heap);
  const outcome = runRobsonAdversary(watched, loopMemory(heap.buffer), params, (phase) => {
    onPhase?.(phase, watched);
    watched.nextPhase();
  });
  return { outcome, watched };
}

beforeAll(async () => {
  await discoverBackends();
});

describe("Robson's bound", () => {
  it('is M(1 + log2(n)/2) - n + 1 smallest blocks', () => {
    // n = 4096 / 16 = 256: 1 MiB x 5 less 255 blocks of 16 bytes.
    expect(robsonBoundBytes(1 << 20, 16, 4096)).toBe(5 * (1 << 20) - 255 * 16);
    // One size only: the bound is M itself.
    expect(robsonBoundBytes(1 << 20, 64, 64)).toBe(1 << 20);
  });
});

describe('the adversary on basic:first-fit', () => {
  it('never has more than M live, and leaves after each phase no hole the next size fits in', () => {
    const heap = createBackendHeap(BASIC.spec, ROBSON_HEAP_BYTES);
    try {
      const phases: RobsonPhase[] = [];
      const { outcome, watched } = watchedRun(heap, PARAMS, (phase, watchedNow) => {
        phases.push(phase);
        expect(phase.overheadBytes).toBeLessThanOrEqual(BASIC_HEADER_BYTES);
        // Checked from the watcher's own view of the live blocks, not from the adversary's.
        expect(watchedNow.largestHole(phase.overheadBytes)).toBe(phase.largestHoleBytes);
        expect(phase.largestHoleBytes).toBeLessThan(2 * phase.blockBytes + phase.overheadBytes);
        expect(phase.freed).toBeGreaterThan(0);
        expect(watchedNow.liveBytes).toBe(phase.liveAfterFreeBytes);
      });
      expect(watched.maxLiveBytes).toBeLessThanOrEqual(PARAMS.liveLimitBytes);
      expect(outcome.peakLiveBytes).toBe(watched.maxLiveBytes);
      expect(phases.map((phase) => phase.blockBytes)).toEqual([16, 32, 64, 128, 256, 512, 1024, 2048, 4096]);
      expect(outcome.complete).toBe(true);
      expect(watched.live.size).toBe(0);
      expect(heap.check().liveBlocks).toBe(0);
    } finally {
      heap.detach();
    }
  });

  it('forces every block of the next phase past the old high-water mark: first fit finds no hole for it', () => {
    const heap = createBackendHeap(BASIC.spec, ROBSON_HEAP_BYTES);
    try {
      let phasesSeen = 0;
      const watched = new Watched(heap);
      runRobsonAdversary(watched, loopMemory(heap.buffer), PARAMS, (phase) => {
        // The blocks of this phase (allocated after the previous phase's free step): none lies wholly below the mark.
        if (phase.blockBytes > PARAMS.minBlockBytes) {
          expect(watched.phaseBlocks.length).toBeGreaterThan(0);
          for (const block of watched.phaseBlocks) expect(block.address + block.size).toBeGreaterThan(watched.phaseStartHighWater);
        }
        phasesSeen++;
        watched.nextPhase();
      });
      expect(phasesSeen).toBe(9);
    } finally {
      heap.detach();
    }
  });

  it('works: the peak footprint is well above M, near Robson bound', () => {
    const figures = runRobsonOnBackend(BASIC, PARAMS);
    const bound = robsonBoundBytes(PARAMS.liveLimitBytes, PARAMS.minBlockBytes, PARAMS.maxBlockBytes);
    expect(figures.footprintBytes / PARAMS.liveLimitBytes).toBeGreaterThan(1);
    // Against first fit the adversary gets at least 90 % of the bound (headers make it more).
    expect(figures.footprintBytes).toBeGreaterThan(0.9 * bound);
    expect(figures.touchedBytes!).toBeGreaterThan(0.9 * bound);
    expect(figures.peakLiveBytes).toBe(PARAMS.liveLimitBytes);
  });

  it('catches a block whose fill was overwritten', () => {
    const heap = createBackendHeap(BASIC.spec, ROBSON_HEAP_BYTES);
    try {
      const memory = loopMemory(heap.buffer);
      const watched = new Watched(heap);
      let spoiled = false;
      const spoil = () => {
        if (spoiled) return;
        // A block that survived the first free step: the adversary frees it later, and checks it then.
        const [address] = watched.live.keys();
        memory.u8[address! + 3] = 0;
        spoiled = true;
      };
      expect(() => runRobsonAdversary(watched, memory, PARAMS, spoil)).toThrow(/lost its fill at byte 0/);
    } finally {
      heap.detach();
    }
  });

  it('stops after maxOperations and still frees everything', () => {
    const heap = createBackendHeap(BASIC.spec, ROBSON_HEAP_BYTES);
    try {
      const { outcome, watched } = watchedRun(heap, { ...PARAMS, maxOperations: 5000 });
      expect(outcome.complete).toBe(false);
      expect(outcome.operations).toBeGreaterThanOrEqual(5000);
      expect(watched.live.size).toBe(0);
      expect(heap.check().liveBlocks).toBe(0);
    } finally {
      heap.detach();
    }
  });
});

describe('every contender after the adversary', () => {
  it.each(['basic', 'mimalloc', 'tlsf', 'buddy', 'slab'])('%s: check() passes and used bytes are back where they were', (name) => {
    const [contender] = resolveBackendContenders([{ name, options: {} }]);
    // runRobsonOnBackend throws unless check() reports no live block and usedBytes is back.
    const figures = runRobsonOnBackend(contender!, PARAMS);
    expect(figures.complete).toBe(true);
    expect(figures.touchedBytes!).toBeGreaterThan(PARAMS.liveLimitBytes);
  });

  it('@thi.ng/malloc: no used block left', () => {
    const figures = runRobsonOnThing(PARAMS);
    expect(figures.footprintBytes).toBeGreaterThan(PARAMS.liveLimitBytes);
  });
});

describe('the native port', () => {
  it('reads the port lines and refuses others', () => {
    const parsed = parseNativeRobsonOutput([
      'phase 16 allocated 4 live_after_alloc 64 span_after_alloc 128 overhead 16 freed 2 live_after_free 32 largest_hole 32',
      'operations 6',
      'span 128',
      'touched_pages unknown',
      'peak_live 64',
      'baseline_rss_kib 1000',
    ]);
    expect(parsed.phases).toEqual([
      {
        blockBytes: 16,
        allocated: 4,
        liveAfterAllocBytes: 64,
        spanAfterAllocBytes: 128,
        overheadBytes: 16,
        freed: 2,
        liveAfterFreeBytes: 32,
        largestHoleBytes: 32,
      },
    ]);
    expect(parsed.touchedPages).toBeNull();
    expect(() => parseNativeRobsonOutput(['operations 6', 'nonsense'])).toThrow(/unexpected output/);
    expect(() =>
      parseNativeRobsonOutput(['phase 16 allocated 4 live_after_alloc 64 span_after_alloc 128 overhead 16 freed 2 live_after_free 32 largest_hole 32']),
    ).toThrow(/no 'touched_pages'/);
  });

  it.runIf(hasPort)('runs the same adversary against glibc: M never passed, nine phases, a footprint above M', async () => {
    const run = await runNativeRobson('glibc', PARAMS, 'memset');
    expect(run.phases.map((phase) => phase.blockBytes)).toEqual([16, 32, 64, 128, 256, 512, 1024, 2048, 4096]);
    for (const phase of run.phases) {
      expect(phase.liveAfterAllocBytes).toBeLessThanOrEqual(PARAMS.liveLimitBytes);
      expect(phase.liveAfterFreeBytes).toBeLessThan(phase.liveAfterAllocBytes);
    }
    expect(run.peakLiveBytes).toBe(PARAMS.liveLimitBytes);
    expect(run.spanBytes).toBeGreaterThan(PARAMS.liveLimitBytes);
    expect(run.touchedPages).toBeGreaterThan(PARAMS.liveLimitBytes / 4096);
    expect(run.maxRssKiB).toBeGreaterThanOrEqual(run.baselineRssKiB);
  });
});

describe('the workload', () => {
  const settings: BenchSettings = {
    threads: [1],
    durationSeconds: Infinity,
    repeat: 2,
    warmup: true,
    fill: 'memset',
    maxIterations: 20_000,
    verify: true,
    heapBytes: 64 << 20,
    isolate: false,
    seed: 1,
    inAll: false,
  };

  it('gives one row per contender, a note for a run cut short, a table', async () => {
    const contenders = [
      ...resolveBackendContenders([{ name: 'basic', options: {} }]),
      baselineContender('thi.ng'),
      ...(hasPort ? [nativeContender('glibc')] : []),
    ];
    const rows = await robsonWorkload.run(contenders, settings, silentProgress);
    expect(rows.map((row) => row.label)).toEqual(contenders.map((contender) => contender.label));
    for (const row of rows) {
      expect(row.error).toBeUndefined();
      expect(row.runs).toHaveLength(2);
    }
    expect(rows[0]!.complete).toBe(false);
    expect(rows[0]!.note).toMatch(/stopped after \d+ operations/);
    if (hasPort) expect(rows[2]!.complete).toBe(true);
    const section = robsonWorkload.section(rows, { meta: {} as never, rowsOf: () => [] });
    expect(section.table).toMatch(/^basic /m);
    expect(robsonWorkload.charts(rows)).toHaveLength(1);
  });

  it('applies to heaplab backends, thi.ng and native only', () => {
    expect(robsonWorkload.appliesTo(BASIC)).toBe(true);
    expect(robsonWorkload.appliesTo(baselineContender('thi.ng'))).toBe(true);
    expect(robsonWorkload.appliesTo(nativeContender('glibc'))).toBe(true);
    expect(robsonWorkload.appliesTo(baselineContender('bump'))).toBe(false);
    expect(robsonWorkload.appliesTo(baselineContender('system'))).toBe(false);
  });

  it('has its docs page', () => {
    expect(existsSync(fileURLToPath(new URL('../../../docs/workloads/robson.md', import.meta.url)))).toBe(true);
  });
});
