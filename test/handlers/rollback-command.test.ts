import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DecryptCommand, GenerateMacCommand, KMSClient } from '@aws-sdk/client-kms';
import {
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
  PreconditionFailedException,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { createHash } from 'node:crypto';
import { DeleteCommand, DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { run as include } from '../../bin/commands/include';
import { run as rollback } from '../../bin/commands/rollback';
import { systemClock } from '../../lambdas/shared/adapters/rate-limiter';
import { resetMacKey } from '../../lambdas/shared/adapters/mac-key';
import { ourVariableNames } from '../../lambdas/shared/domain/mac';
import { configurationImage } from '../../lambdas/shared/domain/plan';
import { parseConfig } from '../../lib/config';
import type { AuditItem, FunctionConfiguration } from '../../lambdas/shared/domain/types';

const lambda = mockClient(LambdaClient);
const ddb = mockClient(DynamoDBDocumentClient);
const kms = mockClient(KMSClient);
mockClient(DynamoDBClient);
// No stack named: the default-stack lookup (issue 13) finds none, as on a machine without the stack.
const cfn = mockClient(CloudFormationClient);

const ACCOUNT = '123456789012';
const DEFENDER = `arn:aws:lambda:eu-west-1:${ACCOUNT}:layer:twistlock-defender:32`;
const PANDAS = `arn:aws:lambda:eu-west-1:${ACCOUNT}:layer:pandas:4`;
const DATADOG = `arn:aws:lambda:eu-west-1:${ACCOUNT}:layer:datadog:7`;
const WRAPPER = '/opt/twistlock/twistlock_wrapper';
const POLICY = 'TWPOLICY-9d8c7b6a5f4e3d2c1b0a';
const CANARY = 'CANARY-7f3a9e21-do-not-leak';
const MAC_KEY_ARN = `arn:aws:kms:eu-west-1:${ACCOUNT}:key/mac-key-1`;
/** What KMS GenerateMac answers for the key-derivation message: the local HMAC key. */
const KEY = new Uint8Array(32).fill(5);
const OUR_NAMES = ourVariableNames(
  parseConfig(
    {
      mode: 'protect',
      defender: {
        layerArn: DEFENDER,
        environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zero-impact/tw-policy' } },
      },
    },
    'test',
  ),
);

/** The image protect would have recorded (MACs under the derived key). */
function image(configuration: FunctionConfiguration, name = configuration.FunctionName ?? 'orders-api') {
  return configurationImage(configuration, { key: KEY, ourNames: OUR_NAMES }, name);
}

function original(name = 'orders-api'): FunctionConfiguration {
  return {
    FunctionName: name,
    FunctionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${name}`,
    PackageType: 'Zip',
    Runtime: 'python3.11',
    Handler: 'app.handler',
    MemorySize: 512,
    Timeout: 30,
    Layers: [{ Arn: PANDAS }],
    Environment: { Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info' } },
    State: 'Active',
    LastUpdateStatus: 'Successful',
    RevisionId: 'rev-1',
  };
}

function protectedConfig(name = 'orders-api', overrides: Partial<FunctionConfiguration> = {}): FunctionConfiguration {
  return {
    ...original(name),
    Layers: [{ Arn: PANDAS }, { Arn: DEFENDER }],
    Environment: {
      Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info', AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY },
    },
    RevisionId: 'rev-2',
    ...overrides,
  };
}

function protectedRecord(name = 'orders-api', runId = 'run-7'): AuditItem {
  const decidedAt = '2025-03-01T10:00:05.000Z';
  return {
    functionName: name,
    sk: `${decidedAt}#${runId}#PROTECTED`,
    kind: 'decision',
    functionArn: `arn:aws:lambda:eu-west-1:${ACCOUNT}:function:${name}`,
    account: ACCOUNT,
    region: 'eu-west-1',
    runId,
    decidedAt,
    mode: 'protect',
    outcome: 'PROTECTED',
    reasons: [],
    warnings: [],
    checks: [],
    before: image(original(name)),
    after: image(protectedConfig(name)),
    engineVersion: '0.1.0',
    configHash: 'abc123',
    expiresAt: 1_800_000_000,
    repeat: false,
    changeKey: 'CHANGE',
    owner: 'payments',
  };
}

function pendingRecord(name = 'orders-api', runId = 'run-7'): AuditItem {
  const item = protectedRecord(name, runId);
  const decidedAt = '2025-03-01T10:00:01.000Z';
  return { ...item, outcome: 'PENDING', sk: `${decidedAt}#${runId}#PENDING`, decidedAt, after: undefined };
}

let out: string[];
let err: string[];

function printed(): string {
  return [...out, ...err].join('\n');
}

function historyOf(name: string, items: AuditItem[]): void {
  ddb.on(QueryCommand, { ExpressionAttributeValues: { ':f': name } }).resolves({ Items: items });
}

function functionIs(name: string, configuration: FunctionConfiguration): void {
  lambda.on(GetFunctionCommand, { FunctionName: name }).resolves({ Configuration: configuration as never });
}

function puts(table: string): Array<Record<string, unknown>> {
  return ddb
    .commandCalls(PutCommand)
    .filter((call) => call.args[0].input.TableName === table)
    .map((call) => call.args[0].input.Item as Record<string, unknown>);
}

beforeEach(() => {
  lambda.reset();
  ddb.reset();
  cfn.reset();
  cfn
    .on(DescribeStacksCommand)
    .rejects(Object.assign(new Error('Stack with id ZeroImpactProtect does not exist'), { name: 'ValidationError' }));
  kms.reset();
  resetMacKey();
  kms.on(GenerateMacCommand).resolves({ Mac: KEY, KeyId: MAC_KEY_ARN, MacAlgorithm: 'HMAC_SHA_256' });
  jest.restoreAllMocks();
  let now = Date.parse('2025-03-02T08:00:00.000Z');
  jest.spyOn(systemClock, 'now').mockImplementation(() => now);
  jest.spyOn(systemClock, 'sleep').mockImplementation(async (ms: number) => {
    now += ms;
  });
  out = [];
  err = [];
  jest.spyOn(console, 'log').mockImplementation((line: unknown) => void out.push(String(line)));
  jest.spyOn(console, 'error').mockImplementation((line: unknown) => void err.push(String(line)));
  process.env['AUDIT_TABLE_NAME'] = 'audit';
  process.env['STATE_TABLE_NAME'] = 'state';
  process.env['MAC_KEY_ID'] = MAC_KEY_ARN;

  historyOf('orders-api', [pendingRecord(), protectedRecord()]);
  functionIs('orders-api', protectedConfig('orders-api', { RevisionId: 'rev-5' }));
  lambda.on(UpdateFunctionConfigurationCommand).resolves({});
  lambda.on(GetFunctionConfigurationCommand).resolves({ ...original(), RevisionId: 'rev-6' } as never);
  ddb.on(PutCommand).resolves({});
});

describe('zero-impact rollback', () => {
  it('prints the plan and changes nothing without --yes', async () => {
    const code = await rollback(['--function', 'orders-api']);

    expect(code).toBe(0);
    expect(out).toEqual([
      'orders-api: rollback of the PROTECTED record of 2025-03-01T10:00:05.000Z (run run-7)',
      `  - remove layer ${DEFENDER}`,
      '  - remove variable AWS_LAMBDA_EXEC_WRAPPER',
      '  - remove variable TW_POLICY',
      '  note: everything else (memory, timeout, role, VPC, other layers and variables) is left as it is now',
      'orders-api: plan only: nothing was changed (add --yes to apply it)',
    ]);
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, {
      TableName: 'audit',
      KeyConditionExpression: 'functionName = :f',
      ExpressionAttributeValues: { ':f': 'orders-api' },
    });
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 1);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 0);
  });

  it('applies the plan with --yes: precondition, wait, ROLLED_BACK record, persistent exclusion', async () => {
    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(0);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 1);
    expect(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'orders-api',
      RevisionId: 'rev-5',
      Layers: [PANDAS],
      Environment: { Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info' } },
    });
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionConfigurationCommand, 1);
    const [rolledBack] = puts('audit');
    expect(rolledBack).toMatchObject({
      functionName: 'orders-api',
      outcome: 'ROLLED_BACK',
      changeKey: 'CHANGE',
      mode: 'protect',
      configHash: 'abc123',
      owner: 'payments',
      before: { layers: [PANDAS, DEFENDER], revisionId: 'rev-5' },
      after: { layers: [PANDAS], variableNames: ['DB_PASSWORD', 'LOG_LEVEL'], revisionId: 'rev-6' },
    });
    expect(String(rolledBack?.['detail'])).toContain('rolled back by ');
    expect(ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'state',
      Item: {
        pk: 'EXCLUDE#orders-api',
        functionName: 'orders-api',
        reason: expect.stringContaining('rolled back by '),
        excludedAt: expect.any(String),
      },
    });
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 2);
    expect(out[out.length - 1]).toBe(
      'orders-api: rolled back; excluded from protection until `zero-impact include --function orders-api`',
    );
  });

  it('keeps a later unrelated change: new variable, new layer and memory stay', async () => {
    functionIs(
      'orders-api',
      protectedConfig('orders-api', {
        MemorySize: 1024,
        Layers: [{ Arn: PANDAS }, { Arn: DEFENDER }, { Arn: DATADOG }],
        Environment: {
          Variables: {
            DB_PASSWORD: CANARY,
            LOG_LEVEL: 'info',
            AWS_LAMBDA_EXEC_WRAPPER: WRAPPER,
            TW_POLICY: POLICY,
            FEATURE_FLAG: 'on',
          },
        },
        RevisionId: 'rev-9',
      }),
    );

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(0);
    expect(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'orders-api',
      RevisionId: 'rev-9',
      Layers: [PANDAS, DATADOG],
      Environment: { Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info', FEATURE_FLAG: 'on' } },
    });
  });

  it('rolls back every function a run changed with --run', async () => {
    ddb.on(QueryCommand, { IndexName: 'byRun' }).resolves({
      Items: [
        pendingRecord('orders-api'),
        protectedRecord('orders-api'),
        protectedRecord('billing'),
        { ...protectedRecord('reports'), outcome: 'SKIPPED', before: undefined, after: undefined },
      ],
    });
    historyOf('billing', [protectedRecord('billing')]);
    functionIs('billing', protectedConfig('billing', { RevisionId: 'rev-b' }));

    const code = await rollback(['--run', 'run-7', '--yes']);

    expect(code).toBe(0);
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, {
      TableName: 'audit',
      IndexName: 'byRun',
      KeyConditionExpression: 'runId = :r',
      ExpressionAttributeValues: { ':r': 'run-7' },
    });
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 2);
    expect(lambda).toHaveReceivedCommandWith(UpdateFunctionConfigurationCommand, {
      FunctionName: 'billing',
      RevisionId: 'rev-b',
    });
    expect(puts('audit').map((item) => [item['functionName'], item['outcome']])).toEqual([
      ['orders-api', 'ROLLED_BACK'],
      ['billing', 'ROLLED_BACK'],
    ]);
    expect(puts('state').map((item) => item['pk'])).toEqual(['EXCLUDE#orders-api', 'EXCLUDE#billing']);
  });

  it('changes nothing and exits 1 when the function changed while planning', async () => {
    lambda
      .on(UpdateFunctionConfigurationCommand)
      .rejects(new PreconditionFailedException({ message: 'RevisionId mismatch', $metadata: {} }));

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(1);
    expect(err).toEqual([
      'zero-impact rollback: orders-api: the function changed while the rollback was planned; run the command again (PreconditionFailedException: RevisionId mismatch); nothing was changed',
    ]);
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 0);
  });

  it('records FAILED and exits 1 when AWS fails the rollback update', async () => {
    lambda
      .on(GetFunctionConfigurationCommand)
      .resolves({ ...original(), LastUpdateStatus: 'Failed', LastUpdateStatusReason: 'KMS key disabled' } as never);

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(1);
    expect(puts('audit').map((item) => item['outcome'])).toEqual(['FAILED']);
    expect(puts('state')).toEqual([]);
    expect(err).toEqual(['zero-impact rollback: orders-api: the update failed: KMS key disabled']);
  });

  it('says so and changes nothing when the function was already rolled back', async () => {
    const rolledBack: AuditItem = {
      ...protectedRecord(),
      outcome: 'ROLLED_BACK',
      sk: '2025-03-01T12:00:00.000Z#rollback#ROLLED_BACK',
      decidedAt: '2025-03-01T12:00:00.000Z',
    };
    historyOf('orders-api', [protectedRecord(), rolledBack]);

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(0);
    expect(out).toEqual(['orders-api: already rolled back at 2025-03-01T12:00:00.000Z; nothing to do']);
    expect(lambda).toHaveReceivedCommandTimes(GetFunctionCommand, 0);
  });

  it('rolls back the protection again after a failed rollback, judged against the protection record', async () => {
    const decidedAt = '2025-03-01T12:00:00.000Z';
    const failedRollback: AuditItem = {
      ...protectedRecord(),
      runId: `rollback-${decidedAt}`,
      sk: `${decidedAt}#rollback-${decidedAt}#FAILED`,
      decidedAt,
      outcome: 'FAILED',
      // AWS did not apply the failed rollback: the function is left protected.
      before: image(protectedConfig()),
      after: image(protectedConfig()),
      detail: 'rollback by ops failed: the update failed: KMS key disabled',
    };
    historyOf('orders-api', [pendingRecord(), protectedRecord(), failedRollback]);

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(0);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 1);
    expect(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'orders-api',
      RevisionId: 'rev-5',
      Layers: [PANDAS],
      Environment: { Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info' } },
    });
    expect(out[0]).toBe('orders-api: rollback of the PROTECTED record of 2025-03-01T10:00:05.000Z (run run-7)');
  });

  it('does not remove the Defender layer while a wrapper changed since stays set, and exits 1', async () => {
    functionIs(
      'orders-api',
      protectedConfig('orders-api', {
        Environment: {
          Variables: {
            DB_PASSWORD: CANARY,
            LOG_LEVEL: 'info',
            AWS_LAMBDA_EXEC_WRAPPER: '/opt/chain/wrapper.sh',
            TW_POLICY: POLICY,
          },
        },
      }),
    );

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(1);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 0);
    expect(err).toEqual([expect.stringContaining('orders-api: cannot plan the rollback: AWS_LAMBDA_EXEC_WRAPPER')]);
  });

  it('says there is nothing to roll back when the function was deleted since, and goes on with the run', async () => {
    const gone = new Error('Function not found: arn:aws:lambda:eu-west-1:123456789012:function:orders-api');
    gone.name = 'ResourceNotFoundException';
    lambda.on(GetFunctionCommand, { FunctionName: 'orders-api' }).rejects(gone);
    ddb.on(QueryCommand, { IndexName: 'byRun' }).resolves({
      Items: [protectedRecord('orders-api'), protectedRecord('billing')],
    });
    historyOf('billing', [protectedRecord('billing')]);
    functionIs('billing', protectedConfig('billing', { RevisionId: 'rev-b' }));

    const code = await rollback(['--run', 'run-7', '--yes']);

    expect(code).toBe(0);
    expect(out).toContain('orders-api: the function no longer exists; nothing to roll back');
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 1);
    expect(lambda).toHaveReceivedCommandWith(UpdateFunctionConfigurationCommand, { FunctionName: 'billing' });
    expect(puts('audit').map((item) => [item['functionName'], item['outcome']])).toEqual([['billing', 'ROLLED_BACK']]);
    expect(err).toEqual([]);
  });

  it('rolls back a change whose completion was never recorded, from its PENDING item', async () => {
    const pending = { ...pendingRecord(), after: image({ ...protectedConfig(), RevisionId: undefined }) };
    const catchFailure: AuditItem = {
      ...protectedRecord(),
      outcome: 'FAILED',
      sk: '2025-03-01T10:00:09.000Z#run-7#FAILED',
      decidedAt: '2025-03-01T10:00:09.000Z',
      before: undefined,
      after: undefined,
      changeKey: 'CHANGE',
    };
    historyOf('orders-api', [pending, catchFailure]);

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(0);
    expect(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'orders-api',
      RevisionId: 'rev-5',
      Layers: [PANDAS],
      Environment: { Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info' } },
    });
  });

  it('never takes a PENDING item that its run completed for the change to undo', async () => {
    const skipped: AuditItem = {
      ...protectedRecord(),
      outcome: 'SKIPPED',
      reasons: ['CHANGED_DURING_RUN'],
      sk: '2025-03-01T10:00:03.000Z#run-7#SKIPPED',
      after: undefined,
    };
    historyOf('orders-api', [
      { ...pendingRecord(), after: image({ ...protectedConfig(), RevisionId: undefined }) },
      skipped,
    ]);

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(1);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('exits 1 when the function has no protection record', async () => {
    historyOf('orders-api', [pendingRecord()]);

    const code = await rollback(['--function', 'orders-api']);

    expect(code).toBe(1);
    expect(err).toEqual(['zero-impact rollback: orders-api: no protection of this function in audit']);
  });

  it.each([
    [[]],
    [['--function', 'a', '--run', 'r']],
    [['--function', 'a', '--bogus']],
    [['--function', 'a', '--region', 'not a region']],
  ])('exits 2 with one line on bad usage %j', async (argv) => {
    const code = await rollback(argv);

    expect(code).toBe(2);
    expect(err).toHaveLength(1);
    expect(lambda.calls()).toHaveLength(0);
  });

  it('exits 2 when no audit table is named', async () => {
    delete process.env['AUDIT_TABLE_NAME'];

    const code = await rollback(['--function', 'orders-api']);

    expect(code).toBe(2);
    expect(err).toEqual([
      'zero-impact rollback: --audit-table TABLE (or the environment variable AUDIT_TABLE_NAME) is required',
    ]);
  });

  it('never prints or records a variable value', async () => {
    lambda
      .on(GetFunctionConfigurationCommand)
      .resolves({ ...original(), LastUpdateStatus: 'Failed', LastUpdateStatusReason: `bad ${CANARY}` } as never);

    await rollback(['--function', 'orders-api', '--yes']);

    const written = JSON.stringify(ddb.commandCalls(PutCommand).map((call) => call.args[0].input));
    expect(written).not.toContain(CANARY);
    expect(written).not.toContain(POLICY);
    expect(printed()).not.toContain(CANARY);
    expect(printed()).not.toContain(POLICY);
    expect(printed()).toContain('orders-api');
  });
});

