/**
 * The figures a backend panel shows, each read from the `stats()` the panel was drawn with
 * (or from the play's own counts), so a figure on the page is always the backend's own
 * number. The browser test reads them back and compares them with the same `stats()`.
 */

import type { HeapStats } from '@heaplab/core';

/** One figure: its key (the `data-figure` attribute), label, and value. */
export interface Figure {
  key: string;
  label: string;
  /** What the panel shows: a whole number, or a percentage with one decimal. */
  text: string;
}

/** `1234567` as `1,234,567`: exact, so a reader (and the test) can compare it with `stats()`. */
export function wholeNumber(value: number): string {
  return value.toLocaleString('en-US');
}

/**
 * External fragmentation as `stats()` gives it: the share of the free bytes that one malloc
 * cannot get, `1 - largestFreeBlock / availableBytes`; 0 when nothing is free.
 */
export function externalFragmentation(stats: HeapStats): number {
  return stats.availableBytes > 0 ? Math.max(0, 1 - stats.largestFreeBlock / stats.availableBytes) : 0;
}

/** The play's own counts, beside the backend's. */
export interface PlayCounts {
  done: number;
  total: number;
  failed: number;
  remoteFrees: number;
}

/** The figures of one panel, in the order it lists them. */
export function panelFigures(stats: HeapStats, play: PlayCounts): Figure[] {
  return [
    { key: 'requests', label: 'requests played', text: `${wholeNumber(play.done)} / ${wholeNumber(play.total)}` },
    { key: 'remoteFrees', label: 'remote frees', text: wholeNumber(play.remoteFrees) },
    { key: 'failed', label: 'refused (no room)', text: wholeNumber(play.failed) },
    { key: 'liveBlocks', label: 'live blocks', text: wholeNumber(stats.liveBlocks) },
    // Blocks a thread cache holds are live to the backend and free to the program; without
    // this line a finished workload that freed everything would seem to leak them.
    { key: 'cachedBlocks', label: '… of which in thread caches', text: stats.threadCache === null ? 'no cache' : wholeNumber(stats.threadCache.blocks) },
    { key: 'grantedBytes', label: 'live bytes (granted)', text: wholeNumber(stats.grantedBytes) },
    { key: 'usedBytes', label: 'used bytes', text: wholeNumber(stats.usedBytes) },
    { key: 'availableBytes', label: 'free bytes', text: wholeNumber(stats.availableBytes) },
    { key: 'totalBytes', label: 'managed bytes', text: wholeNumber(stats.totalBytes) },
    { key: 'freeBlocks', label: 'free blocks', text: wholeNumber(stats.freeBlocks) },
    { key: 'largestFreeBlock', label: 'largest free block', text: wholeNumber(stats.largestFreeBlock) },
    { key: 'externalFragmentation', label: 'fragmentation (external)', text: `${(100 * externalFragmentation(stats)).toFixed(1)} %` },
    { key: 'peakUsedBytes', label: 'peak used bytes', text: wholeNumber(stats.peakUsedBytes) },
  ];
}
