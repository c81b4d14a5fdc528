/**
 * Random mixes: a seeded walk of allocations, reallocs and frees over a bounded set of live
 * blocks, ending with every block freed. `small` keeps to the sizes of a program's objects
 * (8 to 512 bytes), `wide` spreads from 1 byte to 64 KiB and reallocs often, so a backend's
 * size classes and its large path both take turns.
 */

import { Random, type Trace } from '@heaplab/core';

import { TraceBuilder } from '../trace-builder.js';

export interface RandomMixShape {
  requests: number;
  /** Most blocks live at once. */
  maxLive: number;
  minBytes: number;
  maxBytes: number;
  /** Share of steps on a live block that realloc it (the rest free it). */
  reallocShare: number;
}

export const SMALL_MIX: RandomMixShape = { requests: 8000, maxLive: 600, minBytes: 8, maxBytes: 512, reallocShare: 0.05 };
export const WIDE_MIX: RandomMixShape = { requests: 8000, maxLive: 300, minBytes: 1, maxBytes: 64 << 10, reallocShare: 0.25 };

/** A size from `min` to `max`, spread evenly over the powers of two between (log-uniform). */
function spreadSize(random: Random, min: number, max: number): number {
  const exponent = Math.log2(min) + (random.nextU32() / 0x1_0000_0000) * (Math.log2(max) - Math.log2(min));
  return Math.min(max, Math.max(min, Math.round(2 ** exponent)));
}

export function randomMix(shape: RandomMixShape, seed: number, description: string): Trace {
  const random = new Random(seed);
  const builder = new TraceBuilder();
  const live: number[] = [];
  let made = 0;
  // Leave room for the final frees of whatever is still live.
  while (made + live.length < shape.requests) {
    const grow = live.length === 0 || (live.length < shape.maxLive && random.int(0, 100) < 55);
    if (grow) {
      live.push(builder.alloc(spreadSize(random, shape.minBytes, shape.maxBytes)));
    } else {
      const at = random.int(0, live.length);
      if (random.nextU32() / 0x1_0000_0000 < shape.reallocShare) {
        builder.realloc(live[at]!, spreadSize(random, shape.minBytes, shape.maxBytes));
      } else {
        builder.free(live[at]!);
        live[at] = live[live.length - 1]!;
        live.pop();
      }
    }
    made++;
  }
  for (const id of live) builder.free(id);
  return builder.build(description);
}
