/**
 * The single-thread ArceOS allocator tests (docs/workloads/arceos.md), each over a heaplab
 * heap as the original runs over the allocator under test: the test's own vectors and maps
 * live in that heap too. Each test draws from libax's generator seeded 2333 (malloc-large
 * from glibc's `rand()` seeded 42, as its C original), asserts what the original asserts,
 * takes ArceOS's memory check where the original calls `memory_chk`, and frees everything.
 *
 * A test's time covers the original's work, its own assertions included; the memory check
 * and the checks heaplab adds (contents replayed from the generator) run off the clock.
 */

import type { InspectableHeap, LoopMemory } from '../../run/address-allocator.js';
import { GlibcRandom } from '../glibc-thread/glibc-rand.js';
import { HeapBTree } from './heap-btree.js';
import { allocateOrThrow, HeapVec } from './heap-vec.js';
import { ARCEOS_SEED, LibaxRandom } from './libax-random.js';

/** What a test needs of the heap: the C face, the ArceOS face for aligned blocks, and its figures. */
export type SuiteHeap = InspectableHeap;

/**
 * ArceOS's `memory_chk` in heaplab's terms. ArceOS's allocators count as "used" the bytes
 * asked for, and as occupied (`total - available`) what they took for them; the extra
 * memory rate is the share of the occupied bytes that nobody asked for. A heaplab backend's
 * `usedBytes` is what it took (headers and padding in), so the requested bytes come from the
 * test, which knows what it asked.
 */
export interface MemoryCheck {
  /** Bytes the test's live blocks asked for (ArceOS's "used"). */
  requestedBytes: number;
  /** The backend's `usedBytes` (ArceOS's "occupied"). */
  usedBytes: number;
  /** The backend's `availableBytes`. */
  availableBytes: number;
  /** `(usedBytes - requestedBytes) / usedBytes`, as a fraction. */
  extraRate: number;
}

/** What a test reports besides its time. */
export interface TestFindings {
  /** The test's own checks, all passed (a failed check throws). */
  checks: number;
  /** The memory check, taken where the original takes its first. */
  memory: MemoryCheck | null;
  /** vec_2: the seconds of its frees in shuffled order, part of the test's time. */
  freeSeconds?: number;
}

/** A test's clock: stopped while heaplab's own checks run. */
export class TestClock {
  private readonly started = performance.now();
  private excludedMs = 0;

  /** Runs `work` off the clock. */
  offClock<T>(work: () => T): T {
    const paused = performance.now();
    try {
      return work();
    } finally {
      this.excludedMs += performance.now() - paused;
    }
  }

  /** Seconds on the clock so far. */
  seconds(): number {
    return (performance.now() - this.started - this.excludedMs) / 1000;
  }
}

/**
 * One single-thread test: its work for `count` (its main loop's length). With `leaveLive`
 * (a heap map's run, see `ThreadParams.leaveLive`) it skips its final drop: what it still
 * holds when its work is done stays live. Frees that are the test's own work (vec_2's
 * shuffled frees, vec_3's holes) still happen.
 */
export type SingleThreadTest = (heap: SuiteHeap, memory: LoopMemory, count: number, clock: TestClock, leaveLive?: boolean) => TestFindings;

/** The memory check with `requestedBytes` live. */
export function memoryCheck(heap: SuiteHeap, requestedBytes: number): MemoryCheck {
  const { usedBytes, availableBytes } = heap.stats();
  return { requestedBytes, usedBytes, availableBytes, extraRate: usedBytes === 0 ? 0 : (usedBytes - requestedBytes) / usedBytes };
}

/** A `usize` element (all values here fit 32 bits): the low word, the high word zero. */
function writeUsize(u32: Uint32Array, address: number, value: number): void {
  u32[address >>> 2] = value;
  u32[(address >>> 2) + 1] = 0;
}

function readUsize(u32: Uint32Array, address: number): number {
  return u32[address >>> 2]!;
}

