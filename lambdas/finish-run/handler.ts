/**
 * Finish run: counts the run's decisions by outcome and its top skip reasons (audit index byRun), sends the notices
 * the run's decisions still owe (the outbox drain, lambdas/shared/notices.ts), publishes one summary message, emits the run's metrics and releases the lease (always: try/finally, even when counting or
 * publishing fails; table calls retried on the injectable clock). The summary is not an audit item: the audit
 * table holds one item per decision (the byRun index answers "what did run R do").
 * PENDING write-ahead items are not decisions: they are counted separately, and a PENDING without a final record
 * of the protect invocation itself (one with a before-image; record-failure's FAILED has none) is reported as
 * unfinished: the function may carry the change (issue 8 item 5).
 */
import type { Context } from 'aws-lambda';
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { runItemPages } from '../shared/adapters/audit-store';
import { drainBudgetMs, keepInOutbox, owesNotice, releaseFromOutbox, sendOwed } from '../shared/notices';
import { publishNotice } from '../shared/adapters/notifier';
import { systemClock } from '../shared/adapters/rate-limiter';
import { releaseLease } from '../shared/adapters/state-store';
import { runSummaryNotice, type RunSummary } from '../shared/domain/notice';
import { unfinishedPending } from '../shared/domain/audit';
import type { AuditItem } from '../shared/domain/types';
import { logger, startInvocation } from '../shared/observability';
import { emitCounts, emitMetric, errorSummary, failureDetail, increment, withRetries } from '../shared/recording';

export { TABLE_ATTEMPTS } from '../shared/recording';
import { runtime } from '../shared/runtime';

export interface FinishRunInput {
  runId: string;
  startedAt: string;
  failed?: boolean;
  error?: { Error?: string; Cause?: string };
}

export interface FinishRunOutput {
  runId: string;
  counts: Record<string, number>;
  status: 'SUCCEEDED' | 'FAILED';
}

/** Run metrics. `Decisions` and `Skips` match lib/constructs/metrics.ts (ENGINE_METRICS). */
export const RUN_METRICS = {
  decisions: { name: 'Decisions', dimension: 'Outcome' },
  skips: { name: 'Skips', dimension: 'Reason' },
  completed: 'RunsCompleted',
  failed: 'RunsFailed',
  pending: 'UnfinishedProtections',
  duration: 'RunDuration',
} as const;

export const TOP_REASONS = 5;

export interface RunCounts {
  counts: Record<string, number>;
  pending: number;
  unfinished: string[];
  skips: Map<string, number>;
  topReasons: Array<{ code: string; count: number }>;
  account: string | null;
  region: string | null;
}

/**
 * Counts a run's items page by page (issue 11: finish-run never holds a 50,000-function run): the counts, and only
 * the items a later question needs — PENDING items and items with a before-image (whether a change is unfinished),
 * and the items that owe a notice (the outbox drain). PURE.
 */
export class RunCounter {
  private readonly counts = new Map<string, number>();
  private readonly skips = new Map<string, number>();
  private pending = 0;
  private account: string | null = null;
  private region: string | null = null;
  /** The items kept for `unfinishedPending` and the outbox drain. */
  readonly kept: AuditItem[] = [];

  constructor(private readonly keep: (item: AuditItem) => boolean = () => false) {}

  add(item: AuditItem): void {
    if (item.kind !== 'decision') return;
    this.account ??= item.account;
    this.region ??= item.region;
    if (item.outcome === 'PENDING' || item.before !== undefined || this.keep(item)) this.kept.push(item);
    if (item.outcome === 'PENDING') {
      this.pending += 1;
      return;
    }
    increment(this.counts, item.outcome);
    if (item.outcome === 'SKIPPED') for (const reason of item.reasons ?? []) increment(this.skips, reason);
  }

  result(): RunCounts {
    const unfinished = new Set<string>();
    for (const item of this.kept) if (unfinishedPending(item, this.kept)) unfinished.add(item.functionName);
    const topReasons = [...this.skips.entries()]
      .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
      .slice(0, TOP_REASONS)
      .map(([code, count]) => ({ code, count }));
    return {
      counts: Object.fromEntries(this.counts),
      pending: this.pending,
      unfinished: [...unfinished].sort(),
      skips: this.skips,
      topReasons,
      account: this.account,
      region: this.region,
    };
  }
}

