import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CfnTemplate } from '../../local/asl-local';
import { BEGIN, IAM_PAGE, IAM_TABLES_CONFIG, currentBlock, renderIamTables } from './iam-tables';
import { synth } from './synth';

const README = join(__dirname, '..', '..', 'README.md');

describe('issue 8 also: the IAM page tables are the synthesized template', () => {
  const expected = renderIamTables(synth(IAM_TABLES_CONFIG).template.toJSON() as CfnTemplate);

  it('has one IAM table per Lambda role in docs/iam.md, equal to the template (regenerate: npm run docs)', () => {
    // Act
    const block = currentBlock(readFileSync(IAM_PAGE, 'utf8'));

    // Assess
    expect(block).toBe(expected);
  });

  it('keeps the tables on their one page: the README links to docs/iam.md and holds no copy', () => {
    // Act
    const readme = readFileSync(README, 'utf8');

    // Assess
    expect(readme).toContain('](docs/iam.md');
    expect(readme).not.toContain(BEGIN);
  });

  it('grants lambda:GetLayerVersion to protect-function on every layer of the region, and finish-run no dynamodb:PutItem', () => {
    // Act
    const protect = expected.slice(expected.indexOf('### protect-function'), expected.indexOf('### record-failure'));
    const finish = expected.slice(expected.indexOf('### finish-run'), expected.indexOf('### protect-function'));

    // Assess
    expect(protect).toContain('| `lambda:GetLayerVersion` | `arn:<partition>:lambda:<region>:*:layer:*:*` |');
    expect(finish).not.toContain('dynamodb:PutItem');
  });
});
