import { CloudWatchClient, GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import { DescribeRouteTablesCommand, EC2Client, type RouteTable } from '@aws-sdk/client-ec2';
import {
  GetFunctionCommand,
  LambdaClient,
  ListFunctionsCommand,
  ListProvisionedConcurrencyConfigsCommand,
  TooManyRequestsException,
} from '@aws-sdk/client-lambda';
import { GetResourcesCommand, ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { mockClient } from 'aws-sdk-client-mock';
import { functionStatus, provisionedConcurrencyConfigs } from '../../lambdas/shared/adapters/function-details';
import { listFunctions } from '../../lambdas/shared/adapters/inventory';
import { functionMetrics } from '../../lambdas/shared/adapters/metrics';
import { TokenBucket, type Clock } from '../../lambdas/shared/adapters/rate-limiter';
import { functionTags } from '../../lambdas/shared/adapters/tags';
import { resolveEgress, routeTableCalls, routeTableEgress } from '../../lambdas/shared/adapters/vpc';

const lambdaMock = mockClient(LambdaClient);
const taggingMock = mockClient(ResourceGroupsTaggingAPIClient);
const cloudwatchMock = mockClient(CloudWatchClient);
const ec2Mock = mockClient(EC2Client);

const NOW = Date.parse('2025-06-01T12:00:30Z');
const ARN = (name: string) => `arn:aws:lambda:eu-west-1:123456789012:function:${name}`;

function bucket(): { limiter: TokenBucket; sleeps: number[] } {
  const sleeps: number[] = [];
  let now = 0;
  const clock: Clock = {
    now: () => now,
    sleep: async (ms) => {
      sleeps.push(ms);
      now += ms;
    },
  };
  return { limiter: new TokenBucket({ ratePerSecond: 5, burst: 2, clock }), sleeps };
}

function throttled(): TooManyRequestsException {
  return new TooManyRequestsException({ message: 'Rate exceeded', $metadata: {} });
}

beforeEach(() => {
  lambdaMock.reset();
  taggingMock.reset();
  cloudwatchMock.reset();
  ec2Mock.reset();
});

describe('listFunctions', () => {
  it('reads every page of 50 ($LATEST only) through the rate limiter', async () => {
    lambdaMock
      .on(ListFunctionsCommand)
      .resolvesOnce({ Functions: [{ FunctionName: 'a' }, { FunctionName: 'b' }], NextMarker: 'm1' })
      .resolvesOnce({ Functions: [{ FunctionName: 'c' }], NextMarker: 'm2' })
      .resolvesOnce({ Functions: [{ FunctionName: 'd' }] });
    const { limiter, sleeps } = bucket();

    const names = await listFunctions(limiter, (cfg) => cfg.FunctionName);

    expect(names).toEqual(['a', 'b', 'c', 'd']);
    expect(lambdaMock).toHaveReceivedCommandTimes(ListFunctionsCommand, 3);
    expect(lambdaMock).toHaveReceivedNthSpecificCommandWith(1, ListFunctionsCommand, {
      MaxItems: 50,
      Marker: undefined,
    });
    expect(lambdaMock).toHaveReceivedNthSpecificCommandWith(3, ListFunctionsCommand, { MaxItems: 50, Marker: 'm2' });
    expect(lambdaMock.commandCalls(ListFunctionsCommand)[0]!.args[0].input).not.toHaveProperty('FunctionVersion');
    expect(limiter.taken).toBe(3);
    expect(sleeps).toEqual([200]);
  });

  it('throws when a page cannot be read (no partial inventory)', async () => {
    lambdaMock.on(ListFunctionsCommand).resolvesOnce({ Functions: [], NextMarker: 'm1' }).rejects(throttled());

    await expect(listFunctions(bucket().limiter, (cfg) => cfg)).rejects.toThrow('Rate exceeded');
    expect(lambdaMock).toHaveReceivedCommandTimes(ListFunctionsCommand, 2);
  });
});

describe('functionTags', () => {
  it('queries each tag key for Lambda functions, paginated, and keeps only those keys', async () => {
    taggingMock
      .on(GetResourcesCommand, { TagFilters: [{ Key: 'zero-impact:exclude' }] })
      .resolvesOnce({
        ResourceTagMappingList: [
          {
            ResourceARN: ARN('a'),
            Tags: [
              { Key: 'zero-impact:exclude', Value: 'true' },
              { Key: 'cost', Value: '1' },
            ],
          },
        ],
        PaginationToken: 'p2',
      })
      .resolvesOnce({ ResourceTagMappingList: [], PaginationToken: '' });
    taggingMock.on(GetResourcesCommand, { TagFilters: [{ Key: 'team' }] }).resolves({
      ResourceTagMappingList: [
        { ResourceARN: ARN('a'), Tags: [{ Key: 'team', Value: 'payments' }] },
        { ResourceARN: ARN('b'), Tags: [{ Key: 'team', Value: 'search' }] },
      ],
    });

    const tags = await functionTags(['zero-impact:exclude', 'team']);

    expect(tags.get(ARN('a'))).toEqual({ 'zero-impact:exclude': 'true', team: 'payments' });
    expect(tags.get(ARN('b'))).toEqual({ team: 'search' });
    expect(taggingMock).toHaveReceivedCommandTimes(GetResourcesCommand, 3);
    expect(taggingMock).toHaveReceivedCommandWith(GetResourcesCommand, {
      TagFilters: [{ Key: 'zero-impact:exclude' }],
      ResourceTypeFilters: ['lambda:function'],
      ResourcesPerPage: 100,
      PaginationToken: 'p2',
    });
  });

  it('throws when the query is refused', async () => {
    taggingMock.on(GetResourcesCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));

    await expect(functionTags(['zero-impact:exclude'])).rejects.toThrow('denied');
  });
});

describe('functionMetrics', () => {
  function resultsFor(queries: MetricDataQuery[], values: (id: string) => number[], status = 'Complete') {
    return queries.map((q) => ({
      Id: q.Id,
      StatusCode: status as 'Complete',
      Values: values(q.Id!),
      Timestamps: values(q.Id!).map(() => new Date(NOW - 30 * 60_000)),
    }));
  }

  it('reads Throttles and ConcurrentExecutions for a batch in one call; no datapoints means 0', async () => {
    cloudwatchMock.on(GetMetricDataCommand).callsFake((input: { MetricDataQueries: MetricDataQuery[] }) => ({
      MetricDataResults: resultsFor(input.MetricDataQueries, (id) =>
        id === 't0' ? [2, 3] : id === 'c0' ? [7, 4] : [],
      ),
    }));

    const result = await functionMetrics({ functionNames: ['busy', 'quiet'], lookbackHours: 24, now: NOW });

    expect(result.byFunction.get('busy')).toEqual({ throttles: 5, peakConcurrency: 7 });
    expect(result.byFunction.get('quiet')).toEqual({ throttles: 0, peakConcurrency: 0 });
    expect(cloudwatchMock).toHaveReceivedCommandTimes(GetMetricDataCommand, 1);
    const input = cloudwatchMock.commandCalls(GetMetricDataCommand)[0]!.args[0].input;
    expect(input.StartTime).toEqual(new Date('2025-05-31T12:00:00Z'));
    expect(input.EndTime).toEqual(new Date('2025-06-01T12:00:00Z'));
    expect(input.MetricDataQueries?.[0]).toEqual({
      Id: 't0',
      MetricStat: {
        Metric: {
          Namespace: 'AWS/Lambda',
          MetricName: 'Throttles',
          Dimensions: [{ Name: 'FunctionName', Value: 'busy' }],
        },
        Period: 86400,
        Stat: 'Sum',
      },
      ReturnData: true,
    });
    expect(input.MetricDataQueries?.[1]?.MetricStat).toMatchObject({ Period: 3600, Stat: 'Maximum' });
  });

  it('splits more than 250 functions into calls of at most 500 queries', async () => {
    cloudwatchMock.on(GetMetricDataCommand).callsFake((input: { MetricDataQueries: MetricDataQuery[] }) => ({
      MetricDataResults: resultsFor(input.MetricDataQueries, () => []),
    }));
    const names = Array.from({ length: 260 }, (_, i) => `fn-${i}`);

    const result = await functionMetrics({ functionNames: names, lookbackHours: 24, now: NOW });

    expect(cloudwatchMock).toHaveReceivedCommandTimes(GetMetricDataCommand, 2);
    const sizes = cloudwatchMock
      .commandCalls(GetMetricDataCommand)
      .map((c) => c.args[0].input.MetricDataQueries?.length);
    expect(sizes).toEqual([500, 20]);
    expect(result.byFunction.get('fn-259')).toEqual({ throttles: 0, peakConcurrency: 0 });
  });

  it('follows NextToken and leaves a fact missing when its query did not complete', async () => {
    cloudwatchMock
      .on(GetMetricDataCommand)
      .resolvesOnce({
        MetricDataResults: [
          { Id: 't0', StatusCode: 'PartialData', Values: [1], Timestamps: [new Date(NOW)] },
          { Id: 'c0', StatusCode: 'Forbidden', Values: [] },
        ],
        NextToken: 'next',
      })
      .resolvesOnce({
        MetricDataResults: [{ Id: 't0', StatusCode: 'Complete', Values: [2], Timestamps: [new Date(NOW)] }],
      });

    const result = await functionMetrics({ functionNames: ['fn'], lookbackHours: 24, now: NOW });

    expect(result.byFunction.get('fn')).toEqual({ throttles: 3 });
    expect(cloudwatchMock).toHaveReceivedCommandTimes(GetMetricDataCommand, 2);
    expect(cloudwatchMock).toHaveReceivedNthSpecificCommandWith(2, GetMetricDataCommand, { NextToken: 'next' });
  });

  it('ignores concurrency periods that end before the last hour', async () => {
    cloudwatchMock.on(GetMetricDataCommand).resolves({
      MetricDataResults: [
        { Id: 't0', StatusCode: 'Complete', Values: [] },
        {
          Id: 'c0',
          StatusCode: 'Complete',
          Values: [3, 90],
          Timestamps: [new Date('2025-06-01T11:00:00Z'), new Date('2025-06-01T10:00:00Z')],
        },
      ],
    });

    const result = await functionMetrics({ functionNames: ['fn'], lookbackHours: 24, now: NOW });

    expect(result.byFunction.get('fn')).toEqual({ throttles: 0, peakConcurrency: 3 });
  });

  it('leaves both facts missing when the call is throttled or denied', async () => {
    cloudwatchMock.on(GetMetricDataCommand).rejects(Object.assign(new Error('slow down'), { name: 'Throttling' }));

    const result = await functionMetrics({ functionNames: ['fn'], lookbackHours: 24, now: NOW });

    expect(result.byFunction.get('fn')).toEqual({});
    expect(result.errors).toEqual(['Throttling']);
  });
});

describe('route tables', () => {
  const natTable = (subnet: string): RouteTable => ({
    RouteTableId: `rtb-${subnet}`,
    VpcId: 'vpc-1',
    Associations: [{ SubnetId: subnet, Main: false }],
    Routes: [
      { DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local', State: 'active' },
      { DestinationCidrBlock: '0.0.0.0/0', NatGatewayId: 'nat-1', State: 'active' },
    ],
  });

  it('classifies default routes: NAT gateway or instance, unfollowable targets, internet gateway, blackhole', () => {
    const table = (route: Record<string, string>): RouteTable => ({
      Routes: [{ DestinationCidrBlock: '0.0.0.0/0', State: 'active', ...route }],
    });

    expect(routeTableEgress(table({ NatGatewayId: 'nat-1' }))).toBe('nat');
    expect(routeTableEgress(table({ InstanceId: 'i-1', NetworkInterfaceId: 'eni-1' }))).toBe('nat');
    expect(routeTableEgress(table({ TransitGatewayId: 'tgw-1' }))).toBe('unknown');
    expect(routeTableEgress(table({ GatewayId: 'vpce-1' }))).toBe('unknown');
    expect(routeTableEgress(table({ GatewayId: 'igw-1' }))).toBe('none');
    expect(routeTableEgress(table({ NatGatewayId: 'nat-1', State: 'blackhole' }))).toBe('none');
    expect(routeTableEgress({ Routes: [] })).toBe('none');
  });

  it('uses explicit associations, falls back to the main table, and caches per subnet for the run', async () => {
    ec2Mock
      .on(DescribeRouteTablesCommand, {
        Filters: [{ Name: 'association.subnet-id', Values: ['subnet-a', 'subnet-b'] }],
      })
      .resolves({ RouteTables: [natTable('subnet-a')] });
    ec2Mock
      .on(DescribeRouteTablesCommand, {
        Filters: [
          { Name: 'vpc-id', Values: ['vpc-1'] },
          { Name: 'association.main', Values: ['true'] },
        ],
      })
      .resolves({
        RouteTables: [
          {
            RouteTableId: 'rtb-main',
            VpcId: 'vpc-1',
            Associations: [{ Main: true }],
            Routes: [{ DestinationCidrBlock: '0.0.0.0/0', GatewayId: 'igw-1' }],
          },
        ],
      });
    const fnA = { subnetIds: ['subnet-a'], vpcId: 'vpc-1' };
    const fnAB = { subnetIds: ['subnet-a', 'subnet-b'], vpcId: 'vpc-1' };

    const first = await resolveEgress('run-cache', [fnA, fnAB]);
    const second = await resolveEgress('run-cache', [fnAB]);

    expect(first(fnA)).toBe('nat');
    expect(first(fnAB)).toBe('none');
    expect(second(fnAB)).toBe('none');
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeRouteTablesCommand, 2);
    expect(routeTableCalls()).toBe(2);
  });

  it('leaves the egress unread when the main route table lookup fails', async () => {
    ec2Mock
      .on(DescribeRouteTablesCommand, { Filters: [{ Name: 'association.subnet-id', Values: ['subnet-m'] }] })
      .resolves({ RouteTables: [] });
    ec2Mock
      .on(DescribeRouteTablesCommand, {
        Filters: [
          { Name: 'vpc-id', Values: ['vpc-9'] },
          { Name: 'association.main', Values: ['true'] },
        ],
      })
      .rejects(Object.assign(new Error('denied'), { name: 'UnauthorizedOperation' }));
    const fn = { subnetIds: ['subnet-m'], vpcId: 'vpc-9' };

    const egressOf = await resolveEgress('run-main-fail', [fn]);

    expect(egressOf(fn)).toBeUndefined();
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeRouteTablesCommand, 2);
  });

  it('leaves the egress unread when the lookup fails, and reads again next time (not cached)', async () => {
    ec2Mock
      .on(DescribeRouteTablesCommand)
      .rejectsOnce(Object.assign(new Error('denied'), { name: 'UnauthorizedOperation' }))
      .resolves({ RouteTables: [natTable('subnet-a')] });
    const fn = { subnetIds: ['subnet-a'], vpcId: 'vpc-1' };

    const failed = await resolveEgress('run-fail', [fn]);
    const retried = await resolveEgress('run-fail', [fn]);

    expect(failed(fn)).toBeUndefined();
    expect(retried(fn)).toBe('nat');
    expect(ec2Mock).toHaveReceivedCommandTimes(DescribeRouteTablesCommand, 2);
  });
});

