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
 * The control-plane bucket of the engine's Lambdas is backed by one budget shared by every invocation of the run
 * (control-plane-budget.ts, issue 11): a schedule in the state table, so the Distributed Map's workers, the protect
 * invocations and take-inventory together never exceed `rates.controlPlanePerSecond`, and one caller alone gets all
 * of it. Without a table (the CLI's readers), or when the table cannot be reached, a bucket paces itself at its
 * local share `controlPlanePerSecond / workers`, without burst.
 *
 * GetFunction stays per invocation: its own quota is large (100/s) and the engine uses a third of it at most, so a
 * DynamoDB write per few calls would buy nothing. Each of the `workers` invocations at once gets a whole number
 * `max(1, floor(share / workers))` of calls a second, no burst, starting empty (its first call waits one interval,
 * so a worker's next invocation cannot double up with the end of its previous one): in any one-second window the
 * sum is at most `max(share, workers) <= 100` (`rates.maxConcurrency` is at most 100).
 * SDK retries inside one `send` are not counted here (the clients' adaptive retry mode slows them down itself).
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { Config } from '../domain/config';
import { DynamoSlotStore, SharedBudget, type SlotStore } from './control-plane-budget';

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
  /**
   * The first call waits one interval instead of going at once (no burst even at the start: invocations that
   * follow one another cannot double up at the boundary). @default false
   */
  startEmpty?: boolean;
  /** Takes every call's slot from this budget instead (control-plane-budget.ts); `ratePerSecond` is its limit. */
  shared?: SharedSlots;
}

/** A budget shared beyond this bucket (control-plane-budget.ts `SharedBudget`). */
export interface SharedSlots {
  /** Waits until the caller may send one call. */
  take(): Promise<void>;
}

export class TokenBucket {
  readonly ratePerSecond: number;
  readonly burst: number;
  private readonly intervalMs: number;
  private readonly clock: Clock;
  /** Theoretical arrival time of the next call (GCRA). */
  private tat = Number.NEGATIVE_INFINITY;
  private takenCount = 0;
  private readonly startEmpty: boolean;
  /** The budget this bucket takes its slots from, if any. */
  readonly shared: SharedSlots | undefined;

  constructor(props: TokenBucketProps) {
    if (!(props.ratePerSecond > 0) || !Number.isFinite(props.ratePerSecond)) {
      throw new RangeError(`ratePerSecond must be a positive number, got ${props.ratePerSecond}`);
    }
    this.ratePerSecond = props.ratePerSecond;
    this.burst = Math.max(1, Math.floor(props.burst ?? DEFAULT_BURST));
    this.intervalMs = 1000 / props.ratePerSecond;
    this.clock = props.clock ?? systemClock;
    this.startEmpty = props.startEmpty ?? false;
    this.shared = props.shared;
  }

  /** Calls let through so far. */
  get taken(): number {
    return this.takenCount;
  }

  /** Waits until the next call may go. The slot is reserved before the wait, so concurrent callers queue up. */
  async take(): Promise<void> {
    if (this.shared !== undefined) {
      this.takenCount += 1;
      return this.shared.take();
    }
    const now = this.clock.now();
    if (this.startEmpty && this.tat === Number.NEGATIVE_INFINITY) this.tat = now + this.intervalMs;
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

/** Where the run's shared control-plane budget lives: the state table, or a store of the caller's (tests). */
export type SharedBudgetTarget = { stateTableName: string } | { store: SlotStore };

/** GetFunction calls a second each of `workers` invocations at once may make (see the module comment). */
export function getFunctionPerWorker(rates: Config['rates'], workers: number): number {
  const share = (GET_FUNCTION_QUOTA_PER_SECOND * rates.controlPlanePerSecond) / CONTROL_PLANE_QUOTA_PER_SECOND;
  return Math.max(1, Math.floor(share / Math.max(1, workers)));
}

/**
 * The limiters of one invocation.
 * @param workers how many invocations run at once: `rates.maxConcurrency` for map workers, 1 for take-inventory
 *   (the fallback's and GetFunction's local share)
 * @param shared the run's budget (the Lambdas pass their state table); absent: the local share only
 */
export function controlPlaneLimiters(
  rates: Config['rates'],
  workers: number,
  clock: Clock = systemClock,
  shared?: SharedBudgetTarget,
) {
  const perWorker = Math.max(1, workers);
  const getFunctionRate = getFunctionPerWorker(rates, perWorker);
  const getFunction = new TokenBucket({
    ratePerSecond: 1000 / Math.ceil(1000 / getFunctionRate),
    burst: 1,
    startEmpty: true,
    clock,
  });
  if (shared === undefined) {
    return {
      // No burst on the shared 15 requests/s: with every worker at its exact share the account total holds.
      controlPlane: new TokenBucket({ ratePerSecond: rates.controlPlanePerSecond / perWorker, burst: 1, clock }),
      getFunction,
    } satisfies ControlPlaneLimiters;
  }
  const store = 'store' in shared ? shared.store : new DynamoSlotStore(shared.stateTableName);
  const budget = new SharedBudget({ limitPerSecond: rates.controlPlanePerSecond, workers: perWorker, store, clock });
  return {
    controlPlane: new TokenBucket({ ratePerSecond: rates.controlPlanePerSecond, burst: 1, clock, shared: budget }),
    getFunction,
  } satisfies ControlPlaneLimiters;
}
