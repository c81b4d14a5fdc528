/**
 * What `freeDelayed` costs against a plain `free`, and how much memory it holds back. A
 * measurement, not a test: it prints figures and asserts nothing.
 *
 *   pnpm build && node packages/core/dist/tools/delayed-free-cost.js [backend-spec]
 *
 * One thread, two handles: the writer allocates a block and retires the previous one; a
 * second handle plays a reader that passes a quiescent point after every step, as readers of
 * a busy structure do. The cost of `freeDelayed` includes its share of the batch processing
 * it causes (run at the writer's next allocation).
 */

import { GlobalAllocator } from '../facade/global-allocator.js';
import { KiB, MiB } from '../sizes.js';

const STEPS = 400_000;

function measure(spec: string, blockBytes: number, delayed: boolean): { nsPerStep: number; peakHeld: number } {
  const heap = GlobalAllocator.create({ backend: spec, heapBytes: 256 * MiB });
  heap.prefault();
  const reader = GlobalAllocator.attachSync(heap.buffer);
  let current = heap.malloc(blockBytes);
  const started = performance.now();
  for (let step = 0; step < STEPS; step++) {
    const fresh = heap.malloc(blockBytes);
    if (delayed) heap.freeDelayed(current);
    else heap.free(current);
    current = fresh;
    heap.quiescent();
    reader.quiescent();
  }
  const elapsed = performance.now() - started;
  const peakHeld = heap.stats().delayedFree.peakHeldBytes;
  heap.free(current);
  reader.detach();
  heap.detach();
  return { nsPerStep: (elapsed * 1e6) / STEPS, peakHeld };
}

const spec = process.argv[2] ?? 'basic';
console.log(`freeDelayed against free on '${spec}': ${STEPS} steps of malloc + retire, limit 1 MiB held per thread`);
const rows: Record<string, Record<string, string>> = {};
for (const blockBytes of [64, 1 * KiB, 64 * KiB]) {
  const plain = measure(spec, blockBytes, false);
  const delayed = measure(spec, blockBytes, true);
  rows[`${blockBytes} B blocks`] = {
    'malloc+free (ns)': plain.nsPerStep.toFixed(0),
    'malloc+freeDelayed (ns)': delayed.nsPerStep.toFixed(0),
    'extra per retire (ns)': (delayed.nsPerStep - plain.nsPerStep).toFixed(0),
    'peak held (KiB)': (delayed.peakHeld / KiB).toFixed(0),
  };
}
console.table(rows);
