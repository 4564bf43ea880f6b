/**
 * The back-off records of a batch's candidates (issue 8 item 16): one BatchGetItem per 100 functions on the state
 * table's `REJECT#<functionName>` items (domain/backoff.ts). The protect step writes them; assess-batch only reads.
 * A read that fails throws: the caller marks the fact unreadable (FACTS_MISSING), never "no back-off".
 */
import { parseRejection, type RejectionRecord } from '../domain/backoff';
import { stateKeys } from '../domain/table-schema';
import { batchGetItems } from './state-store';

/** Each named function's rejection record (absent: none). */
export async function rejectionRecords(table: string, functionNames: string[]): Promise<Map<string, RejectionRecord>> {
  const found = new Map<string, RejectionRecord>();
  const prefix = stateKeys.rejection('');
  for (const item of await batchGetItems(table, functionNames.map(stateKeys.rejection))) {
    const record = parseRejection(item);
    const pk = item['pk'];
    if (record !== undefined && typeof pk === 'string' && pk.startsWith(prefix))
      found.set(pk.slice(prefix.length), record);
  }
  return found;
}
