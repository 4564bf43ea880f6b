/**
 * The back-off records of a batch's candidates (issue 8 item 16): one BatchGetItem per 100 functions on the state
 * table's `REJECT#<functionName>` items (domain/backoff.ts). The protect step writes them; assess-batch only reads.
 * A read that fails throws: the caller marks the fact unreadable (FACTS_MISSING), never "no back-off".
 */
import { BatchGetCommand, type BatchGetCommandOutput } from '@aws-sdk/lib-dynamodb';
import { parseRejection, type RejectionRecord } from '../domain/backoff';
import { stateKeys } from '../domain/table-schema';
import { dynamodb } from './clients';

const BATCH_GET_LIMIT = 100;
const ATTEMPTS = 5;

/** Each named function's rejection record (absent: none). */
export async function rejectionRecords(table: string, functionNames: string[]): Promise<Map<string, RejectionRecord>> {
  const found = new Map<string, RejectionRecord>();
  const unique = [...new Set(functionNames)];
  for (let i = 0; i < unique.length; i += BATCH_GET_LIMIT) {
    let keys: Array<Record<string, unknown>> | undefined = unique
      .slice(i, i + BATCH_GET_LIMIT)
      .map((name) => ({ pk: stateKeys.rejection(name) }));
    for (let attempt = 0; keys !== undefined && keys.length > 0; attempt++) {
      if (attempt >= ATTEMPTS) throw new Error('BatchGetItem left keys unprocessed');
      const result: BatchGetCommandOutput = await dynamodb.send(
        new BatchGetCommand({ RequestItems: { [table]: { Keys: keys } } }),
      );
      for (const item of result.Responses?.[table] ?? []) {
        const record = parseRejection(item);
        const pk = item['pk'];
        const prefix = stateKeys.rejection('');
        if (record !== undefined && typeof pk === 'string' && pk.startsWith(prefix)) {
          found.set(pk.slice(prefix.length), record);
        }
      }
      keys = result.UnprocessedKeys?.[table]?.Keys;
    }
  }
  return found;
}
