/**
 * How long one cache line takes to go from this thread's core to another thread's and back
 * (run/line-round-trip.ts says what it means and why it varies). A measurement, not a test:
 * it prints figures and asserts nothing.
 *
 *   pnpm build && node packages/bench/dist/tools/line-round-trip.js [samples] [rounds]
 *
 * Run it while nothing else runs, so that each thread has a core.
 */

import { FAR_ROUND_TRIP_NS, measureLineRoundTrips } from '../run/line-round-trip.js';

/** A whole number of at least 1 from argument `text`, or `fallback` when it is absent. */
function countArgument(text: string | undefined, fallback: number, name: string): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`line-round-trip: ${name} must be a whole number of at least 1, not '${text}'`);
  return value;
}

const [samplesText, roundsText] = process.argv.slice(2);
try {
  const rounds = countArgument(roundsText, 100_000, 'rounds');
  const figures = await measureLineRoundTrips(countArgument(samplesText, 5, 'samples'), rounds);
  console.log(`cache line round trip between two threads, ${rounds} rounds a sample:`);
  for (const [index, ns] of figures.entries()) console.log(`  sample ${index + 1}: ${ns.toFixed(0)} ns${ns >= FAR_ROUND_TRIP_NS ? ' (far)' : ''}`);
} catch (error) {
  console.error(error instanceof Error ? error.message : String(error));
  process.exitCode = 1;
}
