/**
 * Callocs and aligned requests: zeroed arrays (calloc), and blocks at alignments from 16
 * bytes to 4 KiB (a cache line, a page) among plain ones, so a backend's alignment path and
 * the zeroing are both exercised; the aligned blocks are freed in a different order from
 * the one they were made in.
 */

import { Random, type Trace } from '@heaplab/core';

import { TraceBuilder } from '../trace-builder.js';

const ALIGNS = [16, 32, 64, 128, 256, 4096];
const STEPS = 4000;

export function callocAligned(seed: number, description: string): Trace {
  const random = new Random(seed);
  const builder = new TraceBuilder();
  const live: number[] = [];
  for (let step = 0; step < STEPS; step++) {
    const roll = random.int(0, 10);
    if (roll < 3) live.push(builder.alloc(random.int(1, 65) * 8, { zero: true }));
    else if (roll < 6) live.push(builder.alloc(random.size(2048), { align: ALIGNS[random.int(0, ALIGNS.length)]! }));
    else if (roll < 7) live.push(builder.alloc(random.size(512)));
    else if (live.length > 0) {
      const at = random.int(0, live.length);
      builder.free(live[at]!);
      live[at] = live[live.length - 1]!;
      live.pop();
    }
  }
  for (const id of live.reverse()) builder.free(id);
  return builder.build(description);
}
