/**
 * Reading and writing order-map entries (their format is drawn in `state-layout.ts`).
 *
 * The map is what lets `free(address)` work without a size and refuse bad addresses: the
 * entry of an address's unit says whether a block starts there, of which order, and whether
 * it is live. The invariants that make it trustworthy:
 * 1. An entry has START set exactly when its unit is the first of a block (free or live).
 *    Every other entry has bit 7 clear, so an interior pointer, an address inside a free
 *    block or a double free finds no live start. Only first-unit entries are authoritative;
 *    the rest carry either nothing or the slack digits of the block they lie in, which is
 *    why they must never set bit 7.
 * 2. A FREE entry of order k marks exactly the blocks on the free list of order k.
 * 3. The entries of the map's own units (before blocksStart) are 0: no block starts there.
 */

import { MIN_ORDER } from './orders.js';
import {
  KIND_MASK,
  LIVE,
  LIVE_MIN,
  ORDER_MASK,
  SLACK_DIGIT_BITS,
  UNIT_SHIFT,
} from './state-layout.js';

const DIGIT_MASK = (1 << SLACK_DIGIT_BITS) - 1;
const DIGIT_BASE = 1 << SLACK_DIGIT_BITS;

/** The byte index of the entry of the unit holding `address`, in a pool whose map starts at `mapStart`. */
export function entryIndex(mapStart: number, address: number): number {
  return mapStart + ((address - mapStart) >>> UNIT_SHIFT);
}

/**
 * Digits holding the slack of a LIVE block of `order` (> MIN_ORDER): the slack is at most
 * 2^order, `order + 1` bits. A block of order k has 2^(k-4) - 1 interior entries, always
 * enough: 1 digit for orders 5 and 6, 2 for 7 to 13, ... 5 for 28 to 30.
 */
export function slackDigits(order: number): number {
  return ((order + SLACK_DIGIT_BITS) / SLACK_DIGIT_BITS) | 0;
}

/**
 * Marks the block whose entry is at `entry` as a live byte block of `order` with `slack`
 * unused bytes: in the entry itself for the smallest blocks, else in the digits after it.
 */
export function writeLive(u8: Uint8Array, entry: number, order: number, slack: number): void {
  if (order === MIN_ORDER) {
    u8[entry] = LIVE_MIN | slack;
    return;
  }
  u8[entry] = LIVE | order;
  const digits = slackDigits(order);
  let rest = slack;
  for (let i = 1; i <= digits; i++) {
    u8[entry + i] = rest & DIGIT_MASK;
    rest = (rest - (rest & DIGIT_MASK)) / DIGIT_BASE;
  }
}

/** The order of the block whose start entry is `code` (any kind; START must be set). */
export function startOrder(code: number): number {
  return (code & KIND_MASK) === LIVE_MIN ? MIN_ORDER : code & ORDER_MASK;
}

/** The order of the live byte block whose start entry is `code`, or -1 when `code` is no such entry. */
export function liveOrder(code: number): number {
  const kind = code & KIND_MASK;
  if (kind === LIVE) return code & ORDER_MASK;
  return kind === LIVE_MIN ? MIN_ORDER : -1;
}

/** The slack of the live byte block of `order` whose start entry is at `entry`. */
export function readSlack(u8: Uint8Array, entry: number, order: number): number {
  if (order === MIN_ORDER) return u8[entry]! & ORDER_MASK;
  let slack = 0;
  let scale = 1;
  const digits = slackDigits(order);
  for (let i = 1; i <= digits; i++) {
    slack += u8[entry + i]! * scale;
    scale *= DIGIT_BASE;
  }
  return slack;
}
