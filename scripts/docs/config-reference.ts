/**
 * The configuration reference (docs/configuration.md), generated from the one schema (lib/config.ts, or the module
 * it re-exports): every key with its type, default and description. Types, defaults and limits come from the schema
 * itself (zod's JSON Schema of the input); descriptions come from the JSDoc comment on each key, read with the
 * TypeScript compiler API, so the schema's behaviour is untouched. `ts-node scripts/docs/config-reference.ts --write` (part of
 * `npm run docs`) rewrites the block; test/docs/config-reference.test.ts fails when the page is stale.
 */
import { readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';
import { z } from 'zod';
import { configSchema } from '../../lib/config';
import { writeBlock, type BlockMarkers } from './blocks';

const ROOT = join(__dirname, '..', '..');
export const CONFIG_PAGE = join(ROOT, 'docs', 'configuration.md');
/** Where the app imports the schema from; the schema itself may live in a module this one re-exports. */
export const CONFIG_MODULE = join(ROOT, 'lib', 'config.ts');
export const CONFIG_MARKERS: BlockMarkers = {
  begin:
    '<!-- config-reference:begin (generated from the configuration schema by scripts/docs/config-reference.ts) -->',
  end: '<!-- config-reference:end -->',
};

/** A key's JSDoc: the text (tags removed) and its `@default`, when it has one. */
export interface KeyDoc {
  text: string;
  defaultTag?: string;
}

/** One row of the reference. */
export interface KeyRow {
  path: string;
  type: string;
  required: boolean;
  /** The schema's default as JSON, when it has one. */
  default?: string;
  doc?: KeyDoc;
}

interface JsonSchema {
  type?: string;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: JsonSchema | boolean;
  propertyNames?: JsonSchema;
  items?: JsonSchema;
  default?: unknown;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  format?: string;
}

/**
 * The file that declares `configSchema`: lib/config.ts, or the module it re-exports (`export * from '...'`), so the
 * generator follows the schema wherever the layout puts it.
 */
export function schemaSource(path: string = CONFIG_MODULE): { path: string; text: string } {
  const text = readFileSync(path, 'utf8');
  if (/\bconst configSchema\b/.test(text)) return { path, text };
  for (const match of text.matchAll(/^export \* from '(\.[^']+)';/gm)) {
    const target = resolve(dirname(path), `${match[1]}.ts`);
    if (/\bconst configSchema\b/.test(readFileSync(target, 'utf8'))) return schemaSource(target);
  }
  throw new Error(`${relative(ROOT, path)}: no configSchema declared or re-exported`);
}

/** The dotted key paths of the schema's objects, each with its JSDoc. */
export function keyDocs(sourceText: string): Map<string, KeyDoc> {
  const source = ts.createSourceFile('config.ts', sourceText, ts.ScriptTarget.ES2022, true);
  const initializers = new Map<string, ts.Expression>();
  for (const statement of source.statements) {
    if (!ts.isVariableStatement(statement)) continue;
    for (const declaration of statement.declarationList.declarations) {
      if (ts.isIdentifier(declaration.name) && declaration.initializer !== undefined) {
        initializers.set(declaration.name.text, declaration.initializer);
      }
    }
  }
  /** The object literal a schema expression is built from: `z.strictObject({...})`, through chains and names. */
  const objectOf = (expression: ts.Expression): ts.ObjectLiteralExpression | undefined => {
    if (ts.isIdentifier(expression)) {
      const initializer = initializers.get(expression.text);
      return initializer === undefined ? undefined : objectOf(initializer);
    }
    if (!ts.isCallExpression(expression) || !ts.isPropertyAccessExpression(expression.expression)) return undefined;
    const callee = expression.expression;
    const first = expression.arguments[0];
    if (['strictObject', 'object'].includes(callee.name.text) && first !== undefined) {
      return ts.isObjectLiteralExpression(first) ? first : undefined;
    }
    return objectOf(callee.expression);
  };
  const docs = new Map<string, KeyDoc>();
  const walk = (literal: ts.ObjectLiteralExpression, prefix: string): void => {
    for (const property of literal.properties) {
      if (!ts.isPropertyAssignment(property)) continue;
      const name = ts.isIdentifier(property.name) || ts.isStringLiteral(property.name) ? property.name.text : undefined;
      if (name === undefined) continue;
      const path = prefix === '' ? name : `${prefix}.${name}`;
      const doc = ts.getJSDocCommentsAndTags(property).find(ts.isJSDoc);
      if (doc !== undefined) {
        const text = (ts.getTextOfJSDocComment(doc.comment) ?? '').replace(/\s+/g, ' ').trim();
        const tag = doc.tags?.find((t) => t.tagName.text === 'default');
        const defaultTag = tag === undefined ? undefined : (ts.getTextOfJSDocComment(tag.comment) ?? '').trim();
        docs.set(path, defaultTag === undefined ? { text } : { text, defaultTag });
      }
      const nested = objectOf(property.initializer);
      if (nested !== undefined) walk(nested, path);
    }
  };
  const root = initializers.get('configSchema');
  const rootObject = root === undefined ? undefined : objectOf(root);
  if (rootObject === undefined) throw new Error('configSchema = z.strictObject({...}) not found');
  walk(rootObject, '');
  return docs;
}

