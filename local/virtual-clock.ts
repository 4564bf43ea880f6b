/**
 * The local run's clock: virtual time, so an hour between two runs, a lease expiry or a back-off costs nothing.
 *
 * `now()` is the real time plus an offset. `sleep(ms)` does not wait: on the next turn of the event loop it moves the
 * clock to the sleeper's wake-up time (if the clock is not past it already) and resolves. Concurrent sleepers that
 * wake at the same time therefore move the clock once, and a rate limiter that reserves slots (GCRA) still
 * spaces its calls on this clock. `advance(ms)` moves it on (the next scheduled run).
 *
 * The engine has one injectable clock, `systemClock` in lambdas/shared/adapters/rate-limiter.ts (contract decision
 * 3). `install()` points its `now` and `sleep` at this clock and `uninstall()` restores them; the simulated account
 * takes this clock as its `clock` option. (When `setClock`/`resetClock` land there, they do the same to the same
 * object: this keeps working.)
 */
import { systemClock } from '../lambdas/shared/adapters/rate-limiter';

/** The interval between two scheduled runs, from an EventBridge expression: `rate(N unit)`; cron: one hour. */
export function scheduleIntervalMs(expression: string): number {
  const rate = /^rate\((\d+)\s+(minutes?|hours?|days?)\)$/.exec(expression.trim());
  if (rate === null) return 60 * 60 * 1000;
  const count = Number(rate[1]);
  const unit = rate[2] as string;
  const ms = unit.startsWith('minute') ? 60_000 : unit.startsWith('hour') ? 3_600_000 : 86_400_000;
  return count * ms;
}

/** The latest time a virtual clock of this process showed when it was uninstalled. */
let highWater = 0;

export class VirtualClock {
  private offset = 0;
  private saved: { now: typeof systemClock.now; sleep: typeof systemClock.sleep } | undefined;

  /**
   * @param start the clock's time when created @default the real time, or the latest time an earlier virtual clock
   *   of this process reached if that is later: time never goes back for state that outlives a session (the SDK
   *   clients' adaptive rate limiters, module-scoped in the handlers, remember when they last sent)
   */
  constructor(start?: number) {
    this.offset = (start ?? Math.max(Date.now(), highWater)) - Date.now();
  }

  now(): number {
    return Date.now() + this.offset;
  }

  /**
   * Resolves on the next turn of the event loop, with the clock moved to `now() + ms` (as read when called) unless it
   * is past that already: sleepers that start together and wake together move it once.
   */
  sleep(ms: number): Promise<void> {
    const target = this.now() + Math.max(0, ms);
    return new Promise((resolve) =>
      setImmediate(() => {
        const ahead = target - this.now();
        if (ahead > 0) this.offset += ahead;
        resolve();
      }),
    );
  }

  /** Moves the clock on by `ms`. */
  advance(ms: number): void {
    this.offset += Math.max(0, ms);
  }

  /** Makes the engine's `systemClock` read this clock, until `uninstall()`. */
  install(): this {
    if (this.saved !== undefined) return this;
    this.saved = { now: systemClock.now, sleep: systemClock.sleep };
    systemClock.now = () => this.now();
    systemClock.sleep = (ms: number) => this.sleep(ms);
    return this;
  }

  uninstall(): void {
    highWater = Math.max(highWater, this.now());
    if (this.saved === undefined) return;
    systemClock.now = this.saved.now;
    systemClock.sleep = this.saved.sleep;
    this.saved = undefined;
  }
}
