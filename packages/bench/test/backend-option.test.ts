import { type BackendSpec, Random } from '@heaplab/core';
import { expectAllocError } from '@heaplab/test-kit';
import { InvalidArgumentError } from 'commander';
import { beforeAll, describe, expect, it } from 'vitest';

import { parseBackendOption } from '../src/cli/backend-option.js';
import { discoverBackends, resolveBackendContenders } from '../src/contenders/backends.js';
import { formatBackendSpec } from '../src/contenders/contender.js';

/** What `--backend v1 --backend v2 ...` gives, as commander folds the values. */
function backends(...values: string[]): ReturnType<typeof parseBackendOption> {
  return values.reduce<ReturnType<typeof parseBackendOption>>((previous, value) => parseBackendOption(value, previous), []);
}

/** The message `parseBackendOption(value)` refuses `value` with. */
function refusal(value: string): string {
  try {
    parseBackendOption(value);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as Error).message;
  }
  throw new Error(`'${value}' was accepted`);
}

describe('--backend: one spec per value', () => {
  it('parses each value once into a name and its options, in order', () => {
    expect(backends('tlsf', 'basic:strategy=best-fit', 'mimalloc:secure=true,delayedPageReuse=true')).toEqual([
      { name: 'tlsf', options: {} },
      { name: 'basic', options: { strategy: 'best-fit' } },
      { name: 'mimalloc', options: { secure: true, delayedPageReuse: true } },
    ]);
    expect(backends('all')).toEqual(['all']);
    expect(backends(' all ', 'basic:strategy=worst-fit')).toEqual(['all', { name: 'basic', options: { strategy: 'worst-fit' } }]);
  });

  it.each([
    ['basic,tlsf', '--backend basic --backend tlsf'],
    ['basic:strategy=best-fit,tlsf', '--backend basic:strategy=best-fit --backend tlsf'],
    ['basic:strategy=best-fit,mimalloc:secure=true', '--backend basic:strategy=best-fit --backend mimalloc:secure=true'],
    ['all,tlsf', '--backend all --backend tlsf'],
    ['tlsf,mimalloc:secure=true,delayedPageReuse=true', '--backend tlsf --backend mimalloc:secure=true,delayedPageReuse=true'],
  ])('refuses %j, showing the repeatable form', (value, repeated) => {
    const message = refusal(value);
    expect(message).toContain('holds 2 backend specs');
    expect(message).toContain(`repeat the option: ${repeated}`);
  });

  it.each([
    ['', /the value is empty/],
    ['basic,', /empty part/],
    ['Basic', /must be a lowercase name/],
    ['basic:strategy', /is not key=value/],
    ['basic,strategy=best-fit', /'strategy=best-fit' must be a lowercase name/],
  ])('refuses %j as malformed', (value, message) => {
    expect(refusal(value)).toMatch(message);
  });

  it('reads back every spec it writes', () => {
    // Random specs of random options: the label a row shows parses to the same spec.
    const random = new Random(13);
    const word = (length: number): string => Array.from({ length }, () => String.fromCharCode(97 + random.int(0, 26))).join('');
    for (let i = 0; i < 200; i++) {
      const options: Record<string, unknown> = {};
      for (let option = random.int(0, 4); option > 0; option--) {
        options[word(random.int(1, 8))] = [true, false, random.int(0, 1000), word(random.int(1, 6))][random.int(0, 4)];
      }
      const spec: BackendSpec = { name: word(random.int(1, 8)), options };
      expect(backends(formatBackendSpec(spec))).toEqual([spec]);
    }
  });
});

describe('backend rows', () => {
  beforeAll(async () => {
    await discoverBackends();
  });

  it('normalizes options once, with the descriptor, and runs a row chosen twice once', () => {
    const rows = resolveBackendContenders(backends('basic', 'basic:strategy=best-fit', 'all'));
    expect(rows[0]).toEqual({ kind: 'heaplab', label: 'basic', spec: { name: 'basic', options: { strategy: 'first-fit', tcache: true, arenas: 1 } } });
    expect(rows[1]).toEqual({
      kind: 'heaplab',
      label: 'basic:strategy=best-fit',
      spec: { name: 'basic', options: { strategy: 'best-fit', tcache: true, arenas: 1 } },
    });
    expect(rows.filter((row) => row.label === 'basic')).toHaveLength(1);
    expect(rows.map((row) => row.label)).toContain('tlsf');
  });

  it("with variants (bench all), 'all' adds a row per other value of each variant option, and nothing for tuning options", () => {
    const labels = resolveBackendContenders(backends('all'), { variants: true }).map((row) => row.label);
    for (const variant of ['basic:strategy=best-fit', 'basic:strategy=worst-fit', 'mimalloc:secure=true']) expect(labels).toContain(variant);
    expect(labels.filter((label) => label.includes(':'))).toHaveLength(3);
    expect(resolveBackendContenders(backends('all')).every((row) => !row.label.includes(':'))).toBe(true);
    // A backend named on its own gets no variants: the user chose its options.
    expect(resolveBackendContenders(backends('basic'), { variants: true }).map((row) => row.label)).toEqual(['basic']);
  });

  it('takes tcache=false as a row of its own, the bare algorithm beside the cached one', () => {
    const rows = resolveBackendContenders(backends('tlsf', 'tlsf:tcache=false'));
    expect(rows).toEqual([
      { kind: 'heaplab', label: 'tlsf', spec: { name: 'tlsf', options: { tcache: true, arenas: 1 } } },
      { kind: 'heaplab', label: 'tlsf:tcache=false', spec: { name: 'tlsf', options: { tcache: false, arenas: 1 } } },
    ]);
  });

  it('refuses an unknown backend and a bad option with the backend errors', () => {
    expect(expectAllocError(() => resolveBackendContenders(backends('nope')), 'UnknownBackend').message).toMatch(/valid: .*basic/);
    expectAllocError(() => resolveBackendContenders(backends('basic:strategy=bogus')), 'InvalidParam');
    expect(expectAllocError(() => resolveBackendContenders(backends('basic:tcache=nope')), 'InvalidParam').message).toMatch(/'tcache'.*true, false/);
  });
});
