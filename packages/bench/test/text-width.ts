/** What the tests of the terminal output's width share. */

/** The widest line of `text`. */
export function widestLine(text: string): number {
  return Math.max(...text.split('\n').map((line) => line.length));
}
