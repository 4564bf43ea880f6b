/**
 * Issue 9, "a throttled layer check tells every owner to fix defender.layerArn": take-inventory's real layer check
 * (Lambda mocked), its RunContext handed to assess-batch and to protect as the state machine does, and what each
 * records and tells the owners: FACTS_MISSING when the layer could not be checked, DEFENDER_LAYER_INVALID only when
 * it was read and is wrong.
 */
import { GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import {
  GetFunctionCodeSigningConfigCommand,
  GetFunctionCommand,
  GetLayerVersionByArnCommand,
  LambdaServiceException,
  ListFunctionsCommand,
  ListProvisionedConcurrencyConfigsCommand,
  ResourceNotFoundException,
  type ListFunctionsCommandOutput,
} from '@aws-sdk/client-lambda';
import { GetResourcesCommand } from '@aws-sdk/client-resource-groups-tagging-api';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { strToU8, zipSync } from 'fflate';
import { PublishCommand } from '@aws-sdk/client-sns';
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { BatchGetCommand, BatchWriteCommand, PutCommand, ScanCommand } from '@aws-sdk/lib-dynamodb';
import { handler as assessBatch } from '../../lambdas/assess-batch/handler';
import { protect } from '../../lambdas/protect-function/handler';
import { redactConfiguration } from '../../lambdas/shared/domain/redact';
import type { AuditItem, FunctionConfiguration, RunContext } from '../../lambdas/shared/domain/types';
import { runtime } from '../../lambdas/shared/runtime';
import { handler as takeInventory } from '../../lambdas/take-inventory/handler';
import { arn, baseConfig, fn, LAYER, mocks, prepare, silenceLogs, useRuntime, WRAPPER } from './gather-fixtures';

const event = { runId: 'run-9', startedAt: '2025-06-01T11:59:00.000Z' };

function account(): void {
  mocks.lambda
    .on(ListFunctionsCommand)
    .resolves({ Functions: [fn('orders')] as ListFunctionsCommandOutput['Functions'] });
  mocks.tagging.on(GetResourcesCommand).resolves({ ResourceTagMappingList: [] });
  mocks.ddb.on(ScanCommand).resolves({ Items: [] });
  mocks.s3.on(PutObjectCommand).resolves({});
  mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
  mocks.ddb.on(BatchGetCommand).resolves({ Responses: { state: [] } });
  mocks.ddb.on(PutCommand).resolves({});
  mocks.ddb.on(BatchWriteCommand).resolves({});
  mocks.lambda.on(ListProvisionedConcurrencyConfigsCommand).resolves({ ProvisionedConcurrencyConfigs: [] });
  mocks.lambda.on(GetFunctionCommand).resolves({ Configuration: { State: 'Active', LastUpdateStatus: 'Successful' } });
  mocks.lambda.on(GetFunctionCodeSigningConfigCommand).resolves({});
  mocks.ssm.on(GetParameterCommand).resolves({ Parameter: { Value: 'policy', Type: 'SecureString' } });
  // Complete metric answers with no data points: no throttles, no concurrency.
  mocks.cloudwatch.on(GetMetricDataCommand).callsFake((input: { MetricDataQueries: MetricDataQuery[] }) => ({
    MetricDataResults: input.MetricDataQueries.map((q) => ({
      Id: q.Id,
      StatusCode: 'Complete',
      Values: [],
      Timestamps: [],
    })),
  }));
}

/** take-inventory's output as the state machine hands it to each child (ItemBatcher BatchInput). */
async function runContext(): Promise<RunContext> {
  const out = await takeInventory(event);
  return {
    runId: out.runId,
    startedAt: out.startedAt,
    protectionAllowed: out.protectionAllowed,
    protectionBlockedBy: out.protectionBlockedBy,
    workers: out.workers,
  };
}

function skipNotices(): string[] {
  return mocks.sns
    .commandCalls(PublishCommand)
    .map((call) => call.args[0].input)
    .filter((input) => input.TopicArn?.endsWith(':skips') === true)
    .map((input) => String(input.Message));
}

function decisionOf(name: string): AuditItem {
  const found = mocks.ddb
    .commandCalls(PutCommand, { TableName: 'audit' })
    .map((call) => call.args[0].input.Item as AuditItem)
    .find((item) => item.functionName === name && item.outcome !== 'PENDING');
  if (found === undefined) throw new Error(`no decision for ${name}`);
  return found;
}

const orders = () => ({
  configuration: redactConfiguration(fn('orders') as FunctionConfiguration, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER }),
  tags: {},
});

