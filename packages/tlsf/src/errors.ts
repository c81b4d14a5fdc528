/**
 * The TLSF backend's errors. They are built in these functions, off the hot paths: a hot path
 * only compares and, when a check fails, throws what one of these returns.
 */

import { AllocError, hex } from '@heaplab/core';

/** A broken invariant of the heap's own records (`HeapCorrupted`). */
export function heapCorrupted(message: string): AllocError {
  return new AllocError('HeapCorrupted', `tlsf heap: ${message}`);
}

/** An address that is not the start of a live block (`NotAllocated`). */
export function notAllocated(address: number): AllocError {
  return new AllocError(
    'NotAllocated',
    `${hex(address)} is not the start of a live block (double free, interior pointer, or never allocated)`,
  );
}
