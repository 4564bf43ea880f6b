import {
  assessBatchPacedSeconds,
  concurrentWorkers,
  MAX_ASSESS_PACED_SECONDS,
  MAX_INPUT_BYTES_PER_BATCH,
  workersOf,
} from '../../lambdas/shared/domain/batching';

const rates = { controlPlanePerSecond: 5, maxConcurrency: 5, batchSize: 50 };

describe('concurrentWorkers', () => {
  it('gives one worker the whole budget when the inventory fits in one batch', () => {
    expect(concurrentWorkers(50, 10_000, rates)).toBe(1);
  });

  it('assumes the map runs at MaxConcurrency as soon as there can be two batches', () => {
    expect(concurrentWorkers(51, 10_000, rates)).toBe(5);
  });

  it('counts bytes too: a batch split by MaxInputBytesPerBatch makes a second batch', () => {
    expect(concurrentWorkers(10, MAX_INPUT_BYTES_PER_BATCH, rates)).toBe(5);
  });
});

describe('workersOf', () => {
  it('takes a whole number between 1 and maxConcurrency', () => {
    expect(workersOf(1, rates)).toBe(1);
    expect(workersOf(5, rates)).toBe(5);
  });

  it.each([undefined, null, 0, -1, 1.5, 6, '1', Number.NaN])(
    'falls back to maxConcurrency (the slowest share) for %p',
    (value) => {
      expect(workersOf(value, rates)).toBe(5);
    },
  );
});

describe('assessBatchPacedSeconds', () => {
  it('gives a batch of candidates its control-plane reads at the slowest worker share', () => {
    // 50 functions x 2 reads at 5 requests/s shared by 5 workers.
    expect(assessBatchPacedSeconds(rates)).toBe(100);
    expect(assessBatchPacedSeconds({ ...rates, maxConcurrency: 1 })).toBe(20);
  });

  it('keeps the defaults under the bound', () => {
    expect(assessBatchPacedSeconds(rates)).toBeLessThanOrEqual(MAX_ASSESS_PACED_SECONDS);
  });
});
