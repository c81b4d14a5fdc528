/**
 * An independent reading of a buddy heap's shared state, for the tests: it walks the order
 * maps and the free lists straight from the layout constants and asserts the buddy
 * invariants itself, so the tests do not rest on `check()` alone.
 */

import { hex } from '@heaplab/core';

import type { BuddyBlocks } from '../src/blocks.js';
import { FB_MAP_START, FB_NEXT, FB_PREV, LIST_SLOTS, ST_HEADS, UNIT_BYTES } from '../src/layout.js';

export type BlockKind = 'free' | 'live' | 'pages';

/** One block found by walking a pool's order map. */
export interface WalkedBlock {
  address: number;
  order: number;
  kind: BlockKind;
  pool: number;
}

/** Fails the test with `message`; plain checks with this keep walks of many blocks fast. */
function fail(message: string): never {
  throw new Error(`buddy invariant: ${message}`);
}

function kindOf(code: number): BlockKind {
  switch (code & 0xe0) {
    case 0x80:
      return 'free';
    case 0xa0:
      return 'pages';
    default:
      return 'live';
  }
}

/** Every block of every pool, in address order; asserts that they tile each pool's block area. */
export function walkBlocks(blocks: BuddyBlocks): WalkedBlock[] {
  const { u8, pools } = blocks;
  const walked: WalkedBlock[] = [];
  for (let pool = 0; pool < pools.count(); pool++) {
    const mapStart = pools.mapStart(pool);
    const end = pools.end(pool);
    let address = pools.blocksStart(pool);
    while (address < end) {
      const entry = mapStart + (address - mapStart) / UNIT_BYTES;
      const code = u8[entry]!;
      if ((code & 0x80) === 0) fail(`the entry of ${hex(address)} starts no block`);
      const order = (code & 0xe0) === 0xe0 ? 4 : code & 0x1f;
      const bytes = 2 ** order;
      if (address % bytes !== 0) fail(`block ${hex(address)} of order ${order} is not aligned to its size`);
      if (address + bytes > end) fail(`block ${hex(address)} runs past its pool's end ${hex(end)}`);
      for (let unit = 1; unit < bytes / UNIT_BYTES; unit++) {
        if ((u8[entry + unit]! & 0x80) !== 0) fail(`unit ${unit} inside block ${hex(address)} has its START bit`);
      }
      walked.push({ address, order, kind: kindOf(code), pool });
      address += bytes;
    }
    if (address !== end) fail(`pool ${pool}'s blocks end at ${hex(address)}, not ${hex(end)}`);
  }
  return walked;
}

/** The free lists, order by order, as linked; asserts their back links and that they end. */
export function readFreeLists(blocks: BuddyBlocks, limit = 1_000_000): number[][] {
  const u32 = blocks.u32;
  const lists: number[][] = [];
  for (let order = 0; order < LIST_SLOTS; order++) {
    const list: number[] = [];
    let prev = 0;
    for (let block = u32[((blocks.stateOffset + ST_HEADS) >>> 2) + order]!; block !== 0; block = u32[(block + FB_NEXT) >>> 2]!) {
      if (u32[(block + FB_PREV) >>> 2] !== prev) fail(`the back link of ${hex(block)} on list ${order} is not ${hex(prev)}`);
      list.push(block);
      if (list.length >= limit) fail(`free list ${order} does not end`);
      prev = block;
    }
    lists.push(list);
  }
  return lists;
}

/**
 * Asserts the buddy invariants: the blocks tile the pools; no free block has a free buddy of
 * its own order; each free list holds exactly the blocks the map marks free of its order,
 * each recording its pool's map. Returns the walk.
 */
export function expectBuddyInvariants(blocks: BuddyBlocks): WalkedBlock[] {
  const walked = walkBlocks(blocks);
  const freeOrder = new Map<number, number>();
  for (const block of walked) if (block.kind === 'free') freeOrder.set(block.address, block.order);
  for (const block of walked) {
    if (block.kind !== 'free' || block.order === 30) continue;
    const buddy = (block.address ^ (2 ** block.order)) >>> 0;
    if (freeOrder.get(buddy) === block.order) fail(`${hex(block.address)} and its buddy ${hex(buddy)} are both free of order ${block.order}`);
  }
  const lists = readFreeLists(blocks);
  const mapped: number[][] = Array.from({ length: LIST_SLOTS }, () => []);
  for (const block of walked) {
    if (block.kind !== 'free') continue;
    mapped[block.order]!.push(block.address);
    if (blocks.u32[(block.address + FB_MAP_START) >>> 2] !== blocks.pools.mapStart(block.pool)) {
      fail(`free block ${hex(block.address)} does not record its pool's map`);
    }
  }
  for (let order = 0; order < LIST_SLOTS; order++) {
    const listed = [...lists[order]!].sort((a, b) => a - b).join();
    if (listed !== mapped[order]!.join()) fail(`free list ${order} holds [${listed}] but the map marks [${mapped[order]!.join()}] free`);
  }
  return walked;
}

/** The free blocks as `address:order` strings in address order: equal snapshots, equal free memory. */
export function freeSnapshot(blocks: BuddyBlocks): string[] {
  return walkBlocks(blocks)
    .filter((block) => block.kind === 'free')
    .map((block) => `${hex(block.address)}:${block.order}`);
}