describe('function details', () => {
  it('reads provisioned concurrency configs page by page', async () => {
    lambdaMock
      .on(ListProvisionedConcurrencyConfigsCommand)
      .resolvesOnce({
        ProvisionedConcurrencyConfigs: [{ RequestedProvisionedConcurrentExecutions: 100 }],
        NextMarker: 'm',
      })
      .resolvesOnce({ ProvisionedConcurrencyConfigs: [] });

    const configs = await provisionedConcurrencyConfigs(ARN('fn'), bucket().limiter);

    expect(configs).toEqual([{ RequestedProvisionedConcurrentExecutions: 100 }]);
    expect(lambdaMock).toHaveReceivedCommandTimes(ListProvisionedConcurrencyConfigsCommand, 2);
    expect(lambdaMock).toHaveReceivedCommandWith(ListProvisionedConcurrencyConfigsCommand, {
      FunctionName: ARN('fn'),
      MaxItems: 50,
      Marker: 'm',
    });
  });

  it('keeps only reserved concurrency and readiness from GetFunction', async () => {
    lambdaMock.on(GetFunctionCommand).resolves({
      Configuration: { State: 'Active', LastUpdateStatus: 'Successful', Environment: { Variables: { K: 'secret' } } },
      Concurrency: { ReservedConcurrentExecutions: 10 },
      Code: { Location: 'https://presigned.example' },
    });

    const status = await functionStatus(ARN('fn'), bucket().limiter);

    expect(status).toEqual({ reservedConcurrency: 10, state: 'Active', lastUpdateStatus: 'Successful' });
  });

  it('returns undefined (fact missing) when a read fails after retries', async () => {
    lambdaMock.on(ListProvisionedConcurrencyConfigsCommand).rejects(throttled());
    lambdaMock.on(GetFunctionCommand).rejects(Object.assign(new Error('no'), { name: 'AccessDeniedException' }));
    const failures: string[] = [];

    const configs = await provisionedConcurrencyConfigs(ARN('fn'), bucket().limiter, (f) => failures.push(f.error));
    const status = await functionStatus(ARN('fn'), bucket().limiter, (f) => failures.push(f.error));

    expect(configs).toBeUndefined();
    expect(status).toBeUndefined();
    expect(failures).toEqual(['TooManyRequestsException', 'AccessDeniedException']);
  });
});
