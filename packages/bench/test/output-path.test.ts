/**
 * Output paths are checked before a command runs (cli/output-path.ts): a folder given as a
 * file, a file given as a folder or under a file, are refused with why; new files and folders
 * under existing ones, and `-` for a file, pass.
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { outputPathProblem } from '../src/cli/output-path.js';

const scratch = mkdtempSync(join(tmpdir(), 'heaplab-output-path-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const file = join(scratch, 'a-file');
writeFileSync(file, 'x');
const folder = join(scratch, 'a-folder');
mkdirSync(folder);

describe('an output path', () => {
  it('passes when it can be written: a new file, a new folder under new ones, an existing one of its kind, stdout', () => {
    expect(outputPathProblem(join(scratch, 'new.json'), 'file')).toBeNull();
    expect(outputPathProblem(join(scratch, 'new', 'deeper', 'out.json'), 'file')).toBeNull();
    expect(outputPathProblem(join(scratch, 'new-folder', 'maps'), 'folder')).toBeNull();
    expect(outputPathProblem(file, 'file')).toBeNull();
    expect(outputPathProblem(folder, 'folder')).toBeNull();
    expect(outputPathProblem('-', 'file')).toBeNull();
  });

  it('is refused, saying why, when it is the other kind or lies under a file', () => {
    expect(outputPathProblem(folder, 'file')).toBe(`${folder} is a folder, not a file`);
    expect(outputPathProblem(file, 'folder')).toBe(`${file} is a file, not a folder`);
    expect(outputPathProblem(join(file, 'x.json'), 'file')).toBe(`${file} is a file, so nothing can be written under it`);
    expect(outputPathProblem(join(file, 'deeper', 'maps'), 'folder')).toBe(`${file} is a file, so nothing can be written under it`);
    expect(outputPathProblem('', 'file')).toBe('an empty path');
  });
});
