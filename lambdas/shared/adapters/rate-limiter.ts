/**
 * Client-side pacing of the Lambda control plane, so an hourly run never eats the customer's deployment budget.
 *
 * Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html, "Lambda API requests"):
 * GetFunction has its own 100 requests/s; "the remainder of control plane API requests (excludes invocation,
 * GetFunction, and GetPolicy requests)" share 15 requests/s per account and Region. So every ListFunctions,
 * GetFunctionConfiguration, UpdateFunctionConfiguration and ListProvisionedConcurrencyConfigs call takes a token
 * from the control-plane bucket, and GetFunction from its own bucket, which gets the same share of its larger quota.
 *
 * A token bucket in its "virtual scheduling" form (GCRA): each call reserves the next free slot synchronously, then
 * waits until it. Concurrent callers in one invocation therefore never exceed the rate, and the wait never depends
 * on the clock moving during the sleep (tests inject a clock and a sleep that returns at once).
 *
 * One bucket per invocation: a Distributed Map runs `rates.maxConcurrency` workers at once, each gets
 * `controlPlanePerSecond / maxConcurrency`; take-inventory is a single sequential worker and gets the whole share.
 * SDK retries inside one `send` are not counted here (the clients' adaptive retry mode slows them down itself).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Config } from '../domain/config';

/** Lambda's account-wide control-plane quota (requests/s) that `rates.controlPlanePerSecond` is a share of. */
export const CONTROL_PLANE_QUOTA_PER_SECOND = 15;
/** Lambda's GetFunction quota (requests/s), separate from the control-plane quota. */
export const GET_FUNCTION_QUOTA_PER_SECOND = 100;
/** Calls a bucket lets through back to back before pacing starts. */
export const DEFAULT_BURST = 2;

export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
  sleep(ms: number): Promise<void>;
}

/** Wall-clock time and real waiting. */
const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms: number) => delay(ms),
};

let current: Clock = realClock;

/**
 * The one clock of the engine: every handler and the rate limiter read time and wait through this object, never
 * through Date.now() or setTimeout. It delegates to the clock set by `setClock` (the real one by default), so the
 * local runner and tests move time without waiting (a lease or a back-off expires at once); tests may also replace
 * its methods with jest.spyOn.
 */
export const systemClock: Clock = {
  now: () => current.now(),
  sleep: (ms: number) => current.sleep(ms),
};

/** Makes `systemClock` read and wait through `clock` (the local runner's virtual clock, a test's clock). */
export function setClock(clock: Clock): void {
  // systemClock delegating to itself would recurse forever: setting it means "the real clock".
  current = clock === systemClock ? realClock : clock;
}

/** Back to wall-clock time and real waiting. */
export function resetClock(): void {
  current = realClock;
}

export interface TokenBucketProps {
  /** Sustained rate, requests per second (> 0). */
  ratePerSecond: number;
  /** Calls allowed back to back. @default 2 */
  burst?: number;
  /** @default systemClock */
  clock?: Clock;
}

export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  private readonly intervalMs: number;
  private readonly clock: Clock;
  /** Theoretical arrival time of the next call (GCRA). */
  private tat = Number.NEGATIVE_INFINITY;
  private takenCount = 0;

  constructor(props: TokenBucketProps) {
    if (!(props.ratePerSecond > 0) || !Number.isFinite(props.ratePerSecond)) {
      throw new RangeError(`ratePerSecond must be a positive number, got ${props.ratePerSecond}`);
    }
    this.ratePerSecond = props.ratePerSecond;
    this.burst = Math.max(1, Math.floor(props.burst ?? DEFAULT_BURST));
    this.intervalMs = 1000 / props.ratePerSecond;
    this.clock = props.clock ?? systemClock;
  }

  /** Calls let through so far. */
  get taken(): number {
    return this.takenCount;
  }

  /** Waits until the next call may go. The slot is reserved before the wait, so concurrent callers queue up. */
  async take(): Promise<void> {
    const now = this.clock.now();
    const tat = Math.max(this.tat, now);
    const allowedAt = tat - (this.burst - 1) * this.intervalMs;
    this.tat = tat + this.intervalMs;
    this.takenCount += 1;
    const wait = allowedAt - now;
    if (wait > 0) await this.clock.sleep(Math.ceil(wait));
  }

  /** Runs one call after taking a token. */
  async run<T>(call: () => Promise<T>): Promise<T> {
    await this.take();
    return call();
  }
}

/** The two buckets every gathering step uses. */
export interface ControlPlaneLimiters {
  /** ListFunctions, GetFunctionConfiguration, UpdateFunctionConfiguration, ListProvisionedConcurrencyConfigs. */
  controlPlane: TokenBucket;
  /** GetFunction (its own, larger quota). */
  getFunction: TokenBucket;
}

/**
 * The per-invocation limiters.
 * @param workers how many invocations run at once: `rates.maxConcurrency` for map workers, 1 for take-inventory
 */
export function controlPlaneLimiters(rates: Config['rates'], workers: number, clock: Clock = systemClock) {
  const share = rates.controlPlanePerSecond / Math.max(1, workers);
  const getFunctionShare =
    (GET_FUNCTION_QUOTA_PER_SECOND * rates.controlPlanePerSecond) /
    CONTROL_PLANE_QUOTA_PER_SECOND /
    Math.max(1, workers);
  return {
    // No burst on the shared 15 requests/s: with every worker at its exact share the account total holds.
    controlPlane: new TokenBucket({ ratePerSecond: share, burst: 1, clock }),
    getFunction: new TokenBucket({ ratePerSecond: getFunctionShare, clock }),
  } satisfies ControlPlaneLimiters;
}
