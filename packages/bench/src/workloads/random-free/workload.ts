/**
 * ArceOS's random-free workload: allocate 25,000 blocks of 64 bytes, then free them in a
 * random order; then the same with 7,500 blocks of 520 bytes. Each phase is timed on its own,
 * since freeing in random order is what punishes allocators whose free is not O(1).
 */

import { GlobalAllocator } from '@heaplab/core';

import type { Contender } from '../../contenders/contender.js';
import type { AddressAllocator } from '../../run/address-allocator.js';
import type { Progress } from '../../run/progress.js';
import type { RandomFreeRow } from '../../report/results.js';
import { createThingBuffer, openThingPool } from '../../contenders/thing-pool.js';
import { Xorshift32 } from '../../xorshift.js';

/** The two rounds: block count and size. */
export const RANDOM_FREE_ROUNDS: readonly { blocks: number; blockBytes: number }[] = [
  { blocks: 25_000, blockBytes: 64 },
  { blocks: 7_500, blockBytes: 520 },
];

const RANDOM_FREE_HEAP_BYTES = 64 << 20;

/**
 * Times one round on `allocator`: the allocations, then the frees in an order shuffled by
 * `seed` (Fisher-Yates), the same order for every allocator.
 * @throws Error when an allocation returns 0
 */
export function timeRandomFree(
  allocator: AddressAllocator,
  blocks: number,
  blockBytes: number,
  seed: number,
): { allocateSeconds: number; freeSeconds: number } {
  const addresses = new Float64Array(blocks);
  const random = new Xorshift32(seed);
  const order = new Uint32Array(blocks);
  for (let i = 0; i < blocks; i++) order[i] = i;
  for (let i = blocks - 1; i > 0; i--) {
    const j = random.nextU32() % (i + 1);
    const swap = order[i]!;
    order[i] = order[j]!;
    order[j] = swap;
  }
  const started = performance.now();
  for (let i = 0; i < blocks; i++) {
    const address = allocator.malloc(blockBytes);
    if (address === 0) throw new Error(`malloc(${blockBytes}) returned 0 at block ${i} of ${blocks}`);
    addresses[i] = address;
  }
  const allocated = performance.now();
  for (let i = 0; i < blocks; i++) allocator.free(addresses[order[i]!]!);
  const freed = performance.now();
  return { allocateSeconds: (allocated - started) / 1000, freeSeconds: (freed - allocated) / 1000 };
}

/**
 * Runs both rounds for each heaplab backend and @thi.ng/malloc (the other baselines have no
 * free to time). A heaplab heap is checked empty after each round.
 */
export function runRandomFreeBench(contenders: readonly Contender[], seed: number, progress: Progress): RandomFreeRow[] {
  const rows: RandomFreeRow[] = [];
  for (const contender of contenders) {
    if (contender.kind !== 'heaplab' && contender.kind !== 'thing') continue;
    progress.step(`random-free  ${contender.label}`);
    const row: RandomFreeRow = { label: contender.label, kind: contender.kind, phases: [] };
    let heap: GlobalAllocator | null = null;
    try {
      let allocator: AddressAllocator;
      if (contender.kind === 'heaplab') {
        heap = GlobalAllocator.create({ backend: contender.backendSpec!, heapBytes: RANDOM_FREE_HEAP_BYTES });
        heap.prefault();
        allocator = heap;
      } else {
        allocator = openThingPool(createThingBuffer(RANDOM_FREE_HEAP_BYTES));
      }
      for (const round of RANDOM_FREE_ROUNDS) {
        const times = timeRandomFree(allocator, round.blocks, round.blockBytes, seed);
        row.phases.push({ ...round, ...times });
        const report = heap?.check();
        if (report !== undefined && report.liveBlocks !== 0) {
          throw new Error(`${report.liveBlocks} blocks still live after freeing all ${round.blocks}`);
        }
      }
    } catch (error) {
      row.error = (error as Error).message;
    } finally {
      heap?.detach();
    }
    rows.push(row);
  }
  return rows;
}