function code(value: unknown): string {
  return `\`${JSON.stringify(value)}\``;
}

function range(node: JsonSchema, unit: string): string {
  const parts: string[] = [];
  if (node.exclusiveMinimum !== undefined) parts.push(`> ${node.exclusiveMinimum}`);
  if (node.minimum !== undefined) parts.push(`≥ ${node.minimum}`);
  if (node.maximum !== undefined && node.maximum < Number.MAX_SAFE_INTEGER) parts.push(`≤ ${node.maximum}`);
  if (node.exclusiveMaximum !== undefined) parts.push(`< ${node.exclusiveMaximum}`);
  return parts.length === 0 ? unit : `${unit} ${parts.join(', ')}`;
}

/** A readable type for one JSON Schema node. */
export function typeOf(node: JsonSchema): string {
  if (node.enum !== undefined) return node.enum.map(code).join(' or ');
  if (node.anyOf !== undefined) return node.anyOf.map(typeOf).join(' or ');
  switch (node.type) {
    case 'string': {
      if (node.format !== undefined) return node.format;
      return node.maxLength === undefined ? 'string' : `string (at most ${node.maxLength} characters)`;
    }
    case 'integer':
      return range(node, 'integer');
    case 'number':
      return range(node, 'number');
    case 'boolean':
      return 'boolean';
    case 'array':
      return `list of ${node.items === undefined ? 'values' : typeOf(node.items)}`;
    case 'object': {
      if (node.properties !== undefined) {
        const keys = Object.keys(node.properties);
        return keys.length === 1 ? `{ "${keys[0]}": string }` : 'object';
      }
      const value = typeof node.additionalProperties === 'object' ? typeOf(node.additionalProperties) : 'value';
      return `map of variable names to ${value}`;
    }
    default:
      return 'value';
  }
}

/** Every key of the schema, depth first in schema order, with its type, default and JSDoc. */
export function keyRows(sourceText: string = schemaSource().text): KeyRow[] {
  const docs = keyDocs(sourceText);
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
  const rows: KeyRow[] = [];
  const walk = (node: JsonSchema, prefix: string): void => {
    for (const [name, child] of Object.entries(node.properties ?? {})) {
      const path = prefix === '' ? name : `${prefix}.${name}`;
      const doc = docs.get(path);
      rows.push({
        path,
        type: typeOf(child),
        required: node.required?.includes(name) ?? false,
        ...(child.default === undefined ? {} : { default: JSON.stringify(child.default) }),
        ...(doc === undefined ? {} : { doc }),
      });
      if (child.properties !== undefined) walk(child, path);
    }
  };
  walk(schema, '');
  return rows;
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

function defaultCell(row: KeyRow): string {
  if (row.default === undefined) return row.required ? '(required)' : '(none)';
  if (row.default === '{}') return '(each key its default)';
  return `\`${row.default}\``;
}

/** The Markdown block (markers included). */
export function renderConfigReference(rows: KeyRow[] = keyRows(), source: string = schemaSource().path): string {
  return [
    CONFIG_MARKERS.begin,
    '',
    `Descriptions from the comment on each key in \`${relative(ROOT, source)}\`.`,
    '',
    '| key | type | default | description |',
    '|---|---|---|---|',
    ...rows.map(
      (row) =>
        `| \`${row.path}\` | ${cell(row.type)} | ${cell(defaultCell(row))} | ${cell(row.doc?.text ?? '(undocumented)')} |`,
    ),
    '',
    CONFIG_MARKERS.end,
  ].join('\n');
}

if (require.main === module && process.argv.includes('--write')) {
  writeBlock(CONFIG_PAGE, CONFIG_MARKERS, renderConfigReference());
}