/** A `Vec<usize>` element of a `Vec<Vec<usize>>`: pointer, capacity and length words. */
const INNER_VEC_BYTES = 24;
const INNER_POINTER_WORD = 0;
const INNER_CAPACITY_WORD = 2;
const INNER_LENGTH_WORD = 4;
const USIZE_BYTES = 8;

function writeInnerVec(u32: Uint32Array, slot: number, pointer: number, capacity: number): void {
  const word = slot >>> 2;
  u32.fill(0, word, word + INNER_VEC_BYTES / 4);
  u32[word + INNER_POINTER_WORD] = pointer;
  u32[word + INNER_CAPACITY_WORD] = capacity;
  u32[word + INNER_LENGTH_WORD] = capacity;
}

/** `rand_usize()` into the u64 at `address`: the first draw is the high half. */
function fillRandomUsizes(random: LibaxRandom, u32: Uint32Array, address: number, count: number): void {
  let word = address >>> 2;
  for (let index = 0; index < count; index++, word += 2) {
    u32[word + 1] = random.u32();
    u32[word] = random.u32();
  }
}

/**
 * Replays `count` draws of `random` against the u64s at `address`.
 * @throws Error at the first that differs
 */
function expectRandomUsizes(random: LibaxRandom, u32: Uint32Array, address: number, count: number, what: string): void {
  let word = address >>> 2;
  for (let index = 0; index < count; index++, word += 2) {
    const high = random.u32();
    const low = random.u32();
    if (u32[word + 1] !== high || u32[word] !== low) throw new Error(`${what}: element ${index} lost its value`);
  }
}

// --- align_test --------------------------------------------------------------------------

/**
 * `align_test`: `steps` steps; two in three (and every step while nothing is live) allocate
 * `2^(r & 15) * (1 + r' / (2^32 - 1))` bytes aligned to `2^(r'' & 7)`, the rest free a random
 * live block with its layout. The address, size, alignment and live-order vectors are heap
 * `Vec<usize>`s, as in the original.
 */
export const alignTest: SingleThreadTest = (heap, memory, steps, clock, leaveLive = false) => {
  const random = new LibaxRandom(ARCEOS_SEED);
  const u32 = memory.u32;
  const addresses = new HeapVec(heap, USIZE_BYTES);
  const sizes = new HeapVec(heap, USIZE_BYTES);
  const aligns = new HeapVec(heap, USIZE_BYTES);
  const live = new HeapVec(heap, USIZE_BYTES);
  let liveBytes = 0;
  for (let step = 0; step < steps; step++) {
    if (random.u32() % 3 !== 0 || live.length === 0) {
      const exponent = random.u32() & 15;
      const size = Math.floor(2 ** exponent * (1 + random.u32() / 0xffff_ffff));
      const align = 1 << (random.u32() & 7);
      const address = heap.alignedAlloc(align, size);
      if (address === 0) throw new Error(`alignedAlloc(${align}, ${size}) returned 0: the heap has no room`);
      if (address % align !== 0) throw new Error(`alignedAlloc(${align}, ${size}) returned ${address}, which is not aligned to ${align}`);
      const block = addresses.length;
      writeUsize(u32, addresses.pushSlot(), address);
      writeUsize(u32, sizes.pushSlot(), size);
      writeUsize(u32, aligns.pushSlot(), align);
      writeUsize(u32, live.pushSlot(), block);
      liveBytes += size;
    } else {
      const index = random.usizeModulo(live.length);
      const block = readUsize(u32, live.at(index));
      const size = readUsize(u32, sizes.at(block));
      heap.dealloc(readUsize(u32, addresses.at(block)), { size, align: readUsize(u32, aligns.at(block)) });
      liveBytes -= size;
      live.length--;
      writeUsize(u32, live.at(index), readUsize(u32, live.at(live.length)));
    }
  }
  const vectorBytes = addresses.bytes + sizes.bytes + aligns.bytes + live.bytes;
  const check = clock.offClock(() => memoryCheck(heap, liveBytes + vectorBytes));
  if (leaveLive) return { checks: 1, memory: check };
  for (let index = 0; index < live.length; index++) {
    const block = readUsize(u32, live.at(index));
    heap.dealloc(readUsize(u32, addresses.at(block)), { size: readUsize(u32, sizes.at(block)), align: readUsize(u32, aligns.at(block)) });
  }
  // Rust drops locals in the reverse order of their declarations.
  live.drop();
  aligns.drop();
  sizes.drop();
  addresses.drop();
  return { checks: 1, memory: check };
};

