/**
 * Readers of the threads' remote-free buffers (`HP_RB_*`, drawn in `layout.ts`, "The
 * remote-free buffer"; written by `remote.ts`): which blocks they hold, for the walks that
 * count them as pending, for the rebuild of a dead owner's page and for the double-free test.
 * A live thread's buffer changes under these reads: each is bounded by `RB_CAPACITY`, and a
 * caller that must see a block there reads the block's marker first (the marker is written
 * after the entry and the count).
 */

import type { MiContext } from './context.js';
import { HP_RB_BLOCKS, HP_RB_COUNT, HP_RB_PAGE, PAGE_IN_USE, PG_BLOCK_SIZE, PG_FLAGS, RB_CAPACITY } from './layout.js';

/** The blocks of thread `threadId`'s buffer (bounded by `RB_CAPACITY`) and their page. */
export interface BufferedBlocks {
  page: number;
  blocks: number[];
}

/** What thread `threadId`'s remote-free buffer holds, or null when it is empty. */
export function bufferedBlocks(t: MiContext, threadId: number): BufferedBlocks | null {
  const u32 = t.u32;
  const heap = t.heapOf(threadId);
  const count = Math.min(u32[(heap + HP_RB_COUNT) >>> 2]!, RB_CAPACITY);
  if (count === 0) return null;
  const first = (heap + HP_RB_BLOCKS) >>> 2;
  return { page: u32[(heap + HP_RB_PAGE) >>> 2]!, blocks: Array.from(u32.subarray(first, first + count)) };
}

/** Whether a remote-free buffer of any thread holds `block` of `page`. */
export function remoteBufferHolds(t: MiContext, page: number, block: number): boolean {
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const buffered = bufferedBlocks(t, threadId);
    if (buffered !== null && buffered.page === page && buffered.blocks.includes(block)) return true;
  }
  return false;
}

/**
 * The buffered blocks of every thread by the descriptor of their page, for pages in use (a
 * racing read of a buffer whose page was given back since counts for nothing).
 */
export function bufferedByPage(t: MiContext): Map<number, number[]> {
  const u32 = t.u32;
  const byPage = new Map<number, number[]>();
  for (let threadId = 1; threadId <= t.maxThreads; threadId++) {
    const buffered = bufferedBlocks(t, threadId);
    if (buffered === null || buffered.page === 0 || (u32[(buffered.page + PG_FLAGS) >>> 2]! & PAGE_IN_USE) === 0) continue;
    const list = byPage.get(buffered.page);
    if (list === undefined) byPage.set(buffered.page, buffered.blocks);
    else list.push(...buffered.blocks);
  }
  return byPage;
}

/** Blocks and bytes in every thread's buffer, of pages in use (`bufferedByPage`). */
export function bufferedTotals(t: MiContext): { blocks: number; bytes: number } {
  const u32 = t.u32;
  let blocks = 0;
  let bytes = 0;
  for (const [page, list] of bufferedByPage(t)) {
    blocks += list.length;
    bytes += list.length * u32[(page + PG_BLOCK_SIZE) >>> 2]!;
  }
  return { blocks, bytes };
}
