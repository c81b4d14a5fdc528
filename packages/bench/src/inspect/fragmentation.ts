/**
 * The fragmentation figures of one moment of a heap (docs/heap-maps.md), the same for every
 * backend: what a walk of the arena shows (free bytes, free blocks, the largest free block,
 * headers, metadata, untouched bytes), what the backend counts (`usedBytes`), and what the
 * workload asked for, which the recording wrapper knows for every block even where the
 * backend keeps no requested sizes (size-class backends). `heaplab map` draws them beside
 * each map; `heaplab stats` prints them.
 */

import type { HeapRegion } from '@heaplab/core';

/** The figures of one moment; every byte count is whole bytes. */
export interface FragmentationFigures {
  /** Allocator calls the workload had made at this moment (malloc, free, realloc, ...). */
  calls: number;
  /** Bytes of the arena the walk tiles. */
  arenaBytes: number;
  /** Live regions of the walk. */
  liveBlocks: number;
  /** Bytes the workload asked for, over its live blocks (from the recording wrapper). */
  requestedBytes: number;
  /** Bytes of the live regions: what the backend granted (usable sizes). */
  grantedBytes: number;
  /**
   * The backend's `usedBytes` (live blocks with their headers and padding, as the backend
   * counts them): ArceOS's "occupied" bytes of its memory check.
   */
  usedBytes: number;
  /** Bytes of the free regions. */
  freeBytes: number;
  freeBlocks: number;
  /** The largest free region (0 when none). */
  largestFreeBlock: number;
  /**
   * The backend's own `stats().largestFreeBlock`: the most one `malloc` could get now. It
   * can exceed `largestFreeBlock` where free regions lie side by side that the backend can
   * hand out as one (mimalloc's free segments), or fall short of it (a size-class backend).
   */
  mallocableBytes: number;
  /** `1 - largestFreeBlock / freeBytes`; 0 when nothing is free. */
  externalFragmentation: number;
  /** `grantedBytes - requestedBytes`. */
  internalFragmentationBytes: number;
  /** `internalFragmentationBytes / grantedBytes`; 0 when nothing is live. */
  internalFragmentationShare: number;
  /** `(usedBytes - requestedBytes) / usedBytes`, ArceOS's extra memory rate; 0 when nothing is used. */
  extraMemoryRate: number;
  /** Bytes of `header` regions (a block's boundary tags, its padding before it). */
  headerBytes: number;
  /** Bytes of `metadata` regions (the backend's own structures inside the arena). */
  metadataBytes: number;
  /** Bytes of `untouched` regions (never handed out). */
  untouchedBytes: number;
}

/** The figures' names in the order tables and maps list them, each with its label and unit. */
export const FIGURE_ROWS: readonly { key: keyof FragmentationFigures; label: string; unit: 'bytes' | 'count' | 'share' }[] = [
  { key: 'calls', label: 'allocator calls', unit: 'count' },
  { key: 'liveBlocks', label: 'live blocks', unit: 'count' },
  { key: 'requestedBytes', label: 'requested', unit: 'bytes' },
  { key: 'grantedBytes', label: 'granted', unit: 'bytes' },
  { key: 'usedBytes', label: 'used', unit: 'bytes' },
  { key: 'freeBytes', label: 'free', unit: 'bytes' },
  { key: 'freeBlocks', label: 'free blocks', unit: 'count' },
  { key: 'largestFreeBlock', label: 'largest free block', unit: 'bytes' },
  { key: 'mallocableBytes', label: 'largest malloc now', unit: 'bytes' },
  { key: 'externalFragmentation', label: 'external fragmentation', unit: 'share' },
  { key: 'internalFragmentationBytes', label: 'internal fragmentation', unit: 'bytes' },
  { key: 'internalFragmentationShare', label: 'internal fragmentation share', unit: 'share' },
  { key: 'extraMemoryRate', label: 'extra memory rate', unit: 'share' },
  { key: 'headerBytes', label: 'headers', unit: 'bytes' },
  { key: 'metadataBytes', label: 'metadata', unit: 'bytes' },
  { key: 'untouchedBytes', label: 'untouched', unit: 'bytes' },
  { key: 'arenaBytes', label: 'arena', unit: 'bytes' },
];

/**
 * The figures of a walk.
 * @param regions the facade's walk (tiling the arena)
 * @param backend the backend's `stats()` at the same moment: its `usedBytes` and `largestFreeBlock`
 * @param requestedBytes what the workload's live blocks asked for
 * @param calls allocator calls so far
 */
export function fragmentationFigures(
  regions: readonly HeapRegion[],
  backend: { usedBytes: number; largestFreeBlock: number },
  requestedBytes: number,
  calls: number,
): FragmentationFigures {
  const { usedBytes } = backend;
  let arenaBytes = 0;
  let liveBlocks = 0;
  let grantedBytes = 0;
  let freeBytes = 0;
  let freeBlocks = 0;
  let largestFreeBlock = 0;
  let headerBytes = 0;
  let metadataBytes = 0;
  let untouchedBytes = 0;
  for (const region of regions) {
    arenaBytes += region.bytes;
    switch (region.kind) {
      case 'live':
        liveBlocks++;
        grantedBytes += region.bytes;
        break;
      case 'free':
        freeBlocks++;
        freeBytes += region.bytes;
        if (region.bytes > largestFreeBlock) largestFreeBlock = region.bytes;
        break;
      case 'header':
        headerBytes += region.bytes;
        break;
      case 'metadata':
        metadataBytes += region.bytes;
        break;
      case 'untouched':
        untouchedBytes += region.bytes;
        break;
    }
  }
  const internalFragmentationBytes = grantedBytes - requestedBytes;
  return {
    calls,
    arenaBytes,
    liveBlocks,
    requestedBytes,
    grantedBytes,
    usedBytes,
    freeBytes,
    freeBlocks,
    largestFreeBlock,
    mallocableBytes: backend.largestFreeBlock,
    externalFragmentation: freeBytes === 0 ? 0 : 1 - largestFreeBlock / freeBytes,
    internalFragmentationBytes,
    internalFragmentationShare: grantedBytes === 0 ? 0 : internalFragmentationBytes / grantedBytes,
    extraMemoryRate: usedBytes === 0 ? 0 : (usedBytes - requestedBytes) / usedBytes,
    headerBytes,
    metadataBytes,
    untouchedBytes,
  };
}

/** A figure as tables and maps show it: bytes with their exact count, shares as percentages. */
export function formatFigure(value: number, unit: 'bytes' | 'count' | 'share'): string {
  switch (unit) {
    case 'share':
      return `${(value * 100).toFixed(2)} %`;
    case 'count':
      return value.toLocaleString('en-US');
    case 'bytes':
      return value < 1024 ? `${value.toLocaleString('en-US')} B` : `${value.toLocaleString('en-US')} B (${shortBytes(value)})`;
  }
}

/** Bytes in KiB/MiB/GiB, three significant digits. */
export function shortBytes(bytes: number): string {
  if (bytes >= 1 << 30) return `${(bytes / (1 << 30)).toPrecision(3)} GiB`;
  if (bytes >= 1 << 20) return `${(bytes / (1 << 20)).toPrecision(3)} MiB`;
  if (bytes >= 1 << 10) return `${(bytes / (1 << 10)).toPrecision(3)} KiB`;
  return `${bytes} B`;
}
