/**
 * The delayed-free queues when a thread dies in the middle of handing its queue over to the
 * orphan list: whoever finishes the hand-over must not link the queue twice.
 */

import { describe, expect, it } from 'vitest';

import { GlobalAllocator, MiB } from '../src/index.js';
import { QR_QUEUE_HEAD, QSBR_DOMAIN, QSBR_ORPHAN_HEAD, QSBR_RECORD_BYTES, QSBR_RECORDS } from '../src/memory/heap-layout.js';

describe('handing a queue of delayed frees over', () => {
  it('after a death between linking the queue to the orphans and clearing the record, links it once', () => {
    const heap = GlobalAllocator.create({ heapBytes: 8 * MiB });
    const other = GlobalAllocator.attachSync(heap.buffer);
    const blocks = Array.from({ length: 600 }, () => other.malloc(40));
    for (const block of blocks) other.freeDelayed(block);
    const u32 = heap.memory.u32;
    const recordHead = (QSBR_RECORDS + (other.threadId - 1) * QSBR_RECORD_BYTES + QR_QUEUE_HEAD) >> 2;
    const orphanHead = (QSBR_DOMAIN + QSBR_ORPHAN_HEAD) >> 2;
    const queue = u32[recordHead]!;
    expect(queue).not.toBe(0);
    // The thread died right after linking its queue to the (empty) orphan list.
    u32[orphanHead] = queue;
    // Its reaper hands the queue over again.
    (heap as unknown as { delayed: { handOver(threadId: number): void } }).delayed.handOver(other.threadId);
    expect(u32[recordHead]).toBe(0);
    expect(u32[orphanHead]).toBe(queue);
    // Each waiting block is freed exactly once: a cycle or a double link would free twice
    // (refused by the backend, so counted short) or walk forever (refused as HeapCorrupted).
    other.idle();
    heap.processDelayed();
    heap.quiescent();
    let freed = 0;
    for (let round = 0; round < 4; round++) {
      freed += heap.processDelayed();
      heap.quiescent();
    }
    expect(freed).toBe(blocks.length);
    expect(heap.stats().liveBlocks).toBe(0);
    heap.check();
    other.detach();
    heap.detach();
  });
});
