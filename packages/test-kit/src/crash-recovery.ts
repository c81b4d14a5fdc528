/**
 * The crash-recovery suite for locked backends: a thread dies inside the heap lock at every
 * store of a malloc, a free and a realloc, and another thread's `recover()` must give back a
 * heap that passes `check()`, keeps every other live block intact, and works: everything can
 * be freed, the heap filled and emptied again.
 *
 * ```ts
 * import { describeCrashRecovery } from '@heaplab/test-kit';
 * describeCrashRecovery({ label: 'tlsf', backend: tlsfBackend });
 * ```
 *
 * The deaths are exact, not sampled: each operation runs once over counting views
 * (`dying-memory.ts`) to learn its number of stores `S`, then `S` more times from the same
 * starting bytes, dying before store 0, 1, ..., S - 1. So a backend passes only if its
 * arena records are consistent at every instant its structures are not, which is what a
 * rebuild "from what the arena records" needs.
 */

import { describe, expect, it } from 'vitest';

import { AllocError, GlobalAllocator, MiB, MIN_ALIGN, type ReapReport } from '@heaplab/core';
import type { Backend, BackendDescriptor, HeapMemory } from '@heaplab/core/backend';
import { makeBackendContext, recordPool } from './backend-context.js';
import { checkAndWalk } from './conformance.js';
import { contextOver, dyingMemory, type StoreBudget, ThreadDeath } from './dying-memory.js';
import type { DieInBackendTask, KitReply } from './kit-worker.js';
import { Random, type Signature, signBlock, verifyBlock } from './patterns.js';
import { spawnKitWorker } from './worker-pool.js';

/** Which backend the suite runs. */
export interface CrashRecoveryTarget {
  label: string;
  // biome-ignore lint/suspicious/noExplicitAny: descriptors of every options type
  backend: BackendDescriptor<any>;
  options?: Record<string, unknown>;
  /** Arena bytes (default 4 MiB): every death restores the whole buffer, so keep it small. */
  arenaBytes?: number;
}

/** The thread that dies, and the one that recovers. */
const DYING_THREAD = 2;
const RECOVERING_THREAD = 1;

/** A live block the test owns. */
interface Held {
  address: number;
  signature: Signature;
}

/** One operation to die in: it acts on `backend` over the prepared heap. */
interface Operation {
  name: string;
  /** The block the operation is about (freed or resized), or 0 for an allocation. */
  subject: (held: Held[]) => Held | null;
  run: (backend: Backend, subject: Held | null) => void;
}

const OPERATIONS: Operation[] = [
  { name: 'malloc(40) in a fragmented heap', subject: () => null, run: (b) => void b.allocate(40, MIN_ALIGN) },
  { name: 'malloc(3000)', subject: () => null, run: (b) => void b.allocate(3000, MIN_ALIGN) },
  { name: 'malloc(100) aligned to 256', subject: () => null, run: (b) => void b.allocate(100, 256) },
  { name: 'malloc(1 MiB)', subject: () => null, run: (b) => void b.allocate(MiB, MIN_ALIGN) },
  // Blocks were allocated in address order and every third freed (see `prepare`), so these
  // have a free block before, after, on both sides, or neither (for backends that place
  // consecutive allocations side by side).
  { name: 'free of a block after a hole', subject: (h) => h[1]!, run: (b, s) => b.release(s!.address) },
  { name: 'free of a block before a hole', subject: (h) => h[4]!, run: (b, s) => b.release(s!.address) },
  { name: 'free of a block between live blocks', subject: (h) => h[6]!, run: (b, s) => b.release(s!.address) },
  { name: 'free of the last block', subject: (h) => h[h.length - 1]!, run: (b, s) => b.release(s!.address) },
  {
    name: 'free of a block between two holes',
    subject: (h) => h[h.length - 3]!,
    run: (b, s) => b.release(s!.address),
  },
  {
    name: 'realloc growing in place',
    subject: (h) => h[4]!,
    run: (b, s) => void b.resizeInPlace?.(s!.address, s!.signature.size + 24),
  },
  {
    name: 'realloc shrinking in place',
    subject: (h) => h[7]!,
    run: (b, s) => void b.resizeInPlace?.(s!.address, 24),
  },
];

/** A prepared heap: its bytes, and the blocks live in it. */
interface Prepared {
  bytes: Uint8Array;
  held: Held[];
}

/**
 * Runs the suite against `target.backend`, which must be a locked backend with `recover`.
 */
