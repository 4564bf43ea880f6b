/**
 * Building audit items: pure. The adapters only write what this returns.
 *
 * Exactly one final decision per (run, function), enforced by the database (issue 9): every item of a run has a
 * DETERMINISTIC sort key `${runStartedAt}#${runId}#${stage}` (stage `0-pending` for the write-ahead PENDING of a
 * change, `1-decision` for the one final decision of the function in that run, whoever writes it), and every write
 * is a conditional put (`attribute_not_exists`). A task retry that decides again therefore finds its earlier
 * decision already there: the put answers 'exists' and the writer neither publishes nor stores a digest again.
 *
 * Why conditional writes keyed by run and function, not @aws-lambda-powertools/idempotency: a batch retry after a
 * partial crash must skip exactly the functions already decided and decide the others. Powertools' idempotency
 * record is per invocation payload (the whole batch): its INPROGRESS record would block the retry, or its
 * expiry would let the retry redo the whole batch, publishing every skip again. Keyed by (run, function, stage),
 * the audit item is itself the idempotency record, one per function, and the retry fills in only what is missing.
 */
import type { AuditItem, ConfigurationImage, Outcome } from './types';

/** The stages of a function's items within one run: the write-ahead PENDING sorts before the final decision. */
export const AUDIT_STAGE = { pending: '0-pending', decision: '1-decision' } as const;
export type AuditStage = (typeof AUDIT_STAGE)[keyof typeof AUDIT_STAGE];

/**
 * The sort key of a run's item. `runStartedAt` is the run's `startedAt` (ISO 8601, the same for every writer of the
 * run), so a function's history sorts by run, and within a run the PENDING before the decision. Run-level items
 * (partition `#run`) use their outcome as the stage (one RUN_OVERLAP, one LEASE_TAKEN_OVER per run).
 */
export function auditSortKey(runStartedAt: string, runId: string, stage: string): string {
  return `${runStartedAt}#${runId}#${stage}`;
}

/** The stage an outcome is recorded in. */
export function stageOf(outcome: Outcome): AuditStage {
  return outcome === 'PENDING' ? AUDIT_STAGE.pending : AUDIT_STAGE.decision;
}

/**
 * The sort key of the decision that completes a PENDING item (same run, stage `1-decision`); undefined for a PENDING
 * written before issue 9 (sort key `decidedAt#runId#PENDING`, whose run start is not known).
 */
export function decisionKeyOf(pending: Pick<AuditItem, 'sk'>): string | undefined {
  const suffix = `#${AUDIT_STAGE.pending}`;
  return pending.sk.endsWith(suffix) ? `${pending.sk.slice(0, -suffix.length)}#${AUDIT_STAGE.decision}` : undefined;
}

/** The run start encoded in a PENDING's sort key (undefined for a pre-issue-9 item). */
export function runStartOf(pending: Pick<AuditItem, 'sk' | 'runId'>): string | undefined {
  const suffix = `#${pending.runId}#${AUDIT_STAGE.pending}`;
  return pending.sk.endsWith(suffix) ? pending.sk.slice(0, -suffix.length) : undefined;
}

const DAY_SECONDS = 24 * 60 * 60;

/** The TTL (epoch seconds) of an item decided at `decidedAt` (ISO 8601) and kept for `days`. */
export function expiryOf(decidedAt: string, days: number): number {
  return Math.floor(Date.parse(decidedAt) / 1000) + days * DAY_SECONDS;
}

/** Outcomes that change (or attempted to change) a function: indexed in byChange. */
export const CHANGE_OUTCOMES: ReadonlySet<Outcome> = new Set(['PENDING', 'PROTECTED', 'FAILED', 'ROLLED_BACK']);

/**
 * True for an item a rollback may need for as long as the function keeps the change (issue 8 item 4): PENDING,
 * PROTECTED, ROLLED_BACK, and a FAILED with a before-image (written after the write-ahead by protect or rollback:
 * AWS may have applied the change). Such items get no `expiresAt`. A FAILED without images (record-failure: the
 * function's PENDING item, kept, says what may have changed) expires like any decision.
 */