/** Counts a run's items. PURE (exported for tests). */
export function countRun(items: readonly AuditItem[]): RunCounts {
  const counter = new RunCounter();
  for (const item of items) counter.add(item);
  return counter.result();
}

/** Reads the run page by page (retried as a whole through a short outage). */
async function countRunOf(tableName: string, runId: string, keep: (item: AuditItem) => boolean): Promise<RunCounter> {
  return withRetries("reading the run's decisions", async () => {
    const counter = new RunCounter(keep);
    for await (const page of runItemPages(tableName, runId)) for (const item of page) counter.add(item);
    return counter;
  });
}

export const handler = async (event: FinishRunInput, context?: Context): Promise<FinishRunOutput> => {
  const rt = runtime();
  const { runId } = event;
  startInvocation({ runId }, context);
  const status: FinishRunOutput['status'] = event.failed === true ? 'FAILED' : 'SUCCEEDED';
  try {
    const owes = (item: AuditItem): boolean => owesNotice(item, rt.config.notifications.skips);
    const counter = await countRunOf(rt.auditTableName, runId, owes);
    const run = counter.result();
    const items = counter.kept;
    const now = systemClock.now();
    const finishedAt = new Date(now).toISOString();
    const summary: RunSummary = {
      runId,
      status,
      mode: rt.config.mode,
      startedAt: event.startedAt,
      finishedAt,
      counts: run.counts,
      unfinished: run.unfinished,
      topReasons: run.topReasons,
      account: run.account,
      region: run.region,
    };
    if (event.failed === true) summary.error = failureDetail(event.error);

    await publishNotice(rt.skipTopicArn, runSummaryNotice(summary)).catch((error: unknown) => {
      emitMetric('NotificationsFailed', 1);
      logger.error('run summary notification failed', { error: errorSummary(error) });
    });

    // The outbox drain, after the summary (which must not wait on it): the notices this run's steps owed and could
    // not send. The run is put in the outbox first and taken out only once nothing is owed, so a drain cut short
    // (time budget, SNS down, the invocation killed) leaves it for the next run's start (lambdas/shared/notices.ts).
    if (items.some((item) => owesNotice(item, rt.config.notifications.skips))) {
      const kept = await keepInOutbox(rt, runId).then(
        () => true,
        (error: unknown) => {
          logger.error('run not kept in the outbox; its owed notices are sent now or by a retry', {
            error: errorSummary(error),
          });
          return false;
        },
      );
      const notices = await sendOwed(rt, items, { deadline: systemClock.now() + drainBudgetMs(context) });
      logger.info('owed notices of the run', { ...notices });
      if (notices.failed === 0 && kept) {
        await releaseFromOutbox(rt, runId).catch((error: unknown) => {
          logger.warn('run left in the outbox; the next drain finds nothing owed', { error: errorSummary(error) });
        });
      }
    }
    emitMetric(status === 'FAILED' ? RUN_METRICS.failed : RUN_METRICS.completed, 1);
    emitCounts(RUN_METRICS.decisions.name, RUN_METRICS.decisions.dimension, new Map(Object.entries(run.counts)));
    emitCounts(RUN_METRICS.skips.name, RUN_METRICS.skips.dimension, run.skips);
    emitMetric(RUN_METRICS.pending, run.unfinished.length);
    const started = Date.parse(event.startedAt);
    if (!Number.isNaN(started))
      emitMetric(RUN_METRICS.duration, Math.max(0, (now - started) / 1000), MetricUnit.Seconds);
    logger.info('run finished', {
      status,
      counts: run.counts,
      pending: run.pending,
      unfinished: run.unfinished.length,
    });
    return { runId, counts: run.counts, status };
  } finally {
    // Every path releases: counted or not, published or not, a thrown error included.
    await withRetries('releasing the lease', () => releaseLease(rt.stateTableName, runId)).catch((error: unknown) => {
      emitMetric('LeaseNotReleased', 1);
      logger.error('lease not released; the next run takes it over once this execution has ended', {
        error: errorSummary(error),
      });
    });
  }
};
