/**
 * Issue 11: an unchanged repeat of a function's previous decision is recorded in the batch's one repeats item
 * (lambdas/shared/domain/repeats.ts), not in a full audit item; everything else keeps its full item. And a candidate
 * over the run's cap is deferred in assess, before any expensive read.
 */
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { GetFunctionCodeSigningConfigCommand, GetFunctionCommand } from '@aws-sdk/client-lambda';
import { ListProvisionedConcurrencyConfigsCommand } from '@aws-sdk/client-lambda';
import { GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { PublishCommand } from '@aws-sdk/client-sns';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import {
  BatchGetCommand,
  BatchWriteCommand,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { AuditWriteError, forgetParameterVersions, handler } from '../../lambdas/assess-batch/handler';
import { expandRepeats } from '../../lambdas/shared/domain/repeats';
import { redactConfiguration } from '../../lambdas/shared/domain/redact';
import type { AuditItem, FunctionConfiguration, InventoryItem, RunContext } from '../../lambdas/shared/domain/types';
import { baseConfig, fn, LAYER, mocks, prepare, silenceLogs, useRuntime, WRAPPER } from './gather-fixtures';
import { systemClock } from '../../lambdas/shared/adapters/rate-limiter';

const OURS = { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER };
const RUN_1: RunContext = { runId: 'run-1', startedAt: '2025-06-01T10:59:00.000Z', protectionAllowed: true };
const RUN_2: RunContext = { runId: 'run-2', startedAt: '2025-06-01T11:59:00.000Z', protectionAllowed: true };

function item(config: FunctionConfiguration, tags: Record<string, string> = {}): InventoryItem {
  return { configuration: redactConfiguration(config, OURS), tags };
}

const image = (name: string, over: Partial<FunctionConfiguration> = {}) =>
  fn(name, { PackageType: 'Image', CodeSha256: `sha-${name}`, RevisionId: `rev-${name}`, ...over });
const lowMemory = (name: string, over: Partial<FunctionConfiguration> = {}) =>
  fn(name, { MemorySize: 128, CodeSha256: `sha-${name}`, RevisionId: `rev-${name}`, ...over });

/** The state table's digests, as the last BatchWriteCommands stored them (function → item). */
let digests: Map<string, Record<string, unknown>>;
/** The audit table's keys (conditional puts) and items. */
let table: Map<string, AuditItem>;

function aws(): void {
  mocks.ddb.on(BatchGetCommand).callsFake(() => ({ Responses: { state: [...digests.values()] } }));
  mocks.ddb
    .on(BatchWriteCommand)
    .callsFake((input: { RequestItems: Record<string, Array<{ PutRequest: { Item: Record<string, unknown> } }>> }) => {
      for (const request of input.RequestItems['state'] ?? []) {
        digests.set(String(request.PutRequest.Item['functionName']), request.PutRequest.Item);
      }
      return {};
    });
  mocks.ddb.on(PutCommand).callsFake((input: { Item: AuditItem }) => {
    const key = `${input.Item.functionName}|${input.Item.sk}`;
    if (table.has(key))
      throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    table.set(key, input.Item);
    return {};
  });
  mocks.ddb.on(QueryCommand).callsFake((input: { ExpressionAttributeValues: Record<string, string> }) => ({
    Items: [...table.values()].filter(
      (i) =>
        i.functionName === input.ExpressionAttributeValues[':p'] &&
        i.sk.startsWith(input.ExpressionAttributeValues[':s'] ?? ''),
    ),
  }));
  mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
  mocks.lambda.on(ListProvisionedConcurrencyConfigsCommand).resolves({ ProvisionedConcurrencyConfigs: [] });
  mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: { State: 'Active', LastUpdateStatus: 'Successful' } });
  mocks.lambda.on(GetFunctionCodeSigningConfigCommand).resolves({});
  mocks.cloudwatch.on(GetMetricDataCommand).callsFake((input: { MetricDataQueries: Array<{ Id: string }> }) => ({
    MetricDataResults: input.MetricDataQueries.map((q) => ({
      Id: q.Id,
      StatusCode: 'Complete',
      Values: [],
      Timestamps: [],
    })),
  }));
}

function written(run: RunContext): AuditItem[] {
  return [...table.values()].filter((i) => i.runId === run.runId);
}

