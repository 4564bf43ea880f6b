/**
 * Reconciliation (issue 9, decision 6): a run that died between a write-ahead PENDING and its final record (killed,
 * timed out, its Lambda gone) leaves a function that may carry the change with no decision for that run. The next
 * run's start finds such PENDING items, reads the function, decides whether the change landed, and writes THAT
 * run's `decision` item (conditional put on its deterministic key) with `reconciled: true`:
 * - PROTECTED: the planned layers (in order), our variables with the planned MACs and the planned handler are on it;
 * - FAILED: AWS marked the update Failed (its reason is recorded, and the owner is told by start-run's outbox
 *   drain), or only part of the
 *   change is there (a person must look; rollback works from the record);
 * - SKIPPED "nothing was changed": nothing the change added is on the function (the next run decides again);
 * - SKIPPED FUNCTION_DELETED: the function is gone.
 * A function whose update is still InProgress, or that cannot be read now, stays unfinished (it is listed in the
 * result) and is tried again by the next run, for as long as its PENDING is within the window.
 * Every reconciled decision counts in the alarm metric `ReconciledChanges`.
 *
 * Bounded: one Query of index byChange (changeKey = CHANGE, decidedAt within RECONCILE_WINDOW_MS, at most
 * MAX_QUERY_PAGES pages); a PENDING whose run's PROTECTED/FAILED is among the results needs nothing more, the others
 * one consistent GetItem each (a decision without changeKey, such as a SKIPPED, is found that way), at most
 * MAX_RECONCILE GetFunction calls per run, paced like the rest of the engine. Images only: no variable value leaves.
 */
import type { Config } from './domain/config';
import { changesSince, getAuditItem, putAuditItem } from './adapters/audit-store';
import { awsMessage, isNotFound, readFunction, type FreshFunction } from './adapters/function-update';
import { macKey } from './adapters/mac-key';
import { controlPlaneLimiters } from './adapters/rate-limiter';
import { lastDecisions, putLastDecisions } from './adapters/state-store';
import { decisionItem, decisionKeyOf, nextDigest, pendingLanding, runStartOf } from './domain/audit';
import { ourVariableNames, type MacContext } from './domain/mac';
import { configurationImage } from './domain/plan';
import type { AuditItem, ConfigurationImage, Outcome, ReasonCode } from './domain/types';
import { logger } from './observability';
import { emitMetric, errorSummary, recordSettings, scrubMessage, withRetries } from './recording';
import type { Runtime } from './runtime';

/** PENDING items older than this are not reconciled any more (they stay listed by rollback's history). */
export const RECONCILE_WINDOW_MS = 2 * 24 * 60 * 60 * 1000;
export const MAX_QUERY_PAGES = 20;
export const MAX_RECONCILE = 100;
/** The alarm metric of reconciled decisions. */
export const RECONCILED_METRIC = 'ReconciledChanges';

export interface ReconciledDecision {
  functionName: string;
  runId: string;
  outcome: Outcome;
}

export interface ReconcileResult {
  /** Decisions written now for earlier runs. */
  reconciled: ReconciledDecision[];
  /** Those decisions as written (start-run sends what they owe; the byRun index may not show them yet). */
  items?: AuditItem[];
  /** PENDING items still without a decision (update in progress, function unreadable, or over the bound). */
  unfinished: Array<{ functionName: string; runId: string }>;
}

interface Verdict {
  outcome: Outcome;
  reasons: ReasonCode[];
  detail: string;
  after?: ConfigurationImage;
}

