import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import {
  acquireLease,
  claimProtectionSlot,
  lastDecisions,
  releaseLease,
  takeOverLease,
} from '../../lambdas/shared/adapters/state-store';

const ddb = mockClient(DynamoDBDocumentClient);
mockClient(DynamoDBClient);

function conditionFailed(item?: Record<string, unknown>): ConditionalCheckFailedException {
  const error = new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
  if (item !== undefined) Object.assign(error, { Item: item });
  return error;
}

const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:zi:run-2';
const HOLDER = 'arn:aws:states:eu-west-1:123456789012:execution:zi:run-1';

beforeEach(() => ddb.reset());

describe('acquireLease', () => {
  it('takes a free lease with a conditional put', async () => {
    ddb.on(PutCommand).resolves({});

    const lease = await acquireLease('state', {
      runId: 'run-2',
      executionArn: EXECUTION,
      nowEpoch: 1000,
      leaseSeconds: 7200,
    });

    expect(lease).toEqual({ acquired: true });
    expect(ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'state',
      Item: { pk: 'LOCK', runId: 'run-2', executionArn: EXECUTION, leaseUntil: 8200, expiresAt: 8200 },
      ConditionExpression:
        'attribute_not_exists(pk) OR runId = :run OR (leaseUntil < :now AND attribute_not_exists(executionArn))',
    });
  });

  it('reports the run that holds an unexpired lease, its execution and its expiry', async () => {
    ddb
      .on(PutCommand)
      .rejects(conditionFailed({ runId: { S: 'run-1' }, executionArn: { S: HOLDER }, leaseUntil: { N: '5000' } }));

    const lease = await acquireLease('state', { runId: 'run-2', nowEpoch: 1000, leaseSeconds: 7200 });

    expect(lease).toEqual({ acquired: false, heldBy: 'run-1', holderExecutionArn: HOLDER, leaseUntil: 5000 });
  });

  it('reports a lease written before issue 9 (no execution ARN) as held, without one', async () => {
    ddb.on(PutCommand).rejects(conditionFailed({ runId: { S: 'run-1' } }));

    const lease = await acquireLease('state', { runId: 'run-2', nowEpoch: 1000, leaseSeconds: 7200 });

    expect(lease).toEqual({ acquired: false, heldBy: 'run-1' });
  });

  it('lets any other error through (the run then fails loudly instead of running twice)', async () => {
    ddb.on(PutCommand).rejects(new Error('AccessDenied'));

    await expect(acquireLease('state', { runId: 'run-2', nowEpoch: 1000, leaseSeconds: 7200 })).rejects.toThrow(
      'AccessDenied',
    );
  });
});

describe('takeOverLease', () => {
  it('takes the lease only while it still names the ended holder', async () => {
    ddb.on(PutCommand).resolves({});

    const taken = await takeOverLease('state', {
      runId: 'run-2',
      executionArn: EXECUTION,
      nowEpoch: 1000,
      leaseSeconds: 7200,
      fromRunId: 'run-1',
    });

    expect(taken).toBe(true);
    expect(ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'state',
      Item: { pk: 'LOCK', runId: 'run-2', executionArn: EXECUTION, leaseUntil: 8200, expiresAt: 8200 },
      ConditionExpression: 'attribute_not_exists(pk) OR runId = :holder',
      ExpressionAttributeValues: { ':holder': 'run-1' },
    });
  });

  it('answers false when a third run took the lease meanwhile', async () => {
    ddb.on(PutCommand).rejects(conditionFailed());

    await expect(
      takeOverLease('state', { runId: 'run-2', nowEpoch: 1000, leaseSeconds: 7200, fromRunId: 'run-1' }),
    ).resolves.toBe(false);
  });
});

