/**
 * Heaps for the white-box tests: a TLSF instance over a bare buffer (no `GlobalAllocator`),
 * driven through the test kit's `BackendFixture` so that core checks and records each pool as
 * the facade does, with a walker over the same state, and the error helpers those tests share.
 */

import { type HeapMemory, hex, PoolView } from '@heaplab/core/backend';
import { BackendFixture, errorOf } from '@heaplab/test-kit';
import { expect } from 'vitest';

import { TlsfAllocator, type TlsfOptions, tlsfBackend } from '../src/index.js';
import { TlsfWalk } from './walk.js';

export { errorOf } from '@heaplab/test-kit';

export const MiB = 1024 * 1024;

/** A TLSF instance, its context, the kit fixture that owns it and a walker over its state. */
export interface Fixture {
  kit: BackendFixture<TlsfOptions, TlsfAllocator>;
  memory: HeapMemory;
  ctx: BackendFixture<TlsfOptions, TlsfAllocator>['context'];
  tlsf: TlsfAllocator;
  walk: TlsfWalk;
  /** Formats the heap over a range as `GlobalAllocator.create` does: core checks it, then records it. */
  init(start: number, size: number): void;
  /** Adds a pool as `GlobalAllocator.addMemory` does: core checks it, then records it. */
  addMemory(start: number, size: number): void;
}

/**
 * A fresh heap: an arena of `arenaBytes` after the control region, and one pool of
 * `poolBytes` at the arena start (none when 0); in checked mode when `checked`.
 */
export function makeTlsf(arenaBytes = 8 * MiB, poolBytes = arenaBytes, checked = false): Fixture {
  const kit = new BackendFixture(tlsfBackend, {}, { arenaBytes, checked });
  expect(kit.backend).toBeInstanceOf(TlsfAllocator);
  const ctx = kit.context;
  if (poolBytes > 0) kit.init(ctx.arenaStart, poolBytes);
  return {
    kit,
    memory: ctx.memory,
    ctx,
    tlsf: kit.backend,
    walk: new TlsfWalk(ctx.memory.u32, ctx.stateOffset, ctx.pools),
    init: (start, size) => void kit.init(start, size),
    addMemory: (start, size) => kit.addMemory(start, size),
  };
}

/** Another thread's instance over the same state (no formatting), in checked mode when `checked`. */
export function secondInstance(fixture: Fixture, checked = false): TlsfAllocator {
  return fixture.kit.instance(2, { checked });
}

/**
 * The index in a `Uint32Array` of the word where core's pool table keeps the size of pool
 * `index`: learnt by asking a `PoolView` over a recording view which word it reads, so a
 * test can damage the table without copying core's layout.
 */
export function poolSizeWord(index: number): number {
  let read = -1;
  const u32 = new Proxy(new Uint32Array(1 << 20), {
    get(target, key) {
      if (typeof key === 'string' && /^\d+$/.test(key)) read = Number(key);
      return Reflect.get(target, key);
    },
  });
  new PoolView({ u32 } as unknown as HeapMemory).size(index);
  expect(read, 'the pool view reads a word').toBeGreaterThanOrEqual(0);
  return read;
}

/** Expects `fn` to refuse `address` as no live block, with the message naming it. */
export function expectNotAllocated(fn: () => unknown, address: number): void {
  const error = errorOf(fn);
  expect(error.kind).toBe('NotAllocated');
  expect(error.message).toContain(hex(address));
}

/** Expects `check()` to report corruption with a message matching `pattern`. */
export function expectCorrupted(tlsf: TlsfAllocator, pattern: RegExp): void {
  const error = errorOf(() => tlsf.check());
  expect(error.kind).toBe('HeapCorrupted');
  expect(error.message).toMatch(pattern);
}
