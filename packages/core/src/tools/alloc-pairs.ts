/**
 * Alloc+free pairs per second for each basic strategy, on one thread and with two workers
 * sharing the heap. A measurement, not a test: it prints figures and asserts nothing.
 *
 *   pnpm --filter @heaplab/core build && node packages/core/dist/tools/alloc-pairs.js [seconds]
 *
 * Workload: each thread keeps `LIVE_BLOCKS` blocks; a pair frees a random one and allocates a
 * new block of a random size in [16, 512] (seeded, the same on every run). The heap is
 * touched in full before timing, so page faults are not measured.
 */

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { BASIC_STRATEGIES } from '../basic-allocator.js';
import { GlobalAllocator } from '../global-allocator.js';
import { MiB } from '../layout.js';

const LIVE_BLOCKS = 1000;
const HEAP_BYTES = 64 * MiB;

/** Runs pairs for `seconds` on `heap`; returns the number of pairs. */
function runPairs(heap: GlobalAllocator, seconds: number, seed: number): number {
  const live = new Float64Array(LIVE_BLOCKS);
  let state = seed >>> 0 || 1;
  const next = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  for (let i = 0; i < LIVE_BLOCKS; i++) live[i] = heap.malloc(16 + (next() % 497));
  let pairs = 0;
  const deadline = performance.now() + seconds * 1000;
  while (performance.now() < deadline) {
    for (let batch = 0; batch < 1000; batch++) {
      const slot = next() % LIVE_BLOCKS;
      heap.free(live[slot]!);
      live[slot] = heap.malloc(16 + (next() % 497));
    }
    pairs += 1000;
  }
  for (let i = 0; i < LIVE_BLOCKS; i++) heap.free(live[i]!);
  return pairs;
}

async function measureWorkers(strategy: string, workers: number, seconds: number): Promise<number> {
  const heap = GlobalAllocator.create({ backend: 'basic', options: { strategy }, heapBytes: HEAP_BYTES });
  heap.prefault();
  const counts = await Promise.all(
    Array.from({ length: workers }, (_, index) => {
      const worker = new Worker(new URL(import.meta.url), {
        workerData: { buffer: heap.buffer, seconds, seed: index + 1 },
      });
      return new Promise<number>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    }),
  );
  heap.check();
  heap.detach();
  return counts.reduce((sum, count) => sum + count, 0);
}

async function main(): Promise<void> {
  const seconds = Number(process.argv[2] ?? 2);
  if (!(seconds > 0)) {
    console.error('usage: alloc-pairs.js [seconds > 0]');
    process.exit(1);
  }
  console.log(`basic allocator, alloc+free pairs per second (${LIVE_BLOCKS} live blocks per thread, sizes 16..512, ${seconds} s per row)`);
  const rows: Record<string, Record<string, string>> = {};
  for (const strategy of BASIC_STRATEGIES) {
    const heap = GlobalAllocator.create({ backend: 'basic', options: { strategy }, heapBytes: HEAP_BYTES });
    heap.prefault();
    const single = runPairs(heap, seconds, 1) / seconds;
    heap.check();
    heap.detach();
    const dual = (await measureWorkers(strategy, 2, seconds)) / seconds;
    rows[strategy] = {
      '1 thread (pairs/s)': single.toExponential(3),
      '2 workers (pairs/s)': dual.toExponential(3),
      '2 workers / 1 thread': (dual / single).toFixed(2),
    };
  }
  console.table(rows);
}

if (isMainThread) {
  await main();
} else {
  const input = workerData as { buffer: SharedArrayBuffer; seconds: number; seed: number };
  const heap = await GlobalAllocator.attach(input.buffer);
  parentPort!.postMessage(runPairs(heap, input.seconds, input.seed));
  heap.detach();
}
