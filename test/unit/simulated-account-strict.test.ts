/**
 * Issue 8, "the simulated account must be as strict as AWS": one test per rule the simulator enforces (see the
 * rule list in local/simulated-account.ts and docs/local-run.md).
 */
import { CloudFrontClient, ListDistributionsCommand } from '@aws-sdk/client-cloudfront';
import { DescribeRouteTablesCommand, EC2Client } from '@aws-sdk/client-ec2';
import {
  DecryptCommand,
  EncryptCommand,
  GenerateMacCommand,
  KMSClient,
  NotFoundException,
  VerifyMacCommand,
} from '@aws-sdk/client-kms';
import {
  CodeVerificationFailedException,
  GetCodeSigningConfigCommand,
  GetFunctionCodeSigningConfigCommand,
  GetFunctionCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
  ListAliasesCommand,
  ListTagsCommand,
  ListVersionsByFunctionCommand,
  ResourceNotFoundException,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { parseEstate, type Estate, type EstateFunction } from '../../local/estate';
import { functionPolicies, isAllowed, type CallerPolicy } from '../../local/iam-policy';
import { changedFunctions } from '../../local/run-summary';
import {
  ManualClock,
  SimulatedAccount,
  runAsCaller,
  type SimulatedAccountOptions,
} from '../../local/simulated-account';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const FUNCTIONS = `arn:aws:lambda:${REGION}:${ACCOUNT}:function:*`;
const DEFENDER = `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:twistlock-defender:32`;
const OTHER_LAYER = `arn:aws:lambda:${REGION}:${ACCOUNT}:layer:shared-utils:7`;
const MAC_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/mac-key-1`;
const CMK = `arn:aws:kms:${REGION}:${ACCOUNT}:key/stack-cmk-1`;

function fn(
  name: string,
  extra: Partial<EstateFunction> = {},
  configuration: Record<string, unknown> = {},
): EstateFunction {
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
    ...extra,
  };
}

function estateOf(functions: EstateFunction[], region = REGION): Estate {
  return { functions, ssmParameters: {}, region, account: ACCOUNT };
}

function allow(
  actions: string[],
  resources: string[] = ['*'],
  conditions?: CallerPolicy['statements'][number]['conditions'],
) {
  return { effect: 'Allow' as const, actions, resources, ...(conditions !== undefined ? { conditions } : {}) };
}

describe('issue 8: the simulated account is as strict as AWS', () => {
  let account: SimulatedAccount | undefined;
  const lambda = new LambdaClient({ region: REGION, maxAttempts: 1 });

  function install(functions: EstateFunction[], options: Partial<SimulatedAccountOptions> = {}): SimulatedAccount {
    account = new SimulatedAccount({ estate: estateOf(functions), clock: new ManualClock(), ...options });
    return account.install();
  }

  afterEach(() => {
    account?.uninstall();
    account = undefined;
  });

  describe('caller permissions', () => {
    const reader: CallerPolicy = {
      role: 'assess-role',
      statements: [allow(['lambda:GetFunction', 'lambda:GetFunctionConfiguration'], [FUNCTIONS])],
    };

    it('refuses a call the caller role does not allow with Lambda AccessDeniedException 403', async () => {
      // Prepare
      const sim = install([fn('orders-api')], { permissions: { 'assess-batch': reader } });

      // Act
      const act = runAsCaller('assess-batch', () =>
        lambda.send(new ListTagsCommand({ Resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:orders-api` })),
      );

      // Assess
      await expect(act).rejects.toMatchObject({
        name: 'AccessDeniedException',
        $metadata: { httpStatusCode: 403 },
        message: expect.stringContaining('is not authorized to perform: lambda:ListTags on resource:'),
      });
      expect(sim.denied).toEqual([
        `assess-batch lambda:ListTags arn:aws:lambda:${REGION}:${ACCOUNT}:function:orders-api`,
      ]);
    });

    it('refuses EC2 with UnauthorizedOperation and SNS with AuthorizationErrorException', async () => {
      // Prepare
      install([fn('orders-api')], { permissions: { 'assess-batch': reader } });

      // Act
      const ec2 = runAsCaller('assess-batch', () =>
        new EC2Client({ region: REGION, maxAttempts: 1 }).send(new DescribeRouteTablesCommand({})),
      );
      const sns = runAsCaller('assess-batch', () =>
        new SNSClient({ region: REGION, maxAttempts: 1 }).send(
          new PublishCommand({ TopicArn: `arn:aws:sns:${REGION}:${ACCOUNT}:t`, Message: 'm' }),
        ),
      );

      // Assess
      await expect(ec2).rejects.toMatchObject({ name: 'UnauthorizedOperation', $metadata: { httpStatusCode: 403 } });
      await expect(sns).rejects.toMatchObject({
        name: 'AuthorizationErrorException',
        $metadata: { httpStatusCode: 403 },
      });
    });

    it('allows calls outside any caller context unless outsidePermissions is given', async () => {
      // Prepare
      install([fn('orders-api')], {
        permissions: { 'assess-batch': reader },
        outsidePermissions: { role: 'operator', statements: [allow(['lambda:GetFunctionConfiguration'])] },
      });

      // Act
      const allowed = lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));
      const refused = lambda.send(new ListTagsCommand({ Resource: 'orders-api' }));

      // Assess
      await expect(allowed).resolves.toMatchObject({ FunctionName: 'orders-api' });
      await expect(refused).rejects.toMatchObject({ name: 'AccessDeniedException' });
    });

    it('gives a caller without a policy entry nothing', async () => {
      // Prepare
      install([fn('orders-api')], { permissions: {} });

      // Act
      const act = runAsCaller('unknown-handler', () =>
        lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' })),
      );

      // Assess
      await expect(act).rejects.toMatchObject({ name: 'AccessDeniedException' });
    });

    it('keeps each concurrent invocation its own caller (AsyncLocalStorage, not a global)', async () => {
      // Prepare
      install([fn('orders-api')], {
        permissions: { reader, nobody: { role: 'nobody', statements: [] } },
      });
      const read = () => lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api' }));

      // Act
      const results = await Promise.allSettled([
        runAsCaller('reader', async () => {
          await new Promise((resolve) => setImmediate(resolve));
          return read();
        }),
        runAsCaller('nobody', read),
        runAsCaller('reader', read),
      ]);

      // Assess
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    });

    it('matches resource patterns: a grant on one layer does not allow another', () => {
      // Prepare
      const policy: CallerPolicy = { role: 'r', statements: [allow(['lambda:GetLayerVersion'], [DEFENDER])] };

      // Act
      const own = isAllowed(policy, 'lambda:GetLayerVersion', DEFENDER);
      const other = isAllowed(policy, 'lambda:GetLayerVersion', OTHER_LAYER);

      // Assess
      expect([own, other]).toEqual([true, false]);
    });

    it('lets an explicit Deny win and matches actions case-insensitively with wildcards', () => {
      // Prepare
      const policy: CallerPolicy = {
        role: 'r',
        statements: [allow(['lambda:get*']), { effect: 'Deny', actions: ['lambda:GetFunction'], resources: ['*'] }],
      };

      // Act / Assess
      expect(isAllowed(policy, 'lambda:GetFunctionConfiguration', 'x')).toBe(true);
      expect(isAllowed(policy, 'lambda:GetFunction', 'x')).toBe(false);
    });

    it('evaluates ForAnyValue:StringLike on lambda:Layer: an update without the Defender layer is refused', async () => {
      // Prepare
      const protect: CallerPolicy = {
        role: 'protect-role',
        statements: [
          allow(['lambda:GetFunctionConfiguration'], [FUNCTIONS]),
          allow(['lambda:GetLayerVersion'], [`arn:aws:lambda:${REGION}:*:layer:*:*`]),
          allow(['lambda:UpdateFunctionConfiguration'], [FUNCTIONS], {
            'ForAnyValue:StringLike': {
              'lambda:Layer': [`arn:aws:lambda:${REGION}:${ACCOUNT}:layer:twistlock-defender:*`],
            },
          }),
        ],
      };
      install([fn('orders-api', {}, { Layers: [{ Arn: OTHER_LAYER }] })], {
        permissions: { 'protect-function': protect },
        layers: [{ layerVersionArn: DEFENDER }],
      });
      const update = (input: Record<string, unknown>) =>
        runAsCaller('protect-function', () =>
          lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', ...input })),
        );

      // Act
      const variablesOnly = update({ Environment: { Variables: { A: 'b' } } });
      const withoutDefender = update({ Layers: [OTHER_LAYER] });
      const withDefender = update({ Layers: [OTHER_LAYER, DEFENDER] });

      // Assess
      await expect(variablesOnly).rejects.toMatchObject({ name: 'AccessDeniedException' });
      await expect(withoutDefender).rejects.toMatchObject({ name: 'AccessDeniedException' });
      await expect(withDefender).resolves.toMatchObject({ LastUpdateStatus: 'InProgress' });
    });

    it('requires lambda:GetLayerVersion on every layer of an UpdateFunctionConfiguration request', async () => {
      // Prepare
      const protect: CallerPolicy = {
        role: 'protect-role',
        statements: [
          allow(['lambda:UpdateFunctionConfiguration'], [FUNCTIONS]),
          allow(['lambda:GetLayerVersion'], [DEFENDER]),
        ],
      };
      install([fn('orders-api', {}, { Layers: [{ Arn: OTHER_LAYER }] })], {
        permissions: { 'protect-function': protect },
        layers: [{ layerVersionArn: DEFENDER }],
      });

      // Act
      const act = runAsCaller('protect-function', () =>
        lambda.send(
          new UpdateFunctionConfigurationCommand({ FunctionName: 'orders-api', Layers: [OTHER_LAYER, DEFENDER] }),
        ),
      );

      // Assess
      await expect(act).rejects.toMatchObject({
        name: 'AccessDeniedException',
        message: expect.stringContaining(`lambda:GetLayerVersion on resource: ${OTHER_LAYER}`),
      });
    });

    it('does not let a kms:ViaService condition allow a direct KMS call', () => {
      // Prepare
      const policy: CallerPolicy = {
        role: 'r',
        statements: [
          allow(['kms:Decrypt'], [`arn:aws:kms:${REGION}:${ACCOUNT}:key/*`], {
            StringEquals: { 'kms:ViaService': `ssm.${REGION}.amazonaws.com` },
          }),
        ],
      };

      // Act / Assess
      expect(isAllowed(policy, 'kms:Decrypt', CMK)).toBe(false);
    });

    it('reads each function role policy from a synthesized template, resources resolved to local names', () => {
      // Prepare
      const template = {
        Resources: {
          Fn: { Type: 'AWS::Lambda::Function', Properties: { Role: { 'Fn::GetAtt': ['FnRole', 'Arn'] } } },
          FnRole: { Type: 'AWS::IAM::Role' },
          FnPolicy: {
            Type: 'AWS::IAM::Policy',
            Properties: {
              Roles: [{ Ref: 'FnRole' }],
              PolicyDocument: {
                Statement: [
                  {
                    Effect: 'Allow',
                    Action: 'lambda:GetFunction',
                    Resource: {
                      'Fn::Join': [
                        '',
                        [
                          'arn:',
                          { Ref: 'AWS::Partition' },
                          ':lambda:',
                          { Ref: 'AWS::Region' },
                          ':',
                          { Ref: 'AWS::AccountId' },
                          ':function:*',
                        ],
                      ],
                    },
                  },
                ],
              },
            },
          },
        },
      };

      // Act
      const policies = functionPolicies(template, { region: REGION, account: ACCOUNT, stackName: 'S' });

      // Assess
      expect(policies.get('Fn')).toEqual({
        role: 'S-FnRole',
        statements: [{ effect: 'Allow', actions: ['lambda:GetFunction'], resources: [FUNCTIONS] }],
      });
    });
  });

  describe('lambda:GetFunction tags and lambda:ListTags', () => {
    const tagged = () => fn('orders-api', { tags: { 'zero-impact:exclude': 'true' } });

    it('returns Tags from GetFunction only to a caller allowed lambda:ListTags', async () => {
      // Prepare
      install([tagged()], {
        permissions: {
          without: { role: 'a', statements: [allow(['lambda:GetFunction'], [FUNCTIONS])] },
          with: { role: 'b', statements: [allow(['lambda:GetFunction', 'lambda:ListTags'], [FUNCTIONS])] },
        },
      });
      const get = () => lambda.send(new GetFunctionCommand({ FunctionName: 'orders-api' }));

      // Act
      const without = await runAsCaller('without', get);
      const withListTags = await runAsCaller('with', get);

      // Assess
      expect(without.Tags).toBeUndefined();
      expect(withListTags.Tags).toEqual({ 'zero-impact:exclude': 'true' });
    });

    it('answers lambda:ListTags on the function ARN with { Tags }, and ResourceNotFoundException for an unknown one', async () => {
      // Prepare
      install([tagged()]);

      // Act
      const found = await lambda.send(
        new ListTagsCommand({ Resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:orders-api` }),
      );
      const missing = lambda.send(
        new ListTagsCommand({ Resource: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:gone` }),
      );

      // Assess
      expect(found.Tags).toEqual({ 'zero-impact:exclude': 'true' });
      await expect(missing).rejects.toBeInstanceOf(ResourceNotFoundException);
    });
  });

  describe('estate shapes survive as AWS returns them', () => {
    it('keeps Environment.Error (KMS decrypt failure) without Variables', async () => {
      // Prepare
      const error = {
        ErrorCode: 'KMSAccessDeniedException',
        Message: 'Lambda was unable to decrypt the environment variables because KMS access was denied.',
      };
      install(parseEstate([fn('kms-broken', {}, { Environment: { Error: error } })], 'estate.json').functions);

      // Act
      const configuration = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'kms-broken' }));

      // Assess
      expect(configuration.Environment).toEqual({ Error: error });
    });

    it('keeps null fields null (Architectures: null)', async () => {
      // Prepare
      install(parseEstate([fn('arch-null', {}, { Architectures: null })], 'estate.json').functions);

      // Act
      const configuration = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'arch-null' }));

      // Assess
      expect(configuration.Architectures).toBeNull();
    });
  });

  describe('published versions and aliases', () => {
    const versioned = () =>
      fn(
        'orders-api',
        {
          versions: [
            { version: '1', layers: [OTHER_LAYER], variables: { STAGE: 'v1' } },
            { version: '2', variables: { STAGE: 'v2' }, configuration: { Handler: 'v2.handler' } },
          ],
          aliases: [
            { name: 'live', functionVersion: '2', routingConfig: { additionalVersionWeights: { '1': 0.1 } } },
            { name: 'dev', functionVersion: '$LATEST' },
          ],
        },
        { Environment: { Variables: { STAGE: 'latest' } } },
      );

    it('keeps each version its own layers and variables; UpdateFunctionConfiguration changes only $LATEST', async () => {
      // Prepare
      install([versioned()], { layers: [{ layerVersionArn: DEFENDER }] });

      // Act
      await lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: 'orders-api',
          Layers: [DEFENDER],
          Environment: { Variables: { X: 'y' } },
        }),
      );
      const v1 = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api', Qualifier: '1' }));
      const live = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'orders-api:live' }));
      const latest = await lambda.send(
        new GetFunctionConfigurationCommand({ FunctionName: 'orders-api', Qualifier: '$LATEST' }),
      );

      // Assess
      expect(v1).toMatchObject({
        Version: '1',
        Environment: { Variables: { STAGE: 'v1' } },
        FunctionArn: expect.stringMatching(/:orders-api:1$/),
      });
      expect(v1.Layers?.map((l) => l.Arn)).toEqual([OTHER_LAYER]);
      expect(live).toMatchObject({ Version: '2', Handler: 'v2.handler', Environment: { Variables: { STAGE: 'v2' } } });
      expect(live.Layers).toBeUndefined();
      expect(latest).toMatchObject({ Version: '$LATEST', Environment: { Variables: { X: 'y' } } });
    });

    it('answers GetFunction with a Qualifier, and ResourceNotFoundException for an unknown version or alias', async () => {
      // Prepare
      install([versioned()]);

      // Act
      const v2 = await lambda.send(new GetFunctionCommand({ FunctionName: 'orders-api', Qualifier: '2' }));
      const unknownVersion = lambda.send(
        new GetFunctionConfigurationCommand({ FunctionName: 'orders-api', Qualifier: '9' }),
      );
      const unknownAlias = lambda.send(new GetFunctionCommand({ FunctionName: 'orders-api:nope' }));

      // Assess
      expect(v2.Configuration?.Version).toBe('2');
      await expect(unknownVersion).rejects.toMatchObject({
        name: 'ResourceNotFoundException',
        message: expect.stringContaining('orders-api:9'),
      });
      await expect(unknownAlias).rejects.toBeInstanceOf(ResourceNotFoundException);
    });

    it('lists versions ($LATEST first) and aliases with their routing config, paged with Marker/NextMarker', async () => {
      // Prepare
      install([versioned()]);

      // Act
      const page1 = await lambda.send(new ListVersionsByFunctionCommand({ FunctionName: 'orders-api', MaxItems: 2 }));
      const page2 = await lambda.send(
        new ListVersionsByFunctionCommand({ FunctionName: 'orders-api', MaxItems: 2, Marker: page1.NextMarker }),
      );
      const aliases = await lambda.send(new ListAliasesCommand({ FunctionName: 'orders-api' }));

      // Assess
      expect([...(page1.Versions ?? []), ...(page2.Versions ?? [])].map((v) => v.Version)).toEqual([
        '$LATEST',
        '1',
        '2',
      ]);
      expect(page2.NextMarker).toBeUndefined();
      expect(aliases.Aliases).toEqual([
        expect.objectContaining({
          Name: 'live',
          FunctionVersion: '2',
          AliasArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:orders-api:live`,
          RoutingConfig: { AdditionalVersionWeights: { '1': 0.1 } },
        }),
        expect.objectContaining({ Name: 'dev', FunctionVersion: '$LATEST' }),
      ]);
    });

    it('rejects an estate alias on a version that is not published', () => {
      // Act
      const act = () => parseEstate([fn('f', { aliases: [{ name: 'live', functionVersion: '3' }] })], 'estate.json');

      // Assess
      expect(act).toThrow('estate.json: $[0].aliases[0].functionVersion: version 3 is not in "versions"');
    });
  });

  describe('code signing', () => {
    const signed = (policy: 'Warn' | 'Enforce') =>
      fn(
        'signed-fn',
        { codeSigningConfig: { untrustedArtifactOnDeployment: policy } },
        { Layers: [{ Arn: OTHER_LAYER }] },
      );

    it('answers GetFunctionCodeSigningConfig and GetCodeSigningConfig with the config and its policy', async () => {
      // Prepare
      install([signed('Enforce'), fn('plain')]);

      // Act
      const attached = await lambda.send(new GetFunctionCodeSigningConfigCommand({ FunctionName: 'signed-fn' }));
      const none = await lambda.send(new GetFunctionCodeSigningConfigCommand({ FunctionName: 'plain' }));
      const config = await lambda.send(
        new GetCodeSigningConfigCommand({ CodeSigningConfigArn: attached.CodeSigningConfigArn }),
      );
      const missing = lambda.send(
        new GetCodeSigningConfigCommand({
          CodeSigningConfigArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:code-signing-config:csc-0000000000000000a`,
        }),
      );

      // Assess
      expect(attached).toMatchObject({
        FunctionName: 'signed-fn',
        CodeSigningConfigArn: expect.stringMatching(/:code-signing-config:csc-[a-z0-9]{17}$/),
      });
      expect(none.CodeSigningConfigArn).toBe('');
      expect(config.CodeSigningConfig?.CodeSigningPolicies?.UntrustedArtifactOnDeployment).toBe('Enforce');
      await expect(missing).rejects.toBeInstanceOf(ResourceNotFoundException);
    });

    it('fails with CodeVerificationFailedException when Enforce meets an unsigned added layer, and changes nothing', async () => {
      // Prepare
      const sim = install([signed('Enforce')], { layers: [{ layerVersionArn: DEFENDER }] });
      const before = sim.functionConfiguration('signed-fn');

      // Act
      const act = lambda.send(
        new UpdateFunctionConfigurationCommand({ FunctionName: 'signed-fn', Layers: [OTHER_LAYER, DEFENDER] }),
      );

      // Assess
      await expect(act).rejects.toBeInstanceOf(CodeVerificationFailedException);
      expect(sim.functionConfiguration('signed-fn')).toEqual(before);
    });

    it('lets Warn deploy the unsigned layer, and Enforce keep the layers it already has or add a signed one', async () => {
      // Prepare
      const sim = install(
        [
          signed('Warn'),
          {
            ...signed('Enforce'),
            configuration: {
              ...signed('Enforce').configuration,
              FunctionName: 'enforced',
              FunctionArn: `arn:aws:lambda:${REGION}:${ACCOUNT}:function:enforced`,
            },
          },
        ],
        {
          layers: [{ layerVersionArn: DEFENDER }, { layerVersionArn: `${DEFENDER.slice(0, -2)}33`, signed: true }],
        },
      );

      // Act
      await lambda.send(
        new UpdateFunctionConfigurationCommand({ FunctionName: 'signed-fn', Layers: [OTHER_LAYER, DEFENDER] }),
      );
      await lambda.send(
        new UpdateFunctionConfigurationCommand({
          FunctionName: 'enforced',
          Layers: [OTHER_LAYER, `${DEFENDER.slice(0, -2)}33`],
        }),
      );

      // Assess
      expect(sim.functionConfiguration('signed-fn')?.Layers?.map((l) => l.Arn)).toEqual([OTHER_LAYER, DEFENDER]);
      expect(sim.functionConfiguration('enforced')?.Layers).toHaveLength(2);
    });
  });

  describe('Lambda@Edge', () => {
    const EAST = 'us-east-1';
    const edgeFn = (name: string, distributionId: string, pathPattern?: string): EstateFunction => ({
      configuration: {
        FunctionName: name,
        FunctionArn: `arn:aws:lambda:${EAST}:${ACCOUNT}:function:${name}`,
        Runtime: 'nodejs20.x',
        MemorySize: 128,
        Timeout: 5,
      },
      versions: [{ version: '1' }, { version: '2' }],
      cloudFront: [
        { distributionId, eventType: 'viewer-request', ...(pathPattern !== undefined ? { pathPattern } : {}) },
      ],
    });
    const installEdge = (functions: EstateFunction[], options: Partial<SimulatedAccountOptions> = {}) => {
      account = new SimulatedAccount({
        estate: parseEstate(functions, 'edge.json'),
        clock: new ManualClock(),
        ...options,
      });
      return account.install();
    };

    it('lists distributions with the qualified version ARNs of their associations, paged with Marker/NextMarker', async () => {
      // Prepare
      installEdge([edgeFn('edge-a', 'EDFDVBD6EXAMPLE'), edgeFn('edge-b', 'EMLARXS9EXAMPLE', '/api/*')]);
      const client = new CloudFrontClient({ region: EAST, maxAttempts: 1 });

      // Act
      const first = await client.send(new ListDistributionsCommand({ MaxItems: 1 }));
      const second = await client.send(
        new ListDistributionsCommand({ MaxItems: 1, Marker: first.DistributionList?.NextMarker }),
      );

      // Assess
      expect(first.DistributionList).toMatchObject({ IsTruncated: true, Quantity: 1, NextMarker: 'EDFDVBD6EXAMPLE' });
      expect(first.DistributionList?.Items?.[0]?.DefaultCacheBehavior?.LambdaFunctionAssociations).toEqual({
        Quantity: 1,
        Items: [
          {
            LambdaFunctionARN: `arn:aws:lambda:${EAST}:${ACCOUNT}:function:edge-a:2`,
            EventType: 'viewer-request',
            IncludeBody: false,
          },
        ],
      });
      expect(second.DistributionList).toMatchObject({ IsTruncated: false, Quantity: 1 });
      expect(second.DistributionList?.Items?.[0]?.CacheBehaviors?.Items?.[0]).toMatchObject({
        PathPattern: '/api/*',
        LambdaFunctionAssociations: { Quantity: 1 },
      });
    });

    it('records edgeBroken when layers or variables land on an associated function', async () => {
      // Prepare
      const defender = `arn:aws:lambda:${EAST}:${ACCOUNT}:layer:twistlock-defender:32`;
      const sim = installEdge([edgeFn('edge-a', 'EDFDVBD6EXAMPLE')], { layers: [{ layerVersionArn: defender }] });
      const client = new LambdaClient({ region: EAST, maxAttempts: 1 });

      // Act
      await client.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'edge-a', Layers: [defender] }));

      // Assess
      expect([...sim.edgeBroken]).toEqual(['edge-a']);
    });

    it('rejects an estate with a Lambda@Edge association outside us-east-1', () => {
      // Act
      const act = () =>
        parseEstate(
          [
            fn('f', {
              versions: [{ version: '1' }],
              cloudFront: [{ distributionId: 'EDFDVBD6EXAMPLE', eventType: 'origin-request' }],
            }),
          ],
          'e.json',
        );

      // Assess
      expect(act).toThrow('Lambda@Edge functions live in us-east-1');
    });
  });

  describe('KMS', () => {
    const kms = new KMSClient({ region: REGION, maxAttempts: 1 });
    const keys = { kmsKeys: [{ arn: MAC_KEY, keySpec: 'HMAC_256' as const }, { arn: CMK }] };
    const message = new TextEncoder().encode('zero-impact/mac-key/v1');

    it('generates a deterministic HMAC_SHA_256 MAC with the account key and verifies it', async () => {
      // Prepare
      install([], keys);

      // Act
      const first = await kms.send(
        new GenerateMacCommand({ KeyId: MAC_KEY, Message: message, MacAlgorithm: 'HMAC_SHA_256' }),
      );
      const again = await kms.send(
        new GenerateMacCommand({ KeyId: 'mac-key-1', Message: message, MacAlgorithm: 'HMAC_SHA_256' }),
      );
      const verified = await kms.send(
        new VerifyMacCommand({ KeyId: MAC_KEY, Message: message, Mac: first.Mac, MacAlgorithm: 'HMAC_SHA_256' }),
      );
      const forged = kms.send(
        new VerifyMacCommand({
          KeyId: MAC_KEY,
          Message: new TextEncoder().encode('other'),
          Mac: first.Mac,
          MacAlgorithm: 'HMAC_SHA_256',
        }),
      );

      // Assess
      expect(first.Mac).toHaveLength(32);
      expect(Buffer.from(again.Mac ?? []).equals(Buffer.from(first.Mac ?? []))).toBe(true);
      expect(verified.MacValid).toBe(true);
      await expect(forged).rejects.toMatchObject({ name: 'KMSInvalidMacException' });
    });

    it('throws NotFoundException for an unknown key and InvalidKeyUsageException for a non-HMAC key', async () => {
      // Prepare
      install([], keys);

      // Act
      const unknown = kms.send(
        new GenerateMacCommand({ KeyId: `${MAC_KEY}-gone`, Message: message, MacAlgorithm: 'HMAC_SHA_256' }),
      );
      const wrongKey = kms.send(new GenerateMacCommand({ KeyId: CMK, Message: message, MacAlgorithm: 'HMAC_SHA_256' }));

      // Assess
      await expect(unknown).rejects.toBeInstanceOf(NotFoundException);
      await expect(wrongKey).rejects.toMatchObject({ name: 'InvalidKeyUsageException' });
    });

    it('refuses GenerateMac to a role without the grant with AccessDeniedException', async () => {
      // Prepare
      install([], {
        ...keys,
        permissions: { 'assess-batch': { role: 'a', statements: [allow(['kms:Decrypt'], [MAC_KEY])] } },
      });

      // Act
      const act = runAsCaller('assess-batch', () =>
        kms.send(new GenerateMacCommand({ KeyId: MAC_KEY, Message: message, MacAlgorithm: 'HMAC_SHA_256' })),
      );

      // Assess
      await expect(act).rejects.toMatchObject({ name: 'AccessDeniedException' });
    });

    it('round-trips Encrypt/Decrypt on the stack CMK with an opaque ciphertext', async () => {
      // Prepare
      install([], keys);
      const plaintext = new TextEncoder().encode('secret value');

      // Act
      const encrypted = await kms.send(new EncryptCommand({ KeyId: CMK, Plaintext: plaintext }));
      const decrypted = await kms.send(new DecryptCommand({ CiphertextBlob: encrypted.CiphertextBlob }));

      // Assess
      expect(Buffer.from(encrypted.CiphertextBlob ?? []).includes(Buffer.from('secret value'))).toBe(false);
      expect(decrypted).toMatchObject({ KeyId: CMK });
      expect(new TextDecoder().decode(decrypted.Plaintext)).toBe('secret value');
    });
  });

  describe('local-run summary "Changed:"', () => {
    it('lists only functions whose configuration really changed, not RevisionId or status churn', () => {
      // Prepare
      const before = [
        { FunctionName: 'a', Layers: [{ Arn: OTHER_LAYER }], RevisionId: '1', LastUpdateStatus: 'Successful' },
        { FunctionName: 'b', Timeout: 3, RevisionId: '1' },
      ];
      const after = [
        { FunctionName: 'a', Layers: [{ Arn: OTHER_LAYER }], RevisionId: '2', LastUpdateStatus: 'InProgress' },
        { FunctionName: 'b', Timeout: 3, RevisionId: '2', Layers: [{ Arn: DEFENDER }] },
      ];

      // Act
      const changed = changedFunctions(before, after);

      // Assess
      expect(changed).toEqual(['b']);
    });
  });
});
