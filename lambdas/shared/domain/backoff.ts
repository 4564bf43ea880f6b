/**
 * Back-off after a deterministic rejection of our update (issue 8, item 16). PURE.
 *
 * A function whose update AWS always rejects (code signing Enforce, an invalid variable name, variables over the
 * real quota) would otherwise take one of the run's `maxProtectionsPerRun` slots every hour and starve the rest of
 * the estate. After such a rejection the function is not tried again before `nextAttemptAt`: 1 h after the first
 * rejection, then 2 h, 4 h, ... capped at 7 days. A change to the function (its RevisionId or CodeSha256 differs from
 * the ones the rejection was recorded against: somebody deployed) ends the back-off at once, since the cause may be
 * gone. So does a new engine (its version or configuration hash differs: an operator fixed the engine's side, e.g.
 * a permission behind an AccessDeniedException). Our own rejected update changes none of these, so it never resets
 * the back-off.
 */

import { isRecord } from './types';

/** The state table's record of the last rejection (item `REJECT#<functionName>`). */
export interface RejectionRecord {
  /** AWS's error name and scrubbed message. Never a variable value. */
  reason: string;
  /** Consecutive rejections since the last change of the function. */
  attempts: number;
  /** ISO 8601: the earliest time of the next attempt. */
  nextAttemptAt: string;
  /** The function's RevisionId and CodeSha256 when it was rejected. */
  revisionId: string | null;
  codeSha256: string | null;
  rejectedAt: string;
  /** The engine that was rejected (`engineVersion/configHash`); absent in records written before it was kept. */
  engine?: string;
}

export interface FunctionRevision {
  revisionId: string | null;
  codeSha256: string | null;
  /** The engine deciding now (`engineVersion/configHash`). */
  engine?: string;
}

export const FIRST_BACKOFF_MS = 60 * 60 * 1000;
export const MAX_BACKOFF_MS = 7 * 24 * 60 * 60 * 1000;

/** AWS errors of UpdateFunctionConfiguration that the same request will meet again: backing off is right. */
export const DETERMINISTIC_REJECTIONS: ReadonlySet<string> = new Set([
  // Our role may not send this request (a customer's cross-account layer no longer shared with the account, the
  // lambda:Layer condition, a key policy): the same request is refused the same way next hour.
  'AccessDeniedException',
  'InvalidParameterValueException',
  'CodeSigningConfigNotFoundException',
  'CodeVerificationFailedException',
  'InvalidCodeSignatureException',
  'KMSAccessDeniedException',
  'KMSDisabledException',
  'KMSInvalidStateException',
  'KMSNotFoundException',
]);

/** The delay after the nth consecutive rejection (1-based): 1 h, 2 h, 4 h, ... at most 7 days. */
export function backoffDelayMs(attempts: number): number {
  const exponent = Math.max(0, Math.min(attempts - 1, 30));
  return Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** exponent);
}

function changedSince(record: RejectionRecord, current: FunctionRevision): boolean {
  const engineChanged = record.engine !== undefined && current.engine !== undefined && record.engine !== current.engine;
  return record.revisionId !== current.revisionId || record.codeSha256 !== current.codeSha256 || engineChanged;
}

/**
 * Whether the back-off holds now.
 * @returns active: the function must not be tried (SKIPPED PREVIOUSLY_REJECTED); inactive: try it (a record that is
 *   inactive because the function changed must be forgotten, so the next rejection starts at 1 h again)
 */
export function rejectionBackoff(
  record: RejectionRecord | undefined,
  now: number,
  current: FunctionRevision,
): { active: false; reset: boolean } | { active: true; reason: string; nextAttemptAt: string } {
  if (record === undefined) return { active: false, reset: false };
  if (changedSince(record, current)) return { active: false, reset: true };
  const next = Date.parse(record.nextAttemptAt);
  if (Number.isNaN(next) || now >= next) return { active: false, reset: false };
  return { active: true, reason: record.reason, nextAttemptAt: record.nextAttemptAt };
}

/** The record after a new rejection at `now`. */
export function nextRejection(
  previous: RejectionRecord | undefined,
  now: number,
  reason: string,
  current: FunctionRevision,
): RejectionRecord {
  const attempts = previous !== undefined && !changedSince(previous, current) ? previous.attempts + 1 : 1;
  return {
    reason,
    attempts,
    nextAttemptAt: new Date(now + backoffDelayMs(attempts)).toISOString(),
    revisionId: current.revisionId,
    codeSha256: current.codeSha256,
    rejectedAt: new Date(now).toISOString(),
    ...(current.engine !== undefined ? { engine: current.engine } : {}),
  };
}

/**
 * Parses a stored `REJECT#` item; anything malformed is no record (an unreadable back-off never blocks a function:
 * the worst case is one more rejected attempt, which changes nothing).
 */
export function parseRejection(item: unknown): RejectionRecord | undefined {
  if (!isRecord(item)) return undefined;
  const { reason, attempts, nextAttemptAt, revisionId, codeSha256, rejectedAt, engine } = item;
  if (typeof reason !== 'string' || typeof nextAttemptAt !== 'string' || Number.isNaN(Date.parse(nextAttemptAt))) {
    return undefined;
  }
  if (typeof attempts !== 'number' || !Number.isInteger(attempts) || attempts < 1) return undefined;
  const optional = (v: unknown): string | null => (typeof v === 'string' ? v : null);
  return {
    reason,
    attempts,
    nextAttemptAt,
    revisionId: optional(revisionId),
    codeSha256: optional(codeSha256),
    rejectedAt: optional(rejectedAt) ?? '',
    ...(typeof engine === 'string' ? { engine } : {}),
  };
}
