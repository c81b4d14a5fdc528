/**
 * The browser's platform module (see node.ts, whose API it repeats): a page and each of its
 * web workers. A bundler resolves core's `#platform` here under the `browser` export
 * condition. Nothing here imports a Node module or reads `process`, so a bundle for a page
 * carries no Node reference.
 */

/** The runtime family this module serves, for messages and tests. */
export const PLATFORM_NAME: 'node' | 'browser' = 'browser';

/**
 * The calling thread's id, stored in its registry slot. A browser numbers neither the page
 * nor its workers, and the threads share no memory before one of them holds a heap, so each
 * draws its own: a random positive 31-bit integer. Two of k threads collide with probability
 * about k² / 2³², under one in a million for 64 threads; the id only serves
 * `releaseThreadsOf(id)`, which a page calls with an id a worker posted it, so a collision
 * would release the other thread's slots too, and never corrupts allocations.
 */
export const platformThreadId: number = randomThreadId();

function randomThreadId(): number {
  const word = new Uint32Array(1);
  globalThis.crypto.getRandomValues(word);
  // Node's main thread is 0 and its workers count up from 1; 0 stays unused here.
  return word[0]! >>> 1 || 1;
}

/** A page has no environment variables: always undefined. */
export function environmentVariable(_name: string): string | undefined {
  return undefined;
}

/**
 * A page cannot read the files around a module, so no URL counts as a file of heaplab's
 * packages: `attach` imports a heap's backend module only when it was trusted, and otherwise
 * asks for `attach(buffer, { backends: [descriptor] })` or an import of the backend package.
 */
export async function isFileOfPackage(_url: URL, _packageNames: ReadonlySet<string>): Promise<boolean> {
  return false;
}

/** A page has no main script that a worker could run again by importing it: empty. */
export async function mainModuleUrls(): Promise<string[]> {
  return [];
}
