/**
 * The word a free block carries to say "I am free" without a lookup: mimalloc's freed marker
 * (a block's second word on its page's free lists) and the thread cache's mark (a cached
 * block's second word). A free that finds it suspects a double free and confirms on the
 * owner's lists where it can; where it cannot (another thread's page or cache, whose lists
 * only their owner may walk), the marker alone decides, so live data must not carry it.
 *
 * It is the block's address xor the heap's random cookie, which data that does not know the
 * cookie cannot aim at, with bit 8 cleared. The cookie is odd (shared-heap.ts) and blocks are
 * 8-aligned, so the marker has bit 0 set: it is never 0 (a zeroed block never carries it), and
 * its bytes 0 and 1 differ (bit 0 set in one, bit 8 clear in the other), so it is never one
 * byte repeated four times, the word `memset` writes. With the bare xor, the 8-aligned
 * addresses whose marker was such a word (32 per heap) refused the remote free of a live
 * block its program had filled with that byte: xmalloc-test's objects, in about one run in
 * ten (docs/speed.md, "Larson and xmalloc-test"). That leaves 30 bits to chance (one in 2^30
 * for random data). Two operations, as the bare xor with its low bit set took.
 */

/** The free marker of the block at `address` in a heap whose cookie is `cookie` (an int32). */
export function freeMarker(address: number, cookie: number): number {
  return (address ^ cookie) & ~0x100;
}
