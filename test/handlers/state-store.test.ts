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
} from '../../lambdas/shared/adapters/state-store';

const ddb = mockClient(DynamoDBDocumentClient);
mockClient(DynamoDBClient);

function conditionFailed(item?: Record<string, unknown>): ConditionalCheckFailedException {
  const error = new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
  if (item !== undefined) Object.assign(error, { Item: item });
  return error;
}

beforeEach(() => ddb.reset());

describe('acquireLease', () => {
  it('takes a free lease with a conditional put', async () => {
    ddb.on(PutCommand).resolves({});

    const lease = await acquireLease('state', 'run-2', 1000, 7200);

    expect(lease).toEqual({ acquired: true });
    expect(ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'state',
      Item: { pk: 'LOCK', runId: 'run-2', leaseUntil: 8200, expiresAt: 8200 },
      ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :now OR runId = :run',
    });
  });

  it('reports the run that holds an unexpired lease', async () => {
    ddb.on(PutCommand).rejects(conditionFailed({ runId: { S: 'run-1' } }));

    const lease = await acquireLease('state', 'run-2', 1000, 7200);

    expect(lease).toEqual({ acquired: false, heldBy: 'run-1' });
  });

  it('lets any other error through (the run then fails loudly instead of running twice)', async () => {
    ddb.on(PutCommand).rejects(new Error('AccessDenied'));

    await expect(acquireLease('state', 'run-2', 1000, 7200)).rejects.toThrow('AccessDenied');
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
  it('claims a slot while fewer than max are taken', async () => {
    ddb.on(UpdateCommand).resolves({});

    await expect(claimProtectionSlot('state', 'run-1', 25, 99)).resolves.toBe(true);
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
      Key: { pk: 'RUN#run-1' },
      ConditionExpression: 'attribute_not_exists(protections) OR protections < :max',
      ExpressionAttributeValues: { ':one': 1, ':max': 25, ':exp': 99 },
    });
  });

  it('refuses once the cap is reached', async () => {
    ddb.on(UpdateCommand).rejects(conditionFailed());

    await expect(claimProtectionSlot('state', 'run-1', 25, 99)).resolves.toBe(false);
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
});
