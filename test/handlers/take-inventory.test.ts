import { ListDistributionsCommand, type DistributionSummary } from '@aws-sdk/client-cloudfront';
import { GenerateMacCommand, KMSClient } from '@aws-sdk/client-kms';
import { mockClient } from 'aws-sdk-client-mock';
import { ListFunctionsCommand, type ListFunctionsCommandOutput } from '@aws-sdk/client-lambda';
import { GetResourcesCommand } from '@aws-sdk/client-resource-groups-tagging-api';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { PublishCommand } from '@aws-sdk/client-sns';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import { checkDefenderLayer } from '../../lambdas/shared/adapters/layer-check';
import { resetMacKey } from '../../lambdas/shared/adapters/mac-key';
import { valueMac } from '../../lambdas/shared/domain/mac';
import type { FunctionConfiguration, InventoryItem } from '../../lambdas/shared/domain/types';
import { handler } from '../../lambdas/take-inventory/handler';
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

jest.mock('../../lambdas/shared/adapters/layer-check', () => ({ checkDefenderLayer: jest.fn() }));
const layerCheck = jest.mocked(checkDefenderLayer);

const event = { runId: 'run-7', startedAt: '2025-06-01T12:00:00.000Z' };

/** Our configuration type is AWS's shape with every field optional. */
const listed = (...configs: FunctionConfiguration[]) => configs as ListFunctionsCommandOutput['Functions'];

function estate(): void {
  mocks.lambda
    .on(ListFunctionsCommand)
    .resolvesOnce({
      Functions: listed(
        fn('orders'),
        fn('payments', { Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } } }),
      ),
      NextMarker: 'm1',
    })
    .resolvesOnce({ Functions: listed(fn('legacy')), NextMarker: 'm2' })
    .resolvesOnce({ Functions: listed(fn('rolled-back')) });
  mocks.tagging.on(GetResourcesCommand, { TagFilters: [{ Key: 'zero-impact:exclude' }] }).resolves({
    ResourceTagMappingList: [{ ResourceARN: arn('legacy'), Tags: [{ Key: 'zero-impact:exclude', Value: 'true' }] }],
  });
  mocks.tagging.on(GetResourcesCommand, { TagFilters: [{ Key: 'team' }] }).resolves({
    ResourceTagMappingList: [{ ResourceARN: arn('orders'), Tags: [{ Key: 'team', Value: 'shop' }] }],
  });
  mocks.ddb.on(ScanCommand).resolves({
    Items: [{ pk: 'EXCLUDE#rolled-back', functionName: 'rolled-back', reason: 'rollback', excludedAt: 'x' }],
  });
  mocks.s3.on(PutObjectCommand).resolves({});
  mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
}

function writtenInventory(): InventoryItem[] {
  const body = mocks.s3.commandCalls(PutObjectCommand)[0]!.args[0].input.Body;
  return JSON.parse(String(body)) as InventoryItem[];
}

beforeEach(() => {
  prepare();
  layerCheck.mockReset();
});
afterEach(silenceLogs);

