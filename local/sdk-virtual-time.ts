/**
 * The SDK clients' retry waits on the local run's virtual clock (local/virtual-clock.ts).
 *
 * The SDK's retry strategy (standard or adaptive, in `@smithy/core/retry`, which every client of this project loads
 * in a single copy) keeps deciding everything: which errors are retried, how many attempts, the retry capacity, the
 * back-off it draws (base 50 ms, 1 s for throttling, doubling, full jitter, at most 20 s) and the adaptive mode's
 * client-side sending rate. Only the waiting changes: while installed, a back-off moves the virtual clock by the
 * delay drawn and the retry goes at once, and the adaptive rate limiter reads and sleeps on the virtual clock. So a
 * throttling storm costs virtual seconds, not real ones, and an outage of 25 s on the run's clock can be outlived by
 * back-off as in AWS.
 *
 * How: `refreshRetryTokenForRetry` of StandardRetryStrategy (which AdaptiveRetryStrategy delegates to) wraps the
 * instance's back-off strategy once, and `DefaultRateLimiter`'s timer and time source are replaced. `uninstall()`
 * restores them; a wrapped back-off strategy passes through when no clock is installed.
 */
import { DefaultRateLimiter, StandardRetryStrategy } from '@smithy/core/retry';

export interface SleepingClock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

interface BackoffStrategy {
  computeNextBackoffDelay(attempt: number): number;
  setDelayBase(delay: number): void;
  virtual?: true;
}

type Refresh = (this: { retryBackoffStrategy: BackoffStrategy }, ...args: unknown[]) => unknown;
type TimeoutFn = (fn: () => void, delay: number) => unknown;

let active: SleepingClock | undefined;
let saved:
  | {
      refresh: Refresh;
      timeoutFn: TimeoutFn;
      currentTime: () => number;
    }
  | undefined;

const strategyProto = StandardRetryStrategy.prototype as unknown as { refreshRetryTokenForRetry: Refresh };
const limiterClass = DefaultRateLimiter as unknown as { setTimeoutFn: TimeoutFn };
const limiterProto = DefaultRateLimiter.prototype as unknown as { getCurrentTimeInSeconds: () => number };

function virtualBackoff(inner: BackoffStrategy): BackoffStrategy {
  return {
    virtual: true,
    setDelayBase: (delay) => inner.setDelayBase(delay),
    computeNextBackoffDelay: (attempt) => {
      const delay = inner.computeNextBackoffDelay(attempt);
      if (active === undefined) return delay;
      void active.sleep(delay);
      return 0;
    },
  };
}

/** Makes the SDK's retry waits virtual on `clock` until `uninstallSdkVirtualTime()`. One clock at a time. */
export function installSdkVirtualTime(clock: SleepingClock): void {
  if (saved !== undefined) throw new Error('the SDK already waits on a virtual clock; uninstall it first');
  active = clock;
  saved = {
    refresh: strategyProto.refreshRetryTokenForRetry,
    timeoutFn: limiterClass.setTimeoutFn,
    currentTime: limiterProto.getCurrentTimeInSeconds,
  };
  const refresh = saved.refresh;
  strategyProto.refreshRetryTokenForRetry = function refreshRetryTokenForRetry(...args: unknown[]) {
    if (this.retryBackoffStrategy.virtual !== true)
      this.retryBackoffStrategy = virtualBackoff(this.retryBackoffStrategy);
    return refresh.apply(this, args);
  };
  limiterClass.setTimeoutFn = (fn, delay) => {
    void clock.sleep(delay).then(fn);
  };
  limiterProto.getCurrentTimeInSeconds = () => clock.now() / 1000;
}

/** Restores the SDK's real waits. Idempotent. */
export function uninstallSdkVirtualTime(): void {
  if (saved === undefined) return;
  strategyProto.refreshRetryTokenForRetry = saved.refresh;
  limiterClass.setTimeoutFn = saved.timeoutFn;
  limiterProto.getCurrentTimeInSeconds = saved.currentTime;
  saved = undefined;
  active = undefined;
}
