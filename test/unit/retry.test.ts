import { exponentialDelay, fullJitter, retry } from '../../lambdas/shared/retry';

function recorder(): { sleeps: number[]; sleep: (ms: number) => Promise<void> } {
  const sleeps: number[] = [];
  return { sleeps, sleep: (ms) => (sleeps.push(ms), Promise.resolve()) };
}

describe('retry', () => {
  it('returns the first success, waiting between failed attempts', async () => {
    const { sleeps, sleep } = recorder();
    const seen: number[] = [];
    const result = await retry(
      (attempt) => {
        seen.push(attempt);
        return attempt < 3 ? Promise.reject(new Error(`fail ${attempt}`)) : Promise.resolve('ok');
      },
      { attempts: 5, delayMs: exponentialDelay(100, 1000), sleep },
    );
    expect(result).toBe('ok');
    expect(seen).toEqual([1, 2, 3]);
    expect(sleeps).toEqual([100, 200]);
  });

  it('throws the last error as it was once the attempts are used up', async () => {
    const { sleeps, sleep } = recorder();
    const retried: number[] = [];
    const last = new Error('fail 4');
    await expect(
      retry((attempt) => Promise.reject(attempt === 4 ? last : new Error(`fail ${attempt}`)), {
        attempts: 4,
        delayMs: exponentialDelay(500, 1000),
        onRetry: (attempt) => retried.push(attempt),
        sleep,
      }),
    ).rejects.toBe(last);
    expect(retried).toEqual([1, 2, 3]);
    expect(sleeps).toEqual([500, 1000, 1000]);
  });

  it('does not retry a failure that is not retryable', async () => {
    const { sleeps, sleep } = recorder();
    let calls = 0;
    const final = Object.assign(new Error('no'), { name: 'PreconditionFailedException' });
    await expect(
      retry(
        () => {
          calls += 1;
          return Promise.reject(final);
        },
        { attempts: 5, delayMs: () => 1, retryable: (e) => (e as Error).name === 'ResourceConflictException', sleep },
      ),
    ).rejects.toBe(final);
    expect(calls).toBe(1);
    expect(sleeps).toEqual([]);
  });

  it('full jitter draws in [0, base * 2^(attempt-1))', () => {
    expect([1, 2, 3, 4].map(fullJitter(1000, () => 0.999))).toEqual([999, 1998, 3996, 7992]);
    expect([1, 2].map(fullJitter(1000, () => 0))).toEqual([0, 0]);
  });
});