describe('issue 8: rollback of changes whose completion was never seen, MACs, upgraded Defenders, refreshes', () => {
  const plannedAfter = () => image({ ...protectedConfig(), RevisionId: undefined });
  const pendingWithPlan = (name = 'orders-api') => ({
    ...pendingRecord(name),
    after: image({ ...protectedConfig(name), RevisionId: undefined }, name),
  });
  /** Protect's FAILED after an accepted update whose every status poll failed: before-image, no after-image. */
  const pollsFailed = (name = 'orders-api'): AuditItem => ({
    ...protectedRecord(name),
    outcome: 'FAILED',
    sk: '2025-03-01T10:20:00.000Z#run-7#FAILED',
    decidedAt: '2025-03-01T10:20:00.000Z',
    after: undefined,
    detail: 'update did not complete within 60 checks; the function may carry the change',
  });
  /** record-failure's FAILED (the final PROTECTED write failed): no images at all. */
  const catchFailed = (name = 'orders-api'): AuditItem => ({
    ...protectedRecord(name),
    outcome: 'FAILED',
    sk: '2025-03-01T10:00:09.000Z#run-7#FAILED',
    decidedAt: '2025-03-01T10:00:09.000Z',
    before: undefined,
    after: undefined,
  });

  it('item 5: rolls back --function from the PENDING plan when every status poll failed (FAILED without after)', async () => {
    historyOf('orders-api', [pendingWithPlan(), pollsFailed()]);

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(0);
    expect(out[0]).toBe('orders-api: rollback of the FAILED record of 2025-03-01T10:20:00.000Z (run run-7)');
    expect(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'orders-api',
      RevisionId: 'rev-5',
      Layers: [PANDAS],
      Environment: { Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info' } },
    });
  });

  it.each([
    ['every status poll failed', pollsFailed],
    ['the final PROTECTED write failed', catchFailed],
  ])('item 5: --run lists and rolls back a function whose %s', async (_why, final) => {
    ddb.on(QueryCommand, { IndexName: 'byRun' }).resolves({ Items: [pendingWithPlan(), final()] });
    historyOf('orders-api', [pendingWithPlan(), final()]);

    const code = await rollback(['--run', 'run-7', '--yes']);

    expect(code).toBe(0);
    expect(out[0]).toBe('run run-7: 1 function(s) to roll back');
    expect(lambda).toHaveReceivedCommandWith(UpdateFunctionConfigurationCommand, { Layers: [PANDAS] });
    expect(plannedAfter().layers).toEqual([PANDAS, DEFENDER]);
  });

  it('item 6: refuses when the team has since upgraded the Defender layer, and changes nothing', async () => {
    const upgraded = DEFENDER.replace(/:32$/, ':33');
    functionIs('orders-api', protectedConfig('orders-api', { Layers: [{ Arn: PANDAS }, { Arn: upgraded }] }));

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(1);
    expect(err).toEqual([expect.stringContaining('the Defender is no longer the one we added')]);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
    expect(ddb).toHaveReceivedCommandTimes(PutCommand, 0);
  });

  it('item 3: derives the MAC key once with kms:GenerateMac on --mac-key, and needs one', async () => {
    const code = await rollback(['--function', 'orders-api', '--mac-key', 'alias/zero-impact-mac']);
    delete process.env['MAC_KEY_ID'];
    const without = await rollback(['--function', 'orders-api']);

    expect(code).toBe(0);
    expect(kms).toHaveReceivedCommandTimes(GenerateMacCommand, 1);
    expect(kms).toHaveReceivedCommandWith(GenerateMacCommand, {
      KeyId: 'alias/zero-impact-mac',
      MacAlgorithm: 'HMAC_SHA_256',
      Message: new TextEncoder().encode('zero-impact/mac-key/v1'),
    });
    expect(without).toBe(2);
    expect(err).toEqual([expect.stringContaining('--mac-key')]);
  });

  it('item 3: a value MACed under another key is never taken for ours', async () => {
    kms.on(GenerateMacCommand).resolves({ Mac: new Uint8Array(32).fill(9) });

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(1);
    expect(lambda).toHaveReceivedCommandTimes(UpdateFunctionConfigurationCommand, 0);
  });

  it('item 4: the ROLLED_BACK record has no expiresAt', async () => {
    await rollback(['--function', 'orders-api', '--yes']);

    const [rolled] = puts('audit');
    expect(rolled?.['outcome']).toBe('ROLLED_BACK');
    expect(rolled).not.toHaveProperty('expiresAt');
  });

  it('item 7: rolls a refresh back to the exact previous value, decrypted from RESTORE#<function>#<runId>', async () => {
    const oldPolicy = 'TWPOLICY-old-0000';
    const beforeRefresh = protectedConfig('orders-api', {
      Environment: {
        Variables: { DB_PASSWORD: CANARY, LOG_LEVEL: 'info', AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: oldPolicy },
      },
    });
    const refreshed: AuditItem = {
      ...protectedRecord('orders-api', 'run-9'),
      sk: '2025-03-05T10:00:05.000Z#run-9#PROTECTED',
      decidedAt: '2025-03-05T10:00:05.000Z',
      before: image(beforeRefresh),
      after: image(protectedConfig()),
    };
    historyOf('orders-api', [pendingRecord(), protectedRecord(), refreshed]);
    ddb.on(GetCommand, { Key: { pk: 'RESTORE#orders-api#run-9' } }).resolves({
      Item: { pk: 'RESTORE#orders-api#run-9', ciphertext: Buffer.from('sealed').toString('base64') },
    });
    kms.on(DecryptCommand).resolves({ Plaintext: new TextEncoder().encode(JSON.stringify({ TW_POLICY: oldPolicy })) });

    const code = await rollback(['--function', 'orders-api', '--yes']);

    expect(code).toBe(0);
    expect(kms).toHaveReceivedCommandWith(DecryptCommand, {
      EncryptionContext: { purpose: 'zero-impact/refresh-restore', functionName: 'orders-api', runId: 'run-9' },
    });
    expect(lambda.commandCalls(UpdateFunctionConfigurationCommand)[0]?.args[0].input).toEqual({
      FunctionName: 'orders-api',
      RevisionId: 'rev-5',
      Environment: beforeRefresh.Environment,
    });
    expect(JSON.stringify(puts('audit'))).not.toContain(oldPolicy);
    expect(printed()).not.toContain(oldPolicy);
  });

  it('item 3: secret hygiene: the canary, its SHA-256 (hex, base64) and our values appear in no record or line', async () => {
    historyOf('orders-api', [pendingWithPlan(), pollsFailed()]);
    lambda
      .on(GetFunctionConfigurationCommand)
      .resolves({ ...original(), LastUpdateStatus: 'Failed', LastUpdateStatusReason: `bad ${CANARY}` } as never);

    await rollback(['--function', 'orders-api', '--yes']);

    const written = JSON.stringify(ddb.commandCalls(PutCommand).map((call) => call.args[0].input));
    const text = `${written}\n${printed()}`;
    for (const value of [CANARY, POLICY, 'info']) {
      expect(text).not.toContain(createHash('sha256').update(value).digest('hex'));
      expect(text).not.toContain(createHash('sha256').update(value).digest('base64'));
    }
    expect(text).not.toContain(CANARY);
    expect(text).not.toContain(POLICY);
    expect(written).toContain('ourValueMacs');
  });
});

