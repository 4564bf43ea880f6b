import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { PublishCommand } from '@aws-sdk/client-sns';
import { BatchGetCommand, BatchWriteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { handler } from '../../lambdas/record-failure/handler';
import { replayUnrecorded } from '../../lambdas/shared/replay';
import { runtime } from '../../lambdas/shared/runtime';
import type { AuditItem, ProtectRequest } from '../../lambdas/shared/domain/types';
import { failureDetail } from '../../lambdas/shared/recording';
import { repeatsItems } from '../../lambdas/shared/domain/repeats';
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

let sleeps: number[];
beforeEach(() => {
  ({ sleeps } = prepare());
  useRuntime();
  mocks.ddb.on(PutCommand).resolves({});
  mocks.ddb.on(GetCommand).resolves({});
  // The run's compact repeats items (issue 11): none unless a test says so.
  mocks.ddb.on(QueryCommand).resolves({ Items: [] });
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

    expect(out).toEqual({ recorded: 2, alreadyDecided: 0, unrecorded: 0 });
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 2);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 2);
    const first = mocks.ddb.commandCalls(PutCommand)[0]!.args[0].input.Item as AuditItem;
    expect(first).toMatchObject({
      functionName: 'a',
      sk: '2025-06-01T12:00:00.000Z#run-3#1-decision',
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

    expect(out).toEqual({ recorded: 1, alreadyDecided: 0, unrecorded: 0 });
    expect(mocks.ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'audit',
      Item: expect.objectContaining({ functionName: 'c', owner: 'ops', detail: 'States.Timeout', outcome: 'FAILED' }),
    });
  });

  it('retries a refused audit write with backoff on the injectable clock', async () => {
    mocks.ddb.on(PutCommand).rejectsOnce(new Error('boom')).resolves({});

    const out = await handler({
      runId: 'run-3',
      startedAt: '2025-06-01T12:00:00.000Z',
      items: [inventoryItem(fn('a')), inventoryItem(fn('b'))],
      error: { Error: 'Lambda.Unknown' },
    });

    expect(out).toEqual({ recorded: 2, alreadyDecided: 0, unrecorded: 0 });
    expect(sleeps).toEqual([500]);
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 3);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 2);
  });
});

const START = '2025-06-01T12:00:00.000Z';
const conditionalFailure = () =>
  new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
const unavailable = () => Object.assign(new Error('Service unavailable'), { name: 'ServiceUnavailable' });

/** An S3 bucket in memory: PutObject, ListObjectsV2, GetObject and DeleteObject on it. */
function bucket(): Map<string, string> {
  const objects = new Map<string, string>();
  mocks.s3.on(PutObjectCommand).callsFake((input: { Key: string; Body: string }) => {
    objects.set(input.Key, input.Body);
    return {};
  });
  mocks.s3.on(ListObjectsV2Command).callsFake((input: { Prefix: string }) => ({
    Contents: [...objects.keys()].filter((k) => k.startsWith(input.Prefix)).map((Key) => ({ Key })),
    IsTruncated: false,
  }));
  mocks.s3.on(GetObjectCommand).callsFake((input: { Key: string }) => {
    const body = objects.get(input.Key);
    if (body === undefined) throw Object.assign(new Error('no such key'), { name: 'NoSuchKey' });
    return { Body: { transformToString: async () => body } };
  });
  mocks.s3.on(DeleteObjectCommand).callsFake((input: { Key: string }) => {
    objects.delete(input.Key);
    return {};
  });
  return objects;
}

