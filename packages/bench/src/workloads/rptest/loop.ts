/**
 * The rptest loop (docs/workloads/rptest.md): rpmalloc's benchmark as mimalloc-bench runs it,
 * in rounds of `loops` loops that repeat until the run is over.
 *
 * Each thread keeps `allocCount` slots of live blocks. A loop takes the batches other threads
 * sent it, frees a number of its slots (a stride over them), frees the received blocks,
 * then refills a number of slots (another stride), freeing what a slot held first; every
 * `crossRate` loops it also allocates a batch of blocks and sends it to the next other
 * thread, which frees them. At the end of a round the thread frees all its slots. Every
 * malloc and free counts as one memory operation (a batch also counts its header and its
 * array), and that is what the thread counts.
 *
 * A batch is two heap blocks, as in the original: a header and an array of block addresses.
 *
 *   header (BATCH_HEADER_BYTES):  word 0 BATCH_NEXT      the next batch in the inbox, 0 = none
 *                                 word 1 BATCH_COUNT     blocks in the batch
 *                                 word 2 BATCH_BLOCKS    address of the array of their addresses
 *                                 word 3 BATCH_SENDER    index of the thread that made it
 *
 * The run's shared buffer (`ThreadLoop.runState`), as 32-bit words:
 *
 *   word  0               1                2                 3              4              5 ... 5 + THREADS - 1
 *        +---------------+----------------+-----------------+--------------+--------------+------------------------+
 *        | READY_THREADS | ACTIVE_THREADS | DRAINED_BATCHES | REMOTE_FREES | SENT_BATCHES | INBOXES                |
 *        | threads at    | threads not    | batches the     | blocks freed | batches sent | one per thread: the    |
 *        | the start     | yet past their | last thread     | from batches | by every     | first batch sent to    |
 *        | line          | loop           | found in inboxes| received     | thread       | it, 0 = empty          |
 *        +---------------+----------------+-----------------+--------------+--------------+------------------------+
 *
 * As in the original, threads start together (each waits, bounded, until all have arrived)
 * and stop sending batches once any thread has left its loop: a batch sent to a thread that
 * is not yet, or no longer, taking its inbox would only pile up.
 * A sender pushes a batch on the receiver's inbox by compare-and-exchange; the receiver takes
 * the whole list with one exchange. Taking all at once is why the original's tag bits against
 * the ABA problem are not needed: a push's exchange succeeds only when the head is still the
 * value it linked to, whatever happened in between.
 */

import type { AddressAllocator, LoopLimits, LoopMemory } from '../../run/address-allocator.js';
import type { ThreadOutcome, ThreadParams } from '../../run/thread-loop.js';
import { fillBytes } from '../glibc-thread/loop.js';
import { MODE_FIXED, type RptestParameters, type RptestTables, SIZE_TABLE_LENGTH } from './tables.js';

/** Word indexes of a batch header, and its size. */
export const BATCH_NEXT = 0;
export const BATCH_COUNT = 1;
export const BATCH_BLOCKS = 2;
export const BATCH_SENDER = 3;
const BATCH_HEADER_BYTES = 16;

/** Word indexes of the run's shared buffer (see the drawing above). */
export const READY_THREADS = 0;
export const ACTIVE_THREADS = 1;
export const DRAINED_BATCHES = 2;
export const REMOTE_FREES = 3;
export const SENT_BATCHES = 4;
export const INBOXES = 5;

/**
 * How long a thread waits at the start line for the others (workers start tens of
 * milliseconds apart, more under load) before it starts alone, and each wait's slice.
 */
const START_WAIT_MS = 10_000;
const START_WAIT_SLICE_MS = 5;

/** The original writes a byte into each page of a block past the first, and into its last byte. */
const PAGE_BYTES = 4096;
const TOUCH_BYTE = 1;
/**
 * The original's blocks come from `calloc` (zeroed) or, for one in three requests below a
 * page, from `memalign` then `memset(0xCD)`; here every block is a `malloc` and a fill with
 * the byte the original's block would hold.
 */