/** What the function as it is now says about the PENDING's change; undefined: not decidable yet. */
function verdictOf(pending: AuditItem, fresh: FreshFunction, mac: MacContext): Verdict | undefined {
  const name = pending.functionName;
  const configuration = fresh.configuration;
  const status = configuration.LastUpdateStatus;
  if (status === 'InProgress') return undefined;
  const current = configurationImage(configuration, mac, name);
  const rollback = `to undo: npx zero-impact rollback --function ${name}`;
  if (status === 'Failed') {
    const reason = typeof configuration.LastUpdateStatusReason === 'string' ? configuration.LastUpdateStatusReason : '';
    return {
      outcome: 'FAILED',
      reasons: [],
      after: current,
      detail: `reconciled: the update failed${reason.length > 0 ? `: ${scrubMessage(reason)}` : ''}; the function is left as AWS left it; ${rollback}`,
    };
  }
  const landing = pending.after === undefined ? 'partial' : pendingLanding(current, pending.after, pending.before);
  switch (landing) {
    case 'landed':
      return { outcome: 'PROTECTED', reasons: [], after: current, detail: 'reconciled: the change had landed' };
    case 'not-landed':
      return {
        outcome: 'SKIPPED',
        reasons: [],
        detail: 'reconciled: the run ended before the change was applied: nothing was changed',
      };
    case 'partial':
      return {
        outcome: 'FAILED',
        reasons: [],
        after: current,
        detail: `reconciled: only part of the change is on the function, or it changed since; a person must look; ${rollback}`,
      };
  }
}

/** Finds the PENDING items of the window that have no decision in their run, oldest first. */
async function undecidedPending(rt: Runtime, now: number): Promise<AuditItem[]> {
  const since = new Date(now - RECONCILE_WINDOW_MS).toISOString();
  // Retried through a short outage: a run starting inside one must not leave the dead run's changes for a third run.
  const changes = await withRetries('listing PENDING changes', () =>
    changesSince(rt.auditTableName, since, MAX_QUERY_PAGES),
  );
  const decided = new Set(
    changes.filter((item) => item.outcome !== 'PENDING').map((item) => `${item.functionName}\n${item.runId}`),
  );
  return changes.filter(
    (item) =>
      item.kind === 'decision' &&
      item.outcome === 'PENDING' &&
      decisionKeyOf(item) !== undefined &&
      !decided.has(`${item.functionName}\n${item.runId}`),
  );
}

/**
 * Reconciles earlier runs' PENDING items without a decision (see the module doc). Never throws: a failure leaves the
 * items for the next run.
 */
export async function reconcilePending(rt: Runtime, now: number): Promise<ReconcileResult> {
  const result: ReconcileResult = { reconciled: [], unfinished: [] };
  let pending: AuditItem[];
  try {
    pending = await undecidedPending(rt, now);
  } catch (error) {
    logger.error('PENDING items cannot be listed; reconciled next run', { error: errorSummary(error) });
    return result;
  }
  const open: AuditItem[] = [];
  for (const item of pending) {
    const sk = decisionKeyOf(item) ?? '';
    try {
      const decision = await withRetries("reading a PENDING's decision", () =>
        getAuditItem(rt.auditTableName, item.functionName, sk),
      );
      if (decision === undefined) open.push(item);
    } catch (error) {
      logger.warn('decision of a PENDING unreadable; tried next run', {
        functionName: item.functionName,
        runId: item.runId,
        error: errorSummary(error),
      });
      result.unfinished.push({ functionName: item.functionName, runId: item.runId });
    }
  }
  if (open.length === 0) return result;

  let mac: MacContext;
  try {
    mac = { key: await macKey(), ourNames: ourVariableNames(rt.config) };
  } catch (error) {
    logger.error('MAC key unavailable; PENDING items reconciled next run', { error: errorSummary(error) });
    result.unfinished.push(...open.map((item) => ({ functionName: item.functionName, runId: item.runId })));
    return result;
  }
  const limiter = controlPlaneLimiters(rt.config.rates, 1).getFunction;
  for (const [index, item] of open.entries()) {
    const unfinished = { functionName: item.functionName, runId: item.runId };
    if (index >= MAX_RECONCILE) {
      result.unfinished.push(unfinished);
      continue;
    }
    const verdict = await judge(item, mac, () => limiter.take());
    if (verdict === undefined) {
      result.unfinished.push(unfinished);
      continue;
    }
    const outcome = await record(rt, item, verdict, now);
    if (outcome === undefined) result.unfinished.push(unfinished);
    else if (outcome !== 'exists') {
      result.reconciled.push({ ...unfinished, outcome: verdict.outcome });
      (result.items ??= []).push(outcome.item);
    }
  }
  if (result.reconciled.length > 0) emitMetric(RECONCILED_METRIC, result.reconciled.length);
  logger.info('PENDING items reconciled', {
    reconciled: result.reconciled.length,
    unfinished: result.unfinished.length,
  });
  return result;
}

