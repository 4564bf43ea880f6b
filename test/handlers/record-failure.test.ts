import { PublishCommand } from '@aws-sdk/client-sns';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { handler } from '../../lambdas/record-failure/handler';
import type { AuditItem, ProtectRequest } from '../../lambdas/shared/domain/types';
import { failureDetail } from '../../lambdas/shared/recording';
import {
  arn,
  CANARY,
  captureLogs,
  everythingSent,
  fn,
  inventoryItem,
  mocks,
  prepare,
  silenceLogs,
  useRuntime,
} from './gather-fixtures';

const lambdaCause = JSON.stringify({
  errorType: 'ValidationException',
  errorMessage: `Value '${CANARY}' at 'environment.variables' failed to satisfy constraint`,
  trace: ['at handler (/var/task/index.js:1:1)', CANARY],
});

beforeEach(() => {
  prepare();
  useRuntime();
  mocks.ddb.on(PutCommand).resolves({});
  mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
});
afterEach(silenceLogs);

describe('failureDetail', () => {
  it('keeps the error name, errorType and a scrubbed errorMessage, never the trace or quoted input', () => {
    expect(failureDetail({ Error: 'Lambda.Unknown', Cause: lambdaCause })).toBe(
      'Lambda.Unknown: ValidationException: Value […] at […] failed to satisfy constraint',
    );
  });

  it('handles a plain-text cause, a missing cause and truncates long messages', () => {
    expect(failureDetail({ Error: 'States.Timeout', Cause: 'Task timed out after 900.00 seconds' })).toBe(
      'States.Timeout: Task timed out after 900.00 seconds',
    );
    expect(failureDetail(undefined)).toBe('Error');
    expect(failureDetail({ Error: 'E', Cause: 'x'.repeat(500) }).length).toBeLessThanOrEqual(3 + 200);
  });
});

describe('record-failure', () => {
  it('records every function of a failed batch as FAILED and publishes each', async () => {
    const logs = captureLogs();

    const out = await handler({
      runId: 'run-3',
      startedAt: '2025-06-01T12:00:00.000Z',
      items: [inventoryItem(fn('a'), { team: 'shop' }), inventoryItem(fn('b'))],
      error: { Error: 'Lambda.Unknown', Cause: lambdaCause },
    });

    expect(out).toEqual({ recorded: 2 });
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 2);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 2);
    const first = mocks.ddb.commandCalls(PutCommand)[0]!.args[0].input.Item as AuditItem;
    expect(first).toMatchObject({
      functionName: 'a',
      functionArn: arn('a'),
      outcome: 'FAILED',
      runId: 'run-3',
      owner: 'shop',
      changeKey: 'CHANGE',
      reasons: [],
      detail: 'Lambda.Unknown: ValidationException: Value […] at […] failed to satisfy constraint',
    });
    const attributes = mocks.sns.commandCalls(PublishCommand)[0]!.args[0].input.MessageAttributes;
    expect(attributes?.['outcome']).toEqual({ DataType: 'String', StringValue: 'FAILED' });
    expect(attributes?.['owner']).toEqual({ DataType: 'String', StringValue: 'shop' });
    expect(everythingSent()).not.toContain(CANARY);
    expect(logs.text()).not.toContain(CANARY);
  });

  it('records a failed protect request', async () => {
    const request: ProtectRequest = {
      runId: 'run-3',
      startedAt: '2025-06-01T12:00:00.000Z',
      protectionAllowed: true,
      functionName: 'c',
      functionArn: arn('c'),
      facts: { configuration: fn('c'), tags: { team: 'ops' } },
    };

    const out = await handler({
      runId: 'run-3',
      startedAt: request.startedAt,
      items: [request],
      error: { Error: 'States.Timeout' },
    });

    expect(out).toEqual({ recorded: 1 });
    expect(mocks.ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'audit',
      Item: expect.objectContaining({ functionName: 'c', owner: 'ops', detail: 'States.Timeout', outcome: 'FAILED' }),
    });
  });

  it('goes on when one audit write fails, and counts only what was recorded', async () => {
    mocks.ddb.on(PutCommand).rejectsOnce(new Error('boom')).resolves({});

    const out = await handler({
      runId: 'run-3',
      startedAt: '2025-06-01T12:00:00.000Z',
      items: [inventoryItem(fn('a')), inventoryItem(fn('b'))],
      error: { Error: 'Lambda.Unknown' },
    });

    expect(out).toEqual({ recorded: 1 });
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 2);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 2);
  });
});
