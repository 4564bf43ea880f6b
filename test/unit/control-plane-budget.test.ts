/**
 * Issue 11: one control-plane budget for the whole run. The shared schedule (SharedBudget) on virtual time, with a
 * store that keeps the schedule as the state table does (test/handlers/control-plane-budget-dynamo.test.ts runs the
 * real conditional updates against dynalite).
 */
import {
  BUDGET_GUARD_MS,
  MAX_SLOTS_PER_RESERVATION,
  SharedBudget,
  slotSpacingMs,
  type SlotReservation,
  type SlotStore,
} from '../../lambdas/shared/adapters/control-plane-budget';
import { controlPlaneLimiters, type Clock } from '../../lambdas/shared/adapters/rate-limiter';

/**
 * A discrete-event clock: sleepers wake in time order, each once everything else has settled, and the clock is
 * then at its wake-up time (plus `lateMs(n)`, a late timer, if given).
 */
class EventClock implements Clock {
  private t = 1_764_633_600_000;
  private seq = 0;
  private readonly sleepers: Array<{ at: number; seq: number; resolve: () => void }> = [];

  constructor(private readonly lateMs: (n: number) => number = () => 0) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.sleepers.push({ at: this.t + Math.max(0, ms), seq: this.seq++, resolve }));
  }

  /** Runs `work` to its end, moving time only when nothing else can run. */
  async run<T>(work: Promise<T>, busy: () => boolean = () => false): Promise<T> {
    let done = false;
    const result = work.finally(() => {
      done = true;
    });
    let wakes = 0;
    while (!done) {
      await new Promise((resolve) => setImmediate(resolve));
      if (done || busy() || this.sleepers.length === 0) continue;
      this.sleepers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const next = this.sleepers.shift() as { at: number; resolve: () => void };
      this.t = Math.max(this.t, next.at + this.lateMs(wakes++));
      next.resolve();
    }
    return result;
  }
}

/** The schedule as the state table keeps it (ADD when busy, SET when idle); counts writes. */
class MemoryStore implements SlotStore {
  tat = Number.NEGATIVE_INFINITY;
  writes = 0;
  /** Slots asked for, per reservation. */
  readonly counts: number[] = [];
  down = false;

  async reserve(request: SlotReservation): Promise<number> {
    await Promise.resolve();
    if (this.down) throw Object.assign(new Error('Service unavailable'), { name: 'ServiceUnavailable' });
    this.writes += 1;
    this.counts.push(request.count);
    const span = request.count * request.spacingMs;
    const now = Math.ceil(request.nowMs);
    const first = this.tat >= now ? this.tat : now;
    this.tat = first + span;
    return first;
  }
}

/** The most calls in any one-second window (t - 1000, t], as the simulated account measures it. */
function peakPerSecond(times: readonly number[]): number {
  const sorted = [...times].sort((a, b) => a - b);
  let peak = 0;
  let start = 0;
  for (let end = 0; end < sorted.length; end += 1) {
    while ((sorted[start] as number) <= (sorted[end] as number) - 1000) start += 1;
    peak = Math.max(peak, end - start + 1);
  }
  return peak;
}

const rates = { controlPlanePerSecond: 5, maxConcurrency: 5, batchSize: 50 };

/** `invocations` invocations one after the other on one worker, each making `calls` calls, recorded in `times`. */
async function worker(
  clock: Clock,
  store: SlotStore,
  times: number[],
  invocations: number,
  calls: number,
  workers = rates.maxConcurrency,
): Promise<void> {
  for (let i = 0; i < invocations; i += 1) {
    const { controlPlane } = controlPlaneLimiters(rates, workers, clock, { store });
    for (let c = 0; c < calls; c += 1) {
      await controlPlane.take();
      times.push(clock.now());
    }
  }
}

