/**
 * How a command ends on a failure that is not a mistake in its command line: a file that
 * cannot be read, a port in use, a module that does not load, a run that failed. Usage
 * mistakes go through `command.error`, which commander follows with "(run with --help for
 * usage)"; here the help would send the user to the wrong place, so the hint is left out.
 */

import type { Command } from 'commander';

/** Prints `message` (commander's error output, so wrapped as other status lines) and exits with `exitCode`. */
export function failRun(command: Command, message: string, exitCode = 1): never {
  command.showHelpAfterError(false);
  command.error(message, { exitCode });
}