describe('record-failure, issue 9', () => {
  it('record-failure skips functions already decided', async () => {
    // The batch crashed after deciding "a": its decision stands, only "b" is recorded FAILED and published.
    mocks.ddb.on(PutCommand, { Item: { functionName: 'a' } }).rejects(conditionalFailure());

    const out = await handler({
      runId: 'run-3',
      startedAt: START,
      items: [inventoryItem(fn('a')), inventoryItem(fn('b'))],
      error: { Error: 'Lambda.Unknown' },
    });

    expect(out).toEqual({ recorded: 1, alreadyDecided: 1, unrecorded: 0 });
    expect(sleeps).toEqual([]); // an existing decision is an answer, not a failure to retry
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(mocks.sns.commandCalls(PublishCommand)[0]!.args[0].input.MessageAttributes?.['functionName']).toEqual({
      DataType: 'String',
      StringValue: 'b',
    });
  });

  it('issue 11: a function the failed batch recorded as a compact repeat is decided: no FAILED over it', async () => {
    const [repeats] = repeatsItems(
      {
        runId: 'run-3',
        runStartedAt: START,
        decidedAt: START,
        mode: 'dry-run',
        batchKey: 'a',
        account: '123456789012',
        region: 'eu-west-1',
        entries: [{ functionName: 'a', outcome: 'SKIPPED', reasons: ['PACKAGE_IMAGE'], warnings: [], sameAs: 'x' }],
      },
      { engineVersion: 'e', configHash: 'c', retentionDays: 400, repeatRetentionDays: 30 },
    );
    mocks.ddb
      .on(QueryCommand, { ExpressionAttributeValues: { ':p': '#run', ':s': `${START}#run-3#2-repeats#` } })
      .resolves({ Items: [repeats!] });

    const out = await handler({
      runId: 'run-3',
      startedAt: START,
      items: [inventoryItem(fn('a')), inventoryItem(fn('b'))],
      error: { Error: 'Lambda.Unknown' },
    });

    expect(out).toEqual({ recorded: 1, alreadyDecided: 1, unrecorded: 0 });
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 1);
    expect((mocks.ddb.commandCalls(PutCommand)[0]!.args[0].input.Item as AuditItem).functionName).toBe('b');
    // One Query for the run, not one per function.
    expect(mocks.ddb).toHaveReceivedCommandTimes(QueryCommand, 1);
  });

  it("gives a protect failure after the write-ahead the PENDING's images, so it can be rolled back", async () => {
    const image = {
      layers: ['x'],
      variableNames: ['A'],
      variablesBytes: 3,
      handler: 'h',
      revisionId: 'r1',
      ourValueMacs: {},
    };
    mocks.ddb.on(GetCommand, { Key: { functionName: 'c', sk: `${START}#run-3#0-pending` } }).resolves({
      Item: { functionName: 'c', outcome: 'PENDING', before: image, after: { ...image, layers: ['x', 'defender'] } },
    });
    const request: ProtectRequest = {
      runId: 'run-3',
      startedAt: START,
      protectionAllowed: true,
      functionName: 'c',
      functionArn: arn('c'),
      facts: { configuration: fn('c'), tags: {} },
    };

    await handler({ runId: 'run-3', startedAt: START, items: [request], error: { Error: 'States.Timeout' } });

    const failed = mocks.ddb.commandCalls(PutCommand)[0]!.args[0].input.Item as AuditItem;
    expect(failed).toMatchObject({ outcome: 'FAILED', before: image, after: { layers: ['x', 'defender'] } });
    expect(failed.detail).toMatch(/may have been applied; to undo: npx zero-impact rollback --function c$/);
    expect(failed).not.toHaveProperty('expiresAt');
  });

  it('DynamoDB down: record-failure retries then writes the S3 fallback; the next run replays it once', async () => {
    const objects = bucket();
    mocks.ddb.on(PutCommand).rejects(unavailable());

    const out = await handler({
      runId: 'run-3',
      startedAt: START,
      items: [inventoryItem(fn('a'), { team: 'shop' }), inventoryItem(fn('b'))],
      error: { Error: 'Lambda.Unknown', Cause: lambdaCause },
    });

    expect(out).toEqual({ recorded: 0, alreadyDecided: 0, unrecorded: 2 });
    // Bounded backoff for the first; the table is then known down and the second goes to S3 at once.
    expect(sleeps).toEqual([500, 1000, 2000, 4000]);
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 6);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0); // nothing written, nothing published
    expect([...objects.keys()]).toEqual(['runs/run-3/unrecorded/a.json', 'runs/run-3/unrecorded/b.json']);
    expect(JSON.parse(objects.get('runs/run-3/unrecorded/a.json')!)).toMatchObject({
      functionName: 'a',
      runId: 'run-3',
      runStartedAt: START,
      outcome: 'FAILED',
      owner: 'shop',
      detail: 'Lambda.Unknown: ValidationException: Value […] at […] failed to satisfy constraint',
    });
    expect(everythingSent()).not.toContain(CANARY);

    // The next run's start: the table is back. Each object is written once and deleted; the replay names the run,
    // whose owed notices start-run's outbox drain sends (test/handlers/notices.test.ts).
    const written = new Set<string>();
    mocks.ddb.on(PutCommand).callsFake((input: { Item: AuditItem }) => {
      const key = `${input.Item.functionName}|${input.Item.sk}`;
      if (written.has(key)) throw conditionalFailure();
      written.add(key);
      return {};
    });
    const first = await replayUnrecorded(runtime(), 'run-4');
    const second = await replayUnrecorded(runtime(), 'run-4');

    expect(first).toEqual({
      replayed: 2,
      alreadyDecided: 0,
      runIds: ['run-3'],
      kept: 0,
      items: [
        expect.objectContaining({ functionName: 'a', outcome: 'FAILED' }),
        expect.objectContaining({ functionName: 'b', outcome: 'FAILED' }),
      ],
    });
    expect(second).toEqual({ replayed: 0, alreadyDecided: 0, runIds: [], kept: 0 });
    expect([...written]).toEqual([`a|${START}#run-3#1-decision`, `b|${START}#run-3#1-decision`]);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
    expect(objects.size).toBe(0);
  });

  it('a replay of a function its run decided after all writes and publishes nothing, and deletes the object', async () => {
    const objects = bucket();
    mocks.ddb.on(PutCommand).rejects(unavailable());
    await handler({ runId: 'run-3', startedAt: START, items: [inventoryItem(fn('a'))], error: { Error: 'E' } });
    mocks.ddb.on(PutCommand).rejects(conditionalFailure());

    const result = await replayUnrecorded(runtime(), 'run-4');

    expect(result).toEqual({ replayed: 0, alreadyDecided: 1, runIds: ['run-3'], kept: 0 });
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
    expect(objects.size).toBe(0);
  });

  it('SNS down: the FAILED item is the outbox entry (no S3 object); a sent notice is marked in the digest', async () => {
    const objects = bucket();
    mocks.sns.on(PublishCommand).rejectsOnce(new Error('InternalErrorException')).resolves({ MessageId: 'm' });
    mocks.ddb.on(BatchGetCommand).resolves({ Responses: { state: [] } });
    mocks.ddb.on(BatchWriteCommand).resolves({});

    const refused = await handler({
      runId: 'run-3',
      startedAt: START,
      items: [inventoryItem(fn('a'))],
      error: { Error: 'E' },
    });
    const sent = await handler({
      runId: 'run-3',
      startedAt: START,
      items: [inventoryItem(fn('b'))],
      error: { Error: 'E' },
    });

    // a: recorded, not published, not marked (finish-run's drain sends it); b: published and marked sent.
    expect(refused.recorded).toBe(1);
    expect(sent.recorded).toBe(1);
    expect(objects.size).toBe(0);
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 1);
    expect(mocks.ddb).toHaveReceivedCommandWith(BatchWriteCommand, {
      RequestItems: {
        state: [{ PutRequest: { Item: expect.objectContaining({ pk: 'LAST#b', outcome: 'FAILED' }) } }],
      },
    });
  });

  it('keeps a fallback object while the table is still down', async () => {
    const objects = bucket();
    objects.set(
      'runs/run-3/unrecorded/a.json',
      JSON.stringify({
        functionName: 'a',
        functionArn: null,
        runId: 'run-3',
        runStartedAt: START,
        decidedAt: START,
        mode: 'dry-run',
        outcome: 'FAILED',
        detail: 'E',
        afterProtect: false,
      }),
    );
    objects.set('runs/run-3/inventory.json', '[]');
    mocks.ddb.on(PutCommand).rejects(unavailable());

    const result = await replayUnrecorded(runtime(), 'run-4');

    expect(result).toEqual({ replayed: 0, alreadyDecided: 0, runIds: [], kept: 1 });
    expect(objects.size).toBe(2);
    expect(mocks.s3).toHaveReceivedCommandTimes(ListObjectsV2Command, 1);
    expect(mocks.s3).toHaveReceivedCommandTimes(GetObjectCommand, 1);
  });
});
