import { describe, expect, it } from 'vitest';

import { checkTrace, formatTrace, GlobalAllocator, MiB, parseTrace, Random, spawnWorker, TraceRecorder, traceFigures, type Trace } from '../src/index.js';
import { expectAllocError } from '@heaplab/test-kit';
import { HEADER_NEXT } from '../src/trace/trace-recorder.js';
import { SLOT_COUNT, type TraceWorkerInput, type TraceWorkerResult } from './workers/trace-worker.js';

const workerEntry = new URL('./workers/trace-worker.ts', import.meta.url);

function startWorker(input: TraceWorkerInput): Promise<TraceWorkerResult> {
  const worker = spawnWorker(workerEntry, input as unknown as Record<string, unknown>);
  return new Promise((resolve, reject) => {
    worker.once('message', (reply: { ok: boolean; result?: TraceWorkerResult; message?: string }) =>
      reply.ok ? resolve(reply.result!) : reject(new Error(reply.message)),
    );
    worker.once('error', reject);
  });
}

/** Replays `trace` on `heap` in its order, by hand; returns the peak of live requested bytes seen. */
function replay(heap: GlobalAllocator, trace: Trace): number {
  const addresses = new Array<number>(trace.ids).fill(0);
  const sizes = new Array<number>(trace.ids).fill(0);
  let live = 0;
  let peak = 0;
  for (const request of trace.requests) {
    if (request.op === 'a') {
      const address = request.zero ? heap.calloc(1, request.bytes) : heap.alignedAlloc(Math.max(request.align, 8), request.bytes);
      expect(address).not.toBe(0);
      if (request.align !== 0) expect(address % request.align).toBe(0);
      addresses[request.id] = address;
      sizes[request.id] = request.bytes;
      live += request.bytes;
    } else if (request.op === 'r') {
      const moved = heap.realloc(addresses[request.id]!, request.bytes);
      expect(moved).not.toBe(0);
      addresses[request.id] = moved;
      live += request.bytes - sizes[request.id]!;
      sizes[request.id] = request.bytes;
    } else {
      heap.free(addresses[request.id]!);
      live -= sizes[request.id]!;
    }
    peak = Math.max(peak, live);
  }
  return peak;
}

