/**
 * The IAM page's tables (docs/iam.md), rendered from the synthesized template: one table per Lambda role, one row per
 * policy statement, exactly as granted. test/infra/iam-readme.test.ts fails when docs/iam.md differs from what this
 * renders; `npm run docs` rewrites the block.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { handlerNameFor, resolveIntrinsics, type CfnTemplate, type LocalNaming } from '../../local/asl-local';
import { handlerNames } from '../../local/local-runner';

export const IAM_PAGE = join(__dirname, '..', '..', 'docs', 'iam.md');
export const BEGIN = '<!-- iam-tables:begin (generated from the synthesized template by test/infra/iam-tables.ts) -->';
export const END = '<!-- iam-tables:end -->';

/** The configuration the tables are rendered for: protect mode, the Defender policy from SSM (every grant). */
export const IAM_TABLES_CONFIG = { mode: 'protect' };

const NAMING: LocalNaming = { region: '<region>', account: '<account>', stackName: 'STACK' };

/** Readable names for the stack's own resources, by logical id. */
function label(logicalId: string, type: string): string | undefined {
  if (type === 'AWS::DynamoDB::Table') return /Audit/.test(logicalId) ? 'audit table' : 'state table';
  if (type === 'AWS::SNS::Topic') return /Alarm/.test(logicalId) ? 'alarm topic' : 'skip topic';
  if (type === 'AWS::S3::Bucket') return 'inventory bucket';
  if (type === 'AWS::KMS::Key') return /Mac|Hmac/i.test(logicalId) ? 'MAC key' : 'stack key';
  if (type === 'AWS::Logs::LogGroup') return 'its own log group';
  if (type === 'AWS::Lambda::Function') return `function ${logicalId}`;
  return undefined;
}

function replacements(template: CfnTemplate): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
    const name = label(logicalId, resource.Type);
    if (name === undefined) continue;
    pairs.push([String(resolveIntrinsics({ 'Fn::GetAtt': [logicalId, 'Arn'] }, template, NAMING)), name]);
  }
  return pairs.sort(([a], [b]) => b.length - a.length);
}

function readable(value: unknown, template: CfnTemplate, pairs: Array<[string, string]>): string {
  let text = String(resolveIntrinsics(value, template, NAMING));
  for (const [arn, name] of pairs) text = text.split(arn).join(name);
  return text.replace('arn:aws:', 'arn:<partition>:');
}

function list(value: unknown): unknown[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function cell(items: string[]): string {
  return items.map((i) => `\`${i}\``).join(', ');
}

function condition(raw: unknown, template: CfnTemplate, pairs: Array<[string, string]>): string {
  if (raw === undefined) return '';
  const parts: string[] = [];
  for (const [operator, keys] of Object.entries(raw as Record<string, Record<string, unknown>>)) {
    for (const [key, values] of Object.entries(keys)) {
      parts.push(`\`${operator}\` \`${key}\` = ${cell(list(values).map((v) => readable(v, template, pairs)))}`);
    }
  }
  return parts.join('; ');
}

/** The Markdown block: a table per Lambda role, in handler-name order. */
export function renderIamTables(template: CfnTemplate): string {
  const resources = template.Resources ?? {};
  const pairs = replacements(template);
  const names = handlerNames();
  const sections: string[] = [];
  const functions = Object.entries(resources)
    .filter(([, r]) => r.Type === 'AWS::Lambda::Function')
    .map(([id, r]) => ({ id, handler: handlerNameFor(id, r, names) ?? id, resource: r }))
    .sort((a, b) => a.handler.localeCompare(b.handler));
  for (const fn of functions) {
    const roleId = (fn.resource.Properties?.['Role'] as { 'Fn::GetAtt'?: [string] } | undefined)?.['Fn::GetAtt']?.[0];
    const role = roleId === undefined ? undefined : resources[roleId];
    const managed = list(role?.Properties?.['ManagedPolicyArns']).length;
    const rows: string[] = [];
    for (const resource of Object.values(resources)) {
      if (resource.Type !== 'AWS::IAM::Policy') continue;
      const attached = list(resource.Properties?.['Roles']).some((r) => (r as { Ref?: string }).Ref === roleId);
      if (!attached) continue;
      const document = resource.Properties?.['PolicyDocument'] as { Statement?: Array<Record<string, unknown>> };
      for (const statement of document.Statement ?? []) {
        const actions = list(statement['Action']).map(String);
        const targets = list(statement['Resource']).map((r) => readable(r, template, pairs));
        const effect = statement['Effect'] === 'Deny' ? 'Deny ' : '';
        rows.push(
          `| ${effect}${cell(actions)} | ${cell(targets)} | ${condition(statement['Condition'], template, pairs)} |`,
        );
      }
    }
    sections.push(
      [
        `### ${fn.handler}`,
        '',
        ...(managed > 0 ? [`Managed policies: ${managed}.`, ''] : []),
        '| actions | resources | condition |',
        '|---|---|---|',
        ...rows,
      ].join('\n'),
    );
  }
  return [BEGIN, '', ...sections.flatMap((s) => [s, '']), END].join('\n');
}

/** The generated block as it stands in a Markdown text, or undefined. */
export function currentBlock(markdown: string): string | undefined {
  const start = markdown.indexOf(BEGIN);
  const end = markdown.indexOf(END);
  return start < 0 || end < start ? undefined : markdown.slice(start, end + END.length);
}

if (require.main === module && process.argv.includes('--write')) {
  // eslint-disable-next-line @typescript-eslint/no-require-imports -- loaded only when writing (synthesizes the stack)
  const { synth } = require('./synth') as typeof import('./synth');
  const block = renderIamTables(synth(IAM_TABLES_CONFIG).template.toJSON() as CfnTemplate);
  const markdown = readFileSync(IAM_PAGE, 'utf8');
  const current = currentBlock(markdown);
  if (current === undefined) throw new Error(`${IAM_PAGE} has no ${BEGIN} ... ${END} block`);
  writeFileSync(
    IAM_PAGE,
    markdown.replace(current, () => block),
  );
}