export function keepsForever(item: Pick<AuditItem, 'outcome' | 'before' | 'nothingChanged'>): boolean {
  return (
    item.outcome === 'PENDING' ||
    item.outcome === 'PROTECTED' ||
    item.outcome === 'ROLLED_BACK' ||
    (item.outcome === 'FAILED' && item.before !== undefined && item.nothingChanged !== true)
  );
}

/**
 * A write-ahead PENDING item whose change has no final record: no later item of the same run and function carries a
 * before-image. Protect's final records all do; so do record-failure's FAILED after a PENDING (it copies the
 * PENDING's images) and a reconciled decision (issue 9); a FAILED without images does not (one written before issue
 * 9). The update may have been applied: the run lists the function as unfinished, rollback works from the PENDING
 * item (its planned after-image) (issue 8 item 5), and the next run reconciles it (lambdas/shared/reconcile.ts).
 */
export function unfinishedPending(item: AuditItem, items: readonly AuditItem[]): boolean {
  return (
    item.kind === 'decision' &&
    item.outcome === 'PENDING' &&
    !items.some(
      (other) =>
        other.kind === 'decision' &&
        other.functionName === item.functionName &&
        other.runId === item.runId &&
        other.outcome !== 'PENDING' &&
        other.sk > item.sk &&
        other.before !== undefined,
    )
  );
}

/** account and region from a Lambda ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]). */
export function arnParts(arn: string | null | undefined): { account: string | null; region: string | null } {
  const parts = typeof arn === 'string' ? arn.split(':') : [];
  if (parts.length < 6 || parts[0] !== 'arn') return { account: null, region: null };
  return { region: parts[3] || null, account: parts[4] || null };
}

/** The digest of a decision used to tell an unchanged repeat from a new decision. */
export interface DecisionDigest {
  outcome: string;
  reasons: string[];
  warnings: string[];
  /**
   * The MACs of our variables as the engine last wrote them (the after-image of the latest PROTECTED or refresh):
   * lets the funnel recognise a value the engine wrote (FunnelContext.engineWritten, issue 8 item 7). Carried
   * forward by `nextDigest` from one decision to the next.
   */
  ourValueMacs?: Record<string, string>;
  /**
   * The facts fingerprint the decision was made on (domain/repeats.ts `factsFingerprint`), and the sort key and time
   * of the full item that recorded it: a later identical decision on the same fingerprint is recorded compactly,
   * pointing at that item (issue 11). Absent on digests written by protect or before issue 11: never a repeat then.
   */
  fingerprint?: string;
  recordedAs?: string;
  /** The `expiresAt` of that full item (epoch seconds); absent: it is kept forever. */
  recordedUntil?: number;
  /**
   * When the expensive facts behind this decision were last read (ISO 8601): a candidate's metrics and control-plane
   * reads, a protected function's readiness. An unchanged repeat within FACTS_RECHECK_MS of it is not read again
   * (domain/repeats.ts `recheckDue`).
   */
  checkedAt?: string;
}

/** The digest to store for a new decision: the previous one's `ourValueMacs` kept unless the decision brings its own. */
export function nextDigest(previous: DecisionDigest | undefined, digest: DecisionDigest): DecisionDigest {
  if (digest.ourValueMacs !== undefined || previous?.ourValueMacs === undefined) return digest;
  return { ...digest, ourValueMacs: previous.ourValueMacs };
}

export function sameDecision(a: DecisionDigest | undefined, b: DecisionDigest): boolean {
  return (
    a !== undefined &&
    a.outcome === b.outcome &&
    a.reasons.join(',') === b.reasons.join(',') &&
    a.warnings.join(',') === b.warnings.join(',')
  );
}

/**
 * What the caller decided; `decidedAt` (ISO 8601) comes from the caller's clock, `runStartedAt` is the run's
 * `startedAt` (the sort key's first part, the same for every writer of the run).
 */
export type DecisionRecordInput = Pick<
  AuditItem,
  | 'functionName'
  | 'functionArn'
  | 'runId'
  | 'decidedAt'
  | 'mode'
  | 'reasons'
  | 'warnings'
  | 'checks'
  | 'before'
  | 'after'
  | 'detail'
  | 'owner'
  | 'reconciled'
  | 'nothingChanged'
  | 'undoes'
