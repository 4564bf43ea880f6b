/**
 * Issue 9, "the lease expired under a long run: two runs each changed up to the per-run cap": against a real
 * DynamoDB-compatible server (dynalite), so the conditional writes are evaluated as DynamoDB does. A run claims a
 * protection slot only while it holds the lease (each claim renews it), so overlapping runs never change more than
 * `maxProtectionsPerRun` functions together.
 */
import { STATE_TABLE } from '../../lambdas/shared/domain/table-schema';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamo-local';

let dynamo: LocalDynamo;
let store: typeof import('../../lambdas/shared/adapters/state-store');

const T0 = Date.parse('2025-06-01T12:00:00.000Z');
const MAX = 3;
const HOURS = 3_600_000;

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

async function lease(): Promise<Record<string, unknown> | undefined> {
  return (await dynamo.scan('state')).find((item) => item['pk'] === 'LOCK');
}

describe('the protection cap across overlapping runs (issue 9)', () => {
  it('lets a run whose lease expired and the run that took it change at most maxProtectionsPerRun together', async () => {
    // Prepare: run-a takes the lease and protects one function; then it stalls past its lease (no claim renews it).
    const nowA = T0;
    await store.acquireLease('state', { runId: 'run-a', nowEpoch: nowA / 1000, leaseSeconds: 7200 });
    const first = await claims('run-a', nowA, 1);
    const later = nowA + 2 * HOURS + 60_000;
    const b = await store.acquireLease('state', { runId: 'run-b', nowEpoch: later / 1000, leaseSeconds: 7200 });

    // Act: both now want 5 functions at the same time.
    const [a, bClaimed] = await Promise.all([claims('run-a', later, 5), claims('run-b', later, 5)]);

    // Assess: run-a changes nothing more (it lost the lease); run-b has its own cap.
    expect([first, b.acquired, a, bClaimed]).toEqual([1, true, 0, MAX]);
    expect((await lease())?.['runId']).toBe('run-b');
  });

  it('keeps the lease of a run that is still protecting: claims renew it, so it never expires under the run', async () => {
    // Prepare: run-c holds the lease; at 1 h 50 min it claims a slot (renewing the lease to 3 h 50 min).
    await store.releaseLease('state', 'run-b');
    await store.acquireLease('state', { runId: 'run-c', nowEpoch: T0 / 1000, leaseSeconds: 7200 });
    await claims('run-c', T0 + 110 * 60_000, 1);

    // Act: at 2 h 10 min (past the original lease) another run tries to start.
    const d = await store.acquireLease('state', {
      runId: 'run-d',
      nowEpoch: (T0 + 130 * 60_000) / 1000,
      leaseSeconds: 7200,
    });

    // Assess
    expect(d.acquired).toBe(false);
    expect((await lease())?.['leaseUntil']).toBe((T0 + 110 * 60_000) / 1000 + 7200);
  });

  it('stops a run whose lease was taken over (its execution ended) from claiming', async () => {
    // Prepare: run-e took the lease over from run-c, whose execution no longer runs.
    const now = T0 + 3 * HOURS;
    const taken = await store.takeOverLease('state', {
      runId: 'run-e',
      nowEpoch: now / 1000,
      leaseSeconds: 7200,
      fromRunId: 'run-c',
    });

    // Act: a protect Lambda of run-c still in flight.
    const stale = await claims('run-c', now, 2);

    // Assess
    expect([taken, stale]).toEqual([true, 0]);
  });
});
