import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { handler, LEASE_SECONDS } from '../../lambdas/start-run/handler';
import { mocks, NOW, prepare, useRuntime } from './gather-fixtures';

const event = {
  executionArn: 'arn:aws:states:eu-west-1:123456789012:execution:zi:run-2',
  executionName: 'run-2',
  startTime: '2025-06-01T12:00:00.000Z',
};

beforeEach(() => {
  prepare();
  useRuntime();
});

describe('start-run', () => {
  it('takes the lease for two hours and starts the run', async () => {
    mocks.ddb.on(PutCommand).resolves({});

    const out = await handler(event);

    expect(out).toEqual({ runId: 'run-2', startedAt: '2025-06-01T12:00:00.000Z', overlap: false });
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 1);
    expect(mocks.ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'state',
      Item: {
        pk: 'LOCK',
        runId: 'run-2',
        leaseUntil: NOW / 1000 + LEASE_SECONDS,
        expiresAt: NOW / 1000 + LEASE_SECONDS,
      },
    });
    expect(LEASE_SECONDS).toBe(7200);
  });

  it('records RUN_OVERLAP and reports the overlap when another run holds the lease', async () => {
    const held = new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    Object.assign(held, { Item: { runId: { S: 'run-1' } } });
    mocks.ddb.on(PutCommand, { TableName: 'state' }).rejects(held);
    mocks.ddb.on(PutCommand, { TableName: 'audit' }).resolves({});

    const out = await handler(event);

    expect(out).toEqual({ runId: 'run-2', startedAt: '2025-06-01T12:00:00.000Z', overlap: true, heldBy: 'run-1' });
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 2);
    const audit = mocks.ddb.commandCalls(PutCommand, { TableName: 'audit' })[0]!.args[0].input;
    expect(audit.ConditionExpression).toBe('attribute_not_exists(#pk) AND attribute_not_exists(#sk)');
    expect(audit.Item).toMatchObject({
      functionName: '#run',
      kind: 'run',
      runId: 'run-2',
      outcome: 'RUN_OVERLAP',
      sk: '2025-06-01T12:00:00.000Z#run-2#RUN_OVERLAP',
      mode: 'dry-run',
      reasons: [],
      repeat: false,
    });
    expect(audit.Item?.['detail']).toContain('run-1');
  });

  it('fails loudly when the lease cannot be read (never runs twice)', async () => {
    mocks.ddb.on(PutCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));

    await expect(handler(event)).rejects.toThrow('denied');
  });
});
