/**
 * Generated blocks in the documentation: a Markdown page holds `<!-- NAME:begin ... -->` and `<!-- NAME:end -->`
 * lines, and a generator (run by `npm run docs`) rewrites what lies between them. The doc tests compare the block on
 * the page with what the generator renders now.
 */
import { readFileSync, writeFileSync } from 'node:fs';

export interface BlockMarkers {
  begin: string;
  end: string;
}

/** The block (markers included) as it stands in a Markdown text, or undefined. */
export function blockIn(markdown: string, markers: BlockMarkers): string | undefined {
  const start = markdown.indexOf(markers.begin);
  const end = markdown.indexOf(markers.end);
  return start < 0 || end < start ? undefined : markdown.slice(start, end + markers.end.length);
}

/** Rewrites the block of a page with `block` (markers included); throws when the page has no such block. */
export function writeBlock(page: string, markers: BlockMarkers, block: string): void {
  const markdown = readFileSync(page, 'utf8');
  const current = blockIn(markdown, markers);
  if (current === undefined) throw new Error(`${page} has no ${markers.begin} ... ${markers.end} block`);
  writeFileSync(
    page,
    markdown.replace(current, () => block),
  );
}