beforeEach(() => {
  prepare();
  forgetParameterVersions();
  digests = new Map();
  table = new Map();
  useRuntime();
  aws();
});
afterEach(silenceLogs);

describe('assess-batch, issue 11: compact repeats', () => {
  it('records an unchanged repeat in one repeats item pointing at the full item, with no digest write', async () => {
    const batch = (run: RunContext) => ({ Items: [item(image('a')), item(lowMemory('b'))], BatchInput: run });
    await handler(batch(RUN_1));
    const first = written(RUN_1);
    expect(first.map((i) => [i.functionName, i.kind, i.outcome])).toEqual([
      ['a', 'decision', 'SKIPPED'],
      ['b', 'decision', 'SKIPPED'],
    ]);
    // The digest names the full item and the facts it was decided on.
    expect(digests.get('a')).toMatchObject({ recordedAs: first[0]!.sk, recordedUntil: first[0]!.expiresAt });
    expect(digests.get('a')?.['fingerprint']).toEqual(expect.any(String));
    const digestWrites = mocks.ddb.commandCalls(BatchWriteCommand).length;
    const published = mocks.sns.commandCalls(PublishCommand).length;

    const out = await handler(batch(RUN_2));

    const second = written(RUN_2);
    expect(second).toHaveLength(1);
    expect(second[0]).toMatchObject({ functionName: '#run', kind: 'repeats', outcome: 'REPEATS', runId: 'run-2' });
    expect(JSON.stringify(second[0]).length).toBeLessThan(1_000);
    expect(out.counts).toEqual({ SKIPPED: 2 });
    expect(mocks.ddb.commandCalls(BatchWriteCommand)).toHaveLength(digestWrites);
    expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(published);
    // Every reader sees one decision per function, with the full item's key for its checks.
    const expanded = expandRepeats(second);
    expect(expanded.map((i) => [i.functionName, i.outcome, i.reasons, i.sk, i.sameAs])).toEqual([
      ['a', 'SKIPPED', ['PACKAGE_IMAGE'], `${RUN_2.startedAt}#run-2#1-decision`, first[0]!.sk],
      ['b', 'SKIPPED', ['MEMORY_LOW'], `${RUN_2.startedAt}#run-2#1-decision`, first[1]!.sk],
    ]);
    expect(expanded[0]).toMatchObject({ kind: 'decision', repeat: true, primaryReason: 'PACKAGE_IMAGE' });
  });

  it.each([
    ['a new RevisionId (a deploy)', (): InventoryItem => item(image('a', { RevisionId: 'rev-a-2' }))],
    ['new code', (): InventoryItem => item(image('a', { CodeSha256: 'sha-a-2' }))],
    ['a changed tag', (): InventoryItem => item(image('a'), { team: 'other' })],
  ])('writes a full item again after %s, even for the same decision', async (_what, changed) => {
    await handler({ Items: [item(image('a'))], BatchInput: RUN_1 });
    await handler({ Items: [changed()], BatchInput: RUN_2 });
    expect(written(RUN_2).map((i) => [i.functionName, i.kind])).toEqual([['a', 'decision']]);
  });

  it('writes a full item for a changed decision, and keeps notifying it', async () => {
    await handler({ Items: [item(image('a'))], BatchInput: RUN_1 });
    const published = mocks.sns.commandCalls(PublishCommand).length;
    await handler({ Items: [item(image('a', { MemorySize: 128 }))], BatchInput: RUN_2 });
    expect(written(RUN_2)).toEqual([
      expect.objectContaining({ kind: 'decision', reasons: ['PACKAGE_IMAGE', 'MEMORY_LOW'] }),
    ]);
    expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(published + 1);
  });

  it('keeps full items with notifications.skips "always" (each repeat owes its notice)', async () => {
    useRuntime({ ...baseConfig(), notifications: { skips: 'always' } });
    await handler({ Items: [item(image('a'))], BatchInput: RUN_1 });
    await handler({ Items: [item(image('a'))], BatchInput: RUN_2 });
    expect(written(RUN_2)).toEqual([expect.objectContaining({ kind: 'decision', repeat: true })]);
    expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(2);
  });

  it('writes a full item again when the one a repeat would point at expires before the repeats item', async () => {
    await handler({ Items: [item(image('a'))], BatchInput: RUN_1 });
    const stored = digests.get('a')!;
    digests.set('a', { ...stored, recordedUntil: Math.floor(Date.parse(RUN_2.startedAt) / 1000) + 86_400 });
    await handler({ Items: [item(image('a'))], BatchInput: RUN_2 });
    expect(written(RUN_2).map((i) => i.kind)).toEqual(['decision']);
  });

  it('never compacts a digest written without a fingerprint (protect, or before issue 11)', async () => {
    await handler({ Items: [item(image('a'))], BatchInput: RUN_1 });
    const { fingerprint: _dropped, ...withoutFingerprint } = digests.get('a')!;
    digests.set('a', withoutFingerprint);
    await handler({ Items: [item(image('a'))], BatchInput: RUN_2 });
    expect(written(RUN_2).map((i) => i.kind)).toEqual(['decision']);
  });

  it('a retry: the repeats the first attempt recorded stand, everything else gets its own item once', async () => {
    await handler({ Items: [item(image('a')), item(image('b'))], BatchInput: RUN_1 });
    // The first attempt of run 2 recorded "a" as a repeat (and died); by the retry "b" is a repeat too.
    await handler({ Items: [item(image('a')), item(image('b', { MemorySize: 128 }))], BatchInput: RUN_2 });
    const before = written(RUN_2);
    expect(before.map((i) => [i.functionName, i.kind])).toEqual([
      ['#run', 'repeats'],
      ['b', 'decision'],
    ]);
    digests.set('b', {
      ...digests.get('a')!,
      functionName: 'b',
      recordedAs: before[1]!.sk,
      reasons: ['PACKAGE_IMAGE'],
    });

    const out = await handler({ Items: [item(image('a')), item(image('b'))], BatchInput: RUN_2 });

    // Nothing new: "a" stands in the repeats item, "b" keeps the decision the first attempt wrote.
    expect(written(RUN_2)).toEqual(before);
    expect(out.counts).toEqual({ SKIPPED: 2 });
    expect(
      expandRepeats(written(RUN_2))
        .map((i) => i.functionName)
        .sort(),
    ).toEqual(['a', 'b']);
  });

  it('a repeats item the table refuses fails the batch for a retry, with nothing else recorded for those functions', async () => {
    await handler({ Items: [item(image('a')), item(lowMemory('b'))], BatchInput: RUN_1 });
    mocks.ddb.on(PutCommand, { Item: { functionName: '#run' } }).rejects(
      Object.assign(new Error('Throughput exceeds the current capacity'), {
        name: 'ProvisionedThroughputExceededException',
      }),
    );
    await expect(
      handler({ Items: [item(image('a')), item(lowMemory('b', { RevisionId: 'rev-b-2' }))], BatchInput: RUN_2 }),
    ).rejects.toThrow(AuditWriteError);
    // "b" changed (a full item); "a" is neither a repeat nor a FAILED over it.
    expect(written(RUN_2).map((i) => [i.functionName, i.kind])).toEqual([['b', 'decision']]);
  });
});

