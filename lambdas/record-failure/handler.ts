/**
 * Record failure (the Catch target of Assess batch and Protect function): every function of the failed batch or
 * protect request is recorded FAILED with the error's name and a trimmed, scrubbed cause, and published to the skip
 * topic. The Cause of a Lambda task failure is a JSON string of the Lambda error; only its errorType and
 * errorMessage are kept (never the stack trace), quoted text is cut out and the rest truncated.
 *
 * Exactly once (issue 9): the FAILED is a conditional put on the run's `decision` key, so a function the failed task
 * had already decided (a batch that crashed after some of its writes) keeps that decision, and nothing is published
 * for it. A notice is published only for an item this invocation wrote. After a protect failure the run's PENDING
 * lends the FAILED its images (lambdas/shared/failure-record.ts).
 *
 * DynamoDB down: each write is retried with exponential backoff (AUDIT_RETRY, on the injectable clock); when the
 * table stays unreachable the decision goes to the run's S3 prefix, `runs/<runId>/unrecorded/<function>.json`
 * (names, codes and details only), and the rest of the invocation writes there at once (the table is known down:
 * one attempt each, so the invocation ends well within its timeout). The next run's start replays those objects
 * (lambdas/shared/replay.ts). A notice SNS refused is owed by its FAILED item: finish-run's outbox drain sends it
 * (lambdas/shared/notices.ts); one that was sent is marked in the function's last-decision digest.
 */
import type { Context } from 'aws-lambda';
import { systemClock } from '../shared/adapters/rate-limiter';
import { putUnrecorded, type UnrecordedDecision } from '../shared/adapters/unrecorded-store';
import { publishFailed, RunRepeats, writeFailed, type FailedWrite } from '../shared/failure-record';
import { lastDecisions } from '../shared/adapters/state-store';
import type { AuditItem, InventoryItem, ProtectRequest } from '../shared/domain/types';
import { keepInOutbox, markSent } from '../shared/notices';
import { logger, startInvocation } from '../shared/observability';
import { emitMetric, errorSummary, failureDetail, withRetries } from '../shared/recording';
import { runtime, type Runtime } from '../shared/runtime';

export interface RecordFailureInput {
  runId: string;
  startedAt: string;
  items: Array<InventoryItem | ProtectRequest>;
  error?: { Error?: string; Cause?: string };
}

export interface RecordFailureOutput {
  /** FAILED items this invocation wrote. */
  recorded: number;
  /** Functions the run had already decided (nothing written, nothing published). */
  alreadyDecided: number;
  /** Decisions left in the S3 fallback for the next run to replay. */
  unrecorded: number;
}

/** Backoff of the audit writes: 5 attempts, 0.5 s doubling to at most 8 s between them (7.5 s in all). */
export const AUDIT_RETRY = { attempts: 5, firstDelayMs: 500, maxDelayMs: 8_000 } as const;

interface Target {
  functionName: string;
  functionArn: string | null;
  owner?: string;
  afterProtect: boolean;
}

function targetOf(item: InventoryItem | ProtectRequest, ownerTagKey: string): Target | undefined {
  if (item === null || typeof item !== 'object') return undefined;
  if ('facts' in item && typeof item.functionName === 'string') {
    const owner = item.facts?.tags?.[ownerTagKey];
    return {
      functionName: item.functionName,
      functionArn: item.functionArn ?? null,
      afterProtect: true,
      ...(owner !== undefined ? { owner } : {}),
    };
  }
  if ('configuration' in item && typeof item.configuration?.FunctionName === 'string') {
    const owner = item.tags?.[ownerTagKey];
    return {
      functionName: item.configuration.FunctionName,
      functionArn: item.configuration.FunctionArn ?? null,
      afterProtect: false,
      ...(owner !== undefined ? { owner } : {}),
    };
  }
  return undefined;
}

/** The sent mark of a FAILED notice (its digest); a failure only means the drain may send it once more. */
async function markSentNow(rt: Runtime, item: AuditItem): Promise<void> {
  try {
    const previous = (await lastDecisions(rt.stateTableName, [item.functionName])).get(item.functionName);
    await markSent(rt, item, previous);
  } catch (error) {
    logger.warn('FAILED notice sent but not marked; it may be sent again', { error: errorSummary(error) });
  }
}

/** Leaves the decision in the S3 fallback; false when that fails too (then only the log line and metric remain). */
async function fallBack(rt: Runtime, failure: UnrecordedDecision): Promise<boolean> {
  try {
    const key = await putUnrecorded(rt.inventoryBucket, failure);
    logger.warn('decision kept in the S3 fallback for the next run', { functionName: failure.functionName, key });
    return true;
  } catch (error) {
    emitMetric('AuditWriteFailed', 1);
    logger.error('FAILED decision could not be recorded anywhere', {
      functionName: failure.functionName,
      error: errorSummary(error),
    });
    return false;
  }
}

export const handler = async (event: RecordFailureInput, context?: Context): Promise<RecordFailureOutput> => {
  const rt = runtime();
  startInvocation({ runId: event.runId }, context);
  const detail = failureDetail(event.error);
  const items = Array.isArray(event.items) ? event.items : [];
  const out: RecordFailureOutput = { recorded: 0, alreadyDecided: 0, unrecorded: 0 };
  let tableDown = false;
  const repeats = new RunRepeats(rt);
  for (const raw of items) {
    const target = targetOf(raw, rt.config.audit.ownerTagKey);
    if (target === undefined) {
      logger.error('failed item without a function name; not recorded', { error: detail });
      continue;
    }
    const failure: UnrecordedDecision = {
      functionName: target.functionName,
      functionArn: target.functionArn,
      runId: event.runId,
      runStartedAt: event.startedAt,
      decidedAt: new Date(systemClock.now()).toISOString(),
      mode: rt.config.mode,
      outcome: 'FAILED',
      detail,
      afterProtect: target.afterProtect,
      ...(target.owner !== undefined ? { owner: target.owner } : {}),
    };
    let written: FailedWrite;
    try {
      written = await withRetries('audit write', () => writeFailed(rt, failure, repeats), {
        ...AUDIT_RETRY,
        attempts: tableDown ? 1 : AUDIT_RETRY.attempts,
      });
    } catch (error) {
      tableDown = true;
      emitMetric('AuditWriteFailed', 1);
      logger.error('FAILED decision could not be written to the audit table', {
        functionName: target.functionName,
        error: errorSummary(error),
      });
      if (await fallBack(rt, failure)) out.unrecorded += 1;
      continue;
    }
    tableDown = false;
    if (written.result === 'exists') {
      out.alreadyDecided += 1;
      logger.info('function already decided in this run; its decision stands', { functionName: target.functionName });
      continue;
    }
    out.recorded += 1;
    logger.error('function recorded FAILED', { functionName: target.functionName, error: detail });
    try {
      await publishFailed(rt, written.item);
    } catch (error) {
      // The FAILED item is the outbox entry: finish-run (or the next run's start) sends it (shared/notices.ts).
      emitMetric('NotificationsFailed', 1);
      logger.error('failure notification failed; sent by the outbox drain', {
        functionName: target.functionName,
        error: errorSummary(error),
      });
      await keepInOutbox(rt, event.runId).catch(() => undefined);
      continue;
    }
    await markSentNow(rt, written.item);
  }
  return out;
};
