import { describe, expect, it } from 'vitest';

import { renderTable, TEXT_WIDTH, textWidthOf, wrapText } from '../src/report/text-table.js';
import { widestLine } from './text-width.js';

const HEADERS = ['backend', 'threads', 'rate', 'vs best', 'cpu', 'peak', 'touched'];
const ROWS = [
  ['basic:strategy=worst-fit', '1', '2.00 M/s', '0.50x', '1.02', '97.7 KiB', '-'],
  ['tlsf', '2', '4.00 M/s', '1.00x', '-', '87.9 KiB', '-'],
];
const RIGHT = new Set([1, 2, 3, 4, 5, 6]);

describe('renderTable', () => {
  it('lays out one table when it fits, numbers right-aligned', () => {
    expect(renderTable(HEADERS, ROWS, RIGHT, { width: 200 })).toBe(
      [
        'backend                   threads      rate  vs best   cpu      peak  touched',
        '------------------------  -------  --------  -------  ----  --------  -------',
        'basic:strategy=worst-fit        1  2.00 M/s    0.50x  1.02  97.7 KiB        -',
        'tlsf                            2  4.00 M/s    1.00x     -  87.9 KiB        -',
      ].join('\n'),
    );
  });

  it('leaves out a column without a figure only when the table is too wide', () => {
    const text = renderTable(HEADERS, ROWS, RIGHT, { width: 70 });
    expect(text.split('\n')[0]).toBe('backend                   threads      rate  vs best   cpu      peak');
    expect(widestLine(text)).toBeLessThanOrEqual(70);
  });

  it('keeps every header of a table without rows, split', () => {
    const text = renderTable(HEADERS, [], RIGHT, { width: 30 });
    const headerLines = text.split('\n\n').map((table) => table.split('\n')[0]!);
    expect(headerLines.length).toBeGreaterThan(1);
    expect(headerLines.flatMap((line) => line.split(/ {2,}/).slice(1))).toEqual(HEADERS.slice(1));
    expect(widestLine(text)).toBeLessThanOrEqual(30);
  });

  it('splits a wide table into tables that repeat the key columns, whole groups first', () => {
    const text = renderTable(HEADERS, ROWS, RIGHT, { width: 60, keyColumns: 2, groupStarts: [2, 5] });
    const tables = text.split('\n\n');
    expect(tables.map((table) => table.split('\n')[0])).toEqual([
      'backend                   threads      rate  vs best   cpu',
      'backend                   threads      peak',
    ]);
    expect(tables[1]!.split('\n')[3]).toBe('tlsf                            2  87.9 KiB');
    for (const table of tables) expect(widestLine(table)).toBeLessThanOrEqual(60);
  });

  it('splits a group that does not fit alone where it must, and keeps every figure', () => {
    const text = renderTable(HEADERS, ROWS, RIGHT, { width: 48, keyColumns: 2, groupStarts: [2] });
    expect(text.split('\n\n').map((table) => table.split('\n')[0])).toEqual([
      'backend                   threads      rate',
      'backend                   threads  vs best   cpu',
      'backend                   threads      peak',
    ]);
    expect(widestLine(text)).toBeLessThanOrEqual(48);
    for (const cell of ROWS.flat().filter((cell) => cell !== '-')) expect(text).toContain(cell);
  });

  it('still shows a column when the key columns and it are wider than the width', () => {
    const text = renderTable(HEADERS, ROWS, RIGHT, { width: 10 });
    expect(text.split('\n\n')).toHaveLength(5);
    expect(text).toMatch(/^tlsf +2$/m);
  });
});

describe('wrapText', () => {
  it('breaks long lines at spaces, continued lines indented, short lines left alone', () => {
    const text = wrapText('short\nnote: one two three four five six seven eight nine ten', 20);
    expect(text).toBe(['short', 'note: one two three', '  four five six', '  seven eight nine', '  ten'].join('\n'));
  });

  it("keeps a line's own indentation and a word longer than the width whole", () => {
    const path = `/a/path/${'x'.repeat(30)}`;
    expect(wrapText(`  FAILED in ${path} at once`, 20)).toBe(['  FAILED in', `    ${path}`, '    at once'].join('\n'));
  });

  it('leaves no trailing space where a long line had one, nor a blank line', () => {
    expect(wrapText('note: one two three four five six   ', 20)).toBe('note: one two three\n  four five six');
  });

  it(`wraps to ${TEXT_WIDTH} columns by default`, () => {
    const words = Array.from({ length: 60 }, (_, index) => `word${index}`).join(' ');
    const text = wrapText(words);
    expect(widestLine(text)).toBeLessThanOrEqual(TEXT_WIDTH);
    expect(text.replace(/\n +/g, ' ')).toBe(words);
  });
});

describe('textWidthOf', () => {
  it("is a terminal's columns, and TEXT_WIDTH for a pipe or a file", () => {
    expect(textWidthOf({ isTTY: true, columns: 80 })).toBe(80);
    expect(textWidthOf({ isTTY: true, columns: 160 })).toBe(160);
    expect(textWidthOf({ isTTY: true, columns: 10 })).toBe(40);
    expect(textWidthOf({ isTTY: false })).toBe(TEXT_WIDTH);
    expect(textWidthOf({})).toBe(TEXT_WIDTH);
  });
});