describe('take-inventory', () => {
  it('lists, tags, marks exclusions, redacts and writes the inventory (dry-run: no layer check)', async () => {
    useRuntime();
    estate();

    const out = await handler(event);

    expect(out).toEqual({
      runId: 'run-7',
      startedAt: '2025-06-01T12:00:00.000Z',
      protectionAllowed: false,
      protectionBlockedBy: null,
      workers: 1,
      inventory: { bucket: 'inventory-bucket', key: 'runs/run-7/inventory.json', count: 4 },
      layerCheck: { ok: true, reason: 'not checked in dry-run mode' },
    });
    expect(mocks.lambda).toHaveReceivedCommandTimes(ListFunctionsCommand, 3);
    expect(mocks.tagging).toHaveReceivedCommandTimes(GetResourcesCommand, 2);
    expect(mocks.ddb).toHaveReceivedCommandTimes(ScanCommand, 1);
    expect(mocks.s3).toHaveReceivedCommandTimes(PutObjectCommand, 1);
    expect(mocks.s3).toHaveReceivedCommandWith(PutObjectCommand, {
      Bucket: 'inventory-bucket',
      Key: 'runs/run-7/inventory.json',
      ContentType: 'application/json',
    });
    expect(mocks.s3.commandCalls(PutObjectCommand)[0]!.args[0].input).not.toHaveProperty('ServerSideEncryption');
    expect(layerCheck).not.toHaveBeenCalled();
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);

    const items = writtenInventory();
    expect(items.map((i) => i.configuration.FunctionName)).toEqual(['orders', 'payments', 'legacy', 'rolled-back']);
    expect(items[0]!.tags).toEqual({ team: 'shop' });
    expect(items[2]!.tags).toEqual({ 'zero-impact:exclude': 'true' });
    expect(items[3]!.persistentlyExcluded).toBe(true);
    expect(items[0]!.persistentlyExcluded).toBeUndefined();
    expect(items[0]!.configuration.Environment?.Variables?.['API_KEY']).toBe('[redacted]');
    expect(items[1]!.configuration.Environment?.Variables?.['AWS_LAMBDA_EXEC_WRAPPER']).toBe(WRAPPER);
  });

  it('item 3: redacts every value to one fixed placeholder and carries the exact real size as variablesBytes', async () => {
    useRuntime();
    estate();

    await handler(event);

    const [orders] = writtenInventory();
    expect(orders!.configuration.Environment?.Variables).toEqual({ DB_HOST: '[redacted]', API_KEY: '[redacted]' });
    expect(orders!.variablesBytes).toBe(Buffer.byteLength(JSON.stringify({ DB_HOST: 'db.internal', API_KEY: CANARY })));
  });

  it('runs the layer check in protect mode and allows protection when it passes', async () => {
    useRuntime(baseConfig({ mode: 'protect' }));
    estate();
    layerCheck.mockResolvedValue({ ok: true, layer: {} as never });

    const out = await handler(event);

    expect(out.protectionAllowed).toBe(true);
    expect(out.layerCheck).toEqual({ ok: true });
    expect(layerCheck).toHaveBeenCalledTimes(1);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('forbids protection, alarms and emits LayerCheckFailed when the layer check fails', async () => {
    useRuntime(baseConfig({ mode: 'protect' }));
    estate();
    layerCheck.mockResolvedValue({
      ok: false,
      code: 'DEFENDER_LAYER_INVALID',
      reason: `Defender layer ${LAYER}: its ZIP has no twistlock/twistlock_wrapper`,
    });
    const logs = captureLogs();
    const emitted = captureMetrics();

    const out = await handler(event);

    expect(out.protectionAllowed).toBe(false);
    expect(out.protectionBlockedBy).toBe('DEFENDER_LAYER_INVALID');
    expect(out.layerCheck).toEqual({
      ok: false,
      code: 'DEFENDER_LAYER_INVALID',
      reason: `Defender layer ${LAYER}: its ZIP has no twistlock/twistlock_wrapper`,
    });
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    const publish = mocks.sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(publish.TopicArn).toBe('arn:aws:sns:eu-west-1:123456789012:alarms');
    expect(publish.MessageAttributes?.['kind']).toEqual({ DataType: 'String', StringValue: 'alarm' });
    expect(publish.Subject!.length).toBeLessThan(100);
    expect(logs.text()).toContain('Defender layer check failed');
    expect(emitted).toEqual([
      { name: 'FunctionsInventoried', value: 4, dimensions: {} },
      { name: 'LayerCheckFailed', value: 1, dimensions: {} },
    ]);
  });

  it('issue 9: a layer check that could not be done forbids protection as FACTS_MISSING, alarming the engine only', async () => {
    useRuntime(baseConfig({ mode: 'protect' }));
    estate();
    layerCheck.mockResolvedValue({
      ok: false,
      code: 'FACTS_MISSING',
      awsError: 'ThrottlingException',
      reason: `Defender layer ${LAYER} could not be checked (GetLayerVersionByArn failed: ThrottlingException: Rate exceeded)`,
    });
    const emitted = captureMetrics();

    const out = await handler(event);

    expect(out.protectionAllowed).toBe(false);
    expect(out.protectionBlockedBy).toBe('FACTS_MISSING');
    expect(out.layerCheck).toMatchObject({ ok: false, code: 'FACTS_MISSING', awsError: 'ThrottlingException' });
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    const publish = mocks.sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(publish.TopicArn).toBe('arn:aws:sns:eu-west-1:123456789012:alarms');
    expect(publish.Subject).toContain('not checked (ThrottlingException)');
    expect(publish.Subject!.length).toBeLessThan(100);
    const message = JSON.parse(publish.Message!) as Record<string, unknown>;
    expect(message).toMatchObject({ alarm: 'FACTS_MISSING', awsError: 'ThrottlingException' });
    expect(String(message['remediation'])).not.toContain('fix defender.layerArn');
    expect(publish.MessageAttributes?.['outcome']).toEqual({ DataType: 'String', StringValue: 'FACTS_MISSING' });
    expect(emitted).toContainEqual({ name: 'LayerCheckFailed', value: 1, dimensions: {} });
  });

  it('issue 9: a layer check that throws is FACTS_MISSING, never DEFENDER_LAYER_INVALID', async () => {
    useRuntime(baseConfig({ mode: 'protect' }));
    estate();
    layerCheck.mockRejectedValue(Object.assign(new Error('socket hang up'), { name: 'TimeoutError' }));

    const out = await handler(event);

    expect(out.protectionBlockedBy).toBe('FACTS_MISSING');
    expect(out.layerCheck).toMatchObject({ ok: false, code: 'FACTS_MISSING', awsError: 'TimeoutError' });
  });

  it('fails the run when the tag query fails (exclusions unknown: nothing is safe)', async () => {
    useRuntime();
    estate();
    mocks.tagging
      .on(GetResourcesCommand)
      .rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));

    await expect(handler(event)).rejects.toThrow('denied');
    expect(mocks.s3).toHaveReceivedCommandTimes(PutObjectCommand, 0);
  });

  it('never lets a customer variable value reach S3, SNS or the logs', async () => {
    useRuntime(baseConfig({ mode: 'protect' }));
    estate();
    layerCheck.mockResolvedValue({ ok: false, code: 'DEFENDER_LAYER_INVALID', reason: 'layer missing' });
    const logs = captureLogs();

    await handler(event);

    expect(logs.text().length).toBeGreaterThan(0);
    expect(logs.text()).not.toContain(CANARY);
    expect(everythingSent()).not.toContain(CANARY);
  });
});

