/**
 * Issue 10 end to end: the protect Lambda gets each function's own TW_POLICY from the stand-in Prisma Cloud Console
 * (a real HTTP server on 127.0.0.1) through the real handlers, the synthesized state machine and the strict simulated
 * account (per-role IAM from the template, Secrets Manager, KMS): per-function values; every Console and secret
 * failure becomes SKIPPED DEFENDER_POLICY_UNAVAILABLE naming the status (or the AWS error) and changes nothing; the
 * cache's hit, miss and expiry; the value in no record, message or log.
 */
import { resetDefenderPolicy } from '../../lambdas/shared/adapters/defender-policy';
import type { AuditItem, FunctionConfiguration } from '../../lambdas/shared/domain/types';
import { LocalSession } from '../../local/local-runner';
import type { StandInFault, StandInOperation, StandInRequest } from '../../local/prisma-console-standin';
import type { RunSummary } from '../../local/run-summary';
import { synthesizeTemplate } from '../../local/stack-template';
import { byName, decisionOf, e2eConfig, exampleEstate } from './e2e-helpers';

const SECRET = 'zero-impact/prisma-compute';
const HEALTHY = ['orders-api', 'cart-service', 'email-sender'];
/** Function → the fault its encode call gets in run 1. */
const ENCODE_FAULTS: Record<string, { fault: StandInFault; detail: RegExp }> = {
  'greeting-api': {
    fault: { status: 429, retryAfterSeconds: 2 },
    detail: /encode call failed: throttled \(HTTP 429\)/,
  },
  'notifications-worker': { fault: { status: 500 }, detail: /encode call failed: server \(HTTP 500\)/ },
  'partner-sync': { fault: { status: 403 }, detail: /encode call failed: forbidden \(HTTP 403\)/ },
  'batch-reconciler': { fault: { malformed: true }, detail: /encode call failed: malformed \(HTTP 200\)/ },
  'user-profile-service': { fault: { status: 401 }, detail: /encode call failed: unauthorized \(HTTP 401\)/ },
};
const NAMES = [...HEALTHY, ...Object.keys(ENCODE_FAULTS)];

const base = e2eConfig();
const config = e2eConfig({
  defender: {
    layerArn: base.defender.layerArn,
    environment: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper' },
    policySource: { console: 'https://eu-west-1.cloud.twistlock.com/eu-123456', credentialsSecret: SECRET },
  },
});

