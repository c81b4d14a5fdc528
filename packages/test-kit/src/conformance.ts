/**
 * The conformance suite: what every backend must do, run by each backend package with one
 * call. Every scenario builds its own small heap, checks the contents of every live block
 * against a model, and ends with `check()`.
 */

import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';

import { AllocError, type AllocErrorKind, type BackendDescriptor, findBackend, GlobalAllocator, MiB, PAGE_SIZE, parseBackendSpec } from '@heaplab/core';
import { fillPattern, findPatternMismatch, Random } from './patterns.js';
import { expectWalkAgrees } from './walk.js';

/** Which backend a suite runs, and how. */
export interface SuiteTarget {
  /** Shown in the test names, e.g. `basic (best-fit)`. */
  label: string;
  /** A registered name or spec, or the descriptor itself. */
  // biome-ignore lint/suspicious/noExplicitAny: descriptors of every options type
  backend: string | BackendDescriptor<any>;
  options?: Record<string, unknown>;
  /** Arena size for the ordinary scenarios (default 32 MiB). */
  heapBytes?: number;
  /** Arena size for fill-until-full and the random sequences (default 8 MiB): small, so each is quick. */
  fillHeapBytes?: number;
}

/** A live block as the model knows it. */
interface ModelBlock {
  size: number;
  seed: number;
}

/**
 * The model the suite checks a heap against: every live block with its size and the seed of
 * the bytes written into it.
 */
export class HeapModel {
  readonly blocks = new Map<number, ModelBlock>();
  private nextSeed = 1;

  constructor(readonly heap: GlobalAllocator) {}

  /** Records a new block and fills it. */
  add(address: number, size: number): void {
    expect(address, `allocation of ${size} bytes`).not.toBe(0);
    expect(this.blocks.has(address), `address ${address} handed out twice`).toBe(false);
    const seed = this.nextSeed++ & 0xff;
    fillPattern(this.heap.memory.u8, address, size, seed);
    this.blocks.set(address, { size, seed });
  }

  /** Verifies and forgets a block, then frees it. */
  free(address: number): void {
    this.verify(address);
    this.blocks.delete(address);
    this.heap.free(address);
  }

  /** Expects the block's bytes to be what was written. */
  verify(address: number): void {
    const block = this.blocks.get(address);
    if (block === undefined) throw new Error(`model has no block at ${address}`);
    const at = findPatternMismatch(this.heap.memory.u8, address, block.size, block.seed);
    expect(at, `byte ${at} of the ${block.size}-byte block at ${address}`).toBe(-1);
  }

  /** Verifies every block, that no two overlap, and that the heap's own check passes. */
  verifyAll(): void {
    const sorted = [...this.blocks.entries()].sort((a, b) => a[0] - b[0]);
    let end = 0;
    for (const [address, block] of sorted) {
      expect(address, `block at ${address} overlaps the previous block (ends ${end})`).toBeGreaterThanOrEqual(end);
      expect(this.heap.usableSize(address)).toBeGreaterThanOrEqual(block.size);
      end = address + Math.max(block.size, 1);
      this.verify(address);
    }
    this.heap.check();
    if (this.heap.supportsWalk()) this.expectWalkHolds();
  }

  /**
   * Expects the heap walk to agree with the heap (`expectWalkAgrees`) and to show every block
   * of the model as a live region at its address, at least as large as its size.
   */
  expectWalkHolds(): void {
    const live = new Map<number, number>();
    for (const region of expectWalkAgrees(this.heap)) if (region.kind === 'live') live.set(region.address, region.bytes);
    for (const [address, block] of this.blocks) {
      const bytes = live.get(address);
      expect(bytes, `the walk shows no live region at the model's block ${address} (${block.size} bytes)`).toBeDefined();
      expect(bytes!, `the walk's live region at ${address}`).toBeGreaterThanOrEqual(block.size);
    }
  }

  requestedBytes(): number {
    let sum = 0;
    for (const block of this.blocks.values()) sum += block.size;
    return sum;
  }