// --- test_vec ----------------------------------------------------------------------------

/** `test_vec`: `count` `rand_u32()` pushed into a `Vec<u32>` grown by `realloc`; heaplab then replays the values. */
export const vecTest: SingleThreadTest = (heap, memory, count, clock, leaveLive = false) => {
  const random = new LibaxRandom(ARCEOS_SEED);
  const u32 = memory.u32;
  const vec = new HeapVec(heap, 4);
  for (let index = 0; index < count; index++) u32[vec.pushSlot() >>> 2] = random.u32();
  const check = clock.offClock(() => memoryCheck(heap, vec.bytes));
  clock.offClock(() => {
    const replay = new LibaxRandom(ARCEOS_SEED);
    const first = vec.address >>> 2;
    for (let index = 0; index < count; index++) {
      if (u32[first + index] !== replay.u32()) throw new Error(`element ${index} of the vector lost its value across the reallocations`);
    }
  });
  if (!leaveLive) vec.drop();
  return { checks: 1, memory: check };
};

// --- test_vec_2 --------------------------------------------------------------------------

/**
 * Rust's stable sort of the 2023 toolchains the ArceOS harness ran on (a merge sort) takes a
 * buffer of half the slice and a stack of 16 runs (16 bytes each) from the allocator for
 * slices over 20 elements, and frees them (runs first) when done.
 */
const SORT_INSERTION_MAX = 20;
const SORT_RUNS_BYTES = 16 * 16;

/**
 * Sorts the `count` u64s at `block` in place, with the sort's scratch allocations.
 * @throws Error when the scratch does not fit, or the block is not sorted afterwards (the
 *   original's assertion)
 */
function sortUsizes(heap: SuiteHeap, u32: Uint32Array, block: number, count: number): void {
  let buffer = 0;
  let runs = 0;
  if (count > SORT_INSERTION_MAX) {
    buffer = allocateOrThrow(heap, (count >>> 1) * USIZE_BYTES);
    runs = allocateOrThrow(heap, SORT_RUNS_BYTES);
  }
  new BigUint64Array(heap.buffer, block, count).sort();
  if (count > SORT_INSERTION_MAX) {
    heap.free(runs);
    heap.free(buffer);
  }
  for (let word = block >>> 2, end = word + 2 * (count - 1); word < end; word += 2) {
    const high = u32[word + 1]!;
    const nextHigh = u32[word + 3]!;
    if (high > nextHigh || (high === nextHigh && u32[word]! > u32[word + 2]!)) throw new Error(`the block at ${block} is not sorted`);
  }
}

/**
 * `test_vec_2(count, capacity)`: `count` `Vec<usize>` of `capacity` elements (blocks of
 * `8 * capacity` bytes), each filled with `rand_usize()`, sorted and checked, kept in a
 * `Vec<Vec<usize>>`; an index vector is shuffled (Fisher-Yates from the front, as the
 * original) and the blocks are freed in that order.
 */
