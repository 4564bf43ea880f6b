/**
 * `zero-impact defender publish-layer` end to end: the bundle from the stand-in Console over HTTP, the credentials
 * from Secrets Manager, PublishLayerVersion on the simulated account (IAM-checked, AWS's limits); plan-only changes
 * nothing; the published version passes the run's layer check. And the simulated account's PublishLayerVersion rules.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetLayerVersionByArnCommand, LambdaClient, PublishLayerVersionCommand } from '@aws-sdk/client-lambda';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { mockClient } from 'aws-sdk-client-mock';
import { strToU8, unzipSync, zipSync } from 'fflate';
import * as common from '../../bin/commands/common';
import { run as defender } from '../../bin/commands/defender';
import { checkDefenderLayer } from '../../lambdas/shared/adapters/layer-check';
import { parseConfig, type Config } from '../../lib/config';
import {
  startStandInConsole,
  STANDIN_ACCESS_KEY,
  STANDIN_SECRET_KEY,
  type StandInConsole,
} from '../../local/prisma-console-standin';
import { SimulatedAccount } from '../../local/simulated-account';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const LAYER = `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:twistlock-defender`;
const SECRET = 'zero-impact/prisma-compute';
const WRAPPER = '/opt/twistlock/twistlock_wrapper';
const PYTHON_RUNTIMES = ['python3.11', 'python3.12', 'python3.13'];

const secrets = mockClient(SecretsManagerClient);
let account: SimulatedAccount | undefined;
let standIn: StandInConsole;
let dir: string;
let out: string[];
let err: string[];

function configInput(consoleUrl: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    mode: 'protect',
    defender: {
      layerArn: `${LAYER}:32`,
      environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER },
      policySource: { console: consoleUrl, credentialsSecret: SECRET },
    },
    funnel: { supportedRuntimes: PYTHON_RUNTIMES },
    ...extra,
  };
}

/**
 * The configuration with `defender.policySource`: a file given with --config once lib/config.ts has the key
 * (Helper B), else (this branch alone) the same configuration without it, returned by loadConfig with the key added.
 */
function configArgs(input: Record<string, unknown>): string[] {
  const path = join(dir, 'config.json');
  writeFileSync(path, JSON.stringify(input));
  try {
    parseConfig(input, path);
    return ['--config', path];
  } catch {
    const defenderInput = input['defender'] as Record<string, unknown>;
    const { policySource, ...rest } = defenderInput;
    const parsed = parseConfig({ ...input, defender: rest }, path);
    const withSource = { ...parsed, defender: { ...parsed.defender, policySource } } as Config;
    jest.spyOn(common, 'loadConfig').mockReturnValue(withSource);
    return ['--config', path];
  }
}

function install(options: { allowPublish?: boolean } = {}): SimulatedAccount {
  account = new SimulatedAccount({
    estate: [],
    region: REGION,
    account: ACCOUNT,
    layers: [
      {
        layerVersionArn: `${LAYER}:32`,
        files: { 'twistlock/twistlock_wrapper': '#!/bin/bash\n' },
        compatibleRuntimes: PYTHON_RUNTIMES,
        compatibleArchitectures: ['x86_64'],
      },
    ],
    ...(options.allowPublish === false
      ? {
          outsidePermissions: {
            role: 'operator',
            statements: [{ effect: 'Allow' as const, actions: ['lambda:GetLayerVersion'], resources: ['*'] }],
          },
        }
      : {}),
  }).install();
  return account;
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'publish-layer-'));
  standIn = await startStandInConsole();
  secrets.reset();
  secrets
    .on(GetSecretValueCommand, { SecretId: SECRET })
    .resolves({ SecretString: JSON.stringify({ accessKey: STANDIN_ACCESS_KEY, secretKey: STANDIN_SECRET_KEY }) });
  out = [];
  err = [];
  jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void out.push(args.join(' ')));
  jest.spyOn(console, 'error').mockImplementation((...args: unknown[]) => void err.push(args.join(' ')));
});