describe('assess-batch, issue 11: deferral is decided before the protect step', () => {
  /** The run counter item as DynamoDB would keep it (conditional ADD/DELETE), and the lease held by the run. */
  function slots(max: number, claimed: string[] = []): { claimed: Set<string> } {
    const run = { protections: claimed.length, claimed: new Set(claimed) };
    mocks.ddb.on(UpdateCommand).callsFake((input: UpdateCommandInput) => {
      const key = (input.Key as { pk: string }).pk;
      // The lease, and the run-wide control-plane budget's schedule (control-plane-budget.ts).
      if (key === 'LOCK' || key.startsWith('BUDGET#')) return {};
      if (key !== `RUN#${RUN_2.runId}`) throw new Error(`unexpected update of ${key}`);
      const values = input.ExpressionAttributeValues as Record<string, unknown>;
      const name = values[':name'] as string;
      if (input.UpdateExpression?.startsWith('ADD protections :one')) {
        if (run.protections >= max || run.claimed.has(name)) {
          throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
        }
        run.protections += 1;
        run.claimed.add(name);
        return {};
      }
      if (!run.claimed.has(name)) {
        throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
      }
      run.protections -= 1;
      run.claimed.delete(name);
      return {};
    });
    mocks.ddb.on(GetCommand).callsFake(() => ({ Item: { pk: `RUN#${RUN_2.runId}`, ...run } }));
    return run;
  }
  const eligible = (name: string) => fn(name, { CodeSha256: `sha-${name}`, RevisionId: `rev-${name}` });

  beforeEach(() => useRuntime({ ...baseConfig({ mode: 'protect' }), maxProtectionsPerRun: 1 }));

  it('a candidate over the cap is DEFERRED in assess: no metrics, no control-plane read, no protect step, no notice', async () => {
    const run = slots(1);
    const out = await handler({ Items: [item(eligible('a')), item(eligible('b'))], BatchInput: RUN_2 });

    expect(out.eligible.map((e) => [e.functionName, e.slotClaimed])).toEqual([['a', true]]);
    expect([...run.claimed]).toEqual(['a']);
    expect(written(RUN_2)).toEqual([
      expect.objectContaining({
        functionName: 'b',
        outcome: 'DEFERRED',
        detail: expect.stringContaining('maxProtectionsPerRun (1)'),
      }),
    ]);
    expect(out.counts).toEqual({ DEFERRED: 1 });
    const measured = mocks.cloudwatch
      .commandCalls(GetMetricDataCommand)
      .flatMap((c) => c.args[0].input.MetricDataQueries ?? [])
      .map((q) => q.MetricStat?.Metric?.Dimensions?.[0]?.Value);
    expect(new Set(measured)).toEqual(new Set(['a']));
    expect(
      mocks.lambda.commandCalls(ListProvisionedConcurrencyConfigsCommand).map((c) => c.args[0].input.FunctionName),
    ).toEqual([expect.stringContaining(':a')]);
    expect(mocks.sns.commandCalls(PublishCommand)).toHaveLength(0);
  });

  it('a candidate the expensive reads skip gives its slot back to the next one', async () => {
    const run = slots(1);
    mocks.lambda.on(ListProvisionedConcurrencyConfigsCommand).callsFake((input: { FunctionName: string }) => ({
      ProvisionedConcurrencyConfigs: input.FunctionName.endsWith(':a')
        ? [{ AllocatedProvisionedConcurrentExecutions: 2 }]
        : [],
    }));

    const out = await handler({ Items: [item(eligible('a')), item(eligible('b'))], BatchInput: RUN_2 });

    expect(out.eligible.map((e) => e.functionName)).toEqual(['b']);
    expect([...run.claimed]).toEqual(['b']);
    expect(written(RUN_2)).toEqual([
      expect.objectContaining({ functionName: 'a', outcome: 'SKIPPED', reasons: ['PROVISIONED_CONCURRENCY'] }),
    ]);
  });

  it('a retried batch finds the slot it already holds, and takes no second one', async () => {
    const run = slots(1, ['a']);
    const out = await handler({ Items: [item(eligible('a'))], BatchInput: RUN_2 });
    expect(out.eligible.map((e) => e.functionName)).toEqual(['a']);
    expect(run).toMatchObject({ protections: 1 });
  });

  it('dry-run claims no slot: every candidate gets its reads and is WOULD_PROTECT', async () => {
    useRuntime({ ...baseConfig(), maxProtectionsPerRun: 1 });
    const out = await handler({ Items: [item(eligible('a')), item(eligible('b'))], BatchInput: RUN_2 });
    expect(out.counts).toEqual({ WOULD_PROTECT: 2 });
    const updated = mocks.ddb.commandCalls(UpdateCommand).map((c) => (c.args[0].input.Key as { pk: string }).pk);
    expect(updated.filter((pk) => pk.startsWith('RUN#') || pk === 'LOCK')).toEqual([]);
  });
});

