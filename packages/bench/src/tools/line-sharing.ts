/**
 * How many cache lines two threads of bench-malloc-thread write both, for one backend: the
 * false sharing its placement of blocks causes, measured without timing. A measurement, not
 * a test: it prints figures and asserts nothing.
 *
 *   pnpm build && node packages/bench/dist/tools/line-sharing.js [backend-spec] [iterations] [step] [size cap]
 *
 * A size cap (say 1024) clamps every request of the size table to it: with no large block,
 * the thread caches serve every call once warm, and what is left shared is small blocks' lines
 * (as in tools/heap-per-thread's capped runs).
 *
 * Two handles on one heap (two registry slots, so two thread caches) run the benchmark's loop
 * in this one thread, taking turns every `step` iterations (1: in lock step, as two threads
 * on two cores roughly run). Every write the loop and the allocator make to a block's lines is
 * noted: a malloc's fill, a free's first line (where a cache links the block, or a backend
 * keeps its header), and the block's owner-table entry when the call changed it (the tool
 * keeps a copy of the table and compares the entry of the address each call names; a
 * refill's writes to its other blocks' entries are seen when those blocks are next used;
 * docs/thread-cache.md). A line
 * written by both handles within one window of W iterations is one that two threads running
 * at once would pass between their cores (a miss, tens of nanoseconds) at least once in that
 * window. Printed per window size: the lines each handle wrote, and the share of them the
 * other handle wrote too.
 *
 * Timing-free, so it gives the same figures on a loaded machine as on a quiet one, where
 * the 2-thread benchmark itself cannot tell false sharing from sharing a core with other work.
 */

import { GlobalAllocator, parseBackendSpec } from '@heaplab/core';
import { OWNER_INDEX_MASK, OWNER_TABLE, ownerSlot, TC_MAX_REQUEST } from '@heaplab/core/internal';

import { loadBackendModules } from '../cli/backend-module-option.js';
import { createBackendHeap, resolveBackendContenders } from '../contenders/backends.js';
import { type AddressAllocator, loopMemory } from '../run/address-allocator.js';
import { LoopState, runBatch } from '../workloads/glibc-thread/loop.js';
import { buildRequestTables, capRequestSizes } from '../workloads/glibc-thread/request-tables.js';

const LINE_SHIFT = 6;
/** Window sizes, in iterations of each handle. */
const WINDOWS = [16, 256, 4096] as const;

/** Lines each handle wrote per window, and those both wrote, over one window size. */
class WindowTally {
  /** Per handle: the window (plus one) in which it last wrote each line. */
  private readonly last: [Int32Array, Int32Array];
  written = 0;
  shared = 0;

  constructor(
    private readonly iterations: number,
    lines: number,
  ) {
    this.last = [new Int32Array(lines), new Int32Array(lines)];
  }

  /** Handle `who` wrote line `line` at its iteration `at`. */
  note(who: 0 | 1, line: number, at: number): void {
    const window = ((at / this.iterations) | 0) + 1;
    const mine = this.last[who];
    if (mine[line] === window) return;
    mine[line] = window;
    this.written++;
    if (this.last[1 - who]![line] === window) this.shared += 2;
  }
}

/** Per window size: lines of blocks, of large blocks (a subset), and of the owner table. */
interface Tallies {
  blocks: WindowTally[];
  large: WindowTally[];
  owners: WindowTally[];
}

/** The writes of one handle's loop, noted in every window size's tallies. */
function recorder(heap: GlobalAllocator, who: 0 | 1, state: LoopState, tallies: Tallies, arenaStart: number, ownerCopy: Uint32Array): AddressAllocator {
  const { blocks, large, owners } = tallies;
  const noteBlock = (from: number, to: number): void => {
    const ofLarge = to - from > TC_MAX_REQUEST;
    for (let line = (from - arenaStart) >>> LINE_SHIFT, last = (to - 1 - arenaStart) >>> LINE_SHIFT; line <= last; line++) {
      for (const tally of blocks) tally.note(who, line, state.iterations);
      if (ofLarge) for (const tally of large) tally.note(who, line, state.iterations);
    }
  };
  const u32 = heap.memory.u32;
  const noteOwner = (address: number): void => {
    const slot = ownerSlot(address);
    const index = slot - (OWNER_TABLE >>> 2);
    if (u32[slot] === ownerCopy[index]) return;
    ownerCopy[index] = u32[slot]!;
    const line = (slot * 4) >>> LINE_SHIFT;
    for (const tally of owners) tally.note(who, line, state.iterations);
  };
  return {
    malloc(size) {
      const address = heap.malloc(size);
      if (address !== 0) {
        noteBlock(address, address + Math.max(size, 8));
        noteOwner(address);
      }
      return address;
    },
    free(address) {
      heap.free(address);
      noteBlock(address, address + 8);
      noteOwner(address);
    },
    realloc() {
      throw new Error('the glibc-thread loop never resizes');
    },
  };
}

