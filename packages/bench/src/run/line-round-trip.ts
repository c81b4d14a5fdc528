/**
 * How long one cache line takes to go from this thread's core to another thread's and back:
 * the price of every line two threads of a benchmark both write.
 *
 * Two threads pass one word back and forth (this one writes an odd number, the other answers
 * with the next even one); the figure is the time over the rounds. On the two-core virtual
 * machine heaplab is developed on it is about 100 ns at some moments and about 400 ns at
 * others, minutes at a time (the host places the two virtual CPUs near each other or far
 * apart), and two-thread rows of backends whose threads share lines (the locked backends)
 * are slower while it is high; backends whose threads share nothing (mimalloc, the C
 * allocators) are not (docs/speed.md, "When two threads are slow"). glibc-thread measures it
 * around each multi-thread row, and `tools/line-round-trip` on demand.
 */

import { Worker } from 'node:worker_threads';

/** The word both threads write: the first of the buffer, so alone on its cache line. */
const BALL = 0;
/** Set by the answering thread once it is spinning, so no sample times its start-up. */
const READY = 16;
const WORDS = 32;
/** Longest wait for the answering thread to start, or for a round to come back. */
const TIMEOUT_MS = 10_000;
/** A round trip at least this long means the two cores were far apart (docs/speed.md). */
export const FAR_ROUND_TRIP_NS = 250;

/**
 * The round trip could not be measured in time: the answering thread did not start, or a ball
 * did not come back, within 10 s (a machine so loaded that the thread got no core).
 */
export class LineRoundTripTimeout extends Error {
  override readonly name = 'LineRoundTripTimeout';
}

/**
 * The answering thread, as the source of an `eval` worker: no module to resolve, so it runs
 * the same from the sources, the build and an installed package.
 */
const ANSWER = `
const { workerData } = require('node:worker_threads');
const words = new Int32Array(workerData.buffer);
Atomics.store(words, ${READY}, 1);
for (let round = 0; round < workerData.rounds; round++) {
  const served = 2 * round + 1;
  while (Atomics.load(words, ${BALL}) !== served) {
    if (Atomics.load(words, ${READY}) === 2) return;
  }
  Atomics.store(words, ${BALL}, served + 1);
}
`;

/**
 * Serves `rounds` balls in each of `samples` samples to a fresh thread and gives each sample's
 * round trip, in ns. Bounded: a thread that does not start, or a ball that does not come back,
 * within 10 s is an error, not a hang.
 * @throws LineRoundTripTimeout when the answering thread does not answer in time
 */
export async function measureLineRoundTrips(samples: number, rounds: number): Promise<number[]> {
  const buffer = new SharedArrayBuffer(WORDS * 4);
  const words = new Int32Array(buffer);
  const worker = new Worker(`(() => {${ANSWER}})()`, { eval: true, workerData: { buffer, rounds: samples * rounds } });
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.on('error', () => Atomics.store(words, READY, 2));
  try {
    const startBy = performance.now() + TIMEOUT_MS;
    while (Atomics.load(words, READY) !== 1) {
      if (Atomics.load(words, READY) === 2 || performance.now() > startBy)
        throw new LineRoundTripTimeout('line round trip: the answering thread did not start');
      await new Promise((resolve) => setTimeout(resolve, 1));
    }
    const figures: number[] = [];
    let round = 0;
    for (let sample = 0; sample < samples; sample++) {
      const started = performance.now();
      const giveUpAt = started + TIMEOUT_MS;
      for (const last = round + rounds; round < last; round++) {
        const served = 2 * round + 1;
        Atomics.store(words, BALL, served);
        for (let spins = 0; Atomics.load(words, BALL) !== served + 1; spins++) {
          if ((spins & 0xffff) === 0xffff && performance.now() > giveUpAt)
            throw new LineRoundTripTimeout('line round trip: the answering thread stopped answering');
        }
      }
      figures.push(((performance.now() - started) * 1e6) / rounds);
    }
    return figures;
  } finally {
    Atomics.store(words, READY, 2);
    await worker.terminate();
    await exited;
  }
}

/** One figure: the median of three samples of `rounds` rounds (about 10 ms at 400 ns). */
export async function measureLineRoundTrip(rounds = 10_000): Promise<number> {
  const figures = await measureLineRoundTrips(3, rounds);
  return figures.sort((a, b) => a - b)[1]!;
}
