/**
 * A worker entry for source-bundle.test.ts: says where it runs from and what it knows, then
 * attaches to the heap in `workerData.buffer` (when given) and uses it, as a test worker does.
 */
import { parentPort, workerData } from 'node:worker_threads';

import { GlobalAllocator, loadedBackendModules } from '@heaplab/core';

const reply: Record<string, unknown> = {
  // Its own URL names this file even in a bundle; the stack names the file that really runs.
  ownUrl: import.meta.url,
  stack: new Error('where').stack ?? '',
  loadedModules: loadedBackendModules(),
  tag: workerData.tag,
};
if (workerData.buffer !== undefined) {
  const heap = await GlobalAllocator.attach(workerData.buffer as SharedArrayBuffer);
  const address = heap.malloc(64);
  heap.free(workerData.mainBlock as number);
  heap.check();
  reply['backend'] = heap.backendName;
  reply['allocated'] = address;
  heap.detach();
}
parentPort!.postMessage(reply);
