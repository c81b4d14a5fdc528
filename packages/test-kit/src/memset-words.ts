/**
 * The words `memset` writes (one byte repeated four times), for tests of a free marker that
 * a block's data must not be able to spell: core's `freeMarker`, which mimalloc's freed
 * marker and the thread cache's mark are. The bare `address ^ cookie` was such a word for 256
 * addresses of the 32-bit space per cookie, so a remote free of a live block filled with the
 * right byte was refused as a double free.
 */

/** Whether `word` (int32 or uint32) is one byte repeated four times. */
export function isMemsetWord(word: number): boolean {
  return word >>> 0 === ((word & 0xff) * 0x01010101) >>> 0;
}

/**
 * The addresses on a grid of `grid` bytes in `[start, end)` whose bare `address ^ cookie` is a
 * `memset` word, each with the byte that spells it.
 */
export function memsetMarkerAddresses(cookie: number, start: number, end: number, grid: number): Map<number, number> {
  const found = new Map<number, number>();
  for (let byte = 0; byte < 256; byte++) {
    const address = ((byte * 0x01010101) ^ cookie) >>> 0;
    if (address % grid === 0 && address >= start && address < end) found.set(address, byte);
  }
  return found;
}

/**
 * Calls `visit` with 2000 odd cookies from a fixed sequence (heap cookies are odd) and, for
 * each, the 8-aligned addresses whose bare `address ^ cookie` would be a `memset` word, and
 * their neighbours 8 and 256 bytes away: where a marker derived from the address and the
 * cookie is most likely to be one.
 */
export function sweepMarkerSuspects(visit: (address: number, cookie: number) => void): void {
  let cookie = 0x2545f491;
  for (let round = 0; round < 2000; round++) {
    cookie = (Math.imul(cookie, 1103515245) + 12345) | 1;
    for (let byte = 0; byte < 256; byte++) {
      const aligned = (((byte * 0x01010101) ^ cookie) & ~7) >>> 0;
      for (const address of [aligned, aligned + 8, (aligned ^ 0x100) >>> 0]) visit(address, cookie);
    }
  }
}

/**
 * The suspects of `sweepMarkerSuspects` whose marker, by `markerOf`, a `memset` fill could
 * spell or that is even (a marker has bit 0 set, so it is never 0), as "address with cookie"
 * in hex: what a test of a free marker expects to be empty.
 */
export function spellableMarkers(markerOf: (address: number, cookie: number) => number): string[] {
  const spellable: string[] = [];
  sweepMarkerSuspects((address, cookie) => {
    const marker = markerOf(address, cookie);
    if (isMemsetWord(marker) || (marker & 1) !== 1) spellable.push(`${address.toString(16)} with cookie ${cookie.toString(16)}`);
  });
  return spellable;
}
