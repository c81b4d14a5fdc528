/**
 * `blockLayout(address)`: the layouts `dealloc` may free a live block with. mimalloc keeps
 * no requested size, so for a block of a size class it answers with the class:
 *
 * - sizes: exactly those whose own class is the block's (`binOfSize`), so size 0 or another
 *   class's size is refused; and, on a page that served an aligned request whose size alone
 *   maps to a smaller class (`PAGE_ALIGNED`), also the sizes an aligned request of an
 *   alignment the class gives maps to the block's class (`alignedAlloc(64, 100)` takes a
 *   block of the 128-byte class, and `dealloc` must take `{ size: 100, align: 64 }` back);
 * - alignments: from `MIN_ALIGN` up to the one every block of the class has (its block
 *   size's natural alignment, at most the page's): an alignment the class does not give is
 *   refused even where this address happens to satisfy it.
 *
 * A huge block is served outside the classes: the sizes whose request gets exactly its span,
 * and the alignments whose request puts it at its offset in the span.
 */

import type { BlockLayout } from '@heaplab/core/backend';

import type { MiContext } from './context.js';
import { validateBlock } from './free.js';
import { hugeBlockSegment, hugeUsable } from './internal.js';
import { BLOCK_ALIGN, MAP_SHIFT_BITS, PAGE_ALIGNED, PG_BIN, PG_FLAGS, SEGMENT_BYTES, SEGMENT_HEADER_BYTES, SG_HUGE_BLOCK, SG_SPAN } from './layout.js';
import { BIN_BLOCK_SIZE, blockSizeOfBin, LARGE_OBJ_SIZE_MAX, naturalAlignment } from './size-classes.js';

/** core's `MAX_ALIGN`: no layout asks for more. */
const MAX_ALIGN = 2 ** 30;

/**
 * The layouts the live block at `address` may be freed with.
 * @throws AllocError `NotAllocated` when `address` is not the start of a live block
 */
export function blockLayoutOf(t: MiContext, address: number): BlockLayout {
  const page = validateBlock(t, address);
  if (page === 0) return hugeLayout(t, hugeBlockSegment(t, address));
  const u32 = t.u32;
  const bin = u32[(page + PG_BIN) >>> 2]!;
  const blockSize = BIN_BLOCK_SIZE[bin]!;
  const maxAlign = naturalAlignment(blockSize, 2 ** (t.mapOf(page) >>> MAP_SHIFT_BITS));
  let minSize = bin === 1 ? 0 : blockSizeOfBin(bin - 1) + 1;
  if ((u32[(page + PG_FLAGS) >>> 2]! & PAGE_ALIGNED) !== 0) {
    for (let align = 2 * BLOCK_ALIGN; align <= maxAlign; align *= 2) minSize = Math.min(minSize, smallestAligned(bin, align));
  }
  return { minSize, maxSize: blockSize, minAlign: BLOCK_ALIGN, maxAlign };
}

/**
 * The smallest size that a request aligned to `align` (a power of two dividing the bin's
 * block size) maps to `bin` (`binForAligned`): one more than the largest smaller block size
 * that `align` divides, or 0 when there is none (the request's size rounds up to `align`,
 * which is then the bin's block size).
 */
function smallestAligned(bin: number, align: number): number {
  for (let smaller = bin - 1; smaller >= 1; smaller--) {
    if (BIN_BLOCK_SIZE[smaller]! % align === 0) return BIN_BLOCK_SIZE[smaller]! + 1;
  }
  return 0;
}

/** The layouts of the huge block whose first segment is `segment`. */
function hugeLayout(t: MiContext, segment: number): BlockLayout {
  const u32 = t.u32;
  const block = u32[(segment + SG_HUGE_BLOCK) >>> 2]!;
  const span = u32[(segment + SG_SPAN) >>> 2]!;
  const offset = block - segment;
  const lowest = block & -block;
  if (offset === SEGMENT_BYTES) {
    // Aligned to a segment or more: a span of 1 + ceil(size / segment) segments, at least 2.
    return {
      minSize: span === 2 ? 0 : (span - 2) * SEGMENT_BYTES + 1,
      maxSize: hugeUsable(span, offset),
      minAlign: SEGMENT_BYTES,
      maxAlign: Math.min(lowest === 0 ? MAX_ALIGN : lowest >>> 0, MAX_ALIGN),
    };
  }
  // The offset is the header rounded up to the request's alignment: the alignments that
  // give this offset, up to the lowest set bit of the block's address.
  let minAlign = BLOCK_ALIGN;
  while (roundUp(SEGMENT_HEADER_BYTES, minAlign) !== offset && minAlign < SEGMENT_BYTES) minAlign *= 2;
  return {
    minSize: Math.max(LARGE_OBJ_SIZE_MAX, hugeUsable(span - 1, offset)) + 1,
    maxSize: hugeUsable(span, offset),
    minAlign,
    maxAlign: Math.min(offset & -offset, SEGMENT_BYTES / 2),
  };
}

function roundUp(value: number, align: number): number {
  return Math.ceil(value / align) * align;
}