const CALLOC_FILL = 0;
const MEMALIGN_FILL = 0xcd;
const ALIGNMENT_KINDS = 3;
/** How a round picks its first size: `((thread + 1) * ((round + 1) * SIZE_START_FACTOR)) % table length`. */
const SIZE_START_FACTOR = 37;

/** A fresh shared buffer for a run of `threads` threads: every thread active, every inbox empty. */
export function rptestRunState(threads: number): SharedArrayBuffer {
  const buffer = new SharedArrayBuffer((INBOXES + threads) * 4);
  new Int32Array(buffer)[ACTIVE_THREADS] = threads;
  return buffer;
}

/** One thread of a run: its slots, cursors and counters, and the views it works through. */
class RptestThread {
  readonly u8: Uint8Array;
  readonly u32: Uint32Array;
  readonly shared: Uint32Array;
  readonly counters: Int32Array;
  /** Heap address of the slots (an array of `allocCount` block addresses), and its first word. */
  readonly slots: number;
  readonly slotWords: number;
  sizeIndex = 0;
  allocIndex = 0;
  freeIndex = 0;
  crossIndex = 0;
  operations = 0;
  remoteFrees = 0;
  sentBatches = 0;
  receivedBatches = 0;
  highWater = 0;

  constructor(
    readonly allocator: AddressAllocator,
    readonly memory: LoopMemory,
    readonly tables: RptestTables,
    readonly parameters: RptestParameters,
    runState: SharedArrayBuffer,
    readonly thread: ThreadParams,
    readonly verify: boolean,
  ) {
    this.u8 = memory.u8;
    this.u32 = memory.u32;
    this.shared = new Uint32Array(runState);
    this.counters = new Int32Array(runState);
    this.slots = this.malloc(parameters.allocCount * 4);
    this.slotWords = this.slots >>> 2;
    this.u32.fill(0, this.slotWords, this.slotWords + parameters.allocCount);
  }

  malloc(size: number): number {
    const address = this.allocator.malloc(size);
    if (address === 0) throw new Error(`malloc(${size}) returned 0 after ${this.operations} operations: the heap is full`);
    return address;
  }

  /** The next block of the size table, written as the original writes it. */
  allocBlock(alignmentKind: number): number {
    const size = this.parameters.mode === MODE_FIXED ? this.parameters.minSize : this.tables.sizes[(this.sizeIndex + 2) % SIZE_TABLE_LENGTH]!;
    const address = this.malloc(size);
    fillBytes(this.memory, address, size, size < PAGE_BYTES && alignmentKind % ALIGNMENT_KINDS !== 0 ? MEMALIGN_FILL : CALLOC_FILL);
    this.u32[address >>> 2] = size;
    const pages = Math.floor((size - 1) / PAGE_BYTES);
    for (let page = 1; page < pages; page++) this.u8[address + page * PAGE_BYTES] = TOUCH_BYTE;
    this.u8[address + size - 1] = TOUCH_BYTE;
    if (address + size > this.highWater) this.highWater = address + size;
    this.sizeIndex = (this.sizeIndex + 1) % SIZE_TABLE_LENGTH;
    return address;
  }

  freeBlock(address: number): void {
    if (this.verify) verifyBlock(this.u8, this.u32, address, this.parameters);
    this.allocator.free(address);
  }

  /** One loop of round `round`. */
  runLoop(round: number, loop: number, crossRate: number): void {
    const { u32, tables, parameters } = this;
    const { allocCount } = parameters;
    const received = Atomics.exchange(this.shared, INBOXES + this.thread.threadIndex, 0);
    const frees = tables.freeOps[(round + loop) % tables.freeOps.length]!;
    const allocs = tables.allocOps[(round + loop) % tables.allocOps.length]!;
    for (let i = 0; i < frees; i++) {
      const slot = this.slotWords + this.freeIndex;
      const address = u32[slot]!;
      if (address !== 0) {
        this.freeBlock(address);
        this.operations++;
        u32[slot] = 0;
      }
      this.freeIndex = (this.freeIndex + tables.freeScatter) % allocCount;
    }
    this.operations += this.freeBatches(received);
    for (let i = 0; i < allocs; i++) {
      const slot = this.slotWords + this.allocIndex;
      const address = u32[slot]!;
      if (address !== 0) {
        this.freeBlock(address);
        this.operations++;
      }
      u32[slot] = this.allocBlock(this.sizeIndex + i);
      this.operations++;
      this.allocIndex = (this.allocIndex + tables.allocScatter) % allocCount;
    }
    if (crossRate !== 0 && loop % crossRate === 0 && Atomics.load(this.counters, ACTIVE_THREADS) === this.thread.threads) this.sendBatch(allocs);
  }

