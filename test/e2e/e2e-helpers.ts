/**
 * Shared by the end-to-end tests: the example estate, the local-run configuration fixture, and views of a run.
 */
import { join } from 'node:path';
import { parseConfig, type Config } from '../../lib/config';
import type { AuditItem, FunctionConfiguration } from '../../lambdas/shared/domain/types';
import { loadEstateFile, type Estate } from '../../local/estate';
import { decisions } from '../../local/run-summary';
import { readJsonFile } from '../../bin/commands/common';

export const ROOT = join(__dirname, '..', '..');
export const EXAMPLE_ESTATE_FILE = join(ROOT, 'local', 'example-estate.json');
/** The small us-east-1 estate (Lambda@Edge lives in us-east-1 only). */
export const US_EAST_ESTATE_FILE = join(ROOT, 'local', 'example-estate-us-east-1.json');
/**
 * The example estate's functions added for issue 8: their expectations are in test/e2e/issue8-estate.test.ts (some
 * hold only with the funnel, secrets and protect changes of issue 8); example-estate.test.ts leaves them out.
 */
export const ISSUE8_FUNCTIONS: readonly string[] = [
  'manual-defender-handler',
  'two-defender-versions',
  'architectures-null',
  'exclude-tag-false-space',
  'code-signing-enforced',
  'kms-variables-unreadable',
  'aliased-service',
];
export const CONFIG_FILE = join(ROOT, 'test', 'fixtures', 'local-run-config.json');
export const DEFENDER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32';
export const WRAPPER = '/opt/twistlock/twistlock_wrapper';
/** The secret-looking value of user-profile-service's DB_PASSWORD in the example estate. */
export const CANARY = 'canary-s3cr3t-5f1c9a7e3b2d4068';

export function exampleEstate(): Estate {
  return loadEstateFile(EXAMPLE_ESTATE_FILE);
}

/** The TW_POLICY value the example estate's simulated SSM holds. */
export function policyValue(estate: Estate): string {
  const value = estate.ssmParameters['/zero-impact/tw-policy'];
  if (value === undefined) throw new Error('the example estate has no /zero-impact/tw-policy');
  return value;
}

/** The local-run configuration fixture with some keys replaced (shallow per top-level key). */
export function e2eConfig(overrides: Record<string, unknown> = {}): Config {
  const base = readJsonFile(CONFIG_FILE) as Record<string, unknown>;
  return parseConfig({ ...base, ...overrides }, CONFIG_FILE);
}

/** The run's decisions by function name (every decision, so duplicates show). */
export function decisionsByFunction(items: readonly AuditItem[], runId: string): Map<string, AuditItem[]> {
  const map = new Map<string, AuditItem[]>();
  for (const item of decisions(items, runId)) map.set(item.functionName, [...(map.get(item.functionName) ?? []), item]);
  return map;
}

/** The one decision of a function in a run (throws when there is not exactly one). */
export function decisionOf(items: readonly AuditItem[], runId: string, name: string): AuditItem {
  const found = decisionsByFunction(items, runId).get(name) ?? [];
  if (found.length !== 1) throw new Error(`${name} has ${found.length} decisions in ${runId}`);
  return found[0] as AuditItem;
}

export function byName(configurations: readonly FunctionConfiguration[]): Map<string, FunctionConfiguration> {
  return new Map(configurations.map((c) => [String(c.FunctionName), c]));
}

/** The fields an update changes whatever it is (AWS bumps them): left out when comparing. */
export function withoutRevision(configuration: FunctionConfiguration): FunctionConfiguration {
  const { RevisionId: _revision, LastModified: _modified, ...rest } = configuration;
  return rest;
}

/** Skip notifications (not run summaries) published in a run. */
export function skipMessages(
  messages: ReadonlyArray<{ runId: string | null; attributes: Record<string, { StringValue?: string }> }>,
  runId: string,
) {
  return messages.filter(
    (m) =>
      m.runId === runId &&
      m.attributes['kind']?.StringValue === 'decision' &&
      m.attributes['outcome']?.StringValue === 'SKIPPED',
  );
}

/**
 * The example estate's functions the scenario files under test/scenarios/ name, and a few more: eligible ones (in
 * and out of a VPC), skipped ones, the canary's user-profile-service. Small, so a scenario runs in seconds.
 */
export const SCENARIO_FUNCTIONS: readonly string[] = [
  'orders-api',
  'cart-service',
  'webhook-receiver',
  'config-loader',
  'report-exporter',
  'batch-reconciler',
  'feature-flags',
  'greeting-api',
  'email-sender',
  'user-profile-service',
  'payments-vpc-worker',
];

/** The small estate of the scenario suite (SCENARIO_FUNCTIONS of the example estate). */
export function scenarioEstate(): Estate {
  const estate = exampleEstate();
  return {
    ...estate,
    functions: estate.functions.filter((f) => SCENARIO_FUNCTIONS.includes(String(f.configuration.FunctionName))),
  };
}

/** The issue's example names app-01 ... app-08: eight eligible functions of the example estate, renamed. */
export function appEstate(): Estate {
  const estate = exampleEstate();
  const eligible = ['orders-api', 'cart-service', 'batch-reconciler', 'greeting-api', 'email-sender'];
  const sources = [...eligible, 'user-profile-service', 'notifications-worker', 'partner-sync'];
  const functions = sources.map((source, i) => {
    const original = estate.functions.find((f) => f.configuration.FunctionName === source);
    if (original === undefined) throw new Error(`the example estate has no ${source}`);
    const name = `app-${String(i + 1).padStart(2, '0')}`;
    return {
      ...original,
      configuration: {
        ...original.configuration,
        FunctionName: name,
        FunctionArn: `arn:aws:lambda:${estate.region}:${estate.account}:function:${name}`,
      },
    };
  });
  return { ...estate, functions };
}
