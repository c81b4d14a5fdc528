/**
 * Secure mode's pieces, after mimalloc's `MI_SECURE`: per-page keys, encoded free-list
 * links, randomized initial free-list order, and the freed marker that detects double frees
 * in every mode.
 *
 * An encoded link is `rotl(next ^ key1, key0 & 31) + key0` (mimalloc's `mi_ptr_encode`), so
 * an attacker or a stray write that overwrites a free block's link cannot aim the free list
 * at a chosen address without the page's keys; a corrupted link decodes to an address
 * outside the page (or off the block grid) with high probability and is reported as
 * `HeapCorrupted` instead of being followed.
 */

import { type AllocError, freeMarker, heapCorrupted, hex } from '@heaplab/core/backend';

import { BACKEND_NAME } from './layout.js';

/**
 * The freed marker of the block at `address`: written in a block's second word when it
 * enters a free list, cleared by malloc (see "Double-free detection" in `layout.ts`). Core's
 * free marker (`freeMarker`, backend/free-marker.ts, says why it is never a word `memset`
 * writes): a hint that the owner confirms on its lists, and that a free from a thread that
 * does not own the page trusts. (An address off the 8-byte grid may get an even marker, 0
 * included: no free gets past the grid test with one.)
 */
export const freedMarker: (address: number, cookie: number) => number = freeMarker;

/** Encodes a free-list link with a page's keys. */
export function encodeLink(next: number, key0: number, key1: number): number {
  const x = (next ^ key1) >>> 0;
  const r = key0 & 31;
  return (((x << r) | (x >>> ((32 - r) & 31))) + key0) >>> 0;
}

/** Decodes a link written by `encodeLink` with the same keys. */
export function decodeLink(link: number, key0: number, key1: number): number {
  const x = (link - key0) >>> 0;
  const r = key0 & 31;
  return (((x >>> r) | (x << ((32 - r) & 31))) ^ key1) >>> 0;
}

/** One step of xorshift32 over a nonzero 32-bit state. */
export function nextRandom(state: number): number {
  let x = state | 0 || 0x6b8b4567;
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

/** A nonzero seed for a heap's random state: the heap cookie, the thread id and the clock. */
export function randomSeed(cookie: number, threadId: number): number {
  return nextRandom((cookie ^ Math.imul(threadId, 0x27d4eb2d) ^ (Date.now() >>> 0) ^ ((Math.random() * 0x1_0000_0000) >>> 0)) >>> 0);
}

/**
 * A step for visiting `count` slots in a shuffled order: `slot(i) = (start + i * step) mod
 * count` is a permutation when `step` is coprime with `count`. Picks an odd step near a
 * random fraction of `count` and moves it until the gcd is 1.
 */
export function coprimeStep(count: number, random: number): number {
  if (count <= 2) return 1;
  let step = (random % (count - 1)) + 1;
  while (gcd(step, count) !== 1) step = step + 1 === count ? 1 : step + 1;
  return step;
}

function gcd(a: number, b: number): number {
  while (b !== 0) {
    const t = a % b;
    a = b;
    b = t;
  }
  return a;
}

/** The error for a free list whose link leads outside its page or off the block grid. */
export function corruptedFreeList(page: number, block: number, link: number): AllocError {
  return heapCorrupted(
    BACKEND_NAME,
    `the free list of the page at ${hex(page)} is corrupted: the block at ${hex(block)} ` +
      `links to ${hex(link)}, which is not a block of that page (a write after free?)`,
  );
}

/** The error for a free block whose freed marker was overwritten while it was free. */
export function overwrittenFreeBlock(page: number, block: number): AllocError {
  return heapCorrupted(BACKEND_NAME, `the free block at ${hex(block)} in the page at ${hex(page)} was written after it was freed (its freed marker is gone)`);
}
