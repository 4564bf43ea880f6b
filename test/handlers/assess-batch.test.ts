import { GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { DescribeRouteTablesCommand } from '@aws-sdk/client-ec2';
import {
  GetCodeSigningConfigCommand,
  GetFunctionCodeSigningConfigCommand,
  GetFunctionCommand,
  ListProvisionedConcurrencyConfigsCommand,
  TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import { PublishCommand } from '@aws-sdk/client-sns';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { BatchGetCommand, BatchWriteCommand, PutCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { AuditWriteError, handler } from '../../lambdas/assess-batch/handler';
import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { redactConfiguration } from '../../lambdas/shared/domain/redact';
import type { AuditItem, FunctionConfiguration, InventoryItem, RunContext } from '../../lambdas/shared/domain/types';
import {
  arn,
  baseConfig,
  CANARY,
  captureLogs,
  captureMetrics,
  everythingSent,
  fn,
  LAYER,
  mocks,
  prepare,
  silenceLogs,
  useRuntime,
  WRAPPER,
} from './gather-fixtures';

const RUN: RunContext = { runId: 'run-9', startedAt: '2025-06-01T11:59:00.000Z', protectionAllowed: true };
const OURS = { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER };

/** An inventory item as take-inventory writes it (redacted). */
function item(config: FunctionConfiguration, tags: Record<string, string> = {}): InventoryItem {
  return { configuration: redactConfiguration(config, OURS), tags };
}

const eligible = () => fn('orders');
const lowMemory = () => fn('thumbnails', { MemorySize: 128 });
/** The value of our SSM-sourced TW_POLICY (a secret: it never leaves the handler). */
const POLICY_VALUE = 'p'.repeat(40);
const protectedFn = () =>
  fn('payments', {
    Layers: [{ Arn: LAYER.replace(/:32$/, ':31') }],
    Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY_VALUE, API_KEY: CANARY } },
  });
const vpcFn = () =>
  fn('reports', { VpcConfig: { SubnetIds: ['subnet-1'], SecurityGroupIds: ['sg-1'], VpcId: 'vpc-1' } });

type Series = Record<string, { throttles?: number[]; concurrency?: number[] }>;

function metrics(series: Series = {}): void {
  mocks.cloudwatch.on(GetMetricDataCommand).callsFake((input: { MetricDataQueries: MetricDataQuery[] }) => ({
    MetricDataResults: input.MetricDataQueries.map((q) => {
      const name = q.MetricStat?.Metric?.Dimensions?.[0]?.Value ?? '';
      const values = (q.Id!.startsWith('t') ? series[name]?.throttles : series[name]?.concurrency) ?? [];
      return {
        Id: q.Id,
        StatusCode: 'Complete',
        Values: values,
        Timestamps: values.map(() => new Date('2025-06-01T11:00:00Z')),
      };
    }),
  }));
}

function healthyAws(previous: Array<Record<string, unknown>> = []): void {
  mocks.ddb.on(BatchGetCommand).resolves({ Responses: { state: previous } });
  mocks.ddb.on(PutCommand).resolves({});
  mocks.ddb.on(BatchWriteCommand).resolves({});
  mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
  mocks.lambda.on(ListProvisionedConcurrencyConfigsCommand).resolves({ ProvisionedConcurrencyConfigs: [] });
  mocks.lambda.on(GetFunctionCommand).resolves({
    Configuration: { State: 'Active', LastUpdateStatus: 'Successful' },
  });
  mocks.lambda.on(GetFunctionCodeSigningConfigCommand).resolves({});
  mocks.ssm.on(GetParameterCommand).resolves({ Parameter: { Value: POLICY_VALUE, Type: 'SecureString' } });
  metrics();
}

function audited(): AuditItem[] {
  return mocks.ddb.commandCalls(PutCommand).map((c) => c.args[0].input.Item as AuditItem);
}

function auditOf(name: string): AuditItem {
  const found = audited().find((i) => i.functionName === name);
  if (found === undefined) throw new Error(`no audit item for ${name}`);
  return found;
}

let sleeps: number[];
beforeEach(() => {
  ({ sleeps } = prepare());
});
afterEach(silenceLogs);

describe('assess-batch in dry-run', () => {
  it('records WOULD_PROTECT, SKIPPED and ALREADY_PROTECTED, reading expensive facts only for candidates', async () => {
    useRuntime();
    healthyAws();
    const emitted = captureMetrics();

    const out = await handler({
      Items: [item(eligible()), item(lowMemory(), { team: 'media' }), item(protectedFn())],
      BatchInput: RUN,
    });

    expect(out).toEqual({ eligible: [], counts: { WOULD_PROTECT: 1, SKIPPED: 1, ALREADY_PROTECTED: 1 } });
    expect(mocks.cloudwatch).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
    expect(mocks.lambda).toHaveReceivedCommandTimes(ListProvisionedConcurrencyConfigsCommand, 1);
    // GetFunction for the candidate and, for its readiness, the protected function (issue 8 item 10)
    expect(mocks.lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 2);
    expect(mocks.lambda).toHaveReceivedCommandWith(GetFunctionCommand, { FunctionName: arn('orders') });
    expect(mocks.lambda).toHaveReceivedCommandWith(GetFunctionCommand, { FunctionName: arn('payments') });
    expect(mocks.lambda).toHaveReceivedCommandTimes(GetFunctionCodeSigningConfigCommand, 1);
    expect(mocks.ec2).toHaveReceivedCommandTimes(DescribeRouteTablesCommand, 0);
    // previous decisions, then the candidates' back-off records
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchGetCommand, 2);
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 3);
    // The notified skip's digest at once (its sent mark), the others' at the batch's end.
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 2);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);

    expect(auditOf('orders')).toMatchObject({ outcome: 'WOULD_PROTECT', reasons: [], mode: 'dry-run', runId: 'run-9' });
    const skipped = auditOf('thumbnails');
    expect(skipped).toMatchObject({
      outcome: 'SKIPPED',
      reasons: ['MEMORY_LOW'],
      primaryReason: 'MEMORY_LOW',
      owner: 'media',
      account: '123456789012',
      region: 'eu-west-1',
      repeat: false,
    });
    expect(skipped.checks.find((c) => c.gate === 9)).toMatchObject({
      status: 'not_evaluated',
      observed: 'not gathered: skipped by other gates',
    });
    expect(skipped.checks.find((c) => c.gate === 14)).toMatchObject({ status: 'pass' });
    const already = auditOf('payments');
    expect(already).toMatchObject({ outcome: 'ALREADY_PROTECTED', warnings: ['DEFENDER_OUTDATED'] });

    const publish = mocks.sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(publish.TopicArn).toBe('arn:aws:sns:eu-west-1:123456789012:skips');
    expect(publish.MessageAttributes).toEqual({
      kind: { DataType: 'String', StringValue: 'decision' },
      outcome: { DataType: 'String', StringValue: 'SKIPPED' },
      functionName: { DataType: 'String', StringValue: 'thumbnails' },
      account: { DataType: 'String', StringValue: '123456789012' },
      region: { DataType: 'String', StringValue: 'eu-west-1' },
      owner: { DataType: 'String', StringValue: 'media' },
      runId: { DataType: 'String', StringValue: 'run-9' },
      // Issue 9: the notice's identity (its audit item's key), the same on a resend after a crash.
      noticeId: { DataType: 'String', StringValue: 'thumbnails|2025-06-01T11:59:00.000Z#run-9#1-decision' },
      reasons: { DataType: 'String.Array', StringValue: '["MEMORY_LOW"]' },
    });
    expect(JSON.parse(publish.Message!)).toMatchObject({
      reasons: [{ code: 'MEMORY_LOW', message: 'High Risk - OOM', remediation: 'raise MemorySize to 256 MB' }],
    });

    const digests = mocks.ddb.commandCalls(BatchWriteCommand).map((c) => c.args[0].input.RequestItems!['state']!);
    // thumbnails' digest right after its notice (the sent mark), then the others' at the batch's end
    expect(digests.map((d) => d.map((r) => r.PutRequest?.Item?.['functionName']))).toEqual([
      ['thumbnails'],
      ['orders', 'payments'],
    ]);
    expect(emitted).toEqual([
      { name: 'BatchDecisions', value: 1, dimensions: { Outcome: 'WOULD_PROTECT' } },
      { name: 'BatchDecisions', value: 1, dimensions: { Outcome: 'SKIPPED' } },
      { name: 'BatchDecisions', value: 1, dimensions: { Outcome: 'ALREADY_PROTECTED' } },
      { name: 'BatchSkips', value: 1, dimensions: { Reason: 'MEMORY_LOW' } },
    ]);
  });

  it('does not notify an unchanged skip with notifications.skips "changed", and does with "always"', async () => {
    const previous = [{ functionName: 'thumbnails', outcome: 'SKIPPED', reasons: ['MEMORY_LOW'], warnings: [] }];
    useRuntime();
    healthyAws(previous);

    await handler({ Items: [item(lowMemory())], BatchInput: RUN });

    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
    expect(auditOf('thumbnails').repeat).toBe(true);

    prepare();
    useRuntime(baseConfig({ notifications: { skips: 'always' } }));
    healthyAws(previous);

    await handler({ Items: [item(lowMemory())], BatchInput: RUN });

    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
  });

  it('notifies a skip whose reasons changed', async () => {
    useRuntime();
    healthyAws([{ functionName: 'thumbnails', outcome: 'SKIPPED', reasons: ['TIMEOUT_NEAR_LIMIT'], warnings: [] }]);

    await handler({ Items: [item(lowMemory())], BatchInput: RUN });

    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
  });

  it('skips with FACTS_MISSING when the metrics call is throttled, without any control-plane read', async () => {
    useRuntime();
    healthyAws();
    mocks.cloudwatch
      .on(GetMetricDataCommand)
      .rejects(Object.assign(new Error('Rate exceeded'), { name: 'Throttling' }));

    const out = await handler({ Items: [item(eligible())], BatchInput: RUN });

    expect(out.counts).toEqual({ SKIPPED: 1 });
    expect(auditOf('orders').reasons).toEqual(['FACTS_MISSING']);
    expect(mocks.lambda).toHaveReceivedCommandTimes(ListProvisionedConcurrencyConfigsCommand, 0);
    expect(mocks.lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 0);
  });

  it.each([
    ['ListProvisionedConcurrencyConfigs is throttled', ListProvisionedConcurrencyConfigsCommand],
    ['GetFunction is denied', GetFunctionCommand],
  ] as const)('skips with FACTS_MISSING when %s', async (_why, command) => {
    useRuntime();
    healthyAws();
    mocks.lambda
      .on(command)
      .rejects(
        command === GetFunctionCommand
          ? Object.assign(new Error('denied'), { name: 'AccessDeniedException' })
          : new TooManyRequestsException({ message: 'Rate exceeded', $metadata: {} }),
      );

    const out = await handler({ Items: [item(eligible())], BatchInput: RUN });

    expect(out.counts).toEqual({ SKIPPED: 1 });
    expect(auditOf('orders').reasons).toEqual(['FACTS_MISSING']);
    expect(mocks.lambda).toHaveReceivedCommandTimes(ListProvisionedConcurrencyConfigsCommand, 1);
    expect(mocks.lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 1);
  });

  it('skips a function with provisioned concurrency, recent throttles or saturated concurrency', async () => {
    useRuntime();
    healthyAws();
    metrics({ busy: { throttles: [3] }, hot: { concurrency: [9] } });
    mocks.lambda
      .on(ListProvisionedConcurrencyConfigsCommand, { FunctionName: arn('trader') })
      .resolves({ ProvisionedConcurrencyConfigs: [{ RequestedProvisionedConcurrentExecutions: 100 }] });
    mocks.lambda
      .on(GetFunctionCommand, { FunctionName: arn('hot') })
      .resolves({ Configuration: { State: 'Active' }, Concurrency: { ReservedConcurrentExecutions: 10 } });

    await handler({ Items: [item(fn('trader')), item(fn('busy')), item(fn('hot'))], BatchInput: RUN });

    expect(auditOf('trader').reasons).toEqual(['PROVISIONED_CONCURRENCY']);
    expect(auditOf('busy').reasons).toEqual(['RECENTLY_THROTTLED']);
    expect(auditOf('hot').reasons).toEqual(['CONCURRENCY_SATURATED']);
    expect(mocks.lambda).toHaveReceivedCommandTimes(ListProvisionedConcurrencyConfigsCommand, 2);
    expect(mocks.lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 2);
  });

  it('reads VPC egress for VPC candidates: NAT passes, an internet gateway only warns', async () => {
    useRuntime();
    healthyAws();
    mocks.ec2.on(DescribeRouteTablesCommand).resolves({
      RouteTables: [
        {
          VpcId: 'vpc-1',
          Associations: [{ SubnetId: 'subnet-1' }],
          Routes: [{ DestinationCidrBlock: '0.0.0.0/0', GatewayId: 'igw-1', State: 'active' }],
        },
      ],
    });

    await handler({ Items: [item(vpcFn())], BatchInput: { ...RUN, runId: 'run-vpc' } });

    expect(auditOf('reports')).toMatchObject({ outcome: 'WOULD_PROTECT', warnings: ['VPC_NO_NAT'] });
    expect(mocks.ec2).toHaveReceivedCommandTimes(DescribeRouteTablesCommand, 1);
    expect(mocks.ec2).toHaveReceivedCommandWith(DescribeRouteTablesCommand, {
      Filters: [{ Name: 'association.subnet-id', Values: ['subnet-1'] }],
    });
  });

  it('paces control-plane reads at its share of the quota', async () => {
    useRuntime();
    healthyAws();
    const items = ['a', 'b', 'c', 'd'].map((n) => item(fn(n)));

    await handler({ Items: items, BatchInput: RUN });

    // 5 requests/s shared by 5 workers: 1 request/s each, no burst → each of the 8 control-plane reads after the
    // first (ListProvisionedConcurrencyConfigs and GetFunctionCodeSigningConfig per candidate) waits one more second.
    expect(mocks.lambda).toHaveReceivedCommandTimes(ListProvisionedConcurrencyConfigsCommand, 4);
    expect(mocks.lambda).toHaveReceivedCommandTimes(GetFunctionCodeSigningConfigCommand, 4);
    expect(sleeps.filter((ms) => ms >= 1000)).toEqual([1000, 2000, 3000, 4000, 5000, 6000, 7000]);
  });

  it('paces at the whole budget when the run has a single worker', async () => {
    useRuntime();
    healthyAws();
    const items = ['a', 'b', 'c', 'd'].map((n) => item(fn(n)));

    await handler({ Items: items, BatchInput: { ...RUN, workers: 1 } });

    // 5 requests/s for the one worker: 200 ms apart.
    expect(mocks.lambda).toHaveReceivedCommandTimes(ListProvisionedConcurrencyConfigsCommand, 4);
    expect(sleeps.filter((ms) => ms >= 1000)).toEqual([1000, 1200, 1400]);
    expect(sleeps.filter((ms) => ms >= 200)).toEqual([200, 400, 600, 800, 1000, 1200, 1400]);
  });

  it('records a function whose processing throws as FAILED and goes on with the batch', async () => {
    useRuntime();
    healthyAws();
    mocks.ddb
      .on(PutCommand)
      .rejectsOnce(Object.assign(new Error('Throughput exceeded'), { name: 'ProvisionedThroughputExceededException' }))
      .resolves({});

    const out = await handler({ Items: [item(lowMemory()), item(eligible())], BatchInput: RUN });

    expect(out.counts).toEqual({ FAILED: 1, WOULD_PROTECT: 1 });
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 3);
    const attempts = audited().filter((i) => i.functionName === 'thumbnails');
    expect(attempts.map((i) => i.outcome)).toEqual(['SKIPPED', 'FAILED']); // the refused write, then the record
    expect(attempts[1]).toMatchObject({
      outcome: 'FAILED',
      changeKey: 'CHANGE',
      detail: 'ProvisionedThroughputExceededException: Throughput exceeded',
    });
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
  });
});