describe('issue 10: per-function TW_POLICY from the (stand-in) Prisma Cloud Console', () => {
  const estate = { ...exampleEstate(), ssmParameters: {} };
  estate.functions = estate.functions.filter((f) => NAMES.includes(String(f.configuration.FunctionName)));
  let session: LocalSession;
  let fault: (operation: StandInOperation, request: StandInRequest) => StandInFault = () => undefined;
  let initial: Map<string, FunctionConfiguration>;
  const runs: RunSummary[] = [];
  let items: AuditItem[] = [];
  const payloads: string[] = [];

  /** Puts a function back as it was before protection (its team removed the Defender, say). */
  const unprotect = (name: string): void => {
    const original = initial.get(name) as FunctionConfiguration;
    session.account.changeFunction(name, {
      Layers: original.Layers ?? [],
      Environment: original.Environment ?? { Variables: {} },
    } as Partial<FunctionConfiguration>);
  };
  const encodes = (name: string): number =>
    session.standInConsole?.requests.filter(
      (r) => r.operation === 'prisma:EncodeServerlessPolicy' && r.functionName === name && r.status === 200,
    ).length ?? 0;
  const policyOf = (name: string): string | undefined =>
    byName(session.account.functionConfigurations()).get(name)?.Environment?.Variables?.['TW_POLICY'];

  beforeAll(async () => {
    resetDefenderPolicy();
    session = await LocalSession.start({
      estate,
      config,
      template: synthesizeTemplate(config),
      logLevel: 'DEBUG',
      consoleFault: (operation, request) => fault(operation, request),
      onInvoke: (event) =>
        payloads.push(JSON.stringify(event.input), JSON.stringify(event.output ?? event.error ?? null)),
    });
    initial = byName(session.account.functionConfigurations());
    fault = (operation, request) =>
      operation === 'prisma:EncodeServerlessPolicy' ? ENCODE_FAULTS[request.functionName ?? '']?.fault : undefined;
    runs.push(await session.run()); // 0: healthy protected, faulty skipped
    fault = () => undefined;
    runs.push(await session.run()); // 1: the skipped ones protected now
    unprotect('orders-api');
    runs.push(await session.run()); // 2: orders-api again, from the cache
    session.advanceClock(25 * 60 * 60 * 1000);
    unprotect('orders-api');
    runs.push(await session.run()); // 3: orders-api again, the cache expired
    items = await session.auditItems();
  }, 240_000);

  afterAll(async () => {
    await session?.stop();
  });

  const runId = (index: number): string => (runs[index] as RunSummary).runId;

  it('protects every healthy function with its own distinct value from the Console', () => {
    // Assess
    expect(runs.map((r) => r.status)).toEqual(['SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED', 'SUCCEEDED']);
    for (const name of HEALTHY) expect(decisionOf(items, runId(0), name).outcome).toBe('PROTECTED');
    const values = NAMES.map(policyOf);
    expect(values).toEqual(NAMES.map((name) => session.standInConsole?.policyFor(name, estate.region)));
    expect(new Set(values).size).toBe(NAMES.length);
  });

  it('skips each Console failure as DEFENDER_POLICY_UNAVAILABLE naming the kind and HTTP status, changing nothing', () => {
    // Assess
    for (const [name, { detail }] of Object.entries(ENCODE_FAULTS)) {
      const decision = decisionOf(items, runId(0), name);
      expect({ name, outcome: decision.outcome, reasons: decision.reasons }).toEqual({
        name,
        outcome: 'SKIPPED',
        reasons: ['DEFENDER_POLICY_UNAVAILABLE'],
      });
      expect(decision.detail).toMatch(detail);
      expect(decision.detail).toMatch(/nothing was changed$/);
    }
    expect(runs[0]?.changed.map((c) => c.functionName).sort()).toEqual([...HEALTHY].sort());
    expect(runs[0]?.policyValues).toEqual({ fetched: 3, cached: 0, failed: 5 });
    // The next run, with the Console healthy again, protects them.
    for (const name of Object.keys(ENCODE_FAULTS)) expect(decisionOf(items, runId(1), name).outcome).toBe('PROTECTED');
    expect(runs[1]?.policyValues).toEqual({ fetched: 5, cached: 0, failed: 0 });
  });

  it('retries 429 and 500 before giving up, and re-authenticates once on a 401', () => {
    // Assess
    const run0 = (session.standInConsole?.requests ?? []).filter(
      (r) => r.operation === 'prisma:EncodeServerlessPolicy',
    );
    const attempts = (name: string): number => run0.filter((r) => r.functionName === name && r.status !== 200).length;
    expect(attempts('greeting-api')).toBeGreaterThan(1);
    expect(attempts('notifications-worker')).toBeGreaterThan(1);
    expect(attempts('user-profile-service')).toBe(2);
  });

  it('uses the cached value while it is younger than cacheHours, and asks the Console again after', () => {
    // Assess: run 2 took orders-api's value from the cache, run 3 (25 h later) from the Console.
    expect(decisionOf(items, runId(2), 'orders-api').outcome).toBe('PROTECTED');
    expect(runs[2]?.policyValues).toEqual({ fetched: 0, cached: 1, failed: 0 });
    expect(decisionOf(items, runId(3), 'orders-api').outcome).toBe('PROTECTED');
    expect(runs[3]?.policyValues).toEqual({ fetched: 1, cached: 0, failed: 0 });
    expect(encodes('orders-api')).toBe(2);
    expect(policyOf('orders-api')).toBe(session.standInConsole?.policyFor('orders-api', estate.region));
  });

  it('keeps the values out of every record, message, payload and log line', async () => {
    // Prepare
    const values = NAMES.map((name) => session.standInConsole?.policyFor(name, estate.region) ?? '');
    const outputs = [
      JSON.stringify(items),
      JSON.stringify(session.messages()),
      ...payloads,
      ...session.logs(),
      JSON.stringify(runs),
    ].join('\n');

    // Assess
    for (const value of values) expect(outputs.includes(value)).toBe(false);
    const { checkInvariants } = await import('../../local/invariants');
    const report = checkInvariants(await session.invariantInput());
    expect(report.violations.filter((v) => v.invariant === 6)).toEqual([]);
  });

  it('names the secret read error (a new container: deleted secret, wrong keys) and changes nothing', async () => {
    // Prepare: a new container reads the secret again.
    resetDefenderPolicy();
    session.account.putSecret(SECRET, JSON.stringify({ accessKey: 'wrong', secretKey: 'wrong' }));
    unprotect('cart-service');

    // Act
    const wrongKeys = await session.run();
    resetDefenderPolicy();
    session.account.deleteSecret(SECRET);
    session.advanceClock(25 * 60 * 60 * 1000); // the cache expires too
    const deleted = await session.run();
    const all = await session.auditItems();

    // Assess
    const first = decisionOf(all, wrongKeys.runId, 'cart-service');
    expect(first.reasons).toEqual(['DEFENDER_POLICY_UNAVAILABLE']);
    expect(first.detail).toMatch(/authenticate call failed: unauthorized \(HTTP 401\)/);
    const second = decisionOf(all, deleted.runId, 'cart-service');
    expect(second.reasons).toEqual(['DEFENDER_POLICY_UNAVAILABLE']);
    // The protect role may read only secret:NAME-??????: a deleted secret is AccessDeniedException to it.
    expect(second.detail).toMatch(
      /credentials secret zero-impact\/prisma-compute cannot be read \(AccessDeniedException\)/,
    );
    expect(policyOf('cart-service')).toBeUndefined();
  }, 120_000);
});