  /** Frees every block (verifying each). */
  freeAll(): void {
    for (const address of [...this.blocks.keys()]) this.free(address);
  }
}

/** Expects `action` to throw an `AllocError` of `kind`. */
/**
 * The `AllocError` that `action` throws.
 * @throws Error when it returns, or throws anything else (the test fails, naming what happened)
 */
export function errorOf(action: () => unknown): AllocError {
  let result: unknown;
  try {
    result = action();
  } catch (error) {
    if (error instanceof AllocError) return error;
    throw new Error(`expected an AllocError, got ${String(error)}`);
  }
  throw new Error(`expected an AllocError, but the call returned ${String(result)}`);
}

export function expectAllocError(action: () => unknown, kind: AllocErrorKind): AllocError {
  let caught: unknown;
  try {
    action();
  } catch (error) {
    caught = error;
  }
  expect(caught, `expected AllocError ${kind}`).toBeInstanceOf(AllocError);
  expect((caught as AllocError).kind, (caught as AllocError).message).toBe(kind);
  expect((caught as AllocError).message.length).toBeGreaterThan(10);
  return caught as AllocError;
}

/** Makes a heap for `target`; the suite detaches it after the test. */
export function makeHeap(target: SuiteTarget, heapBytes = target.heapBytes ?? 32 * MiB): GlobalAllocator {
  return GlobalAllocator.create({
    backend: target.backend,
    ...(target.options !== undefined ? { options: target.options } : {}),
    heapBytes,
  });
}

/**
 * `heap.check()`, then, when the backend can be walked, `expectWalkAgrees(heap)`: how every
 * scenario ends. Backends without a walk yet skip the second half.
 */
export function checkAndWalk(heap: GlobalAllocator): void {
  heap.check();
  if (heap.supportsWalk()) expectWalkAgrees(heap);
}

/**
 * The descriptor `target` runs: itself, or the registered backend its spec names (the spec's
 * options are the heap's business, not the descriptor's).
 * @throws AllocError `UnknownBackend` when no backend of that name is registered
 */
export function targetDescriptor(target: SuiteTarget): BackendDescriptor {
  return typeof target.backend === 'string' ? findBackend(parseBackendSpec(target.backend).name) : target.backend;
}

/**
 * Registers the conformance suite for `target` with vitest: alignment, sizes, model-checked
 * integrity, fill-until-full, realloc, calloc, stats, bad input and property-based sequences.
 */
