/**
 * Worker side of the QSBR tests: a read-mostly table in the heap whose readers take no lock.
 *
 * ```text
 *  table: BUCKETS words, each the address of the bucket's current entry (0 = none)
 *  entry (ENTRY_BYTES): +0 ENTRY_MAGIC | +4 bucket | +8 version | +12.. bytes derived from
 *                       (bucket, version)
 * ```
 * A writer replaces a bucket's entry with an atomic exchange and retires the old one with
 * `freeDelayed` (or `free`, to show what goes wrong without QSBR). Readers load an entry,
 * verify it twice with work in between, and pass a quiescent point after each read. With the
 * heap poisoning freed memory, a reader that still looks at a freed or reused entry sees it.
 */

import { isMainThread, parentPort, workerData } from 'node:worker_threads';

import { GlobalAllocator } from '@heaplab/core';

export const BUCKETS = 64;
export const ENTRY_BYTES = 256;
export const ENTRY_MAGIC = 0x45564c4c;

export interface QsbrWorkerInput {
  role: 'reader' | 'writer' | 'stall';
  buffer: SharedArrayBuffer;
  /** Address of the bucket table (writer and reader). */
  table: number;
  /**
   * Int32Array words: 0 = stop flag, 1 = "stalled reader is attached", 2 = "resume",
   * 3 = readers and writers attached so far (the run is timed from when all are)
   */
  control: SharedArrayBuffer;
  /** Writer: retire with `freeDelayed` (true) or `free` (false). */
  delayed: boolean;
  seed: number;
}

export interface QsbrWorkerResult {
  operations: number;
  /** Reader: reads that found a freed, poisoned or reused entry. */
  errors: number;
  firstError: string | null;
  peakHeldBytes: number;
}

/** The byte at `offset` of the payload of entry (bucket, version). */
export function payloadByte(bucket: number, version: number, offset: number): number {
  return (bucket * 7 + version * 13 + offset) & 0xff;
}

function writeEntry(u8: Uint8Array, u32: Uint32Array, address: number, bucket: number, version: number): void {
  u32[(address + 4) >>> 2] = bucket;
  u32[(address + 8) >>> 2] = version;
  for (let offset = 12; offset < ENTRY_BYTES; offset++) u8[address + offset] = payloadByte(bucket, version, offset);
  u32[address >>> 2] = ENTRY_MAGIC;
}

/** Null when the entry at `address` is a live, consistent entry of `bucket`. */
function entryProblem(u8: Uint8Array, u32: Uint32Array, address: number, bucket: number): string | null {
  if (u32[address >>> 2] !== ENTRY_MAGIC) return `entry ${address} lost its magic (freed or reused)`;
  if (u32[(address + 4) >>> 2] !== bucket) return `entry ${address} now belongs to bucket ${u32[(address + 4) >>> 2]}`;
  const version = u32[(address + 8) >>> 2]!;
  for (let offset = 12; offset < ENTRY_BYTES; offset++) {
    if (u8[address + offset] !== payloadByte(bucket, version, offset)) return `entry ${address} byte ${offset} changed under a reader`;
  }
  return null;
}

async function run(input: QsbrWorkerInput): Promise<QsbrWorkerResult> {
  const heap = await GlobalAllocator.attach(input.buffer);
  const { u8, u32 } = heap.memory;
  const control = new Int32Array(input.control);
  const table = input.table >>> 2;
  const result: QsbrWorkerResult = { operations: 0, errors: 0, firstError: null, peakHeldBytes: 0 };
  let random = input.seed >>> 0 || 1;
  const next = (): number => {
    random ^= random << 13;
    random ^= random >>> 17;
    random ^= random << 5;
    return random >>> 0;
  };
  try {
    if (input.role === 'stall') {
      // Passes one quiescent point, then holds everyone back until told to go.
      heap.quiescent();
      Atomics.store(control, 1, 1);
      Atomics.notify(control, 1);
      const deadline = Date.now() + 30_000;
      while (Atomics.load(control, 2) === 0 && Date.now() < deadline) Atomics.wait(control, 2, 0, 50);
      return result;
    }
    Atomics.add(control, 3, 1);
    Atomics.notify(control, 3);
    while (Atomics.load(control, 0) === 0) {
      const bucket = next() % BUCKETS;
      if (input.role === 'writer') {
        const fresh = heap.malloc(ENTRY_BYTES);
        if (fresh === 0) throw new Error('heap full');
        writeEntry(u8, u32, fresh, bucket, result.operations);
        const old = Atomics.exchange(u32, table + bucket, fresh);
        if (old !== 0) {
          if (input.delayed) heap.freeDelayed(old);
          else heap.free(old);
        }
        heap.quiescent();
      } else {
        const address = Atomics.load(u32, table + bucket);
        if (address !== 0) {
          const problem = entryProblem(u8, u32, address, bucket) ?? entryProblem(u8, u32, address, bucket);
          if (problem !== null) {
            result.errors++;
            result.firstError ??= problem;
          }
        }
        heap.quiescent();
      }
      result.operations++;
    }
    if (input.role === 'writer') {
      heap.processDelayed();
      result.peakHeldBytes = heap.stats().delayedFree.peakHeldBytes;
    }
    return result;
  } finally {
    heap.detach();
  }
}

if (!isMainThread) {
  run(workerData as QsbrWorkerInput).then(
    (result) => parentPort!.postMessage({ ok: true, result }),
    (error: unknown) => parentPort!.postMessage({ ok: false, message: error instanceof Error ? error.message : String(error) }),
  );
}
