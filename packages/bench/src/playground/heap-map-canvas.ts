/// <reference lib="dom" />
/**
 * A heap map drawn on a canvas, live: the arena as `MAP_ROWS` rows of `MAP_COLUMNS` pixels,
 * read like text, each pixel the same number of bytes and coloured as `heaplab map` colours
 * its SVGs (inspect/heap-map-svg.ts: the same kind colours, each kind present in a pixel
 * weighed by its bytes there but never below `MIN_KIND_WEIGHT`, so a 16-byte header still
 * tints a pixel of kilobytes).
 */

import type { HeapRegion, HeapRegionKind } from '@heaplab/core';

import { blendPixel, KIND_COLOURS, kindBytesPerPixel, MAP_COLUMNS, MAP_ROWS } from '../inspect/heap-map-svg.js';

/** Bytes each pixel of a map of `spanBytes` stands for (the last pixels may be partly past the span). */
export function bytesPerPixel(spanBytes: number): number {
  return Math.max(1, Math.ceil(spanBytes / (MAP_ROWS * MAP_COLUMNS)));
}

/**
 * Draws `regions` (a walk tiling the arena from `arenaStart`) on `canvas`, which it sizes to
 * `MAP_COLUMNS` × `MAP_ROWS` pixels: the first `spanBytes` of the arena (all of it, or the
 * used part: `usedSpan`); what lies beyond is not drawn, and pixels past the span stay blank.
 */
export function drawHeapMap(canvas: HTMLCanvasElement, regions: readonly HeapRegion[], arenaStart: number, spanBytes: number): void {
  canvas.width = MAP_COLUMNS;
  canvas.height = MAP_ROWS;
  const perPixel = bytesPerPixel(spanBytes);
  const kindBytes = kindBytesPerPixel(regions, arenaStart, perPixel, { clip: true });
  const context = canvas.getContext('2d');
  if (context === null) throw new Error('this browser gives no 2D canvas context');
  const image = context.createImageData(MAP_COLUMNS, MAP_ROWS);
  for (let pixel = 0; pixel < MAP_ROWS * MAP_COLUMNS; pixel++) {
    const blended = blendPixel(kindBytes, pixel, perPixel);
    if (blended === null) continue;
    image.data[pixel * 4] = blended.red;
    image.data[pixel * 4 + 1] = blended.green;
    image.data[pixel * 4 + 2] = blended.blue;
    image.data[pixel * 4 + 3] = 255;
  }
  context.putImageData(image, 0, 0);
}

/** The least span a map of the used part shows: 64 KiB, 2 bytes a pixel. */
const MIN_MAP_SPAN = 64 * 1024;

/**
 * Bytes from the arena's start a map of its *used part* shows: up to the end of the last
 * live block (with its header), rounded up to a power of two (at least `MIN_MAP_SPAN`, at
 * most the arena), so a small heap's blocks are not lost in a 4 MiB strip and the scale
 * changes only when the heap grows past a power of two. Metadata does not count: TLSF's
 * sentinel at the pool's end would stretch every map to the whole arena.
 */
export function usedSpan(regions: readonly HeapRegion[], arenaStart: number, arenaBytes: number): number {
  let end = 0;
  for (const region of regions) {
    if (region.kind === 'live' || region.kind === 'header') end = Math.max(end, region.address + region.bytes - arenaStart);
  }
  let span = MIN_MAP_SPAN;
  while (span < end) span *= 2;
  return Math.min(span, arenaBytes);
}

/** The legend's entries: each kind with its colour. */
export function legendEntries(): { kind: HeapRegionKind; colour: string }[] {
  return (Object.keys(KIND_COLOURS) as HeapRegionKind[]).map((kind) => ({ kind, colour: KIND_COLOURS[kind] }));
}
