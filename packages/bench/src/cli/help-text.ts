/**
 * The text the commands add to commander's help (lists of workloads, notes), laid out when
 * the help is shown, to the width commander lays the rest of it out to: `textWidthOf` the
 * stream it goes to (the terminal's columns, or TEXT_WIDTH into a pipe), as program.ts
 * configures every command's output.
 */

import type { Command } from 'commander';

import { TEXT_WIDTH, wrapText } from '../report/text-table.js';

/** The words of `text` in lines of at most `width` columns, each after `indent` spaces. */
export function wrapped(text: string, indent: number, width: number): string[] {
  return wrapText(`${' '.repeat(indent)}${text.trim().replace(/\s+/g, ' ')}`, width, '').split('\n');
}

/** A list of names, each with its text beside it, wrapped under the texts' column. */
export function helpList(entries: readonly (readonly [name: string, text: string])[], width: number): string {
  const column = Math.max(...entries.map(([name]) => name.length)) + 1;
  return entries
    .map(([name, text]) => {
      const lines = wrapped(text, column + 3, width);
      return [`  ${name.padEnd(column)} ${lines[0]!.trimStart()}`, ...lines.slice(1)].join('\n');
    })
    .join('\n');
}

/** The width commander lays `command`'s help out to, on stderr when `error`. */
export function helpWidth(command: Command, error: boolean): number {
  const output = command.configureOutput();
  return (error ? output.getErrHelpWidth?.() : output.getOutHelpWidth?.()) ?? TEXT_WIDTH;
}

/** The context commander passes to a function given to `addHelpText`. */
type HelpContext = { error: boolean; command: Command };

/**
 * For `command.addHelpText('after', helpAfter(text))`: `text(width)` made when the help is
 * shown, to the width of the help.
 */
export function helpAfter(text: (width: number) => string): (context: HelpContext) => string {
  return ({ error, command }) => text(helpWidth(command, error));
}

/** `helpAfter` of paragraphs: `paragraphs` wrapped, after a blank line. */
export function helpNote(...paragraphs: string[]): (context: HelpContext) => string {
  return helpAfter((width) => paragraphs.map((paragraph) => `\n${wrapText(paragraph, width, '')}`).join('\n'));
}
