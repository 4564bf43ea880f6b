import {
  controlPlaneLimiters,
  resetClock,
  setClock,
  systemClock,
  TokenBucket,
  type Clock,
} from '../../lambdas/shared/adapters/rate-limiter';

/** A clock whose sleep moves time forward at once. */
function fakeClock(advance = true): Clock & { sleeps: number[]; time: () => number } {
  let now = 0;
  const sleeps: number[] = [];
  return {
    sleeps,
    time: () => now,
    now: () => now,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      if (advance) now += ms;
    },
  };
}

describe('TokenBucket', () => {
  it('lets the burst through at once, then paces at the rate', async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ ratePerSecond: 5, burst: 2, clock });

    for (let i = 0; i < 7; i++) await bucket.take();

    expect(clock.sleeps).toEqual([200, 200, 200, 200, 200]);
    expect(clock.time()).toBe(1000);
    expect(bucket.taken).toBe(7);
  });

  it('never exceeds the rate with concurrent callers', async () => {
    const clock = fakeClock(false); // every caller reads the clock before any of them sleeps
    const bucket = new TokenBucket({ ratePerSecond: 1, burst: 1, clock });

    await Promise.all([bucket.take(), bucket.take(), bucket.take(), bucket.take()]);

    expect(clock.sleeps).toEqual([1000, 2000, 3000]);
  });

  it('refills while idle, up to the burst only', async () => {
    const clock = fakeClock();
    const bucket = new TokenBucket({ ratePerSecond: 2, burst: 2, clock });
    await bucket.take();
    await bucket.take();

    await clock.sleep(60_000);
    clock.sleeps.length = 0;
    for (let i = 0; i < 4; i++) await bucket.take();

    expect(clock.sleeps).toEqual([500, 500]);
  });

  it('rejects a rate that is not positive', () => {
    expect(() => new TokenBucket({ ratePerSecond: 0 })).toThrow(RangeError);
  });
});

describe('controlPlaneLimiters', () => {
  const rates = { controlPlanePerSecond: 5, maxConcurrency: 5, batchSize: 50 };

  it('gives each map worker its share of the control plane and of GetFunction', () => {
    const limiters = controlPlaneLimiters(rates, rates.maxConcurrency);

    expect(limiters.controlPlane.ratePerSecond).toBe(1);
    expect(limiters.controlPlane.burst).toBe(1);
    // Issue 11: a whole number of GetFunction calls a second per worker (floor(100 * 5 / 15 / 5) = 6, 167 ms apart),
    // no burst, so the workers' sum stays within the quota in every window.
    expect(limiters.getFunction.ratePerSecond).toBeCloseTo(1000 / 167, 5);
    expect(limiters.getFunction.burst).toBe(1);
  });

  it('gives a single worker the whole share', () => {
    const limiters = controlPlaneLimiters(rates, 1);

    expect(limiters.controlPlane.ratePerSecond).toBe(5);
  });
});

describe('systemClock (issue 9: one injectable clock)', () => {
  afterEach(() => resetClock());

  it('reads and waits through the clock set with setClock, and through the real one after resetClock', async () => {
    // Prepare
    const clock = fakeClock();
    setClock(clock);

    // Act
    await systemClock.sleep(7_200_000);
    const afterSleep = systemClock.now();
    resetClock();
    const real = systemClock.now();

    // Assess
    expect(clock.sleeps).toEqual([7_200_000]);
    expect(afterSleep).toBe(7_200_000);
    expect(Math.abs(real - Date.now())).toBeLessThan(1_000);
  });

  it('paces the default limiters on the injected clock (no real waiting)', async () => {
    // Prepare
    const clock = fakeClock();
    setClock(clock);
    const bucket = new TokenBucket({ ratePerSecond: 1, burst: 1 });

    // Act
    await bucket.take();
    await bucket.take();
    await bucket.take();

    // Assess
    expect(clock.sleeps).toEqual([1000, 1000]);
  });

  it('treats setClock(systemClock) as the real clock instead of recursing', () => {
    // Act
    setClock(systemClock);

    // Assess
    expect(Math.abs(systemClock.now() - Date.now())).toBeLessThan(1_000);
  });

  it('still lets jest.spyOn replace its methods', () => {
    // Prepare
    jest.spyOn(systemClock, 'now').mockReturnValue(42);

    // Act
    const now = systemClock.now();
    jest.restoreAllMocks();

    // Assess
    expect(now).toBe(42);
  });
});
