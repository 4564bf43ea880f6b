/**
 * Start run: takes the run lease so that runs never overlap. A run that finds the lease held by another, unexpired
 * run records RUN_OVERLAP and returns `overlap: true` (the state machine then ends at once).
 */
import type { Context } from 'aws-lambda';
import { putAuditItem } from '../shared/adapters/audit-store';
import { systemClock } from '../shared/adapters/rate-limiter';
import { acquireLease } from '../shared/adapters/state-store';
import { runItem } from '../shared/domain/run-items';
import { logger, startInvocation } from '../shared/observability';
import { emitMetric, recordSettings } from '../shared/recording';
import { runtime } from '../shared/runtime';

/** How long a lease lasts if the run never releases it (it dies): the next runs are blocked at most this long. */
export const LEASE_SECONDS = 2 * 60 * 60;

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

export const handler = async (event: StartRunInput, context?: Context): Promise<StartRunOutput> => {
  const rt = runtime();
  const now = systemClock.now();
  const runId = typeof event?.executionName === 'string' && event.executionName.length > 0 ? event.executionName : '';
  if (runId.length === 0) throw new Error('start-run: executionName is missing from the input');
  const startedAt = validIso(event.startTime) ? new Date(event.startTime).toISOString() : new Date(now).toISOString();
  startInvocation({ runId }, context);
  const lease = await acquireLease(rt.stateTableName, runId, Math.floor(now / 1000), LEASE_SECONDS);
  if (lease.acquired) {
    logger.info('run lease acquired', { leaseSeconds: LEASE_SECONDS });
    return { runId, startedAt, overlap: false };
  }
  const heldBy = lease.heldBy ?? 'unknown';
  await putAuditItem(
    rt.auditTableName,
    runItem(
      {
        runId,
        runStartedAt: startedAt,
        decidedAt: new Date(now).toISOString(),
        mode: rt.config.mode,
        outcome: 'RUN_OVERLAP',
        detail: `another run holds the lease: ${heldBy}; this run ends without assessing anything`,
      },
      recordSettings(rt),
    ),
  );
  emitMetric('RunsOverlapped', 1);
  logger.warn('another run is still active; ending this run', { heldBy });
  return { runId, startedAt, overlap: true, heldBy };
};
