/**
 * Run-level audit items (kind "run"): the overlap record of a run that found another one still running, the record
 * of a lease taken over. PURE. They live in the RUN_ITEMS_PARTITION partition and, through `runId`, in the
 * byRun index next to the run's decisions.
 */
import { auditSortKey, expiryOf, type RecordSettings } from './audit';
import { RUN_ITEMS_PARTITION } from './table-schema';
import type { AuditItem, Mode, RunOutcome } from './types';

export interface RunItemInput {
  runId: string;
  /** The run's `startedAt` (ISO 8601): with the outcome, the item's deterministic sort key (a retry writes nothing). */
  runStartedAt: string;
  /** ISO 8601; the caller's clock. */
  decidedAt: string;
  mode: Mode;
  outcome: RunOutcome;
  detail?: string;
  account?: string | null;
  region?: string | null;
}

export function runItem(input: RunItemInput, settings: RecordSettings): AuditItem {
  const item: AuditItem = {
    functionName: RUN_ITEMS_PARTITION,
    sk: auditSortKey(input.runStartedAt, input.runId, input.outcome),
    kind: 'run',
    functionArn: null,
    account: input.account ?? null,
    region: input.region ?? null,
    runId: input.runId,
    decidedAt: input.decidedAt,
    mode: input.mode,
    outcome: input.outcome,
    reasons: [],
    warnings: [],
    checks: [],
    engineVersion: settings.engineVersion,
    configHash: settings.configHash,
    expiresAt: expiryOf(input.decidedAt, settings.retentionDays),
    repeat: false,
  };
  if (input.detail !== undefined) item.detail = input.detail;
  return item;
}
