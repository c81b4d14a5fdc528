/**
 * A heap map as an SVG (docs/heap-maps.md): the arena as a strip of `MAP_ROWS` rows of
 * `MAP_COLUMNS` pixels, read like text (left to right, then the next row down), each pixel
 * a fixed number of bytes, coloured by the kinds of region in it; a legend; the fragmentation
 * figures beside the strip. Regions of at least `TOOLTIP_MIN_PIXELS` pixels carry a
 * `<title>` tooltip (address, bytes, kind, what the backend says of it).
 *
 * A pixel usually holds parts of several regions. Its colour mixes the colours of the kinds
 * in it, each kind weighed by its bytes there but never below `MIN_KIND_WEIGHT` of the pixel:
 * a region far smaller than a pixel (a 16-byte header in a 2 KiB pixel) still tints it.
 */

import type { HeapRegion, HeapRegionKind } from '@heaplab/core';

import { FIGURE_ROWS, type FragmentationFigures, formatFigure, shortBytes } from './fragmentation.js';

/** Rows of the strip. */
export const MAP_ROWS = 64;
/** Pixel columns of a row. The arena (a multiple of 4 MiB) divides into whole bytes per pixel. */
export const MAP_COLUMNS = 512;
/** Height of a row, in SVG units. */
const ROW_HEIGHT = 6;
/** The least weight a kind present in a pixel has in its colour (see the file comment). */
export const MIN_KIND_WEIGHT = 0.25;
/** Regions this many pixels long or more get a tooltip. */
const TOOLTIP_MIN_PIXELS = 2;
/** At most this many tooltips (the largest regions): a map of a heap of 100,000 blocks stays small. */
const MAX_TOOLTIPS = 3000;

/** The kinds in the order the legend lists them, with their colours. */
export const KIND_COLOURS: Readonly<Record<HeapRegionKind, string>> = {
  live: '#e4572e',
  header: '#6a3d9a',
  free: '#76b041',
  metadata: '#2e86ab',
  untouched: '#e8e8e8',
};
const KINDS = Object.keys(KIND_COLOURS) as HeapRegionKind[];
const KIND_RGB = KINDS.map((kind) => {
  const hex = Number.parseInt(KIND_COLOURS[kind].slice(1), 16);
  return [(hex >> 16) & 0xff, (hex >> 8) & 0xff, hex & 0xff] as const;
});

/** What a map is of. */
export interface MapCaption {
  backend: string;
  workload: string;
  /** The moment, `50%`. */
  at: string;
}

/** Escapes text for XML content and attribute values. */
function xml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** One pixel's colour and the kinds in it. */
interface Pixel {
  colour: string;
  /** The kinds with bytes in it, space-separated (`data-kinds`). */
  kinds: string;
}

/**
 * Bytes of each kind in each pixel: `MAP_ROWS * MAP_COLUMNS` pixels of `KINDS.length` counts.
 * @param clip drop what lies past the last pixel (a live map of the arena's used part)
 *   instead of refusing it
 * @throws Error when, unclipped, the regions do not tile `[arenaStart, arenaStart + arenaBytes)`
 */
export function kindBytesPerPixel(
  regions: readonly HeapRegion[],
  arenaStart: number,
  bytesPerPixel: number,
  { clip = false }: { clip?: boolean } = {},
): Float64Array {
  const pixels = MAP_ROWS * MAP_COLUMNS;
  const bytes = new Float64Array(pixels * KINDS.length);
  for (const region of regions) {
    const kind = KINDS.indexOf(region.kind);
    let from = region.address - arenaStart;
    let end = from + region.bytes;
    if (clip) end = Math.min(end, pixels * bytesPerPixel);
    else if (from < 0 || end > pixels * bytesPerPixel) throw new Error(`region at ${region.address} lies outside the mapped arena`);
    while (from < end) {
      const pixel = Math.floor(from / bytesPerPixel);
      const pixelEnd = Math.min(end, (pixel + 1) * bytesPerPixel);
      bytes[pixel * KINDS.length + kind]! += pixelEnd - from;
      from = pixelEnd;
    }
  }
  return bytes;
}

/** A pixel's blended colour channels (0 to 255) and the kinds present in it. */
export interface BlendedPixel {
  red: number;
  green: number;
  blue: number;
  kinds: HeapRegionKind[];
}