describe('assess-batch in protect mode', () => {
  it('returns eligible functions with their gathered facts and identity only, and does not audit them', async () => {
    useRuntime(baseConfig({ mode: 'protect' }));
    healthyAws();
    metrics({ orders: { concurrency: [2] } });

    const out = await handler({ Items: [item(eligible(), { team: 'shop' })], BatchInput: RUN });

    expect(out.counts).toEqual({});
    expect(out.eligible).toHaveLength(1);
    expect(out.eligible[0]).toMatchObject({
      runId: 'run-9',
      startedAt: RUN.startedAt,
      protectionAllowed: true,
      functionName: 'orders',
      functionArn: arn('orders'),
      facts: {
        tags: { team: 'shop' },
        throttles24h: 0,
        peakConcurrency: 2,
        provisionedConcurrencyConfigs: [],
        reservedConcurrency: null,
      },
    });
    // Protect re-reads the configuration; the request carries only the identity (payload stays small).
    expect(out.eligible[0]?.facts.configuration).toEqual({ FunctionName: 'orders', FunctionArn: arn('orders') });
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 0);
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 0);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('skips with DEFENDER_LAYER_INVALID when the run’s layer check failed', async () => {
    useRuntime(baseConfig({ mode: 'protect' }));
    healthyAws();

    const out = await handler({ Items: [item(eligible())], BatchInput: { ...RUN, protectionAllowed: false } });

    expect(out).toEqual({ eligible: [], counts: { SKIPPED: 1 } });
    expect(auditOf('orders')).toMatchObject({
      outcome: 'SKIPPED',
      reasons: ['DEFENDER_LAYER_INVALID'],
      primaryReason: 'DEFENDER_LAYER_INVALID',
    });
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
  });

  it('never lets a customer variable value reach an audit item, SNS message, output or log line', async () => {
    useRuntime(baseConfig({ mode: 'protect', notifications: { skips: 'always' } }));
    healthyAws();
    const logs = captureLogs();

    const out = await handler({
      Items: [item(eligible()), item(lowMemory()), item(protectedFn()), item(fn('big', { Timeout: 900 }))],
      BatchInput: RUN,
    });

    expect(out.eligible).toHaveLength(1);
    expect(logs.text()).toContain('decision recorded');
    expect(logs.text()).not.toContain(CANARY);
    expect(everythingSent()).not.toContain(CANARY);
    expect(JSON.stringify(out)).not.toContain(CANARY);
    expect(JSON.stringify(audited())).not.toContain('db.internal');
  });
});

