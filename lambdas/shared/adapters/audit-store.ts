/**
 * The audit table: append-only. Every write is a conditional put that refuses to overwrite an existing item;
 * nothing here updates or deletes. Reads serve the run summary, the rollback command, the idempotency checks of
 * the writers (a retried task finds its run's items by their deterministic keys) and reconciliation.
 */
import { GetCommand, PutCommand, paginateQuery, paginateScan, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { AUDIT_STAGE, auditSortKey } from '../domain/audit';
import { AUDIT_TABLE } from '../domain/table-schema';
import type { AuditItem } from '../domain/types';
import { dynamodb } from './clients';
import { ownInput } from './paging';

/** 'written': this call wrote the item; 'exists': an item with its key was already there (nothing was written). */
export type PutResult = 'written' | 'exists';

/**
 * Writes one item unless one with the same key exists (a retry of the same run, function and stage): 'exists' is
 * that answer, not an error. Throws on every other failure (callers treat that as "change nothing").
 */
export async function putAuditItem(tableName: string, item: AuditItem): Promise<PutResult> {
  try {
    await dynamodb.send(
      new PutCommand({
        TableName: tableName,
        Item: item,
        ConditionExpression: 'attribute_not_exists(#pk) AND attribute_not_exists(#sk)',
        ExpressionAttributeNames: { '#pk': AUDIT_TABLE.partitionKey.name, '#sk': 'sk' },
      }),
    );
    return 'written';
  } catch (error) {
    if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return 'exists';
    throw error;
  }
}

/** One item by its key, read consistently (undefined: none). */
export async function getAuditItem(
  tableName: string,
  functionName: string,
  sk: string,
): Promise<AuditItem | undefined> {
  const out = await dynamodb.send(
    new GetCommand({ TableName: tableName, Key: { functionName, sk }, ConsistentRead: true }),
  );
  return out.Item as AuditItem | undefined;
}

/** A function's items of one run: its write-ahead PENDING and its final decision, each if written. */
export interface RunRecords {
  pending?: AuditItem;
  decision?: AuditItem;
}

/** Reads a function's PENDING and decision of one run (two consistent GetItems on their deterministic keys). */
export async function runRecordsOf(
  tableName: string,
  functionName: string,
  run: { runId: string; startedAt: string },
): Promise<RunRecords> {
  const [pending, decision] = await Promise.all([
    getAuditItem(tableName, functionName, auditSortKey(run.startedAt, run.runId, AUDIT_STAGE.pending)),
    getAuditItem(tableName, functionName, auditSortKey(run.startedAt, run.runId, AUDIT_STAGE.decision)),
  ]);
  return { ...(pending !== undefined ? { pending } : {}), ...(decision !== undefined ? { decision } : {}) };
}

async function queryAll(input: QueryCommandInput, maxPages = Number.POSITIVE_INFINITY): Promise<AuditItem[]> {
  const items: AuditItem[] = [];
  let pages = 0;
  for await (const page of paginateQuery({ client: dynamodb, withCommand: ownInput }, { ...input })) {
    items.push(...((page.Items ?? []) as AuditItem[]));
    pages += 1;
    if (pages >= maxPages) break;
  }
  return items;
}

/** Every item a run wrote (index byRun). */
export function runItems(tableName: string, runId: string): Promise<AuditItem[]> {
  return queryAll({
    TableName: tableName,
    IndexName: 'byRun',
    KeyConditionExpression: 'runId = :r',
    ExpressionAttributeValues: { ':r': runId },
  });
}

/** Every item of one function, oldest first. */
export function functionHistory(tableName: string, functionName: string): Promise<AuditItem[]> {
  return queryAll({
    TableName: tableName,
    KeyConditionExpression: 'functionName = :f',
    ExpressionAttributeValues: { ':f': functionName },
    ScanIndexForward: true,
  });
}

/**
 * The change items (index byChange: PENDING, PROTECTED, FAILED, ROLLED_BACK) decided at or after `since` (ISO 8601),
 * oldest first, at most `maxPages` pages (reconciliation reads the last 2 days).
 */
export function changesSince(tableName: string, since: string, maxPages: number): Promise<AuditItem[]> {
  return queryAll(
    {
      TableName: tableName,
      IndexName: 'byChange',
      KeyConditionExpression: 'changeKey = :c AND decidedAt >= :s',
      ExpressionAttributeValues: { ':c': 'CHANGE', ':s': since },
      ScanIndexForward: true,
    },
    maxPages,
  );
}

/**
 * The items decided in [since, until) (ISO 8601), one Scan page (up to 1 MB) at a time: a year of records never has
 * to fit in memory (`zero-impact export`). A Scan reads the whole table (no index covers every decision by time);
 * the filter only drops what is returned. Order: the table's, by function, each function's items oldest first.
 */
export async function* auditPages(
  tableName: string,
  since: string,
  until: string | undefined,
): AsyncGenerator<AuditItem[]> {
  const pages = paginateScan(
    { client: dynamodb, withCommand: ownInput },
    {
      TableName: tableName,
      FilterExpression: until === undefined ? '#d >= :s' : '#d >= :s AND #d < :u',
      ExpressionAttributeNames: { '#d': 'decidedAt' },
      ExpressionAttributeValues: { ':s': since, ...(until !== undefined ? { ':u': until } : {}) },
    },
  );
  for await (const page of pages) {
    if ((page.Items ?? []).length > 0) yield (page.Items ?? []) as AuditItem[];
  }
}

/**
 * Every run id in the table with its start (the sort key's first field), from a Scan projecting only `runId` and
 * `sk`: for finding the latest runs when the state machine (whose executions name the runs) is not known.
 */
export async function runIdsByScan(tableName: string): Promise<Array<{ runId: string; startedAt: string }>> {
  const runs = new Map<string, string>();
  const pages = paginateScan(
    { client: dynamodb, withCommand: ownInput },
    { TableName: tableName, ProjectionExpression: 'runId, sk, kind' },
  );
  for await (const page of pages) {
    for (const item of page.Items ?? []) {
      const { runId, sk, kind } = item as { runId?: unknown; sk?: unknown; kind?: unknown };
      if (typeof runId !== 'string' || typeof sk !== 'string' || kind !== 'decision' || runs.has(runId)) continue;
      runs.set(runId, sk.split('#')[0] ?? '');
    }
  }
  return [...runs.entries()].map(([runId, startedAt]) => ({ runId, startedAt }));
}