describe('zero-impact include', () => {
  it('lifts the persistent exclusion', async () => {
    ddb.on(DeleteCommand).resolves({ Attributes: { pk: 'EXCLUDE#orders-api' } });

    const code = await include(['--function', 'orders-api', '--state-table', 'state-2']);

    expect(code).toBe(0);
    expect(ddb).toHaveReceivedCommandWith(DeleteCommand, {
      TableName: 'state-2',
      Key: { pk: 'EXCLUDE#orders-api' },
      ReturnValues: 'ALL_OLD',
    });
    expect(out).toEqual(['orders-api: persistent exclusion lifted; the next run assesses it again']);
  });

  it('says when there was nothing to lift', async () => {
    ddb.on(DeleteCommand).resolves({});

    const code = await include(['--function', 'orders-api']);

    expect(code).toBe(0);
    expect(out).toEqual(['orders-api: was not excluded; nothing changed']);
  });

  it('exits 2 without --function', async () => {
    expect(await include([])).toBe(2);
    expect(ddb.calls()).toHaveLength(0);
  });

  it('exits 1 with one line when the table cannot be changed', async () => {
    ddb.on(DeleteCommand).rejects(new Error('AccessDeniedException'));

    expect(await include(['--function', 'orders-api'])).toBe(1);
    expect(err).toHaveLength(1);
  });
});

