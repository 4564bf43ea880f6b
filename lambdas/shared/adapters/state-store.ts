/**
 * The state table: the run lease (renewed by every protection claim), the per-run protection counter, persistent
 * exclusions and each function's previous-decision digest. Unlike the audit table, these items are updated and deleted.
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
  UpdateCommand,
  paginateScan,
} from '@aws-sdk/lib-dynamodb';
import type { DecisionDigest } from '../domain/audit';
import { parseRejection, type RejectionRecord } from '../domain/backoff';
import { stateKeys } from '../domain/table-schema';
import { isRecord } from '../domain/types';
import { dynamodb } from './clients';
import { ownInput } from './paging';

export interface LeaseRequest {
  runId: string;
  /** The Step Functions execution of the run, recorded so the next run can ask whether it still runs. */
  executionArn?: string;
  /** Seconds since the epoch (the injectable clock). */
  nowEpoch: number;
  leaseSeconds: number;
}

export type Lease =
  | { acquired: true }
  | {
      acquired: false;
      /** The run holding the lease. */
      heldBy?: string;
      /** The holder's execution ARN (absent on a lease written before issue 9). */
      holderExecutionArn?: string;
      /** When the holder's lease expires on its own (seconds since the epoch). */
      leaseUntil?: number;
    };

function leaseItem(request: LeaseRequest): Record<string, unknown> {
  const until = request.nowEpoch + request.leaseSeconds;
  return {
    pk: stateKeys.lock(),
    runId: request.runId,
    ...(request.executionArn !== undefined && request.executionArn.length > 0
      ? { executionArn: request.executionArn }
      : {}),
    leaseUntil: until,
    expiresAt: until,
  };
}

/** A string or number attribute of the raw (marshalled) item returned with a failed condition. */
function rawAttribute(item: Record<string, unknown> | undefined, name: string): string | undefined {
  const value = item?.[name];
  // A refusal's Item is in DynamoDB's typed JSON; a GetItem through the document client is plain.
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  if (!isRecord(value)) return undefined;
  if (typeof value['S'] === 'string') return value['S'];
  if (typeof value['N'] === 'string') return value['N'];
  return undefined;
}

/**
 * Takes the run lease unless another run holds an unexpired one. The lease expires on its own (TTL-like check on
 * `leaseUntil`), so a run that died without releasing it blocks the next runs only until then, or until the next
 * run sees that its execution no longer runs (`takeOverLease`).
 */
export async function acquireLease(table: string, request: LeaseRequest): Promise<Lease> {
  try {
    await dynamodb.send(
      new PutCommand({
        TableName: table,
        Item: leaseItem(request),
        // An expired lease is taken here only when it names no execution; one that does is checked first
        // (start-run: DescribeExecution), so a run that still works is never overlapped just because its lease
        // expired (issue 9: maxProtectionsPerRun must hold, overlap impossible while the holder runs).
        ConditionExpression:
          'attribute_not_exists(pk) OR runId = :run OR (leaseUntil < :now AND attribute_not_exists(executionArn))',
        ExpressionAttributeValues: { ':now': request.nowEpoch, ':run': request.runId },
        ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
      }),
    );
    return { acquired: true };
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) {
      // The holder comes with the refusal (ReturnValuesOnConditionCheckFailure); where it does not (older
      // DynamoDB-compatible servers), one consistent read of the lease names it.
      const old =
        (error.Item as Record<string, unknown> | undefined) ??
        (await dynamodb.send(new GetCommand({ TableName: table, Key: { pk: stateKeys.lock() }, ConsistentRead: true })))
          .Item;
      const heldBy = rawAttribute(old, 'runId');
      const holderExecutionArn = rawAttribute(old, 'executionArn');
      const until = Number(rawAttribute(old, 'leaseUntil'));
      return {
        acquired: false,
        ...(heldBy !== undefined ? { heldBy } : {}),
        ...(holderExecutionArn !== undefined ? { holderExecutionArn } : {}),
        ...(Number.isFinite(until) ? { leaseUntil: until } : {}),
      };
    }
    throw error;
  }
}

