/**
 * Plain-text building blocks: aligned tables and wrapped paragraphs that fit 100 columns, and a terminal-safe view
 * of untrusted names (control characters shown as `\xNN`, so a function or tag name cannot move the cursor or
 * recolour the terminal). PURE.
 */
import { stringify } from 'csv-stringify/sync';

export const WIDTH = 100;

/** Control characters (C0, DEL, C1) made visible; everything else as given. */
export function safe(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** Display width of a string: code points (names are ASCII in AWS; tag values may not be). */
function width(text: string): number {
  return [...text].length;
}

/** Words of `text` wrapped to `limit` columns; a word longer than the line is cut. */
export function wrap(text: string, limit: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (const word of safe(text)
    .split(/\s+/)
    .filter((w) => w.length > 0)) {
    let rest = word;
    while (width(rest) > limit) {
      if (line.length > 0) {
        lines.push(line);
        line = '';
      }
      const chars = [...rest];
      lines.push(chars.slice(0, limit).join(''));
      rest = chars.slice(limit).join('');
    }
    if (rest.length === 0) continue;
    if (line.length === 0) line = rest;
    else if (width(line) + 1 + width(rest) <= limit) line += ` ${rest}`;
    else {
      lines.push(line);
      line = rest;
    }
  }
  if (line.length > 0 || lines.length === 0) lines.push(line);
  return lines;
}

/** `text` wrapped to WIDTH with every line indented by `indent` (continuation lines by `indent` + `hang`). */
export function paragraph(text: string, indent = 0, hang = 0): string[] {
  const first = wrap(text, WIDTH - indent);
  if (first.length <= 1 || hang === 0) return first.map((l) => `${' '.repeat(indent)}${l}`);
  const [head = '', ...tail] = first;
  const rest = wrap(tail.join(' '), WIDTH - indent - hang);
  return [`${' '.repeat(indent)}${head}`, ...rest.map((l) => `${' '.repeat(indent + hang)}${l}`)];
}

/**
 * An aligned table within WIDTH columns. Columns keep their natural width while the table fits; otherwise the
 * widest columns shrink (never below 8 columns) and their cells wrap onto more lines.
 */
export function table(headers: readonly string[], rows: ReadonlyArray<readonly string[]>, indent = 0): string[] {
  const gap = 2;
  const cells = rows.map((row) => headers.map((_, i) => safe(row[i] ?? '')));
  const widths = headers.map((h, i) => Math.max(width(h), ...cells.map((r) => width(r[i] ?? ''))));
  const budget = WIDTH - indent - gap * (headers.length - 1);
  while (widths.reduce((a, b) => a + b, 0) > budget) {
    const widest = widths.indexOf(Math.max(...widths));
    if ((widths[widest] ?? 0) <= 8) break;
    widths[widest] = (widths[widest] ?? 0) - 1;
  }
  const render = (row: readonly string[]): string[] => {
    const wrapped = row.map((cell, i) => wrap(cell, widths[i] ?? 8));
    const height = Math.max(...wrapped.map((w) => w.length));
    const lines: string[] = [];
    for (let line = 0; line < height; line += 1) {
      const parts = wrapped.map((w, i) => {
        const text = w[line] ?? '';
        return i === row.length - 1 ? text : text + ' '.repeat(Math.max(0, (widths[i] ?? 0) - width(text)));
      });
      lines.push(`${' '.repeat(indent)}${parts.join(' '.repeat(gap))}`.trimEnd());
    }
    return lines;
  };
  return [
    ...render(headers),
    `${' '.repeat(indent)}${widths.map((w) => '-'.repeat(w)).join(' '.repeat(gap))}`,
    ...cells.flatMap(render),
  ];
}

/** RFC 4180 CSV (CRLF line ends, quotes doubled, fields with commas, quotes or line breaks quoted). */
export function csv(header: readonly string[], rows: ReadonlyArray<readonly unknown[]>): string {
  return stringify([header, ...rows], { record_delimiter: 'windows' });
}

/** A percentage with one decimal. */
export function percent(share: number): string {
  return `${(share * 100).toFixed(1)}%`;
}
