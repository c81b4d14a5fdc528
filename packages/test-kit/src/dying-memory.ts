/**
 * Memory views that let a test kill a thread at any store: the views write through to the
 * real buffer, counting stores, and the store that would exceed the budget does not happen:
 * the "thread" dies there instead (an exception no backend catches, or, in a worker, the end
 * of the thread). Running an operation once with no budget counts its stores; running it
 * again from the same starting bytes with each budget from 0 to that count kills it between
 * every pair of its stores, which is what "a thread may die at any instruction" means for
 * the shared state.
 *
 * Only locked backends can run over these views: `Atomics` refuses a proxy, and a backend
 * must write through the context's views (not views of its own over the buffer) for its
 * stores to be counted.
 */

import type { HeapMemory } from '@heaplab/core';
import { type BackendContext, PoolView, StateCounters } from '@heaplab/core/backend';

/** What a dying thread throws: only the test catches it. */
export class ThreadDeath extends Error {
  override readonly name = 'ThreadDeath';

  constructor(readonly store: number) {
    super(`the thread died before its store number ${store}`);
  }
}

/** The store counter shared by one set of dying views. */
export interface StoreBudget {
  /** Stores done so far. */
  stores: number;
  /** Stores allowed before death; `Infinity` to only count. */
  limit: number;
  /** What death does; default: throw `ThreadDeath`. */
  die?: (store: number) => never;
}

/** Typed-array methods that write: each call counts as one store. */
const WRITING_METHODS = new Set(['fill', 'set', 'copyWithin', 'reverse', 'sort']);

/** A proxy over `view` that counts its writes against `budget`. */
function dyingView<T extends Uint8Array | Uint32Array | Int32Array | Float64Array>(view: T, budget: StoreBudget): T {
  const store = (): void => {
    if (budget.stores >= budget.limit) {
      if (budget.die !== undefined) budget.die(budget.stores);
      throw new ThreadDeath(budget.stores);
    }
    budget.stores++;
  };
  return new Proxy(view, {
    get(target, key) {
      const value = Reflect.get(target, key, target) as unknown;
      if (typeof value !== 'function') return value;
      if (typeof key === 'string' && WRITING_METHODS.has(key)) {
        return (...args: unknown[]) => {
          store();
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
    set(target, key, value) {
      store();
      return Reflect.set(target, key, value, target);
    },
  });
}

/** Views over `memory`'s buffer whose every store counts against `budget`. */
export function dyingMemory(memory: HeapMemory, budget: StoreBudget): HeapMemory {
  return {
    buffer: memory.buffer,
    u8: dyingView(memory.u8, budget),
    u32: dyingView(memory.u32, budget),
    i32: dyingView(memory.i32, budget),
    f64: dyingView(memory.f64, budget),
  };
}

/**
 * `context` writing through `views` (dying ones, say): its memory, and core's counters and
 * pool view made over them, so that a backend's store to a counter counts, and can be the
 * one a thread dies before, as a store to a block does.
 */
export function contextOver(context: BackendContext, views: HeapMemory): BackendContext {
  return { ...context, memory: views, counters: new StateCounters(views), pools: new PoolView(views) };
}
