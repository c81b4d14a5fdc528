/**
 * Realloc growth: a few buffers that grow by half again at each step (as a vector or a string
 * builder does) up to about 1 MiB, between which small short-lived blocks are allocated, so
 * that a buffer can grow in place only when its backend left room after it.
 */

import { Random, type Trace } from '@heaplab/core';

import { TraceBuilder } from '../trace-builder.js';

const BUFFERS = 4;
const START_BYTES = 64;
const END_BYTES = 1 << 20;

export function reallocGrowth(seed: number, description: string): Trace {
  const random = new Random(seed);
  const builder = new TraceBuilder();
  const small: number[] = [];
  for (let round = 0; round < 3; round++) {
    const buffers = Array.from({ length: BUFFERS }, () => ({ id: builder.alloc(START_BYTES), bytes: START_BYTES }));
    let growing = true;
    while (growing) {
      growing = false;
      for (const buffer of buffers) {
        if (buffer.bytes >= END_BYTES) continue;
        growing = true;
        buffer.bytes = Math.min(END_BYTES, Math.ceil(buffer.bytes * 1.5) + random.int(0, 16));
        builder.realloc(buffer.id, buffer.bytes);
        // A small block between growths; half of them stay for a while.
        small.push(builder.alloc(random.int(16, 200)));
        if (small.length > 40 || random.int(0, 2) === 0) builder.free(small.splice(random.int(0, small.length), 1)[0]!);
      }
    }
    for (const buffer of buffers) builder.free(buffer.id);
  }
  for (const id of small) builder.free(id);
  return builder.build(description);
}
