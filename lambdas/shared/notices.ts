/**
 * The notice outbox (issue 9, "SNS down" and "lost message"): every decision that owes its owner a message gets it,
 * once, whichever step wrote the decision and whatever failed after the write.
 *
 * The audit item is the outbox entry: a decision owes a notice when `owesNotice` says so (a FAILED; a SKIPPED that
 * is new, or any SKIPPED with `notifications.skips: "always"`). The sent mark is the function's last-decision digest
 * (state table `LAST#<fn>`): it is stored only after the publish succeeded, with the decision's own `decidedAt`, so a
 * notice is sent exactly when the digest's `decidedAt` is older than the decision. A later decision's digest
 * supersedes an older notice (the owner is told about the newer decision instead).
 *
 * The steps that decide publish at once (assess, protect, record-failure) and store the digest; what they could not
 * send (SNS refused, the invocation died between write and publish, a retry found its decision already written) is
 * sent by `sendOwed`: finish-run over the run's items, start-run over reconciled and replayed decisions and over
 * runs left in the OUTBOX item (a run whose finish-run could not send everything) or killed (a taken-over lease).
 *
 * Delivery is at least once: a publish that succeeded followed by a digest write that failed (after
 * TABLE_RETRY's half minute of retries) is sent again by the next drain. That window is one DynamoDB outage longer
 * than the retries, never the normal path.
 */
import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Config } from '../../lib/config';
import { runItems } from './adapters/audit-store';
import { dynamodb } from './adapters/clients';
import { publishNotice } from './adapters/notifier';
import { getStateItem, lastDecisions, putLastDecisions } from './adapters/state-store';
import { nextDigest, type DecisionDigest } from './domain/audit';
import { decisionNotice } from './domain/notice';
import { stateKeys } from './domain/table-schema';
import type { AuditItem } from './domain/types';
import { logger } from './observability';
import { emitMetric, errorSummary, withRetries } from './recording';
import type { Runtime } from './runtime';

/**
 * Whether a decision owes its owner a message. PURE. A reconciled SKIPPED without reasons ("the run ended before the
 * change was applied: nothing was changed") owes none: no gate failed, the owner has nothing to do, the next run
 * decides the function afresh, and the engine alarm (ReconciledChanges) tells the operator that a run died.
 */
export function owesNotice(item: AuditItem, skips: Config['notifications']['skips']): boolean {
  if (item.kind !== 'decision') return false;
  if (item.outcome === 'FAILED') return true;
  if (item.outcome !== 'SKIPPED') return false;
  if (item.reconciled === true && item.reasons.length === 0) return false;
  return skips === 'always' || item.repeat !== true;
}

/** The digest a decision leaves (what the funnel compares the next decision with). PURE. */
export function digestOf(item: AuditItem, previous: DecisionDigest | undefined): DecisionDigest {
  const macs = item.outcome === 'PROTECTED' ? item.after?.ourValueMacs : undefined;
  return nextDigest(previous, {
    outcome: item.outcome,
    reasons: [...item.reasons],
    warnings: [...item.warnings],
    ...(macs !== undefined ? { ourValueMacs: macs } : {}),
  });
}

/** Stores the decision's digest (its notice is sent, or it owed none), retried through short outages. */
export async function markSent(rt: Runtime, item: AuditItem, previous: DecisionDigest | undefined): Promise<void> {
  await withRetries('storing the last-decision digest', () =>
    putLastDecisions(rt.stateTableName, [
      { functionName: item.functionName, digest: digestOf(item, previous), decidedAt: item.decidedAt },
    ]),
  );
}

export interface OwedResult {
  /** Decisions that owed a notice not sent before. */
  owed: number;
  sent: number;
  /** Still owed (SNS or the state table failing): the caller keeps them in the outbox. */
  failed: number;
}

/**
 * Sends what `items` owe and was not sent yet (see the module doc), oldest first, then stores each digest. Never
 * throws: a notice that cannot be sent now counts in `failed`.
 */
