/**
 * The one retry loop of the engine: table calls through an outage (recording.ts `withRetries`), Lambda's
 * ResourceConflictException (function-update.ts) and the Prisma Cloud Console (prisma-console.ts). Each caller says
 * how many attempts, which failures are worth another, and how long to wait before the next; the waits go through
 * the engine's one injectable clock (tests and the local run never wait for real).
 *
 * Not `p-retry` (ESM only, Node 22: docs/design.md) nor the SDK's retry strategy (it retries inside one
 * `send`; these loops retry a whole call, or an HTTP exchange that is not an SDK call).
 */
import { systemClock } from './adapters/rate-limiter';

export interface RetryOptions {
  /** Attempts in all (the first included); at least 1. */
  attempts: number;
  /** The wait after failed attempt `attempt` (1-based) before the next one, in ms. */
  delayMs: (attempt: number, error: unknown) => number;
  /** Whether this failure may be tried again. @default every failure */
  retryable?: (error: unknown) => boolean;
  /** Called for every failure that will be retried, before the wait. */
  onRetry?: (attempt: number, error: unknown) => void;
  /** @default the engine's clock (systemClock.sleep) */
  sleep?: (ms: number) => Promise<void>;
}

/**
 * Runs `call` (given its 1-based attempt number) until it resolves, fails with an error that is not retryable, or
 * uses up the attempts; then the last error is thrown as it was.
 */
export async function retry<T>(call: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const sleep = options.sleep ?? ((ms: number) => systemClock.sleep(ms));
  for (let attempt = 1; ; attempt++) {
    try {
      return await call(attempt);
    } catch (error) {
      if (attempt >= options.attempts || options.retryable?.(error) === false) throw error;
      options.onRetry?.(attempt, error);
      await sleep(options.delayMs(attempt, error));
    }
  }
}

/** `firstMs` after the first failure, doubling, at most `maxMs`. */
export function exponentialDelay(firstMs: number, maxMs: number): (attempt: number) => number {
  return (attempt) => Math.min(maxMs, firstMs * 2 ** (attempt - 1));
}

/** Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"): 0..base, 0..2 base, 0..4 base, ... */
export function fullJitter(baseMs: number, random: () => number = Math.random): (attempt: number) => number {
  return (attempt) => Math.floor(random() * baseMs * 2 ** (attempt - 1));
}
