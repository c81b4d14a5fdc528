// A worker entry in JavaScript for the backend-module tests: attaches to the heap in
// workerData.buffer (no descriptor passed, no module trusted here: attach finds the backend
// by name or refuses), allocates and frees one block, and replies with what it saw.
import { parentPort, workerData } from 'node:worker_threads';

import { GlobalAllocator } from '@heaplab/core';

try {
  const heap = await GlobalAllocator.attach(workerData.buffer);
  const address = heap.malloc(100);
  new Uint8Array(heap.buffer, address, 100).fill(0x5a);
  heap.free(address);
  heap.check();
  parentPort.postMessage({ ok: true, backend: heap.backendName, address });
  heap.detach();
} catch (error) {
  parentPort.postMessage({ ok: false, kind: error.kind, message: error.message });
}
