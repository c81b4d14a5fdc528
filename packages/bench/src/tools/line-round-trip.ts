/**
 * How long one cache line takes to go from this thread's core to another thread's and back:
 * the price of every line two threads of a benchmark both write. A measurement, not a test:
 * it prints figures and asserts nothing.
 *
 *   pnpm build && node packages/bench/dist/tools/line-round-trip.js [samples] [rounds]
 *
 * Two threads pass one word back and forth (this one writes an odd number, the other answers
 * with the next even one), `rounds` times per sample; a sample's figure is its time over its
 * rounds. Run it while nothing else runs, so that each thread has a core.
 *
 * Why it exists: on the two-core virtual machine heaplab is developed on, this figure is
 * about 100 ns at some moments and about 400 ns at others, minutes at a time (the host
 * places the two virtual CPUs near each other or far apart). Two-thread rows of backends
 * whose threads share lines (the locked backends: the heap lock, and blocks one thread frees
 * and the other gets) are slower while it is high; backends whose threads share nothing
 * (mimalloc, the C allocators) are not. docs/speed.md has the measurements.
 */

import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** The word both threads write: the first of the buffer, so alone on its cache line. */
const BALL = 0;
/** Set by the answering thread once it is spinning, so no sample times its start-up. */
const READY = 16;
const WORDS = 32;

interface Rally {
  buffer: SharedArrayBuffer;
  rounds: number;
  samples: number;
}

/** The answering thread: for each odd value it sees, writes the next even one. */
function answer({ buffer, rounds, samples }: Rally): void {
  const words = new Int32Array(buffer);
  Atomics.store(words, READY, 1);
  for (let round = 0; round < rounds * samples; round++) {
    const served = 2 * round + 1;
    while (Atomics.load(words, BALL) !== served);
    Atomics.store(words, BALL, served + 1);
  }
  parentPort!.postMessage('done');
}

/** This thread: serves `rounds` balls per sample and prints each sample's round trip. */
async function serve(samples: number, rounds: number): Promise<void> {
  const buffer = new SharedArrayBuffer(WORDS * 4);
  const words = new Int32Array(buffer);
  const rally: Rally = { buffer, rounds, samples };
  const worker = new Worker(new URL(import.meta.url), { workerData: rally });
  const finished = new Promise<void>((resolve, reject) => {
    worker.once('message', () => resolve());
    worker.once('error', reject);
  });
  // Bounded: a worker that never starts is an error, not a hang.
  const startBy = performance.now() + 10_000;
  while (Atomics.load(words, READY) === 0) {
    if (performance.now() > startBy) throw new Error('line-round-trip: the answering thread did not start within 10 s');
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  console.log(`cache line round trip between two threads, ${rounds} rounds a sample:`);
  let round = 0;
  for (let sample = 1; sample <= samples; sample++) {
    const started = performance.now();
    for (const last = round + rounds; round < last; round++) {
      const served = 2 * round + 1;
      Atomics.store(words, BALL, served);
      while (Atomics.load(words, BALL) !== served + 1);
    }
    const ns = ((performance.now() - started) * 1e6) / rounds;
    console.log(`  sample ${sample}: ${ns.toFixed(0)} ns`);
  }
  await finished;
  await worker.terminate();
}

/** A whole number of at least 1 from argument `text`, or `fallback` when it is absent. */
function countArgument(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`line-round-trip: ${name} must be a whole number of at least 1, not '${text}'`);
  return value;
}

if (isMainThread) {
  const [samplesText, roundsText] = process.argv.slice(2);
  try {
    await serve(countArgument(samplesText, 5, 'samples'), countArgument(roundsText, 100_000, 'rounds'));
  } catch (error) {
    console.error(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  }
} else {
  answer(workerData as Rally);
}