async function judge(item: AuditItem, mac: MacContext, beforeCall: () => Promise<void>): Promise<Verdict | undefined> {
  let fresh: FreshFunction;
  try {
    fresh = await readFunction(item.functionArn ?? item.functionName, { beforeCall });
  } catch (error) {
    if (isNotFound(error)) {
      return {
        outcome: 'SKIPPED',
        reasons: ['FUNCTION_DELETED'],
        detail: 'reconciled: the function was deleted; there is nothing left to roll back',
      };
    }
    logger.warn('function unreadable; its PENDING is reconciled next run', {
      functionName: item.functionName,
      error: awsMessage(error),
    });
    return undefined;
  }
  const verdict = verdictOf(item, fresh, mac);
  if (verdict === undefined) {
    logger.info('update still in progress; reconciled next run', { functionName: item.functionName });
  }
  return verdict;
}

/** Writes the run's decision and stores a PROTECTED's digest. undefined: not written now. */
async function record(
  rt: Runtime,
  pending: AuditItem,
  verdict: Verdict,
  now: number,
): Promise<{ item: AuditItem } | 'exists' | undefined> {
  const runStartedAt = runStartOf(pending) ?? pending.decidedAt;
  const item = decisionItem(
    {
      functionName: pending.functionName,
      functionArn: pending.functionArn,
      runId: pending.runId,
      runStartedAt,
      decidedAt: new Date(now).toISOString(),
      mode: pending.mode,
      outcome: verdict.outcome,
      reasons: verdict.reasons,
      warnings: [],
      checks: pending.checks,
      detail: verdict.detail,
      reconciled: true,
      // The PENDING's before-image: the PENDING counts as finished, and rollback judges against it.
      ...(pending.before !== undefined ? { before: pending.before } : {}),
      ...(verdict.after !== undefined ? { after: verdict.after } : {}),
      ...(pending.owner !== undefined ? { owner: pending.owner } : {}),
    },
    recordSettings(rt),
  );
  let written: 'written' | 'exists';
  try {
    written = await withRetries('writing a reconciled decision', () => putAuditItem(rt.auditTableName, item));
  } catch (error) {
    logger.error('reconciled decision not written; tried next run', {
      functionName: pending.functionName,
      error: errorSummary(error),
    });
    return undefined;
  }
  if (written === 'exists') return written;
  logger.warn(`reconciled ${verdict.outcome}: ${pending.functionName} (run ${pending.runId})`, {
    detail: verdict.detail,
  });
  // Its notice (a FAILED, a FUNCTION_DELETED) is sent by start-run's outbox drain of the run (shared/notices.ts).
  if (verdict.outcome === 'PROTECTED') await rememberMacs(rt.config, rt.stateTableName, item);
  return { item };
}

/** A reconciled PROTECTED: its digest keeps the MACs of what the engine wrote (issue 8 item 7). Best effort. */
async function rememberMacs(config: Config, stateTable: string, item: AuditItem): Promise<void> {
  const macs = item.after?.ourValueMacs;
  if (macs === undefined || config.mode !== 'protect') return;
  try {
    const previous = (await lastDecisions(stateTable, [item.functionName])).get(item.functionName);
    const digest = nextDigest(previous, { outcome: 'PROTECTED', reasons: [], warnings: [], ourValueMacs: macs });
    await putLastDecisions(stateTable, [{ functionName: item.functionName, digest, decidedAt: item.decidedAt }]);
  } catch (error) {
    logger.warn('digest of a reconciled protection not stored', { error: errorSummary(error) });
  }
}
