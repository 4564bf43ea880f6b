/**
 * Issue 9, "the lease expired under a long run: two runs each changed up to the per-run cap": the protection cap
 * against a real DynamoDB-compatible server (dynalite), so the conditional updates are evaluated as DynamoDB does.
 */
import { STATE_TABLE } from '../../lambdas/shared/domain/table-schema';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamo-local';

let dynamo: LocalDynamo;
let store: typeof import('../../lambdas/shared/adapters/state-store');

const HOUR_12 = Date.parse('2025-06-01T12:10:00.000Z');
const HOUR_13 = Date.parse('2025-06-01T13:05:00.000Z');
const MAX = 3;

beforeAll(async () => {
  dynamo = await startLocalDynamo([{ name: 'state', schema: STATE_TABLE }]);
  // The adapters' client resolves its endpoint on first use, which comes after this.
  process.env['AWS_ENDPOINT_URL_DYNAMODB'] = dynamo.endpoint;
  store = await import('../../lambdas/shared/adapters/state-store');
});

afterAll(async () => {
  delete process.env['AWS_ENDPOINT_URL_DYNAMODB'];
  await dynamo.stop();
});

/** Claims `attempts` slots for a run at `now`, all at once (concurrent protect Lambdas); returns how many it got. */
async function claims(runId: string, now: number, attempts: number): Promise<number> {
  const results = await Promise.all(
    Array.from({ length: attempts }, () =>
      store.claimProtectionSlot('state', { runId, max: MAX, expiresAt: 9_999_999_999, now }),
    ),
  );
  return results.filter(Boolean).length;
}

describe('the protection cap across overlapping runs (issue 9)', () => {
  it('lets two overlapping runs change at most maxProtectionsPerRun functions in one hour together', async () => {
    // Act: run-a outlived its lease; run-b started while it still works. Both want 5 functions in the same hour.
    const [a, b] = await Promise.all([claims('run-a', HOUR_12, 5), claims('run-b', HOUR_12 + 60_000, 5)]);

    // Assess
    expect(a + b).toBe(MAX);
    const items = await dynamo.scan('state');
    const hour = items.find((item) => item['pk'] === 'HOUR#2025-06-01T12');
    expect(hour?.['protections']).toBe(MAX);
    // Every run slot given back when the hour was full: the run counters add up to what was claimed.
    const runCounts = items
      .filter((item) => String(item['pk']).startsWith('RUN#'))
      .reduce((sum, item) => sum + Number(item['protections']), 0);
    expect(runCounts).toBe(MAX);
  });

  it('keeps the per-run cap of a run that goes on into the next hour', async () => {
    // Prepare: run-a already claimed some slots in hour 12 (previous test); in hour 13 the hour counter is fresh.
    const before = (await dynamo.scan('state')).find((item) => item['pk'] === 'RUN#run-a');
    const claimedBefore = Number(before?.['protections'] ?? 0);

    // Act
    const more = await claims('run-a', HOUR_13, 5);

    // Assess: never more than MAX for the run in all, and the new hour counts only what it let through.
    expect(claimedBefore + more).toBe(MAX);
    const hour13 = (await dynamo.scan('state')).find((item) => item['pk'] === 'HOUR#2025-06-01T13');
    expect(Number(hour13?.['protections'] ?? 0)).toBe(more);
  });
});
