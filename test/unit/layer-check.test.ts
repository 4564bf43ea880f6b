import { GetLayerVersionByArnCommand, LambdaClient, ResourceNotFoundException } from '@aws-sdk/client-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { strToU8, zipSync } from 'fflate';
import { parseConfig, type Config } from '../../lib/config';
import {
  checkDefenderLayer,
  layerCompatibleWith,
  wrapperEntry,
  zipEntryNames,
} from '../../lambdas/shared/adapters/layer-check';

const lambda = mockClient(LambdaClient);
const DEFENDER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32';

function config(overrides: Record<string, unknown> = {}): Config {
  return parseConfig(
    {
      mode: 'protect',
      defender: {
        layerArn: DEFENDER,
        environment: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper', TW_POLICY: 'p' },
      },
      funnel: { supportedRuntimes: ['python3.11', 'nodejs20.x'] },
      ...overrides,
    },
    'test',
  );
}

function dataUrl(files: Record<string, string>): string {
  const zip = zipSync(Object.fromEntries(Object.entries(files).map(([name, text]) => [name, strToU8(text)])));
  return `data:application/zip;base64,${Buffer.from(zip).toString('base64')}`;
}

function layerVersion(overrides: Record<string, unknown> = {}) {
  return {
    LayerVersionArn: DEFENDER,
    Version: 32,
    CompatibleRuntimes: ['python3.11', 'python3.12', 'nodejs20.x'],
    CompatibleArchitectures: ['x86_64'],
    Content: { Location: dataUrl({ 'twistlock/twistlock_wrapper': '#!/bin/sh\nexec "$@"\n' }), CodeSize: 200 },
    ...overrides,
  } as never;
}

beforeEach(() => lambda.reset());