describe('TraceRecorder', () => {
  it('records a one-thread program whose trace, replayed on another heap, has the same peak payload', () => {
    const recorder = new TraceRecorder({ capacity: 10_000 });
    const heap = GlobalAllocator.create({ backend: 'basic', heapBytes: 16 * MiB, trace: recorder });
    const random = new Random(7);
    const live: number[] = [];
    let payload = 0;
    let peak = 0;
    const sizeOf = new Map<number, number>();
    /** Blocks from alloc(layout) with align 64: dealloc must name that alignment. */
    const aligned = new Set<number>();
    const track = (address: number, bytes: number): void => {
      sizeOf.set(address, bytes);
      live.push(address);
      payload += bytes;
      peak = Math.max(peak, payload);
    };
    let calls = 0;
    for (let step = 0; step < 2000; step++) {
      const roll = random.int(0, 10);
      if (roll < 4 || live.length === 0) {
        const bytes = random.size(2000);
        track(heap.malloc(bytes), bytes);
      } else if (roll === 4) {
        track(heap.calloc(3, 24), 72);
      } else if (roll === 5) {
        const address = heap.alloc({ size: 100, align: 64 });
        aligned.add(address);
        track(address, 100);
      } else if (roll === 6) {
        const at = random.int(0, live.length);
        const bytes = random.size(3000);
        const moved = heap.realloc(live[at]!, bytes);
        payload += bytes - sizeOf.get(live[at]!)!;
        peak = Math.max(peak, payload);
        sizeOf.delete(live[at]!);
        aligned.delete(live[at]!);
        sizeOf.set(moved, bytes);
        live[at] = moved;
      } else {
        const [address] = live.splice(random.int(0, live.length), 1);
        const bytes = sizeOf.get(address!)!;
        payload -= bytes;
        sizeOf.delete(address!);
        // ArceOS's pair: a block from alloc(layout) goes back through dealloc with that layout.
        if (aligned.has(address!)) heap.dealloc(address!, { size: bytes, align: 64 });
        else heap.free(address!);
        aligned.delete(address!);
      }
      calls++;
    }
    heap.free(0);
    const trace = recorder.trace({ description: 'one thread' });
    heap.detach();
    expect(trace.requests.length).toBe(calls);
    expect(trace.threads).toBe(1);
    expect(trace.description).toBe('one thread');
    expect(trace.requests.some((request) => request.op === 'a' && request.zero && request.bytes === 72)).toBe(true);
    expect(trace.requests.some((request) => request.op === 'a' && request.align === 64)).toBe(true);
    expect(trace.requests.filter((request) => request.op === 'a' && request.align !== 0).every((request) => request.op === 'a' && request.align === 64)).toBe(
      true,
    );
    const figures = traceFigures(trace);
    expect(figures.peakPayloadBytes).toBe(peak);
    const second = GlobalAllocator.create({ backend: 'basic:strategy=best-fit', heapBytes: 16 * MiB });
    try {
      expect(replay(second, trace)).toBe(peak);
    } finally {
      second.detach();
    }
  });

  it('records nothing for failed calls, and memalign, realloc(0, n) and freeDelayed once each', () => {
    const recorder = new TraceRecorder({ capacity: 100 });
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, trace: recorder });
    try {
      expect(heap.malloc(64 * MiB)).toBe(0);
      const a = heap.memalign(256, 40);
      expect(() => heap.free(a + 8)).toThrow();
      const b = heap.realloc(0, 30);
      expect(heap.realloc(b, 64 * MiB)).toBe(0);
      heap.freeDelayed(b);
      heap.free(a);
      const trace = recorder.trace();
      expect(trace.requests).toEqual([
        { op: 'a', id: 0, bytes: 40, thread: 0, align: 256, zero: false },
        { op: 'a', id: 1, bytes: 30, thread: 0, align: 0, zero: false },
        { op: 'f', id: 1, thread: 0 },
        { op: 'f', id: 0, thread: 0 },
      ]);
    } finally {
      heap.detach();
    }
  });

  it("makes one valid trace of two workers that free each other's blocks", async () => {
    const recorder = new TraceRecorder({ capacity: 100_000 });
    const heap = GlobalAllocator.create({ heapBytes: 32 * MiB, trace: recorder });
    try {
      const slots = new SharedArrayBuffer(SLOT_COUNT * 4);
      const base = { heap: heap.buffer, log: recorder.buffer, slots, steps: 4000 };
      const results = await Promise.all([startWorker({ ...base, seed: 1 }), startWorker({ ...base, seed: 2 })]);
      const scan = recorder.scan();
      expect(scan.unpublished).toBe(0);
      expect(scan.unknownAddresses).toBe(0);
      const trace = scan.trace;
      expect(trace.threads).toBe(2);
      expect(trace.requests.length).toBe(results[0]!.calls + results[1]!.calls);
      checkTrace(trace);
      // Blocks still in the slots are the trace's live blocks at its end.
      const filled = new Int32Array(slots).filter((address) => address !== 0).length;
      expect(traceFigures(trace).liveAtEnd).toBe(filled);
      // Some frees were by the other thread than the allocation's.
      const allocatedBy = new Map<number, number>();
      let crossFrees = 0;
      for (const request of trace.requests) {
        if (request.op === 'a') allocatedBy.set(request.id, request.thread);
        else if (request.op === 'f' && allocatedBy.get(request.id) !== request.thread) crossFrees++;
      }
      expect(crossFrees).toBeGreaterThan(0);
    } finally {
      heap.detach();
    }
  }, 20_000);

  it('keeps two handles apart when the second takes the heap thread slot the first gave back', () => {
    const recorder = new TraceRecorder({ capacity: 100 });
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    try {
      const first = GlobalAllocator.attachSync(heap.buffer, { trace: recorder });
      const block = first.malloc(32);
      const slot = first.threadId;
      first.detach();
      const second = GlobalAllocator.attachSync(heap.buffer, { trace: TraceRecorder.over(recorder.buffer) });
      expect(second.threadId).toBe(slot);
      second.free(block);
      second.detach();
      const trace = recorder.trace();
      expect(trace.threads).toBe(2);
      expect(trace.requests.map((request) => request.thread)).toEqual([0, 1]);
    } finally {
      heap.detach();
    }
  });

  it('stops when its log is full, and trace() says so and how to make it bigger', () => {
    const recorder = new TraceRecorder({ capacity: 3 });
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, trace: recorder });
    try {
      for (let call = 0; call < 5; call++) heap.free(heap.malloc(16));
      expect(recorder.overflowed).toBe(true);
      expect(recorder.recorded).toBe(3);
      const error = expectAllocError(() => recorder.trace(), 'InvalidParam');
      expect(error.message).toMatch(/filled.*3 records.*capacity/);
    } finally {
      heap.detach();
    }
  });

  it('skips a record reserved but never published, and counts it', () => {
    const recorder = new TraceRecorder({ capacity: 100 });
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB, trace: recorder });
    try {
      const kept = heap.malloc(10);
      const lost = heap.malloc(20);
      // A free whose thread dies inside the backend's free: its record is reserved, its kind stays 0.
      const words = new Uint32Array(recorder.buffer);
      Atomics.add(words, HEADER_NEXT, 1);
      heap.free(kept);
      const scan = recorder.scan();
      expect(scan.unpublished).toBe(1);
      expect(scan.trace.requests).toEqual([
        { op: 'a', id: 0, bytes: 10, thread: 0, align: 0, zero: false },
        { op: 'a', id: 1, bytes: 20, thread: 0, align: 0, zero: false },
        { op: 'f', id: 0, thread: 0 },
      ]);
      heap.free(lost);
    } finally {
      heap.detach();
    }
  });

  it('skips and counts calls on blocks an unrecorded handle allocated', () => {
    const heap = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const recorder = new TraceRecorder({ capacity: 100 });
    const recorded = GlobalAllocator.attachSync(heap.buffer, { trace: recorder });
    try {
      const before = [heap.malloc(16), heap.malloc(16)];
      recorded.realloc(before[0]!, 64);
      recorded.free(before[1]!);
      recorded.free(recorded.malloc(8));
      const scan = recorder.scan();
      expect(scan.unknownAddresses).toBe(2);
      expect(scan.unpublished).toBe(0);
      expect(scan.trace.requests).toEqual([
        { op: 'a', id: 0, bytes: 8, thread: 0, align: 0, zero: false },
        { op: 'f', id: 0, thread: 0 },
      ]);
    } finally {
      recorded.detach();
      heap.detach();
    }
  });

  it('records a block over 1 GiB in a trace that reads back', () => {
    // A buffer commits lazily: the block's bytes are never touched, only its header.
    const recorder = new TraceRecorder({ capacity: 8 });
    const heap = GlobalAllocator.create({ backend: 'basic', heapBytes: 1200 * MiB, trace: recorder });
    const bytes = 1100 * MiB;
    const address = heap.malloc(bytes);
    expect(address).not.toBe(0);
    heap.free(address);
    const { trace } = recorder.scan();
    expect(trace.requests[0]).toMatchObject({ op: 'a', bytes });
    expect(parseTrace(formatTrace(trace, 'text'))).toEqual(trace);
    heap.detach();
  });

  it('refuses what is not a recorder or its log', () => {
    expectAllocError(() => new TraceRecorder({ capacity: 0 }), 'InvalidParam');
    expectAllocError(() => TraceRecorder.over(new SharedArrayBuffer(64)), 'InvalidParam');
    expectAllocError(() => GlobalAllocator.create({ heapBytes: 4 * MiB, trace: {} as TraceRecorder }), 'InvalidParam');
    const recorder = new TraceRecorder({ capacity: 10 });
    expect(TraceRecorder.over(recorder.buffer).capacity).toBe(10);
  });

  it('leaves a heap without a recorder on the prototype methods', () => {
    const plain = GlobalAllocator.create({ heapBytes: 4 * MiB });
    const recorded = GlobalAllocator.create({ heapBytes: 4 * MiB, trace: new TraceRecorder({ capacity: 10 }) });
    try {
      expect(Object.hasOwn(plain, 'malloc')).toBe(false);
      expect(Object.hasOwn(recorded, 'malloc')).toBe(true);
    } finally {
      plain.detach();
      recorded.detach();
    }
  });
});
