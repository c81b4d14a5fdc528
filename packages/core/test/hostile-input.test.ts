/**
 * Input that is not what the types say: non-numbers everywhere, damaged superblocks, module
 * URLs a buffer's writer chose, layouts that do not match, double frees through the delayed
 * path. Each gets a typed AllocError and leaves the heap intact (issue #12).
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

import { describe, expect, it } from 'vitest';

import {
  type AllocError,
  BACKEND_STATE_MAX_BYTES,
  GlobalAllocator,
  loadBackend,
  MAX_LOCK_TIMEOUT_MS,
  MiB,
  PAGE_SIZE,
  trustBackendModule,
} from '../src/index.js';
import { expectAllocError, spawnKitWorker } from '@heaplab/test-kit';
import { flakyRepairBackend } from './fixtures/flaky-repair-backend.js';

const NOT_NUMBERS: unknown[] = [10n, Symbol('size'), { valueOf: () => 8 }, '16', null, undefined, [8], true];

describe('arguments that are not numbers', () => {
  it('are refused by every public method with InvalidParam, leaving the heap intact', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const live = heap.malloc(64);
    const calls: [string, (value: never) => unknown][] = [
      ['malloc', (v) => heap.malloc(v)],
      ['calloc count', (v) => heap.calloc(v, 8)],
      ['calloc size', (v) => heap.calloc(8, v)],
      ['alignedAlloc align', (v) => heap.alignedAlloc(v, 8)],
      ['alignedAlloc size', (v) => heap.alignedAlloc(16, v)],
      ['memalign', (v) => heap.memalign(16, v)],
      ['realloc address', (v) => heap.realloc(v, 8)],
      ['realloc size', (v) => heap.realloc(live, v)],
      ['realloc align', (v) => heap.realloc(live, 8, v)],
      ['free', (v) => heap.free(v)],
      ['freeDelayed', (v) => heap.freeDelayed(v)],
      ['usableSize', (v) => heap.usableSize(v)],
      ['alloc layout', (v) => heap.alloc(v)],
      ['alloc size', (v) => heap.alloc({ size: v, align: 8 })],
      ['alloc align', (v) => heap.alloc({ size: 8, align: v })],
      ['dealloc address', (v) => heap.dealloc(v, { size: 64, align: 8 })],
      ['dealloc layout', (v) => heap.dealloc(live, v)],
      ['dealloc size', (v) => heap.dealloc(live, { size: v, align: 8 })],
      ['allocPages count', (v) => heap.allocPages(v)],
      ['allocPages align', (v) => heap.allocPages(1, v)],
      ['deallocPages count', (v) => heap.deallocPages(live, v)],
      ['addMemory start', (v) => heap.addMemory(v, 4096)],
      ['addMemory size', (v) => heap.addMemory(heap.arenaStart, v)],
    ];
    for (const [name, call] of calls) {
      for (const value of NOT_NUMBERS) {
        // An optional argument left undefined takes its default.
        if (value === undefined && (name === 'realloc align' || name === 'allocPages align')) continue;
        // free(undefined) and free(null) are not free(0): only the number 0 is C's NULL.
        let error: AllocError;
        try {
          error = expectAllocError(() => call(value as never), 'InvalidParam');
        } catch (failure) {
          throw new Error(`${name}(${String(typeof value)}): ${(failure as Error).message}`);
        }
        expect(error.message, `${name}(${typeof value})`).not.toMatch(/Cannot (convert|mix)/);
      }
    }
    expect(heap.usableSize(live)).toBeGreaterThanOrEqual(64);
    expect(heap.stats().liveBlocks).toBe(1);
    heap.free(live);
    heap.check();
    heap.detach();
  });
});

describe('numbers no block could be', () => {
  it('are named as they were given: a negative address with its sign, an overflowing calloc with its exact product', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    expect(expectAllocError(() => heap.free(-8), 'InvalidParam').message).toMatch(/^address -0x8 is outside/);
    const error = expectAllocError(() => heap.calloc(2 ** 30, 2 ** 30), 'InvalidParam');
    expect(error.message).toBe('calloc(1073741824, 1073741824) overflows: 1152921504606846976 bytes');
    heap.check();
    heap.detach();
  });
});

describe('a superblock that no heaplab heap could have', () => {
  /** A copy of a fresh heap's buffer with `damage` applied, and the attach result. */
  const attachDamaged = async (damage: (u32: Uint32Array, u8: Uint8Array) => void): Promise<string> => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const copy = new SharedArrayBuffer(heap.buffer.byteLength);
    new Uint8Array(copy).set(heap.memory.u8.subarray(0, 65536));
    damage(new Uint32Array(copy), new Uint8Array(copy));
    heap.detach();
    try {
      await GlobalAllocator.attach(copy);
    } catch (error) {
      return `${(error as { kind?: string }).kind}: ${(error as Error).message}`;
    }
    return 'attached';
  };

  const cases: [string, (u32: Uint32Array, u8: Uint8Array) => void, RegExp][] = [
    ['maxThreads 0', (u32) => void (u32[4] = 0), /InvalidHeap: .*field maxThreads is 0/],
    ['maxThreads 300', (u32) => void (u32[4] = 300), /field maxThreads is 300/],
    ['lockTimeoutMs 0', (u32) => void (u32[5] = 0), /field lockTimeoutMs is 0/],
    ['lockTimeoutMs of days', (u32) => void (u32[5] = 3 * 86_400_000), /field lockTimeoutMs is 259200000/],
    ['an even cookie', (u32) => void (u32[6] = 2), /field heapCookie/],
    ['pool count 0', (u32) => void (u32[7] = 0), /field poolCount is 0/],
    ['pool count 1000', (u32) => void (u32[7] = 1000), /field poolCount is 1000/],
    ['backend state too large', (u32) => void (u32[8] = BACKEND_STATE_MAX_BYTES + 4), /field backendStateBytes/],
    ['unknown heap flags', (u32) => void (u32[9] = 0x80), /field heapFlags/],
    ['a pool outside the arena', (u32) => void (u32[512] = 64), /field pool\[0\]/],
    ['a backend name with no end', (_u32, u8) => u8.fill(0x61, 576, 608), /field backendName has no terminating NUL/],
    ['a backend name that is not one', (_u32, u8) => u8.set([0x42, 0x41, 0x44, 0x21, 0], 576), /field backendName "BAD!"/],
    ['options that are not JSON', (_u32, u8) => u8.set([0x7b, 0x7b, 0x7b, 0], 1088), /field backendOptions "\{\{\{" is not JSON/],
    ['options that are an array', (_u32, u8) => u8.set([0x5b, 0x5d, 0], 1088), /is not a JSON object/],
    [
      'options the backend refuses',
      (_u32, u8) => u8.set(new TextEncoder().encode('{"strategy":"next-fit"}\0'), 1088),
      /field backendOptions is not valid for 'basic'/,
    ],
  ];
  for (const [name, damage, expected] of cases) {
    it(`refuses ${name} with InvalidHeap naming the field`, async () => {
      expect(await attachDamaged(damage)).toMatch(expected);
    });
  }

  it('refuses a lock timeout beyond ten minutes at creation', () => {
    expectAllocError(() => GlobalAllocator.create({ heapBytes: 4 * MiB, lockTimeoutMs: MAX_LOCK_TIMEOUT_MS + 1 }), 'InvalidParam');
    expectAllocError(() => GlobalAllocator.create({ heapBytes: 4 * MiB, lockTimeoutMs: 0 }), 'InvalidParam');
  });
});

