/**
 * What holding emptied pages costs (delayedPageReuse=true): one thread allocates a page's
 * worth of blocks and frees them all, again and again, so its page empties (and is held)
 * once per round and the next round's first malloc takes it back (cancelling the hold). A
 * measurement, not a test: it prints one JSON line and asserts nothing.
 *
 *   node --conditions=heaplab-source --import tsx packages/mimalloc/test/bench/hold-loop.ts [rounds]
 *
 * `advances` is how often the write sequence of core's QSBR domain moved (by 2 each).
 */

import { GlobalAllocator, MiB } from '@heaplab/core';

import { mimallocBackend } from '../../src/index.js';

const ROUNDS = Number(process.argv[2] ?? 200_000);
/** 16 blocks of 4 KiB fill one 64 KiB small page. */
const SIZE = 4096;
const PER_ROUND = 16;

const heap = GlobalAllocator.create({ backend: mimallocBackend, options: { delayedPageReuse: true }, heapBytes: 64 * MiB });
heap.prefault();
const blocks = new Array<number>(PER_ROUND).fill(0);
const round = (): void => {
  for (let i = 0; i < PER_ROUND; i++) blocks[i] = heap.malloc(SIZE);
  for (let i = 0; i < PER_ROUND; i++) heap.free(blocks[i]!);
};
for (let i = 0; i < 20_000; i++) round();
const sequenceBefore = heap.stats().delayedFree.writeSequence;
const cpuBefore = process.cpuUsage();
const started = performance.now();
for (let i = 0; i < ROUNDS; i++) round();
const elapsed = performance.now() - started;
const cpu = process.cpuUsage(cpuBefore);
const advances = (heap.stats().delayedFree.writeSequence - sequenceBefore) / 2;
heap.check();
const ops = ROUNDS * PER_ROUND * 2;
console.log(
  JSON.stringify({
    mOpsPerSecond: Number((ops / elapsed / 1000).toFixed(2)),
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
    wallMs: Math.round(elapsed),
    advancesPerRound: Number((advances / ROUNDS).toFixed(3)),
  }),
);
heap.detach();