describe('zero-impact rollback and include --stack (issue 13)', () => {
  const outputs = [
    { OutputKey: 'AuditTableName', OutputValue: 'stack-audit' },
    { OutputKey: 'StateTableName', OutputValue: 'stack-state' },
    { OutputKey: 'MacKeyArn', OutputValue: MAC_KEY_ARN },
  ];

  it('reads the tables and the MAC key from the stack outputs when no flag or variable names them', async () => {
    delete process.env['AUDIT_TABLE_NAME'];
    delete process.env['STATE_TABLE_NAME'];
    delete process.env['MAC_KEY_ID'];
    cfn.on(DescribeStacksCommand, { StackName: 'zi-prod' }).resolves({ Stacks: [{ Outputs: outputs } as never] });
    ddb.on(QueryCommand).resolves({ Items: [pendingRecord(), protectedRecord()] });

    const code = await rollback(['--function', 'orders-api', '--stack', 'zi-prod']);

    expect(code).toBe(0);
    expect(ddb).toHaveReceivedCommandWith(QueryCommand, { TableName: 'stack-audit' });
    expect(kms).toHaveReceivedCommandWith(GenerateMacCommand, { KeyId: MAC_KEY_ARN });
  });

  it('prefers a flag, then the environment, to the stack output, and asks the stack only for what is missing', async () => {
    delete process.env['STATE_TABLE_NAME'];
    cfn.on(DescribeStacksCommand).resolves({ Stacks: [{ Outputs: outputs } as never] });
    ddb.on(DeleteCommand).resolves({});

    expect(await include(['--function', 'orders-api'])).toBe(0);
    expect(ddb).toHaveReceivedCommandWith(DeleteCommand, { TableName: 'stack-state' });
    expect(cfn).toHaveReceivedCommandWith(DescribeStacksCommand, { StackName: 'ZeroImpactProtect' });
    cfn.resetHistory();
    expect(await include(['--function', 'orders-api', '--state-table', 'flag-state'])).toBe(0);
    expect(cfn).toHaveReceivedCommandTimes(DescribeStacksCommand, 0);
  });

  it('exits 2 with one line when the stack named does not exist', async () => {
    delete process.env['AUDIT_TABLE_NAME'];

    const code = await rollback(['--function', 'orders-api', '--stack', 'nope']);

    expect(code).toBe(2);
    expect(err).toEqual([
      'zero-impact rollback: --stack nope: cannot read the stack (ValidationError: Stack with id ZeroImpactProtect does not exist)',
    ]);
    expect(lambda.calls()).toHaveLength(0);
  });
});

