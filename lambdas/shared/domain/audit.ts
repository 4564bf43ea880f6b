/**
 * Building audit items: pure. The adapters only write what this returns.
 */
import type { AuditItem, Outcome } from './types';

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
export function keepsForever(item: Pick<AuditItem, 'outcome' | 'before'>): boolean {
  return (
    item.outcome === 'PENDING' ||
    item.outcome === 'PROTECTED' ||
    item.outcome === 'ROLLED_BACK' ||
    (item.outcome === 'FAILED' && item.before !== undefined)
  );
}

/**
 * A write-ahead PENDING item whose protect invocation wrote no final record of its own: no later item of the same
 * run and function carries a before-image (protect's final records all do; record-failure's FAILED does not). The
 * update may have been applied: the run lists the function as unfinished and rollback works from the PENDING item
 * (its planned after-image) (issue 8 item 5).
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

/** What the caller decided; `decidedAt` (ISO 8601) comes from the caller's clock. */
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
> & {
  outcome: Outcome;
  /** The function's previous decision, when known (undefined: first decision, or unknown). */
  previous?: DecisionDigest;
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
  const days = repeat ? settings.repeatRetentionDays : settings.retentionDays;
  const forever = keepsForever(input);
  const { account, region } = arnParts(input.functionArn);
  const item: AuditItem = {
    functionName: input.functionName,
    sk: `${input.decidedAt}#${input.runId}#${input.outcome}`,
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
  if (CHANGE_OUTCOMES.has(input.outcome)) item.changeKey = 'CHANGE';
  const firstReason = input.reasons[0];
  if (input.outcome === 'SKIPPED' && firstReason !== undefined) item.primaryReason = firstReason;
  return item;
}
