import { DecryptCommand, KMSClient } from '@aws-sdk/client-kms';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { BatchGetCommand, DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-jest';
import { policyCacheKey, readCachedPolicies } from '../../lambdas/shared/adapters/policy-cache';

const ddb = mockClient(DynamoDBDocumentClient);
mockClient(DynamoDBClient);
const kms = mockClient(KMSClient);
const NOW = Date.parse('2026-12-02T00:00:00Z');

beforeEach(() => {
  ddb.reset();
  kms.reset();
  kms.on(DecryptCommand).resolves({ Plaintext: new TextEncoder().encode('policy-value') });
});

describe('readCachedPolicies', () => {
  it('names the keys DynamoDB left unprocessed after 5 tries as an error, and keeps what it read', async () => {
    ddb.on(BatchGetCommand).resolves({
      Responses: {
        state: [{ functionName: 'a', fetchedAt: new Date(NOW - 1000).toISOString(), ciphertext: 'Y2lwaGVy' }],
      },
      UnprocessedKeys: { state: { Keys: [{ pk: policyCacheKey('b', 'us-east-1') }] } },
    });

    const { values, errors } = await readCachedPolicies('state', ['a', 'b'], 'us-east-1', 60_000, NOW);

    expect(ddb).toHaveReceivedCommandTimes(BatchGetCommand, 5);
    expect([...values.keys()]).toEqual(['a']);
    expect(errors).toEqual(['UnprocessedKeys (1)']);
  });

  it('reports no error when every key was processed', async () => {
    ddb.on(BatchGetCommand).resolves({ Responses: { state: [] } });

    const { values, errors } = await readCachedPolicies('state', ['a'], 'us-east-1', 60_000, NOW);

    expect([values.size, errors]).toEqual([0, []]);
  });
});
