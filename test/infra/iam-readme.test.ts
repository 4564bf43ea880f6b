import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CfnTemplate } from '../../local/asl-local';
import { IAM_TABLES_CONFIG, STACK_SECTION, currentBlock, renderIamTables } from './iam-tables';
import { synth } from './synth';

const README = join(__dirname, '..', '..', 'README.md');

describe('issue 8 also: the README IAM tables are the synthesized template', () => {
  const expected = renderIamTables(synth(IAM_TABLES_CONFIG).template.toJSON() as CfnTemplate);

  it('has one IAM table per Lambda role in docs/readme/stack.md, equal to the template (regenerate: npm run docs)', () => {
    // Act
    const block = currentBlock(readFileSync(STACK_SECTION, 'utf8'));

    // Assess
    expect(block).toBe(expected);
  });

  it('has the same tables in README.md (assembled by docs/readme/build.sh)', () => {
    // Act
    const block = currentBlock(readFileSync(README, 'utf8'));

    // Assess
    expect(block).toBe(expected);
  });

  it('grants lambda:GetLayerVersion to protect-function on every layer of the region, and finish-run no dynamodb:PutItem', () => {
    // Act
    const protect = expected.slice(expected.indexOf('#### protect-function'), expected.indexOf('#### record-failure'));
    const finish = expected.slice(expected.indexOf('#### finish-run'), expected.indexOf('#### protect-function'));

    // Assess
    expect(protect).toContain('| `lambda:GetLayerVersion` | `arn:<partition>:lambda:<region>:*:layer:*:*` |');
    expect(finish).not.toContain('dynamodb:PutItem');
  });
});
