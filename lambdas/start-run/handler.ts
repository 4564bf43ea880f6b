/**
 * Start run: takes the run lease so that runs never overlap, then settles what earlier runs left behind.
 *
 * Lease: the lease item names the holder run and its execution ARN. A run that finds the lease held asks Step
 * Functions about the holder's execution (states:DescribeExecution): when it no longer runs (ended, killed, or
 * gone), the lease is taken over at once and LEASE_TAKEN_OVER recorded; when it still runs, or cannot be asked
 * (throttled, denied), the run records RUN_OVERLAP and returns `overlap: true` (the state machine then ends at once).
 * An unreleased lease therefore blocks nothing once its holder has ended, and at most its two hours otherwise.
 *
 * After the lease: replays the decisions an earlier record-failure could not write (lambdas/shared/replay.ts) and
 * reconciles earlier PENDING changes without a decision (lambdas/shared/reconcile.ts), then sends the notices those
 * decisions, a killed holder's run and the outbox's runs still owe (lambdas/shared/notices.ts). Each failing is
 * logged and alarmed (`RunMaintenanceFailed`), never blocks the run: the next run tries again.
 */
import type { Context } from 'aws-lambda';
import { putAuditItem } from '../shared/adapters/audit-store';
import { executionState } from '../shared/adapters/executions';
import { systemClock } from '../shared/adapters/rate-limiter';
import {
  acquireLease,
  RUN_LEASE_SECONDS,
  takeOverLease,
  type Lease,
  type LeaseRequest,
} from '../shared/adapters/state-store';
import { runItem } from '../shared/domain/run-items';
import type { AuditItem, RunOutcome } from '../shared/domain/types';
import { logger, startInvocation } from '../shared/observability';
import { drainBudgetMs, drainOutbox } from '../shared/notices';
import { reconcilePending } from '../shared/reconcile';
import { emitMetric, errorSummary, recordSettings } from '../shared/recording';
import { replayUnrecorded } from '../shared/replay';
import { runtime, type Runtime } from '../shared/runtime';

/** How long a lease lasts if the run never releases (nor renews) it and its end cannot be seen: the longest block. */
export const LEASE_SECONDS = RUN_LEASE_SECONDS;

/** Metrics of this step (lib/constructs/metrics.ts ENGINE_METRICS names the alarmed ones). */
export const START_RUN_METRICS = {
  overlapped: 'RunsOverlapped',
  takenOver: 'LeasesTakenOver',
  maintenanceFailed: 'RunMaintenanceFailed',
} as const;

export interface StartRunInput {
  executionArn?: string;
  executionName?: string;
  startTime?: string;
}

export interface StartRunOutput {
  runId: string;
  startedAt: string;
  overlap: boolean;
  heldBy?: string;
}