describe('assess-batch, issue 8', () => {
  /** The function carries our SSM-sourced TW_POLICY with its own value (the inventory holds a placeholder). */
  const ownPolicy = () => fn('ledger', { Environment: { Variables: { TW_POLICY: CANARY, TABLE: 'x' } } });

  it('item 9: dry-run skips ENV_CONFLICT where protect would, comparing the real value with the resolved SSM value', async () => {
    // Prepare
    useRuntime(
      baseConfig({
        defender: {
          layerArn: LAYER,
          environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/item9-a' } },
        },
      }),
    );
    healthyAws();
    mocks.lambda.on(GetFunctionCommand).resolves({
      Configuration: {
        State: 'Active',
        LastUpdateStatus: 'Successful',
        Environment: { Variables: { TW_POLICY: CANARY } },
      },
    });
    const logs = captureLogs();

    // Act
    const out = await handler({ Items: [item(ownPolicy())], BatchInput: RUN });

    // Assess
    expect(out.counts).toEqual({ SKIPPED: 1 });
    expect(auditOf('ledger')).toMatchObject({ outcome: 'SKIPPED', reasons: ['ENV_CONFLICT'] });
    expect(mocks.ssm).toHaveReceivedCommandWith(GetParameterCommand, { Name: '/zi/item9-a', WithDecryption: true });
    expect(everythingSent()).not.toContain(CANARY);
    expect(everythingSent()).not.toContain(POLICY_VALUE);
    expect(logs.text()).not.toContain(POLICY_VALUE);
  });

  it('item 9: records "value not resolved" when the SSM value cannot be read, never a silent pass', async () => {
    // Prepare
    useRuntime(
      baseConfig({
        defender: {
          layerArn: LAYER,
          environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/item9-b' } },
        },
      }),
    );
    healthyAws();
    mocks.ssm.on(GetParameterCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));

    // Act
    await handler({ Items: [item(ownPolicy())], BatchInput: RUN });

    // Assess
    const audit = auditOf('ledger');
    expect(audit.reasons).toContain('FACTS_MISSING');
    expect(audit.checks.find((c) => c.code === 'ENV_CONFLICT')).toMatchObject({
      status: 'not_evaluated',
      observed: 'value not resolved',
    });
  });

  it('item 10: reads GetFunction for a protected function and records PROTECTION_UNHEALTHY with AWS reason and a metric', async () => {
    // Prepare
    useRuntime();
    healthyAws();
    mocks.lambda.on(GetFunctionCommand, { FunctionName: arn('payments') }).resolves({
      Configuration: {
        State: 'Active',
        LastUpdateStatus: 'Failed',
        LastUpdateStatusReason:
          'Lambda was unable to configure access to your environment variables because the KMS key is invalid',
        Environment: { Variables: { TW_POLICY: POLICY_VALUE } },
      },
    });
    const emitted = captureMetrics();

    // Act
    await handler({ Items: [item(protectedFn())], BatchInput: RUN });

    // Assess
    const audit = auditOf('payments');
    expect(audit).toMatchObject({ outcome: 'ALREADY_PROTECTED' });
    expect(audit.warnings).toContain('PROTECTION_UNHEALTHY');
    expect(audit.checks.find((c) => c.code === 'PROTECTION_UNHEALTHY')?.observed).toContain('KMS key is invalid');
    expect(emitted).toContainEqual(expect.objectContaining({ name: 'ProtectionUnhealthy', value: 1 }));
  });

  it('item 16: skips CODE_SIGNING_ENFORCED, reading each code signing config once per invocation', async () => {
    // Prepare
    useRuntime();
    healthyAws();
    const csc = `arn:aws:lambda:eu-west-1:123456789012:code-signing-config:csc-1`;
    mocks.lambda.on(GetFunctionCodeSigningConfigCommand).resolves({ CodeSigningConfigArn: csc });
    mocks.lambda.on(GetCodeSigningConfigCommand).resolves({
      CodeSigningConfig: {
        CodeSigningConfigId: 'csc-1',
        CodeSigningConfigArn: csc,
        AllowedPublishers: { SigningProfileVersionArns: [] },
        CodeSigningPolicies: { UntrustedArtifactOnDeployment: 'Enforce' },
        LastModified: '2025-01-01',
      },
    });

    // Act
    await handler({ Items: [item(fn('a')), item(fn('b'))], BatchInput: RUN });

    // Assess
    expect(auditOf('a').reasons).toEqual(['CODE_SIGNING_ENFORCED']);
    expect(auditOf('b').reasons).toEqual(['CODE_SIGNING_ENFORCED']);
    expect(mocks.lambda).toHaveReceivedCommandTimes(GetCodeSigningConfigCommand, 1);
  });

  it('item 16: is FACTS_MISSING when the code signing config cannot be read', async () => {
    useRuntime();
    healthyAws();
    mocks.lambda.on(GetFunctionCodeSigningConfigCommand).rejects(new Error('AccessDenied'));

    await handler({ Items: [item(fn('a'))], BatchInput: RUN });

    expect(auditOf('a').reasons).toEqual(['FACTS_MISSING']);
  });

  it('item 16: skips PREVIOUSLY_REJECTED while the back-off from the state table is active', async () => {
    // Prepare
    useRuntime();
    healthyAws();
    mocks.ddb
      .on(BatchGetCommand)
      .callsFake((input: { RequestItems: Record<string, { Keys: Array<{ pk: string }> }> }) => {
        const keys = input.RequestItems['state']?.Keys ?? [];
        const rejected = keys.some((k) => k.pk === 'REJECT#a');
        return {
          Responses: {
            state: rejected
              ? [
                  {
                    pk: 'REJECT#a',
                    reason: 'InvalidParameterValueException',
                    attempts: 1,
                    nextAttemptAt: '2025-06-01T13:00:00.000Z',
                    revisionId: null,
                    codeSha256: null,
                  },
                ]
              : [],
          },
        };
      });

    // Act
    await handler({ Items: [item(fn('a'))], BatchInput: RUN });

    // Assess
    expect(auditOf('a')).toMatchObject({ outcome: 'SKIPPED', reasons: ['PREVIOUSLY_REJECTED'] });
    expect(auditOf('a').checks.find((c) => c.code === 'PREVIOUSLY_REJECTED')?.observed).toBe(
      'InvalidParameterValueException; next attempt after 2025-06-01T13:00:00.000Z',
    );
  });

  it('item 15: passes the inventory Lambda@Edge signal into the facts', async () => {
    useRuntime();
    healthyAws();
    const east = { ...item(fn('edge')), lambdaEdge: true };
    east.configuration = { ...east.configuration, FunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:edge' };

    await handler({ Items: [east], BatchInput: RUN });

    expect(auditOf('edge').reasons).toEqual(['LAMBDA_EDGE']);
  });
});

