/**
 * The facade's half of `GlobalAllocator.walk()`: a backend reports the regions its own
 * structures describe; this file checks that they come in address order, inside the arena
 * and without overlaps, and fills what lies between them with `untouched` regions, so that
 * the result tiles the arena exactly:
 *
 *   arenaStart                                                        arenaEnd
 *   |untouched| metadata |live|hdr|live| free |untouched|  live  | free |
 *             ^ backend regions, in order                ^ the facade's gap fill
 *
 * A backend whose structures are damaged may report nonsense; that becomes `HeapCorrupted`
 * here rather than a map drawn from it. Regions the backend reports as `untouched` itself
 * (a segment it knows it never used) are kept, and merged with neighbouring gaps.
 */

import { AllocError, hex } from '../errors.js';
import type { HeapRegion, HeapRegionKind } from '../interfaces.js';

const KINDS: ReadonlySet<HeapRegionKind> = new Set(['live', 'free', 'header', 'metadata', 'untouched']);

/**
 * Collects what `walk` reports into regions tiling `[arenaStart, arenaEnd)`.
 * @throws AllocError `HeapCorrupted` when a region is out of order, overlaps the one before,
 *   leaves the arena, is empty or has no known kind
 */
export function tileArena(walk: (visit: (region: HeapRegion) => void) => void, arenaStart: number, arenaEnd: number): HeapRegion[] {
  const regions: HeapRegion[] = [];
  let cursor = arenaStart;
  const pushUntouched = (end: number): void => {
    const last = regions[regions.length - 1];
    if (last !== undefined && last.kind === 'untouched' && last.address + last.bytes === cursor) last.bytes += end - cursor;
    else regions.push({ address: cursor, bytes: end - cursor, kind: 'untouched' });
  };
  walk((region) => {
    const { address, bytes, kind } = region;
    const where = `walk region ${regions.length} (${String(kind)} at ${hex(address)}, ${bytes} bytes)`;
    if (!KINDS.has(kind)) throw new AllocError('HeapCorrupted', `${where} has no known kind`);
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(bytes) || bytes <= 0) {
      throw new AllocError('HeapCorrupted', `${where} is not a positive whole number of bytes at a whole address`);
    }
    if (address < cursor) {
      throw new AllocError('HeapCorrupted', `${where} starts before the end of the region before it (${hex(cursor)}): out of order or overlapping`);
    }
    if (address + bytes > arenaEnd) throw new AllocError('HeapCorrupted', `${where} runs past the arena's end ${hex(arenaEnd)}`);
    if (address > cursor) pushUntouched(address);
    cursor = address;
    if (kind === 'untouched') pushUntouched(address + bytes);
    else regions.push({ ...region });
    cursor = address + bytes;
  });
  if (cursor < arenaEnd) pushUntouched(arenaEnd);
  return regions;
}