export function describeConformance(target: SuiteTarget): void {
  describe(`conformance: ${target.label}`, () => {
    const open: GlobalAllocator[] = [];
    const heapFor = (heapBytes?: number): GlobalAllocator => {
      const heap = makeHeap(target, heapBytes);
      open.push(heap);
      return heap;
    };
    afterEach(() => {
      for (const heap of open.splice(0)) heap.detach();
    });

    it('aligns every power of two from 1 to 64 KiB', () => {
      const heap = heapFor();
      const model = new HeapModel(heap);
      const baseline = heap.usedBytes();
      for (let align = 1; align <= 16 * PAGE_SIZE; align *= 2) {
        for (const size of [0, 1, 7, align, 3 * align + 1]) {
          const address = heap.alignedAlloc(align, size);
          expect(address % align, `alignedAlloc(${align}, ${size}) = ${address}`).toBe(0);
          model.add(address, size);
          const viaLayout = heap.alloc({ size, align });
          expect(viaLayout % align).toBe(0);
          model.add(viaLayout, size);
        }
        model.verifyAll();
      }
      model.freeAll();
      expect(heap.usedBytes()).toBe(baseline);
      checkAndWalk(heap);
    });

    it('gives 8-byte alignment by default, for every typed array', () => {
      const heap = heapFor();
      const model = new HeapModel(heap);
      for (let size = 0; size < 200; size++) {
        const address = heap.malloc(size);
        expect(address % 8).toBe(0);
        model.add(address, size);
      }
      model.verifyAll();
      model.freeAll();
      checkAndWalk(heap);
    });

    it('serves edge sizes: 0, 1, odd, page-sized and multi-MiB blocks', () => {
      const heap = heapFor();
      const model = new HeapModel(heap);
      const sizes = [
        0,
        0,
        1,
        2,
        3,
        5,
        7,
        9,
        15,
        17,
        31,
        33,
        63,
        65,
        127,
        255,
        257,
        1000,
        4095,
        4096,
        4097,
        8191,
        65535,
        65536,
        65537,
        1 * MiB,
        2 * MiB + 3,
        5 * MiB - 1,
      ];
      for (const size of sizes) model.add(heap.malloc(size), size);
      model.verifyAll();
      const zeros = sizes.filter((size) => size === 0).length;
      expect(zeros).toBe(2);
      model.freeAll();
      expect(heap.usedBytes()).toBe(0);
      checkAndWalk(heap);
    });

    it('keeps every block intact and disjoint through a long random sequence', () => {
      const heap = heapFor();
      const model = new HeapModel(heap);
      const random = new Random(0x5eed);
      const live: number[] = [];
      for (let step = 0; step < 3000; step++) {
        if (live.length > 0 && (random.nextU32() & 1) === 0) {
          const index = random.int(0, live.length);
          model.free(live[index]!);
          live[index] = live[live.length - 1]!;
          live.pop();
        } else {
          const size = random.size(64 * 1024);
          const address = heap.malloc(size);
          model.add(address, size);
          live.push(address);
        }
        if (step % 500 === 0) model.verifyAll();
      }
      model.verifyAll();
      model.freeAll();
      expect(heap.usedBytes()).toBe(0);
      checkAndWalk(heap);
    });

    it('fills the heap until NoMemory, then gives every byte back', () => {
      const heap = heapFor(target.fillHeapBytes ?? 8 * MiB);
      const before = heap.stats();
      expect(before.usedBytes).toBe(0);
      expect(before.largestFreeBlock).toBeGreaterThan(0);
      const model = new HeapModel(heap);
      for (const size of [256 * 1024, 16 * 1024, 1024, 64, 8, 1]) {
        for (;;) {
          const address = heap.malloc(size);
          if (address === 0) break;
          model.add(address, size);
        }
      }
      expect(model.blocks.size).toBeGreaterThan(0);
      expectAllocError(() => heap.alloc({ size: 256 * 1024, align: 8 }), 'NoMemory');
      model.verifyAll();
      const full = heap.stats();
      expect(full.usedBytes).toBeGreaterThanOrEqual(model.requestedBytes());
      model.freeAll();
      const after = heap.stats();
      expect(after.usedBytes).toBe(0);
      expect(after.liveBlocks).toBe(0);
      expect(after.availableBytes).toBe(after.totalBytes);
      checkAndWalk(heap);
      const again = heap.malloc(before.largestFreeBlock);
      expect(again, `the largest block (${before.largestFreeBlock} bytes) after freeing everything`).not.toBe(0);
      heap.free(again);
      checkAndWalk(heap);
    });

    it('realloc keeps contents when growing and shrinking', () => {
      const heap = heapFor();
      const model = new HeapModel(heap);
      let address = heap.malloc(24);
      model.add(address, 24);
      for (const size of [100, 1000, 70_000, 300, 17, 5000, 0, 64]) {
        const block = model.blocks.get(address)!;
        const moved = heap.realloc(address, size);
        expect(moved).not.toBe(0);
        const kept = Math.min(block.size, size);
        const at = findPatternMismatch(heap.memory.u8, moved, kept, block.seed);
        expect(at, `realloc to ${size} kept ${kept} bytes`).toBe(-1);
        model.blocks.delete(address);
        model.add(moved, size);
        address = moved;
        checkAndWalk(heap);
      }
      // realloc(0, n) is malloc(n).
      const fresh = heap.realloc(0, 40);
      model.add(fresh, 40);
      // With an alignment, a moved block keeps it.
      const aligned = heap.alignedAlloc(4096, 100);
      model.add(aligned, 100);
      const grown = heap.realloc(aligned, 50_000, 4096);
      expect(grown % 4096).toBe(0);
      expect(findPatternMismatch(heap.memory.u8, grown, 100, model.blocks.get(aligned)!.seed)).toBe(-1);
      model.blocks.set(grown, model.blocks.get(aligned)!);
      if (grown !== aligned) model.blocks.delete(aligned);
      expectAllocError(() => heap.realloc(grown, 8, 3), 'InvalidParam');
      // A realloc that cannot be served returns 0 and leaves the block live and intact.
      expect(heap.realloc(address, heap.totalBytes() + 8)).toBe(0);
      model.verifyAll();
      model.freeAll();
      expect(heap.usedBytes()).toBe(0);
      checkAndWalk(heap);
    });

    it('calloc returns zeroed memory even where old blocks were', () => {
      const heap = heapFor();
      const dirty = Array.from({ length: 16 }, () => heap.malloc(512));
      for (const address of dirty) heap.memory.u8.fill(0xff, address, address + 512);
      for (const address of dirty) heap.free(address);
      for (let i = 0; i < 16; i++) {
        const address = heap.calloc(16, 32);
        expect(address).not.toBe(0);
        expect(heap.memory.u8.subarray(address, address + 512).every((byte) => byte === 0)).toBe(true);
      }
      expect(heap.calloc(0, 0)).not.toBe(0);
      expectAllocError(() => heap.calloc(2 ** 40, 2 ** 20), 'InvalidParam');
      checkAndWalk(heap);
    });

    it('reports stats that agree with the model', () => {
      const heap = heapFor();
      const model = new HeapModel(heap);
      const empty = heap.stats();
      const random = new Random(7);
      for (let i = 0; i < 300; i++) {
        const size = random.size(20_000);
        model.add(heap.malloc(size), size);
      }
      const calls = heap.stats().calls;
      let freed = 0;
      for (const address of [...model.blocks.keys()].slice(0, 100)) {
        model.free(address);
        freed++;
      }
      const stats = heap.stats();
      expect(stats.backend).toBe(heap.backendName);
      expect(stats.liveBlocks).toBe(model.blocks.size);
      if (stats.requestedBytes !== null) {
        expect(stats.requestedBytes).toBe(model.requestedBytes());
        expect(stats.internalFragmentationBytes).toBe(stats.grantedBytes - stats.requestedBytes);
      } else {
        expect(stats.internalFragmentationBytes).toBeNull();
      }
      expect(stats.grantedBytes).toBeGreaterThanOrEqual(model.requestedBytes());
      expect(stats.usedBytes).toBeGreaterThanOrEqual(model.requestedBytes());
      expect(stats.usedBytes).toBe(heap.usedBytes());
      expect(stats.availableBytes).toBe(stats.totalBytes - stats.usedBytes);
      expect(heap.availableBytes()).toBe(stats.availableBytes);
      expect(stats.peakUsedBytes).toBeGreaterThanOrEqual(stats.usedBytes);
      expect(stats.largestFreeBlock).toBeLessThanOrEqual(stats.availableBytes);
      expect(stats.calls.malloc - empty.calls.malloc).toBe(300);
      expect(stats.calls.free - calls.free).toBe(freed);
      expect(stats.threads).toBeGreaterThanOrEqual(1);
      let granted = 0;
      for (const address of model.blocks.keys()) granted += heap.usableSize(address);
      expect(stats.grantedBytes).toBe(granted);
      model.freeAll();
      expect(heap.stats().requestedBytes ?? 0).toBe(0);
      expect(heap.stats().grantedBytes).toBe(0);
      checkAndWalk(heap);
    });

    it('dealloc accepts the allocation layout and refuses a different one', () => {
      const heap = heapFor();
      const address = heap.alloc({ size: 100, align: 64 });
      expectAllocError(() => heap.dealloc(address, { size: 4096, align: 64 }), 'InvalidParam');
      expectAllocError(() => heap.dealloc(address, { size: 100, align: 3 }), 'InvalidParam');
      checkAndWalk(heap);
      heap.dealloc(address, { size: 100, align: 64 });
      expectAllocError(() => heap.dealloc(address, { size: 100, align: 64 }), 'NotAllocated');
      expect(heap.usedBytes()).toBe(0);
      checkAndWalk(heap);
    });

    describeBadInput(target, heapFor);

    it('survives property-based random sequences with check() after each step', () => {
      const op = fc.oneof(
        fc.record({ kind: fc.constant('malloc' as const), size: fc.nat(5000) }),
        fc.record({ kind: fc.constant('aligned' as const), size: fc.nat(3000), alignLog: fc.integer({ min: 0, max: 13 }) }),
        fc.record({ kind: fc.constant('calloc' as const), count: fc.nat(40), size: fc.nat(64) }),
        fc.record({ kind: fc.constant('free' as const), pick: fc.nat() }),
        fc.record({ kind: fc.constant('realloc' as const), pick: fc.nat(), size: fc.nat(9000) }),
      );
      fc.assert(
        fc.property(fc.array(op, { minLength: 1, maxLength: 60 }), (ops) => {
          const heap = GlobalAllocator.create({
            backend: target.backend,
            ...(target.options !== undefined ? { options: target.options } : {}),
            heapBytes: target.fillHeapBytes ?? 8 * MiB,
          });
          try {
            const model = new HeapModel(heap);
            for (const step of ops) {
              const live = [...model.blocks.keys()];
              switch (step.kind) {
                case 'malloc':
                  model.add(heap.malloc(step.size), step.size);
                  break;
                case 'aligned': {
                  const align = 2 ** step.alignLog;
                  const address = heap.alignedAlloc(align, step.size);
                  expect(address % align).toBe(0);
                  model.add(address, step.size);
                  break;
                }
                case 'calloc': {
                  const address = heap.calloc(step.count, step.size);
                  const bytes = step.count * step.size;
                  expect(heap.memory.u8.subarray(address, address + bytes).every((b) => b === 0)).toBe(true);
                  model.add(address, bytes);
                  break;
                }
                case 'free':
                  if (live.length > 0) model.free(live[step.pick % live.length]!);
                  break;
                case 'realloc': {
                  if (live.length === 0) break;
                  const address = live[step.pick % live.length]!;
                  const block = model.blocks.get(address)!;
                  const moved = heap.realloc(address, step.size);
                  expect(findPatternMismatch(heap.memory.u8, moved, Math.min(block.size, step.size), block.seed)).toBe(-1);
                  model.blocks.delete(address);
                  model.add(moved, step.size);
                  break;
                }
              }
              model.verifyAll();
              const requested = heap.stats().requestedBytes;
              if (requested !== null) expect(requested).toBe(model.requestedBytes());
            }
            model.freeAll();
            expect(heap.usedBytes()).toBe(0);
            checkAndWalk(heap);
          } finally {
            heap.detach();
          }
        }),
        { numRuns: 40, seed: 0x4ea9 },
      );
    });
  });
}