describe('issue 8: what the inventory carries instead of values', () => {
  it('item 3: gate 6 decides on the real size the inventory carries (variablesBytes), not the fixed placeholders', async () => {
    useRuntime(baseConfig({ defender: { layerArn: LAYER, environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } } }));
    healthyAws();
    const big = fn('big-env', { Environment: { Variables: { BLOB: 'x'.repeat(4050) } } });
    const realBytes = Buffer.byteLength(JSON.stringify({ BLOB: 'x'.repeat(4050) }), 'utf8');

    await handler({ Items: [{ ...item(big), variablesBytes: realBytes }], BatchInput: RUN });

    expect(auditOf('big-env')).toMatchObject({ outcome: 'SKIPPED', reasons: ['ENV_QUOTA'] });
  });

  const NEW_WRAPPER = '/opt/twistlock/v2/twistlock_wrapper';
  const rotated = () =>
    baseConfig({ defender: { layerArn: LAYER, environment: { AWS_LAMBDA_EXEC_WRAPPER: NEW_WRAPPER } } });
  /** Protected with the previous wrapper path, which the engine wrote (its MAC is in the last digest). */
  const withOldWrapper = (): InventoryItem => ({
    ...item(
      fn('ledger', { Layers: [{ Arn: LAYER }], Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } } }),
    ),
    ourValueMacs: { AWS_LAMBDA_EXEC_WRAPPER: 'mac-of-the-old-wrapper' },
  });
  const lastDigest = {
    pk: 'LAST#ledger',
    functionName: 'ledger',
    outcome: 'PROTECTED',
    reasons: [],
    warnings: [],
    ourValueMacs: { AWS_LAMBDA_EXEC_WRAPPER: 'mac-of-the-old-wrapper' },
  };

  it('item 7: an older value the engine wrote is ALREADY_PROTECTED with DEFENDER_CONFIG_OUTDATED in dry-run', async () => {
    useRuntime(rotated());
    healthyAws([lastDigest]);

    await handler({ Items: [withOldWrapper()], BatchInput: RUN });

    expect(auditOf('ledger')).toMatchObject({ outcome: 'ALREADY_PROTECTED', reasons: [] });
    expect(auditOf('ledger').warnings).toContain('DEFENDER_CONFIG_OUTDATED');
  });

  it('item 7: in protect mode the function goes to the protect step to be refreshed in place', async () => {
    useRuntime({ ...rotated(), mode: 'protect' });
    healthyAws([lastDigest]);

    const out = await handler({ Items: [withOldWrapper()], BatchInput: RUN });

    expect(out.eligible.map((request) => request.functionName)).toEqual(['ledger']);
    expect(audited()).toEqual([]);
  });

  it('item 7: a value whose MAC the engine never recorded stays a WRAPPER_CONFLICT', async () => {
    useRuntime({ ...rotated(), mode: 'protect' });
    healthyAws([{ ...lastDigest, ourValueMacs: { AWS_LAMBDA_EXEC_WRAPPER: 'some-other-mac' } }]);

    const out = await handler({ Items: [withOldWrapper()], BatchInput: RUN });

    expect(out.eligible).toEqual([]);
    expect(auditOf('ledger')).toMatchObject({ outcome: 'SKIPPED' });
    expect(auditOf('ledger').reasons).toContain('WRAPPER_CONFLICT');
  });
});

