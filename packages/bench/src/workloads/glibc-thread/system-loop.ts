/**
 * The `system` baseline's bench-malloc-thread loop: what a JS program does without heaplab.
 * `malloc` is `new Uint8Array(n)`, `free` drops the reference, and V8's allocator and garbage
 * collector do the rest. Blocks are objects, not addresses, so this is a copy of the loop in
 * loop.ts with the same sequence of requests.
 */

import type { LoopLimits } from '../../run/address-allocator.js';
import type { ThreadOutcome } from '../../run/thread-loop.js';
import type { RequestTables } from './request-tables.js';
import { NUM_BLOCK_SIZES, NUM_OFFSETS, WORKING_SET_SIZE } from './request-tables.js';

const STOP_CHECK_INTERVAL = 64;

/**
 * bench-malloc-thread's loop with `new Uint8Array(n)` per allocation. The fill is
 * `TypedArray.fill`, what such a program would write (a 32-bit view of each block would
 * cost an extra object per iteration). `highWater` is 0: there is no heap to measure.
 * @throws Error in verify mode when a block lost its bytes (it cannot, unless V8 is broken)
 */
export function runSystemGlibcThreadLoop(tables: RequestTables, limits: LoopLimits, verify: boolean): ThreadOutcome {
  const { sizes, offsets } = tables;
  const { stop, deadline, maxIterations } = limits;
  const slots = new Array<Uint8Array | null>(WORKING_SET_SIZE).fill(null);
  const slotFill = new Uint8Array(WORKING_SET_SIZE);
  let offsetCursor = 0;
  let sizeCursor = 0;
  let iterations = 0;
  const started = performance.now();
  while (iterations < maxIterations) {
    if (iterations % STOP_CHECK_INTERVAL === 0 && (Atomics.load(stop, 0) !== 0 || performance.now() >= deadline)) break;
    offsetCursor = (offsetCursor + 1) & (NUM_OFFSETS - 1);
    sizeCursor = sizeCursor + 1 === NUM_BLOCK_SIZES ? 0 : sizeCursor + 1;
    const slot = offsets[offsetCursor]!;
    if (verify) {
      const held = slots[slot];
      if (held?.some((byte) => byte !== slotFill[slot])) {
        throw new Error(`verify: the system block in slot ${slot} lost its fill ${slotFill[slot]}`);
      }
    }
    const block = new Uint8Array(sizes[sizeCursor]!);
    const fill = iterations & 0xff;
    block.fill(fill);
    slots[slot] = block;
    slotFill[slot] = fill;
    iterations++;
  }
  return { iterations, seconds: (performance.now() - started) / 1000, highWater: 0 };
}
