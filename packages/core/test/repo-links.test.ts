import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { describe, expect, it } from 'vitest';

// Someone who clones heaplab must be able to read everything it points to: every relative
// link in a markdown file, and every docs/ page a source comment names, must exist.

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const SKIP = new Set(['node_modules', 'dist', '.tsbuild', '.git']);

function filesUnder(directory: string, keep: (name: string) => boolean): string[] {
  return readdirSync(directory, { withFileTypes: true }).flatMap((entry) => {
    if (SKIP.has(entry.name)) return [];
    const path = join(directory, entry.name);
    return entry.isDirectory() ? filesUnder(path, keep) : keep(entry.name) ? [path] : [];
  });
}

/** The relative targets of a markdown file's inline links, without their #fragment. */
function relativeLinks(markdown: string): string[] {
  const text = markdown.replace(/```[\s\S]*?```/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((match) => match[1]!)
    .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target) && !target.startsWith('#'))
    .map((target) => target.split('#')[0]!);
}

describe('links inside the repository', () => {
  const markdown = filesUnder(ROOT, (name) => name.endsWith('.md'));

  it('finds the README and the docs', () => {
    expect(markdown.map((file) => relative(ROOT, file))).toEqual(
      expect.arrayContaining(['README.md', 'docs/architecture.md', 'docs/heap-layout.md', 'docs/lock-order.md']),
    );
  });

  it('has every relative markdown link point at a file or folder that exists', () => {
    const broken: string[] = [];
    for (const file of markdown) {
      for (const target of relativeLinks(readFileSync(file, 'utf8'))) {
        if (!existsSync(resolve(dirname(file), target))) broken.push(`${relative(ROOT, file)} -> ${target}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('has every docs/ page named in a source comment exist', () => {
    const broken: string[] = [];
    const sources = readdirSync(join(ROOT, 'packages')).flatMap((pkg) => {
      const src = join(ROOT, 'packages', pkg, 'src');
      return existsSync(src) && statSync(src).isDirectory() ? filesUnder(src, (name) => /\.(ts|mjs|c)$/.test(name)) : [];
    });
    for (const file of sources) {
      for (const [page] of readFileSync(file, 'utf8').matchAll(/docs\/[\w./-]+\.md/g)) {
        if (!existsSync(join(ROOT, page!))) broken.push(`${relative(ROOT, file)} -> ${page}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('catches a broken link (the check can fail)', () => {
    expect(relativeLinks('see [x](docs/nope.md#part) and [y](https://example.org) and [z](#here)')).toEqual(['docs/nope.md']);
  });
});
