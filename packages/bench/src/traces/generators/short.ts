/**
 * A short trace for debugging a backend by hand: a dozen requests covering each operation
 * once or twice (an allocation, growth and shrinking by realloc, a free that leaves a hole
 * between live blocks and its reuse), small enough to follow in a debugger.
 */

import type { Trace } from '@heaplab/core';

import { TraceBuilder } from '../trace-builder.js';

export function shortTrace(description: string): Trace {
  const builder = new TraceBuilder();
  const a = builder.alloc(100);
  const b = builder.alloc(200);
  const c = builder.alloc(300);
  builder.free(b);
  const d = builder.alloc(150);
  builder.realloc(a, 1000);
  builder.realloc(c, 40);
  builder.free(a);
  const e = builder.alloc(4096);
  builder.free(c);
  builder.free(d);
  builder.free(e);
  return builder.build(description);
}
