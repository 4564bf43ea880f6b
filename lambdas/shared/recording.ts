/**
 * What the fact-gathering handlers share: audit settings from the runtime, metric emission with one dimension per
 * data point, and one-line error summaries that never carry a variable value.
 */
import { MetricUnit } from '@aws-lambda-powertools/metrics';
import { configHash } from './domain/config';
import type { RecordSettings } from './domain/audit';
import { exponentialDelay, retry } from './retry';
import { logger, metrics } from './observability';
import type { Runtime } from './runtime';

export function recordSettings(rt: Runtime): RecordSettings {
  return {
    engineVersion: rt.engineVersion,
    configHash: configHash(rt.config),
    retentionDays: rt.config.audit.retentionDays,
    repeatRetentionDays: rt.config.audit.repeatRetentionDays,
  };
}

/**
 * Emits `name` once per dimension value, each with its own count (Powertools singleMetric: flushed at once, so
 * data points with different dimension values never share one EMF document).
 */
export function emitCounts(name: string, dimension: string, counts: ReadonlyMap<string, number>): void {
  for (const [value, count] of counts) {
    const single = metrics.singleMetric();
    single.addDimension(dimension, value);
    single.addMetric(name, MetricUnit.Count, count);
  }
}

/** Emits one metric without extra dimensions. */
export function emitMetric(
  name: string,
  value: number,
  unit: (typeof MetricUnit)[keyof typeof MetricUnit] = MetricUnit.Count,
): void {
  metrics.singleMetric().addMetric(name, unit, value);
}

export function increment(counts: Map<string, number>, key: string, by = 1): void {
  counts.set(key, (counts.get(key) ?? 0) + by);
}

const MAX_DETAIL_CHARS = 200;

/**
 * One line about an error: its name and a trimmed message. Quoted text ('...', "...", `...`) is cut out, because
 * AWS validation messages quote the offending input back ("Value '...' at 'environment.variables' failed ..."),
 * which could be a variable value.
 */
/** Cuts out quoted text ('...', "...", `...`): AWS validation messages quote the offending input back. */
export function cutQuoted(message: string): string {
  return message.replace(/'[^']*'|"[^"]*"|`[^`]*`/g, '[…]');
}

export function scrubMessage(message: string, max = MAX_DETAIL_CHARS): string {
  const scrubbed = cutQuoted(message)
    .replace(/[\r\n\t]+/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return scrubbed.length <= max ? scrubbed : `${scrubbed.slice(0, max - 1)}…`;
}

export function errorSummary(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${scrubMessage(error.message)}`;
  return 'Error: (not an Error object)';
}

const MAX_NAME_CHARS = 100;

/** "ErrorName: message" from a Step Functions error, with nothing that could be a variable value. */
export function failureDetail(error: { Error?: string; Cause?: string } | undefined): string {
  const name = scrubMessage(
    typeof error?.Error === 'string' && error.Error.length > 0 ? error.Error : 'Error',
    MAX_NAME_CHARS,
  );
  const cause = typeof error?.Cause === 'string' ? error.Cause : '';
  let message = cause;
  try {
    const parsed: unknown = JSON.parse(cause);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const record = parsed as Record<string, unknown>;
      const type = typeof record['errorType'] === 'string' ? record['errorType'] : undefined;
      const text = typeof record['errorMessage'] === 'string' ? record['errorMessage'] : '';
      message = type !== undefined && type !== name ? `${type}: ${text}` : text;
    }
  } catch {
    // not JSON (a States.* error cause): the text itself, scrubbed below
  }
  const trimmed = scrubMessage(message);
  return trimmed.length > 0 ? `${name}: ${trimmed}` : name;
}

/**
 * Table calls that must survive a short outage are retried this many times in all, waiting 1, 2, 4, 8 then 16 s
 * between attempts on the injectable clock: a DynamoDB outage of up to half a minute loses no summary, digest or
 * notice and keeps no lease (issue 9). Longer outages: each caller says what it leaves for the next run.
 */
export const TABLE_ATTEMPTS = 6;

export interface RetryPolicy {
  attempts: number;
  firstDelayMs: number;
  maxDelayMs: number;
}

/** TABLE_ATTEMPTS attempts, 1 s doubling (31 s of waiting in all). */
export const TABLE_RETRY: RetryPolicy = { attempts: TABLE_ATTEMPTS, firstDelayMs: 1000, maxDelayMs: 16_000 };

/** Runs `call` until it succeeds or `policy.attempts` are used, with exponential waits; the last error is thrown. */
export async function withRetries<T>(
  what: string,
  call: () => Promise<T>,
  policy: RetryPolicy = TABLE_RETRY,
): Promise<T> {
  return retry(() => call(), {
    attempts: policy.attempts,
    delayMs: exponentialDelay(policy.firstDelayMs, policy.maxDelayMs),
    onRetry: (attempt, error) => logger.warn(`${what} failed; retrying`, { attempt, error: errorSummary(error) }),
  });
}
