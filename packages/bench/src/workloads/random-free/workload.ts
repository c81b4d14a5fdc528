/**
 * random-free: ArceOS's vec_rand_free benchmark (docs/workloads/random-free.md): allocate
 * 25,000 blocks of 64 bytes, then free them in a random order; then the same with 7,500
 * blocks of 520 bytes. Each phase is timed on its own, since freeing in random order is what
 * punishes allocators whose free is not O(1).
 */

import { type GlobalAllocator, Random } from '@heaplab/core';

import { createBackendHeap } from '../../contenders/backends.js';
import { createThingBuffer, openThingPool } from '../../contenders/thing-pool.js';
import { formatSeconds } from '../../report/format.js';
import { figureColumns, renderTable } from '../../report/text-table.js';
import type { AddressAllocator } from '../../run/address-allocator.js';
import type { Workload, WorkloadRow } from '../../run/workload.js';

/** The two rounds: block count and size. */
export const RANDOM_FREE_ROUNDS: readonly { blocks: number; blockBytes: number }[] = [
  { blocks: 25_000, blockBytes: 64 },
  { blocks: 7_500, blockBytes: 520 },
];

const RANDOM_FREE_HEAP_BYTES = 64 << 20;

/** One round of random-free: its allocations, then its frees. */
export interface RandomFreePhase {
  blocks: number;
  blockBytes: number;
  allocateSeconds: number;
  freeSeconds: number;
}

/** One row of random-free. */
export interface RandomFreeRow extends WorkloadRow {
  phases: RandomFreePhase[];
}

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
  const random = new Random(seed);
  const order = new Uint32Array(blocks);
  for (let i = 0; i < blocks; i++) order[i] = i;
  for (let i = blocks - 1; i > 0; i--) {
    const j = random.int(0, i + 1);
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

export const randomFreeWorkload: Workload<RandomFreeRow, 'randomFree'> = {
  name: 'random-free',
  resultKey: 'randomFree',
  summary: 'ArceOS: 25,000 x 64 B and 7,500 x 520 B, freed in random order',
  inAll: true,
  // The system, bump and native baselines have no free to time.
  appliesTo: (contender) => contender.kind === 'heaplab' || contender.kind === 'thing',
  stepsPerContender: () => 1,

  /** Both rounds for each contender; a heaplab heap is checked empty after each round. */
  async run(contenders, settings, progress) {
    const rows: RandomFreeRow[] = [];
    for (const contender of contenders) {
      progress.step(`random-free  ${contender.label}`);
      const row: RandomFreeRow = { label: contender.label, kind: contender.kind, phases: [] };
      let heap: GlobalAllocator | null = null;
      try {
        let allocator: AddressAllocator;
        if (contender.kind === 'heaplab') {
          heap = createBackendHeap(contender.spec, RANDOM_FREE_HEAP_BYTES);
          heap.prefault();
          allocator = heap;
        } else {
          allocator = openThingPool(createThingBuffer(RANDOM_FREE_HEAP_BYTES));
        }
        for (const round of RANDOM_FREE_ROUNDS) {
          const times = timeRandomFree(allocator, round.blocks, round.blockBytes, settings.seed);
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
  },

  /** One column per phase. */
  section(rows) {
    const headers = ['backend', ...RANDOM_FREE_ROUNDS.flatMap((round) => [`alloc ${round.blocks}x${round.blockBytes}`, 'free random'])];
    const body = rows.map((row) => [row.label, ...row.phases.flatMap((phase) => [formatSeconds(phase.allocateSeconds), formatSeconds(phase.freeSeconds)])]);
    return { title: 'random-free (ArceOS)', table: renderTable(headers, body, figureColumns(headers)) };
  },

  charts: () => [],
};
