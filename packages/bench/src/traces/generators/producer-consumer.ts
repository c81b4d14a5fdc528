/**
 * Producer and consumer: thread 0 allocates messages and thread 1 frees them after a
 * queue's delay, so almost every free is of a block another thread allocated (the remote
 * frees that mimalloc's thread-free lists and slab's per-thread caches must hand back).
 * Thread 1 also keeps a few blocks of its own.
 */

import { Random, type Trace } from '@heaplab/core';

import { TraceBuilder } from '../trace-builder.js';

const MESSAGES = 5000;
const QUEUE_DEPTH = 64;

export function producerConsumer(seed: number, description: string): Trace {
  const random = new Random(seed);
  const builder = new TraceBuilder();
  const queue: number[] = [];
  const own: number[] = [];
  for (let message = 0; message < MESSAGES; message++) {
    queue.push(builder.alloc(random.size(4096), { thread: 0 }));
    // The consumer lags behind by a varying amount, up to the queue's depth.
    while (queue.length > QUEUE_DEPTH || (queue.length > 0 && random.int(0, 3) === 0)) builder.free(queue.shift()!, 1);
    if (random.int(0, 50) === 0) own.push(builder.alloc(random.int(16, 1024), { thread: 1 }));
    if (own.length > 8) builder.free(own.shift()!, 1);
  }
  for (const id of queue) builder.free(id, 1);
  for (const id of own) builder.free(id, 1);
  return builder.build(description);
}
