/**
 * Where the basic backend puts a refill run (`Backend.allocateRun`, contract.ts) inside one
 * free block: pure arithmetic over addresses, which basic.ts's `allocateRun` uses both to
 * rate each free block of its search and to carve the one it picks.
 *
 * ```text
 *        line L - 64           line L                          line L + span
 *  |.. gap (free) ..|hdr| block 0 |hdr| block 1 |...|hdr| last block ....|hdr| tail (free) ..
 *  ^ fb             ^ start                                              ^ start + span
 * ```
 *
 * The first block's payload is on a line (`RUN_LINE_BYTES`), so its header is the last 8
 * bytes of the line before; the blocks follow one another with `bytes` each; the last block
 * is stretched to end 8 bytes before a line, so that the header of whatever follows (the
 * tail's, or the next run's first block's) ends its line and the next payload starts on a
 * line. The run's lines then hold only its blocks and their headers. The gap before the run
 * stays a free block, so it is empty or at least `MIN_BLOCK`; a tail below `MIN_BLOCK` is
 * carved into the last block, as `allocate` does.
 */

import { RUN_LINE_BYTES } from '../sizes.js';
import { HEADER_BYTES, MIN_BLOCK, SLACK_MASK } from './layout.js';

/** `n` rounded up to a multiple of `RUN_LINE_BYTES` (addresses may be 2^31 or more: no bit operators). */
function lineUp(n: number): number {
  const rest = n % RUN_LINE_BYTES;
  return rest === 0 ? n : n + RUN_LINE_BYTES - rest;
}

/**
 * The header of a run's first block in the free block at `fb`: the lowest place whose payload
 * is on a line and which leaves before it no gap or a gap big enough to stay a free block.
 */
export function runStart(fb: number): number {
  let start = lineUp(fb + HEADER_BYTES) - HEADER_BYTES;
  if (start !== fb && start - fb < MIN_BLOCK) start += RUN_LINE_BYTES;
  return start;
}

/**
 * Bytes from the first block's header to the end of the last block of a run of `blocks`
 * blocks of `bytes` each: the blocks, and the last one stretched so that the run ends 8 bytes
 * before a line (the first header is 8 bytes before one, so the span is whole lines).
 */
export function runSpan(blocks: number, bytes: number): number {
  return lineUp(blocks * bytes);
}

/**
 * How many blocks (0 to `count`) of `bytes` each, serving requests of `size`, a run from
 * `start` (`runStart`) holds in a free block ending at `end`: the most whose span fits, with a
 * tail after it that is empty or a free block, and whose last block's slack (its stretch, the
 * tail it takes, its rounding) the tag can record. A run whose slack does not fit is one
 * block shorter: at most 7 steps down reach a span of exact lines (`bytes` is a multiple of 8).
 */
export function runLength(start: number, end: number, bytes: number, size: number, count: number): number {
  const room = end - start;
  for (let blocks = Math.min(count, Math.floor(room / bytes)); blocks > 0; blocks--) {
    const span = runSpan(blocks, bytes);
    if (span > room) continue;
    const tail = room - span;
    const slack = span - (blocks - 1) * bytes - HEADER_BYTES - size + (tail < MIN_BLOCK ? tail : 0);
    if (slack <= SLACK_MASK) return blocks;
  }
  return 0;
}