export async function sendOwed(rt: Runtime, items: readonly AuditItem[]): Promise<OwedResult> {
  const result: OwedResult = { owed: 0, sent: 0, failed: 0 };
  const owing = items
    .filter((item) => owesNotice(item, rt.config.notifications.skips))
    .sort((a, b) => (a.decidedAt < b.decidedAt ? -1 : a.decidedAt > b.decidedAt ? 1 : 0));
  if (owing.length === 0) return result;
  let digests: Map<string, DecisionDigest & { decidedAt?: string }>;
  try {
    digests = await withRetries('reading last-decision digests', () =>
      lastDecisions(rt.stateTableName, [...new Set(owing.map((i) => i.functionName))]),
    );
  } catch (error) {
    logger.error('last-decision digests unreadable; owed notices sent later', { error: errorSummary(error) });
    result.failed = owing.length;
    return result;
  }
  for (const item of owing) {
    const previous = digests.get(item.functionName);
    if (previous?.decidedAt !== undefined && previous.decidedAt >= item.decidedAt) continue;
    result.owed += 1;
    try {
      await publishNotice(rt.skipTopicArn, decisionNotice(item));
    } catch (error) {
      result.failed += 1;
      emitMetric('NotificationsFailed', 1);
      logger.error('owed notice not published; kept for later', {
        functionName: item.functionName,
        runId: item.runId,
        error: errorSummary(error),
      });
      continue;
    }
    result.sent += 1;
    try {
      await markSent(rt, item, previous);
      digests.set(item.functionName, { ...digestOf(item, previous), decidedAt: item.decidedAt });
    } catch (error) {
      // Sent, not marked: a later drain sends it again (at least once; see the module doc).
      logger.error('owed notice sent but not marked; it may be sent again', {
        functionName: item.functionName,
        error: errorSummary(error),
      });
    }
  }
  if (result.sent > 0) emitMetric('OwedNoticesSent', result.sent);
  return result;
}

/** Runs whose owed notices are not all sent yet (state item OUTBOX, a string set of run ids). */
export async function outboxRuns(rt: Runtime): Promise<string[]> {
  const item = await getStateItem(rt.stateTableName, stateKeys.outbox());
  const runs: unknown = item?.['runIds'];
  if (runs instanceof Set) return [...runs].filter((r): r is string => typeof r === 'string').sort();
  return Array.isArray(runs) ? runs.filter((r): r is string => typeof r === 'string').sort() : [];
}

async function updateOutbox(rt: Runtime, action: 'ADD' | 'DELETE', runId: string): Promise<void> {
  await withRetries(`${action === 'ADD' ? 'adding a run to' : 'removing a run from'} the outbox`, () =>
    dynamodb.send(
      new UpdateCommand({
        TableName: rt.stateTableName,
        Key: { pk: stateKeys.outbox() },
        UpdateExpression: `${action} runIds :run`,
        ExpressionAttributeValues: { ':run': new Set([runId]) },
      }),
    ),
  );
}

/** Keeps a run in the outbox: the next run's start sends what it still owes. */
export function keepInOutbox(rt: Runtime, runId: string): Promise<void> {
  return updateOutbox(rt, 'ADD', runId);
}

/**
 * start-run: sends what the outbox's runs and `more` (a killed run whose lease was taken over) still owe, and takes a
 * run out of the outbox once nothing is owed. Never throws.
 */
export async function drainOutbox(rt: Runtime, more: readonly string[]): Promise<OwedResult & { runs: number }> {
  const total = { owed: 0, sent: 0, failed: 0, runs: 0 };
  let runs: string[];
  try {
    runs = [...new Set([...(await outboxRuns(rt)), ...more])];
  } catch (error) {
    logger.error('outbox unreadable; drained next run', { error: errorSummary(error) });
    runs = [...more];
  }
  for (const runId of runs) {
    let result: OwedResult;
    try {
      result = await sendOwed(
        rt,
        await withRetries("reading a run's decisions", () => runItems(rt.auditTableName, runId)),
      );
    } catch (error) {
      logger.error("a run's decisions are unreadable; drained next run", { runId, error: errorSummary(error) });
      await keepInOutbox(rt, runId).catch(() => undefined);
      continue;
    }
    total.runs += 1;
    total.owed += result.owed;
    total.sent += result.sent;
    total.failed += result.failed;
    const action = result.failed === 0 ? 'DELETE' : 'ADD';
    await updateOutbox(rt, action, runId).catch((error: unknown) => {
      logger.warn('outbox not updated', { runId, error: errorSummary(error) });
    });
  }
  return total;
}
