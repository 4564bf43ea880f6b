/**
 * The key schemas of the two tables, as data: the CDK constructs create the tables from these and the local run
 * creates identical tables on its DynamoDB-compatible server. One source, so the two can never drift.
 */

export interface KeyAttribute {
  name: string;
  type: 'S' | 'N';
}

export interface IndexSchema {
  indexName: string;
  partitionKey: KeyAttribute;
  sortKey?: KeyAttribute;
  /** ALL: reviewers read whole items from every index. */
  projection: 'ALL';
}

export interface TableSchema {
  partitionKey: KeyAttribute;
  sortKey?: KeyAttribute;
  indexes: IndexSchema[];
  /** The TTL attribute (epoch seconds). */
  timeToLiveAttribute: string;
}

/**
 * The audit table. One item per decision per run, append-only (conditional puts on a deterministic key).
 * - "what happened to function X, ever": Query functionName = X (sort key sk: `runStartedAt#runId#stage`, so by run).
 * - "what did run R do": Query index byRun, runId = R.
 * - "every change in the last 30 days": Query index byChange, changeKey = "CHANGE", decidedAt >= now-30d.
 * - "everything skipped for reason C": Query index byReason, primaryReason = C (first reason); for C in any
 *   position, Query byRun for the run and filter on contains(reasons, C).
 */
export const AUDIT_TABLE: TableSchema = {
  partitionKey: { name: 'functionName', type: 'S' },
  sortKey: { name: 'sk', type: 'S' },
  indexes: [
    {
      indexName: 'byRun',
      partitionKey: { name: 'runId', type: 'S' },
      sortKey: { name: 'sk', type: 'S' },
      projection: 'ALL',
    },
    {
      indexName: 'byChange',
      partitionKey: { name: 'changeKey', type: 'S' },
      sortKey: { name: 'decidedAt', type: 'S' },
      projection: 'ALL',
    },
    {
      indexName: 'byReason',
      partitionKey: { name: 'primaryReason', type: 'S' },
      sortKey: { name: 'decidedAt', type: 'S' },
      projection: 'ALL',
    },
  ],
  timeToLiveAttribute: 'expiresAt',
};

/**
 * The state table: the engine's working state, which (unlike the audit trail) may be updated and deleted.
 * Items: pk "LOCK" (the run lease and its holder's execution ARN), "RUN#<runId>" (the per-run protection counter),
 * "EXCLUDE#<functionName>" (persistent exclusions written by rollback, removed by include), "LAST#<functionName>"
 * (a digest of the function's previous decision, for repeat detection and changed-only notifications).
 */
export const STATE_TABLE: TableSchema = {
  partitionKey: { name: 'pk', type: 'S' },
  indexes: [],
  timeToLiveAttribute: 'expiresAt',
};

export const stateKeys = {
  lock: () => 'LOCK',
  run: (runId: string) => `RUN#${runId}`,
  exclusion: (functionName: string) => `EXCLUDE#${functionName}`,
  last: (functionName: string) => `LAST#${functionName}`,
  rejection: (functionName: string) => `REJECT#${functionName}`,
  /** Runs whose owed notices are not all sent (lambdas/shared/notices.ts). */
  outbox: () => 'OUTBOX',
} as const;

/** The partition key of run-level audit items (overlap records, run summaries). */
export const RUN_ITEMS_PARTITION = '#run';
