/**
 * Back-off after a deterministic rejection (issue 8 item 16). PURE: the caller passes the clock.
 *
 * When AWS rejects our update for a reason that will not go away by itself (code signing `Enforce`, an invalid
 * variable name, a variables map over the quota, ...), trying again every hour takes one of the run's
 * `maxProtectionsPerRun` slots each time and starves the rest of the estate. The state table keeps one
 * `REJECT#<functionName>` item per rejected function; while its back-off is active the funnel skips the function
 * with PREVIOUSLY_REJECTED (gate 22) and no slot is claimed.
 *
 * Delays double from 1 h (1 h, 2 h, 4 h, ...) up to 7 days. The back-off ends at once when the function's RevisionId
 * or CodeSha256 changed since the rejection: someone deployed, and the next attempt may succeed. (Our own rejected
 * update does not change RevisionId; a deploy by the team does.)
 */
import { isRecord } from './types';

/** The state table key of a function's rejection record. */
export const REJECT_PREFIX = 'REJECT#';
export const rejectionKey = (functionName: string): string => `${REJECT_PREFIX}${functionName}`;

export const FIRST_DELAY_MS = 60 * 60 * 1000;
export const MAX_DELAY_MS = 7 * 24 * 60 * 60 * 1000;

/** The state table item `REJECT#<functionName>`. */
export interface RejectionRecord {
  pk: string;
  /** AWS's reason, scrubbed (never a variable value). */
  reason: string;
  /** Rejections in a row, 1 for the first. */
  attempts: number;
  /** ISO time before which the function is not tried again. */
  nextAttemptAt: string;
  /** The function's RevisionId when it was rejected (null when unknown). */
  revisionId: string | null;
  /** The function's CodeSha256 when it was rejected (null when unknown). */
  codeSha256: string | null;
}

export interface FunctionIdentity {
  revisionId?: string | null;
  codeSha256?: string | null;
}

export interface BackoffState {
  active: boolean;
  nextAttemptAt: string | null;
}

/** The delay after the `attempts`-th rejection in a row: 1 h, 2 h, 4 h, ... capped at 7 days. */
export function backoffDelayMs(attempts: number): number {
  const n = Number.isFinite(attempts) && attempts >= 1 ? Math.floor(attempts) : 1;
  if (n > 40) return MAX_DELAY_MS;
  return Math.min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** (n - 1));
}

/** Parses a stored item; anything malformed is no record (an unreadable back-off never blocks a function). */
export function parseRejection(item: unknown): RejectionRecord | undefined {
  if (!isRecord(item)) return undefined;
  const { pk, reason, attempts, nextAttemptAt, revisionId, codeSha256 } = item;
  if (typeof pk !== 'string' || typeof reason !== 'string' || typeof nextAttemptAt !== 'string') return undefined;
  if (typeof attempts !== 'number' || !Number.isFinite(attempts) || Number.isNaN(Date.parse(nextAttemptAt))) {
    return undefined;
  }
  const optional = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return { pk, reason, attempts, nextAttemptAt, revisionId: optional(revisionId), codeSha256: optional(codeSha256) };
}

const changed = (then: string | null, now: string | null | undefined): boolean =>
  then !== null && now !== undefined && now !== null && then !== now;

/**
 * Whether the back-off of a rejected function is still active.
 * @param record the function's rejection record, if any
 * @param now epoch milliseconds
 * @param current the function's RevisionId and CodeSha256 as read now
 */
export function rejectionBackoff(
  record: RejectionRecord | undefined,
  now: number,
  current: FunctionIdentity,
): BackoffState {
  if (record === undefined) return { active: false, nextAttemptAt: null };
  const next = Date.parse(record.nextAttemptAt);
  if (Number.isNaN(next)) return { active: false, nextAttemptAt: null };
  if (changed(record.revisionId, current.revisionId) || changed(record.codeSha256, current.codeSha256)) {
    return { active: false, nextAttemptAt: null };
  }
  return { active: now < next, nextAttemptAt: record.nextAttemptAt };
}

/**
 * The record to store after a (further) deterministic rejection.
 * @param previous the function's record before this rejection (its attempts continue unless the function changed)
 */
export function nextRejection(
  functionName: string,
  previous: RejectionRecord | undefined,
  now: number,
  rejection: { reason: string } & FunctionIdentity,
): RejectionRecord {
  const continues =
    previous !== undefined &&
    !changed(previous.revisionId, rejection.revisionId) &&
    !changed(previous.codeSha256, rejection.codeSha256);
  const attempts = continues ? previous.attempts + 1 : 1;
  return {
    pk: rejectionKey(functionName),
    reason: rejection.reason,
    attempts,
    nextAttemptAt: new Date(now + backoffDelayMs(attempts)).toISOString(),
    revisionId: rejection.revisionId ?? null,
    codeSha256: rejection.codeSha256 ?? null,
  };
}

/** AWS errors that reject an update deterministically (trying again without a change fails the same way). */
export const DETERMINISTIC_REJECTIONS: ReadonlySet<string> = new Set([
  'InvalidParameterValueException',
  'CodeSigningConfigNotFoundException',
  'CodeVerificationFailedException',
  'InvalidCodeSignatureException',
]);
