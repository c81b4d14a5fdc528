/**
 * The two errors every backend raises, worded the same way everywhere: a free of something
 * that is not a live block, and a broken structure found on the way.
 */

import { AllocError, hex } from '../errors.js';

/**
 * `address` is not the start of a live block of this backend.
 * @param why what was found there instead ("a free block", "inside a block at 0x...")
 */
export function notAllocated(backend: string, address: number, why = 'not the start of a live block'): AllocError {
  return new AllocError('NotAllocated', `${backend}: ${hex(address)} is ${why}`);
}

/** A structure of `backend` is broken: `what` names the place and the broken invariant. */
export function heapCorrupted(backend: string, what: string): AllocError {
  return new AllocError('HeapCorrupted', `${backend}: ${what}`);
}
