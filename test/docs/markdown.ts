/** Reading the project's Markdown for the doc tests: pages, headings, GitHub anchors and relative links. */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';

export const ROOT = join(__dirname, '..', '..');
export const README = join(ROOT, 'README.md');
export const DOCS = join(ROOT, 'docs');

/** README.md and every Markdown page under docs/, absolute paths. */
export function markdownFiles(): string[] {
  const pages: string[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.name.endsWith('.md')) pages.push(path);
    }
  };
  walk(DOCS);
  return [README, ...pages.sort()];
}

export function rel(path: string): string {
  return relative(ROOT, path);
}

/** The lines of a page outside fenced code blocks, with their 1-based numbers. */
export function proseLines(markdown: string): Array<{ line: number; text: string }> {
  const lines: Array<{ line: number; text: string }> = [];
  let fence = false;
  markdown.split('\n').forEach((text, index) => {
    if (/^\s*```/.test(text)) {
      fence = !fence;
      return;
    }
    if (!fence) lines.push({ line: index + 1, text });
  });
  return lines;
}

export interface Heading {
  level: number;
  text: string;
  line: number;
}

export function headings(markdown: string): Heading[] {
  return proseLines(markdown).flatMap(({ line, text }) => {
    const match = /^(#{1,6})\s+(.*?)\s*#*\s*$/.exec(text);
    return match === null ? [] : [{ level: match[1]!.length, text: match[2]!, line }];
  });
}

/** GitHub's anchor for a heading: link text kept, lower case, punctuation dropped, spaces to hyphens. */
export function slug(heading: string): string {
  return heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

/** Every anchor of a page, duplicates numbered as GitHub numbers them (`name`, `name-1`, ...). */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const heading of headings(markdown)) {
    const base = slug(heading.text);
    const count = seen.get(base) ?? 0;
    result.add(count === 0 ? base : `${base}-${count}`);
    seen.set(base, count + 1);
  }
  return result;
}

export interface Link {
  target: string;
  line: number;
}

/** Inline links `[text](target)` outside code (fenced blocks and `code spans`), external ones left out. */
export function relativeLinks(markdown: string): Link[] {
  return proseLines(markdown).flatMap(({ line, text }) => {
    const prose = text.replace(/`[^`]*`/g, '');
    return [...prose.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)]
      .map((match) => match[1]!)
      .filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target))
      .map((target) => ({ target, line }));
  });
}

export function read(path: string): string {
  return readFileSync(path, 'utf8');
}