/**
 * Takes the lease from `fromRunId`, whose execution is known to have ended. Conditional on the lease still naming
 * that run (or being gone): if a third run took it meanwhile, or the holder renewed it, nothing changes and the
 * answer is false.
 */
export async function takeOverLease(table: string, request: LeaseRequest & { fromRunId: string }): Promise<boolean> {
  try {
    await dynamodb.send(
      new PutCommand({
        TableName: table,
        Item: leaseItem(request),
        ConditionExpression: 'attribute_not_exists(pk) OR runId = :holder',
        ExpressionAttributeValues: { ':holder': request.fromRunId },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
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

/** How long a lease lasts unless renewed or released (seconds): the longest a dead run can block the next runs. */
export const RUN_LEASE_SECONDS = 2 * 60 * 60;

/** The run's protection counter outlives the run by this much (it is only read while the run lasts). */
export const RUN_COUNTER_TTL_SECONDS = 2 * 24 * 60 * 60;

/** When the counter item of a run started at `startedAt` (ISO 8601) may be dropped (epoch seconds). */
export function runCounterExpiry(startedAt: string): number {
  return Math.floor(Date.parse(startedAt) / 1000) + RUN_COUNTER_TTL_SECONDS;
}

export interface SlotClaim {
  runId: string;
  /** `maxProtectionsPerRun`. */
  max: number;
  /** When the run counter may be dropped (seconds since the epoch). */
  expiresAt: number;
  /** The claim's time (milliseconds, the injectable clock): the renewed lease runs from here. */
  now: number;
}

/**
 * Renews the run lease for RUN_LEASE_SECONDS from `nowEpoch`, if this run still holds it; false when another run
 * holds it now (took it over, or found it expired) or nobody does.
 */
export async function renewLease(table: string, runId: string, nowEpoch: number): Promise<boolean> {
  try {
    await dynamodb.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: stateKeys.lock() },
        UpdateExpression: 'SET leaseUntil = :until, expiresAt = :until',
        ConditionExpression: 'runId = :run',
        ExpressionAttributeValues: { ':run': runId, ':until': nowEpoch + RUN_LEASE_SECONDS },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/**
 * Claims one of the run's protection slots, only while the run holds the lease (issue 9: `maxProtectionsPerRun`
 * holds across overlapping runs because they cannot overlap where it matters: a run changes a function only after
 * renewing its lease, one conditional UpdateItem on LOCK; a run whose lease expired or was taken over changes
 * nothing more, it defers). Every claim renews the lease, so a run that is still protecting never loses it to
 * expiry. The per-run counter is atomic across concurrent protect Lambdas.
 * @returns false when this run no longer holds the lease, or once `max` functions have been claimed in this run
 */
export async function claimProtectionSlot(table: string, claim: SlotClaim): Promise<boolean> {
  if (!(await renewLease(table, claim.runId, Math.floor(claim.now / 1000)))) return false;
  try {
    await dynamodb.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: stateKeys.run(claim.runId) },
        UpdateExpression: 'ADD protections :one SET expiresAt = :exp',
        ConditionExpression: 'attribute_not_exists(protections) OR protections < :max',
        ExpressionAttributeValues: { ':one': 1, ':max': claim.max, ':exp': claim.expiresAt },
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ConditionalCheckFailedException) return false;
    throw error;
  }
}

/**
 * Claims one of the run's protection slots FOR ONE FUNCTION (issue 11: assess decides the deferral before the
 * protect step, so a function over the cap costs no expensive read, protect invocation or notice): like
 * `claimProtectionSlot` (lease renewed first, atomic counter under `maxProtectionsPerRun`), and idempotent per
 * function: the run item's string set `claimed` names each function holding a slot, so a retried batch finds its
 * own claims instead of taking more (a refused update is told apart by one consistent read).
 */
export async function claimSlotFor(table: string, claim: SlotClaim & { functionName: string }): Promise<boolean> {
  if (!(await renewLease(table, claim.runId, Math.floor(claim.now / 1000)))) return false;
  try {
    await dynamodb.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: stateKeys.run(claim.runId) },
        UpdateExpression: 'ADD protections :one, claimed :fn SET expiresAt = :exp',
        ConditionExpression:
          '(attribute_not_exists(protections) OR protections < :max) AND (attribute_not_exists(claimed) OR NOT contains(claimed, :name))',
        ExpressionAttributeValues: {
          ':one': 1,
          ':fn': new Set([claim.functionName]),
          ':name': claim.functionName,
          ':max': claim.max,
          ':exp': claim.expiresAt,
        },
      }),
    );
    return true;
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
    const item = await getStateItem(table, stateKeys.run(claim.runId));
    const claimed: unknown = item?.['claimed'];
    return claimed instanceof Set && claimed.has(claim.functionName);
  }
}