beforeEach(() => {
  prepare();
  useRuntime(baseConfig({ mode: 'protect', notifications: { skips: 'always' } }));
  account();
});
afterEach(silenceLogs);

describe('issue 9: layer check throttled is not layer wrong', () => {
  it('(control) finds the function eligible when the layer check passes', async () => {
    // Prepare
    const zip = zipSync({ 'twistlock/twistlock_wrapper': strToU8('#!/bin/sh') });
    mocks.lambda.on(GetLayerVersionByArnCommand).resolves({
      LayerVersionArn: LAYER,
      Version: 32,
      Content: { Location: `data:application/zip;base64,${Buffer.from(zip).toString('base64')}`, CodeSize: 100 },
    });

    // Act
    const run = await runContext();
    const out = await assessBatch({ Items: [orders()], BatchInput: run });

    // Assess
    expect(run).toMatchObject({ protectionAllowed: true, protectionBlockedBy: null });
    expect(out.eligible.map((e) => e.functionName)).toEqual(['orders']);
  });

  it('records FACTS_MISSING naming nothing to fix when GetLayerVersionByArn is throttled', async () => {
    // Prepare
    mocks.lambda.on(GetLayerVersionByArnCommand).rejects(
      new LambdaServiceException({
        name: 'TooManyRequestsException',
        $fault: 'client',
        message: 'Rate exceeded',
        $metadata: {},
      }),
    );

    // Act
    const run = await runContext();
    await assessBatch({ Items: [orders()], BatchInput: run });

    // Assess
    expect(run).toMatchObject({ protectionAllowed: false, protectionBlockedBy: 'FACTS_MISSING' });
    expect(decisionOf('orders')).toMatchObject({ outcome: 'SKIPPED', reasons: ['FACTS_MISSING'] });
    expect(skipNotices().join('\n')).not.toContain('defender.layerArn');
    const alarm = mocks.sns
      .commandCalls(PublishCommand)
      .map((call) => call.args[0].input)
      .find((input) => input.TopicArn?.endsWith(':alarms') === true);
    expect(alarm?.Subject).toContain('TooManyRequestsException');
  });

  it('records DEFENDER_LAYER_INVALID when the layer version does not exist', async () => {
    // Prepare
    mocks.lambda
      .on(GetLayerVersionByArnCommand)
      .rejects(new ResourceNotFoundException({ message: 'Layer version not found', $metadata: {} }));

    // Act
    const run = await runContext();
    await assessBatch({ Items: [orders()], BatchInput: run });

    // Assess
    expect(run).toMatchObject({ protectionAllowed: false, protectionBlockedBy: 'DEFENDER_LAYER_INVALID' });
    expect(decisionOf('orders')).toMatchObject({ outcome: 'SKIPPED', reasons: ['DEFENDER_LAYER_INVALID'] });
    expect(skipNotices().join('\n')).toContain('fix defender.layerArn');
  });

  it.each(['FACTS_MISSING', 'DEFENDER_LAYER_INVALID'] as const)(
    'protect records %s from the run context when protection is not allowed',
    async (code) => {
      // Act
      const out = await protect(
        {
          runId: 'run-9',
          startedAt: event.startedAt,
          protectionAllowed: false,
          protectionBlockedBy: code,
          functionName: 'orders',
          functionArn: arn('orders'),
          facts: { configuration: { FunctionName: 'orders', FunctionArn: arn('orders') } } as never,
        },
        runtime(),
      );

      // Assess
      expect(out).toMatchObject({ outcome: 'SKIPPED', reasons: [code] });
      expect(mocks.lambda).toHaveReceivedCommandTimes(GetLayerVersionByArnCommand, 0);
    },
  );
});
