/**
 * Issue 13 (the README): a short README with everything else on one page each under docs/. Every page is reachable
 * from the README, every relative link (and its anchor) resolves, no section title appears twice, the README stays
 * short.
 */
import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { DOCS, README, anchors, headings, markdownFiles, read, rel, relativeLinks } from './markdown';

const FILES = markdownFiles();

describe('documentation links', () => {
  it('finds the README and the docs pages', () => {
    // Assess
    expect(FILES).toContain(README);
    expect(FILES.length).toBeGreaterThan(10);
  });

  it('links every docs/ page from the README', () => {
    // Prepare
    const linked = new Set(
      relativeLinks(read(README)).map((link) => resolve(dirname(README), link.target.split('#')[0] ?? '')),
    );

    // Act
    const unlinked = FILES.filter((file) => file.startsWith(`${DOCS}/`) && !linked.has(file)).map(rel);

    // Assess
    expect(unlinked).toEqual([]);
  });

  it('resolves every relative link of the README and docs/, anchors included', () => {
    // Act
    const broken: string[] = [];
    for (const file of FILES) {
      for (const link of relativeLinks(read(file))) {
        const [path = '', fragment] = link.target.split('#');
        const target = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
        const where = `${rel(file)}:${link.line}: ${link.target}`;
        if (!existsSync(target)) {
          broken.push(`${where} (no such file)`);
          continue;
        }
        if (fragment === undefined || fragment === '') continue;
        if (statSync(target).isDirectory() || !target.endsWith('.md')) {
          broken.push(`${where} (an anchor on a file that is not Markdown)`);
        } else if (!anchors(read(target)).has(fragment)) {
          broken.push(`${where} (no heading with that anchor)`);
        }
      }
    }

    // Assess
    expect(broken).toEqual([]);
  });

  it('has no section title twice across the README and docs/ (one page per topic)', () => {
    // Prepare
    const seen = new Map<string, string>();
    const twice: string[] = [];

    // Act
    for (const file of FILES) {
      for (const heading of headings(read(file)).filter((h) => h.level >= 2)) {
        const key = heading.text.toLowerCase();
        const first = seen.get(key);
        if (first !== undefined) twice.push(`"${heading.text}": ${first} and ${rel(file)}:${heading.line}`);
        else seen.set(key, `${rel(file)}:${heading.line}`);
      }
    }

    // Assess
    expect(twice).toEqual([]);
  });

  it('keeps the README under 250 lines, with the two setup commands the CI runs', () => {
    // Act
    const readme = read(README);

    // Assess
    expect(readme.split('\n').length).toBeLessThan(250);
    expect(readme).toMatch(/^npm start +# /m);
    expect(readme).toMatch(/^npm test +# /m);
  });

  it('checks its own link reader: a broken link and a missing anchor would be found', () => {
    // Prepare
    const markdown = [
      '# T',
      '## Two words',
      'see [a](missing.md) and [b](#two-words) `[c](ignored.md)`',
      '```',
      '[d](x.md)',
      '```',
    ].join('\n');

    // Act
    const links = relativeLinks(markdown).map((l) => l.target);

    // Assess
    expect(links).toEqual(['missing.md', '#two-words']);
    expect(anchors(markdown)).toEqual(new Set(['t', 'two-words']));
    expect(existsSync(join(DOCS, 'missing.md'))).toBe(false);
  });
});
