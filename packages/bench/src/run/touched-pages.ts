/**
 * "Memory touched": how many 4 KiB pages of an arena the run wrote. A fresh
 * SharedArrayBuffer is all zeros (and pre-faulting adds 0, writing nothing), so a page that
 * holds a non-zero byte after the run was written during it. A page written only with zeros,
 * or written and zeroed again, is not seen: the count is a lower bound. Unlike the highest
 * address a block reached, it does not depend on where a backend places its first block.
 */

/** The page size of the measure: the usual OS page. */
export const TOUCHED_PAGE_BYTES = 4096;

/**
 * The pages of `buffer` between `start` and `end` (bytes; the pages are those of the
 * buffer's own offsets, so a partly covered page at either end counts if its covered part
 * holds a non-zero byte) that hold a non-zero byte.
 * @throws RangeError when the range is not inside the buffer
 */
export function countTouchedPages(buffer: ArrayBufferLike, start: number, end: number): number {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && start <= end && end <= buffer.byteLength)) {
    throw new RangeError(`range ${start}..${end} is not inside a buffer of ${buffer.byteLength} bytes`);
  }
  const bytes = new Uint8Array(buffer);
  // Whole words where they fit: a page of zeros is 1024 word reads rather than 4096 byte reads.
  const words = new Uint32Array(buffer, 0, Math.floor(buffer.byteLength / 4));
  let touched = 0;
  for (let pageStart = start - (start % TOUCHED_PAGE_BYTES); pageStart < end; pageStart += TOUCHED_PAGE_BYTES) {
    const from = Math.max(pageStart, start);
    const to = Math.min(pageStart + TOUCHED_PAGE_BYTES, end);
    if (anyNonZero(bytes, words, from, to)) touched++;
  }
  return touched;
}

/** Whether a byte of `[from, to)` is not zero. */
function anyNonZero(bytes: Uint8Array, words: Uint32Array, from: number, to: number): boolean {
  const firstWord = Math.ceil(from / 4);
  const endWord = Math.floor(to / 4);
  if (firstWord >= endWord) {
    for (let at = from; at < to; at++) if (bytes[at] !== 0) return true;
    return false;
  }
  for (let at = from; at < firstWord * 4; at++) if (bytes[at] !== 0) return true;
  for (let word = firstWord; word < endWord; word++) if (words[word] !== 0) return true;
  for (let at = endWord * 4; at < to; at++) if (bytes[at] !== 0) return true;
  return false;
}