  /** Allocates a batch of `count` blocks and pushes it on the next other thread's inbox. */
  sendBatch(count: number): void {
    const { u32, thread } = this;
    const header = this.malloc(BATCH_HEADER_BYTES);
    const blocks = this.malloc(Math.max(1, count) * 4);
    this.operations += 2;
    const headerWords = header >>> 2;
    const blockWords = blocks >>> 2;
    for (let i = 0; i < count; i++) {
      u32[blockWords + i] = this.allocBlock(this.sizeIndex + i);
      this.operations++;
    }
    u32[headerWords + BATCH_COUNT] = count;
    u32[headerWords + BATCH_BLOCKS] = blocks;
    u32[headerWords + BATCH_SENDER] = thread.threadIndex;
    this.crossIndex = (this.crossIndex + 1) % thread.threads;
    if (this.crossIndex === thread.threadIndex) this.crossIndex = (this.crossIndex + 1) % thread.threads;
    const inbox = INBOXES + this.crossIndex;
    let head: number;
    do {
      head = Atomics.load(this.shared, inbox);
      u32[headerWords + BATCH_NEXT] = head;
    } while (Atomics.compareExchange(this.shared, inbox, head, header) !== head);
    this.sentBatches++;
  }

  /** Frees every batch of the list at `first` (blocks, array, header); returns the operations. */
  freeBatches(first: number): number {
    const u32 = this.u32;
    let operations = 0;
    for (let header = first; header !== 0; ) {
      const headerWords = header >>> 2;
      const count = u32[headerWords + BATCH_COUNT]!;
      const blocks = u32[headerWords + BATCH_BLOCKS]!;
      for (let i = 0, word = blocks >>> 2; i < count; i++) this.freeBlock(u32[word + i]!);
      const next = u32[headerWords + BATCH_NEXT]!;
      this.allocator.free(blocks);
      this.allocator.free(header);
      operations += count + 2;
      this.remoteFrees += count;
      this.receivedBatches++;
      header = next;
    }
    return operations;
  }

  /** Frees every slot's block; returns the operations. */
  freeSlots(): number {
    const { u32, slotWords } = this;
    let operations = 0;
    for (let slot = slotWords, end = slotWords + this.parameters.allocCount; slot < end; slot++) {
      const address = u32[slot]!;
      if (address === 0) continue;
      this.freeBlock(address);
      u32[slot] = 0;
      operations++;
    }
    return operations;
  }
}

/**
 * Runs one thread: rounds until a limit, then (untimed) frees its slots and what was sent to
 * it; the last thread to finish frees the batches left in any inbox.
 * @throws Error when `malloc` returns 0, or in verify mode when a block lost its bytes
 */