/** The colour of pixel `pixel` (see the file comment); null for a pixel with no bytes. */
export function blendPixel(bytes: Float64Array, pixel: number, bytesPerPixel: number): BlendedPixel | null {
  let red = 0;
  let green = 0;
  let blue = 0;
  let total = 0;
  const kinds: HeapRegionKind[] = [];
  for (let kind = 0; kind < KINDS.length; kind++) {
    const share = bytes[pixel * KINDS.length + kind]! / bytesPerPixel;
    if (share === 0) continue;
    const weight = Math.max(share, MIN_KIND_WEIGHT);
    const [r, g, b] = KIND_RGB[kind]!;
    red += r * weight;
    green += g * weight;
    blue += b * weight;
    total += weight;
    kinds.push(KINDS[kind]!);
  }
  if (total === 0) return null;
  return { red: Math.round(red / total), green: Math.round(green / total), blue: Math.round(blue / total), kinds };
}

/** The SVG colour of pixel `pixel`. */
function pixelOf(bytes: Float64Array, pixel: number, bytesPerPixel: number): Pixel {
  const blended = blendPixel(bytes, pixel, bytesPerPixel);
  if (blended === null) return { colour: '#000000', kinds: '' };
  const channel = (value: number): string => value.toString(16).padStart(2, '0');
  return { colour: `#${channel(blended.red)}${channel(blended.green)}${channel(blended.blue)}`, kinds: blended.kinds.join(' ') };
}

/** A region's tooltip text. */
function tooltip(region: HeapRegion): string {
  const parts = [`${region.kind} at 0x${region.address.toString(16)}, ${region.bytes.toLocaleString('en-US')} B`];
  if (region.requested !== undefined) parts.push(`requested ${region.requested.toLocaleString('en-US')} B`);
  if (region.detail !== undefined) parts.push(region.detail);
  if (region.thread !== undefined) parts.push(`thread ${region.thread}`);
  return parts.join(', ');
}

/**
 * The SVG of one moment.
 * @param regions the walk, tiling `[arenaStart, arenaStart + figures.arenaBytes)`
 * @throws Error when the arena does not divide into `MAP_ROWS * MAP_COLUMNS` whole pixels
 */
