/**
 * Whether this thread can have a heap at all. A heap is a `SharedArrayBuffer`, and a browser
 * gives a page (and its workers) that constructor only when the page is cross-origin
 * isolated, which the server asks for with two response headers. Without them the failure
 * would be a bare `ReferenceError` deep inside `create`; this check says what to send instead.
 * Node, Deno and Bun always have shared memory.
 */

import { AllocError } from '../errors.js';

/**
 * The response headers that make a page cross-origin isolated, so that it gets
 * `SharedArrayBuffer`: the page's document and the scripts of its workers need them.
 */
export const ISOLATION_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
});

/** The globals `requireSharedMemory` looks at; a test passes its own. */
export interface SharedMemoryGlobals {
  SharedArrayBuffer?: unknown;
  crossOriginIsolated?: unknown;
}

/** The headers as a server sends them, one `Name: value` a line, for messages. */
function headerLines(): string {
  return Object.entries(ISOLATION_HEADERS)
    .map(([name, value]) => `${name}: ${value}`)
    .join(' and ');
}

/**
 * Throws unless this thread can make and share a heap: `SharedArrayBuffer` exists and, in a
 * browser, the page is cross-origin isolated (`crossOriginIsolated` is not false; outside a
 * browser it is undefined).
 * @param globals where to look (default: `globalThis`)
 * @throws AllocError `Unsupported` naming the two headers (`ISOLATION_HEADERS`) to send
 */
export function requireSharedMemory(globals: SharedMemoryGlobals = globalThis as SharedMemoryGlobals): void {
  const remedy =
    `serve the page and its workers' scripts with the headers ${headerLines()} ` +
    '(see docs/browsers.md); a browser gives shared memory only to a cross-origin isolated page';
  if (typeof globals.SharedArrayBuffer !== 'function') {
    throw new AllocError('Unsupported', `heaplab needs SharedArrayBuffer, which this thread does not have: ${remedy}`);
  }
  if (globals.crossOriginIsolated === false) {
    throw new AllocError('Unsupported', `heaplab needs shared memory, but this page is not cross-origin isolated (crossOriginIsolated is false): ${remedy}`);
  }
}
