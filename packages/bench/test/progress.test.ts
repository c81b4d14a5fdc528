/**
 * The progress line on a terminal: cut to the terminal's width, and whole when the terminal
 * reports no width or 0 columns.
 */

import { describe, expect, it } from 'vitest';

import { createProgress } from '../src/run/progress.js';

/** A stand-in terminal that records what is written to it. */
function terminal(columns: number | undefined): { stream: NodeJS.WriteStream; written: string[] } {
  const written: string[] = [];
  const stream = { isTTY: true, columns, write: (text: string) => written.push(text) > 0 } as unknown as NodeJS.WriteStream;
  return { stream, written };
}

/** The visible text of the last line written (after the carriage return and the clear). */
function lastLine(written: string[]): string {
  return written
    .filter((text) => text.length > '\r\x1b[2K'.length)
    .at(-1)!
    .replace('\r\x1b[2K', '');
}

describe('the progress line', () => {
  it('keeps the whole line when the terminal reports 0 columns, or none', () => {
    for (const columns of [0, undefined]) {
      const { stream, written } = terminal(columns);
      const progress = createProgress(3, stream);
      progress.step('glibc-thread  tlsf  1 thread');
      progress.done();
      expect(lastLine(written)).toMatch(/^\[1\/3\] glibc-thread {2}tlsf {2}1 thread {2}\d+\.\d s {2}\(total \d+ s\)$/);
    }
  });

  it('cuts the line one column short of a narrow terminal, so it never wraps', () => {
    const { stream, written } = terminal(20);
    const progress = createProgress(3, stream);
    progress.step('glibc-thread  tlsf  1 thread');
    progress.done();
    expect(lastLine(written)).toBe('[1/3] glibc-thread ');
  });
});