describe('checkDefenderLayer', () => {
  it('passes a layer that exists, declares x86_64 and the runtimes, and holds the wrapper', async () => {
    lambda.on(GetLayerVersionByArnCommand).resolves(layerVersion());

    const result = await checkDefenderLayer(config());

    expect(result).toEqual({
      ok: true,
      layer: {
        arn: DEFENDER,
        compatibleRuntimes: ['python3.11', 'python3.12', 'nodejs20.x'],
        compatibleArchitectures: ['x86_64'],
      },
    });
    expect(lambda).toHaveReceivedCommandTimes(GetLayerVersionByArnCommand, 1);
    expect(lambda).toHaveReceivedCommandWith(GetLayerVersionByArnCommand, { Arn: DEFENDER });
  });

  it("waits for the run's control-plane budget before GetLayerVersionByArn (issue 11: it counts against the quota)", async () => {
    const order: string[] = [];
    lambda.on(GetLayerVersionByArnCommand).callsFake(() => {
      order.push('GetLayerVersionByArn');
      return layerVersion();
    });

    await checkDefenderLayer(config(), async () => {
      order.push('budget');
    });

    expect(order).toEqual(['budget', 'GetLayerVersionByArn']);
  });

  it('passes a layer that declares no runtimes and no architectures', async () => {
    lambda
      .on(GetLayerVersionByArnCommand)
      .resolves(layerVersion({ CompatibleRuntimes: undefined, CompatibleArchitectures: undefined }));

    expect(await checkDefenderLayer(config())).toMatchObject({ ok: true });
  });

  it('fails a missing layer version', async () => {
    lambda
      .on(GetLayerVersionByArnCommand)
      .rejects(new ResourceNotFoundException({ message: 'Layer version not found', $metadata: {} }));

    const result = await checkDefenderLayer(config());

    expect(result).toEqual({
      ok: false,
      code: 'DEFENDER_LAYER_INVALID',
      reason: `Defender layer ${DEFENDER} cannot be read (ResourceNotFoundException: Layer version not found)`,
    });
  });

  it('fails a layer built for arm64 only', async () => {
    lambda.on(GetLayerVersionByArnCommand).resolves(layerVersion({ CompatibleArchitectures: ['arm64'] }));

    expect(await checkDefenderLayer(config())).toEqual({
      ok: false,
      code: 'DEFENDER_LAYER_INVALID',
      reason: `Defender layer ${DEFENDER}: declares architectures arm64, not x86_64`,
    });
  });

  it('fails a layer that declares none of the supported runtimes', async () => {
    lambda.on(GetLayerVersionByArnCommand).resolves(layerVersion({ CompatibleRuntimes: ['java21'] }));

    const result = await checkDefenderLayer(config());

    expect(result).toMatchObject({
      ok: false,
      code: 'DEFENDER_LAYER_INVALID',
      reason: expect.stringContaining('declares runtimes java21, none of funnel.supportedRuntimes'),
    });
  });

  it('passes a one-family layer (a Console bundle): functions of other runtimes are skipped one by one', async () => {
    lambda.on(GetLayerVersionByArnCommand).resolves(layerVersion({ CompatibleRuntimes: ['python3.11'] }));

    const result = await checkDefenderLayer(config());

    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(layerCompatibleWith(result.layer, 'nodejs20.x', ['x86_64'])).toEqual({
      ok: false,
      code: 'RUNTIME_UNSUPPORTED',
      reason: 'the Defender layer declares runtimes python3.11, not nodejs20.x',
    });
    expect(layerCompatibleWith(result.layer, 'python3.11', undefined)).toEqual({ ok: true });
  });

  it('fails when the ZIP lacks the file AWS_LAMBDA_EXEC_WRAPPER points to', async () => {
    lambda
      .on(GetLayerVersionByArnCommand)
      .resolves(layerVersion({ Content: { Location: dataUrl({ 'twistlock/defender.so': 'x' }), CodeSize: 100 } }));

    const result = await checkDefenderLayer(config());

    expect(result).toEqual({
      ok: false,
      code: 'DEFENDER_LAYER_INVALID',
      reason: `Defender layer ${DEFENDER}: its ZIP has no twistlock/twistlock_wrapper, the file AWS_LAMBDA_EXEC_WRAPPER points to (/opt/twistlock/twistlock_wrapper)`,
    });
  });

  it('fails when the download is not a ZIP', async () => {
    lambda.on(GetLayerVersionByArnCommand).resolves(
      layerVersion({
        Content: { Location: `data:application/zip;base64,${Buffer.from('not a zip').toString('base64')}` },
      }),
    );

    expect(await checkDefenderLayer(config())).toMatchObject({
      ok: false,
      reason: expect.stringContaining('its ZIP cannot be read'),
    });
  });

  it('fails when there is no download location', async () => {
    lambda.on(GetLayerVersionByArnCommand).resolves(layerVersion({ Content: {} }));

    expect(await checkDefenderLayer(config())).toMatchObject({
      ok: false,
      reason: expect.stringContaining('no download location'),
    });
  });

  it('fails a ZIP larger than the check downloads, before downloading it', async () => {
    lambda
      .on(GetLayerVersionByArnCommand)
      .resolves(layerVersion({ Content: { Location: 'https://example.invalid/x.zip', CodeSize: 300 * 1024 * 1024 } }));

    expect(await checkDefenderLayer(config())).toMatchObject({
      ok: false,
      reason: expect.stringContaining('over the'),
    });
  });

  it('does not download the ZIP with the handler method', async () => {
    lambda.on(GetLayerVersionByArnCommand).resolves(layerVersion({ Content: {} }));
    const handlerMethod = config({
      defender: {
        layerArn: DEFENDER,
        method: 'handler',
        handler: 'twistlock.handler',
        environment: { TW_POLICY: 'p' },
      },
    });

    expect(await checkDefenderLayer(handlerMethod)).toMatchObject({ ok: true });
  });
});

