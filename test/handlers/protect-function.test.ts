import { createHash } from 'node:crypto';
import { clearCaches } from '@aws-lambda-powertools/parameters';
import { ConditionalCheckFailedException, DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EncryptCommand, GenerateMacCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  GetLayerVersionByArnCommand,
  InvalidParameterValueException,
  LambdaClient,
  ListTagsCommand,
  ResourceNotFoundException,
  PreconditionFailedException,
  ResourceConflictException,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import type { ConfigInput } from '../../lib/config';
import { handler, ProtectRequestError, WriteAheadError } from '../../lambdas/protect-function/handler';
import { systemClock } from '../../lambdas/shared/adapters/rate-limiter';
import { resetMacKey } from '../../lambdas/shared/adapters/mac-key';
import * as funnel from '../../lambdas/shared/domain/funnel';
import { valueMac } from '../../lambdas/shared/domain/mac';
import type { AuditItem, FunctionConfiguration, ProtectRequest } from '../../lambdas/shared/domain/types';
import { logger } from '../../lambdas/shared/observability';
import { resetRuntime } from '../../lambdas/shared/runtime';

// Issue 11: the run's shared control-plane schedule has its own tests (control-plane-budget*.test.ts); here it is an
// in-memory one, so the DynamoDB write counts below stay this handler's own.
jest.mock('../../lambdas/shared/adapters/control-plane-budget', () => {
  const actual = jest.requireActual('../../lambdas/shared/adapters/control-plane-budget');
  class MemorySlotStore {
    private tat = Number.NEGATIVE_INFINITY;
    async reserve(r: { nowMs: number; count: number; spacingMs: number }): Promise<number> {
      const first = Math.max(this.tat, Math.ceil(r.nowMs));
      this.tat = first + r.count * r.spacingMs;
      return first;
    }
  }
  return { ...actual, DynamoSlotStore: MemorySlotStore };
});

const lambda = mockClient(LambdaClient);
const ddb = mockClient(DynamoDBDocumentClient);
mockClient(DynamoDBClient);
const sns = mockClient(SNSClient);
const ssm = mockClient(SSMClient);
const kms = mockClient(KMSClient);
/** What KMS GenerateMac answers for the key-derivation message: the local HMAC key. */
const MAC_KEY = new Uint8Array(32).fill(3);
const mac = (variable: string, value: string): string => valueMac(MAC_KEY, FUNCTION, variable, value);

const NOW = Date.parse('2025-03-01T10:00:00.000Z');
const ACCOUNT = '123456789012';
const DEFENDER = `arn:aws:lambda:eu-west-1:${ACCOUNT}:layer:twistlock-defender:32`;
const OTHER_LAYER = `arn:aws:lambda:eu-west-1:${ACCOUNT}:layer:pandas:4`;
const WRAPPER = '/opt/twistlock/twistlock_wrapper';
const POLICY_PARAMETER = '/zero-impact/tw-policy';
/** The Defender policy is a secret too: it never leaves the Lambda either. */
const POLICY = 'TWPOLICY-9d8c7b6a5f4e3d2c1b0a';
/** A customer's secret: it must never appear in any audit item, message or log line. */
const CANARY = 'CANARY-7f3a9e21-do-not-leak';
const FUNCTION = 'orders-api';
const FUNCTION_ARN = `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${FUNCTION}`;
const SKIP_TOPIC = `arn:aws:sns:eu-west-1:${ACCOUNT}:zero-impact-skips`;

function baseConfig(overrides: Partial<ConfigInput> = {}): ConfigInput {
  return {
    mode: 'protect',
    defender: {
      layerArn: DEFENDER,
      environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: POLICY_PARAMETER } },
    },
    maxProtectionsPerRun: 25,
    ...overrides,
  };
}

function useConfig(config: ConfigInput): void {
  process.env['ZERO_IMPACT_CONFIG'] = JSON.stringify(config);
  process.env['AUDIT_TABLE_NAME'] = 'audit';
  process.env['STATE_TABLE_NAME'] = 'state';
  process.env['SKIP_TOPIC_ARN'] = SKIP_TOPIC;
  process.env['ALARM_TOPIC_ARN'] = `arn:aws:sns:eu-west-1:${ACCOUNT}:zero-impact-alarms`;
  process.env['INVENTORY_BUCKET'] = 'inventory';
  process.env['ENGINE_FUNCTION_PREFIX'] = 'ZeroImpact-';
  process.env['ENGINE_VERSION'] = '0.1.0';
  process.env['MAC_KEY_ID'] = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/mac`;
  process.env['RESTORE_KEY_ID'] = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/stack`;
  resetRuntime();
}

