import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { DescribeRouteTablesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetLayerVersionCommand,
  InvalidParameterValueException,
  LambdaClient,
  ListFunctionsCommand,
  ListProvisionedConcurrencyConfigsCommand,
  PreconditionFailedException,
  ResourceConflictException,
  ResourceNotFoundException,
  ServiceException,
  TooManyRequestsException,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { GetObjectCommand, NoSuchKey, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  PublishCommand,
  SNSClient,
  InvalidParameterValueException as SnsInvalidParameterValue,
} from '@aws-sdk/client-sns';
import { GetParameterCommand, ParameterNotFound, SSMClient } from '@aws-sdk/client-ssm';
import { strFromU8, unzipSync } from 'fflate';
import type { FunctionFacts } from '../../lambdas/shared/domain/types';
import { EstateError, generateEstate, parseEstate, type Estate } from '../../local/estate';
import { ManualClock, SimulatedAccount, type SimulatedAccountOptions } from '../../local/simulated-account';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const DEFENDER = `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:twistlock-defender:32`;
const OTHER_LAYER = `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:shared-utils:7`;

function facts(
  name: string,
  extra: Partial<FunctionFacts> = {},
  configuration: FunctionFacts['configuration'] = {},
): FunctionFacts {
  return {
    configuration: {
      FunctionName: name,
      FunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`,
      Runtime: 'python3.11',
      MemorySize: 512,
      Timeout: 30,
      ...configuration,
    },
    tags: {},
    provisionedConcurrencyConfigs: [],
    throttles24h: 0,
    ...extra,
  };
}

function estateOf(functions: FunctionFacts[], ssmParameters: Record<string, string> = {}): Estate {
  return { functions, ssmParameters, region: REGION, account: ACCOUNT };
}

describe('SimulatedAccount', () => {
  let account: SimulatedAccount | undefined;
  let clock: ManualClock;

  function install(functions: FunctionFacts[], options: Partial<SimulatedAccountOptions> = {}): SimulatedAccount {
    account = new SimulatedAccount({
      estate: estateOf(functions, { '/zero-impact/tw-policy': 'policy-value' }),
      clock,
      ...options,
    });
    return account.install();
  }

  beforeEach(() => {
    clock = new ManualClock();
  });

  afterEach(() => {
    account?.uninstall();
    account = undefined;
  });

  describe('installation', () => {
    it('restores the client prototypes and removes its middleware on uninstall', async () => {
      // Prepare
      const sim = install([facts('orders-api')]);
      const client = new LambdaClient({ maxAttempts: 1 });
      await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));

      // Act
      sim.uninstall();

      // Assess
      expect(Object.prototype.hasOwnProperty.call(LambdaClient.prototype, 'send')).toBe(false);
      expect(client.middlewareStack.identify().join(' ')).not.toContain('zeroImpactSimulatedAccount');
    });

    it('refuses a second account while one is installed', () => {
      // Prepare
      install([facts('orders-api')]);
      const second = new SimulatedAccount({ estate: estateOf([]), clock });

      // Act
      const act = () => second.install();

      // Assess
      expect(act).toThrow('another SimulatedAccount is installed');
    });

    it('counts every attempt per service:Operation, including the SDK retries', async () => {
      // Prepare
      const sim = install([facts('orders-api')]);
      sim.injectFault({ operation: 'lambda:GetFunction', error: 'ServiceException', nth: 1 });
      const client = new LambdaClient({ maxAttempts: 3 });

      // Act
      const output = await client.send(new GetFunctionCommand({ FunctionName: 'orders-api' }));

      // Assess
      expect(output.$metadata.attempts).toBe(2);
      expect(sim.calls()).toEqual({ 'lambda:GetFunction': 2 });
    });
  });

  describe('lambda:ListFunctions', () => {
    it('pages at 50 with Marker/NextMarker and omits State and LastUpdateStatus', async () => {
      // Prepare
      install(Array.from({ length: 120 }, (_, i) => facts(`fn-${String(i).padStart(3, '0')}`)));
      const client = new LambdaClient({ maxAttempts: 1 });

      // Act
      const first = await client.send(new ListFunctionsCommand({}));
      const second = await client.send(new ListFunctionsCommand({ Marker: first.NextMarker }));
      const third = await client.send(new ListFunctionsCommand({ Marker: second.NextMarker }));

      // Assess
      expect([first.Functions?.length, second.Functions?.length, third.Functions?.length]).toEqual([50, 50, 20]);
      expect(third.NextMarker).toBeUndefined();
      expect(first.Functions?.[0]?.FunctionName).toBe('fn-000');
      expect(third.Functions?.[19]?.FunctionName).toBe('fn-119');
      expect(first.Functions?.[0]).not.toHaveProperty('State');
      expect(first.Functions?.[0]).not.toHaveProperty('LastUpdateStatus');
      expect(first.Functions?.[0]).toMatchObject({ MemorySize: 512, PackageType: 'Zip', Architectures: ['x86_64'] });
    });
  });

  describe('lambda:GetFunction', () => {
    it('returns the configuration with State, LastUpdateStatus, RevisionId, reserved concurrency and tags', async () => {
      // Prepare
      install([facts('orders-api', { reservedConcurrency: 10, tags: { team: 'payments' } })]);
      const client = new LambdaClient({ maxAttempts: 1 });

      // Act
      const output = await client.send(
        new GetFunctionCommand({ FunctionName: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:orders-api` }),
      );

      // Assess
      expect(output.Configuration).toMatchObject({ State: 'Active', LastUpdateStatus: 'Successful' });
      expect(output.Configuration?.RevisionId).toMatch(/^[0-9a-f-]{36}$/);
      expect(output.Concurrency).toEqual({ ReservedConcurrentExecutions: 10 });
      expect(output.Tags).toEqual({ team: 'payments' });
    });

    it('throws ResourceNotFoundException for an unknown function', async () => {
      // Prepare
      install([facts('orders-api')]);
      const client = new LambdaClient({ maxAttempts: 1 });

      // Act
      const result = client.send(new GetFunctionCommand({ FunctionName: 'missing' }));

      // Assess
      await expect(result).rejects.toBeInstanceOf(ResourceNotFoundException);
    });
  });

  describe('lambda:UpdateFunctionConfiguration', () => {
    const start = () =>
      install(
        [
          facts(
            'orders-api',
            {},
            { Layers: [{ Arn: OTHER_LAYER, CodeSize: 100 }], Environment: { Variables: { KEEP: 'v', DROP: 'w' } } },
          ),
        ],
        { layers: [{ layerVersionArn: DEFENDER, files: { 'twistlock/twistlock_wrapper': '#!/bin/sh\n' } }] },
      );

    it('replaces layers and variables wholesale, bumps the RevisionId and goes InProgress then Successful', async () => {
      // Prepare
      const sim = start();
      const client = new LambdaClient({ maxAttempts: 1 });
      const before = await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));

      // Act
      const updated = await client.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: 'orders-api',
          RevisionId: before.RevisionId,
          Layers: [OTHER_LAYER, DEFENDER],
          Environment: { Variables: { KEEP: 'v', AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper' } },
        }),
      );
      const firstRead = await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));
      const secondRead = await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));

      // Assess
      expect(updated.LastUpdateStatus).toBe('InProgress');
      expect(updated.RevisionId).not.toBe(before.RevisionId);
      expect(firstRead.LastUpdateStatus).toBe('InProgress');
      expect(secondRead.LastUpdateStatus).toBe('Successful');
      expect(secondRead.Environment?.Variables).toEqual({
        KEEP: 'v',
        AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper',
      });
      expect(secondRead.Layers?.map((l) => l.Arn)).toEqual([OTHER_LAYER, DEFENDER]);
      expect(secondRead.Layers?.[0]?.CodeSize).toBe(100);
      expect(sim.functionConfiguration('orders-api')?.RevisionId).toBe(updated.RevisionId);
    });

    it('settles by the clock when updateSettle.afterMs is set', async () => {
      // Prepare
      install([facts('orders-api')], { updateSettle: { afterMs: 2000 } });
      const client = new LambdaClient({ maxAttempts: 1 });
      await client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', MemorySize: 1024 }));
      const during = await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));

      // Act
      clock.advance(2000);
      const after = await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));

      // Assess
      expect(during.LastUpdateStatus).toBe('InProgress');
      expect(after.LastUpdateStatus).toBe('Successful');
      expect(after.MemorySize).toBe(1024);
    });

    it('fails with PreconditionFailedException on a stale RevisionId and changes nothing', async () => {
      // Prepare
      const sim = start();
      const client = new LambdaClient({ maxAttempts: 1 });
      const before = sim.functionConfiguration('orders-api');

      // Act
      const result = client.send(
        new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', RevisionId: 'stale', Layers: [DEFENDER] }),
      );

      // Assess
      await expect(result).rejects.toBeInstanceOf(PreconditionFailedException);
      await expect(result).rejects.toMatchObject({
        name: 'PreconditionFailedException',
        $metadata: { httpStatusCode: 412 },
      });
      expect(sim.functionConfiguration('orders-api')).toEqual(before);
    });

    it('fails with ResourceConflictException while an update is in progress', async () => {
      // Prepare
      start();
      const client = new LambdaClient({ maxAttempts: 1 });
      await client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', Layers: [DEFENDER] }));

      // Act
      const result = client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', Layers: [] }));

      // Assess
      await expect(result).rejects.toBeInstanceOf(ResourceConflictException);
    });

    it('keeps a function that the estate shows InProgress in progress', async () => {
      // Prepare
      install([facts('deploying', {}, { LastUpdateStatus: 'InProgress' })]);
      const client = new LambdaClient({ maxAttempts: 1 });
      await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'deploying' }));

      // Act
      const read = await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'deploying' }));

      // Assess
      expect(read.LastUpdateStatus).toBe('InProgress');
    });

    it('rejects more than 5 layers and two versions of one layer', async () => {
      // Prepare
      start();
      const client = new LambdaClient({ maxAttempts: 1 });
      const six = Array.from({ length: 6 }, (_, i) => `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:l${i}:1`);

      // Act
      const tooMany = client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', Layers: six }));
      const duplicate = client.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: 'orders-api',
          Layers: [DEFENDER, DEFENDER.replace(/32$/, '31')],
        }),
      );

      // Assess
      await expect(tooMany).rejects.toBeInstanceOf(InvalidParameterValueException);
      await expect(duplicate).rejects.toBeInstanceOf(InvalidParameterValueException);
    });

    it('rejects variables over 4 KB measured as compact JSON bytes', async () => {
      // Prepare
      start();
      const client = new LambdaClient({ maxAttempts: 1 });
      const exactly = { K: 'x'.repeat(4096 - '{"K":""}'.length) };
      const over = { K: 'x'.repeat(4097 - '{"K":""}'.length) };

      // Act
      const fits = await client.send(
        new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', Environment: { Variables: exactly } }),
      );
      await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));
      await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));
      const tooBig = client.send(
        new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', Environment: { Variables: over } }),
      );

      // Assess
      expect(fits.Environment?.Variables).toEqual(exactly);
      await expect(tooBig).rejects.toBeInstanceOf(InvalidParameterValueException);
    });

    it('lets an update end Failed by fault injection', async () => {
      // Prepare
      const sim = start();
      sim.injectFault({ operation: 'lambda:UpdateFunctionConfiguration', updateFails: 'ENI limit reached' });
      const client = new LambdaClient({ maxAttempts: 1 });
      await client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', Layers: [DEFENDER] }));
      await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));

      // Act
      const read = await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));

      // Assess
      expect(read).toMatchObject({ LastUpdateStatus: 'Failed', LastUpdateStatusReason: 'ENI limit reached' });
    });
  });

  describe('control-plane rate limit', () => {
    it('throttles the 16th request within one second across the four operations, then recovers', async () => {
      // Prepare
      const sim = install([facts('orders-api')]);
      const client = new LambdaClient({ maxAttempts: 1 });
      for (let i = 0; i < 8; i += 1) await client.send(new ListFunctionsCommand({}));
      for (let i = 0; i < 7; i += 1)
        await client.send(new ListProvisionedConcurrencyConfigsCommand({ FunctionName: 'orders-api' }));

      // Act
      const sixteenth = client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));
      await expect(sixteenth).rejects.toBeInstanceOf(TooManyRequestsException);
      const getFunction = await client.send(new GetFunctionCommand({ FunctionName: 'orders-api' }));
      clock.advance(1000);
      const later = await client.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));

      // Assess
      expect(getFunction.Configuration?.FunctionName).toBe('orders-api');
      expect(later.FunctionName).toBe('orders-api');
      expect(sim.peakControlPlaneRate()).toBe(16);
      expect(sim.throttledCalls()).toEqual({ 'lambda:GetFunctionConfiguration': 1 });
      expect(sim.calls()).toEqual({
        'lambda:GetFunction': 1,
        'lambda:GetFunctionConfiguration': 2,
        'lambda:ListFunctions': 8,
        'lambda:ListProvisionedConcurrencyConfigs': 7,
      });
    });
  });

  describe('fault injection', () => {
    it('fires on the nth matching call only', async () => {
      // Prepare
      const sim = install([facts('a'), facts('b')]);
      const fault = sim.injectFault({
        operation: 'lambda:GetFunction',
        functionName: 'b',
        error: 'ServiceException',
        nth: 2,
      });
      const client = new LambdaClient({ maxAttempts: 1 });

      // Act
      await client.send(new GetFunctionCommand({ FunctionName: 'a' }));
      await client.send(new GetFunctionCommand({ FunctionName: 'b' }));
      const second = client.send(new GetFunctionCommand({ FunctionName: 'b' }));

      // Assess
      await expect(second).rejects.toBeInstanceOf(ServiceException);
      await expect(client.send(new GetFunctionCommand({ FunctionName: 'b' }))).resolves.toBeDefined();
      expect(fault.fired()).toBe(1);
    });

    it('draws probabilities from the seeded RNG, so a seed repeats the same faults', async () => {
      // Prepare
      const outcomes: string[] = [];
      for (const _run of [1, 2]) {
        const sim = install([facts('a')], { seed: 42 });
        sim.injectFault({ operation: 'lambda:GetFunction', error: 'ServiceException', probability: 0.5 });
        const client = new LambdaClient({ maxAttempts: 1 });

        // Act
        let pattern = '';
        for (let i = 0; i < 20; i += 1) {
          pattern += await client.send(new GetFunctionCommand({ FunctionName: 'a' })).then(
            () => '.',
            () => 'x',
          );
        }
        outcomes.push(pattern);
        sim.uninstall();
      }

      // Assess
      expect(outcomes[0]).toBe(outcomes[1]);
      expect(outcomes[0]).toContain('x');
      expect(outcomes[0]).toContain('.');
    });
  });

  describe('lambda:GetLayerVersion', () => {
    it('gives a data: URL of a ZIP holding the layer files, with its compatibility', async () => {
      // Prepare
      install([facts('a')], {
        layers: [
          {
            layerVersionArn: DEFENDER,
            files: { 'twistlock/twistlock_wrapper': '#!/bin/sh\nexec "$@"\n' },
            compatibleRuntimes: ['python3.11'],
            compatibleArchitectures: ['x86_64'],
          },
        ],
      });
      const client = new LambdaClient({ maxAttempts: 1 });

      // Act
      const layer = await client.send(
        new GetLayerVersionCommand({ LayerName: DEFENDER.replace(/:32$/, ''), VersionNumber: 32 }),
      );
      const download = new Uint8Array(await (await fetch(String(layer.Content?.Location))).arrayBuffer());
      const files = unzipSync(download);

      // Assess
      expect(layer).toMatchObject({
        LayerVersionArn: DEFENDER,
        CompatibleRuntimes: ['python3.11'],
        CompatibleArchitectures: ['x86_64'],
      });
      expect(strFromU8(files['twistlock/twistlock_wrapper'] as Uint8Array)).toBe('#!/bin/sh\nexec "$@"\n');
      expect(layer.Content?.CodeSize).toBe(download.length);
    });

    it('throws ResourceNotFoundException for an unknown version', async () => {
      // Prepare
      install([facts('a')]);
      const client = new LambdaClient({ maxAttempts: 1 });

      // Act
      const result = client.send(new GetLayerVersionCommand({ LayerName: 'twistlock-defender', VersionNumber: 99 }));

      // Assess
      await expect(result).rejects.toBeInstanceOf(ResourceNotFoundException);
    });
  });

  describe('tag:GetResources', () => {
    it('filters functions on a tag key and pages with PaginationToken', async () => {
      // Prepare
      const tagged = Array.from({ length: 3 }, (_, i) => facts(`t${i}`, { tags: { 'zero-impact:exclude': 'true' } }));
      install([...tagged, facts('u', { tags: { team: 'x' } })]);
      const client = new ResourceGroupsTaggingAPIClient({ maxAttempts: 1 });
      const input = {
        TagFilters: [{ Key: 'zero-impact:exclude' }],
        ResourceTypeFilters: ['lambda:function'],
        ResourcesPerPage: 2,
      };

      // Act
      const first = await client.send(new GetResourcesCommand(input));
      const second = await client.send(new GetResourcesCommand({ ...input, PaginationToken: first.PaginationToken }));

      // Assess
      expect(first.ResourceTagMappingList?.map((r) => r.ResourceARN)).toEqual([
        `arn:aws:lambda:${REGION}:${ACCOUNT}:function:t0`,
        `arn:aws:lambda:${REGION}:${ACCOUNT}:function:t1`,
      ]);
      expect(second.ResourceTagMappingList?.[0]?.Tags).toEqual([{ Key: 'zero-impact:exclude', Value: 'true' }]);
      expect(second.PaginationToken).toBe('');
    });
  });

  describe('cloudwatch:GetMetricData', () => {
    it('answers Throttles Sum and ConcurrentExecutions Maximum, no datapoints without data, InternalError for null', async () => {
      // Prepare
      install([
        facts('busy', { throttles24h: 7, peakConcurrency: 9 }),
        facts('quiet', { throttles24h: undefined }),
        facts('unreadable', { throttles24h: null }),
      ]);
      const client = new CloudWatchClient({ maxAttempts: 1 });
      const query = (id: string, fn: string, metric: string, stat: string, period: number) => ({
        Id: id,
        MetricStat: {
          Metric: { Namespace: 'AWS/Lambda', MetricName: metric, Dimensions: [{ Name: 'FunctionName', Value: fn }] },
          Period: period,
          Stat: stat,
        },
      });

      // Act
      const output = await client.send(
        new GetMetricDataCommand({
          StartTime: new Date('2025-01-05T09:00:00Z'),
          EndTime: new Date('2025-01-06T09:00:00Z'),
          MetricDataQueries: [
            query('t0', 'busy', 'Throttles', 'Sum', 86400),
            query('c0', 'busy', 'ConcurrentExecutions', 'Maximum', 3600),
            query('t1', 'quiet', 'Throttles', 'Sum', 86400),
            query('t2', 'unreadable', 'Throttles', 'Sum', 86400),
          ],
        }),
      );

      // Assess
      expect(output.MetricDataResults?.map((r) => [r.Id, r.Values, r.StatusCode])).toEqual([
        ['t0', [7], 'Complete'],
        ['c0', [9], 'Complete'],
        ['t1', [], 'Complete'],
        ['t2', [], 'InternalError'],
      ]);
    });

    it('rejects more than 500 queries', async () => {
      // Prepare
      install([facts('a')]);
      const client = new CloudWatchClient({ maxAttempts: 1 });
      const queries = Array.from({ length: 501 }, (_, i) => ({
        Id: `q${i}`,
        MetricStat: { Metric: { Namespace: 'AWS/Lambda', MetricName: 'Throttles' }, Period: 60, Stat: 'Sum' },
      }));

      // Act
      const result = client.send(
        new GetMetricDataCommand({ StartTime: new Date(0), EndTime: new Date(1), MetricDataQueries: queries }),
      );

      // Assess
      await expect(result).rejects.toMatchObject({ name: 'InvalidParameterValueException' });
    });
  });

  describe('ec2:DescribeRouteTables', () => {
    const vpc = (name: string, subnet: string, egress: 'nat' | 'none' | 'unknown') =>
      facts(
        name,
        { vpcEgress: egress },
        { VpcConfig: { SubnetIds: [subnet], SecurityGroupIds: ['sg-1'], VpcId: `vpc-${egress}` } },
      );

    it('derives a NAT route for "nat", only the local route for "none", and a transit gateway route for "unknown"', async () => {
      // Prepare
      install([vpc('a', 'subnet-nat', 'nat'), vpc('b', 'subnet-none', 'none'), vpc('c', 'subnet-unknown', 'unknown')]);
      const client = new EC2Client({ maxAttempts: 1 });
      const bySubnet = (subnet: string) =>
        client.send(new DescribeRouteTablesCommand({ Filters: [{ Name: 'association.subnet-id', Values: [subnet] }] }));

      // Act
      const nat = await bySubnet('subnet-nat');
      const none = await bySubnet('subnet-none');
      const unknown = await bySubnet('subnet-unknown');

      // Assess
      expect(nat.RouteTables?.[0]?.Routes).toContainEqual(
        expect.objectContaining({ DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: expect.stringMatching(/^nat-/) }),
      );
      expect(none.RouteTables?.[0]?.Routes?.map((r) => r.DestinationCidrBlock)).toEqual(['10.0.0.0/16']);
      expect(unknown.RouteTables?.[0]?.Routes).toContainEqual(
        expect.objectContaining({
          DestinationCidrBlock: '0.0.0.0/0',
          TransitGatewayId: expect.stringMatching(/^tgw-/),
        }),
      );
    });

    it('denies reads naming an "unknown" subnet with unknownEgress "denied"', async () => {
      // Prepare
      install([vpc('a', 'subnet-nat', 'nat'), vpc('c', 'subnet-unknown', 'unknown')], { unknownEgress: 'denied' });
      const client = new EC2Client({ maxAttempts: 1 });

      // Act
      const result = client.send(
        new DescribeRouteTablesCommand({
          Filters: [{ Name: 'association.subnet-id', Values: ['subnet-nat', 'subnet-unknown'] }],
        }),
      );

      // Assess
      await expect(result).rejects.toMatchObject({ name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403 } });
    });

    it('answers the main route table of a VPC', async () => {
      // Prepare
      install([vpc('a', 'subnet-nat', 'nat')]);
      const client = new EC2Client({ maxAttempts: 1 });

      // Act
      const main = await client.send(
        new DescribeRouteTablesCommand({
          Filters: [
            { Name: 'vpc-id', Values: ['vpc-nat'] },
            { Name: 'association.main', Values: ['true'] },
          ],
        }),
      );

      // Assess
      expect(main.RouteTables).toHaveLength(1);
      expect(main.RouteTables?.[0]?.Associations?.[0]?.Main).toBe(true);
    });
  });

  describe('sns, s3 and ssm', () => {
    it('records published messages and enforces the 10-attribute limit', async () => {
      // Prepare
      const sim = install([facts('a')], { topicArns: ['arn:aws:sns:eu-west-1:123456789012:skips'] });
      const client = new SNSClient({ maxAttempts: 1 });
      const attributes = Object.fromEntries(
        Array.from({ length: 11 }, (_, i) => [`a${i}`, { DataType: 'String', StringValue: 'v' }]),
      );

      // Act
      await client.send(
        new PublishCommand({
          TopicArn: 'arn:aws:sns:eu-west-1:123456789012:skips',
          Subject: 'SKIPPED a',
          Message: '{"functionName":"a"}',
          MessageAttributes: { outcome: { DataType: 'String', StringValue: 'SKIPPED' } },
        }),
      );
      const tooMany = client.send(
        new PublishCommand({
          TopicArn: 'arn:aws:sns:eu-west-1:123456789012:skips',
          Message: 'm',
          MessageAttributes: attributes,
        }),
      );

      // Assess
      await expect(tooMany).rejects.toBeInstanceOf(SnsInvalidParameterValue);
      expect(sim.published).toEqual([
        expect.objectContaining({
          topicArn: 'arn:aws:sns:eu-west-1:123456789012:skips',
          subject: 'SKIPPED a',
          message: '{"functionName":"a"}',
          attributes: { outcome: { DataType: 'String', StringValue: 'SKIPPED' } },
        }),
      ]);
    });

    it('stores S3 objects in memory with a Body that supports transformToString', async () => {
      // Prepare
      install([facts('a')]);
      const client = new S3Client({ maxAttempts: 1 });
      await client.send(new PutObjectCommand({ Bucket: 'inventory', Key: 'runs/r1/inventory.json', Body: '[1,2]' }));

      // Act
      const object = await client.send(new GetObjectCommand({ Bucket: 'inventory', Key: 'runs/r1/inventory.json' }));
      const missing = client.send(new GetObjectCommand({ Bucket: 'inventory', Key: 'nope' }));

      // Assess
      expect(await object.Body?.transformToString()).toBe('[1,2]');
      await expect(missing).rejects.toBeInstanceOf(NoSuchKey);
    });

    it('answers SSM parameters from the estate, decrypted on request', async () => {
      // Prepare
      install([facts('a')]);
      const client = new SSMClient({ maxAttempts: 1 });

      // Act
      const decrypted = await client.send(
        new GetParameterCommand({ Name: '/zero-impact/tw-policy', WithDecryption: true }),
      );
      const missing = client.send(new GetParameterCommand({ Name: '/nope', WithDecryption: true }));

      // Assess
      expect(decrypted.Parameter).toMatchObject({
        Name: '/zero-impact/tw-policy',
        Type: 'SecureString',
        Value: 'policy-value',
      });
      await expect(missing).rejects.toBeInstanceOf(ParameterNotFound);
    });
  });
});

