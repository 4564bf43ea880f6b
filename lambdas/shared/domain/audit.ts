/**
 * Building audit items: pure. The adapters only write what this returns.
 */
import type { AuditItem, Outcome } from './types';

const DAY_SECONDS = 24 * 60 * 60;

/** The TTL (epoch seconds) of an item decided at `decidedAt` (ISO 8601) and kept for `days`. */
export function expiryOf(decidedAt: string, days: number): number {
  return Math.floor(Date.parse(decidedAt) / 1000) + days * DAY_SECONDS;
}

/** Outcomes that change (or attempted to change) a function: indexed in byChange and kept for audit.retentionDays. */
export const CHANGE_OUTCOMES: ReadonlySet<Outcome> = new Set(['PENDING', 'PROTECTED', 'FAILED', 'ROLLED_BACK']);

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
    expiresAt: expiryOf(input.decidedAt, days),
    repeat,
  };
  if (input.before !== undefined) item.before = input.before;
  if (input.after !== undefined) item.after = input.after;
  if (input.detail !== undefined) item.detail = input.detail;
  if (input.owner !== undefined) item.owner = input.owner;
  if (CHANGE_OUTCOMES.has(input.outcome)) item.changeKey = 'CHANGE';
  const firstReason = input.reasons[0];
  if (input.outcome === 'SKIPPED' && firstReason !== undefined) item.primaryReason = firstReason;
  return item;
}