describe('issue 9: a layer that could not be checked is not a wrong layer', () => {
  const awsError = (name: string, fault: 'client' | 'server' = 'client') =>
    Object.assign(new Error(`${name} happened`), { name, $fault: fault, $metadata: {} });

  it.each([
    ['ThrottlingException'],
    ['TooManyRequestsException'],
    ['AccessDeniedException'],
    ['ServiceException'],
    ['TimeoutError'],
  ])('reports %s as FACTS_MISSING naming the error', async (name) => {
    lambda.on(GetLayerVersionByArnCommand).rejects(awsError(name, name === 'ServiceException' ? 'server' : 'client'));

    const result = await checkDefenderLayer(config());

    expect(result).toMatchObject({ ok: false, code: 'FACTS_MISSING', awsError: name });
    expect(result.ok === false && result.reason).toContain(
      `could not be checked (GetLayerVersionByArn failed: ${name}`,
    );
    expect(result.ok === false && result.reason).not.toContain('fix defender.layerArn');
  });

  it.each([['ResourceNotFoundException'], ['InvalidParameterValueException']])(
    'reports %s (the layer version is not there) as DEFENDER_LAYER_INVALID',
    async (name) => {
      lambda.on(GetLayerVersionByArnCommand).rejects(awsError(name));

      expect(await checkDefenderLayer(config())).toMatchObject({ ok: false, code: 'DEFENDER_LAYER_INVALID' });
    },
  );

  it('reports a failed ZIP download (HTTP 503) as FACTS_MISSING', async () => {
    lambda
      .on(GetLayerVersionByArnCommand)
      .resolves(layerVersion({ Content: { Location: 'https://layers.example/x.zip', CodeSize: 100 } }));
    const fetchSpy = jest.spyOn(globalThis, 'fetch').mockResolvedValue(new Response('busy', { status: 503 }));

    const result = await checkDefenderLayer(config());
    fetchSpy.mockRestore();

    expect(result).toMatchObject({ ok: false, code: 'FACTS_MISSING', awsError: 'HTTP 503' });
  });

  it('reports a download that cannot connect as FACTS_MISSING', async () => {
    lambda
      .on(GetLayerVersionByArnCommand)
      .resolves(layerVersion({ Content: { Location: 'https://layers.example/x.zip', CodeSize: 100 } }));
    const fetchSpy = jest
      .spyOn(globalThis, 'fetch')
      .mockRejectedValue(Object.assign(new Error('connect ECONNRESET'), { name: 'TypeError' }));

    const result = await checkDefenderLayer(config());
    fetchSpy.mockRestore();

    expect(result).toMatchObject({ ok: false, code: 'FACTS_MISSING', awsError: 'TypeError' });
  });

  it('keeps a ZIP that was read and lacks the wrapper DEFENDER_LAYER_INVALID', async () => {
    lambda
      .on(GetLayerVersionByArnCommand)
      .resolves(layerVersion({ Content: { Location: dataUrl({ 'other/file': 'x' }), CodeSize: 100 } }));

    expect(await checkDefenderLayer(config())).toMatchObject({ ok: false, code: 'DEFENDER_LAYER_INVALID' });
  });
});

describe('layerCompatibleWith', () => {
  const layer = { arn: DEFENDER, compatibleRuntimes: ['python3.11'], compatibleArchitectures: ['x86_64'] };

  it('accepts a declared runtime on x86_64, and a function without Architectures', () => {
    expect(layerCompatibleWith(layer, 'python3.11', ['x86_64'])).toEqual({ ok: true });
    expect(layerCompatibleWith(layer, 'python3.11', undefined)).toEqual({ ok: true });
  });

  it('rejects a runtime the layer does not declare', () => {
    expect(layerCompatibleWith(layer, 'nodejs22.x', ['x86_64'])).toMatchObject({
      ok: false,
      code: 'RUNTIME_UNSUPPORTED',
    });
  });

  it('rejects arm64', () => {
    expect(layerCompatibleWith(layer, 'python3.11', ['arm64'])).toMatchObject({ ok: false, code: 'ARCH_ARM64' });
  });

  it('accepts anything when the layer declares nothing', () => {
    expect(layerCompatibleWith({ arn: DEFENDER }, 'python3.13', ['x86_64'])).toEqual({ ok: true });
  });

  it.each([null, 'x86_64', [1], {}, [null]])(
    'item 11: reports Architectures %p as FACTS_MISSING instead of throwing',
    (architectures) => {
      expect(layerCompatibleWith(layer, 'python3.11', architectures)).toMatchObject({
        ok: false,
        code: 'FACTS_MISSING',
      });
    },
  );

  it('item 11: reports a Runtime that is not a string as FACTS_MISSING', () => {
    expect(layerCompatibleWith(layer, 42, ['x86_64'])).toMatchObject({ ok: false, code: 'FACTS_MISSING' });
  });
});

describe('zip helpers', () => {
  it('maps the wrapper path to its ZIP entry', () => {
    expect(wrapperEntry('/opt/twistlock/twistlock_wrapper')).toBe('twistlock/twistlock_wrapper');
    expect(wrapperEntry('/opt/')).toBeUndefined();
  });

  it('lists entry names', () => {
    const zip = zipSync({ 'a/b.txt': strToU8('b'), 'c.txt': strToU8('c') });

    expect(zipEntryNames(zip)).toEqual(['a/b.txt', 'c.txt']);
  });
});
