/**
 * Issue 13: the configuration reference (docs/configuration.md) is generated from the schema in lib/config.ts by
 * scripts/docs/config-reference.ts (`npm run docs`); these tests fail when the page is stale, when a key has no
 * description, when a key's `@default` comment disagrees with the schema, or when the README's summary does.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { blockIn } from '../../scripts/docs/blocks';
import {
  CONFIG_MARKERS,
  CONFIG_PAGE,
  keyRows,
  renderConfigReference,
  schemaSource,
} from '../../scripts/docs/config-reference';
import { configSchema } from '../../lib/config';
import { README, read } from './markdown';

const rows = keyRows();

/** The leaf key paths of an object of defaults, as `config show` would name them. */
function paths(value: unknown, prefix = ''): string[] {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return Object.entries(value).flatMap(([key, child]) => paths(child, prefix === '' ? key : `${prefix}.${key}`));
}

describe('the configuration reference', () => {
  it('is the rendering of the schema as it stands (regenerate: npm run docs)', () => {
    // Act
    const block = blockIn(readFileSync(CONFIG_PAGE, 'utf8'), CONFIG_MARKERS);

    // Assess
    expect(block).toBe(renderConfigReference(rows));
  });

  it('lists every key of the schema, the defaulted ones among them', () => {
    // Prepare: every key a parse fills in, plus the required and optional keys without a default.
    const parsed = configSchema.parse({
      defender: { layerArn: 'arn:aws:lambda:eu-west-1:123456789012:layer:d:1', environment: {} },
    });
    const listed = new Set(rows.map((row) => row.path));

    // Act
    const missing = paths(parsed).filter((path) => !listed.has(path) && !path.startsWith('defender.environment'));

    // Assess
    expect(missing).toEqual([]);
    for (const key of [
      'defender.layerArn',
      'defender.environment',
      'defender.handler',
      'defender.policySource.console',
    ]) {
      expect(listed).toContain(key);
    }
  });

  it("has a description for every key, taken from its comment in the schema's source", () => {
    // Act
    const undocumented = rows.filter((row) => row.doc === undefined || row.doc.text.length < 10).map((r) => r.path);

    // Assess
    expect(undocumented).toEqual([]);
  });

  it("has no @default comment that disagrees with the schema's default", () => {
    // Act
    const disagree = rows
      .filter((row) => row.doc?.defaultTag !== undefined)
      .filter((row) => JSON.stringify(JSON.parse(row.doc!.defaultTag!)) !== row.default)
      .map((row) => `${row.path}: comment ${row.doc!.defaultTag}, schema ${row.default}`);

    // Assess
    expect(disagree).toEqual([]);
  });

  it('reads descriptions from the source, so a changed comment changes the page', () => {
    // Prepare
    const source = schemaSource().text.replace(
      '/** Functions per child workflow',
      '/** CHANGED Functions per child workflow',
    );

    // Act
    const row = keyRows(source).find((r) => r.path === 'rates.batchSize');

    // Assess
    expect(row?.doc?.text).toMatch(/^CHANGED /);
    expect(row?.type).toBe('integer ≥ 1, ≤ 250');
    expect(row?.default).toBe('50');
  });

  it('follows a module that only re-exports the schema to the file that declares it', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'zi-config-'));
    mkdirSync(join(dir, 'domain'));
    writeFileSync(join(dir, 'config.ts'), "export * from './other';\nexport * from './domain/config';\n");
    writeFileSync(join(dir, 'other.ts'), 'export const unrelated = 1;\n');
    writeFileSync(join(dir, 'domain', 'config.ts'), 'export const configSchema = z.strictObject({});\n');

    // Act
    const source = schemaSource(join(dir, 'config.ts'));

    // Assess
    expect(source.path).toBe(join(dir, 'domain', 'config.ts'));
    expect(renderConfigReference([], source.path)).toContain('config.ts`.');
    rmSync(dir, { recursive: true });
  });

  it("quotes, in the README's summary, only keys of the schema with their default", () => {
    // Prepare
    const readme = read(README);
    const section = readme.slice(readme.indexOf('## Configuration'), readme.indexOf('## Documentation'));
    const byPath = new Map(rows.map((row) => [row.path, row]));

    // Act
    const summary = [...section.matchAll(/^\| `([^`]+)` \| ([^|]+) \|/gm)].map((m) => ({
      path: m[1]!,
      quoted: m[2]!.trim(),
    }));
    const wrong = summary.filter(({ path, quoted }) => {
      const row = byPath.get(path);
      if (row === undefined) return true;
      if (row.default === undefined) return !['(required)', '(none)'].includes(quoted);
      return quoted.startsWith('`') && !quoted.includes('…') && quoted !== `\`${row.default}\``;
    });

    // Assess
    expect(summary.length).toBeGreaterThan(5);
    expect(wrong).toEqual([]);
  });
});