describe('rollback and include --format json (issue 13 item 11)', () => {
  it('rollback: the plan as one JSON document on stdout; --human is the table', async () => {
    const code = await rollback(['--function', 'orders-api', '--format', 'json']);

    expect(code).toBe(0);
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0] ?? '')).toEqual({
      apply: false,
      functions: [
        {
          functionName: 'orders-api',
          result: 'planned',
          record: { outcome: 'PROTECTED', decidedAt: '2025-03-01T10:00:05.000Z', runId: 'run-7' },
          steps: [`remove layer ${DEFENDER}`, 'remove variable AWS_LAMBDA_EXEC_WRAPPER', 'remove variable TW_POLICY'],
          notes: ['everything else (memory, timeout, role, VPC, other layers and variables) is left as it is now'],
          messages: [
            'rollback of the PROTECTED record of 2025-03-01T10:00:05.000Z (run run-7)',
            'plan only: nothing was changed (add --yes to apply it)',
          ],
          errors: [],
        },
      ],
    });
    out = [];
    expect(await rollback(['--function', 'orders-api', '--human'])).toBe(0);
    expect(out[0]).toBe('orders-api: rollback of the PROTECTED record of 2025-03-01T10:00:05.000Z (run run-7)');
  });

  it('rollback --run --yes --json: each function with its result; a failure is in the document and on stderr', async () => {
    ddb.on(QueryCommand, { IndexName: 'byRun' }).resolves({
      Items: [protectedRecord('orders-api'), protectedRecord('billing')],
    });
    historyOf('billing', []);

    const code = await rollback(['--run', 'run-7', '--yes', '--json']);

    expect(code).toBe(1);
    const document = JSON.parse(out.join('\n')) as {
      apply: boolean;
      run: string;
      functions: Array<{ functionName: string; result: string; errors: string[] }>;
    };
    expect(document.apply).toBe(true);
    expect(document.run).toBe('run-7');
    expect(document.functions.map((f) => [f.functionName, f.result])).toEqual([
      ['orders-api', 'done'],
      ['billing', 'failed'],
    ]);
    expect(document.functions[1]?.errors).toEqual(['no protection of this function in audit']);
    expect(err).toEqual(['zero-impact rollback: billing: no protection of this function in audit']);
    expect(out.join('\n')).not.toContain(CANARY);
  });

  it('include --format json says whether an exclusion was lifted; --json with --format table is refused', async () => {
    ddb.on(DeleteCommand).resolves({ Attributes: { pk: 'EXCLUDE#orders-api' } });

    expect(await include(['--function', 'orders-api', '--format', 'json'])).toBe(0);
    expect(JSON.parse(out.join('\n'))).toEqual({ functionName: 'orders-api', lifted: true });
    expect(await include(['--function', 'orders-api', '--json', '--format', 'table'])).toBe(2);
    expect(err).toEqual(['zero-impact include: --format table contradicts --json']);
  });
});