/** A Put that behaves like the audit table's conditional put: a key written once answers "exists" after. */
function conditionalAuditTable(keys = new Set<string>(), failFor: ReadonlySet<string> = new Set()): Set<string> {
  mocks.ddb.on(PutCommand).callsFake((input: { TableName: string; Item: AuditItem }) => {
    const key = `${input.Item.functionName}|${input.Item.sk}`;
    if (failFor.has(input.Item.functionName)) {
      throw Object.assign(new Error('Throughput exceeds the current capacity'), {
        name: 'ProvisionedThroughputExceededException',
      });
    }
    if (keys.has(key)) {
      throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
    }
    keys.add(key);
    return {};
  });
  return keys;
}

describe('assess-batch, issue 9: exactly one decision per function per run', () => {
  it('a retried assess batch writes and publishes nothing twice', async () => {
    useRuntime();
    healthyAws();
    const batch = {
      Items: [item(lowMemory()), item(fn('media', { MemorySize: 128 })), item(eligible())],
      BatchInput: RUN,
    };
    const keys = conditionalAuditTable(new Set(), new Set(['media']));

    // First attempt: the table refuses one write (and its FAILED): the invocation fails for a retry.
    await expect(handler(batch)).rejects.toThrow(AuditWriteError);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    const firstDigests = mocks.ddb.commandCalls(BatchWriteCommand).length;

    // The retry: the same batch again; only the decision still missing is written and published.
    conditionalAuditTable(keys);
    const out = await handler(batch);

    expect(out.counts).toEqual({ SKIPPED: 2, WOULD_PROTECT: 1 });
    expect([...keys].sort()).toEqual([
      `media|${RUN.startedAt}#run-9#1-decision`,
      `orders|${RUN.startedAt}#run-9#1-decision`,
      `thumbnails|${RUN.startedAt}#run-9#1-decision`,
    ]);
    const published = mocks.sns
      .commandCalls(PublishCommand)
      .map((c) => c.args[0].input.MessageAttributes?.['functionName']?.StringValue);
    expect(published.sort()).toEqual(['media', 'thumbnails']);
    const digested = mocks.ddb
      .commandCalls(BatchWriteCommand)
      .slice(firstDigests)
      .flatMap((c) => c.args[0].input.RequestItems?.['state'] ?? [])
      .map((r) => r.PutRequest?.Item?.['functionName']);
    expect(digested).toEqual(['media']);
  });

  it('previous decisions unreadable: nothing is published from the batch, the run goes in the outbox', async () => {
    // Prepare: the state table refuses the digest read on every retry (a repeat could not be told from a new skip).
    useRuntime();
    healthyAws();
    mocks.ddb.on(BatchGetCommand).rejects(Object.assign(new Error('down'), { name: 'ServiceUnavailable' }));
    mocks.ddb.on(UpdateCommand).resolves({});

    // Act
    await handler({ Items: [item(lowMemory())], BatchInput: RUN });

    // Assess: the skip is recorded (repeat false: owed), not published, not marked; the outbox names the run.
    expect(auditOf('thumbnails')).toMatchObject({ outcome: 'SKIPPED', repeat: false });
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 0);
    expect(mocks.ddb).toHaveReceivedCommandWith(UpdateCommand, {
      Key: { pk: 'OUTBOX' },
      UpdateExpression: 'ADD runIds :run',
      ExpressionAttributeValues: { ':run': new Set([RUN.runId]) },
    });
  });

  it('SNS down: the digest of an unpublished skip is not stored, and the next run publishes it', async () => {
    useRuntime();
    healthyAws();
    mocks.sns.on(PublishCommand).rejects(new Error('InternalErrorException'));

    await handler({ Items: [item(lowMemory())], BatchInput: RUN });

    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 0);

    // Next run: no digest, so the skip is new and published.
    prepare();
    useRuntime();
    healthyAws();
    await handler({ Items: [item(lowMemory())], BatchInput: { ...RUN, runId: 'run-10' } });

    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 1);
  });
});