async function main(specText: string, iterations: number, step: number, sizeCap: number): Promise<void> {
  await loadBackendModules([]);
  const [row] = resolveBackendContenders([parseBackendSpec(specText)]);
  const heapBytes = 64 * 1024 * 1024;
  const first = createBackendHeap(row!.spec, heapBytes);
  const second = await GlobalAllocator.attach(first.buffer);
  const lines = (first.arenaEnd - first.arenaStart) >>> LINE_SHIFT;
  const ownerLines = (OWNER_TABLE + (OWNER_INDEX_MASK + 1) * 4) >>> LINE_SHIFT;
  const blocks = WINDOWS.map((size) => new WindowTally(size, lines));
  const large = WINDOWS.map((size) => new WindowTally(size, lines));
  const owners = WINDOWS.map((size) => new WindowTally(size, ownerLines));
  const tallies = { blocks, large, owners };
  const memory = loopMemory(first.buffer);
  const tables = buildRequestTables();
  if (sizeCap > 0) capRequestSizes(tables, sizeCap);
  const states = [new LoopState(), new LoopState()] as const;
  const ownerCopy = first.memory.u32.slice(OWNER_TABLE >>> 2, (OWNER_TABLE >>> 2) + OWNER_INDEX_MASK + 1);
  const allocators = [
    recorder(first, 0, states[0], tallies, first.arenaStart, ownerCopy),
    recorder(second, 1, states[1], tallies, first.arenaStart, ownerCopy),
  ];
  for (let done = 0; done < iterations; done += step) {
    for (const who of [0, 1] as const) runBatch(allocators[who]!, memory, tables, states[who], step, false);
  }
  const cache = first.stats().threadCache;
  second.detach();
  // Two tables of four columns rather than one of seven: each fits a terminal 80 columns wide.
  console.log(`bench-malloc-thread, ${row!.label}: two handles taking turns every ${step} iteration(s),`);
  console.log(`${iterations} iterations each${sizeCap > 0 ? `, sizes capped at ${sizeCap} bytes` : ''}`);
  const table = (title: string, cell: (tally: WindowTally, windows: number) => string): void => {
    console.log('');
    console.log(title);
    console.log('window (its)   blocks  of them large  owner table');
    WINDOWS.forEach((size, index) => {
      const windows = (2 * iterations) / size;
      const cells = [blocks[index]!, large[index]!, owners[index]!].map((tally) => cell(tally, windows));
      console.log(`${String(size).padStart(12)}  ${cells[0]!.padStart(7)}  ${cells[1]!.padStart(13)}  ${cells[2]!.padStart(11)}`);
    });
  };
  table('lines each handle wrote per window', (tally, windows) => (tally.written / windows).toFixed(1));
  table('of those, lines the other handle wrote too in the same window', (tally) => percent(tally.shared, tally.written));
  console.log(`(large: blocks over ${TC_MAX_REQUEST} bytes, which no thread cache holds: the backend`);
  console.log('hands them out under the heap lock)');
  if (cache !== null)
    console.log(
      `thread caches: ${cache.refills} refills, ${cache.flushes} flushes, ${cache.remoteFrees} remote frees, ${cache.ownerEvictions} owner evictions`,
    );
  first.detach();
}

function percent(part: number, whole: number): string {
  return whole === 0 ? '-' : `${((100 * part) / whole).toFixed(1)} %`;
}

const [specText = 'tlsf', iterationsText = '1000000', stepText = '1', capText = '0'] = process.argv.slice(2);
main(specText, Number(iterationsText), Math.max(1, Number(stepText)), Math.max(0, Math.trunc(Number(capText)) || 0)).catch((error: unknown) => {
  console.error(`line-sharing: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
});
