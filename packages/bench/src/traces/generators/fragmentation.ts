/**
 * Adversarial fragmentation: small and large blocks alternate, every large one is freed, and
 * then larger blocks are asked for. The freed holes add up to more than the new requests
 * need, but each sits between two live small blocks and is too small for any of them, so a
 * backend that cannot reuse the holes must take fresh memory; a second phase frees every
 * other small block so that some holes could merge.
 */

import type { Trace } from '@heaplab/core';

import { TraceBuilder } from '../trace-builder.js';

const PAIRS = 2000;
const SMALL_BYTES = 24;
const LARGE_BYTES = 2000;
const LARGER_BYTES = 3000;

export function fragmentation(description: string): Trace {
  const builder = new TraceBuilder();
  const small: number[] = [];
  const large: number[] = [];
  for (let pair = 0; pair < PAIRS; pair++) {
    small.push(builder.alloc(SMALL_BYTES));
    large.push(builder.alloc(LARGE_BYTES));
  }
  for (const id of large) builder.free(id);
  const larger: number[] = [];
  for (let block = 0; block < PAIRS / 2; block++) larger.push(builder.alloc(LARGER_BYTES));
  small.forEach((id, at) => {
    if (at % 2 === 1) builder.free(id);
  });
  for (let block = 0; block < PAIRS / 4; block++) larger.push(builder.alloc(2 * LARGER_BYTES));
  for (const id of larger) builder.free(id);
  small.forEach((id, at) => {
    if (at % 2 === 0) builder.free(id);
  });
  return builder.build(description);
}
