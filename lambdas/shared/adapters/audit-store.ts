/**
 * The audit table: append-only. Every write is a conditional put that refuses to overwrite an existing item;
 * nothing here updates or deletes. Reads serve the run summary and the rollback command.
 */
import { PutCommand, QueryCommand, type QueryCommandInput } from '@aws-sdk/lib-dynamodb';
import { AUDIT_TABLE } from '../domain/table-schema';
import type { AuditItem } from '../domain/types';
import { dynamodb } from './clients';

/** Writes one item; throws if the write fails (callers treat that as "change nothing"). */
export async function putAuditItem(tableName: string, item: AuditItem): Promise<void> {
  await dynamodb.send(
    new PutCommand({
      TableName: tableName,
      Item: item,
      ConditionExpression: 'attribute_not_exists(#pk) AND attribute_not_exists(#sk)',
      ExpressionAttributeNames: { '#pk': AUDIT_TABLE.partitionKey.name, '#sk': 'sk' },
    }),
  );
}

async function queryAll(input: QueryCommandInput): Promise<AuditItem[]> {
  const items: AuditItem[] = [];
  let ExclusiveStartKey: Record<string, unknown> | undefined;
  do {
    const page = await dynamodb.send(new QueryCommand({ ...input, ExclusiveStartKey }));
    items.push(...((page.Items ?? []) as AuditItem[]));
    ExclusiveStartKey = page.LastEvaluatedKey;
  } while (ExclusiveStartKey !== undefined);
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