function fresh(overrides: Partial<FunctionConfiguration> = {}): FunctionConfiguration {
  return {
    FunctionName: FUNCTION,
    FunctionArn: FUNCTION_ARN,
    PackageType: 'Zip',
    Runtime: 'python3.11',
    Handler: 'app.handler',
    Architectures: ['x86_64'],
    MemorySize: 512,
    Timeout: 30,
    Environment: { Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info' } },
    Layers: [{ Arn: OTHER_LAYER, CodeSize: 1000 }],
    VpcConfig: { SubnetIds: [], SecurityGroupIds: [] },
    SnapStart: { ApplyOn: 'None' },
    State: 'Active',
    LastUpdateStatus: 'Successful',
    RevisionId: 'rev-1',
    ...overrides,
  };
}

function request(overrides: Partial<ProtectRequest> = {}): ProtectRequest {
  return {
    runId: 'run-1',
    startedAt: '2025-03-01T09:59:00.000Z',
    protectionAllowed: true,
    functionName: FUNCTION,
    functionArn: FUNCTION_ARN,
    facts: {
      // Redacted as assess-batch hands it over: values replaced by placeholders of the same size.
      configuration: fresh({
        Environment: { Variables: { DB_PASSWORD: '*'.repeat(CANARY.length), LOG_LEVEL: '****' } },
      }),
      tags: { team: 'payments' },
      provisionedConcurrencyConfigs: [],
      throttles24h: 0,
      vpcEgress: 'nat',
      peakConcurrency: 0,
    },
    ...overrides,
  };
}

const PROTECTED_VARIABLES = {
  DB_PASSWORD: CANARY,
  LOG_LEVEL: 'info',
  AWS_LAMBDA_EXEC_WRAPPER: WRAPPER,
  TW_POLICY: POLICY,
};
const PROTECTED_LAYERS = [OTHER_LAYER, DEFENDER];

function afterUpdate(status: string, reason?: string): FunctionConfiguration {
  return fresh({
    Layers: PROTECTED_LAYERS.map((Arn) => ({ Arn })),
    Environment: { Variables: PROTECTED_VARIABLES },
    LastUpdateStatus: status,
    ...(reason !== undefined ? { LastUpdateStatusReason: reason } : {}),
    RevisionId: 'rev-2',
  });
}

function auditItems(): AuditItem[] {
  return ddb.commandCalls(PutCommand).map((call) => call.args[0].input.Item as AuditItem);
}

function outcomes(): string[] {
  return auditItems().map((item) => item.outcome);
}

function awsError<T extends Error>(Type: new (opts: { message: string; $metadata: object }) => T, message: string): T {
  return new Type({ message, $metadata: {} });
}

let sleep: jest.SpyInstance;

beforeEach(() => {
  lambda.reset();
  ddb.reset();
  sns.reset();
  ssm.reset();
  kms.reset();
  resetMacKey();
  kms.on(GenerateMacCommand).resolves({ Mac: MAC_KEY });
  clearCaches();
  jest.restoreAllMocks();
  // A virtual clock: sleeping advances it at once (no real waiting), so the rate limiter paces as it would live.
  let now = NOW;
  jest.spyOn(systemClock, 'now').mockImplementation(() => now);
  sleep = jest.spyOn(systemClock, 'sleep').mockImplementation(async (ms: number) => {
    now += ms;
  });
  useConfig(baseConfig());

  // AWS returns GetFunction's Tags only to a caller allowed lambda:ListTags: the handler reads them with ListTags.
  lambda.on(GetFunctionCommand).resolves({ Configuration: fresh() as never });
  lambda.on(ListTagsCommand).resolves({ Tags: { team: 'payments' } });
  lambda.on(GetLayerVersionByArnCommand).resolves({
    LayerVersionArn: DEFENDER,
    Version: 32,
    CompatibleRuntimes: ['python3.11', 'python3.12', 'nodejs20.x'],
    CompatibleArchitectures: ['x86_64'],
  });
  lambda.on(UpdateFunctionConfigurationCommand).resolves({});
  lambda
    .on(GetFunctionConfigurationCommand)
    .resolvesOnce(afterUpdate('InProgress') as never)
    .resolves(afterUpdate('Successful') as never);
  ssm.on(GetParameterCommand).resolves({ Parameter: { Name: POLICY_PARAMETER, Value: POLICY, Type: 'SecureString' } });
  ddb.on(GetCommand).resolves({});
  ddb.on(BatchGetCommand).resolves({ Responses: { state: [] } });
  ddb.on(BatchWriteCommand).resolves({});
  ddb.on(UpdateCommand).resolves({});
  ddb.on(PutCommand).resolves({});
  sns.on(PublishCommand).resolves({ MessageId: 'm-1' });
});

describe('protect-function', () => {
  it('protects an eligible function: re-read, write-ahead, precondition, wait, complete', async () => {
    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'PROTECTED', reasons: [] });
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 1);
    expect(lambda).toHaveReceivedCommandWith(GetFunctionCommand, { FunctionName: FUNCTION });
    expect(ssm).toHaveReceivedCommandWith(GetParameterCommand, { Name: POLICY_PARAMETER, WithDecryption: true });
    expect(ddb).toHaveReceivedCommandWith(GetCommand, {
      TableName: 'state',
      Key: { pk: `EXCLUDE#${FUNCTION}` },
      ConsistentRead: true,
    });
    // The lease renewed, then the run's slot (issue 9: only the lease holder changes functions).
    expect(ddb).toHaveReceivedCommandTimes(UpdateCommand, 2);
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, { TableName: 'state', Key: { pk: 'LOCK' } });
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
      TableName: 'state',
      Key: { pk: 'RUN#run-1' },
      ExpressionAttributeValues: {
        ':one': 1,
        ':max': 25,
        ':exp': Date.parse('2025-03-01T09:59:00.000Z') / 1000 + 172800,
      },
    });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 1);
    expect(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]?.args[0].input).toEqual({
      FunctionName: FUNCTION,
      RevisionId: 'rev-1',
      Layers: PROTECTED_LAYERS,
      Environment: { Variables: PROTECTED_VARIABLES },
    });
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 2);
    expect(outcomes()).toEqual(['PENDING', 'PROTECTED']);
    expect(ddb).toHaveReceivedCommandWith(BatchWriteCommand, {
      RequestItems: {
        state: [
          {
            PutRequest: {
              Item: {
                pk: `LAST#${FUNCTION}`,
                functionName: FUNCTION,
                decidedAt: expect.stringMatching(/^2025-03-01T10:00:/),
                outcome: 'PROTECTED',
                reasons: [],
                warnings: [],
                ourValueMacs: {
                  AWS_LAMBDA_EXEC_WRAPPER: mac('AWS_LAMBDA_EXEC_WRAPPER', WRAPPER),
                  TW_POLICY: mac('TW_POLICY', POLICY),
                },
              },
            },
          },
        ],
      },
    });
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('records the after-image of its own change, not a change someone made after it', async () => {
    lambda.on(GetFunctionConfigurationCommand).resolves(
      fresh({
        Layers: PROTECTED_LAYERS.map((Arn) => ({ Arn })),
        Environment: { Variables: { ...PROTECTED_VARIABLES, ADDED_BY_A_DEPLOY: 'later' } },
        LastUpdateStatus: 'Successful',
        RevisionId: 'rev-3',
      }) as never,
    );

    await handler(request());

    const protectedItem = auditItems().find((item) => item.outcome === 'PROTECTED');
    expect(protectedItem?.after?.variableNames).toEqual(Object.keys(PROTECTED_VARIABLES).sort());
    expect(protectedItem?.after?.layers).toEqual(PROTECTED_LAYERS);
    expect(protectedItem?.after?.revisionId).toBe('rev-3');
  });

  it('writes the write-ahead record with the before-image before it changes anything', async () => {
    await handler(request());

    const [pending, done] = auditItems();
    const pendingPut = ddb.commandCalls(PutCommand)[0];
    const update = lambda.commandCalls(UpdateFunctionConfigurationCommand)[0];
    expect(pendingPut !== undefined && update !== undefined && pendingPut.calledBefore(update)).toBe(true);
    expect(pending).toMatchObject({
      functionName: FUNCTION,
      outcome: 'PENDING',
      runId: 'run-1',
      mode: 'protect',
      account: ACCOUNT,
      region: 'eu-west-1',
      changeKey: 'CHANGE',
      owner: 'payments',
      before: {
        layers: [OTHER_LAYER],
        variableNames: ['DB_PASSWORD', 'LOG_LEVEL'],
        ourValueMacs: {},
        handler: 'app.handler',
        revisionId: 'rev-1',
      },
      // The planned after-image: what the change will produce (so an unfinished change can still be rolled back).
      after: {
        layers: PROTECTED_LAYERS,
        variableNames: ['AWS_LAMBDA_EXEC_WRAPPER', 'DB_PASSWORD', 'LOG_LEVEL', 'TW_POLICY'],
        ourValueMacs: {
          TW_POLICY: mac('TW_POLICY', POLICY),
          AWS_LAMBDA_EXEC_WRAPPER: mac('AWS_LAMBDA_EXEC_WRAPPER', WRAPPER),
        },
        revisionId: null,
      },
    });
    expect(done).toMatchObject({
      outcome: 'PROTECTED',
      after: {
        layers: PROTECTED_LAYERS,
        variableNames: ['AWS_LAMBDA_EXEC_WRAPPER', 'DB_PASSWORD', 'LOG_LEVEL', 'TW_POLICY'],
        ourValueMacs: {
          TW_POLICY: mac('TW_POLICY', POLICY),
          AWS_LAMBDA_EXEC_WRAPPER: mac('AWS_LAMBDA_EXEC_WRAPPER', WRAPPER),
        },
        revisionId: 'rev-2',
      },
    });
    expect(ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'audit',
      ConditionExpression: 'attribute_not_exists(#pk) AND attribute_not_exists(#sk)',
    });
  });

  it('changes nothing and fails when the write-ahead record cannot be written', async () => {
    ddb.on(PutCommand).rejects(new Error('ProvisionedThroughputExceeded'));

    await expect(handler(request())).rejects.toThrow(WriteAheadError);

    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 1);
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('skips with CHANGED_DURING_RUN when the function changed after it was read', async () => {
    lambda
      .on(UpdateFunctionConfigurationCommand)
      .rejects(
        awsError(PreconditionFailedException, 'The Revision Id provided does not match the latest Revision Id.'),
      );

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['CHANGED_DURING_RUN'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 1);
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 0);
    expect(outcomes()).toEqual(['PENDING', 'SKIPPED']);
    expect(auditItems()[1]).toMatchObject({ primaryReason: 'CHANGED_DURING_RUN', before: { revisionId: 'rev-1' } });
    expect(auditItems()[1]?.after).toBeUndefined();
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(sns).toHaveReceivedCommandWith(PublishCommand, {
      TopicArn: SKIP_TOPIC,
      MessageAttributes: expect.objectContaining({
        outcome: { DataType: 'String', StringValue: 'SKIPPED' },
        functionName: { DataType: 'String', StringValue: FUNCTION },
        owner: { DataType: 'String', StringValue: 'payments' },
        reasons: { DataType: 'String.Array', StringValue: '["CHANGED_DURING_RUN"]' },
      }),
    });
  });

  it('records PROTECTED, not "nothing was changed", when the SDK resent an update that had been applied', async () => {
    // The first attempt was applied but its answer lost (ECONNRESET); the SDK's resend then fails the precondition.
    lambda.on(UpdateFunctionConfigurationCommand).rejects(
      new PreconditionFailedException({
        message: 'The Revision Id provided does not match the latest Revision Id.',
        $metadata: { attempts: 2 },
      }),
    );

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'PROTECTED', reasons: [] });
    expect(outcomes()).toEqual(['PENDING', 'PROTECTED']);
    expect(auditItems()[1]?.after).toMatchObject({ layers: PROTECTED_LAYERS, revisionId: 'rev-2' });
  });

  it('keeps CHANGED_DURING_RUN when a resent update was not ours to find', async () => {
    lambda.on(UpdateFunctionConfigurationCommand).rejects(
      new PreconditionFailedException({
        message: 'The Revision Id provided does not match the latest Revision Id.',
        $metadata: { attempts: 2 },
      }),
    );
    lambda.on(GetFunctionConfigurationCommand).resolves(fresh({ MemorySize: 1024, RevisionId: 'rev-9' }) as never);

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['CHANGED_DURING_RUN'] });
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 1);
    expect(outcomes()).toEqual(['PENDING', 'SKIPPED']);
  });

  it('records FAILED with the planned after-image when a resent update cannot be verified', async () => {
    lambda.on(UpdateFunctionConfigurationCommand).rejects(
      new PreconditionFailedException({
        message: 'The Revision Id provided does not match the latest Revision Id.',
        $metadata: { attempts: 3 },
      }),
    );
    lambda.on(GetFunctionConfigurationCommand).rejects(new Error('socket hang up'));

    const output = await handler(request());

    expect(output.outcome).toBe('FAILED');
    const failed = auditItems()[1];
    expect(failed?.after).toMatchObject({ layers: PROTECTED_LAYERS });
    expect(failed?.detail).toContain('may have been applied');
    expect(failed?.detail).toContain(`npx zero-impact rollback --function ${FUNCTION}`);
  });

  it('retries an update in progress with backoff, then skips with FUNCTION_NOT_READY', async () => {
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
    lambda
      .on(UpdateFunctionConfigurationCommand)
      .rejects(awsError(ResourceConflictException, 'An update is in progress for resource'));

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['FUNCTION_NOT_READY'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 5);
    for (const backoff of [500, 1000, 2000, 4000]) expect(sleep).toHaveBeenCalledWith(backoff);
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 0);
    expect(outcomes()).toEqual(['PENDING', 'SKIPPED']);
  });

  it('protects when a conflicting update finishes within the retries', async () => {
    lambda
      .on(UpdateFunctionConfigurationCommand)
      .rejectsOnce(awsError(ResourceConflictException, 'An update is in progress'))
      .resolves({});

    const output = await handler(request());

    expect(output.outcome).toBe('PROTECTED');
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 2);
  });

  it('records FAILED with AWS’s reason when the update fails, and leaves the function as AWS left it', async () => {
    lambda
      .on(GetFunctionConfigurationCommand)
      .resolves(afterUpdate('Failed', 'Layer extraction failed: unzip error') as never);

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'FAILED', reasons: [] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 1);
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 1);
    const failed = auditItems()[1];
    expect(failed).toMatchObject({ outcome: 'FAILED', changeKey: 'CHANGE', after: { layers: PROTECTED_LAYERS } });
    expect(failed?.detail).toContain('Layer extraction failed: unzip error');
    expect(failed?.detail).toContain(`npx zero-impact rollback --function ${FUNCTION}`);
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
  });

  it('records FAILED with AWS’s message when access is denied, having changed nothing', async () => {
    const denied = new Error('User is not authorized to perform: lambda:UpdateFunctionConfiguration');
    denied.name = 'AccessDeniedException';
    lambda.on(UpdateFunctionConfigurationCommand).rejects(denied);

    const output = await handler(request());

    expect(output.outcome).toBe('FAILED');
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 1);
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 0);
    expect(auditItems()[1]?.detail).toBe(
      'UpdateFunctionConfiguration was rejected (AccessDeniedException: User is not authorized to perform: lambda:UpdateFunctionConfiguration): nothing was changed; not tried again before 2025-03-01T11:00:00.377Z unless the function changes',
    );
  });

  it('records FAILED with the env-quota message, its echoed variables map dropped', async () => {
    const quota = new Error(
      'Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: {"DB_PASSWORD":"CANARY-7f3a',
    );
    quota.name = 'InvalidParameterValueException';
    lambda.on(UpdateFunctionConfigurationCommand).rejects(quota);

    const output = await handler(request());

    expect(output.outcome).toBe('FAILED');
    expect(auditItems()[1]?.detail).toBe(
      'UpdateFunctionConfiguration was rejected (InvalidParameterValueException: Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: [redacted]): nothing was changed; not tried again before 2025-03-01T11:00:00.377Z unless the function changes',
    );
  });

  it('records FAILED when the update does not complete within the bounded wait', async () => {
    lambda.on(GetFunctionConfigurationCommand).resolves(afterUpdate('InProgress') as never);

    const output = await handler(request());

    expect(output.outcome).toBe('FAILED');
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 60);
    const waited = sleep.mock.calls.reduce((total: number, [ms]: [number]) => total + ms, 0);
    expect(waited).toBeLessThanOrEqual(300_000);
    expect(auditItems()[1]?.detail).toContain('update did not complete');
  });

  it('defers the function when the run has used its maxProtectionsPerRun', async () => {
    ddb
      .on(UpdateCommand, { Key: { pk: 'RUN#run-1' } })
      .rejects(new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} }));

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'DEFERRED', reasons: [] });
    expect(ddb).toHaveReceivedCommandWith(UpdateCommand, {
      ConditionExpression: 'attribute_not_exists(protections) OR protections < :max',
      ExpressionAttributeValues: expect.objectContaining({ ':max': 25 }),
    });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(outcomes()).toEqual(['DEFERRED']);
    expect(auditItems()[0]?.detail).toContain('maxProtectionsPerRun (25)');
    // Issue 11: a deferral is not notified (the run summary counts the deferred).
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('skips when the fresh facts fail the funnel (memory lowered since the inventory)', async () => {
    lambda.on(GetFunctionCommand).resolves({ Configuration: fresh({ MemorySize: 128 }) as never });

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['MEMORY_LOW'] });
    expect(ddb).toHaveReceivedCommandTimes(UpdateCommand, 0);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('skips when the fresh reserved concurrency is saturated', async () => {
    lambda.on(GetFunctionCommand).resolves({
      Configuration: fresh() as never,
      Concurrency: { ReservedConcurrentExecutions: 10 },
    });
    const saturated = request();
    saturated.facts.peakConcurrency = 9;

    const output = await handler(saturated);

    expect(output.reasons).toEqual(['CONCURRENCY_SATURATED']);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('records ALREADY_PROTECTED when someone protected it in between', async () => {
    lambda.on(GetFunctionCommand).resolves({ Configuration: afterUpdate('Successful') as never });

    const output = await handler(request());

    expect(output.outcome).toBe('ALREADY_PROTECTED');
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(outcomes()).toEqual(['ALREADY_PROTECTED']);
  });

  it('skips a function rolled back and excluded since the inventory', async () => {
    ddb
      .on(GetCommand, { TableName: 'state' })
      .resolves({ Item: { pk: `EXCLUDE#${FUNCTION}`, functionName: FUNCTION } });

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['EXCLUDED'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('skips when the Defender policy cannot be read from SSM', async () => {
    ssm.on(GetParameterCommand).rejects(new Error('ParameterNotFound'));

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['FACTS_MISSING'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('skips when the layer does not declare the function’s runtime', async () => {
    const layerArn = `arn:aws:lambda:eu-west-1:${ACCOUNT}:layer:twistlock-defender:40`;
    useConfig(baseConfig({ defender: { ...baseConfig().defender, layerArn } }));
    lambda.on(GetLayerVersionByArnCommand).resolves({ LayerVersionArn: layerArn, CompatibleRuntimes: ['nodejs20.x'] });

    const output = await handler(request());

    expect(output.reasons).toEqual(['RUNTIME_UNSUPPORTED']);
    expect(lambda).toHaveReceivedCommandWith(GetLayerVersionByArnCommand, { Arn: layerArn });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('skips when GetFunction fails', async () => {
    lambda.on(GetFunctionCommand).rejects(new Error('Rate exceeded'));

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['FACTS_MISSING'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('refuses to change anything in dry-run mode', async () => {
    useConfig(baseConfig({ mode: 'dry-run' }));

    const output = await handler(request());

    expect(output.outcome).toBe('WOULD_PROTECT');
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 0);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(outcomes()).toEqual(['WOULD_PROTECT']);
  });

  it('never touches the engine’s own functions', async () => {
    const own = request({ functionName: 'ZeroImpact-ProtectFunction' });

    const output = await handler(own);

    expect(output).toEqual({ functionName: 'ZeroImpact-ProtectFunction', outcome: 'SKIPPED', reasons: ['EXCLUDED'] });
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 0);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('changes nothing when the run’s layer check failed', async () => {
    const output = await handler(request({ protectionAllowed: false }));

    expect(output.reasons).toEqual(['DEFENDER_LAYER_INVALID']);
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 0);
  });

  it('does not publish an unchanged repeat of the previous skip', async () => {
    ddb.on(GetCommand, { TableName: 'state' }).resolves({ Item: { pk: `EXCLUDE#${FUNCTION}` } });
    ddb.on(BatchGetCommand).resolves({
      Responses: { state: [{ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['EXCLUDED'], warnings: [] }] },
    });

    await handler(request());

    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 0);
    expect(auditItems()[0]).toMatchObject({ outcome: 'SKIPPED', repeat: true });
  });

  it('rejects an event that is not a ProtectRequest, reading nothing', async () => {
    await expect(handler({ functionName: FUNCTION })).rejects.toThrow(ProtectRequestError);

    expect(lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 0);
  });
});

describe('secret hygiene', () => {
  function capture(): () => string {
    const lines: string[] = [];
    const record = (...args: unknown[]) => {
      lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      return true;
    };
    jest.spyOn(process.stdout, 'write').mockImplementation(record);
    jest.spyOn(process.stderr, 'write').mockImplementation(record);
    for (const method of ['log', 'info', 'warn', 'error', 'debug'] as const) {
      jest.spyOn(console, method).mockImplementation(record);
    }
    logger.setLogLevel('DEBUG');
    return () => lines.join('\n');
  }

  afterEach(() => logger.setLogLevel('SILENT'));

  function everythingWritten(logs: string): string {
    return [
      JSON.stringify(ddb.calls().map((call) => call.args[0].input)),
      JSON.stringify(sns.calls().map((call) => call.args[0].input)),
      logs,
    ].join('\n');
  }

  it('never writes, publishes or logs a value that AWS echoes JSON-escaped in its env-quota message', async () => {
    const inner = 'JSON-CANARY-41c9-do-not-leak';
    const variables = { APP_CONFIG: `{"password":"${inner}"}`, LOG_LEVEL: 'info' };
    lambda
      .on(GetFunctionCommand)
      .resolves({ Configuration: fresh({ Environment: { Variables: variables } }) as never });
    const measured = JSON.stringify({ ...variables, AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY });
    const quota = new Error(
      `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${measured}`,
    );
    quota.name = 'InvalidParameterValueException';
    lambda.on(UpdateFunctionConfigurationCommand).rejects(quota);
    const logs = capture();

    const output = await handler(request());

    expect(output.outcome).toBe('FAILED');
    const written = everythingWritten(logs());
    expect(written).toContain(FUNCTION);
    expect(written).not.toContain(inner);
    expect(written).not.toContain(POLICY);
  });

  it.each([
    ['protected', () => undefined],
    [
      'rejected with an AWS message that echoes a value',
      () => {
        const echo = new Error(`Invalid value ${CANARY} and ${POLICY}`);
        echo.name = 'InvalidParameterValueException';
        lambda.on(UpdateFunctionConfigurationCommand).rejects(echo);
      },
    ],
    [
      'failed with a reason that echoes a value',
      () => {
        lambda
          .on(GetFunctionConfigurationCommand)
          .resolves(afterUpdate('Failed', `could not apply ${CANARY}`) as never);
      },
    ],
    [
      'skipped on the fresh facts',
      () => {
        lambda.on(GetFunctionCommand).resolves({ Configuration: fresh({ MemorySize: 128 }) as never });
      },
    ],
  ])('never writes, publishes or logs a variable value (%s)', async (_name, arrange) => {
    arrange();
    const logs = capture();

    await handler(request());

    const written = everythingWritten(logs());
    expect(logs()).toContain(FUNCTION);
    expect(sns.calls().length + ddb.calls().length).toBeGreaterThan(0);
    expect(written).not.toContain(CANARY);
    expect(written).not.toContain(POLICY);
    expect(written).toContain(FUNCTION);
  });
});

describe('issue 8 (SECRETS): keyed MACs of our values, the in-place refresh of an outdated Defender configuration', () => {
  const OLD_POLICY = 'TWPOLICY-old-rotated-0001';
  /** A function the engine protected with OLD_POLICY; the configured policy has since been rotated to POLICY. */
  function outdated(): FunctionConfiguration {
    return afterUpdate('Successful', undefined);
  }
  function withOldPolicy(): FunctionConfiguration {
    return fresh({
      Layers: PROTECTED_LAYERS.map((Arn) => ({ Arn })),
      Environment: { Variables: { ...PROTECTED_VARIABLES, TW_POLICY: OLD_POLICY } },
      RevisionId: 'rev-1',
    });
  }
  /** The last-decision digest keeps the MACs of what the engine wrote at the latest protection. */
  function engineWroteOldPolicy(): void {
    ddb.on(BatchGetCommand).resolves({
      Responses: {
        state: [
          {
            pk: `LAST#${FUNCTION}`,
            functionName: FUNCTION,
            outcome: 'PROTECTED',
            reasons: [],
            warnings: [],
            ourValueMacs: {
              AWS_LAMBDA_EXEC_WRAPPER: mac('AWS_LAMBDA_EXEC_WRAPPER', WRAPPER),
              TW_POLICY: mac('TW_POLICY', OLD_POLICY),
            },
          },
        ],
      },
    });
  }
  /** Until the FUNNEL branch lands gate 23, stand in for its verdict on such a function. */
  function funnelSaysOutdated(): jest.SpyInstance {
    const spy = jest.spyOn(funnel, 'assess');
    spy.mockImplementation((_facts, context) => {
      expect((context as { engineWritten?: ReadonlySet<string> }).engineWritten).toEqual(new Set(['TW_POLICY']));
      return {
        functionName: FUNCTION,
        functionArn: FUNCTION_ARN,
        verdict: 'ALREADY_PROTECTED',
        reasons: [],
        warnings: ['DEFENDER_CONFIG_OUTDATED' as never],
        checks: [],
      };
    });
    return spy;
  }

  it('item 3: derives the MAC key with one kms:GenerateMac per container, on MAC_KEY_ID', async () => {
    await handler(request());
    await handler(request({ runId: 'run-2' }));

    expect(kms).toHaveReceivedCommandTimes(GenerateMacCommand, 1);
    expect(kms).toHaveReceivedCommandWith(GenerateMacCommand, {
      KeyId: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/mac`,
      MacAlgorithm: 'HMAC_SHA_256',
    });
  });

  it('item 3: changes nothing when the MAC key cannot be derived (SKIPPED FACTS_MISSING)', async () => {
    kms.on(GenerateMacCommand).rejects(new Error('AccessDeniedException'));

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['FACTS_MISSING'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('item 3: secret hygiene: the canary, its SHA-256 (hex and base64) never appear in items, messages or logs', async () => {
    const lines: string[] = [];
    const record = (...args: unknown[]) => {
      lines.push(args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
      return true;
    };
    jest.spyOn(process.stdout, 'write').mockImplementation(record);
    jest.spyOn(process.stderr, 'write').mockImplementation(record);
    logger.setLogLevel('DEBUG');
    lambda.on(GetFunctionConfigurationCommand).resolves(afterUpdate('Failed', `could not apply ${CANARY}`) as never);

    try {
      await handler(request());
    } finally {
      logger.setLogLevel('SILENT');
    }

    const written = [
      JSON.stringify(ddb.calls().map((call) => call.args[0].input)),
      JSON.stringify(sns.calls().map((call) => call.args[0].input)),
      lines.join('\n'),
    ].join('\n');
    expect(written).toContain('ourValueMacs');
    for (const value of [CANARY, POLICY, 'info']) {
      expect(written).not.toContain(createHash('sha256').update(value).digest('hex'));
      expect(written).not.toContain(createHash('sha256').update(value).digest('base64'));
    }
    expect(written).not.toContain(CANARY);
    expect(written).not.toContain(POLICY);
    expect(written).not.toContain('variableHashes');
  });

  it('item 7: refreshes a rotated value in place: restore item, write-ahead, RevisionId, only our variable', async () => {
    engineWroteOldPolicy();
    lambda.on(GetFunctionCommand).resolves({ Configuration: withOldPolicy() as never, Tags: { team: 'payments' } });
    lambda.on(GetFunctionConfigurationCommand).resolves(outdated() as never);
    kms.on(EncryptCommand).resolves({ CiphertextBlob: new Uint8Array([1, 2, 3]) });
    funnelSaysOutdated();

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'PROTECTED', reasons: [] });
    expect(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]?.args[0].input).toEqual({
      FunctionName: FUNCTION,
      RevisionId: 'rev-1',
      Layers: PROTECTED_LAYERS,
      Environment: { Variables: PROTECTED_VARIABLES },
    });
    expect(kms).toHaveReceivedCommandWith(EncryptCommand, {
      KeyId: `arn:aws:kms:eu-west-1:${ACCOUNT}:key/stack`,
      EncryptionContext: { purpose: 'zero-impact/refresh-restore', functionName: FUNCTION, runId: 'run-1' },
      Plaintext: new TextEncoder().encode(JSON.stringify({ TW_POLICY: OLD_POLICY })),
    });
    const puts = ddb.commandCalls(PutCommand).map((call) => call.args[0].input);
    expect(puts.map((put) => [put.TableName, put.Item?.['pk'] ?? put.Item?.['outcome']])).toEqual([
      ['state', `RESTORE#${FUNCTION}#run-1`],
      ['audit', 'PENDING'],
      ['audit', 'PROTECTED'],
    ]);
    expect(puts[0]?.Item).not.toHaveProperty('expiresAt');
    const [pending, done] = puts.filter((put) => put.TableName === 'audit').map((put) => put.Item as AuditItem);
    expect(pending?.before?.ourValueMacs['TW_POLICY']).toBe(mac('TW_POLICY', OLD_POLICY));
    expect(done?.after?.ourValueMacs['TW_POLICY']).toBe(mac('TW_POLICY', POLICY));
    expect(JSON.stringify(ddb.calls().map((call) => call.args[0].input))).not.toContain(OLD_POLICY);
  });

  it('item 7: records ALREADY_PROTECTED with DEFENDER_CONFIG_OUTDATED when the refresh is not done (cap reached)', async () => {
    engineWroteOldPolicy();
    lambda.on(GetFunctionCommand).resolves({ Configuration: withOldPolicy() as never, Tags: { team: 'payments' } });
    ddb.on(UpdateCommand).rejects(new ConditionalCheckFailedException({ message: 'cap', $metadata: {} }));
    funnelSaysOutdated();

    const output = await handler(request());

    expect(output.outcome).toBe('ALREADY_PROTECTED');
    expect(auditItems()[0]?.warnings).toEqual(['DEFENDER_CONFIG_OUTDATED']);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('item 7: never refreshes a value the engine did not write (no MAC match: no engineWritten)', async () => {
    lambda.on(GetFunctionCommand).resolves({ Configuration: withOldPolicy() as never, Tags: { team: 'payments' } });

    const output = await handler(request());

    expect(output.outcome).toBe('SKIPPED');
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });
});

describe('issue 8 (protect side)', () => {
  const OLD_DEFENDER = `arn:aws:lambda:eu-west-1:${ACCOUNT}:layer:twistlock-defender:31`;

  it('item 1: skips EXCLUDED on an exclusion tag added after the inventory, read with ListTags', async () => {
    lambda.on(ListTagsCommand).resolves({ Tags: { team: 'payments', 'zero-impact:exclude': 'true' } });

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['EXCLUDED'] });
    expect(lambda).toHaveReceivedCommandWith(ListTagsCommand, { Resource: FUNCTION_ARN });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(outcomes()).toEqual(['SKIPPED']);
  });

  it('item 1: skips FACTS_MISSING when the fresh tags cannot be read', async () => {
    lambda.on(ListTagsCommand).rejects(new Error('AccessDeniedException: not authorized to perform lambda:ListTags'));

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['FACTS_MISSING'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(auditItems()[0]?.detail).toMatch(/ListTags failed/);
  });

  it('item 1: keeps the inventory owner when the fresh tags have none', async () => {
    lambda.on(ListTagsCommand).resolves({ Tags: {} });

    const output = await handler(request());

    expect(output.outcome).toBe('PROTECTED');
    expect(auditItems()[0]?.owner).toBe('payments'); // from the inventory when the tag is gone: never lost
  });

  it('item 8: the PROTECTED record of an upgrade carries no DEFENDER_OUTDATED warning', async () => {
    // An older Defender and our wrapper, but not our TW_POLICY: eligible, and the plan replaces the layer in place.
    lambda.on(GetFunctionCommand).resolves({
      Configuration: fresh({
        Layers: [{ Arn: OTHER_LAYER }, { Arn: OLD_DEFENDER }],
        Environment: { Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info', AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
      }) as never,
    });

    const output = await handler(request());

    expect(output.outcome).toBe('PROTECTED');
    const [pending, done] = auditItems();
    expect(pending?.detail).toMatch(/replace layer .*:31 with .*:32/);
    expect(pending?.warnings).toContain('DEFENDER_OUTDATED');
    expect(done?.outcome).toBe('PROTECTED');
    expect(done?.warnings).not.toContain('DEFENDER_OUTDATED');
  });

  it('item 13: a function deleted during the wait ends at once, SKIPPED FUNCTION_DELETED', async () => {
    lambda
      .on(GetFunctionConfigurationCommand)
      .rejects(awsError(ResourceNotFoundException, `Function not found: ${FUNCTION_ARN}`));

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['FUNCTION_DELETED'] });
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 1);
    expect(outcomes()).toEqual(['PENDING', 'SKIPPED']);
    expect(auditItems()[1]?.detail).toMatch(/deleted during the run/);
    expect(auditItems()[1]?.detail).not.toMatch(/rollback/);
  });

  it('item 13: a function deleted before the update is SKIPPED FUNCTION_DELETED, not FAILED', async () => {
    lambda.on(GetFunctionCommand).rejects(awsError(ResourceNotFoundException, `Function not found: ${FUNCTION_ARN}`));

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['FUNCTION_DELETED'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  function rejectionPuts(): Array<Record<string, unknown>> {
    return ddb
      .commandCalls(UpdateCommand)
      .map((call) => call.args[0].input)
      .filter((input) => (input.Key as { pk?: string }).pk === `REJECT#${FUNCTION}`) as Array<Record<string, unknown>>;
  }

  it('item 16: a deterministic rejection is FAILED once and backs off for 1 h, reason named', async () => {
    lambda
      .on(UpdateFunctionConfigurationCommand)
      .rejects(awsError(InvalidParameterValueException, 'Environment variable name 1BAD is not valid'));

    const output = await handler(request());

    expect(output.outcome).toBe('FAILED');
    const [put] = rejectionPuts();
    expect(put?.['ExpressionAttributeValues']).toMatchObject({
      ':r': 'InvalidParameterValueException: Environment variable name 1BAD is not valid',
      ':a': 1,
      // An hour after the rejection (the virtual clock moved on by the rate limiter's pacing).
      ':n': expect.stringMatching(/^2025-03-01T11:00:0\d\.\d{3}Z$/),
      ':rev': 'rev-1',
    });
    expect(auditItems()[1]?.detail).toMatch(/not tried again before 2025-03-01T11:00:0\d\.\d{3}Z/);
  });

  it('item 16: while the back-off holds, SKIPPED PREVIOUSLY_REJECTED without claiming a slot or updating', async () => {
    ddb.on(GetCommand, { Key: { pk: `REJECT#${FUNCTION}` } }).resolves({
      Item: {
        pk: `REJECT#${FUNCTION}`,
        reason: 'InvalidParameterValueException: Environment variable name 1BAD is not valid',
        attempts: 2,
        nextAttemptAt: new Date(NOW + 3600_000).toISOString(),
        revisionId: 'rev-1',
        codeSha256: null,
        rejectedAt: new Date(NOW - 3600_000).toISOString(),
      },
    });

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['PREVIOUSLY_REJECTED'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(UpdateCommand, 0); // no slot claimed
    // The funnel's gate 22 names AWS's reason and the next attempt, from the back-off record read fresh here.
    expect(auditItems()[0]?.checks.find((check) => check.gate === 22)).toMatchObject({
      status: 'fail',
      observed: expect.stringMatching(/InvalidParameterValueException.*next attempt after 2025-03-01T11:00/),
    });
  });

  it('item 16: the back-off ends when the function changed (a deploy), and the next rejection starts at 1 h', async () => {
    ddb.on(GetCommand, { Key: { pk: `REJECT#${FUNCTION}` } }).resolves({
      Item: {
        reason: 'InvalidParameterValueException: x',
        attempts: 5,
        nextAttemptAt: new Date(NOW + 86_400_000).toISOString(),
        revisionId: 'rev-0',
        codeSha256: null,
        rejectedAt: new Date(NOW - 3600_000).toISOString(),
      },
    });
    lambda.on(UpdateFunctionConfigurationCommand).rejects(awsError(InvalidParameterValueException, 'still bad'));

    const output = await handler(request());

    expect(output.outcome).toBe('FAILED');
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 1);
    expect(rejectionPuts()[0]?.['ExpressionAttributeValues']).toMatchObject({ ':a': 1 });
  });
});

describe('protect-function, issue 9: exactly one decision per function per run', () => {
  const key = (stage: string) => ({ functionName: FUNCTION, sk: `2025-03-01T09:59:00.000Z#run-1#${stage}` });

  it('a retried protect whose answer was lost returns PROTECTED and writes nothing', async () => {
    // The first attempt protected the function; Step Functions never got its answer and runs it again.
    await handler(request());
    const protectedItem = auditItems().find((item) => item.outcome === 'PROTECTED');
    expect(protectedItem?.sk).toBe(key('1-decision').sk);
    ddb.resetHistory();
    lambda.resetHistory();
    sns.resetHistory();
    ddb.on(GetCommand, { TableName: 'audit', Key: key('1-decision') }).resolves({ Item: protectedItem });

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'PROTECTED', reasons: [] });
    expect(ddb).toHaveReceivedCommandWith(GetCommand, {
      TableName: 'audit',
      Key: key('1-decision'),
      ConsistentRead: true,
    });
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(UpdateCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 0);
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 0);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('a retry after a crash between the update and its record records PROTECTED once, sending nothing again', async () => {
    // First attempt: the update lands, then the final write fails (the invocation dies with it).
    ddb.on(PutCommand).resolvesOnce({}).rejects(new Error('ServiceUnavailable'));
    await expect(handler(request())).rejects.toThrow('ServiceUnavailable');
    const pending = auditItems()[0];
    expect(pending).toMatchObject({ outcome: 'PENDING', sk: key('0-pending').sk });
    ddb.resetHistory();
    lambda.resetHistory();
    ddb.on(PutCommand).resolves({});
    ddb.on(GetCommand, { TableName: 'audit', Key: key('0-pending') }).resolves({ Item: pending });
    lambda.on(GetFunctionCommand).resolves({ Configuration: afterUpdate('Successful') as never });

    const output = await handler(request());

    expect(output.outcome).toBe('PROTECTED');
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(UpdateCommand, 0); // no second slot
    expect(auditItems()).toEqual([
      expect.objectContaining({ outcome: 'PROTECTED', sk: key('1-decision').sk, before: pending?.before }),
    ]);
  });

  it('a retry whose earlier write-ahead was for another revision sends nothing', async () => {
    ddb.on(PutCommand).callsFake((input: { Item: AuditItem }) => {
      if (input.Item.outcome === 'PENDING') {
        throw new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
      }
      return {};
    });
    ddb.on(GetCommand, { TableName: 'audit', Key: key('0-pending') }).resolves({
      Item: { functionName: FUNCTION, sk: key('0-pending').sk, outcome: 'PENDING', before: { revisionId: 'rev-0' } },
    });

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['CHANGED_DURING_RUN'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('SNS down: the digest is not stored, the next run publishes', async () => {
    ddb.on(GetCommand, { TableName: 'state' }).resolves({ Item: { pk: `EXCLUDE#${FUNCTION}` } });
    sns.on(PublishCommand).rejects(new Error('InternalErrorException'));

    const first = await handler(request());

    expect(first.outcome).toBe('SKIPPED');
    expect(ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 0); // the previous digest stays

    // The next run: the same skip is still new (no digest), so it is published, and only then remembered.
    sns.reset();
    sns.on(PublishCommand).resolves({ MessageId: 'm-2' });
    await handler(request({ runId: 'run-2', startedAt: '2025-03-01T10:59:00.000Z' }));

    expect(sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 1);
    const published = sns.commandCalls(PublishCommand)[0]!;
    const digest = ddb.commandCalls(BatchWriteCommand)[0]!;
    expect(published.calledBefore(digest)).toBe(true);
  });
});

describe('issue 8 (review follow-ups)', () => {
  it('item 11: a variable whose value is null is FACTS_MISSING, never a crash', async () => {
    lambda.on(GetFunctionCommand).resolves({
      Configuration: fresh({
        Environment: { Variables: { DB_PASSWORD: CANARY, BROKEN: null } as unknown as Record<string, string> },
      }) as never,
    });

    const output = await handler(request());

    expect(output).toEqual({ functionName: FUNCTION, outcome: 'SKIPPED', reasons: ['FACTS_MISSING'] });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('item 3: a short value AWS quotes back in a validation message is cut out of the record', async () => {
    const PIN = '482';
    lambda.on(GetFunctionCommand).resolves({
      Configuration: fresh({ Environment: { Variables: { PIN, LOG_LEVEL: 'info' } } }) as never,
    });
    lambda
      .on(UpdateFunctionConfigurationCommand)
      .rejects(
        awsError(
          InvalidParameterValueException,
          `1 validation error detected: Value '{PIN=${PIN}, LOG_LEVEL=info}' at 'environment.variables' failed to satisfy constraint`,
        ),
      );

    const output = await handler(request());

    expect(output.outcome).toBe('FAILED');
    const stored = JSON.stringify(auditItems()) + JSON.stringify(sns.calls().map((call) => call.args[0].input));
    expect(stored).not.toContain(`PIN=${PIN}`);
    expect(auditItems()[1]?.detail).toMatch(/1 validation error detected: Value \[…\] at \[…\]/);
  });
});

describe('issue 8 review: a refused update is no change', () => {
  it('marks the FAILED of a refused update nothingChanged, kept like any decision (it expires)', async () => {
    lambda.on(UpdateFunctionConfigurationCommand).rejects(awsError(InvalidParameterValueException, 'bad name'));

    await handler(request());

    const failed = auditItems().find((item) => item.outcome === 'FAILED');
    expect(failed).toMatchObject({ nothingChanged: true, expiresAt: expect.any(Number) });
  });
});