> & {
  runStartedAt: string;
  outcome: Outcome;
  /** The function's previous decision, when known (undefined: first decision, or unknown). */
  previous?: DecisionDigest;
  /**
   * True when later repeats may point at this item (domain/repeats.ts): it keeps the full retention even if it
   * repeats the previous decision.
   */
  referenced?: boolean;
};

export interface RecordSettings {
  engineVersion: string;
  configHash: string;
  retentionDays: number;
  repeatRetentionDays: number;
}

/** One audit item for one decision. */
export function decisionItem(input: DecisionRecordInput, settings: RecordSettings): AuditItem {
  const repeat =
    !CHANGE_OUTCOMES.has(input.outcome) &&
    sameDecision(input.previous, { outcome: input.outcome, reasons: input.reasons, warnings: input.warnings });
  const days = repeat && input.referenced !== true ? settings.repeatRetentionDays : settings.retentionDays;
  const forever = keepsForever(input);
  const { account, region } = arnParts(input.functionArn);
  const item: AuditItem = {
    functionName: input.functionName,
    sk: auditSortKey(input.runStartedAt, input.runId, stageOf(input.outcome)),
    kind: 'decision',
    functionArn: input.functionArn,
    account,
    region,
    runId: input.runId,
    decidedAt: input.decidedAt,
    mode: input.mode,
    outcome: input.outcome,
    reasons: input.reasons,
    warnings: input.warnings,
    checks: input.checks,
    engineVersion: settings.engineVersion,
    configHash: settings.configHash,
    repeat,
  };
  if (!forever) item.expiresAt = expiryOf(input.decidedAt, days);
  if (input.before !== undefined) item.before = input.before;
  if (input.after !== undefined) item.after = input.after;
  if (input.detail !== undefined) item.detail = input.detail;
  if (input.owner !== undefined) item.owner = input.owner;
  if (input.reconciled === true) item.reconciled = true;
  if (input.nothingChanged === true) item.nothingChanged = true;
  if (input.undoes !== undefined) item.undoes = input.undoes;
  if (CHANGE_OUTCOMES.has(input.outcome)) item.changeKey = 'CHANGE';
  const firstReason = input.reasons[0];
  if (input.outcome === 'SKIPPED' && firstReason !== undefined) item.primaryReason = firstReason;
  return item;
}

/** How a PENDING's planned change compares with the function as it is now (reconciliation, issue 9). */
export type PendingLanding = 'landed' | 'not-landed' | 'partial';

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((value, i) => value === b[i]);
}

/**
 * Whether the change a PENDING planned is on the function now, from images only (layers, variable names, keyed MACs
 * of our values, handler; never a value):
 * - landed: the planned layers in order, each of our variables with the planned MAC, the planned handler;
 * - not-landed: none of what the plan added (layers, variable names) and the handler as before;
 * - partial: anything else (part of it, or changed since): a person must look, rollback works from the records.
 */
export function pendingLanding(
  current: ConfigurationImage,
  planned: ConfigurationImage,
  before: ConfigurationImage | undefined,
): PendingLanding {
  const plannedMacs = Object.entries(planned.ourValueMacs ?? {});
  const landed =
    sameList(current.layers, planned.layers) &&
    plannedMacs.every(([name, mac]) => current.ourValueMacs?.[name] === mac) &&
    planned.variableNames.every((name) => current.variableNames.includes(name) || !isAdded(name, before)) &&
    current.handler === planned.handler;
  if (landed) return 'landed';
  const addedLayers = planned.layers.filter((layer) => !(before?.layers ?? []).includes(layer));
  const addedNames = planned.variableNames.filter((name) => isAdded(name, before));
  const untouched =
    addedLayers.every((layer) => !current.layers.includes(layer)) &&
    addedNames.every((name) => !current.variableNames.includes(name)) &&
    (before === undefined || planned.handler === before.handler || current.handler === before.handler);
  return untouched ? 'not-landed' : 'partial';
}

function isAdded(name: string, before: ConfigurationImage | undefined): boolean {
  return before === undefined || !before.variableNames.includes(name);
}
