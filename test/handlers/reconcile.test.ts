import { GenerateMacCommand, KMSClient } from '@aws-sdk/client-kms';
import { GetFunctionCommand, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import { PublishCommand } from '@aws-sdk/client-sns';
import { BatchGetCommand, BatchWriteCommand, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { resetMacKey } from '../../lambdas/shared/adapters/mac-key';
import { decisionItem } from '../../lambdas/shared/domain/audit';
import { ourVariableNames } from '../../lambdas/shared/domain/mac';
import { configurationImage } from '../../lambdas/shared/domain/plan';
import type { AuditItem, FunctionConfiguration } from '../../lambdas/shared/domain/types';
import { reconcilePending, RECONCILE_WINDOW_MS } from '../../lambdas/shared/reconcile';
import { runtime } from '../../lambdas/shared/runtime';
import { countRun } from '../../lambdas/finish-run/handler';
import {
  CANARY,
  captureLogs,
  captureMetrics,
  everythingSent,
  fn,
  LAYER,
  mocks,
  NOW,
  prepare,
  silenceLogs,
  useRuntime,
  WRAPPER,
} from './gather-fixtures';

const kms = mockClient(KMSClient);
const MAC_KEY = new Uint8Array(32).fill(7);
const RUN_START = '2025-06-01T10:59:00.000Z';
const OTHER = 'arn:aws:lambda:eu-west-1:123456789012:layer:pandas:4';

const before = (): FunctionConfiguration => fn('orders', { Layers: [{ Arn: OTHER }], RevisionId: 'rev-1' });
const protectedNow = (status = 'Successful'): FunctionConfiguration =>
  fn('orders', {
    Layers: [{ Arn: OTHER }, { Arn: LAYER }],
    Environment: { Variables: { DB_HOST: 'db.internal', API_KEY: CANARY, AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
    RevisionId: 'rev-2',
    LastUpdateStatus: status as never,
    ...(status === 'Failed' ? { LastUpdateStatusReason: 'EniLimitExceeded: no more ENIs' } : {}),
  });

/** The PENDING a killed run left: images as protect writes them (same MAC key). */
function pendingItem(): AuditItem {
  const mac = { key: MAC_KEY, ourNames: ourVariableNames(runtime().config) };
  return decisionItem(
    {
      functionName: 'orders',
      functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:orders',
      runId: 'run-1',
      runStartedAt: RUN_START,
      decidedAt: '2025-06-01T11:00:00.000Z',
      mode: 'protect',
      outcome: 'PENDING',
      reasons: [],
      warnings: [],
      checks: [],
      owner: 'shop',
      before: configurationImage(before(), mac, 'orders'),
      after: configurationImage({ ...protectedNow(), RevisionId: undefined }, mac, 'orders'),
    },
    { engineVersion: '0.1.0', configHash: 'h', retentionDays: 400, repeatRetentionDays: 30 },
  );
}

function written(): AuditItem[] {
  return mocks.ddb.commandCalls(PutCommand).map((c) => c.args[0].input.Item as AuditItem);
}

beforeEach(() => {
  prepare();
  useRuntime({
    mode: 'protect',
    defender: { layerArn: LAYER, environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
  });
  process.env['MAC_KEY_ID'] = 'arn:aws:kms:eu-west-1:123456789012:key/mac';
  kms.reset();
  resetMacKey();
  kms.on(GenerateMacCommand).resolves({ Mac: MAC_KEY });
  mocks.ddb.on(QueryCommand).resolves({ Items: [pendingItem()] });
  mocks.ddb.on(GetCommand).resolves({});
  mocks.ddb.on(PutCommand).resolves({});
  mocks.ddb.on(BatchGetCommand).resolves({ Responses: { state: [] } });
  mocks.ddb.on(BatchWriteCommand).resolves({});
  mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
});
afterEach(silenceLogs);

describe('reconcilePending (issue 9)', () => {
  it('reconciles a PENDING whose update landed: PROTECTED for that run, reconciled, with its images', async () => {
    mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: protectedNow() as never });
    const emitted = captureMetrics();
    const logs = captureLogs();

    const result = await reconcilePending(runtime(), NOW);

    expect(result).toEqual({
      reconciled: [{ functionName: 'orders', runId: 'run-1', outcome: 'PROTECTED' }],
      unfinished: [],
      // As written, for start-run's outbox drain (the byRun index may not show it yet).
      items: [
        expect.objectContaining({ functionName: 'orders', runId: 'run-1', outcome: 'PROTECTED', reconciled: true }),
      ],
    });
    expect(mocks.ddb).toHaveReceivedCommandWith(QueryCommand, {
      IndexName: 'byChange',
      KeyConditionExpression: 'changeKey = :c AND decidedAt >= :s',
      ExpressionAttributeValues: { ':c': 'CHANGE', ':s': new Date(NOW - RECONCILE_WINDOW_MS).toISOString() },
    });
    expect(mocks.ddb).toHaveReceivedCommandWith(GetCommand, {
      TableName: 'audit',
      Key: { functionName: 'orders', sk: `${RUN_START}#run-1#1-decision` },
      ConsistentRead: true,
    });
    const [decision] = written();
    expect(decision).toMatchObject({
      functionName: 'orders',
      sk: `${RUN_START}#run-1#1-decision`,
      runId: 'run-1',
      outcome: 'PROTECTED',
      reconciled: true,
      owner: 'shop',
      before: pendingItem().before,
      after: { layers: [OTHER, LAYER], revisionId: 'rev-2' },
    });
    expect(emitted).toContainEqual({ name: 'ReconciledChanges', value: 1, dimensions: {} });
    // the digest keeps the MACs of what the engine wrote (refresh detection, issue 8 item 7)
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 1);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
    // the run's summary no longer lists the function as unfinished
    expect(countRun([pendingItem(), decision!]).unfinished).toEqual([]);
    expect(countRun([pendingItem()]).unfinished).toEqual(['orders']);
    expect(everythingSent()).not.toContain(CANARY);
    expect(logs.text()).not.toContain(CANARY);
  });

  it('reconciles a PENDING whose update did not land: SKIPPED, nothing was changed', async () => {
    mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: before() as never });

    const result = await reconcilePending(runtime(), NOW);

    expect(result.reconciled).toEqual([{ functionName: 'orders', runId: 'run-1', outcome: 'SKIPPED' }]);
    expect(written()[0]).toMatchObject({
      outcome: 'SKIPPED',
      reasons: [],
      reconciled: true,
      detail: expect.stringContaining('nothing was changed'),
    });
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 0);
  });

  it('reconciles an update AWS marked Failed as FAILED with its reason, owed to the owner through the outbox', async () => {
    mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: protectedNow('Failed') as never });

    const result = await reconcilePending(runtime(), NOW);

    expect(written()[0]).toMatchObject({
      outcome: 'FAILED',
      reconciled: true,
      detail: expect.stringContaining('EniLimitExceeded'),
    });
    // Not published here: the result names the run, and start-run's outbox drain sends the notice once.
    expect(result.reconciled).toEqual([{ functionName: 'orders', runId: 'run-1', outcome: 'FAILED' }]);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('records a deleted function as FUNCTION_DELETED', async () => {
    mocks.lambda.on(GetFunctionCommand).rejects(new ResourceNotFoundException({ message: 'gone', $metadata: {} }));

    await reconcilePending(runtime(), NOW);

    expect(written()[0]).toMatchObject({ outcome: 'SKIPPED', reasons: ['FUNCTION_DELETED'], reconciled: true });
  });

  it('leaves an update still in progress, or an unreadable function, unfinished for the next run', async () => {
    mocks.lambda.on(GetFunctionCommand).resolvesOnce({ Configuration: protectedNow('InProgress') as never });

    const first = await reconcilePending(runtime(), NOW);
    mocks.lambda.on(GetFunctionCommand).rejects(new Error('Rate exceeded'));
    const second = await reconcilePending(runtime(), NOW);

    expect(first).toEqual({ reconciled: [], unfinished: [{ functionName: 'orders', runId: 'run-1' }] });
    expect(second).toEqual(first);
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 0);
  });

  it('touches nothing for a PENDING its run decided (in the index, or by a consistent read)', async () => {
    const done = { ...pendingItem(), outcome: 'PROTECTED', sk: `${RUN_START}#run-1#1-decision` };
    mocks.ddb.on(QueryCommand).resolvesOnce({ Items: [pendingItem(), done] });

    await reconcilePending(runtime(), NOW);
    expect(mocks.ddb).toHaveReceivedCommandTimes(GetCommand, 0);

    mocks.ddb.on(GetCommand).resolves({ Item: { ...done, outcome: 'SKIPPED' } });
    const result = await reconcilePending(runtime(), NOW);

    expect(result).toEqual({ reconciled: [], unfinished: [] });
    expect(mocks.lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 0);
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 0);
  });
});
