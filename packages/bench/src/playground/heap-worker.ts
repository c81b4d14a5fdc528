/// <reference lib="dom" />
/**
 * A web worker of the playground: one thread of a trace on one heap. It attaches to the
 * heap the page made (passing the backends' descriptors, so nothing is imported by the URL
 * the heap stores), then performs the stretches of requests the page sends, in the trace's
 * order: its frees of blocks the page or another worker allocated are remote frees, made on
 * its own handle as a second thread of a real program would make them.
 */

import { GlobalAllocator } from '@heaplab/core';

import { DESCRIPTORS } from './backends.js';
import { performRequests, type PlayBuffers } from './requests.js';
import type { FromHeapWorker, ToHeapWorker } from './worker-protocol.js';

/** The worker's global scope, as much of it as this file uses (the DOM lib types `self` as a window). */
const scope = self as unknown as {
  onmessage: ((event: MessageEvent<ToHeapWorker>) => void) | null;
  postMessage(message: FromHeapWorker): void;
};

let heap: GlobalAllocator | null = null;
let play: PlayBuffers | null = null;

/** The reply to one message. */
function answer(message: ToHeapWorker): FromHeapWorker {
  switch (message.kind) {
    case 'attach':
      heap = GlobalAllocator.attachSync(message.heap, { backends: DESCRIPTORS });
      play = message.play;
      return { kind: 'attached', threadId: heap.threadId };
    case 'run':
      if (heap === null || play === null) throw new Error('run before attach');
      return { kind: 'ran', outcome: performRequests(heap, play, message.from, message.to) };
    case 'detach':
      heap?.detach();
      heap = null;
      return { kind: 'detached' };
  }
}

scope.onmessage = (event) => {
  try {
    scope.postMessage(answer(event.data));
  } catch (error) {
    scope.postMessage({ kind: 'failed', message: error instanceof Error ? `${error.name}: ${error.message}` : String(error) });
  }
};
