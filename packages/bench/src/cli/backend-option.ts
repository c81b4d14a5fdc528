/**
 * The grammar of `--backend`: the option is repeatable and each value is exactly one backend
 * spec, or `all`:
 *
 *   --backend tlsf --backend basic:strategy=best-fit --backend mimalloc:secure=true,delayedPageReuse=true
 *
 * A spec's own options are separated by commas, so a comma may appear only between them. A
 * value that holds more than one spec is refused, with the repeatable form that would run
 * them: the command line never guesses where one spec ends.
 */

import { AllocError, parseBackendSpec } from '@heaplab/core';
import { InvalidArgumentError } from 'commander';

import type { BackendChoice } from '../contenders/backends.js';

/** The value that stands for every registered backend. */
export const ALL_BACKENDS = 'all';

/**
 * Parses one `--backend` value and appends it to the values before (commander's form for a
 * repeatable option). The spec is parsed here, once; its options are checked against the
 * backend later, when the backends are known (`resolveBackendContenders`).
 * @throws InvalidArgumentError for an empty value, a malformed spec or more than one spec
 */
export function parseBackendOption(value: string, previous: readonly BackendChoice[] = []): BackendChoice[] {
  const text = value.trim();
  if (text === '') throw new InvalidArgumentError('a backend spec is a name, optionally followed by :key=value,...; the value is empty.');
  const specs = specsIn(text);
  if (specs.includes('')) throw new InvalidArgumentError(`'${text}' has an empty part between its commas.`);
  const choices = specs.map((spec) => (spec === ALL_BACKENDS ? ALL_BACKENDS : parseOrRefuse(spec)));
  if (choices.length > 1) {
    throw new InvalidArgumentError(
      `'${text}' holds ${specs.length} backend specs, and a --backend value takes one (commas separate a spec's options); ` +
        `repeat the option: ${specs.map((spec) => `--backend ${spec}`).join(' ')}`,
    );
  }
  return [...previous, choices[0]!];
}

/**
 * Splits `text` where a new spec would start: at a comma followed by a part that is not a
 * `key=value` option of the spec before it (no `=`, a `:` in its key, or no spec before it
 * that takes options). Only to refuse such a value and show its repeatable form.
 */
function specsIn(text: string): string[] {
  const specs: string[] = [];
  for (const part of text.split(',')) {
    const key = part.split('=', 1)[0]!;
    const last = specs.length - 1;
    const isOption = last >= 0 && specs[last]!.includes(':') && part.includes('=') && !key.includes(':');
    if (isOption) specs[last] += `,${part}`;
    else specs.push(part);
  }
  return specs.map((spec) => spec.trim());
}

/** Core's parse of one spec, its error as a command-line error. */
function parseOrRefuse(spec: string): BackendChoice {
  try {
    return parseBackendSpec(spec);
  } catch (error) {
    if (error instanceof AllocError) throw new InvalidArgumentError(/[.!?]$/.test(error.message) ? error.message : `${error.message}.`);
    throw error;
  }
}