describe('assess-batch, issue 11: the expensive facts of an unchanged function are read once a day', () => {
  const candidate = () => fn('c', { CodeSha256: 'sha-c', RevisionId: 'rev-c' });
  const reads = () => ({
    metrics: mocks.cloudwatch.commandCalls(GetMetricDataCommand).length,
    provisioned: mocks.lambda.commandCalls(ListProvisionedConcurrencyConfigsCommand).length,
  });

  it('dry-run: an unchanged WOULD_PROTECT repeats its last full check for 24 h, then is read again', async () => {
    await handler({ Items: [item(candidate())], BatchInput: RUN_1 });
    expect(reads()).toEqual({ metrics: 1, provisioned: 1 });
    const checkedAt = digests.get('c')?.['checkedAt'];
    expect(checkedAt).toBe(new Date(systemClock.now()).toISOString());

    // An hour later: nothing read, the decision is a compact repeat.
    jest.spyOn(systemClock, 'now').mockReturnValue(Date.parse(RUN_2.startedAt) + 60_000);
    const out = await handler({ Items: [item(candidate())], BatchInput: RUN_2 });
    expect(out.counts).toEqual({ WOULD_PROTECT: 1 });
    expect(reads()).toEqual({ metrics: 1, provisioned: 1 });
    expect(written(RUN_2).map((i) => i.kind)).toEqual(['repeats']);

    // A day later: read again; still the same, so still a repeat, and the digest remembers the new check.
    const later = Date.parse(RUN_2.startedAt) + 25 * 60 * 60 * 1000;
    jest.spyOn(systemClock, 'now').mockReturnValue(later);
    const run3: RunContext = { ...RUN_2, runId: 'run-3', startedAt: new Date(later - 60_000).toISOString() };
    await handler({ Items: [item(candidate())], BatchInput: run3 });
    expect(reads()).toEqual({ metrics: 2, provisioned: 2 });
    expect(written(run3).map((i) => i.kind)).toEqual(['repeats']);
    expect(digests.get('c')?.['checkedAt']).toBe(new Date(later).toISOString());
  });

  it.each(['dry-run', 'protect'] as const)(
    '%s: an unchanged skip the expensive facts decided (RECENTLY_THROTTLED) is carried for 24 h, FACTS_MISSING never',
    async (mode) => {
      useRuntime({ ...baseConfig({ mode }) });
      mocks.ddb.on(UpdateCommand).resolves({});
      mocks.cloudwatch.on(GetMetricDataCommand).callsFake((input: { MetricDataQueries: Array<{ Id: string }> }) => ({
        MetricDataResults: input.MetricDataQueries.map((q) => ({
          Id: q.Id,
          StatusCode: 'Complete',
          Values: q.Id.startsWith('t') ? [4] : [],
          Timestamps: q.Id.startsWith('t') ? [new Date(systemClock.now() - 3_600_000)] : [],
        })),
      }));
      await handler({ Items: [item(candidate())], BatchInput: RUN_1 });
      expect(written(RUN_1)).toEqual([
        expect.objectContaining({ outcome: 'SKIPPED', reasons: ['RECENTLY_THROTTLED'] }),
      ]);
      expect(reads().metrics).toBe(1);

      await handler({ Items: [item(candidate())], BatchInput: RUN_2 });
      expect(reads().metrics).toBe(1);
      expect(expandRepeats(written(RUN_2))).toEqual([
        expect.objectContaining({ functionName: 'c', outcome: 'SKIPPED', reasons: ['RECENTLY_THROTTLED'] }),
      ]);
      // Run 1 claimed a slot in protect mode (and gave it back); run 2 claims none for it.
      const claims = mocks.ddb.commandCalls(UpdateCommand).map((c) => (c.args[0].input.Key as { pk: string }).pk);
      expect(claims.filter((pk) => pk === 'RUN#run-1')).toHaveLength(mode === 'protect' ? 2 : 0);
      expect(claims.filter((pk) => pk === 'RUN#run-2')).toHaveLength(0);

      // A skip for facts that could not be read is read again the next run.
      digests.set('c', { ...digests.get('c')!, reasons: ['FACTS_MISSING'] });
      await handler({ Items: [item(candidate())], BatchInput: { ...RUN_2, runId: 'run-3' } });
      expect(reads().metrics).toBe(2);
    },
  );

  it('dry-run: a changed candidate (new RevisionId) is read at once', async () => {
    await handler({ Items: [item(candidate())], BatchInput: RUN_1 });
    await handler({ Items: [item(fn('c', { CodeSha256: 'sha-c', RevisionId: 'rev-c-2' }))], BatchInput: RUN_2 });
    expect(reads()).toEqual({ metrics: 2, provisioned: 2 });
  });

  it("protect: a healthy protected function's readiness is read once a day, an unhealthy one's every run", async () => {
    // TW_POLICY as a literal: an SSM-sourced value is compared with the function's own every run (GetFunction,
    // issue 8 item 9), which reads the readiness anyway.
    const policy = 'p'.repeat(40);
    useRuntime({
      mode: 'protect',
      defender: { layerArn: LAYER, environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: policy } },
    });
    mocks.ssm.on(GetParameterCommand).resolves({ Parameter: { Value: policy, Type: 'SecureString' } });
    const protectedFn = (): FunctionConfiguration =>
      fn('p', {
        CodeSha256: 'sha-p',
        RevisionId: 'rev-p',
        Layers: [{ Arn: LAYER }],
        Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: policy } },
      });
    mocks.lambda.on(GetFunctionCommand).resolves({
      Configuration: {
        State: 'Active',
        LastUpdateStatus: 'Successful',
        Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: policy } },
      },
    });
    const ours = { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: policy };
    const item = (config: FunctionConfiguration): InventoryItem => ({
      configuration: redactConfiguration(config, ours),
      tags: {},
    });
    await handler({ Items: [item(protectedFn())], BatchInput: RUN_1 });
    expect(written(RUN_1)).toEqual([expect.objectContaining({ outcome: 'ALREADY_PROTECTED', warnings: [] })]);
    expect(mocks.lambda.commandCalls(GetFunctionCommand)).toHaveLength(1);

    await handler({ Items: [item(protectedFn())], BatchInput: RUN_2 });
    expect(mocks.lambda.commandCalls(GetFunctionCommand)).toHaveLength(1);
    expect(written(RUN_2).map((i) => i.kind)).toEqual(['repeats']);

    digests.set('p', { ...digests.get('p')!, warnings: ['PROTECTION_UNHEALTHY'] });
    await handler({ Items: [item(protectedFn())], BatchInput: { ...RUN_2, runId: 'run-3' } });
    expect(mocks.lambda.commandCalls(GetFunctionCommand)).toHaveLength(2);
  });
});