/** Gives back a slot `claimSlotFor` took for a function that will not be changed after all (a no-op otherwise). */
export async function releaseSlotFor(table: string, runId: string, functionName: string): Promise<void> {
  try {
    await dynamodb.send(
      new UpdateCommand({
        TableName: table,
        Key: { pk: stateKeys.run(runId) },
        UpdateExpression: 'ADD protections :minus DELETE claimed :fn',
        ConditionExpression: 'contains(claimed, :name)',
        ExpressionAttributeValues: { ':minus': -1, ':fn': new Set([functionName]), ':name': functionName },
      }),
    );
  } catch (error) {
    if (!(error instanceof ConditionalCheckFailedException)) throw error;
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
  const pages = paginateScan(
    { client: dynamodb, withCommand: ownInput },
    {
      TableName: table,
      FilterExpression: 'begins_with(pk, :p)',
      ExpressionAttributeValues: { ':p': stateKeys.exclusion('') },
    },
  );
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      found.push({
        functionName: String(item['functionName']),
        reason: String(item['reason'] ?? ''),
        excludedAt: String(item['excludedAt'] ?? ''),
      });
    }
  }
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

/** A digest as stored: with the `decidedAt` of the decision it was stored for (absent on very old items). */
export type StoredDigest = DecisionDigest & { decidedAt?: string };

/** The previous decision digest of each named function (absent: none recorded). */
export async function lastDecisions(table: string, functionNames: string[]): Promise<Map<string, StoredDigest>> {
  const found = new Map<string, StoredDigest>();
  for (const item of await batchGetItems(table, functionNames.map(stateKeys.last))) {
    const macs: unknown = item['ourValueMacs'];
    const decidedAt: unknown = item['decidedAt'];
    const optional = (name: 'fingerprint' | 'recordedAs' | 'checkedAt'): Partial<StoredDigest> => {
      const value: unknown = item[name];
      return typeof value === 'string' ? { [name]: value } : {};
    };
    const until: unknown = item['recordedUntil'];
    found.set(String(item['functionName']), {
      ...optional('fingerprint'),
      ...optional('recordedAs'),
      ...optional('checkedAt'),
      ...(typeof until === 'number' ? { recordedUntil: until } : {}),
      outcome: String(item['outcome']),
      reasons: (item['reasons'] as string[] | undefined) ?? [],
      warnings: (item['warnings'] as string[] | undefined) ?? [],
      ...(isRecord(macs) ? { ourValueMacs: macs as Record<string, string> } : {}),
      ...(typeof decidedAt === 'string' ? { decidedAt } : {}),
    });
  }
  return found;
}

/** One state table item, read consistently; undefined when there is none. */
export async function getStateItem(table: string, pk: string): Promise<Record<string, unknown> | undefined> {
  const result = await dynamodb.send(new GetCommand({ TableName: table, Key: { pk }, ConsistentRead: true }));
  return result.Item;
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
            ...e.digest,
            pk: stateKeys.last(e.functionName),
            functionName: e.functionName,
            // When the decision was made: also the sent mark of its notice (lambdas/shared/notices.ts).
            decidedAt: e.decidedAt,
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
