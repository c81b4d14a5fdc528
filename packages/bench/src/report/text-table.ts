/**
 * Terminal text: aligned tables (numbers right-aligned) and notes, laid out to a width. Every
 * command prints through these, so that its output fits an 80-100 column terminal: a table
 * wider than the width is split into tables that repeat its key columns, and a long line is
 * wrapped at word boundaries. Nothing is dropped but columns without a figure: `--json`
 * carries every field in any case.
 */

/** The width of text printed to a pipe or a file, and of the HTML report's text. */
export const TEXT_WIDTH = 100;

/** Narrower terminals still get this width: narrower, every table would be one column. */
const MIN_TEXT_WIDTH = 40;

/** The cell of a figure that was not measured or does not apply. */
const NO_FIGURE = '-';

/** Spaces between two columns. */
const GAP = '  ';

/** Where continued lines of a wrapped line start, after the line's own indentation. */
const HANGING_INDENT = '  ';

/** The width to lay text out to on `stream`: its columns when it is a terminal, else `TEXT_WIDTH`. */
export function textWidthOf(stream: { isTTY?: boolean; columns?: number }): number {
  return stream.isTTY === true && stream.columns !== undefined && stream.columns > 0 ? Math.max(MIN_TEXT_WIDTH, stream.columns) : TEXT_WIDTH;
}

/**
 * `text` with each line longer than `width` broken at spaces, its continued lines indented by
 * the line's own indentation and `hangingIndent` (two spaces, so that a note's continuation
 * reads as one; '' for a block of text). A word longer than the width (a path, a URL) stays
 * whole on a line of its own.
 */
export function wrapText(text: string, width: number = TEXT_WIDTH, hangingIndent: string = HANGING_INDENT): string {
  return text
    .split('\n')
    .map((line) => {
      if (line.length <= width) return line;
      const indent = /^ */.exec(line)![0];
      const continued = indent + hangingIndent;
      const lines: string[] = [];
      let current = indent;
      const words = line
        .slice(indent.length)
        .split(' ')
        .filter((word) => word !== '');
      for (const word of words) {
        const start = lines.length === 0 ? indent : continued;
        if (current !== start && current.length + 1 + word.length > width) {
          lines.push(current);
          current = continued + word;
        } else current = current === start ? current + word : `${current} ${word}`;
      }
      lines.push(current);
      return lines.join('\n');
    })
    .join('\n');
}

/** How `renderTable` fits a table to a width. */
export interface TableLayout {
  /** The widest line allowed; `TEXT_WIDTH` when not given. */
  width?: number;
  /** The first columns, which say what a row is: repeated in each table of a split (1 if not given). */
  keyColumns?: number;
  /**
   * Columns that start a group (e.g. the first memory figure after the speed figures): a
   * split keeps a group in one table when it fits one, and puts groups side by side while
   * they fit.
   */
  groupStarts?: readonly number[];
}

/**
 * Lays out `rows` under `headers`; columns listed in `rightAligned` are numbers. When the
 * table is wider than the layout's width, columns without a figure in any row are left out,
 * and if it is still too wide, it is split into tables one under the other, each with the key
 * columns and as many of the others (whole groups first) as fit.
 */
export function renderTable(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  rightAligned: ReadonlySet<number>,
  layout: TableLayout = {},
): string {
  const width = layout.width ?? TEXT_WIDTH;
  const keyColumns = Math.min(layout.keyColumns ?? 1, headers.length);
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]!.length)));
  const spanOf = (columns: readonly number[]): number => columns.reduce((sum, column) => sum + widths[column]!, 0) + GAP.length * (columns.length - 1);
  const all = headers.map((_, column) => column);
  if (spanOf(all) <= width) return tableOf(headers, rows, rightAligned, widths, all);
  const keys = all.slice(0, keyColumns);
  // Without rows, every column is empty: all stay, for the headers to say what was measured.
  const others = all.slice(keyColumns).filter((column) => rows.length === 0 || rows.some((row) => row[column] !== NO_FIGURE && row[column] !== ''));
  if (spanOf([...keys, ...others]) <= width) return tableOf(headers, rows, rightAligned, widths, [...keys, ...others]);
  const starts = new Set(layout.groupStarts ?? []);
  const groups: number[][] = [];
  for (const column of others) {
    if (groups.length === 0 || starts.has(column)) groups.push([column]);
    else groups[groups.length - 1]!.push(column);
  }
  const parts: number[][] = [];
  let part: number[] = [];
  const fits = (columns: readonly number[]): boolean => spanOf([...keys, ...columns]) <= width;
  for (const group of groups) {
    if (fits([...part, ...group])) {
      part.push(...group);
      continue;
    }
    if (part.length > 0) parts.push(part);
    part = [];
    // A group wider than the width alone is split where it must be.
    for (const column of group) {
      if (part.length > 0 && !fits([...part, column])) {
        parts.push(part);
        part = [];
      }
      part.push(column);
    }
  }
  if (part.length > 0) parts.push(part);
  return parts.map((columns) => tableOf(headers, rows, rightAligned, widths, [...keys, ...columns])).join('\n\n');
}

/** The table of `columns` (in that order) of `rows`, each column `widths` wide. */
function tableOf(
  headers: readonly string[],
  rows: readonly (readonly string[])[],
  rightAligned: ReadonlySet<number>,
  widths: readonly number[],
  columns: readonly number[],
): string {
  const line = (cells: readonly string[]): string =>
    columns
      .map((column) => (rightAligned.has(column) ? cells[column]!.padStart(widths[column]!) : cells[column]!.padEnd(widths[column]!)))
      .join(GAP)
      .trimEnd();
  const rule = columns.map((column) => '-'.repeat(widths[column]!)).join(GAP);
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** Every column but the first (the label), for tables whose other columns are all figures. */
export function figureColumns(headers: readonly string[]): ReadonlySet<number> {
  return new Set(headers.map((_, column) => column).slice(1));
}