export function heapMapSvg(regions: readonly HeapRegion[], arenaStart: number, figures: FragmentationFigures, caption: MapCaption): string {
  const arenaBytes = figures.arenaBytes;
  const pixels = MAP_ROWS * MAP_COLUMNS;
  if (arenaBytes <= 0 || arenaBytes % pixels !== 0) throw new Error(`an arena of ${arenaBytes} bytes does not divide into ${pixels} pixels`);
  const bytesPerPixel = arenaBytes / pixels;
  const bytesPerRow = bytesPerPixel * MAP_COLUMNS;
  const kindBytes = kindBytesPerPixel(regions, arenaStart, bytesPerPixel);

  const left = 84;
  const top = 64;
  const stripWidth = MAP_COLUMNS;
  const stripHeight = MAP_ROWS * ROW_HEIGHT;
  const figuresX = left + stripWidth + 24;
  const width = figuresX + 360;
  const legendY = top + stripHeight + 22;
  const height = Math.max(legendY + 40, top + 20 * (FIGURE_ROWS.length + 1));
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="12">`,
    `<title>${xml(`heap map: ${caption.backend}, ${caption.workload} at ${caption.at}`)}</title>`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="600">${xml(`${caption.backend} — ${caption.workload} at ${caption.at}`)}</text>`,
    `<text x="${left}" y="40" fill="#444">${xml(
      `Arena of ${shortBytes(arenaBytes)} from 0x${arenaStart.toString(16)}, read left to right then down: ${MAP_ROWS} rows of ${shortBytes(bytesPerRow)}, ` +
        `one pixel column = ${bytesPerPixel.toLocaleString('en-US')} B.`,
    )}</text>`,
    `<text x="${left}" y="54" fill="#444">${xml(
      `A pixel mixes the colours of the kinds in it by their bytes, each kind present weighing at least ${MIN_KIND_WEIGHT * 100} %, so a region smaller than a pixel still shows.`,
    )}</text>`,
  );
  // Row offsets every 8 rows.
  for (let row = 0; row < MAP_ROWS; row += 8) {
    out.push(
      `<text x="${left - 6}" y="${top + row * ROW_HEIGHT + ROW_HEIGHT}" text-anchor="end" fill="#666" font-size="10">+${xml(shortBytes(row * bytesPerRow))}</text>`,
    );
  }
  // The strip: runs of pixels of one colour become one rectangle.
  out.push('<g class="strip" shape-rendering="crispEdges">');
  for (let row = 0; row < MAP_ROWS; row++) {
    let runStart = 0;
    let run = pixelOf(kindBytes, row * MAP_COLUMNS, bytesPerPixel);
    for (let column = 1; column <= MAP_COLUMNS; column++) {
      const next = column < MAP_COLUMNS ? pixelOf(kindBytes, row * MAP_COLUMNS + column, bytesPerPixel) : null;
      if (next !== null && next.colour === run.colour && next.kinds === run.kinds) continue;
      out.push(
        `<rect x="${left + runStart}" y="${top + row * ROW_HEIGHT}" width="${column - runStart}" height="${ROW_HEIGHT}" fill="${run.colour}" data-kinds="${run.kinds}"/>`,
      );
      if (next !== null) {
        run = next;
        runStart = column;
      }
    }
  }
  out.push('</g>');
  // Tooltips over the largest regions, one transparent rectangle per row a region crosses.
  const large = regions
    .filter((region) => region.bytes >= TOOLTIP_MIN_PIXELS * bytesPerPixel)
    .sort((a, b) => b.bytes - a.bytes)
    .slice(0, MAX_TOOLTIPS);
  out.push('<g class="tooltips" fill="#000" fill-opacity="0">');
  for (const region of large) {
    const from = (region.address - arenaStart) / bytesPerPixel;
    const to = from + region.bytes / bytesPerPixel;
    const shapes: string[] = [];
    for (let row = Math.floor(from / MAP_COLUMNS); row < MAP_ROWS && row * MAP_COLUMNS < to; row++) {
      const x0 = Math.max(from, row * MAP_COLUMNS) - row * MAP_COLUMNS;
      const x1 = Math.min(to, (row + 1) * MAP_COLUMNS) - row * MAP_COLUMNS;
      shapes.push(`<rect x="${(left + x0).toFixed(2)}" y="${top + row * ROW_HEIGHT}" width="${(x1 - x0).toFixed(2)}" height="${ROW_HEIGHT}"/>`);
    }
    out.push(`<g data-kind="${region.kind}"><title>${xml(tooltip(region))}</title>${shapes.join('')}</g>`);
  }
  out.push('</g>');
  out.push(`<rect x="${left - 0.5}" y="${top - 0.5}" width="${stripWidth + 1}" height="${stripHeight + 1}" fill="none" stroke="#999"/>`);
  // The legend: every kind, with its share of the arena.
  const shareOf = new Map<HeapRegionKind, number>(KINDS.map((kind) => [kind, 0]));
  for (const region of regions) shareOf.set(region.kind, shareOf.get(region.kind)! + region.bytes);
  let legendX = left;
  for (const kind of KINDS) {
    const label = `${kind} ${((shareOf.get(kind)! / arenaBytes) * 100).toFixed(1)} %`;
    out.push(
      `<g class="legend" data-kind="${kind}"><rect x="${legendX}" y="${legendY - 10}" width="12" height="12" fill="${KIND_COLOURS[kind]}" stroke="#888" stroke-width="0.5"/>` +
        `<text x="${legendX + 16}" y="${legendY}">${xml(label)}</text></g>`,
    );
    legendX += 28 + label.length * 7;
  }
  // The figures beside the strip.
  out.push(`<g class="figures"><text x="${figuresX}" y="${top + 4}" font-weight="600">figures</text>`);
  FIGURE_ROWS.forEach((row, index) => {
    const y = top + 24 + index * 20;
    out.push(
      `<text x="${figuresX}" y="${y}" fill="#444">${xml(row.label)}</text>` +
        `<text x="${width - 12}" y="${y}" text-anchor="end" data-figure="${row.key}">${xml(formatFigure(figures[row.key], row.unit))}</text>`,
    );
  });
  out.push('</g></svg>');
  return `${out.join('\n')}\n`;
}
