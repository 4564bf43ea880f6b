/**
 * A generated estate (seeded) with a low per-run cap: the cap holds, the rest is DEFERRED and protected by later
 * runs, decisions stay one per function per run, and the control-plane budget holds.
 */
import type { AuditItem, FunctionConfiguration } from '../../lambdas/shared/domain/types';
import { generateEstate } from '../../local/estate';
import { LocalSession } from '../../local/local-runner';
import type { RunSummary } from '../../local/run-summary';
import {
  CANARY,
  DEFENDER,
  WRAPPER,
  byName,
  decisionsByFunction,
  e2eConfig,
  skipMessages,
  withoutRevision,
} from './e2e-helpers';

const POLICY = 'twp-generated-estate-policy-0b7e';
const CAP = 4;
const ESTATE = generateEstate({
  count: 70,
  seed: 20250106,
  protection: { layerArn: DEFENDER, variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY } },
  ssmParameters: { '/zero-impact/tw-policy': POLICY },
  canaryValue: CANARY,
});
const NAMES = ESTATE.functions.map((f) => String(f.configuration.FunctionName));

function outcomesOf(items: readonly AuditItem[], runId: string): Map<string, string> {
  return new Map([...decisionsByFunction(items, runId)].map(([name, list]) => [name, (list[0] as AuditItem).outcome]));
}

describe('local run on a generated estate with maxProtectionsPerRun 4', () => {
  let session: LocalSession;
  let before: Map<string, FunctionConfiguration>;
  let after: Map<string, FunctionConfiguration>;
  let runs: RunSummary[];
  let items: AuditItem[];

  beforeAll(async () => {
    session = await LocalSession.start({
      estate: ESTATE,
      config: e2eConfig({
        maxProtectionsPerRun: CAP,
        rates: { batchSize: 10 },
      }),
    });
    before = byName(session.account.functionConfigurations());
    runs = [await session.run(), await session.run()];
    after = byName(session.account.functionConfigurations());
    items = await session.auditItems();
  }, 120_000);

  afterAll(async () => {
    await session?.stop();
  });

  it('makes exactly one decision per function per run', () => {
    // Assess
    expect(runs.map((r) => r.status)).toEqual(['SUCCEEDED', 'SUCCEEDED']);
    for (const run of runs) {
      const byFunction = decisionsByFunction(items, run.runId);
      expect([...byFunction.keys()].sort()).toEqual([...NAMES].sort());
      expect([...byFunction.values()].every((list) => list.length === 1)).toBe(true);
    }
  });

  it('protects up to the cap, defers the rest, and protects the deferred next run', () => {
    // Prepare
    const first = outcomesOf(items, (runs[0] as RunSummary).runId);
    const second = outcomesOf(items, (runs[1] as RunSummary).runId);
    const protectedFirst = NAMES.filter((n) => first.get(n) === 'PROTECTED');
    const deferredFirst = NAMES.filter((n) => first.get(n) === 'DEFERRED');

    // Assess
    expect(protectedFirst).toHaveLength(CAP);
    expect(deferredFirst.length).toBeGreaterThan(CAP);
    for (const name of protectedFirst) expect([name, second.get(name)]).toEqual([name, 'ALREADY_PROTECTED']);
    expect(NAMES.filter((n) => second.get(n) === 'PROTECTED')).toHaveLength(CAP);
    for (const name of deferredFirst) expect(['PROTECTED', 'DEFERRED']).toContain(second.get(name));
  });

  it('defers exactly the eligible functions beyond the cap: every function protected in run 2 was DEFERRED in run 1', () => {
    // Prepare
    const first = outcomesOf(items, (runs[0] as RunSummary).runId);
    const second = outcomesOf(items, (runs[1] as RunSummary).runId);

    // Act
    const protectedSecond = NAMES.filter((n) => second.get(n) === 'PROTECTED');

    // Assess
    expect(protectedSecond).toHaveLength(CAP);
    for (const name of protectedSecond) expect([name, first.get(name)]).toEqual([name, 'DEFERRED']);
    expect(runs.map((r) => r.outcomes['FAILED'])).toEqual([undefined, undefined]);
  });

  it('writes a PENDING item before the final item of every change', () => {
    // Prepare
    const changes = runs.flatMap((r) => r.changed.map((c) => ({ runId: r.runId, name: c.functionName })));

    // Assess
    expect(changes).toHaveLength(2 * CAP);
    for (const { runId, name } of changes) {
      const pending = items.filter((i) => i.functionName === name && i.runId === runId && i.outcome === 'PENDING');
      const final = decisionsByFunction(items, runId).get(name) ?? [];
      expect([name, pending.length, final.map((i) => i.outcome)]).toEqual([name, 1, ['PROTECTED']]);
      expect((pending[0] as AuditItem).sk < (final[0] as AuditItem).sk).toBe(true);
    }
  });

  it('changes a protected function only by our layer and our variables', () => {
    // Prepare
    const changed = runs.flatMap((r) => r.changed.map((c) => c.functionName));

    // Assess
    for (const name of changed) {
      const old = before.get(name) as FunctionConfiguration;
      const now = after.get(name) as FunctionConfiguration;
      expect([name, withoutRevision(now)]).toEqual([
        name,
        {
          ...withoutRevision(old),
          Layers: [...(old.Layers ?? []), { Arn: DEFENDER, CodeSize: expect.any(Number) as unknown as number }],
          Environment: {
            Variables: { ...(old.Environment?.Variables ?? {}), AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY },
          },
        },
      ]);
    }
  });

  it('changes only the functions it protected, and publishes no repeat skip', () => {
    // Prepare
    const changed = new Set(runs.flatMap((r) => r.changed.map((c) => c.functionName)));

    // Assess
    for (const name of NAMES.filter((n) => !changed.has(n))) {
      expect([name, JSON.stringify(after.get(name))]).toEqual([name, JSON.stringify(before.get(name))]);
    }
    expect(skipMessages(session.messages(), (runs[1] as RunSummary).runId)).toEqual([]);
  });

  it('keeps within the control-plane budget and never leaks the canary value', () => {
    // Assess
    expect(session.account.peakControlPlaneRate()).toBeLessThanOrEqual(15);
    expect(session.account.throttledCalls()).toEqual({});
    expect(JSON.stringify(items).includes(CANARY)).toBe(false);
    expect(JSON.stringify(session.messages()).includes(CANARY)).toBe(false);
  });
});
