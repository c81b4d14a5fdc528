import { afterEach, describe, expect, it } from 'vitest';

import {
  basicBackend,
  CALL_PUBLISH_INTERVAL,
  findBackend,
  GlobalAllocator,
  layout,
  MiB,
  PAGE_SIZE,
  parseBackendSpec,
  registerBackend,
  registeredBackends,
} from '../src/index.js';
import { expectAllocError } from '@heaplab/test-kit';

describe('backend selection', () => {
  const saved = process.env['HEAPLAB_BACKEND'];
  afterEach(() => {
    if (saved === undefined) delete process.env['HEAPLAB_BACKEND'];
    else process.env['HEAPLAB_BACKEND'] = saved;
  });

  it('defaults to basic with first-fit and the thread cache', () => {
    delete process.env['HEAPLAB_BACKEND'];
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    expect(heap.backendName).toBe('basic');
    expect(heap.backendDescriptor.normalizeOptions({})).toEqual({ strategy: 'first-fit', tcache: true, arenas: 1 });
    expect(heap.stats().threadCache).not.toBeNull();
    heap.detach();
  });

  it('takes the backend and its options from HEAPLAB_BACKEND', () => {
    // tcache=false as well: with the cache, a's free would stay in the thread's bin and c
    // would be a again, whatever the strategy.
    process.env['HEAPLAB_BACKEND'] = 'basic:strategy=worst-fit,tcache=false';
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    expect(heap.backendName).toBe('basic');
    const other = GlobalAllocator.attachSync(heap.buffer);
    // Both options are the heap's, so the attached thread has no cache either.
    expect(other.stats().threadCache).toBeNull();
    // Worst-fit is visible in behaviour: after freeing a small hole, the next small block
    // goes to the big free tail, not into the hole.
    const a = other.malloc(64);
    const b = other.malloc(64);
    other.free(a);
    const c = other.malloc(64);
    expect(c).toBeGreaterThan(b);
    other.detach();
    heap.detach();
  });

  it('refuses a tcache from HEAPLAB_BACKEND that is no boolean, naming the option', () => {
    process.env['HEAPLAB_BACKEND'] = 'basic:tcache=nope';
    const error = expectAllocError(() => GlobalAllocator.create({ heapBytes: 4 * MiB }), 'InvalidParam');
    expect(error.message).toContain("'tcache'");
    expect(error.message).toMatch(/^HEAPLAB_BACKEND="basic:tcache=nope": /);
  });

  it('refuses an unknown backend, listing the valid ones and how to add one', () => {
    const error = expectAllocError(() => GlobalAllocator.create({ backend: 'nope' }), 'UnknownBackend');
    expect(error.message).toContain("unknown backend 'nope' (valid: basic");
    const hint = expectAllocError(() => findBackend('tlsf'), 'UnknownBackend');
    expect(hint.message).toContain("import '@heaplab/tlsf'");
    process.env['HEAPLAB_BACKEND'] = 'bogus';
    // The program never named it: the message says where the name came from.
    const fromEnvironment = expectAllocError(() => GlobalAllocator.create({ heapBytes: 4 * MiB }), 'UnknownBackend');
    expect(fromEnvironment.message).toMatch(/^HEAPLAB_BACKEND="bogus": unknown backend 'bogus' \(valid: /);
    // A backend the config names is not blamed on the variable.
    expect(expectAllocError(() => GlobalAllocator.create({ backend: 'nope' }), 'UnknownBackend').message).not.toContain('HEAPLAB_BACKEND');
  });

  it('refuses bad options with the valid values', () => {
    const bad = expectAllocError(() => GlobalAllocator.create({ backend: 'basic', options: { strategy: 'next-fit' }, heapBytes: 4 * MiB }), 'InvalidParam');
    expect(bad.message).toMatch(/first-fit/);
    expectAllocError(() => GlobalAllocator.create({ backend: 'basic', options: { colour: 'blue' }, heapBytes: 4 * MiB }), 'InvalidParam');
  });

  it('parses backend specs', () => {
    expect(parseBackendSpec('basic')).toEqual({ name: 'basic', options: {} });
    expect(parseBackendSpec(' tlsf:fl=24, secure=true ,mode=x')).toEqual({
      name: 'tlsf',
      options: { fl: 24, secure: true, mode: 'x' },
    });
    expectAllocError(() => parseBackendSpec('Basic'), 'InvalidParam');
    expectAllocError(() => parseBackendSpec('basic:strategy'), 'InvalidParam');
    expect(expectAllocError(() => parseBackendSpec('tlsf:'), 'InvalidParam').message).toContain("nothing after its ':'");
    expect(expectAllocError(() => parseBackendSpec('tlsf:arenas=2, arenas=3'), 'InvalidParam').message).toMatch(/'arenas' is given twice/);
  });

  it('registers descriptors once per name', () => {
    registerBackend(basicBackend);
    expect(registeredBackends().map((descriptor) => descriptor.name)).toContain('basic');
    expectAllocError(() => registerBackend({ ...basicBackend, moduleUrl: 'file:///elsewhere.js' }), 'InvalidParam');
  });
});

describe('GlobalAllocator faces', () => {
  it('serves pages aligned as asked, with ArceOS parameter checks', () => {
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB });
    const pages = heap.allocPages(3, 4 * PAGE_SIZE);
    expect(pages % (4 * PAGE_SIZE)).toBe(0);
    expect(heap.usableSize(pages)).toBeGreaterThanOrEqual(3 * PAGE_SIZE);
    expectAllocError(() => heap.allocPages(1, 2048), 'InvalidParam');
    expectAllocError(() => heap.allocPages(1, 3 * PAGE_SIZE), 'InvalidParam');
    expectAllocError(() => heap.allocPages(0, PAGE_SIZE), 'InvalidParam');
    expectAllocError(() => heap.allocPages(10_000, PAGE_SIZE), 'NoMemory');
    expectAllocError(() => heap.deallocPages(pages, 2), 'InvalidParam');
    heap.deallocPages(pages, 3);
    expect(heap.usedBytes()).toBe(0);
    heap.detach();
  });

  it('alloc and dealloc use layouts; the NoMemory message says what is free', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const address = heap.alloc(layout(1000, 256));
    expect(address % 256).toBe(0);
    const error = expectAllocError(() => heap.alloc(layout(8 * MiB)), 'NoMemory');
    expect(error.message).toMatch(/no room for 8388608 bytes aligned to 8 in the 'basic' heap \(\d+ bytes free, largest block \d+\)/);
    heap.dealloc(address, layout(1000, 256));
    expectAllocError(() => layout(-1), 'InvalidParam');
    expectAllocError(() => layout(1, 5), 'InvalidParam');
    expectAllocError(() => heap.init(0, 0), 'InvalidParam');
    heap.detach();
  });

  it('counts calls per heap across handles', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer);
    const a = heap.malloc(8);
    const b = other.calloc(2, 8);
    const c = other.alignedAlloc(64, 8);
    const e = other.calloc(1, 8);
    const d = heap.realloc(a, 100);
    other.free(b);
    other.free(e);
    heap.free(c);
    heap.free(d);
    expect(heap.malloc(64 * MiB)).toBe(0);
    // The other handle's first free is published at once, its second not yet (after the first
    // few, it publishes every CALL_PUBLISH_INTERVAL mallocs or frees, in stats() and at detach);
    // this handle's own calls always are.
    expect(heap.stats().calls).toEqual({ malloc: 2, free: 3, calloc: 2, realloc: 1, alignedAlloc: 1, failed: 1, freeDelayed: 0 });
    other.detach();
    expect(heap.stats().calls).toEqual({ malloc: 2, free: 4, calloc: 2, realloc: 1, alignedAlloc: 1, failed: 1, freeDelayed: 0 });
    heap.detach();
  });

  it("publishes a handle's malloc and free counts after batches of 1, 8, 64 and 512 calls, then every CALL_PUBLISH_INTERVAL calls", () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer);
    // The calls after which a count is published: 1, 9, 73, 585, 4681, 8777.
    const publishedAt = [1, 9, 73, 585, 585 + CALL_PUBLISH_INTERVAL, 585 + 2 * CALL_PUBLISH_INTERVAL];
    const published = (calls: number): number => publishedAt.filter((at) => at <= calls).at(-1) ?? 0;
    expect(heap.stats().calls).toMatchObject({ malloc: 0, free: 0 });
    const checkpoints = publishedAt.flatMap((at) => [at - 1, at]);
    let pairs = 0;
    for (const checkpoint of checkpoints) {
      for (; pairs < checkpoint; pairs++) other.free(other.malloc(16));
      expect(heap.stats().calls, `after ${pairs} calls of each`).toMatchObject({ malloc: published(pairs), free: published(pairs) });
    }
    // Each count goes by its own calls: a malloc more is pending until stats() or detach.
    other.malloc(16);
    expect(heap.stats().calls).toMatchObject({ malloc: pairs, free: pairs });
    other.stats();
    expect(heap.stats().calls).toMatchObject({ malloc: pairs + 1, free: pairs });
    other.detach();
    heap.detach();
  });

  it('counts no call made through a detached handle, even once its slot is reused', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer);
    const slot = other.threadId;
    other.detach();
    const third = GlobalAllocator.attachSync(heap.buffer);
    expect(third.threadId).toBe(slot);
    for (let i = 0; i < CALL_PUBLISH_INTERVAL; i++) expectAllocError(() => other.malloc(16), 'InvalidParam');
    expectAllocError(() => other.calloc(2, 8), 'InvalidParam');
    expectAllocError(() => other.alignedAlloc(64, 8), 'InvalidParam');
    expectAllocError(() => other.realloc(heap.arenaStart, 8), 'InvalidParam');
    expectAllocError(() => other.stats(), 'InvalidParam');
    other.detach();
    expect(heap.stats().calls).toEqual({ malloc: 0, free: 0, calloc: 0, realloc: 0, alignedAlloc: 0, failed: 0, freeDelayed: 0 });
    third.detach();
    heap.detach();
  });
});
