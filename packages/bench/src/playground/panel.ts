/// <reference lib="dom" />
/**
 * One backend's panel: its heap map, its figures and its own tables (free lists, bins,
 * orders, size classes: whatever `classStats()` reports). `render` redraws all three from
 * one `stats()`, one `walk()` and one `classStats()` taken together, and keeps that
 * `stats()` in the panel's `data-stats` attribute, so what the figures say can be checked
 * against what the backend said.
 */

import type { HeapRegion, HeapStats, StatsTable } from '@heaplab/core';

import { type PlayCounts, panelFigures } from './figures.js';
import { drawHeapMap, usedSpan } from './heap-map-canvas.js';
import type { HeapSession } from './heap-session.js';

/** How much of the arena a map shows: all of it, or its used part (`usedSpan`). */
export type MapExtent = 'arena' | 'used';

/** `bytes` in KiB or MiB, as map captions say spans. */
function spanText(bytes: number): string {
  return bytes >= 1048576 ? `${(bytes / 1048576).toFixed(0)} MiB` : `${(bytes / 1024).toFixed(0)} KiB`;
}

/** Rows of a backend table shown (a size-class table can have dozens; the rest are summed up in a line). */
const TABLE_ROWS = 24;

/** Makes an element with a class and optional text. */
function element<K extends keyof HTMLElementTagNameMap>(tag: K, className: string, text?: string): HTMLElementTagNameMap[K] {
  const made = document.createElement(tag);
  if (className !== '') made.className = className;
  if (text !== undefined) made.textContent = text;
  return made;
}

/** A backend's `classStats()` table as an HTML table, its first `TABLE_ROWS` rows. */
function statsTable(table: StatsTable): HTMLElement {
  const section = element('section', 'backend-table');
  section.append(element('h4', '', table.name), element('p', 'table-description', table.description));
  const html = element('table', '');
  const head = html.createTHead().insertRow();
  for (const column of table.columns) head.append(element('th', '', column.label));
  const body = html.createTBody();
  for (const row of table.rows.slice(0, TABLE_ROWS)) {
    const line = body.insertRow();
    for (const column of table.columns) {
      const value = row[column.key];
      line.append(
        element('td', typeof value === 'number' ? 'number' : '', value === undefined ? '' : typeof value === 'number' ? value.toLocaleString('en-US') : value),
      );
    }
  }
  section.append(html);
  if (table.rows.length > TABLE_ROWS) section.append(element('p', 'table-description', `… and ${table.rows.length - TABLE_ROWS} more rows`));
  if (table.rows.length === 0) section.append(element('p', 'table-description', '(empty)'));
  return section;
}

/** The panel of one session, added to `container`. */
export class BackendPanel {
  readonly root: HTMLElement;
  private readonly canvas: HTMLCanvasElement;
  private readonly figures: HTMLTableSectionElement;
  private readonly tables: HTMLElement;
  private readonly caption: HTMLElement;

  constructor(
    container: HTMLElement,
    readonly session: HeapSession,
  ) {
    this.root = element('article', 'backend-panel');
    this.root.dataset['backend'] = session.choice.label;
    const title = element('h2', '', session.choice.label);
    this.caption = element('p', 'map-caption');
    this.canvas = element('canvas', 'heap-map');
    this.canvas.setAttribute('role', 'img');
    this.canvas.setAttribute('aria-label', `heap map of ${session.choice.label}`);
    const figureTable = element('table', 'figures');
    this.figures = figureTable.createTBody();
    this.tables = element('div', 'backend-tables');
    this.root.append(title, this.caption, this.canvas, figureTable, this.tables);
    container.append(this.root);
  }

  /** Redraws the map (over `extent` of the arena), figures and tables from the heap as it is now. */
  render(extent: MapExtent): void {
    const { heap, trace } = this.session;
    const stats: HeapStats = heap.stats();
    const regions: HeapRegion[] = heap.supportsWalk() ? heap.walk() : [];
    const tables = heap.classStats();
    const arenaBytes = heap.arenaEnd - heap.arenaStart;
    const span = extent === 'used' ? usedSpan(regions, heap.arenaStart, arenaBytes) : arenaBytes;
    drawHeapMap(this.canvas, regions, heap.arenaStart, span);
    const shown = span < arenaBytes ? `the first ${spanText(span)} of a ${spanText(arenaBytes)} arena` : `a ${spanText(arenaBytes)} arena`;
    this.caption.textContent = `${shown}, ${regions.length.toLocaleString('en-US')} regions; ${
      trace.threads > 1 ? `${trace.threads - 1} web worker${trace.threads > 2 ? 's' : ''} attached` : 'the page alone'
    }`;
    const counts: PlayCounts = { done: this.session.done, total: trace.requests.length, ...this.session.outcome };
    this.figures.replaceChildren(
      ...panelFigures(stats, counts).map((figure) => {
        const row = element('tr', '');
        const value = element('td', 'number', figure.text);
        value.dataset['figure'] = figure.key;
        row.append(element('th', '', figure.label), value);
        return row;
      }),
    );
    this.tables.replaceChildren(...tables.map(statsTable));
    this.root.dataset['stats'] = JSON.stringify(stats);
    this.root.dataset['play'] = JSON.stringify(counts);
  }
}