afterEach(async () => {
  jest.restoreAllMocks();
  account?.uninstall();
  account = undefined;
  await standIn.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Nothing from the secret, the Console's token or a TW_POLICY ever printed. */
function expectNoSecretPrinted(): void {
  const text = [...out, ...err].join('\n');
  for (const secret of [STANDIN_ACCESS_KEY, STANDIN_SECRET_KEY, 'Bearer', 'eyJ']) expect(text).not.toContain(secret);
}

describe('zero-impact defender publish-layer', () => {
  it('without --yes prints the plan and changes nothing', async () => {
    const sim = install();

    const code = await defender([
      'publish-layer',
      '--runtime',
      'python3.12',
      '--region',
      REGION,
      ...configArgs(configInput(standIn.url)),
    ]);

    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out).toEqual([
      `layer:                    twistlock-defender in ${REGION} (a new version)`,
      expect.stringMatching(/^bundle: {19}python, \d+ bytes, 3 files, sha256 [A-Za-z0-9+/=]+$/),
      'compatible runtimes:      python3.12, python3.11, python3.13',
      'compatible architectures: x86_64',
      'plan only: nothing changed (add --yes to publish)',
    ]);
    expect(sim.calls()['lambda:PublishLayerVersion'] ?? 0).toBe(0);
    expect(standIn.requests.map((r) => `${r.operation} ${r.status} ${r.runtime ?? ''}`.trim())).toEqual([
      'prisma:Authenticate 200',
      'prisma:DownloadServerlessBundle 200 python3.12',
    ]);
    expect(secrets.commandCalls(GetSecretValueCommand)).toHaveLength(1);
    expectNoSecretPrinted();
  });

  it('with --yes publishes the next version (x86_64, the python runtimes) and prints the ARN for defender.layerArn', async () => {
    const sim = install();

    const code = await defender([
      'publish-layer',
      '--runtime',
      'python3.12',
      '--region',
      REGION,
      '--yes',
      ...configArgs(configInput(standIn.url)),
    ]);

    expect(err).toEqual([]);
    expect(code).toBe(0);
    expect(out.slice(-2)).toEqual([`published: ${LAYER}:33`, `set defender.layerArn to "${LAYER}:33"`]);
    expect(sim.calls()['lambda:PublishLayerVersion']).toBe(1);
    const layer = await new LambdaClient({ region: REGION }).send(
      new GetLayerVersionByArnCommand({ Arn: `${LAYER}:33` }),
    );
    expect(layer).toMatchObject({
      LayerVersionArn: `${LAYER}:33`,
      Version: 33,
      CompatibleRuntimes: ['python3.12', 'python3.11', 'python3.13'],
      CompatibleArchitectures: ['x86_64'],
      Description: 'Prisma Cloud Serverless Defender (python) from 127.0.0.1, published by zero-impact',
    });
    const zip = new Uint8Array(
      Buffer.from((layer.Content?.Location ?? '').replace(/^data:application\/zip;base64,/, ''), 'base64'),
    );
    expect(Object.keys(unzipSync(zip))).toEqual(
      expect.arrayContaining(['python/twistlock/__init__.py', 'twistlock/twistlock_wrapper']),
    );

    // The published version passes the run's layer check with this configuration.
    const config = parseConfig(
      {
        ...configInput(standIn.url),
        defender: { layerArn: `${LAYER}:33`, environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
      },
      'test',
    );
    await expect(checkDefenderLayer(config)).resolves.toMatchObject({ ok: true });
    expectNoSecretPrinted();
  });

  it('--format json (issue 13 item 11): the plan, then the published ARN, as one JSON document', async () => {
    const sim = install();
    const args = [
      'publish-layer',
      '--runtime',
      'python3.12',
      '--region',
      REGION,
      ...configArgs(configInput(standIn.url)),
    ];

    const planned = await defender([...args, '--format', 'json']);
    const planOut = out;
    out = [];
    const published = await defender([...args, '--yes', '--json']);

    expect({ planned, published, err }).toEqual({ planned: 0, published: 0, err: [] });
    expect(planOut).toHaveLength(1);
    expect(JSON.parse(planOut[0] ?? '')).toEqual({
      plan: expect.objectContaining({
        layerName: 'twistlock-defender',
        region: REGION,
        compatibleRuntimes: ['python3.12', 'python3.11', 'python3.13'],
        compatibleArchitectures: ['x86_64'],
      }),
      published: false,
    });
    expect(out).toHaveLength(1);
    expect(JSON.parse(out[0] ?? '')).toMatchObject({ published: true, layerVersionArn: `${LAYER}:33` });
    expect(sim.calls()['lambda:PublishLayerVersion']).toBe(1);
    expectNoSecretPrinted();
  });

  it('notes that functions of another family listed in funnel.supportedRuntimes are skipped with this layer', async () => {
    install();

    const code = await defender([
      'publish-layer',
      '--runtime',
      'nodejs20.x',
      '--region',
      REGION,
      ...configArgs(configInput(standIn.url)),
    ]);

    expect(code).toBe(0);
    expect(out).toContain('compatible runtimes:      nodejs20.x');
    expect(out).toContain(
      'note: funnel.supportedRuntimes also lists python3.11, python3.12, python3.13: this layer serves nodejs only, so functions on those runtimes are skipped RUNTIME_UNSUPPORTED (never given a nodejs Defender)',
    );
  });

  it('the Console refuses the keys: exit 1 naming the status, nothing published, no key printed', async () => {
    const sim = install();
    secrets.on(GetSecretValueCommand).resolves({
      SecretString: JSON.stringify({ accessKey: 'AKIA-not-it', secretKey: 'not-the-secret-either' }),
    });

    const code = await defender([
      'publish-layer',
      '--runtime',
      'python3.12',
      '--region',
      REGION,
      '--yes',
      ...configArgs(configInput(standIn.url)),
    ]);

    expect(code).toBe(1);
    expect(err).toEqual([
      'zero-impact defender publish-layer: Prisma Cloud Console authenticate: unauthorized (HTTP 401); nothing changed',
    ]);
    expect(sim.calls()['lambda:PublishLayerVersion'] ?? 0).toBe(0);
    expect([...out, ...err].join('\n')).not.toMatch(/AKIA-not-it|not-the-secret-either/);
  });

  it('a missing or malformed secret: exit 1 naming the secret and the AWS error, never its content', async () => {
    install();
    secrets
      .on(GetSecretValueCommand)
      .rejects(Object.assign(new Error('Secrets Manager can’t find it'), { name: 'ResourceNotFoundException' }));
    const args = [
      'publish-layer',
      '--runtime',
      'python3.12',
      '--region',
      REGION,
      ...configArgs(configInput(standIn.url)),
    ];

    expect(await defender(args)).toBe(1);
    expect(err).toEqual([
      `zero-impact defender publish-layer: the credentials secret ${SECRET} cannot be read (ResourceNotFoundException); nothing changed`,
    ]);

    err.length = 0;
    secrets.on(GetSecretValueCommand).resolves({ SecretString: '{"accessKey":"AKIA-half-only"}' });
    expect(await defender(args)).toBe(1);
    expect(err).toEqual([
      `zero-impact defender publish-layer: the credentials secret ${SECRET} does not hold a JSON SecretString { "accessKey", "secretKey" }; nothing changed`,
    ]);
    expect(standIn.requests).toHaveLength(0);
  });

  it('PublishLayerVersion refused by IAM: exit 1 with AccessDeniedException', async () => {
    install({ allowPublish: false });

    const code = await defender([
      'publish-layer',
      '--runtime',
      'python3.12',
      '--region',
      REGION,
      '--yes',
      ...configArgs(configInput(standIn.url)),
    ]);

    expect(code).toBe(1);
    expect(err).toEqual([
      expect.stringMatching(
        /^zero-impact defender publish-layer: PublishLayerVersion failed \(AccessDeniedException: User: .* is not authorized to perform: lambda:PublishLayerVersion on resource: arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender because .*\); nothing changed$/,
      ),
    ]);
  });

  it('bad usage: exit 2, one line naming the problem', async () => {
    install();
    const config = configArgs(configInput(standIn.url));

    expect(await defender(['publish-layer', '--region', REGION, ...config])).toBe(2);
    expect(await defender(['publish-layer', '--runtime', 'java21', '--region', REGION, ...config])).toBe(2);
    expect(await defender(['publish-layer', '--runtime', 'python3.12', '--region', 'mars', ...config])).toBe(2);
    expect(await defender(['publish-it'])).toBe(2);
    expect(err).toEqual([
      expect.stringContaining('defender publish-layer: --runtime RUNTIME is required'),
      expect.stringContaining('"java21" is not a Lambda runtime the Console ships a layer for'),
      'zero-impact defender publish-layer: --region: "mars" is not an AWS region',
      expect.stringContaining('defender: unknown or missing subcommand'),
    ]);
  });

  it('a configuration without defender.policySource: exit 2 naming the key', async () => {
    install();
    const path = join(dir, 'static.json');
    writeFileSync(
      path,
      JSON.stringify({
        mode: 'protect',
        defender: { layerArn: `${LAYER}:32`, environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
      }),
    );

    expect(await defender(['publish-layer', '--runtime', 'python3.12', '--region', REGION, '--config', path])).toBe(2);
    expect(err).toEqual([
      'zero-impact defender publish-layer: defender.policySource (console and credentialsSecret) is required in the configuration',
    ]);
  });
});

describe("the simulated account's PublishLayerVersion (Lambda API reference, PublishLayerVersion; Lambda quotas)", () => {
  const zip = zipSync({ 'python/x.py': strToU8('x = 1\n') });
  const publish = (input: Partial<PublishLayerVersionCommand['input']>) =>
    new LambdaClient({ region: REGION, maxAttempts: 1 }).send(
      new PublishLayerVersionCommand({ LayerName: 'new-layer', Content: { ZipFile: zip }, ...input }),
    );

  it('numbers versions per layer from 1, and accepts a layer ARN as the name', async () => {
    install();
    await expect(publish({})).resolves.toMatchObject({
      LayerVersionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:new-layer:1`,
      Version: 1,
    });
    await expect(publish({ LayerName: `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:new-layer` })).resolves.toMatchObject({
      Version: 2,
    });
    await expect(publish({ LayerName: 'twistlock-defender' })).resolves.toMatchObject({ Version: 33 });
  });

  it('refuses what AWS refuses', async () => {
    install();
    const invalid = { name: 'InvalidParameterValueException' };
    await expect(publish({ LayerName: 'bad name!' })).rejects.toMatchObject(invalid);
    await expect(publish({ LayerName: 'x'.repeat(141) })).rejects.toMatchObject(invalid);
    await expect(
      publish({ CompatibleRuntimes: Array.from({ length: 16 }, () => 'python3.12') as never }),
    ).rejects.toMatchObject({ ...invalid, message: expect.stringContaining('less than or equal to 15') });
    await expect(publish({ CompatibleRuntimes: ['python9.9'] as never })).rejects.toMatchObject(invalid);
    await expect(publish({ CompatibleArchitectures: ['sparc'] as never })).rejects.toMatchObject(invalid);
    await expect(publish({ Description: 'd'.repeat(257) })).rejects.toMatchObject(invalid);
    await expect(publish({ Content: { ZipFile: strToU8('not a zip') } })).rejects.toMatchObject({
      ...invalid,
      message: 'Could not unzip uploaded file. Please check your file, then try to upload again.',
    });
    await expect(publish({ Content: {} })).rejects.toMatchObject(invalid);
    await expect(publish({ Content: { ZipFile: new Uint8Array(50 * 1024 * 1024 + 1) } })).rejects.toMatchObject({
      name: 'RequestEntityTooLargeException',
      $metadata: { httpStatusCode: 413 },
    });
    expect(account?.calls()['lambda:PublishLayerVersion']).toBe(9);
  });
});
