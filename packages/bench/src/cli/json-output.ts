/**
 * `--json FILE` of every command: the figures as JSON in FILE, or on stdout when FILE is `-`
 * (as most command lines read `-`). With `-`, stdout carries the JSON alone, so the command's
 * human-readable text goes to stderr instead (`textOut`).
 */

import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

import { textWidthOf, wrapText } from '../report/text-table.js';

/** The value of `--json` that means stdout. */
export const STDOUT = '-';

/** Where a command prints its tables: stdout, or stderr when `--json -` takes stdout. */
export function textOut(json: string | undefined): (text: string) => void {
  return json === STDOUT ? (text) => console.error(text) : (text) => console.log(text);
}

/** The width to lay the text of `textOut` out to: the terminal's it goes to, or `TEXT_WIDTH`. */
export function textWidth(json: string | undefined): number {
  return textWidthOf(json === STDOUT ? process.stderr : process.stdout);
}

/**
 * A status line on stderr ("wrote ...", a warning): broken at spaces to the terminal's width
 * when stderr is a terminal (a list of paths runs past 80 columns), one line into a pipe,
 * where a script may read it.
 */
export function printStatus(text: string, stream: { isTTY?: boolean; columns?: number } = process.stderr): void {
  console.error(statusText(text, stream));
}

/** `text` as `printStatus` prints it on `stream`; commander's error messages take the same rule (program.ts). */
export function statusText(text: string, stream: { isTTY?: boolean; columns?: number }): string {
  return stream.isTTY === true ? wrapText(text, textWidthOf(stream)) : text;
}

/** Writes `value` as indented JSON to `target` (a file, its folders made, or `-` for stdout). */
export function writeJsonOutput(target: string, value: unknown): void {
  const text = `${JSON.stringify(value, null, 2)}\n`;
  if (target === STDOUT) {
    process.stdout.write(text);
    return;
  }
  mkdirSync(dirname(target), { recursive: true });
  writeFileSync(target, text);
  printStatus(`wrote ${target}`);
}
