/**
 * A small helper for `check()` and for the link checks of a backend's walks: it names the
 * backend in every failure and bounds every walk, so a corrupted list raises `HeapCorrupted`
 * instead of looping.
 */

import type { AllocError } from '../errors.js';
import { hex } from '../errors.js';
import { heapCorrupted } from './errors.js';

export class HeapChecker {
  constructor(readonly backend: string) {}

  /** The error for a broken invariant, to throw. */
  corrupt(what: string): AllocError {
    return heapCorrupted(this.backend, what);
  }

  /** Throws `HeapCorrupted` with `what` unless `holds`. */
  expect(holds: boolean, what: string | (() => string)): void {
    if (!holds) throw this.corrupt(typeof what === 'string' ? what : what());
  }

  /**
   * Throws unless `link` is a plausible block address: inside `[start, end)` and a multiple
   * of `grain`. Call before following or handing out any link read from shared memory.
   */
  link(link: number, start: number, end: number, grain: number, where: string): void {
    if (link < start || link >= end || link % grain !== 0) {
      throw this.corrupt(`${where}: link ${hex(link)} is outside [${hex(start)}, ${hex(end)}) or off the ${grain}-byte grid`);
    }
  }

  /**
   * A step budget for a walk that cannot be longer than `limit` steps: call `step()` at each
   * step; the one past the limit throws, naming the walk.
   */
  budget(limit: number, walk: string): { step(): void } {
    let left = limit;
    const checker = this;
    return {
      step(): void {
        if (left-- <= 0) throw checker.corrupt(`${walk} is longer than ${limit} steps (a cycle, or a broken count)`);
      },
    };
  }
}