describe('assess-batch, issue 11: an unchanged protected function with our SSM-sourced value', () => {
  const policy = 'p'.repeat(40);
  const ours = { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: policy };
  const protectedFn = (): FunctionConfiguration =>
    fn('p', {
      CodeSha256: 'sha-p',
      RevisionId: 'rev-p',
      Layers: [{ Arn: LAYER }],
      Environment: { Variables: { ...ours } },
    });
  const inventory = (): InventoryItem => ({ configuration: redactConfiguration(protectedFn(), ours), tags: {} });
  const version = (v: number | undefined): void => {
    mocks.ssm.on(GetParameterCommand).resolves({ Parameter: { Value: policy, Type: 'SecureString', Version: v } });
  };

  beforeEach(() => {
    useRuntime(baseConfig({ mode: 'protect' }));
    mocks.lambda.on(GetFunctionCommand).resolves({
      Configuration: { State: 'Active', LastUpdateStatus: 'Successful', Environment: { Variables: { ...ours } } },
    });
  });

  it('is carried for a day without GetFunction while our parameter keeps its version; a new version reads it again', async () => {
    version(1);
    await handler({ Items: [inventory()], BatchInput: RUN_1 });
    expect(written(RUN_1)).toEqual([expect.objectContaining({ outcome: 'ALREADY_PROTECTED', warnings: [] })]);
    expect(mocks.lambda.commandCalls(GetFunctionCommand)).toHaveLength(1);

    await handler({ Items: [inventory()], BatchInput: RUN_2 });
    expect(mocks.lambda.commandCalls(GetFunctionCommand)).toHaveLength(1);
    expect(expandRepeats(written(RUN_2))).toEqual([
      expect.objectContaining({ functionName: 'p', outcome: 'ALREADY_PROTECTED', repeat: true }),
    ]);

    // Our value rotated (a new Version, seen once the container's cache expires): compared again at once.
    version(2);
    jest.spyOn(systemClock, 'now').mockReturnValue(Date.parse(RUN_2.startedAt) + 10 * 60 * 1000);
    await handler({ Items: [inventory()], BatchInput: { ...RUN_2, runId: 'run-3' } });
    expect(mocks.lambda.commandCalls(GetFunctionCommand)).toHaveLength(2);
  });

  it('is never carried when the version cannot be read', async () => {
    version(undefined);
    await handler({ Items: [inventory()], BatchInput: RUN_1 });
    await handler({ Items: [inventory()], BatchInput: RUN_2 });
    expect(mocks.lambda.commandCalls(GetFunctionCommand)).toHaveLength(2);
  });
});