export function describeCrashRecovery(target: CrashRecoveryTarget): void {
  const descriptor = target.backend;
  const arenaBytes = target.arenaBytes ?? 4 * MiB;
  const options = descriptor.normalizeOptions(target.options ?? {});

  /** An instance for `threadId` over `memory`, writing through `views` (dying ones, say). */
  const instance = (memory: HeapMemory, threadId: number, views: HeapMemory = memory): Backend =>
    descriptor.create(contextOver(makeBackendContext({ memory, threadId, arenaBytes, stateBytes: descriptor.stateBytes }), views), options);

  /** A heap with 24 blocks allocated in order, every third freed, all others signed. */
  const prepare = (): Prepared => {
    const context = makeBackendContext({ arenaBytes, threadId: RECOVERING_THREAD, stateBytes: descriptor.stateBytes });
    makeBackendContext({ memory: context.memory, threadId: DYING_THREAD, arenaBytes });
    const backend = descriptor.create(context, options);
    backend.init(context.arenaStart, context.arenaEnd - context.arenaStart);
    recordPool(context.memory, context.arenaStart, context.arenaEnd - context.arenaStart);
    const random = new Random(7);
    const all: Held[] = [];
    for (let i = 0; i < 24; i++) {
      const size = i % 5 === 4 ? random.int(600, 5000) : random.int(16, 300);
      const address = backend.allocate(size, MIN_ALIGN);
      expect(address, `preparing: allocation ${i} of ${size} bytes`).not.toBe(0);
      const signature = { writer: 9, sequence: i, size };
      signBlock(context.memory.u8, address, signature);
      all.push({ address, signature });
    }
    const held: Held[] = [];
    all.forEach((block, index) => {
      if (index % 3 === 2) backend.release(block.address);
      else held.push(block);
    });
    backend.check();
    return { bytes: context.memory.u8.slice(), held };
  };

  /**
   * Restores `prepared` into `memory`, runs `operation` over views that die after `limit`
   * stores, and returns whether the thread died (it finished when the limit was not reached).
   */
  const runDying = (memory: HeapMemory, prepared: Prepared, operation: Operation, budget: StoreBudget): boolean => {
    memory.u8.set(prepared.bytes);
    const dying = instance(memory, DYING_THREAD, dyingMemory(memory, budget));
    try {
      operation.run(dying, operation.subject(prepared.held));
      return false;
    } catch (error) {
      if (error instanceof ThreadDeath) return true;
      throw error;
    }
  };

  /** After a death: recover, check, verify, then free everything and fill and empty. */
  const recoverAndUse = (memory: HeapMemory, prepared: Prepared, operation: Operation, where: string): void => {
    const backend = instance(memory, RECOVERING_THREAD);
    if (backend.recover === undefined) throw new Error(`${target.label} has no recover()`);
    const repair = backend.recover({ lock: 'heap', deadThreadId: DYING_THREAD });
    expect(repair.lostBytes, `${where}: lostBytes`).toBeGreaterThanOrEqual(0);
    backend.check();
    const subject = operation.subject(prepared.held);
    for (const block of prepared.held) {
      if (block === subject) continue;
      expect(verifyBlock(memory.u8, block.address, block.signature), `${where}: block at ${block.address}`).toBeNull();
      expect(backend.usableSize(block.address), `${where}: block at ${block.address}`).toBeGreaterThanOrEqual(block.signature.size);
    }
    // The subject of a free or resize is live or free, never half of each: a live one keeps
    // the bytes it had up to the smaller size.
    let subjectLive = false;
    if (subject !== null) {
      try {
        backend.usableSize(subject.address);
        subjectLive = true;
      } catch (error) {
        if (!(error instanceof AllocError) || error.kind !== 'NotAllocated') throw error;
      }
      if (subjectLive && operation.name.startsWith('free')) {
        expect(verifyBlock(memory.u8, subject.address, subject.signature), `${where}: the block being freed`).toBeNull();
      }
    }
    for (const block of prepared.held) if (block !== subject) backend.release(block.address);
    if (subjectLive) backend.release(subject!.address);
    backend.check();
    // An allocation the thread died in may have left one block nobody holds: it is live, not
    // lost, and the only bytes still used.
    const leaked = backend.usedBytes();
    expect(leaked, `${where}: bytes still used once every held block is freed`).toBeLessThanOrEqual(subject === null ? 2 * MiB : 0);
    const filled: number[] = [];
    for (let address = backend.allocate(4096, MIN_ALIGN); address !== 0; address = backend.allocate(4096, MIN_ALIGN)) {
      filled.push(address);
    }
    expect(filled.length, `${where}: 4 KiB blocks that fit after recovery`).toBeGreaterThan((arenaBytes - 2 * MiB) / 8192);
    for (const address of filled) backend.release(address);
    backend.check();
    expect(backend.usedBytes(), `${where}: used bytes after filling and emptying`).toBe(leaked);
  };

  describe(`${target.label}: crash recovery`, () => {
    it('recover() on a consistent heap changes nothing a program can see', () => {
      const prepared = prepare();
      const context = makeBackendContext({ arenaBytes, threadId: RECOVERING_THREAD, stateBytes: descriptor.stateBytes });
      context.memory.u8.set(prepared.bytes);
      const backend = descriptor.create(context, options);
      const before = backend.stats();
      const repair = backend.recover!({ lock: 'heap', deadThreadId: DYING_THREAD });
      expect(repair.lostBytes).toBe(0);
      backend.check();
      const after = backend.stats();
      expect({ ...after, peakUsedBytes: 0 }).toEqual({ ...before, peakUsedBytes: 0 });
      for (const block of prepared.held) expect(verifyBlock(context.memory.u8, block.address, block.signature)).toBeNull();
    });

    it('a worker that dies inside the heap lock is reaped by watchWorker, which repairs the heap', async () => {
      const cases: [DieInBackendTask['operation'], number][] = [
        ['malloc', 1],
        ['malloc', 5],
        ['free', 1],
        ['free', 4],
        ['realloc', 2],
      ];
      let deaths = 0;
      for (const [operation, stores] of cases) {
        const where = `${operation} dying before store ${stores}`;
        const heap = GlobalAllocator.create({ backend: descriptor, options: target.options ?? {}, heapBytes: arenaBytes });
        const random = new Random(stores);
        const held: Held[] = [];
        for (let i = 0; i < 16; i++) {
          const size = random.int(16, 600);
          const address = heap.malloc(size);
          const signature = { writer: 5, sequence: i, size };
          signBlock(heap.memory.u8, address, signature);
          held.push({ address, signature });
        }
        for (let i = 2; i < held.length; i += 3) heap.free(held.splice(i, 1)[0]!.address);
        const subject = operation === 'malloc' ? null : held.pop()!;
        const worker = spawnKitWorker({}, descriptor);
        const reaped = new Promise<ReapReport>((resolve) => heap.watchWorker(worker, resolve));
        const replied = new Promise<KitReply>((resolve) => worker.once('message', resolve));
        const task: DieInBackendTask = {
          kind: 'die-in-backend',
          buffer: heap.buffer,
          operation,
          size: 700,
          address: subject?.address ?? 0,
          stores,
          trustModules: [descriptor.moduleUrl],
        };
        worker.postMessage({ id: 1, task });
        const outcome = await Promise.race([reaped, replied.then((reply) => ({ reply }))]);
        if ('reply' in outcome) {
          // The operation had fewer stores: nothing died; end the worker and go on.
          expect(outcome.reply, where).toMatchObject({ ok: true, result: 'finished' });
          await worker.terminate();
          await reaped;
        } else {
          expect(outcome.failed, where).toEqual([]);
          expect(outcome.recovered, where).toContain('heap');
          deaths++;
        }
        // The heap works for everyone again: the held blocks are intact, and it fills and empties.
        checkAndWalk(heap);
        for (const block of held) expect(verifyBlock(heap.memory.u8, block.address, block.signature), where).toBeNull();
        for (const block of held) heap.free(block.address);
        if (subject !== null) {
          try {
            heap.free(subject.address);
          } catch (error) {
            if (!(error instanceof AllocError) || error.kind !== 'NotAllocated') throw error;
          }
        }
        const filled: number[] = [];
        for (let address = heap.malloc(8192); address !== 0; address = heap.malloc(8192)) filled.push(address);
        expect(filled.length, where).toBeGreaterThan(100);
        for (const address of filled) heap.free(address);
        checkAndWalk(heap);
        expect(heap.stats().recovery.failed, where).toBe(0);
        heap.detach();
      }
      expect(deaths, 'workers that died inside the lock').toBeGreaterThanOrEqual(3);
      console.info(
        `${target.label} crash recovery: ${deaths} of ${cases.length} workers died inside the heap lock; watchWorker repaired each, 0 wedged, check() passed`,
      );
    }, 60_000);

    for (const operation of OPERATIONS) {
      it(`a thread killed at every store of ${operation.name} leaves a heap recover() repairs`, () => {
        const prepared = prepare();
        const memory = makeBackendContext({ arenaBytes, threadId: RECOVERING_THREAD, stateBytes: descriptor.stateBytes }).memory;
        const counting: StoreBudget = { stores: 0, limit: Infinity };
        runDying(memory, prepared, operation, counting);
        const total = counting.stores;
        for (let limit = 0; limit < total; limit++) {
          const died = runDying(memory, prepared, operation, { stores: 0, limit });
          expect(died, `${operation.name}: a budget of ${limit} of ${total} stores`).toBe(true);
          recoverAndUse(memory, prepared, operation, `${operation.name}, died before store ${limit} of ${total}`);
        }
        console.info(`${target.label} crash recovery: ${operation.name} killed before each of its ${total} stores; recover() and check() passed after each`);
      }, 120_000);
    }
  });
}
