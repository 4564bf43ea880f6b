/**
 * Dry-run mode on the example estate: every decision recorded, nothing in the account changed at all.
 */
import type { AuditItem } from '../../lambdas/shared/domain/types';
import { LocalSession } from '../../local/local-runner';
import type { RunSummary } from '../../local/run-summary';
import { decisionOf, decisionsByFunction, e2eConfig, exampleEstate } from './e2e-helpers';

const ESTATE = exampleEstate();
const NAMES = ESTATE.functions.map((f) => String(f.configuration.FunctionName));

describe('local run on the example estate (dry-run mode)', () => {
  let session: LocalSession;
  let before: string;
  let after: string;
  let run: RunSummary;
  let items: AuditItem[];

  beforeAll(async () => {
    session = await LocalSession.start({ estate: ESTATE, config: e2eConfig({ mode: 'dry-run' }) });
    before = JSON.stringify(session.account.functionConfigurations());
    run = await session.run();
    after = JSON.stringify(session.account.functionConfigurations());
    items = await session.auditItems();
  }, 90_000);

  afterAll(async () => {
    await session?.stop();
  });

  it('changes nothing at all: no update call, every configuration byte-identical', () => {
    // Assess
    expect(run.status).toBe('SUCCEEDED');
    expect(after).toBe(before);
    expect(session.account.calls()['lambda:UpdateFunctionConfiguration']).toBeUndefined();
    expect(items.filter((i) => i.outcome === 'PENDING' || i.outcome === 'PROTECTED')).toEqual([]);
  });

  it('records one decision per function, WOULD_PROTECT for the eligible ones', () => {
    // Assess
    const byFunction = decisionsByFunction(items, run.runId);
    expect([...byFunction.keys()].sort()).toEqual([...NAMES].sort());
    expect([...byFunction.values()].every((list) => list.length === 1)).toBe(true);
    expect(decisionOf(items, run.runId, 'orders-api').outcome).toBe('WOULD_PROTECT');
    expect(decisionOf(items, run.runId, 'legacy-billing-container')).toMatchObject({
      outcome: 'SKIPPED',
      reasons: ['PACKAGE_IMAGE'],
    });
    expect(run.outcomes['WOULD_PROTECT']).toBeGreaterThanOrEqual(10);
  });
});
