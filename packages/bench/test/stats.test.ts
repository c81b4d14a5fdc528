import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { figuresTable, statsTableText } from '../src/cli/stats-command.js';
import { fragmentationFigures } from '../src/inspect/fragmentation.js';
import { findMapTarget, parseMoment, takeMoments } from '../src/inspect/heap-moments.js';
import { TEXT_WIDTH, wrapText } from '../src/report/text-table.js';
import { heaplabInProcess, NO_WALK_BACKEND, walkingBackends } from './inspect-helpers.js';
import { widestLine } from './text-width.js';

const { walking } = walkingBackends();
const stats = (...args: string[]): ReturnType<typeof heaplabInProcess> => heaplabInProcess('stats', ...args);

describe('heaplab stats', () => {
  it.each(walking)('%s: prints the figures of the run and every classStats table, and writes them as JSON', async (backend) => {
    const file = join(mkdtempSync(join(tmpdir(), 'heaplab-stats-')), 'stats.json');
    const result = await stats('--backend', backend, '--workload', 'glibc-thread', '--iterations', '2000', '--heap-mib', '8', '--json', file);
    expect(result.status).toBe(0);
    const json = JSON.parse(readFileSync(file, 'utf8'));
    expect(json.kind).toBe('heaplab-stats');
    expect(json.backend).toBe(backend);
    // The run is deterministic: the same run through the API gives the same figures.
    const [moment] = takeMoments(
      { kind: 'heaplab', label: backend, spec: { name: backend, options: {} } },
      findMapTarget('glibc-thread'),
      [parseMoment('100%')],
      {
        heapBytes: 8 << 20,
        iterations: 2000,
      },
    );
    expect(json.figures).toEqual(moment!.figures);
    expect(result.stdout).toContain(figuresTable(moment!.figures));
    expect(json.tables.length).toBeGreaterThan(0);
    for (const table of moment!.tables) {
      expect(result.stdout).toContain(wrapText(`${table.name}: ${table.description}`));
      expect(result.stdout).toContain(statsTableText(table));
    }
    // Not a terminal: laid out to TEXT_WIDTH.
    expect(widestLine(result.stdout)).toBeLessThanOrEqual(TEXT_WIDTH);
  });

  it.skipIf(!walking.includes('slab'))('slab: prints the slabinfo-style table', async () => {
    const result = await stats('--backend', 'slab', '--workload', 'glibc-thread', '--iterations', '2000', '--heap-mib', '8');
    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/slabinfo/);
  });

  it('refuses more than one backend, none, and a bad workload, with status 1', async () => {
    expect(await stats('--backend', 'basic', '--backend', 'tlsf', '--workload', 'glibc-thread')).toMatchObject({
      status: 1,
      stderr: expect.stringMatching(/stats takes one backend, not basic, tlsf/),
    });
    expect(await stats('--backend', 'all', '--workload', 'glibc-thread')).toMatchObject({
      status: 1,
      stderr: expect.stringMatching(/stats takes one backend/),
    });
    expect(await stats('--workload', 'glibc-thread')).toMatchObject({ status: 1, stderr: expect.stringMatching(/required option '-b, --backend <spec>'/) });
    expect(await stats('--backend', 'basic', '--workload', 'heap-efficiency')).toMatchObject({
      status: 1,
      stderr: expect.stringMatching(/'heap-efficiency' has no loop a map can run/),
    });
  });

  it('fails on a backend without walk', async () => {
    const result = await stats('--backend', NO_WALK_BACKEND, '--workload', 'glibc-thread', '--iterations', '10', '--heap-mib', '8');
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`backend '${NO_WALK_BACKEND}' has no walk()`);
  });
});

describe('the text tables', () => {
  it('right-align the columns that hold only numbers, and separate thousands', () => {
    const text = statsTableText({
      name: 'orders',
      description: 'one row per order',
      columns: [
        { key: 'order', label: 'order' },
        { key: 'size', label: 'block size' },
        { key: 'note', label: 'note' },
      ],
      rows: [
        { order: 4, size: 16, note: 'small' },
        { order: 20, size: 1_048_576, note: 'x' },
      ],
    });
    expect(text.split('\n')).toEqual(['order  block size  note', '-----  ----------  -----', '    4          16  small', '   20   1,048,576  x']);
  });

  it('list every figure', () => {
    const text = figuresTable(fragmentationFigures([{ address: 0, bytes: 1024, kind: 'free' }], { usedBytes: 0, largestFreeBlock: 1024 }, 0, 0));
    expect(text).toMatch(/^external fragmentation +0\.00 %$/m);
    expect(text).toMatch(/^free +1,024 B \(1\.00 KiB\)$/m);
  });
});