describe('estate files', () => {
  it('accepts an array of facts documents and fills region and account from the ARNs', () => {
    // Prepare
    const input = [facts('a'), facts('b')];

    // Act
    const estate = parseEstate(input, 'estate.json');

    // Assess
    expect(estate).toMatchObject({ region: REGION, account: ACCOUNT, ssmParameters: {} });
    expect(estate.functions).toHaveLength(2);
  });

  it.each([
    [
      'a duplicate name',
      { functions: [facts('a'), facts('a')] },
      'estate.json: $.functions[1].configuration.FunctionName: duplicate function name "a" (also at index 0)',
    ],
    [
      'a bad name',
      [{ configuration: { FunctionName: 'bad name' } }],
      'estate.json: $[0].configuration.FunctionName: a Lambda function name (1-64 letters, digits, - or _)',
    ],
    [
      'a string MemorySize',
      [facts('a', {}, { MemorySize: 'big' as unknown as number })],
      'estate.json: $[0].configuration.MemorySize: Invalid input: expected number, received string',
    ],
    [
      'a number',
      42,
      'estate.json: $: expected an array of facts documents or { "functions": [...], "ssmParameters": {...} }',
    ],
  ])('rejects %s with one line naming the JSON path', (_label, input, message) => {
    // Act
    const act = () => parseEstate(input, 'estate.json');

    // Assess
    expect(act).toThrow(new EstateError(message));
  });

  it('rejects a subnet with two egress kinds', () => {
    // Prepare
    const vpc = (name: string, egress: 'nat' | 'none') =>
      facts(name, { vpcEgress: egress }, { VpcConfig: { SubnetIds: ['subnet-1'], SecurityGroupIds: [] } });

    // Act
    const act = () => parseEstate([vpc('a', 'nat'), vpc('b', 'none')], 'e.json');

    // Assess
    expect(act).toThrow('e.json: $[1].vpcEgress: subnet subnet-1 is "nat" at index 0; one subnet has one egress');
  });

  it('generates the same valid estate for the same seed', () => {
    // Act
    const first = generateEstate({ count: 300, seed: 7, canaryValue: 'canary-s3cr3t' });
    const second = generateEstate({ count: 300, seed: 7, canaryValue: 'canary-s3cr3t' });

    // Assess
    expect(first).toEqual(second);
    expect(() => parseEstate(first.functions, 'generated')).not.toThrow();
    expect(new Set(first.functions.map((f) => f.configuration.PackageType))).toEqual(new Set(['Zip', 'Image']));
  });
});
