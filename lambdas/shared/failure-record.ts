/**
 * Writing a FAILED decision that a task failure left (record-failure) or that the S3 fallback kept (replay):
 * one conditional put on the run's `decision` key, so a function the run already decided keeps its decision and
 * nothing is published again. After a protect failure the run's write-ahead PENDING (if any) lends the FAILED its
 * before- and planned after-image: the record then says the change may have been applied, the PENDING counts as
 * finished, and rollback works from the FAILED.
 */
import { AUDIT_STAGE, auditSortKey, decisionItem } from './domain/audit';
import { decisionNotice } from './domain/notice';
import type { AuditItem } from './domain/types';
import { getAuditItem, putAuditItem, repeatedInRun, type PutResult } from './adapters/audit-store';
import { publishNotice } from './adapters/notifier';
import type { UnrecordedDecision } from './adapters/unrecorded-store';
import { logger } from './observability';
import { errorSummary, recordSettings } from './recording';
import type { Runtime } from './runtime';

export interface FailedWrite {
  result: PutResult;
  item: AuditItem;
}

/**
 * The functions a run recorded as compact repeats (domain/repeats.ts), read once per run and invocation: a failed
 * batch may have written its repeats item before it died, and those functions are decided.
 */
export class RunRepeats {
  private readonly byRun = new Map<string, Promise<Set<string>>>();

  constructor(private readonly rt: Runtime) {}

  has(failure: Pick<UnrecordedDecision, 'runId' | 'runStartedAt' | 'functionName'>): Promise<boolean> {
    const key = `${failure.runStartedAt}#${failure.runId}`;
    let found = this.byRun.get(key);
    if (found === undefined) {
      found = repeatedInRun(this.rt.auditTableName, { runId: failure.runId, startedAt: failure.runStartedAt });
      // A failed read is not remembered: the next call asks again.
      found.catch(() => this.byRun.delete(key));
      this.byRun.set(key, found);
    }
    return found.then((set) => set.has(failure.functionName));
  }
}

/**
 * Builds and conditionally writes the FAILED item; throws when the table cannot be read or written. A function of a
 * failed batch that the batch's repeats item already decided is 'exists' (nothing written), like one with its own
 * decision item.
 */
export async function writeFailed(
  rt: Runtime,
  failure: UnrecordedDecision,
  repeats: RunRepeats = new RunRepeats(rt),
): Promise<FailedWrite> {
  let detail = failure.detail;
  let images: Pick<AuditItem, 'before' | 'after'> = {};
  if (failure.afterProtect) {
    const pendingKey = auditSortKey(failure.runStartedAt, failure.runId, AUDIT_STAGE.pending);
    let pending: AuditItem | undefined;
    try {
      pending = await getAuditItem(rt.auditTableName, failure.functionName, pendingKey);
    } catch (error) {
      // Without its images the FAILED still records the failure; the PENDING then stays "unfinished" and rollback
      // works from it (as before issue 9). The write below tells whether the table is reachable at all.
      logger.warn("the run's write-ahead record is unreadable; FAILED recorded without its images", {
        functionName: failure.functionName,
        error: errorSummary(error),
      });
    }
    if (pending?.before !== undefined) {
      images = { before: pending.before, ...(pending.after !== undefined ? { after: pending.after } : {}) };
      detail = `${detail}; the change was about to be sent and may have been applied; to undo: npx zero-impact rollback --function ${failure.functionName}`;
    }
  }
  const item = decisionItem(
    {
      functionName: failure.functionName,
      functionArn: failure.functionArn,
      runId: failure.runId,
      runStartedAt: failure.runStartedAt,
      decidedAt: failure.decidedAt,
      mode: failure.mode,
      outcome: 'FAILED',
      reasons: [],
      warnings: [],
      checks: [],
      detail,
      ...images,
      ...(failure.owner !== undefined ? { owner: failure.owner } : {}),
    },
    recordSettings(rt),
  );
  if (!failure.afterProtect && (await repeats.has(failure))) return { result: 'exists', item };
  return { result: await putAuditItem(rt.auditTableName, item), item };
}

/** Publishes the FAILED notice to the skip topic; throws when SNS refuses it. */
export function publishFailed(rt: Runtime, item: AuditItem): Promise<void> {
  return publishNotice(rt.skipTopicArn, decisionNotice(item));
}