describe('the backend module a heap names', () => {
  it('is not imported when it is a data: URL or any module outside heaplab', async () => {
    const evil = `data:text/javascript,${encodeURIComponent('globalThis.pwned = true; export const x = 1;')}`;
    const refusal = await loadBackend('evil', evil).catch((error: unknown) => error as Error);
    expect(refusal).toMatchObject({ kind: 'UnknownBackend' });
    expect((refusal as Error).message).toMatch(/not one of heaplab's backend packages, so attach does not import it/);
    expect((globalThis as { pwned?: boolean }).pwned).toBeUndefined();
    // Written into a real heap's superblock, it is refused at attach too.
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const copy = new SharedArrayBuffer(heap.buffer.byteLength);
    new Uint8Array(copy).set(heap.memory.u8.subarray(0, 65536));
    const u8 = new Uint8Array(copy);
    u8.fill(0, 576, 1088);
    u8.set(new TextEncoder().encode('evil'), 576);
    u8.set(new TextEncoder().encode(evil), 608);
    await expect(GlobalAllocator.attach(copy)).rejects.toMatchObject({ kind: 'UnknownBackend' });
    expect((globalThis as { pwned?: boolean }).pwned).toBeUndefined();
    heap.detach();
  });

  it('is imported when it belongs to a heaplab package, or when the caller trusts it', async () => {
    // The fixture lives in core's test folder, inside @heaplab/core: a heaplab package.
    const outsideUrl = new URL('./fixtures/flaky-repair-backend.ts', import.meta.url).href;
    expect((await loadBackend('basic-flaky-repair', outsideUrl)).name).toBe('basic-flaky-repair');
    const url = 'file:///nonexistent/outside-backend.js';
    await expect(loadBackend('outside', url)).rejects.toMatchObject({ kind: 'UnknownBackend' });
    trustBackendModule(url);
    // Trusted now, so it is imported, and its absence is the error.
    await expect(loadBackend('outside', url)).rejects.toThrow(/could not be loaded from file:\/\/\/nonexistent/);
    expect(flakyRepairBackend.name).toBe('basic-flaky-repair');
  });

  it('lets a worker attach to a heap of an outside backend only when the task trusts it', async () => {
    // A backend module outside every heaplab package: a file in a temporary directory.
    const dir = mkdtempSync(join(tmpdir(), 'heaplab-outside-'));
    const file = join(dir, 'outside-backend.mjs');
    const core = new URL('../src/index.ts', import.meta.url).href;
    writeFileSync(
      file,
      `import { basicBackend } from ${JSON.stringify(core)};\n` +
        `export const outsideBackend = { ...basicBackend, name: 'outside', moduleUrl: import.meta.url };\n`,
    );
    const moduleUrl = pathToFileURL(file).href;
    const { outsideBackend } = (await import(moduleUrl)) as { outsideBackend: typeof flakyRepairBackend };
    const heap = GlobalAllocator.create({ backend: outsideBackend, heapBytes: 4 * MiB });
    const worker = spawnKitWorker();
    const run = (trustModules: string[]): Promise<{ ok: boolean; kind?: string }> =>
      new Promise((resolve) => {
        worker.once('message', resolve);
        const task = { kind: 'churn', buffer: heap.buffer, seed: 1, iterations: 10, slots: 2, maxSize: 64, trustModules };
        worker.postMessage({ id: 1, task });
      });
    expect(await run([])).toMatchObject({ ok: false, kind: 'UnknownBackend' });
    expect(await run([moduleUrl])).toMatchObject({ ok: true });
    await worker.terminate();
    heap.check();
    heap.detach();
    rmSync(dir, { recursive: true, force: true });
  });

  it('is found registered when it registers its backend without exporting it (a chunk of a split bundle)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'heaplab-chunk-'));
    const file = join(dir, 'chunk.mjs');
    const core = new URL('../src/index.ts', import.meta.url).href;
    writeFileSync(
      file,
      `import { basicBackend, registerBackend } from ${JSON.stringify(core)};\n` +
        `registerBackend({ ...basicBackend, name: 'split-chunk', moduleUrl: import.meta.url });\nexport const unrelated = 1;\n`,
    );
    const moduleUrl = pathToFileURL(file).href;
    trustBackendModule(moduleUrl);
    expect((await loadBackend('split-chunk', moduleUrl)).moduleUrl).toBe(moduleUrl);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('layouts given back to dealloc', () => {
  it('must be the size and alignment the block was allocated with, thread cache or not', () => {
    // Over-aligned blocks never pass through the thread cache, so it keeps their sizes exact.
    for (const tcache of [true, false]) {
      const heap = GlobalAllocator.create({ backend: 'basic', heapBytes: 4 * MiB, options: { tcache } });
      const block = heap.alloc({ size: 1000, align: 64 });
      expectAllocError(() => heap.dealloc(block, { size: 1001, align: 64 }), 'InvalidParam');
      expectAllocError(() => heap.dealloc(block, { size: 0, align: 64 }), 'InvalidParam');
      expectAllocError(() => heap.dealloc(block, { size: 1000, align: 8 }), 'InvalidParam');
      const refused = expectAllocError(() => heap.dealloc(block, { size: 1000, align: 128 }), 'InvalidParam');
      expect(refused.message).toMatch(/takes size 1000 and alignment 64/);
      heap.dealloc(block, { size: 1000, align: 64 });
      const pages = heap.allocPages(2);
      expectAllocError(() => heap.deallocPages(pages, 1), 'InvalidParam');
      heap.deallocPages(pages, 2);
      // An alignment below 8 is 8, as allocation raised it.
      const small = heap.alloc({ size: 10, align: 2 });
      heap.dealloc(small, { size: 10, align: 4 });
      expect(heap.stats().liveBlocks).toBe(0);
      heap.check();
      heap.detach();
    }
  });

  it("with the thread cache, may be any size of a small block's 8-byte class, and exact for an over-aligned one", () => {
    const heap = GlobalAllocator.create({ backend: 'basic', heapBytes: 4 * MiB });
    // 1000 bytes is cache class 125, which serves requests of 993 to 1000 bytes.
    const small = heap.malloc(1000);
    for (const size of [992, 1001, 1008, 0]) expectAllocError(() => heap.dealloc(small, { size, align: 8 }), 'InvalidParam');
    expectAllocError(() => heap.dealloc(small, { size: 1000, align: 16 }), 'InvalidParam');
    heap.dealloc(small, { size: 993, align: 8 });
    const block = heap.alloc({ size: 1000, align: 64 });
    expect(expectAllocError(() => heap.dealloc(block, { size: 993, align: 64 }), 'InvalidParam').message).toMatch(/takes size 1000 and alignment 64/);
    heap.dealloc(block, { size: 1000, align: 64 });
    expect(heap.stats().liveBlocks).toBe(0);
    heap.check();
    heap.detach();
  });

  it('pages are refused at the wrong count', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const pages = heap.allocPages(3, 4 * PAGE_SIZE);
    for (const count of [1, 2, 4]) expectAllocError(() => heap.deallocPages(pages, count), 'InvalidParam');
    heap.deallocPages(pages, 3);
    heap.detach();
  });
});

describe('a block waiting for its delayed free', () => {
  it('cannot be freed, reallocated or delayed again, by this thread or another', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer);
    const block = heap.malloc(48);
    heap.freeDelayed(block);
    expect(expectAllocError(() => heap.free(block), 'NotAllocated').message).toMatch(/waiting for a delayed free/);
    expectAllocError(() => heap.realloc(block, 96), 'NotAllocated');
    expectAllocError(() => heap.freeDelayed(block), 'NotAllocated');
    expectAllocError(() => other.free(block), 'NotAllocated');
    expectAllocError(() => other.freeDelayed(block), 'NotAllocated');
    // The block is still live and waits; once every thread passed a quiescent point, it goes.
    expect(heap.usableSize(block)).toBeGreaterThanOrEqual(48);
    // The goal is reached once the write sequence moved past it and both threads saw that.
    expect(heap.processDelayed()).toBe(0);
    other.quiescent();
    heap.quiescent();
    expect(heap.processDelayed()).toBe(1);
    expectAllocError(() => heap.usableSize(block), 'NotAllocated');
    other.detach();
    heap.check();
    heap.detach();
  });

  it('does not slow or refuse frees of other blocks while many blocks wait', () => {
    const heap = GlobalAllocator.create({ heapBytes: 16 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer);
    const waiting = Array.from({ length: 400 }, () => heap.malloc(32));
    const plain = Array.from({ length: 2000 }, () => heap.malloc(32));
    for (const block of waiting) heap.freeDelayed(block);
    // Filter buckets these share with waiting blocks make free search; it must find nothing.
    for (const block of plain) other.free(block);
    for (const block of waiting) expectAllocError(() => other.free(block), 'NotAllocated');
    other.detach();
    heap.quiescent();
    heap.processDelayed();
    expect(heap.stats().liveBlocks).toBe(0);
    heap.detach();
  });
});