export function vec2Test(capacity: number): SingleThreadTest {
  return (heap, memory, count, clock, leaveLive = false) => {
    const random = new LibaxRandom(ARCEOS_SEED);
    const u32 = memory.u32;
    const blockBytes = capacity * USIZE_BYTES;
    const blocks = new HeapVec(heap, INNER_VEC_BYTES);
    for (let index = 0; index < count; index++) {
      const block = allocateOrThrow(heap, blockBytes);
      fillRandomUsizes(random, u32, block, capacity);
      sortUsizes(heap, u32, block, capacity);
      writeInnerVec(u32, blocks.pushSlot(), block, capacity);
    }
    const order = HeapVec.withCapacity(heap, USIZE_BYTES, count);
    for (let index = 0; index < count; index++) writeUsize(u32, order.pushSlot(), index);
    const check = clock.offClock(() => memoryCheck(heap, count * blockBytes + blocks.bytes + order.bytes));
    for (let index = 1; index < count; index++) {
      const other = random.usizeModulo(index + 1);
      const swapped = readUsize(u32, order.at(index));
      writeUsize(u32, order.at(index), readUsize(u32, order.at(other)));
      writeUsize(u32, order.at(other), swapped);
    }
    const freeStarted = performance.now();
    for (let index = 0; index < count; index++) {
      const slot = blocks.at(readUsize(u32, order.at(index)));
      heap.free(u32[(slot >>> 2) + INNER_POINTER_WORD]!);
      writeInnerVec(u32, slot, 0, 0);
    }
    const freeSeconds = (performance.now() - freeStarted) / 1000;
    if (!leaveLive) {
      order.drop();
      blocks.drop();
    }
    return { checks: 1, memory: check, freeSeconds };
  };
}

// --- test_vec_3 --------------------------------------------------------------------------

/** `test_vec_3`'s two capacities: blocks of 256 and 512 bytes. */
const VEC3_SMALL = 32;
const VEC3_LARGE = 64;

/**
 * `test_vec_3(n, 32, 64)`: `4n` filled `Vec<usize>`, alternating 32 and 64 elements for the
 * first `2n` and 32 after; every odd one is freed, leaving holes of both sizes; then `n` of
 * 64 elements are added. heaplab replays the generator over the survivors before the drop.
 */
export const vec3Test: SingleThreadTest = (heap, memory, n, clock, leaveLive = false) => {
  const random = new LibaxRandom(ARCEOS_SEED);
  const u32 = memory.u32;
  const blocks = new HeapVec(heap, INNER_VEC_BYTES);
  const capacityOf = (index: number): number => (index >= 2 * n || index % 2 === 0 ? VEC3_SMALL : VEC3_LARGE);
  let liveBytes = 0;
  const push = (capacity: number): void => {
    const block = allocateOrThrow(heap, capacity * USIZE_BYTES);
    writeInnerVec(u32, blocks.pushSlot(), block, capacity);
    fillRandomUsizes(random, u32, block, capacity);
    liveBytes += capacity * USIZE_BYTES;
  };
  for (let index = 0; index < 4 * n; index++) push(capacityOf(index));
  const check = clock.offClock(() => memoryCheck(heap, liveBytes + blocks.bytes));
  for (let index = 1; index < 4 * n; index += 2) {
    const slot = blocks.at(index);
    heap.free(u32[(slot >>> 2) + INNER_POINTER_WORD]!);
    writeInnerVec(u32, slot, 0, 0);
  }
  for (let index = 0; index < n; index++) push(VEC3_LARGE);
  clock.offClock(() => {
    const replay = new LibaxRandom(ARCEOS_SEED);
    for (let index = 0; index < blocks.length; index++) {
      const capacity = index < 4 * n ? capacityOf(index) : VEC3_LARGE;
      if (index < 4 * n && index % 2 === 1) {
        for (let draw = 0; draw < 2 * capacity; draw++) replay.u32();
        continue;
      }
      expectRandomUsizes(replay, u32, u32[(blocks.at(index) >>> 2) + INNER_POINTER_WORD]!, capacity, `block ${index}`);
    }
  });
  if (leaveLive) return { checks: 1, memory: check };
  // Dropping the outer vector drops its elements in order, then frees its buffer.
  for (let index = 0; index < blocks.length; index++) {
    const block = u32[(blocks.at(index) >>> 2) + INNER_POINTER_WORD]!;
    if (block !== 0) heap.free(block);
  }
  blocks.drop();
  return { checks: 1, memory: check };
};

