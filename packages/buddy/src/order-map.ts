/**
 * Reading and writing order-map entries (their format is drawn in `layout.ts`).
 *
 * The map is what lets `free(address)` work without a size and refuse bad addresses: the
 * entry of an address's unit says whether a block starts there, of which order, and whether
 * it is live. The invariants that make it trustworthy:
 * 1. At rest (between operations), an entry has START set exactly when its unit is the first
 *    of a block (free or live). Every other entry has bit 7 clear, so an interior pointer, an
 *    address inside a free block or a double free finds no live start. Only first-unit
 *    entries are authoritative; the rest carry either nothing or the digits of the live
 *    block they lie in, which is why digits never set bit 7. Inside an operation a block may
 *    hold START entries written ahead of the store that exposes them: a walk jumps over
 *    them (see "What a dead thread leaves" in `layout.ts`).
 * 2. A FREE entry of order k marks exactly the blocks on the free list of order k.
 * 3. The entries of the map's own units (before blocksStart) are 0: no block starts there.
 * 4. A live byte block's order is `orderFor(requested, log2(align))` of what its digits
 *    record (`liveDigitsValid`).
 */

import { MIN_ORDER, orderFor, PAGE_ORDER } from './orders.js';
import {
  ALIGN_BASE_LOG,
  KIND_MASK,
  LIVE,
  LIVE_MIN,
  PAGES,
  START,
  LIVE_MIN_ALIGNED,
  ORDER_MASK,
  ORDER5_ALIGN_STRIDE,
  SLACK_DIGIT_BITS,
  UNIT_SHIFT,
} from './layout.js';

const DIGIT_MASK = (1 << SLACK_DIGIT_BITS) - 1;
const DIGIT_BASE = 1 << SLACK_DIGIT_BITS;
/** The largest order-5 digit: slack 32 with the largest alignment (32). */
const ORDER5_MAX_DIGIT = 32 + ORDER5_ALIGN_STRIDE * (MIN_ORDER + 1 - ALIGN_BASE_LOG);

/** The byte index of the entry of the unit holding `address`, in a pool whose map starts at `mapStart`. */
export function entryIndex(mapStart: number, address: number): number {
  return mapStart + ((address - mapStart) >>> UNIT_SHIFT);
}

/**
 * Digits holding the slack of a LIVE block of `order` (>= 6): the slack is at most
 * 2^order, `order + 1` bits. The alignment digit follows them.
 */
export function slackDigits(order: number): number {
  return ((order + SLACK_DIGIT_BITS) / SLACK_DIGIT_BITS) | 0;
}

/**
 * The start entry of a live byte block of `order` with `slack` unused bytes, allocated with
 * alignment 2^`alignLog` (at least 8; for order 4 with `alignLog` 4, `slack` is at most 14,
 * which `orderFor` ensures).
 */
export function liveCode(order: number, slack: number, alignLog: number): number {
  if (order === MIN_ORDER) return LIVE_MIN | (alignLog > ALIGN_BASE_LOG ? LIVE_MIN_ALIGNED + slack : slack);
  return LIVE | order;
}

/**
 * Writes the interior digits of a live byte block whose start entry is at `entry`: its slack
 * and alignment (nothing for order 4, whose start entry holds both). Callers write these
 * before the start entry when the block's units are still inside a larger block, so the
 * start entry's store commits them together (see `layout.ts`).
 */
export function writeLiveDigits(u8: Uint8Array, entry: number, order: number, slack: number, alignLog: number): void {
  if (order === MIN_ORDER) return;
  if (order === MIN_ORDER + 1) {
    u8[entry + 1] = slack + ORDER5_ALIGN_STRIDE * (alignLog - ALIGN_BASE_LOG);
    return;
  }
  const digits = slackDigits(order);
  let rest = slack;
  for (let i = 1; i <= digits; i++) {
    u8[entry + i] = rest & DIGIT_MASK;
    rest = (rest - (rest & DIGIT_MASK)) / DIGIT_BASE;
  }
  u8[entry + digits + 1] = alignLog - ALIGN_BASE_LOG;
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
  if (order === MIN_ORDER) {
    const code = u8[entry]! & ORDER_MASK;
    return code >= LIVE_MIN_ALIGNED ? code - LIVE_MIN_ALIGNED : code;
  }
  if (order === MIN_ORDER + 1) return u8[entry + 1]! % ORDER5_ALIGN_STRIDE;
  let slack = 0;
  let scale = 1;
  const digits = slackDigits(order);
  for (let i = 1; i <= digits; i++) {
    slack += u8[entry + i]! * scale;
    scale *= DIGIT_BASE;
  }
  return slack;
}

/** log2 of the alignment the live byte block of `order` at `entry` was allocated with (3 or more). */
export function readAlignLog(u8: Uint8Array, entry: number, order: number): number {
  if (order === MIN_ORDER) return (u8[entry]! & ORDER_MASK) >= LIVE_MIN_ALIGNED ? MIN_ORDER : ALIGN_BASE_LOG;
  if (order === MIN_ORDER + 1) return ALIGN_BASE_LOG + ((u8[entry + 1]! / ORDER5_ALIGN_STRIDE) | 0);
  return ALIGN_BASE_LOG + u8[entry + slackDigits(order) + 1]!;
}

/**
 * Whether the digits of the live byte block of `order` (5 to 30) at `entry` are valid: each
 * a 7-bit digit, and the slack and alignment they record call for exactly this order
 * (invariant 4). Order 4 has no digits: every code of its start entry is valid.
 */
export function liveDigitsValid(u8: Uint8Array, entry: number, order: number): boolean {
  if (order === MIN_ORDER) return true;
  let slack = 0;
  let alignLog = ALIGN_BASE_LOG;
  if (order === MIN_ORDER + 1) {
    const digit = u8[entry + 1]!;
    if (digit > ORDER5_MAX_DIGIT) return false;
    slack = digit % ORDER5_ALIGN_STRIDE;
    alignLog += (digit / ORDER5_ALIGN_STRIDE) | 0;
  } else {
    const digits = slackDigits(order);
    for (let i = 1, scale = 1; i <= digits; i++, scale *= DIGIT_BASE) {
      const digit = u8[entry + i]!;
      if (digit > DIGIT_MASK) return false;
      slack += digit * scale;
    }
    const alignDigit = u8[entry + digits + 1]!;
    if (alignDigit > order - ALIGN_BASE_LOG) return false;
    alignLog += alignDigit;
  }
  // Orders run to 30, so 1 << order is a positive small integer.
  const bytes = 1 << order;
  return slack <= bytes && orderFor(bytes - slack, alignLog) === order;
}

/** The smallest order a start entry of `kind` (its `KIND_MASK` bits) may carry. */
export function lowestOrderOf(kind: number): number {
  if (kind === PAGES) return PAGE_ORDER;
  if (kind === LIVE) return MIN_ORDER + 1;
  return MIN_ORDER;
}

/** The first entry in `[from, to)` with its START bit set; -1 when none. Reads words where it can. */
export function firstStartBit(u8: Uint8Array, u32: Uint32Array, from: number, to: number): number {
  let at = from;
  while (at < to && (at & 3) !== 0) {
    if ((u8[at]! & START) !== 0) return at;
    at++;
  }
  for (; at + 4 <= to; at += 4) {
    if ((u32[at >>> 2]! & 0x80808080) !== 0) break;
  }
  for (; at < to; at++) if ((u8[at]! & START) !== 0) return at;
  return -1;
}
