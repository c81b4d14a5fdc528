import { describe, expect, it } from 'vitest';

import type { Backend, BackendDescriptor } from '../src/backend/index.js';
import { basicBackend, type BasicOptions, GlobalAllocator } from '../src/index.js';
import { LOCK_NAMES, LOCK_RANK, LockIndex } from '../src/memory/heap-layout.js';
import { LockOrder, LockOrderViolation } from '../src/memory/lock-order.js';
import { makeBackendContext } from '@heaplab/test-kit';

const MiB = 1024 * 1024;

/**
 * basic, declared thread-safe with two locks of its own, whose `allocate` takes them in the
 * order its test asks for (`inverted`: inner before outer), as a backend with a nesting bug.
 */
function nestingBackend(inverted: boolean): BackendDescriptor<BasicOptions> {
  return {
    ...basicBackend,
    name: 'basic-nesting',
    moduleUrl: import.meta.url,
    concurrency: 'thread-safe',
    locks: ['outer', 'inner'],
    create(context, options): Backend {
      const inner: Backend = basicBackend.create(context, options);
      const [first, second] = inverted ? [context.locks.inner!, context.locks.outer!] : [context.locks.outer!, context.locks.inner!];
      const allocate = inner.allocate.bind(inner);
      inner.allocate = (size, align) => {
        first.lock();
        try {
          second.lock();
          try {
            return allocate(size, align);
          } finally {
            second.unlock();
          }
        } finally {
          first.unlock();
        }
      };
      return inner;
    },
  };
}

describe('lock order (checked mode)', () => {
  it('ranks every core lock, each once, outermost qsbr-orphans and innermost recovery', () => {
    const named = Object.values(LockIndex);
    expect(new Set(named.map((index) => LOCK_RANK[index])).size).toBe(named.length);
    const byRank = [...named].sort((a, b) => LOCK_RANK[a]! - LOCK_RANK[b]!).map((index) => LOCK_NAMES[index]);
    expect(byRank).toEqual(['qsbr-orphans', 'pools', 'backend0', 'backend1', 'heap', 'arena1', 'arena2', 'recovery']);
  });

  it('lets a thread take locks outer to inner, and refuses inner to outer or the same lock twice', () => {
    const order = new LockOrder();
    order.acquire(1, 'pools');
    order.acquire(4, 'heap');
    expect(() => order.acquire(0, 'qsbr-orphans')).toThrow(/'qsbr-orphans' \(rank 0\) taken while holding 'heap' \(rank 4\)/);
    expect(() => order.acquire(4, 'heap')).toThrow(/taken again/);
    order.release(4);
    order.release(1);
    expect(order.heldRanks()).toBe(0);
    order.acquire(0, 'qsbr-orphans');
    expect(order.heldRanks()).toBe(1);
  });

  it("asserts the order on a backend context's named locks, and releases the record on failure", () => {
    const context = makeBackendContext({ checked: true, lockNames: ['outer', 'inner'] });
    const outer = context.locks.outer!;
    const inner = context.locks.inner!;
    inner.lock();
    expect(() => outer.lock()).toThrow(LockOrderViolation);
    // The refused lock was not taken.
    expect(outer.holder()).toBe(0);
    inner.unlock();
    outer.lock();
    inner.lock();
    inner.unlock();
    outer.unlock();
    // Without checked mode nothing is asserted.
    const unchecked = makeBackendContext({ lockNames: ['outer', 'inner'] });
    unchecked.locks.inner!.lock();
    unchecked.locks.outer!.lock();
    unchecked.locks.outer!.unlock();
    unchecked.locks.inner!.unlock();
  });

  it('stops a backend that nests its locks the wrong way at the first call, and leaves the heap usable', () => {
    const good = GlobalAllocator.create({ backend: nestingBackend(false), heapBytes: 4 * MiB, checked: true });
    expect(good.malloc(64)).not.toBe(0);
    good.check();
    good.detach();

    const bad = GlobalAllocator.create({ backend: nestingBackend(true), heapBytes: 4 * MiB, checked: true });
    expect(() => bad.malloc(64)).toThrow(/lock 'outer' \(rank 2\) taken while holding 'inner' \(rank 3\)/);
    // The inner lock was released on the way out: the next call fails the same way, not by timeout.
    expect(() => bad.malloc(64)).toThrow(LockOrderViolation);
    bad.check();
    bad.detach();

    const unchecked = GlobalAllocator.create({ backend: nestingBackend(true), heapBytes: 4 * MiB, checked: false });
    expect(unchecked.malloc(64)).not.toBe(0);
    unchecked.detach();
  });
});