/**
 * Bad input: each gets a typed error and leaves the heap intact (`check()` passes, every live
 * block keeps its bytes, the used bytes do not change).
 */
function describeBadInput(target: SuiteTarget, heapFor: (heapBytes?: number) => GlobalAllocator): void {
  describe('bad input', () => {
    const setUp = (): { heap: GlobalAllocator; model: HeapModel; block: number; intact: () => void } => {
      const heap = heapFor();
      const model = new HeapModel(heap);
      for (const size of [24, 256, 1000, 5000]) model.add(heap.malloc(size), size);
      const block = [...model.blocks.keys()][1]!;
      const used = heap.usedBytes();
      const intact = (): void => {
        model.verifyAll();
        expect(heap.usedBytes()).toBe(used);
      };
      return { heap, model, block, intact };
    };

    it('refuses sizes that are negative, fractional, NaN, infinite or not numbers', () => {
      const { heap, intact } = setUp();
      for (const size of [
        -1,
        -8,
        1.5,
        0.1,
        Number.NaN,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        2 ** 53,
        '8' as unknown as number,
        undefined as unknown as number,
      ]) {
        expectAllocError(() => heap.malloc(size), 'InvalidParam');
        expectAllocError(() => heap.alloc({ size, align: 8 }), 'InvalidParam');
        expectAllocError(() => heap.calloc(1, size), 'InvalidParam');
        expectAllocError(() => heap.alignedAlloc(16, size), 'InvalidParam');
      }
      intact();
    });

    it('answers sizes beyond the heap with 0 from malloc and NoMemory from alloc', () => {
      const { heap, intact, block } = setUp();
      for (const size of [heap.totalBytes() + 1, 2 ** 32, 2 ** 40, Number.MAX_SAFE_INTEGER]) {
        expect(heap.malloc(size)).toBe(0);
        expectAllocError(() => heap.alloc({ size, align: 8 }), 'NoMemory');
        expect(heap.realloc(block, size)).toBe(0);
      }
      intact();
    });

    it('refuses alignments that are zero or not powers of two', () => {
      const { heap, intact } = setUp();
      for (const align of [0, 3, 6, 12, 24, 100, -8, 1.5, Number.NaN, 2 ** 31 + 1]) {
        expectAllocError(() => heap.alignedAlloc(align, 16), 'InvalidParam');
        expectAllocError(() => heap.alloc({ size: 16, align }), 'InvalidParam');
      }
      intact();
    });

    it('treats free(0) as a no-op, like free(NULL)', () => {
      const { heap, intact } = setUp();
      heap.free(0);
      intact();
    });

    it('refuses addresses outside the heap or misaligned', () => {
      const { heap, intact, block } = setUp();
      // 2^32 - 8 is the last 8-aligned uint32: a backend that validates addresses itself
      // (`validatesAddresses`) is handed it by `free` and must refuse it too.
      for (const address of [1, 8, heap.arenaStart - 8, heap.arenaEnd, heap.arenaEnd + 64, 2 ** 32 - 8, 2 ** 40, -8, 1.5, Number.NaN]) {
        expectAllocError(() => heap.free(address), 'InvalidParam');
        expectAllocError(() => heap.usableSize(address), 'InvalidParam');
        expectAllocError(() => heap.realloc(address, 8), 'InvalidParam');
      }
      for (const offset of [1, 2, 4, 7]) expectAllocError(() => heap.free(block + offset), 'InvalidParam');
      intact();
    });

    it('refuses interior pointers, never-allocated addresses and double frees', () => {
      const { heap, model, intact, block } = setUp();
      for (const offset of [8, 16, 64, 128]) {
        expectAllocError(() => heap.free(block + offset), 'NotAllocated');
        expectAllocError(() => heap.usableSize(block + offset), 'NotAllocated');
      }
      // Well inside the arena, far beyond anything a fresh heap hands out for these blocks.
      const untouched = heap.arenaStart + (heap.arenaEnd - heap.arenaStart) / 2 + 4096;
      expectAllocError(() => heap.free(untouched), 'NotAllocated');
      const victim = heap.malloc(300);
      model.add(victim, 300);
      model.free(victim);
      expectAllocError(() => heap.free(victim), 'NotAllocated');
      expectAllocError(() => heap.realloc(victim, 40), 'NotAllocated');
      intact();
      const calls = heap.stats();
      expect(calls.liveBlocks).toBe(model.blocks.size);
    });

    it('refuses a foreign or damaged buffer on attach', async () => {
      const { heap } = setUp();
      expectAllocError(() => GlobalAllocator.attachSync(new SharedArrayBuffer(8 * MiB)), 'InvalidHeap');
      expectAllocError(() => GlobalAllocator.attachSync(new ArrayBuffer(8) as unknown as SharedArrayBuffer), 'InvalidHeap');
      await expect(GlobalAllocator.attach(new SharedArrayBuffer(16))).rejects.toThrow(AllocError);
      const second = GlobalAllocator.attachSync(heap.buffer, {
        backends: [typeof target.backend === 'string' ? heap.backendDescriptor : target.backend],
      });
      expect(second.threadId).not.toBe(heap.threadId);
      expect(second.backendName).toBe(heap.backendName);
      second.detach();
    });
  });
}