describe('releaseLease', () => {
  it('releases only the lease this run holds', async () => {
    ddb.on(DeleteCommand).rejects(conditionFailed());

    await expect(releaseLease('state', 'run-2')).resolves.toBeUndefined();
    expect(ddb).toHaveReceivedCommandWith(DeleteCommand, {
      Key: { pk: 'LOCK' },
      ConditionExpression: 'runId = :run',
      ExpressionAttributeValues: { ':run': 'run-2' },
    });
  });
});

describe('claimProtectionSlot', () => {
  const claim = { runId: 'run-1', max: 25, expiresAt: 99, now: 1_000_000 };

  it('renews the lease, then claims a slot while fewer than max are taken', async () => {
    ddb.on(UpdateCommand).resolves({});

    await expect(claimProtectionSlot('state', claim)).resolves.toBe(true);
    expect(ddb).toHaveReceivedCommandTimes(UpdateCommand, 2);
    expect(ddb).toHaveReceivedNthCommandWith(1, UpdateCommand, {
      Key: { pk: 'LOCK' },
      UpdateExpression: 'SET leaseUntil = :until, expiresAt = :until',
      ConditionExpression: 'runId = :run',
      ExpressionAttributeValues: { ':run': 'run-1', ':until': 1000 + 7200 },
    });
    expect(ddb).toHaveReceivedNthCommandWith(2, UpdateCommand, {
      Key: { pk: 'RUN#run-1' },
      ConditionExpression: 'attribute_not_exists(protections) OR protections < :max',
      ExpressionAttributeValues: { ':one': 1, ':max': 25, ':exp': 99 },
    });
  });

  it('refuses once the cap is reached', async () => {
    ddb
      .on(UpdateCommand, { Key: { pk: 'LOCK' } })
      .resolves({})
      .on(UpdateCommand, { Key: { pk: 'RUN#run-1' } })
      .rejects(conditionFailed());

    await expect(claimProtectionSlot('state', claim)).resolves.toBe(false);
  });

  it('refuses without counting when another run holds the lease now', async () => {
    ddb.on(UpdateCommand, { Key: { pk: 'LOCK' } }).rejects(conditionFailed());

    await expect(claimProtectionSlot('state', claim)).resolves.toBe(false);
    expect(ddb).toHaveReceivedCommandTimes(UpdateCommand, 1);
  });
});

describe('lastDecisions', () => {
  it('reads digests in batches of 100 and retries unprocessed keys', async () => {
    const names = Array.from({ length: 150 }, (_, i) => `fn-${i}`);
    ddb
      .on(BatchGetCommand)
      .resolvesOnce({
        Responses: { state: [{ functionName: 'fn-0', outcome: 'SKIPPED', reasons: ['MEMORY_LOW'], warnings: [] }] },
        UnprocessedKeys: { state: { Keys: [{ pk: 'LAST#fn-1' }] } },
      })
      .resolvesOnce({ Responses: { state: [{ functionName: 'fn-1', outcome: 'ALREADY_PROTECTED' }] } })
      .resolves({ Responses: { state: [] } });

    const found = await lastDecisions('state', names);

    expect(ddb).toHaveReceivedCommandTimes(BatchGetCommand, 3);
    expect(found.get('fn-0')).toEqual({ outcome: 'SKIPPED', reasons: ['MEMORY_LOW'], warnings: [] });
    expect(found.get('fn-1')).toEqual({ outcome: 'ALREADY_PROTECTED', reasons: [], warnings: [] });
  });

  it('throws when keys are still unprocessed after 5 tries: a dropped key is an error, never an absent digest', async () => {
    ddb.on(BatchGetCommand).resolves({
      Responses: { state: [{ functionName: 'fn-0', outcome: 'SKIPPED', reasons: [], warnings: [] }] },
      UnprocessedKeys: { state: { Keys: [{ pk: 'LAST#fn-1' }] } },
    });

    await expect(lastDecisions('state', ['fn-0', 'fn-1'])).rejects.toThrow('state table: 1 keys left unprocessed');
    expect(ddb).toHaveReceivedCommandTimes(BatchGetCommand, 5);
  });
});