describe('take-inventory, issue 8 item 15: Lambda@Edge', () => {
  const EAST = 'us-east-1';
  const eastArn = (name: string) => `arn:aws:lambda:${EAST}:123456789012:function:${name}`;
  const east = (name: string) => fn(name, { FunctionArn: eastArn(name) });

  function eastEstate(): void {
    mocks.lambda.on(ListFunctionsCommand).resolves({ Functions: listed(east('edge'), east('cache'), east('plain')) });
    mocks.tagging.on(GetResourcesCommand).resolves({ ResourceTagMappingList: [] });
    mocks.ddb.on(ScanCommand).resolves({ Items: [] });
    mocks.s3.on(PutObjectCommand).resolves({});
  }

  const association = (arn: string) => ({
    Quantity: 1,
    Items: [{ LambdaFunctionARN: arn, EventType: 'viewer-request' as const }],
  });

  it('item 15: marks functions associated by any distribution behaviour, reading ListDistributions once per run', async () => {
    // Prepare
    useRuntime();
    eastEstate();
    mocks.cloudfront
      .on(ListDistributionsCommand)
      .resolvesOnce({
        DistributionList: {
          Marker: '',
          MaxItems: 100,
          IsTruncated: true,
          Quantity: 1,
          NextMarker: 'd2',
          Items: [
            {
              Id: 'D1',
              DefaultCacheBehavior: { LambdaFunctionAssociations: association(`${eastArn('edge')}:7`) },
            } as DistributionSummary,
          ],
        },
      })
      .resolvesOnce({
        DistributionList: {
          Marker: 'd2',
          MaxItems: 100,
          IsTruncated: false,
          Quantity: 1,
          Items: [
            {
              Id: 'D2',
              CacheBehaviors: {
                Quantity: 1,
                Items: [{ LambdaFunctionAssociations: association(`${eastArn('cache')}:12`) }],
              },
            } as DistributionSummary,
          ],
        },
      });

    // Act
    await handler(event);

    // Assess
    const items = writtenInventory();
    expect(mocks.cloudfront).toHaveReceivedCommandTimes(ListDistributionsCommand, 2);
    expect(items.find((i) => i.configuration.FunctionName === 'edge')?.lambdaEdge).toBe(true);
    expect(items.find((i) => i.configuration.FunctionName === 'cache')?.lambdaEdge).toBe(true);
    expect(items.find((i) => i.configuration.FunctionName === 'plain')).not.toHaveProperty('lambdaEdge');
  });

  it('item 15: marks every us-east-1 function lambdaEdge unreadable when CloudFront cannot be read', async () => {
    useRuntime();
    eastEstate();
    mocks.cloudfront.on(ListDistributionsCommand).rejects(new Error('AccessDenied'));

    await handler(event);

    expect(writtenInventory().map((i) => i.unreadable)).toEqual([['lambdaEdge'], ['lambdaEdge'], ['lambdaEdge']]);
  });

  it('item 15: does not read CloudFront outside us-east-1', async () => {
    useRuntime();
    estate();

    await handler(event);

    expect(mocks.cloudfront).toHaveReceivedCommandTimes(ListDistributionsCommand, 0);
    expect(writtenInventory().every((i) => i.lambdaEdge === undefined && i.unreadable === undefined)).toBe(true);
  });
});

