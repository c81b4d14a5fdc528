/** Terminal tables: aligned columns, numbers right-aligned. */

/** Lays out `rows` under `headers`; columns listed in `rightAligned` are numbers. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[], rightAligned: ReadonlySet<number>): string {
  const widths = headers.map((header, column) => Math.max(header.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((cell, column) => (rightAligned.has(column) ? cell.padStart(widths[column]!) : cell.padEnd(widths[column]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((width) => '-'.repeat(width)).join('  ');
  return [line(headers), rule, ...rows.map(line)].join('\n');
}

/** Every column but the first (the label), for tables whose other columns are all figures. */
export function figureColumns(headers: readonly string[]): ReadonlySet<number> {
  return new Set(headers.map((_, column) => column).slice(1));
}
