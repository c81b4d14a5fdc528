/**
 * Worker side of the trace recorder's two-thread test: attaches to the heap with a recorder
 * over the shared log, and makes seeded calls on a shared slot array, so a block one thread
 * allocated is often freed or reallocated by the other (cross-thread frees).
 *
 * ```text
 *  slots: SLOT_COUNT Int32 words, each a live block's address or 0 (empty)
 * ```
 * A step takes a slot's block with an atomic exchange (so exactly one thread owns it), then
 * frees it, reallocates it and puts it back, or, for an empty slot, allocates a new one and
 * puts it back; a slot filled meanwhile by the other thread gets its block freed instead.
 */

import { isMainThread, parentPort, workerData } from 'node:worker_threads';

import { GlobalAllocator, Random, TraceRecorder } from '@heaplab/core';

export const SLOT_COUNT = 64;

export interface TraceWorkerInput {
  heap: SharedArrayBuffer;
  log: SharedArrayBuffer;
  slots: SharedArrayBuffer;
  steps: number;
  seed: number;
}

/** Calls that reached the heap and succeeded: each must be one request of the trace. */
export interface TraceWorkerResult {
  calls: number;
}

async function run(input: TraceWorkerInput): Promise<TraceWorkerResult> {
  const heap = await GlobalAllocator.attach(input.heap, { trace: TraceRecorder.over(input.log) });
  const slots = new Int32Array(input.slots);
  const random = new Random(input.seed);
  let calls = 0;
  const putBack = (slot: number, address: number): void => {
    if (Atomics.compareExchange(slots, slot, 0, address) !== 0) {
      heap.free(address);
      calls++;
    }
  };
  try {
    for (let step = 0; step < input.steps; step++) {
      const slot = random.int(0, SLOT_COUNT);
      const address = Atomics.exchange(slots, slot, 0);
      if (address === 0) {
        const block = random.int(0, 4) === 0 ? heap.calloc(random.int(1, 9), 16) : heap.malloc(random.size(4096));
        if (block === 0) throw new Error('the heap ran out of room');
        calls++;
        putBack(slot, block);
      } else if (random.int(0, 3) === 0) {
        const moved = heap.realloc(address, random.size(8192));
        if (moved === 0) throw new Error('the heap ran out of room');
        calls++;
        putBack(slot, moved);
      } else {
        heap.free(address);
        calls++;
      }
    }
    return { calls };
  } finally {
    heap.detach();
  }
}

if (!isMainThread) {
  run(workerData as TraceWorkerInput).then(
    (result) => parentPort!.postMessage({ ok: true, result }),
    (error: unknown) => parentPort!.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) }),
  );
}