describe('issue 8 item 7: the inventory recognises values the engine wrote, by keyed MAC only', () => {
  const kms = mockClient(KMSClient);
  const KEY = new Uint8Array(32).fill(7);
  const OLD_WRAPPER = '/opt/twistlock/old_wrapper';

  afterEach(() => {
    delete process.env['MAC_KEY_ID'];
    resetMacKey();
    kms.reset();
  });

  it('item 7: MACs our variables whose value is not the configured literal, and nothing else', async () => {
    prepare();
    useRuntime(baseConfig({ defender: { layerArn: LAYER, environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } } }));
    process.env['MAC_KEY_ID'] = 'arn:aws:kms:eu-west-1:123456789012:key/mac';
    resetMacKey();
    kms.on(GenerateMacCommand).resolves({ Mac: KEY });
    mocks.lambda.on(ListFunctionsCommand).resolves({
      Functions: listed(
        fn('current', { Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, API_KEY: CANARY } } }),
        fn('outdated', { Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: OLD_WRAPPER, API_KEY: CANARY } } }),
      ),
    });
    mocks.tagging.on(GetResourcesCommand).resolves({ ResourceTagMappingList: [] });
    mocks.ddb.on(ScanCommand).resolves({ Items: [] });
    mocks.s3.on(PutObjectCommand).resolves({});

    await handler(event);

    const [current, outdated] = writtenInventory();
    expect(current?.ourValueMacs).toBeUndefined();
    expect(outdated?.ourValueMacs).toEqual({
      AWS_LAMBDA_EXEC_WRAPPER: valueMac(KEY, 'outdated', 'AWS_LAMBDA_EXEC_WRAPPER', OLD_WRAPPER),
    });
    expect(JSON.stringify(writtenInventory())).not.toContain(OLD_WRAPPER);
    expect(JSON.stringify(writtenInventory())).not.toContain(CANARY);
  });

  it('item 7: without a MAC key nothing is recognised, and the inventory is still written', async () => {
    prepare();
    useRuntime(baseConfig({ defender: { layerArn: LAYER, environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } } }));
    mocks.lambda.on(ListFunctionsCommand).resolves({
      Functions: listed(fn('outdated', { Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: OLD_WRAPPER } } })),
    });
    mocks.tagging.on(GetResourcesCommand).resolves({ ResourceTagMappingList: [] });
    mocks.ddb.on(ScanCommand).resolves({ Items: [] });
    mocks.s3.on(PutObjectCommand).resolves({});

    await handler(event);

    expect(writtenInventory()[0]?.ourValueMacs).toBeUndefined();
    expect(kms.calls()).toHaveLength(0);
  });
});