describe('the shared control-plane budget (issue 11)', () => {
  it('keeps every one-second window of the whole run within the limit, whatever the workers and invocations', async () => {
    // Prepare: take-inventory alone, then five workers at once: assess batches (many calls) and protect
    // invocations (one to three calls each), all starting together.
    const clock = new EventClock();
    const store = new MemoryStore();
    const times: number[] = [];

    // Act
    await clock.run(worker(clock, store, times, 1, 7, 1));
    await clock.run(
      Promise.all([
        worker(clock, store, times, 2, 40),
        worker(clock, store, times, 1, 55),
        worker(clock, store, times, 12, 3),
        worker(clock, store, times, 20, 1),
        worker(clock, store, times, 6, 2),
      ]),
    );

    // Assess: 7 + 80 + 55 + 36 + 20 + 12 calls; never more than 5 in a second, and the limit is used (the total
    // time is the calls at the schedule's rate, give or take the slots left unused at the end of invocations).
    expect(times).toHaveLength(210);
    expect(peakPerSecond(times)).toBeLessThanOrEqual(rates.controlPlanePerSecond);
    const spacing = slotSpacingMs(rates.controlPlanePerSecond);
    const elapsed = Math.max(...times) - Math.min(...times);
    expect(elapsed).toBeLessThan(210 * spacing * 1.3);
    // Cost: at most one write per call, far fewer on long invocations.
    expect(store.writes).toBeLessThan(times.length * 0.6);
  });

  it('holds with timers that wake up late, up to the guard', async () => {
    // Prepare: every wake-up 0 to 24 ms late (a busy container), deterministic.
    const clock = new EventClock((n) => (n * 7919) % (BUDGET_GUARD_MS / 2));
    const store = new MemoryStore();
    const times: number[] = [];

    // Act
    await clock.run(Promise.all(Array.from({ length: 5 }, () => worker(clock, store, times, 3, 10))));

    // Assess
    expect(times).toHaveLength(150);
    expect(peakPerSecond(times)).toBeLessThanOrEqual(rates.controlPlanePerSecond);
  });

  it('gives a lone caller the whole limit, less the guard, from its first call (no per-worker share)', async () => {
    // Prepare: one invocation of a map with five workers, the other four done.
    const clock = new EventClock();
    const store = new MemoryStore();
    const times: number[] = [];

    // Act
    await clock.run(worker(clock, store, times, 1, 50));

    // Assess: 5 calls in the first second (the local share would allow 1), 5 calls every 1000 + guard ms, and one
    // write per MAX_SLOTS_PER_RESERVATION calls once the reservations have grown.
    const spacing = slotSpacingMs(rates.controlPlanePerSecond);
    expect(spacing).toBe(210);
    expect(times.filter((t) => t < (times[0] as number) + 1000)).toHaveLength(5);
    expect(peakPerSecond(times)).toBe(5);
    expect((times[49] as number) - (times[0] as number)).toBe(49 * spacing);
    expect(store.writes).toBe(2 + Math.ceil((50 - 3) / MAX_SLOTS_PER_RESERVATION));
  });

  it('does not start with a burst: invocations that start together queue on the schedule', async () => {
    // Prepare
    const clock = new EventClock();
    const store = new MemoryStore();
    const times: number[] = [];

    // Act: ten invocations at once, one call each (protect-function's first read).
    await clock.run(Promise.all(Array.from({ length: 10 }, () => worker(clock, store, times, 1, 1))));

    // Assess: one slot each, spaced.
    const sorted = [...times].sort((a, b) => a - b);
    expect(sorted.slice(1).map((t, i) => t - (sorted[i] as number))).toEqual(Array(9).fill(210));
  });

  it('drops a slot its caller reaches too late instead of bunching it with the next ones', async () => {
    // Prepare: a caller reserves, then is busy elsewhere far past its slots.
    const clock = new EventClock();
    const store = new MemoryStore();
    const budget = new SharedBudget({ limitPerSecond: 5, workers: 5, store, clock });
    const times: number[] = [];

    // Act
    await clock.run(
      (async () => {
        await budget.take(); // reserves 1
        times.push(clock.now());
        await budget.take(); // reserves 2: one used now, the next 210 ms later
        times.push(clock.now());
        await clock.sleep(5_000); // other work
        await budget.take();
        times.push(clock.now());
      })(),
    );

    // Assess: the third call did not use the stale slot; it reserved fresh ones.
    expect(budget.dropped).toBe(1);
    expect(budget.reservations).toBe(3);
    expect(store.counts).toEqual([1, 2, 4]);
    expect((times[2] as number) - (times[1] as number)).toBe(5_000);
  });

  it('falls back to the local share, without burst, when the table cannot be reached', async () => {
    // Prepare: the table is down for the whole run; five workers of two invocations each.
    const clock = new EventClock();
    const store = new MemoryStore();
    store.down = true;
    const times: number[] = [];
    const perWorker: number[][] = [[], [], [], [], []];

    // Act
    await clock.run(
      Promise.all(
        perWorker.map(async (mine) => {
          const before = times.length;
          await worker(clock, store, mine, 2, 4);
          times.push(...mine.slice(before));
        }),
      ),
    );

    // Assess: each worker at 1 call/s (5 / 5 workers) including across its two invocations (the second starts
    // empty: no burst at the boundary), so the run stays within the limit; nothing was written.
    for (const mine of perWorker) {
      expect(mine).toHaveLength(8);
      expect(peakPerSecond(mine)).toBe(1);
      expect(mine.slice(1).map((t, i) => t - (mine[i] as number))).toEqual(Array(7).fill(1000));
    }
    expect(peakPerSecond(times)).toBeLessThanOrEqual(rates.controlPlanePerSecond);
    expect(store.writes).toBe(0);
  });

  it('switches an invocation to the local share when the table fails mid-way', async () => {
    // Prepare
    const clock = new EventClock();
    const store = new MemoryStore();
    const budget = new SharedBudget({ limitPerSecond: 5, workers: 5, store, clock });
    const times: number[] = [];

    // Act
    await clock.run(
      (async () => {
        for (let i = 0; i < 3; i += 1) {
          await budget.take();
          times.push(clock.now());
        }
        store.down = true;
        for (let i = 0; i < 3; i += 1) {
          await budget.take();
          times.push(clock.now());
        }
      })(),
    );

    // Assess: 210 ms apart on the schedule, then 1 s apart at the local share.
    expect(budget.fallenBack).toBe(true);
    expect(times.slice(1).map((t, i) => t - (times[i] as number))).toEqual([210, 210, 1000, 1000, 1000]);
  });
});

