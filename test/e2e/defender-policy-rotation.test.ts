/**
 * Issue 10: "A function protected with an older value of its own policy is ALREADY_PROTECTED (its value is ours),
 * and is refreshed in place only when policySource.refresh: true." The stand-in Console rotates every value (the
 * customer changed the runtime policy); once the cached value expires, the next run sees the function carry an
 * older value of its own policy (recognised by the keyed MAC the engine recorded when it wrote it).
 */
import { resetDefenderPolicy } from '../../lambdas/shared/adapters/defender-policy';
import type { AuditItem, FunctionConfiguration } from '../../lambdas/shared/domain/types';
import type { Config } from '../../lib/config';
import { LocalSession } from '../../local/local-runner';
import type { RunSummary } from '../../local/run-summary';
import { synthesizeTemplate } from '../../local/stack-template';
import { byName, decisionOf, e2eConfig, exampleEstate } from './e2e-helpers';

const NAMES = ['orders-api', 'cart-service'];
const DAY_AND_AN_HOUR_MS = 25 * 60 * 60 * 1000;

function configWith(refresh: boolean): Config {
  const base = e2eConfig();
  return e2eConfig({
    defender: {
      layerArn: base.defender.layerArn,
      environment: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper' },
      policySource: {
        console: 'https://eu-west-1.cloud.twistlock.com/eu-123456',
        credentialsSecret: 'zero-impact/prisma-compute',
        refresh,
      },
    },
  });
}

let template: ReturnType<typeof synthesizeTemplate> | undefined;

interface Rotated {
  runs: RunSummary[];
  items: AuditItem[];
  before: Map<string, FunctionConfiguration>;
  after: Map<string, FunctionConfiguration>;
  oldValue: string;
  newValue: string;
}

/** Protects, rotates the Console's policy, lets the cache expire, runs again. */
async function rotate(refresh: boolean): Promise<Rotated> {
  resetDefenderPolicy();
  const config = configWith(refresh);
  const estate = { ...exampleEstate(), ssmParameters: {} };
  estate.functions = estate.functions.filter((f) => NAMES.includes(String(f.configuration.FunctionName)));
  // One template for both: `refresh` changes no resource or permission (the handlers get the config as given).
  template ??= synthesizeTemplate(configWith(false));
  const session = await LocalSession.start({ estate, config, template });
  try {
    const runs = [await session.run()];
    const before = byName(session.account.functionConfigurations());
    const oldValue = session.standInConsole?.policyFor('orders-api', estate.region) ?? '';
    session.standInConsole?.rotatePolicies();
    session.advanceClock(DAY_AND_AN_HOUR_MS);
    runs.push(await session.run());
    return {
      runs,
      items: await session.auditItems(),
      before,
      after: byName(session.account.functionConfigurations()),
      oldValue,
      newValue: session.standInConsole?.policyFor('orders-api', estate.region) ?? '',
    };
  } finally {
    await session.stop();
  }
}

const policy = (configs: Map<string, FunctionConfiguration>, name: string): string | undefined =>
  configs.get(name)?.Environment?.Variables?.['TW_POLICY'];

describe("issue 10: an older value of the function's own Console policy", () => {
  it('is ALREADY_PROTECTED and left as it is without policySource.refresh', async () => {
    // Act
    const result = await rotate(false);

    // Assess
    const [first, second] = result.runs.map((r) => r.runId);
    expect(decisionOf(result.items, first as string, 'orders-api').outcome).toBe('PROTECTED');
    expect(decisionOf(result.items, second as string, 'orders-api').outcome).toBe('ALREADY_PROTECTED');
    expect(result.newValue).not.toBe(result.oldValue);
    expect(policy(result.after, 'orders-api')).toBe(result.oldValue);
    expect(result.after.get('orders-api')?.RevisionId).toBe(result.before.get('orders-api')?.RevisionId);
  }, 120_000);

  it('is refreshed in place with policySource.refresh: true (write-ahead, the new value, layers unchanged)', async () => {
    // Act
    const result = await rotate(true);

    // Assess
    const second = result.runs[1]?.runId as string;
    const mine = result.items.filter((i) => i.functionName === 'orders-api' && i.runId === second);
    expect(mine.map((i) => i.outcome)).toEqual(['PENDING', 'PROTECTED']);
    expect(mine[0]?.detail).toContain('refresh variables TW_POLICY in place');
    expect(policy(result.after, 'orders-api')).toBe(result.newValue);
    expect(result.after.get('orders-api')?.Layers).toEqual(result.before.get('orders-api')?.Layers);
    // Neither value in any audit item.
    const text = JSON.stringify(result.items);
    expect(text).not.toContain(result.oldValue);
    expect(text).not.toContain(result.newValue);
  }, 120_000);
});
