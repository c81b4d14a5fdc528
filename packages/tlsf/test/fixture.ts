/**
 * Heaps for the white-box tests: a TLSF instance over a bare buffer (no `GlobalAllocator`),
 * with a walker over the same state, and the error helpers those tests share.
 */

import { AllocError, type BackendContext, type HeapMemory, hex } from '@heaplab/core';
import { makeBackendContext } from '@heaplab/core/test-kit';
import { expect } from 'vitest';

import { TlsfAllocator, tlsfBackend } from '../src/index.js';
import { TlsfWalk } from './walk.js';

export const MiB = 1024 * 1024;

/** A TLSF instance, its context and a walker over its state. */
export interface Fixture {
  memory: HeapMemory;
  ctx: BackendContext;
  tlsf: TlsfAllocator;
  walk: TlsfWalk;
}

/**
 * A fresh heap: an arena of `arenaBytes` after the control region, and one pool of
 * `poolBytes` at the arena start (none when 0); in checked mode when `checked`.
 */
export function makeTlsf(arenaBytes = 8 * MiB, poolBytes = arenaBytes, checked = false): Fixture {
  const ctx = makeBackendContext({ arenaBytes, checked });
  return attachTlsf(ctx, poolBytes);
}

/** Another thread's instance over the same state (no formatting), in checked mode when `checked`. */
export function secondInstance(fixture: Fixture, checked = false): TlsfAllocator {
  const ctx = makeBackendContext({ memory: fixture.memory, threadId: 2, arenaBytes: fixture.ctx.arenaEnd - fixture.ctx.arenaStart, checked });
  return tlsfBackend.create(ctx, tlsfBackend.normalizeOptions({})) as TlsfAllocator;
}

function attachTlsf(ctx: BackendContext, poolBytes: number): Fixture {
  const tlsf = tlsfBackend.create(ctx, tlsfBackend.normalizeOptions({}));
  expect(tlsf).toBeInstanceOf(TlsfAllocator);
  if (poolBytes > 0) tlsf.init(ctx.arenaStart, poolBytes);
  return { memory: ctx.memory, ctx, tlsf: tlsf as TlsfAllocator, walk: new TlsfWalk(ctx.memory.u32, ctx.stateOffset) };
}

/** The AllocError `fn` throws (fails the test when it throws nothing or something else). */
export function errorOf(fn: () => unknown): AllocError {
  try {
    fn();
  } catch (error) {
    if (error instanceof AllocError) return error;
    throw error;
  }
  throw new Error('expected an AllocError, but nothing was thrown');
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