describe('controlPlaneLimiters (GetFunction stays local)', () => {
  it('gives each worker a whole number of GetFunction calls a second whose sum stays within the quota', () => {
    const five = controlPlaneLimiters(rates, 5).getFunction;
    const hundred = controlPlaneLimiters({ ...rates, controlPlanePerSecond: 15, maxConcurrency: 100 }, 100);

    // 100 * 5 / 15 = 33.3/s for the engine: 6 a second for each of 5 workers; 1 each for 100 workers at 15/s.
    expect(Math.round(five.ratePerSecond)).toBe(6);
    expect(five.burst).toBe(1);
    expect(hundred.getFunction.ratePerSecond).toBe(1);
  });

  it('starts GetFunction empty, so consecutive invocations of a worker cannot double up', async () => {
    const clock = new EventClock();
    const times: number[] = [];

    await clock.run(
      (async () => {
        for (let i = 0; i < 2; i += 1) {
          const { getFunction } = controlPlaneLimiters(rates, 5, clock);
          for (let c = 0; c < 3; c += 1) {
            await getFunction.take();
            times.push(clock.now());
          }
        }
      })(),
    );

    expect(peakPerSecond(times)).toBeLessThanOrEqual(6);
    expect(times.slice(1).map((t, i) => t - (times[i] as number))).toEqual(Array(5).fill(167));
  });
});
