/**
 * The state table: the run lease, the per-run protection counter, persistent exclusions and each function's
 * previous-decision digest. Unlike the audit table, these items are updated and deleted.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  BatchWriteCommand,
  type BatchWriteCommandOutput,
  DeleteCommand,
  GetCommand,
  PutCommand,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { DecisionDigest } from '../domain/audit';
import { parseRejection, type RejectionRecord } from '../domain/backoff';
import { stateKeys } from '../domain/table-schema';
import { isRecord } from '../domain/types';
import { dynamodb } from './clients';

export interface Lease {
  acquired: boolean;
  /** The run holding the lease when it was not acquired. */
  heldBy?: string;
}

/**
 * Takes the run lease unless another run holds an unexpired one. The lease expires on its own (TTL-like check on
 * `leaseUntil`), so a run that died without releasing it blocks the next runs only until then.
 */
export async function acquireLease(
  table: string,
  runId: string,
  nowEpoch: number,
  leaseSeconds: number,
): Promise<Lease> {
  try {
    await dynamodb.send(
      new PutCommand({
        TableName: table,
        Item: { pk: stateKeys.lock(), runId, leaseUntil: nowEpoch + leaseSeconds, expiresAt: nowEpoch + leaseSeconds },
        ConditionExpression: 'attribute_not_exists(pk) OR leaseUntil < :now OR runId = :run',
        ExpressionAttributeValues: { ':now': nowEpoch, ':run': runId },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return { acquired: true };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      const holder = error.Item?.['runId'];
      return { acquired: false, heldBy: holder !== undefined && 'S' in holder ? holder.S : undefined };
    }
    throw error;
  }
}

/** Releases the lease if this run holds it (a no-op otherwise). */
export async function releaseLease(table: string, runId: string): Promise<void> {
  try {
    await dynamodb.send(
      new DeleteCommand({
        TableName: table,
        Key: { pk: stateKeys.lock() },
        ConditionExpression: 'runId = :run',
        ExpressionAttributeValues: { ':run': runId },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
  }
}

/**
 * Claims one of the run's protection slots. Atomic across concurrent protect Lambdas: returns false once
 * `max` functions have been claimed in this run.
 */
export async function claimProtectionSlot(
  table: string,
  runId: string,
  max: number,
  expiresAt: number,
): Promise<boolean> {
  try {
    await dynamodb.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: stateKeys.run(runId) },
        UpdateExpression: 'ADD protections :one SET expiresAt = :exp',
        ConditionExpression: 'attribute_not_exists(protections) OR protections < :max',
        ExpressionAttributeValues: { ':one': 1, ':max': max, ':exp': expiresAt },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

export interface Exclusion {
  functionName: string;
  reason: string;
  excludedAt: string;
}

/** Persistent exclusions (written by rollback). */
export async function listExclusions(table: string): Promise<Exclusion[]> {
  const found: Exclusion[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamodb.send(
      new ScanCommand({
        TableName: table,
        FilterExpression: 'begins_with(pk, :p)',
        ExpressionAttributeValues: { ':p': stateKeys.exclusion('') },
        ExclusiveStartKey,
      }),
    );
    for (const item of page.Items ?? []) {
      found.push({
        functionName: String(item['functionName']),
        reason: String(item['reason'] ?? ''),
        excludedAt: String(item['excludedAt'] ?? ''),
      });
    }
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey !== undefined);
  return found;
}

export async function putExclusion(table: string, exclusion: Exclusion): Promise<void> {
  await dynamodb.send(
    new PutCommand({ TableName: table, Item: { pk: stateKeys.exclusion(exclusion.functionName), ...exclusion } }),
  );
}

/** True when the function is persistently excluded (one consistent GetItem; the protect Lambda checks again). */
export async function isExcluded(table: string, functionName: string): Promise<boolean> {
  const result = await dynamodb.send(
    new GetCommand({ TableName: table, Key: { pk: stateKeys.exclusion(functionName) }, ConsistentRead: true }),
  );
  return result.Item !== undefined;
}

/** Removes an exclusion; returns false when there was none. */
export async function deleteExclusion(table: string, functionName: string): Promise<boolean> {
  const result = await dynamodb.send(
    new DeleteCommand({ TableName: table, Key: { pk: stateKeys.exclusion(functionName) }, ReturnValues: 'ALL_OLD' }),
  );
  return result.Attributes !== undefined;
}

const BATCH_GET_LIMIT = 100;
const BATCH_WRITE_LIMIT = 25;

/** The previous decision digest of each named function (absent: none recorded). */
export async function lastDecisions(table: string, functionNames: string[]): Promise<Map<string, DecisionDigest>> {
  const found = new Map<string, DecisionDigest>();
  for (const item of await batchGetItems(table, functionNames.map(stateKeys.last))) {
    const macs: unknown = item['ourValueMacs'];
    found.set(String(item['functionName']), {
      outcome: String(item['outcome']),
      reasons: (item['reasons'] as string[] | undefined) ?? [],
      warnings: (item['warnings'] as string[] | undefined) ?? [],
      ...(isRecord(macs) ? { ourValueMacs: macs as Record<string, string> } : {}),
    });
  }
  return found;
}

const BATCH_GET_ATTEMPTS = 5;

/**
 * The state table items with these partition keys (BatchGetItem, 100 keys a call, unprocessed keys retried). Keys
 * still unprocessed after the retries are an error, never silently dropped: the caller decides what unknown means.
 */
export async function batchGetItems(table: string, pks: readonly string[]): Promise<Array<Record<string, unknown>>> {
  const found: Array<Record<string, unknown>> = [];
  const unique = [...new Set(pks)];
  for (let i = 0; i < unique.length; i += BATCH_GET_LIMIT) {
    let keys: Array<Record<string, unknown>> | undefined = unique.slice(i, i + BATCH_GET_LIMIT).map((pk) => ({ pk }));
    for (let attempt = 0; keys !== undefined && keys.length > 0; attempt++) {
      if (attempt >= BATCH_GET_ATTEMPTS) throw new Error(`state table: ${keys.length} keys left unprocessed`);
      const result: BatchGetCommandOutput = await dynamodb.send(
        new BatchGetCommand({ RequestItems: { [table]: { Keys: keys } } }),
      );
      found.push(...(result.Responses?.[table] ?? []));
      keys = result.UnprocessedKeys?.[table]?.Keys;
    }
  }
  return found;
}

/** Stores each function's latest decision digest. */
export async function putLastDecisions(
  table: string,
  entries: Array<{ functionName: string; digest: DecisionDigest; decidedAt: string }>,
): Promise<void> {
  for (let i = 0; i < entries.length; i += BATCH_WRITE_LIMIT) {
    let requests: Array<{ PutRequest: { Item: Record<string, unknown> } }> | undefined = entries
      .slice(i, i + BATCH_WRITE_LIMIT)
      .map((e) => ({
        PutRequest: {
          Item: {
            pk: stateKeys.last(e.functionName),
            functionName: e.functionName,
            decidedAt: e.decidedAt,
            ...e.digest,
          },
        },
      }));
    for (let attempt = 0; requests !== undefined && requests.length > 0 && attempt < 5; attempt++) {
      const result: BatchWriteCommandOutput = await dynamodb.send(
        new BatchWriteCommand({ RequestItems: { [table]: requests } }),
      );
      requests = result.UnprocessedItems?.[table] as typeof requests;
    }
    if (requests !== undefined && requests.length > 0) {
      throw new Error(`state table: ${requests.length} last-decision writes left unprocessed`);
    }
  }
}

/** The function's back-off record after a deterministic rejection (one consistent GetItem); undefined: none. */
export async function readRejection(table: string, functionName: string): Promise<RejectionRecord | undefined> {
  const result = await dynamodb.send(
    new GetCommand({ TableName: table, Key: { pk: stateKeys.rejection(functionName) }, ConsistentRead: true }),
  );
  return parseRejection(result.Item);
}

/** Stores the back-off record (UpdateItem: the protect role has no PutItem on the state table). */
export async function putRejection(table: string, functionName: string, record: RejectionRecord): Promise<void> {
  await dynamodb.send(
    new UpdateCommand({
      TableName: table,
      Key: { pk: stateKeys.rejection(functionName) },
      UpdateExpression:
        'SET functionName = :f, reason = :r, attempts = :a, nextAttemptAt = :n, revisionId = :rev, codeSha256 = :code, rejectedAt = :at, engine = :engine',
      ExpressionAttributeValues: {
        ':f': functionName,
        ':r': record.reason,
        ':a': record.attempts,
        ':n': record.nextAttemptAt,
        ':rev': record.revisionId,
        ':code': record.codeSha256,
        ':at': record.rejectedAt,
        ':engine': record.engine ?? null,
      },
    }),
  );
}
