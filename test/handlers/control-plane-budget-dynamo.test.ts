/**
 * Issue 11: the shared control-plane schedule's conditional updates against a real DynamoDB-compatible server
 * (dynalite), so ADD/SET and their conditions are evaluated as DynamoDB does: concurrent reservations never share a
 * slot, an idle schedule restarts at now, and an unreachable table makes the invocation fall back to its local share.
 */
import { STATE_TABLE } from '../../lambdas/shared/domain/table-schema';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamo-local';

let dynamo: LocalDynamo;
let budget: typeof import('../../lambdas/shared/adapters/control-plane-budget');

const T0 = Date.parse('2026-12-02T02:00:00.000Z');

beforeAll(async () => {
  dynamo = await startLocalDynamo([{ name: 'state', schema: STATE_TABLE }]);
  // The adapters' client resolves its endpoint on first use, which comes after this.
  process.env['AWS_ENDPOINT_URL_DYNAMODB'] = dynamo.endpoint;
  budget = await import('../../lambdas/shared/adapters/control-plane-budget');
});

afterAll(async () => {
  delete process.env['AWS_ENDPOINT_URL_DYNAMODB'];
  await dynamo.stop();
});

async function schedule(): Promise<Record<string, unknown> | undefined> {
  return (await dynamo.scan('state')).find((item) => item['pk'] === 'BUDGET#lambda-control-plane');
}

describe('DynamoSlotStore (the state table schedule)', () => {
  it('gives concurrent invocations disjoint runs of slots, and restarts an idle schedule at now', async () => {
    // Prepare: eight invocations (separate stores: separate containers) reserve 3 slots each at the same instant.
    const spacingMs = 210;
    const stores = Array.from({ length: 8 }, () => new budget.DynamoSlotStore('state'));

    // Act
    const firsts = await Promise.all(stores.map((s) => s.reserve({ nowMs: T0, count: 3, spacingMs })));
    const idle = await new budget.DynamoSlotStore('state').reserve({ nowMs: T0 + 3_600_000, count: 2, spacingMs });
    const item = await schedule();

    // Assess: the 24 slots are T0, T0 + 210, ..., each once; an hour later the schedule starts again at now.
    const slots = firsts.flatMap((first) => [0, 1, 2].map((i) => first + i * spacingMs)).sort((a, b) => a - b);
    expect(slots).toEqual(Array.from({ length: 24 }, (_, i) => T0 + i * spacingMs));
    expect(idle).toBe(T0 + 3_600_000);
    expect(item?.['tat']).toBe(T0 + 3_600_000 + 2 * spacingMs);
    expect(item?.['expiresAt']).toBeGreaterThan((T0 + 3_600_000) / 1000);
  });

  it('paces concurrent invocations within the limit on the shared item', async () => {
    // Prepare: a discrete-event clock that moves only when no reservation is in flight, to the earliest sleeper.
    let now = T0 + 7_200_000;
    let inFlight = 0;
    const sleepers: Array<{ at: number; resolve: () => void }> = [];
    const clock = {
      now: () => now,
      sleep: (ms: number) => new Promise<void>((resolve) => sleepers.push({ at: now + ms, resolve })),
    };
    const counted = (store: InstanceType<typeof budget.DynamoSlotStore>) => ({
      reserve: async (request: Parameters<typeof store.reserve>[0]) => {
        inFlight += 1;
        try {
          return await store.reserve(request);
        } finally {
          inFlight -= 1;
        }
      },
    });
    const times: number[] = [];
    const budgets = Array.from(
      { length: 5 },
      () =>
        new budget.SharedBudget({
          limitPerSecond: 5,
          workers: 5,
          store: counted(new budget.DynamoSlotStore('state')),
          clock,
        }),
    );
    let done = false;
    const work = Promise.all(
      budgets.map(async (b) => {
        for (let i = 0; i < 6; i += 1) {
          await b.take();
          times.push(now);
        }
      }),
    ).finally(() => {
      done = true;
    });

    // Act
    while (!done) {
      await new Promise((resolve) => setTimeout(resolve, 1));
      if (done || inFlight > 0 || sleepers.length === 0) continue;
      sleepers.sort((x, y) => x.at - y.at);
      const next = sleepers.shift() as { at: number; resolve: () => void };
      now = Math.max(now, next.at);
      next.resolve();
    }
    await work;

    // Assess: 30 calls, any 6 consecutive ones at least a second apart: never more than 5 in a second.
    const sorted = [...times].sort((x, y) => x - y);
    expect(sorted).toHaveLength(30);
    for (let i = 5; i < sorted.length; i += 1) {
      expect((sorted[i] as number) - (sorted[i - 5] as number)).toBeGreaterThanOrEqual(1000);
    }
    expect(budgets.reduce((sum, b) => sum + b.reservations, 0)).toBeLessThan(30);
  });

  it('falls back to the local share when the table does not exist (the table cannot be reached)', async () => {
    // Prepare
    let now = T0;
    const sleeps: number[] = [];
    const clock = {
      now: () => now,
      sleep: async (ms: number) => {
        sleeps.push(ms);
        now += ms;
      },
    };
    const b = new budget.SharedBudget({
      limitPerSecond: 5,
      workers: 5,
      store: new budget.DynamoSlotStore('no-such-table'),
      clock,
    });

    // Act
    await b.take();
    await b.take();

    // Assess: 1 call a second (5 / 5 workers), the first one waiting too (no burst).
    expect(b.fallenBack).toBe(true);
    expect(sleeps).toEqual([1000, 1000]);
  });
});
