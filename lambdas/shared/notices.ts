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
import type { Config } from './domain/config';
import { runItems } from './adapters/audit-store';
import { dynamodb } from './adapters/clients';
import { publishNotice } from './adapters/notifier';
import { systemClock } from './adapters/rate-limiter';
import { getStateItem, lastDecisions, putLastDecisions, type StoredDigest } from './adapters/state-store';
import { nextDigest, sameDecision, type DecisionDigest } from './domain/audit';
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
  // Without its decidedAt a decision cannot be told sent or not (its digest is the mark): never sent from here.
  if (typeof item.decidedAt !== 'string' || item.decidedAt.length === 0) return false;
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
  /** Still owed (SNS or the state table failing, or the time budget used up): the caller keeps their runs. */
  failed: number;
}

/** After this many publishes refused in a row, the rest waits for the next drain (SNS is down: stop early). */
export const MAX_CONSECUTIVE_FAILURES = 3;

export interface SendOptions {
  /** Stop sending once the clock passes this (ms since the epoch): what is left counts as failed. */
  deadline?: number;
}

const byDecidedAt = (a: AuditItem, b: AuditItem): number =>
  a.decidedAt < b.decidedAt ? -1 : a.decidedAt > b.decidedAt ? 1 : 0;

/**
 * Sends what `items` owe and was not sent yet (see the module doc), then stores each digest. Per function only its
 * newest owing decision is sent (an older one of the same function, say from an earlier run that also could not
 * send, is superseded by it), and a SKIPPED that repeats what the function's digest says was sent last is only
 * marked (`notifications.skips: "changed"`). Bounded: stops after MAX_CONSECUTIVE_FAILURES refused publishes in a
 * row or at `options.deadline`. Never throws: a notice that cannot be sent now counts in `failed`.
 */
export async function sendOwed(
  rt: Runtime,
  items: readonly AuditItem[],
  options: SendOptions = {},
): Promise<OwedResult> {
  const result: OwedResult = { owed: 0, sent: 0, failed: 0 };
  const skips = rt.config.notifications.skips;
  const newest = new Map<string, AuditItem>();
  for (const item of items.filter((i) => owesNotice(i, skips)).sort(byDecidedAt)) newest.set(item.functionName, item);
  const owing = [...newest.values()].sort(byDecidedAt);
  if (owing.length === 0) return result;
  let digests: Map<string, StoredDigest>;
  try {
    digests = await withRetries('reading last-decision digests', () =>
      lastDecisions(rt.stateTableName, [...newest.keys()]),
    );
  } catch (error) {
    logger.error('last-decision digests unreadable; owed notices sent later', { error: errorSummary(error) });
    result.failed = owing.length;
    return result;
  }
  let refusedInARow = 0;
  for (const [index, item] of owing.entries()) {
    const previous = digests.get(item.functionName);
    if (previous?.decidedAt !== undefined && previous.decidedAt >= item.decidedAt) continue;
    const outOfTime = options.deadline !== undefined && systemClock.now() >= options.deadline;
    if (refusedInARow >= MAX_CONSECUTIVE_FAILURES || outOfTime) {
      const left = owing.length - index;
      logger.warn('owed notices left for the next drain', { left, refusedInARow, outOfTime });
      result.owed += left;
      result.failed += left;
      break;
    }
    result.owed += 1;
    const repeat =
      item.outcome === 'SKIPPED' && skips === 'changed' && sameDecision(previous, digestOf(item, previous));
    if (!repeat) {
      try {
        await publishNotice(rt.skipTopicArn, decisionNotice(item));
        refusedInARow = 0;
      } catch (error) {
        refusedInARow += 1;
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
    }
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

/** Takes a run out of the outbox: it owes nothing any more. */
export function releaseFromOutbox(rt: Runtime, runId: string): Promise<void> {
  return updateOutbox(rt, 'DELETE', runId);
}

/**
 * How long an outbox drain may take: the invocation's remaining time minus a margin for the rest of the step, or
 * DRAIN_BUDGET_MS without a Lambda context. What is left waits for the next drain.
 */
export const DRAIN_BUDGET_MS = 60_000;
const DRAIN_MARGIN_MS = 30_000;
export function drainBudgetMs(context: { getRemainingTimeInMillis?: () => number } | undefined): number {
  const remaining = context?.getRemainingTimeInMillis?.();
  return typeof remaining === 'number' ? Math.max(0, remaining - DRAIN_MARGIN_MS) : DRAIN_BUDGET_MS;
}

/**
 * start-run: sends what the outbox's runs, `more` (a killed run whose lease was taken over) and `written` (decisions
 * this start just reconciled or replayed, passed as written: the byRun index is eventually consistent and may not
 * show them yet) still owe, in one pass (so the newest decision of a function supersedes its older ones across
 * runs), and takes the runs out of the outbox once nothing is owed; otherwise every one stays. Never throws.
 */
export async function drainOutbox(
  rt: Runtime,
  more: readonly string[],
  written: readonly AuditItem[] = [],
  options: SendOptions = {},
): Promise<OwedResult & { runs: number }> {
  let runs: string[];
  try {
    runs = [...new Set([...(await outboxRuns(rt)), ...more])];
  } catch (error) {
    logger.error('outbox unreadable; drained next run', { error: errorSummary(error) });
    runs = [...more];
  }
  const items = new Map<string, AuditItem>();
  const unreadable: string[] = [];
  for (const runId of runs) {
    try {
      const found = await withRetries("reading a run's decisions", () => runItems(rt.auditTableName, runId));
      for (const item of found) items.set(`${item.functionName}\u0000${item.sk}`, item);
    } catch (error) {
      logger.error("a run's decisions are unreadable; drained next run", { runId, error: errorSummary(error) });
      unreadable.push(runId);
    }
  }
  for (const item of written) items.set(`${item.functionName}\u0000${item.sk}`, item);
  const writtenRuns = [...new Set(written.map((i) => i.runId))];
  const result = await sendOwed(rt, [...items.values()], options);
  const done = result.failed === 0;
  for (const runId of new Set([...runs, ...writtenRuns])) {
    const keep = !done || unreadable.includes(runId);
    // A run only in `written` that has nothing left owing needs no outbox entry at all.
    if (!keep && !runs.includes(runId)) continue;
    await updateOutbox(rt, keep ? 'ADD' : 'DELETE', runId).catch((error: unknown) => {
      logger.warn('outbox not updated', { runId, error: errorSummary(error) });
    });
  }
  return { ...result, runs: runs.length - unreadable.length };
}