function validIso(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

type HeldLease = Extract<Lease, { acquired: false }>;

/** The lease, taken over from a holder whose execution no longer runs; else why not (for RUN_OVERLAP). */
async function tryTakeOver(
  rt: Runtime,
  request: LeaseRequest,
  held: HeldLease,
): Promise<{ taken: true; status: string } | { taken: false; why: string }> {
  if (held.heldBy === undefined || held.holderExecutionArn === undefined) {
    return { taken: false, why: 'the lease names no execution to check' };
  }
  const state = await executionState(held.holderExecutionArn);
  if (!state.known) {
    // Unknown holder: the lease's own expiry is the fallback (it outlives the state machine's timeout).
    const expired = held.leaseUntil !== undefined && held.leaseUntil < request.nowEpoch;
    if (expired && (await takeOverLease(rt.stateTableName, { ...request, fromRunId: held.heldBy }))) {
      return { taken: true, status: `unknown (${state.error}); its lease expired` };
    }
    logger.warn('the lease holder execution cannot be checked: no takeover', { error: state.error });
    return { taken: false, why: `its execution cannot be checked (${state.error})` };
  }
  if (state.running) return { taken: false, why: `its execution is ${state.status}` };
  const taken = await takeOverLease(rt.stateTableName, { ...request, fromRunId: held.heldBy });
  return taken
    ? { taken: true, status: state.status }
    : { taken: false, why: `its execution is ${state.status}, but another run took the lease first` };
}

async function recordRunItem(
  rt: Runtime,
  run: { runId: string; startedAt: string },
  now: number,
  outcome: RunOutcome,
  detail: string,
) {
  await putAuditItem(
    rt.auditTableName,
    runItem(
      {
        runId: run.runId,
        runStartedAt: run.startedAt,
        decidedAt: new Date(now).toISOString(),
        mode: rt.config.mode,
        outcome,
        detail,
      },
      recordSettings(rt),
    ),
  );
}

/** Runs one settle-the-past task; a failure is logged and alarmed, never thrown. Returns its result, for the log. */
async function maintain(task: string, work: () => Promise<unknown>): Promise<string> {
  try {
    return JSON.stringify(await work());
  } catch (error) {
    emitMetric(START_RUN_METRICS.maintenanceFailed, 1);
    logger.error(`${task} failed; the next run tries again`, { error: errorSummary(error) });
    return 'failed';
  }
}

export const handler = async (event: StartRunInput, context?: Context): Promise<StartRunOutput> => {
  const rt = runtime();
  const now = systemClock.now();
  const runId = typeof event?.executionName === 'string' && event.executionName.length > 0 ? event.executionName : '';
  if (runId.length === 0) throw new Error('start-run: executionName is missing from the input');
  const startedAt = validIso(event.startTime) ? new Date(event.startTime).toISOString() : new Date(now).toISOString();
  startInvocation({ runId }, context);
  const request: LeaseRequest = {
    runId,
    ...(typeof event.executionArn === 'string' && event.executionArn.length > 0
      ? { executionArn: event.executionArn }
      : {}),
    nowEpoch: Math.floor(now / 1000),
    leaseSeconds: LEASE_SECONDS,
  };

  const lease = await acquireLease(rt.stateTableName, request);
  let takenOverFrom: string | undefined;
  if (!lease.acquired) {
    const heldBy = lease.heldBy ?? 'unknown';
    const takeover = await tryTakeOver(rt, request, lease);
    if (!takeover.taken) {
      await recordRunItem(
        rt,
        { runId, startedAt },
        now,
        'RUN_OVERLAP',
        `another run holds the lease: ${heldBy}; ${takeover.why}; this run ends without assessing anything`,
      );
      emitMetric(START_RUN_METRICS.overlapped, 1);
      logger.warn('another run is still active; ending this run', { heldBy, why: takeover.why });
      return { runId, startedAt, overlap: true, heldBy };
    }
    emitMetric(START_RUN_METRICS.takenOver, 1);
    takenOverFrom = lease.heldBy;
    logger.warn('lease taken over from a run that no longer runs', { heldBy, status: takeover.status });
    // The lease is ours now: a failed record must not end the run (it would only leave the lease to expire).
    await recordRunItem(
      rt,
      { runId, startedAt },
      now,
      'LEASE_TAKEN_OVER',
      `took over the lease of run ${heldBy}: its execution is ${takeover.status}`,
    ).catch((error: unknown) => {
      emitMetric(START_RUN_METRICS.maintenanceFailed, 1);
      logger.error('LEASE_TAKEN_OVER not recorded', { error: errorSummary(error) });
    });
  }

  // Runs whose decisions may owe notices: a killed holder (its finish-run never drained), the runs of reconciled and
  // replayed decisions; drainOutbox adds the runs finish-run left in the outbox.
  const owing = new Set<string>(takenOverFrom !== undefined ? [takenOverFrom] : []);
  const written: AuditItem[] = [];
  const replay = await maintain('replay of unrecorded decisions', async () => {
    const { items, ...result } = await replayUnrecorded(rt, runId);
    written.push(...(items ?? []));
    return result;
  });
  const reconciliation = await maintain('reconciliation of pending changes', async () => {
    const { items, ...result } = await reconcilePending(rt, now);
    written.push(...(items ?? []));
    return result;
  });
  owing.delete(runId);
  const notices = await maintain('sending owed notices', () =>
    drainOutbox(rt, [...owing], written, { deadline: now + drainBudgetMs(context) }),
  );
  logger.info('run lease acquired', { leaseSeconds: LEASE_SECONDS, replay, reconciliation, notices });
  return { runId, startedAt, overlap: false };
};
