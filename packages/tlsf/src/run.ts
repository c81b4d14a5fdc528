/**
 * Where a refill run goes (`Backend.allocateRun`, core's contract.ts; docs/thread-cache.md,
 * "Refill runs"): the TLSF backend carves a run from the front of one free block, as `allocate`
 * carves one block, and this file decides how. tlsf.ts does the carving.
 *
 * A run of `n` blocks of `blockSize` bytes (header included) must start its first payload on
 * a line (`RUN_LINE_BYTES`), so its first header sits 8 bytes below one, and must own every
 * line up to the end of the line its last requested byte falls in: the block after the run
 * (the free rest, or the live block or sentinel after the free block) may show only its
 * header there. The blocks are back to back, so where the run ends is fixed by `n`; what
 * is left to the end of that line goes to the last block:
 * - as plain slack when it is at most MAX_SLACK (the header's slack bits);
 * - else as a trailer and its slack (layout.ts: a block with alignment 8 and up to
 *   MAX_LINE_SLACK bytes of slack), 8 to 56 bytes more than the request.
 * `planRun` prefers the first while it costs at most a quarter of the blocks: since the end
 * moves by `blockSize` a block, its place in the line repeats every 8 blocks or fewer, so it
 * looks at the largest count that fits and up to 7 below it (never below three quarters of
 * it) for one that ends within MAX_SLACK of a line's end (8 fewer bytes for the next header).
 * When none does (runs of a few big blocks, mostly), the largest count that fits with its
 * padding is taken and its last block carries a trailer: up to 56 bytes kept for as long as
 * the block lives, against refilling sooner.
 *
 * The gap before the first block becomes a free block of its own, as an aligned `allocate`
 * leaves one, so it is 0 or at least a minimum block: up to a line and 8 bytes. A run leaves
 * the rest of its free block starting 8 bytes below a line, where the next run's first header
 * goes, unless its requests end exactly on a line: runs carved one after another from the
 * same free block mostly follow each other with no gap, else one of 56 bytes.
 */

import { RUN_LINE_BYTES } from '@heaplab/core/backend';

import { HEADER_BYTES, MAX_SLACK, MIN_BLOCK_BYTES } from './layout.js';

/**
 * The most bytes a run needs beyond its blocks: a gap of up to a line and 8 bytes before
 * them and up to a line less 8 after its last request. A free block of the run's bytes plus
 * this always takes the whole run.
 */
export const RUN_EXTRA_BYTES = 2 * RUN_LINE_BYTES;

/** How many counts from the largest `planRun` tries before padding: the 8-byte steps of a line. */
const RUN_PLACES = RUN_LINE_BYTES / 8;

/** A run's place in a free block, as `planRun` decides it (one per allocator, reused). */
export class RunPlan {
  /** The first block's header, 8 bytes below a line; above the free block's start when a gap is left. */
  start = 0;
  /** Blocks in the run, at least 1 once planned. */
  blocks = 0;
  /** Bytes of the last block, its slack (and its trailer, when padded) included. */
  lastSize = 0;
  /** Whether the last block takes more than MAX_SLACK and records it in a trailer. */
  padded = false;
}

/**
 * The bytes the last block of a run of `count` blocks starting at `start` takes beyond
 * `blockSize`, so that nothing but a header follows it in the line its request ends in and
 * the rest of the free block up to `end` is 0 or a free block; -1 when that passes `end`.
 */
function lastBlockExtra(start: number, count: number, blockSize: number, end: number): number {
  const requestEnd = start + count * blockSize;
  const lineEnd = requestEnd + ((RUN_LINE_BYTES - (requestEnd % RUN_LINE_BYTES)) % RUN_LINE_BYTES);
  let extra = Math.max(0, lineEnd - HEADER_BYTES - requestEnd);
  const rest = end - requestEnd - extra;
  if (rest < 0) return -1;
  // A rest of 8 bytes could not be a free block: the last block takes it too.
  if (rest < MIN_BLOCK_BYTES) extra += rest;
  return extra;
}

/**
 * Plans a run of up to `count` blocks of `blockSize` bytes in the free block `[fb, fb + fbSize)`
 * into `plan`. Returns false, leaving `plan` unusable, when not even one block fits.
 */
export function planRun(plan: RunPlan, fb: number, fbSize: number, blockSize: number, count: number): boolean {
  let gap = (RUN_LINE_BYTES - HEADER_BYTES - (fb % RUN_LINE_BYTES) + RUN_LINE_BYTES) % RUN_LINE_BYTES;
  if (gap !== 0 && gap < MIN_BLOCK_BYTES) gap += RUN_LINE_BYTES;
  const start = fb + gap;
  const end = fb + fbSize;
  if (start + blockSize > end) return false;
  const most = Math.min(count, Math.floor((end - start) / blockSize));
  const fewest = Math.max(most - RUN_PLACES + 1, most - (most >>> 2), 1);
  plan.start = start;
  // Counts from the largest down: the first that ends within MAX_SLACK of a line's end, down
  // to `fewest`; else the largest whose padding fits (the first counts may leave no room for
  // it); else, when none does, a smaller plain one.
  let paddedBlocks = 0;
  let paddedExtra = 0;
  for (let blocks = most; blocks >= 1; blocks--) {
    const extra = lastBlockExtra(start, blocks, blockSize, end);
    if (extra < 0) continue;
    if (extra <= MAX_SLACK) {
      if (blocks < fewest && paddedBlocks !== 0) break;
      return setPlan(plan, blocks, blockSize + extra, false);
    }
    if (paddedBlocks === 0) {
      paddedBlocks = blocks;
      paddedExtra = extra;
    }
    if (blocks <= fewest) break;
  }
  // More than MAX_SLACK bytes are left, so the trailer's 8 are among them.
  return paddedBlocks !== 0 && setPlan(plan, paddedBlocks, blockSize + paddedExtra, true);
}

/** Fills in `plan` past its start; true, for `planRun` to return. */
function setPlan(plan: RunPlan, blocks: number, lastSize: number, padded: boolean): true {
  plan.blocks = blocks;
  plan.lastSize = lastSize;
  plan.padded = padded;
  return true;
}
