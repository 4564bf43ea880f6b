/**
 * The audit table: append-only. Every write is a conditional put that refuses to overwrite an existing item;
 * nothing here updates or deletes. Reads serve the run summary, the rollback command, the idempotency checks of
 * the writers (a retried task finds its run's items by their deterministic keys) and reconciliation.
 */
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  GetCommand,
  PutCommand,
  paginateQuery,
  paginateScan,
  type QueryCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { AUDIT_STAGE, auditSortKey } from '../domain/audit';
import { expandRepeats, repeatedFunctions, repeatsPrefix } from '../domain/repeats';
import { AUDIT_TABLE, RUN_ITEMS_PARTITION } from '../domain/table-schema';
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

/**
 * Writes a batch's repeats items (domain/repeats.ts), each a conditional put. 'exists' when the first was already
 * there (a retry of the batch): the functions of the items already written are then the batch's repeats, read back
 * with `repeatsOfBatch`, and nothing more is written here.
 */
export async function putRepeats(tableName: string, items: readonly AuditItem[]): Promise<PutResult> {
  for (const [i, item] of items.entries()) {
    const result = await putAuditItem(tableName, item);
    if (result === 'exists' && i === 0) return 'exists';
  }
  return 'written';
}

/** The functions recorded in the repeats items whose sort key starts with `prefix` (consistent reads). */
async function repeatedUnder(tableName: string, prefix: string): Promise<Set<string>> {
  const items = await queryAll({
    TableName: tableName,
    KeyConditionExpression: 'functionName = :p AND begins_with(sk, :s)',
    ExpressionAttributeValues: { ':p': RUN_ITEMS_PARTITION, ':s': prefix },
    ConsistentRead: true,
  });
  return new Set(items.flatMap(repeatedFunctions));
}

/** The functions a batch (named by its first function) recorded as repeats in this run. */
export function repeatsOfBatch(
  tableName: string,
  run: { runId: string; startedAt: string },
  batchKey: string,
): Promise<Set<string>> {
  return repeatedUnder(tableName, `${repeatsPrefix(run.startedAt, run.runId)}${batchKey}#`);
}

/** Every function recorded as a repeat in this run (record-failure and replay: those are decided). */
export function repeatedInRun(tableName: string, run: { runId: string; startedAt: string }): Promise<Set<string>> {
  return repeatedUnder(tableName, repeatsPrefix(run.startedAt, run.runId));
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

/**
 * Items by key (BatchGetItem, 100 keys a call, unprocessed keys retried a few times, then an error): for the
 * reviewing commands, the full items compact repeats point at (`sameAs`, domain/repeats.ts).
 */
export async function auditItemsByKey(
  tableName: string,
  keys: ReadonlyArray<{ functionName: string; sk: string }>,
): Promise<AuditItem[]> {
  const found: AuditItem[] = [];
  for (let i = 0; i < keys.length; i += 100) {
    let pending: Array<Record<string, unknown>> | undefined = keys.slice(i, i + 100).map((k) => ({ ...k }));
    for (let attempt = 0; pending !== undefined && pending.length > 0; attempt++) {
      if (attempt >= 5) throw new Error(`audit table: ${pending.length} keys left unprocessed`);
      const out: BatchGetCommandOutput = await dynamodb.send(
        new BatchGetCommand({ RequestItems: { [tableName]: { Keys: pending } } }),
      );
      found.push(...((out.Responses?.[tableName] ?? []) as AuditItem[]));
      pending = out.UnprocessedKeys?.[tableName]?.Keys;
    }
  }
  return found;
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

/**
 * The items a run wrote (index byRun), one page (up to 1 MB) at a time, each repeats item expanded: for a reader
 * that must not hold the whole run (finish-run at 50,000 functions).
 */
export async function* runItemPages(tableName: string, runId: string): AsyncGenerator<AuditItem[]> {
  const pages = paginateQuery(
    { client: dynamodb, withCommand: ownInput },
    {
      TableName: tableName,
      IndexName: 'byRun',
      KeyConditionExpression: 'runId = :r',
      ExpressionAttributeValues: { ':r': runId },
    },
  );
  for await (const page of pages) yield expandRepeats((page.Items ?? []) as AuditItem[]);
}

/**
 * Every item a run wrote (index byRun), each repeats item expanded into the decisions it records
 * (domain/repeats.ts): one decision per function, as if each had its full item.
 */
export async function runItems(tableName: string, runId: string): Promise<AuditItem[]> {
  return expandRepeats(
    await queryAll({
      TableName: tableName,
      IndexName: 'byRun',
      KeyConditionExpression: 'runId = :r',
      ExpressionAttributeValues: { ':r': runId },
    }),
  );
}

/**
 * Every decision of one function, oldest first: its full items (its partition) and its compact repeats (the
 * repeats items of partition `#run` that list it: a Query of that partition filtered on the name, which reads every
 * repeats item kept; for reviewers, never for the hourly run).
 */
export async function functionHistory(tableName: string, functionName: string): Promise<AuditItem[]> {
  const [own, repeats] = await Promise.all([
    queryAll({
      TableName: tableName,
      KeyConditionExpression: 'functionName = :f',
      ExpressionAttributeValues: { ':f': functionName },
      ScanIndexForward: true,
    }),
    queryAll({
      TableName: tableName,
      KeyConditionExpression: 'functionName = :p',
      FilterExpression: '#k = :k AND contains(#r.#f, :f)',
      ExpressionAttributeNames: { '#k': 'kind', '#r': 'repeated', '#f': 'functions' },
      ExpressionAttributeValues: { ':p': RUN_ITEMS_PARTITION, ':k': 'repeats', ':f': functionName },
    }),
  ]);
  const expanded = expandRepeats(repeats).filter((item) => item.functionName === functionName);
  return [...own, ...expanded].sort((a, b) => (a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0));
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
    // A repeats item stands for one decision per function it lists (domain/repeats.ts).
    const items = expandRepeats((page.Items ?? []) as AuditItem[]);
    if (items.length > 0) yield items;
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
      const decides = kind === 'decision' || kind === 'repeats';
      if (typeof runId !== 'string' || typeof sk !== 'string' || !decides || runs.has(runId)) continue;
      runs.set(runId, sk.split('#')[0] ?? '');
    }
  }
  return [...runs.entries()].map(([runId, startedAt]) => ({ runId, startedAt }));
}