export function runRptestLoop(
  allocator: AddressAllocator,
  memory: LoopMemory,
  tables: RptestTables,
  parameters: RptestParameters,
  limits: LoopLimits,
  thread: ThreadParams,
): ThreadOutcome {
  if (thread.runState === null) throw new Error('the rptest loop needs its run state (the inboxes)');
  const { stop, deadline, maxIterations } = limits;
  const state = new RptestThread(allocator, memory, tables, parameters, thread.runState, thread, thread.verify);
  const counters = state.counters;
  // The original sends nothing with one thread.
  const crossRate = thread.threads === 1 ? 0 : parameters.crossRate;
  waitForAll(counters, thread.threads, limits);
  const started = performance.now();
  let seconds = 0;
  let failed = true;
  try {
    rounds: for (let round = 0; ; round++) {
      state.sizeIndex = ((thread.threadIndex + 1) * ((round + 1) * SIZE_START_FACTOR)) % SIZE_TABLE_LENGTH;
      for (let loop = 0; loop < parameters.loops; loop++) {
        if (state.operations >= maxIterations || Atomics.load(stop, 0) !== 0 || performance.now() >= deadline) break rounds;
        state.runLoop(round, loop, crossRate);
      }
      state.operations += state.freeSlots();
    }
    seconds = (performance.now() - started) / 1000;
    if (thread.leaveLive !== true) {
      state.freeSlots();
      state.freeBatches(Atomics.exchange(state.shared, INBOXES + thread.threadIndex, 0));
      allocator.free(state.slots);
    }
    failed = false;
  } finally {
    Atomics.add(counters, REMOTE_FREES, state.remoteFrees);
    Atomics.add(counters, SENT_BATCHES, state.sentBatches);
    // This thread sends nothing after this; the thread that brings the count to 0 is the last
    // that could send, so it frees what is left in every inbox. No thread waits for another.
    if (Atomics.sub(counters, ACTIVE_THREADS, 1) === 1 && !failed && thread.leaveLive !== true) drainInboxes(state, counters);
  }
  return { iterations: state.operations, seconds, highWater: state.highWater };
}

/**
 * Arrives at the start line and waits until every thread of the run has, or until the stop
 * flag, the deadline or `START_WAIT_MS` (a thread that never comes must not hold the others).
 */
function waitForAll(counters: Int32Array, threads: number, limits: LoopLimits): void {
  if (Atomics.add(counters, READY_THREADS, 1) + 1 >= threads) {
    Atomics.notify(counters, READY_THREADS);
    return;
  }
  const giveUp = Math.min(limits.deadline, performance.now() + START_WAIT_MS);
  for (;;) {
    const arrived = Atomics.load(counters, READY_THREADS);
    if (arrived >= threads || Atomics.load(limits.stop, 0) !== 0 || performance.now() >= giveUp) return;
    Atomics.wait(counters, READY_THREADS, arrived, START_WAIT_SLICE_MS);
  }
}

/** The last thread out: frees the batches still in any inbox (untimed, uncounted). */
function drainInboxes(state: RptestThread, counters: Int32Array): void {
  const before = state.receivedBatches;
  for (let inbox = 0; inbox < state.thread.threads; inbox++) state.freeBatches(Atomics.exchange(state.shared, INBOXES + inbox, 0));
  Atomics.add(counters, DRAINED_BATCHES, state.receivedBatches - before);
}

/**
 * Checks a block before it is freed: its first word holds its size, its last byte and one
 * byte per page past the first hold 1, and every other byte one fill (0 or 0xCD).
 * @throws Error naming the block and the first wrong byte
 */
export function verifyBlock(u8: Uint8Array, u32: Uint32Array, address: number, parameters: RptestParameters): void {
  const size = u32[address >>> 2]!;
  const fail = (what: string): never => {
    throw new Error(`verify: the rptest block at 0x${address.toString(16)} (${size} bytes by its first word) ${what}`);
  };
  if (size < parameters.minSize || size > Math.max(parameters.minSize, parameters.maxSize))
    fail(`has a size outside [${parameters.minSize}, ${parameters.maxSize}]`);
  if (u8[address + size - 1] !== TOUCH_BYTE) fail(`has last byte ${u8[address + size - 1]}, expected ${TOUCH_BYTE}`);
  const fill = u8[address + 4]!;
  if (size > 5 && fill !== CALLOC_FILL && fill !== MEMALIGN_FILL) fail(`has byte 4 = ${fill}, neither fill`);
  const pages = Math.floor((size - 1) / PAGE_BYTES);
  for (let offset = 4; offset < size - 1; offset++) {
    const touched = offset % PAGE_BYTES === 0 && offset / PAGE_BYTES < pages;
    const expected = touched ? TOUCH_BYTE : fill;
    if (u8[address + offset] !== expected) fail(`has byte ${offset} = ${u8[address + offset]}, expected ${expected}`);
  }
}