// --- test_btree_map ----------------------------------------------------------------------

/**
 * `test_btree_map(count)`: `count` steps on a `BTreeMap<String, usize>`; one in five (while
 * the map is not empty) pops the first pair, the others insert `("key_{v}", v)` for a random
 * u64 `v`. Then every pair is checked, in order, and the map dropped.
 */
export const btreeTest: SingleThreadTest = (heap, memory, count, clock, leaveLive = false) => {
  const random = new LibaxRandom(ARCEOS_SEED);
  const tree = new HeapBTree(heap, memory);
  for (let step = 0; step < count; step++) {
    if (random.usizeModulo(5) === 0 && tree.length > 0) {
      tree.popFirst();
    } else {
      const high = random.u32();
      tree.insertFormatted(high, random.u32());
    }
  }
  tree.verify();
  const check = clock.offClock(() => memoryCheck(heap, tree.requestedBytes));
  if (!leaveLive) tree.drop();
  return { checks: 1, memory: check };
};

// --- malloc_large_test -------------------------------------------------------------------

/** malloc-large as ArceOS's C port of it runs: 10 buffers of 2 to 5 MiB, `rand()` seeded 42. */
export const LARGE_BUFFERS = 10;
export const LARGE_MIN_BYTES = 2 << 20;
export const LARGE_MAX_BYTES = 5 << 20;
const LARGE_SEED = 42;

/**
 * `malloc_large_test(iterations)`: ten 2 MiB buffers, then each iteration frees a random one
 * and allocates one of a random size from 2 to 5 MiB in its place. The original does not
 * touch the buffers; heaplab marks each one's first and last bytes and checks the marks
 * before the free.
 */
export const mallocLargeTest: SingleThreadTest = (heap, memory, iterations, clock, leaveLive = false) => {
  const random = new GlibcRandom(LARGE_SEED);
  const { u8, u32 } = memory;
  const buffers = new Float64Array(LARGE_BUFFERS);
  const sizes = new Float64Array(LARGE_BUFFERS);
  const tags = new Uint32Array(LARGE_BUFFERS);
  const place = (index: number, size: number, tag: number): void => {
    const buffer = allocateOrThrow(heap, size);
    u32[buffer >>> 2] = tag;
    u8[buffer + size - 1] = tag & 0xff;
    buffers[index] = buffer;
    sizes[index] = size;
    tags[index] = tag;
  };
  const release = (index: number): void => {
    const buffer = buffers[index]!;
    if (u32[buffer >>> 2] !== tags[index] || u8[buffer + sizes[index]! - 1] !== (tags[index]! & 0xff)) {
      throw new Error(`large buffer ${index} (${sizes[index]} bytes) lost its marks`);
    }
    heap.free(buffer);
  };
  for (let index = 0; index < LARGE_BUFFERS; index++) place(index, LARGE_MIN_BYTES, index);
  for (let iteration = 0; iteration < iterations; iteration++) {
    const index = random.next() % LARGE_BUFFERS;
    const size = (random.next() % (LARGE_MAX_BYTES - LARGE_MIN_BYTES + 1)) + LARGE_MIN_BYTES;
    release(index);
    place(index, size, LARGE_BUFFERS + iteration);
  }
  const check = clock.offClock(() =>
    memoryCheck(
      heap,
      sizes.reduce((sum, size) => sum + size, 0),
    ),
  );
  if (!leaveLive) for (let index = 0; index < LARGE_BUFFERS; index++) release(index);
  return { checks: 1, memory: check };
};
