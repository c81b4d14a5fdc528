import { BACKEND_STATE_MAX_BYTES, findBackend, GlobalAllocator } from '@heaplab/core';
import { expectAllocError, makeBackendContext } from '@heaplab/test-kit';
import { describe, expect, it } from 'vitest';

import { DEFAULT_EMPTY_SLABS, MAX_EMPTY_SLABS, slabBackend } from '../src/index.js';

const normalizeSlabOptions = (options: Record<string, unknown>) => slabBackend.normalizeOptions(options);

describe('slab backend: descriptor and options', () => {
  it('registers itself under its name when imported', () => {
    expect(findBackend('slab')).toBe(slabBackend);
    expect(slabBackend.concurrency).toBe('locked');
    expect(slabBackend.stateBytes).toBeLessThanOrEqual(BACKEND_STATE_MAX_BYTES);
    expect(slabBackend.moduleUrl).toMatch(/index\.ts$/);
    // tcache and arenas are core's, which defineBackend gives every locked backend.
    expect(slabBackend.options.map((option) => option.name)).toEqual(['emptySlabs', 'tcache', 'arenas']);
  });

  it('fills in the default and keeps valid values', () => {
    expect(normalizeSlabOptions({})).toEqual({ emptySlabs: DEFAULT_EMPTY_SLABS, tcache: true, arenas: 1 });
    expect(normalizeSlabOptions({ emptySlabs: 0 })).toEqual({ emptySlabs: 0, tcache: true, arenas: 1 });
    expect(normalizeSlabOptions({ emptySlabs: MAX_EMPTY_SLABS })).toEqual({ emptySlabs: MAX_EMPTY_SLABS, tcache: true, arenas: 1 });
    expect(normalizeSlabOptions({ tcache: false, arenas: 1 })).toEqual({ emptySlabs: DEFAULT_EMPTY_SLABS, tcache: false, arenas: 1 });
    expect(normalizeSlabOptions({ tcache: 'false', emptySlabs: '2' })).toEqual({ emptySlabs: 2, tcache: false, arenas: 1 });
  });

  it('refuses unknown options and bad values, naming the valid ones', () => {
    const unknown = expectAllocError(() => normalizeSlabOptions({ strategy: 'best-fit' }), 'InvalidParam');
    expect(unknown.message).toContain("'strategy'");
    expect(unknown.message).toContain('emptySlabs');
    // A string of digits is a number (a backend spec gives every value as a string); one
    // that is not an integer in range is refused like any other value.
    expect(normalizeSlabOptions({ emptySlabs: '2' })).toEqual({ emptySlabs: 2, tcache: true, arenas: 1 });
    for (const value of [-1, 1.5, MAX_EMPTY_SLABS + 1, '2.5', `${MAX_EMPTY_SLABS + 1}`, true, Number.NaN]) {
      const error = expectAllocError(() => normalizeSlabOptions({ emptySlabs: value }), 'InvalidParam');
      expect(error.message).toContain(`0 to ${MAX_EMPTY_SLABS}`);
    }
    expectAllocError(() => normalizeSlabOptions(null as unknown as Record<string, unknown>), 'InvalidParam');
    const badSpec = (): unknown => GlobalAllocator.create({ backend: 'slab:emptySlabs=-2', heapBytes: 4 * 1024 * 1024 });
    expectAllocError(badSpec, 'InvalidParam');
    for (const value of ['nope', 1, null]) {
      expect(expectAllocError(() => normalizeSlabOptions({ tcache: value }), 'InvalidParam').message).toContain('true, false');
    }
    expectAllocError(() => GlobalAllocator.create({ backend: 'slab:tcache=nope', heapBytes: 4 * 1024 * 1024 }), 'InvalidParam');
  });

  it('takes its options from a backend spec and keeps them in the heap for every thread', () => {
    const heap = GlobalAllocator.create({ backend: 'slab:emptySlabs=3', heapBytes: 8 * 1024 * 1024 });
    try {
      expect(heap.backendName).toBe('slab');
      expect(heap.backendOf(slabBackend).caches.emptySlabs).toBe(3);
      expect(heap.stats().threadCache).not.toBeNull();
      const other = GlobalAllocator.attachSync(heap.buffer);
      expect(other.backendOf(slabBackend).caches.emptySlabs).toBe(3);
      other.detach();
    } finally {
      heap.detach();
    }
  });

  it('refuses a state area that is too small', () => {
    const ctx = makeBackendContext({ stateBytes: slabBackend.stateBytes - 8 });
    expectAllocError(() => slabBackend.create(ctx, { emptySlabs: 1 }), 'InvalidParam');
  });
});
