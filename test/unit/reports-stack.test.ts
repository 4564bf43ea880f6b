/**
 * Issue 12, the deployed-stack path of the reviewing commands: `--stack NAME` finds the audit table and the state
 * machine in the stack's outputs (issue 13's CfnOutputs, one DescribeStacks helper), lists runs with ListExecutions
 * and reads the run's items from the audit table. Mocked clients; no AWS.
 */
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { ListExecutionsCommand, SFNClient } from '@aws-sdk/client-sfn';
import { DynamoDBDocumentClient, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { UsageError } from '../../bin/commands/common';
import { openSource } from '../../bin/reports/source';

const cloudformation = mockClient(CloudFormationClient);
const sfn = mockClient(SFNClient);
const ddb = mockClient(DynamoDBDocumentClient);

beforeEach(() => {
  cloudformation.reset();
  sfn.reset();
  ddb.reset();
});

describe('--stack NAME', () => {
  it("reads the audit table and the state machine from the stack's outputs", async () => {
    // Prepare
    cloudformation.on(DescribeStacksCommand, { StackName: 'Prod' }).resolves({
      Stacks: [
        {
          StackName: 'Prod',
          CreationTime: new Date(0),
          StackStatus: 'CREATE_COMPLETE',
          Outputs: [
            { OutputKey: 'AuditTableName', OutputValue: 'prod-audit' },
            { OutputKey: 'StateMachineArn', OutputValue: 'arn:aws:states:eu-west-1:111122223333:stateMachine:zi' },
          ],
        },
      ],
    });
    sfn.on(ListExecutionsCommand).resolves({ executions: [{ name: 'run-2' } as never, { name: 'run-1' } as never] });
    ddb.on(QueryCommand).resolves({ Items: [{ functionName: 'orders', runId: 'run-2', sk: 's', outcome: 'SKIPPED' }] });

    // Act
    const source = await openSource({ stack: 'Prod' }, 'ZeroImpactProtect');
    const runs = await source.runIds(5);
    const items = await source.runItems('run-2');

    // Assess
    expect(source.label).toBe('audit table prod-audit');
    expect(runs).toEqual(['run-2', 'run-1']);
    expect(sfn.commandCalls(ListExecutionsCommand)[0]?.args[0].input.stateMachineArn).toBe(
      'arn:aws:states:eu-west-1:111122223333:stateMachine:zi',
    );
    expect(ddb.commandCalls(QueryCommand)[0]?.args[0].input).toMatchObject({
      TableName: 'prod-audit',
      IndexName: 'byRun',
    });
    expect(items.map((i) => i.functionName)).toEqual(['orders']);
  });

  it('names the missing output and the flag to use instead (one line, usage error)', async () => {
    cloudformation.on(DescribeStacksCommand).resolves({
      Stacks: [{ StackName: 'Old', CreationTime: new Date(0), StackStatus: 'CREATE_COMPLETE', Outputs: [] }],
    });

    const attempt = openSource({ stack: 'Old' }, 'ZeroImpactProtect');

    await expect(attempt).rejects.toThrow(UsageError);
    await expect(attempt).rejects.toThrow('stack Old has no audit table output (AuditTableName)');
  });
});
