/**
 * The demo the README's first command runs (until the bench package takes over): one heap,
 * shared by the main thread and two workers, each allocating, writing and checking blocks,
 * and a table of the heap's figures at the end.
 *
 *   node packages/core/dist/demo.js [backend-spec]     (default: HEAPLAB_BACKEND or basic)
 */

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

import { GlobalAllocator } from './facade/global-allocator.js';
import { MiB } from './sizes.js';

const WORKERS = 2;
const BLOCKS_PER_WORKER = 20_000;

interface WorkerInput {
  buffer: SharedArrayBuffer;
  /** Address of a Float64Array of `count` numbers the main thread filled. */
  numbers: number;
  count: number;
}

async function runWorker(input: WorkerInput): Promise<void> {
  const heap = await GlobalAllocator.attach(input.buffer);
  // Read data the main thread put in the heap: no copy, the same bytes.
  const numbers = new Float64Array(heap.buffer, input.numbers, input.count);
  let sum = 0;
  for (const value of numbers) sum += value;
  // Churn: allocate blocks, write a byte pattern, verify it, free.
  const live: number[] = [];
  let verified = 0;
  for (let i = 0; i < BLOCKS_PER_WORKER; i++) {
    const size = 16 + ((i * 37) % 2000);
    const address = heap.malloc(size);
    if (address === 0) throw new Error(`thread ${heap.threadId}: heap full`);
    heap.memory.u8.fill(heap.threadId, address, address + size);
    live.push(address);
    if (live.length > 500) {
      const old = live.shift()!;
      if (heap.memory.u8[old] !== heap.threadId) throw new Error(`block at ${old} was overwritten`);
      heap.free(old);
      verified++;
    }
  }
  for (const address of live) heap.free(address);
  parentPort!.postMessage({ threadId: heap.threadId, sum, verified });
  heap.detach();
}

async function main(): Promise<void> {
  const spec = process.argv[2];
  const heap = GlobalAllocator.create({ heapBytes: 64 * MiB, ...(spec !== undefined ? { backend: spec } : {}) });
  console.log(`heaplab demo: a ${heap.stats().heapBytes / MiB} MiB '${heap.backendName}' heap shared by the main thread and ${WORKERS} workers`);

  const count = 1000;
  const numbers = heap.malloc(count * 8);
  const values = new Float64Array(heap.buffer, numbers, count);
  for (let i = 0; i < count; i++) values[i] = i;

  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: WORKERS }, () => {
      const worker = new Worker(new URL(import.meta.url), { workerData: { buffer: heap.buffer, numbers, count } });
      heap.watchWorker(worker);
      return new Promise<{ threadId: number; sum: number; verified: number }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
    }),
  );
  const elapsed = performance.now() - started;
  for (const result of results) {
    console.log(`  worker thread ${result.threadId}: read the shared numbers (sum ${result.sum}), verified and freed ${result.verified} blocks`);
  }
  heap.free(numbers);
  const report = heap.check();
  const stats = heap.stats();
  console.log(`  done in ${elapsed.toFixed(0)} ms; check(): ${report.blocks} blocks walked, all invariants hold`);
  console.table({
    backend: stats.backend,
    'total bytes': stats.totalBytes,
    'used bytes': stats.usedBytes,
    'peak used bytes': stats.peakUsedBytes,
    'largest free block': stats.largestFreeBlock,
    'malloc calls': stats.calls.malloc,
    'free calls': stats.calls.free,
    'lock waits': stats.contendedLockAcquisitions,
  });
  heap.detach();
}

if (isMainThread) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
} else {
  await runWorker(workerData as WorkerInput);
}
