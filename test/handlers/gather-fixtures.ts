/**
 * Shared set-up for the fact-gathering handler tests: the runtime environment, a frozen clock, AWS client mocks,
 * and a captured log stream (Powertools writes to process.stdout).
 */
import { CloudFrontClient } from '@aws-sdk/client-cloudfront';
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import type { ConfigInput } from '../../lib/config';
import { systemClock } from '../../lambdas/shared/adapters/rate-limiter';
import type { FunctionConfiguration, InventoryItem } from '../../lambdas/shared/domain/types';
import { logger, metrics } from '../../lambdas/shared/observability';
import { resetRuntime } from '../../lambdas/shared/runtime';

export const mocks = {
  lambda: mockClient(LambdaClient),
  tagging: mockClient(ResourceGroupsTaggingAPIClient),
  cloudwatch: mockClient(CloudWatchClient),
  ec2: mockClient(EC2Client),
  sns: mockClient(SNSClient),
  s3: mockClient(S3Client),
  ddb: mockClient(DynamoDBDocumentClient),
  ddbRaw: mockClient(DynamoDBClient),
  ssm: mockClient(SSMClient),
  cloudfront: mockClient(CloudFrontClient),
  sfn: mockClient(SFNClient),
};

export const NOW = Date.parse('2025-06-01T12:00:00.000Z');
export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';
export const LAYER = `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:twistlock-defender:32`;
export const WRAPPER = '/opt/twistlock/twistlock_wrapper';
/** A customer secret: must never leave the handler that read it. */
export const CANARY = 'canary-SECRET-5f2b9c';

export const arn = (name: string): string => `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${name}`;

export function baseConfig(overrides: Partial<ConfigInput> = {}): ConfigInput {
  return {
    defender: {
      layerArn: LAYER,
      environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zero-impact/tw-policy' } },
    },
    ...overrides,
  };
}

/** Sets the Lambda environment the runtime reads and forgets the cached runtime. */
export function useRuntime(config: ConfigInput = baseConfig()): void {
  process.env['ZERO_IMPACT_CONFIG'] = JSON.stringify(config);
  process.env['AUDIT_TABLE_NAME'] = 'audit';
  process.env['STATE_TABLE_NAME'] = 'state';
  process.env['SKIP_TOPIC_ARN'] = `arn:aws:sns:${REGION}:${ACCOUNT}:skips`;
  process.env['ALARM_TOPIC_ARN'] = `arn:aws:sns:${REGION}:${ACCOUNT}:alarms`;
  process.env['INVENTORY_BUCKET'] = 'inventory-bucket';
  process.env['ENGINE_FUNCTION_PREFIX'] = 'ZeroImpact-';
  process.env['ENGINE_VERSION'] = '0.1.0';
  resetRuntime();
}

/** Resets every mock, freezes the clock and makes the rate limiter's sleeps return at once (recorded). */
export function prepare(): { sleeps: number[] } {
  for (const mock of Object.values(mocks)) mock.reset();
  jest.restoreAllMocks();
  const sleeps: number[] = [];
  jest.spyOn(systemClock, 'now').mockReturnValue(NOW);
  jest.spyOn(systemClock, 'sleep').mockImplementation(async (ms: number) => {
    sleeps.push(ms);
  });
  return { sleeps };
}

/** Captures every line written to stdout/stderr (Powertools logs and EMF) at DEBUG level. */
export function captureLogs(): { text: () => string } {
  const chunks: string[] = [];
  const capture = (chunk: unknown): boolean => {
    chunks.push(typeof chunk === 'string' ? chunk : String(chunk));
    return true;
  };
  jest.spyOn(process.stdout, 'write').mockImplementation(capture as typeof process.stdout.write);
  jest.spyOn(process.stderr, 'write').mockImplementation(capture as typeof process.stderr.write);
  logger.setLogLevel('DEBUG');
  return { text: () => chunks.join('') };
}

export function silenceLogs(): void {
  logger.setLogLevel('SILENT');
}

/** A function as ListFunctions returns it (Zip, python3.11, 512 MB, 30 s, no VPC: eligible). */
export function fn(name: string, overrides: Partial<FunctionConfiguration> = {}): FunctionConfiguration {
  return {
    FunctionName: name,
    FunctionArn: arn(name),
    PackageType: 'Zip',
    Runtime: 'python3.11',
    Handler: 'app.handler',
    Architectures: ['x86_64'],
    MemorySize: 512,
    Timeout: 30,
    Environment: { Variables: { DB_HOST: 'db.internal', API_KEY: CANARY } },
    Layers: [],
    SnapStart: { ApplyOn: 'None' },
    ...overrides,
  };
}

export function inventoryItem(config: FunctionConfiguration, tags: Record<string, string> = {}): InventoryItem {
  return { configuration: config, tags };
}

/** Every string a set of mocks received, for secret-hygiene assertions. */
export function everythingSent(): string {
  return Object.values(mocks)
    .flatMap((mock) => mock.calls().map((call) => JSON.stringify(call.args[0].input)))
    .join('\n');
}

export interface EmittedMetric {
  name: string;
  value: number;
  dimensions: Record<string, string>;
}

/** Records every single-metric data point the handlers emit (Powertools metrics are disabled in tests). */
export function captureMetrics(): EmittedMetric[] {
  const emitted: EmittedMetric[] = [];
  jest.spyOn(metrics, 'singleMetric').mockImplementation(() => {
    const dimensions: Record<string, string> = {};
    const fake = {
      addDimension: (name: string, value: string) => {
        dimensions[name] = value;
        return fake;
      },
      addMetric: (name: string, _unit: string, value: number) => {
        emitted.push({ name, value, dimensions: { ...dimensions } });
        return fake;
      },
    };
    return fake as unknown as ReturnType<typeof metrics.singleMetric>;
  });
  return emitted;
}
