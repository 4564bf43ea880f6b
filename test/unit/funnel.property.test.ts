import fc from 'fast-check';
import { parseConfig, type Config } from '../../lib/config';
import { assess, type FunnelContext } from '../../lambdas/shared/domain/funnel';
import { layerCompatibleWith } from '../../lambdas/shared/adapters/layer-check';
import type { Assessment } from '../../lambdas/shared/domain/types';

const LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32';
const OLD_LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:31';
const OTHER_LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:otel:7';
const WRAPPER = '/opt/twistlock/twistlock_wrapper';
const POLICY = 'policy-token-literal';
/** Every customer variable value generated here starts with this; no assessment may ever contain it. */
const SECRET_MARK = 'S3CR3T';

const [LITERAL_CONFIG, SSM_CONFIG, HANDLER_CONFIG]: [Config, Config, Config] = [
  parseConfig(
    { defender: { layerArn: LAYER, environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY } } },
    't',
  ),
  parseConfig(
    {
      defender: {
        layerArn: LAYER,
        environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } },
      },
      funnel: { vpcWithoutNat: 'skip' },
      exclusions: { functions: ['payments-*'] },
    },
    't',
  ),
  parseConfig(
    {
      defender: {
        layerArn: LAYER,
        environment: { TW_POLICY: POLICY },
        method: 'handler',
        handler: 'twistlock.handler',
      },
    },
    't',
  ),
];
const CONFIGS = [LITERAL_CONFIG, SSM_CONFIG, HANDLER_CONFIG];

const contextArb: fc.Arbitrary<FunnelContext> = fc.record(
  {
    config: fc.constantFrom(...CONFIGS),
    persistentExclusions: fc.constantFrom(new Set<string>(), new Set(['orders-api'])),
    engineFunctionPrefix: fc.constantFrom('', 'ZeroImpact-'),
    resolvedEnvironment: fc.constantFrom<Record<string, string>>({}, { TW_POLICY: POLICY }),
    engineWritten: fc.constantFrom(new Set<string>(), new Set(['TW_POLICY']), new Set(['AWS_LAMBDA_EXEC_WRAPPER'])),
  },
  { requiredKeys: ['config'] },
);

/** Anything at all, including the strange objects JSON cannot hold. */
const anything = fc.anything({
  withNullPrototype: true,
  withBoxedValues: true,
  withMap: true,
  withSet: true,
  withSparseArray: true,
  withDate: true,
  withBigInt: true,
  withTypedArray: true,
});

/** A well-formed value most of the time, anything at all otherwise. */
const maybeBroken = <T>(valid: fc.Arbitrary<T>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 5, arbitrary: valid }, { weight: 1, arbitrary: anything });

const secretValue = fc.string({ maxLength: 40 }).map((s) => `${SECRET_MARK}${s}`);
const variableName = fc.constantFrom('TABLE_NAME', 'AWS_LAMBDA_EXEC_WRAPPER', 'TW_POLICY', 'ORIGINAL_HANDLER', 'X');

const configurationFields: Record<string, fc.Arbitrary<unknown>> = {
  FunctionName: maybeBroken(fc.constantFrom('orders-api', 'payments-api', 'ZeroImpact-Assess')),
  FunctionArn: maybeBroken(
    fc.constantFrom(
      'arn:aws:lambda:eu-west-1:123456789012:function:orders-api',
      'arn:aws:lambda:us-east-1:123456789012:function:orders-api',
    ),
  ),
  PackageType: maybeBroken(fc.constantFrom('Zip', 'Image')),
  Runtime: maybeBroken(fc.constantFrom('python3.11', 'nodejs20.x', 'python3.8', 'provided.al2023')),
  Handler: maybeBroken(fc.constantFrom('app.handler', 'twistlock.handler')),
  Architectures: maybeBroken(fc.constantFrom(['x86_64'], ['arm64'], [], null, ['x86_64', 'arm64'], 'x86_64')),
  MemorySize: maybeBroken(fc.integer({ min: -1, max: 10240 })),
  Timeout: maybeBroken(fc.integer({ min: 0, max: 900 })),
  Environment: maybeBroken(
    fc.record(
      {
        Variables: maybeBroken(
          fc.dictionary(variableName, fc.oneof(secretValue, fc.constantFrom(WRAPPER, POLICY, `${SECRET_MARK}é€😀`))),
        ),
        Error: fc.constant({ ErrorCode: 'KMSAccessDeniedException' }),
      },
      { requiredKeys: [] },
    ),
  ),
  Layers: maybeBroken(fc.array(fc.record({ Arn: fc.constantFrom(LAYER, OLD_LAYER, OTHER_LAYER) }), { maxLength: 6 })),
  VpcConfig: maybeBroken(fc.record({ SubnetIds: fc.array(fc.constant('subnet-1'), { maxLength: 2 }) })),
  SnapStart: maybeBroken(fc.record({ ApplyOn: fc.constantFrom('None', 'PublishedVersions') })),
  State: maybeBroken(fc.constantFrom('Active', 'Pending', 'Failed', 'Inactive')),
  LastUpdateStatus: maybeBroken(fc.constantFrom('Successful', 'InProgress', 'Failed')),
  LastUpdateStatusReason: maybeBroken(fc.constantFrom('KMS key is disabled', `Value '${SECRET_MARK}x' is bad`)),
};

const topFields: Record<string, fc.Arbitrary<unknown>> = {
  tags: maybeBroken(fc.dictionary(fc.constantFrom('team', 'zero-impact:exclude'), fc.constantFrom('x', 'false'))),
  provisionedConcurrencyConfigs: maybeBroken(fc.array(fc.record({ Status: fc.constant('READY') }), { maxLength: 2 })),
  throttles24h: maybeBroken(fc.integer({ min: -1, max: 5 })),
  vpcEgress: maybeBroken(fc.constantFrom('nat', 'none', 'unknown')),
  reservedConcurrency: maybeBroken(fc.option(fc.integer({ min: 0, max: 100 }))),
  peakConcurrency: maybeBroken(fc.integer({ min: 0, max: 100 })),
  lambdaEdge: maybeBroken(fc.boolean()),
  codeSigning: maybeBroken(fc.constantFrom('none', 'Warn', 'Enforce')),
  previousRejection: maybeBroken(
    fc.record({
      reason: fc.constant('InvalidParameterValueException'),
      nextAttemptAt: fc.constant('2030-01-01T00:00:00Z'),
    }),
  ),
  variablesBytes: maybeBroken(fc.integer({ min: 0, max: 5000 })),
  unreadable: maybeBroken(
    fc.subarray(['lambdaEdge', 'codeSigning', 'vpcEgress', 'reservedConcurrency', 'previousRejection', 'tags']),
  ),
};

/** Every field drawn at random (almost always SKIP). */
const randomFactsArb = fc.record(
  { ...topFields, configuration: maybeBroken(fc.record(configurationFields, { requiredKeys: [] })) },
  { requiredKeys: [] },
);

const ELIGIBLE_FACTS = {
  configuration: {
    FunctionName: 'orders-api',
    FunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:orders-api',
    PackageType: 'Zip',
    Runtime: 'python3.11',
    Handler: 'app.handler',
    MemorySize: 512,
    Timeout: 30,
    Environment: { Variables: { TABLE_NAME: `${SECRET_MARK}-table` } },
  },
  provisionedConcurrencyConfigs: [],
  throttles24h: 0,
};

const change = (fields: Record<string, fc.Arbitrary<unknown>>) =>
  fc.oneof(...Object.entries(fields).map(([key, value]) => fc.tuple(fc.constant(key), value)));

/** An eligible function with up to three fields changed (often still ELIGIBLE, often at a boundary). */
const nearEligibleFactsArb = fc
  .tuple(fc.array(change(configurationFields), { maxLength: 3 }), fc.array(change(topFields), { maxLength: 2 }))
  .map(([configuration, top]) => ({
    ...ELIGIBLE_FACTS,
    ...Object.fromEntries(top),
    configuration: { ...ELIGIBLE_FACTS.configuration, ...Object.fromEntries(configuration) },
  }));

const factsArb = fc.oneof(randomFactsArb, nearEligibleFactsArb);

/** What every assessment must satisfy. */
function expectConsistent(result: Assessment): void {
  expect(result.checks.map((c) => c.gate)).toEqual([...Array(24).keys()]);
  expect(result.reasons).toEqual(result.checks.filter((c) => c.status === 'fail').map((c) => c.code));
  expect(result.warnings).toEqual(result.checks.filter((c) => c.status === 'warn').map((c) => c.code));
  if (result.verdict === 'ELIGIBLE') {
    expect(result.checks.filter((c) => c.status !== 'pass' && c.status !== 'warn')).toEqual([]);
  }
  if (result.verdict === 'SKIP') expect(result.reasons.length).toBeGreaterThan(0);
}

/**
 * Issue 8 item 11: every fact the funnel accepts, the later steps accept. The layer compatibility check of the
 * protect step never throws on the configuration of a function the funnel did not skip.
 */
function expectLaterStepsAccept(facts: unknown, result: Assessment): void {
  if (result.verdict === 'SKIP') return;
  const configuration = (facts as { configuration: Record<string, unknown> }).configuration;
  const layer = { arn: LAYER, compatibleArchitectures: ['x86_64'], compatibleRuntimes: ['python3.11'] };
  expect(() => layerCompatibleWith(layer, configuration['Runtime'], configuration['Architectures'])).not.toThrow();
}

describe('the funnel, for any input', () => {
  it('never throws and stays consistent, whatever it is given', () => {
    fc.assert(
      fc.property(anything, contextArb, (facts, context) => {
        // Act
        const result = assess(facts, context);

        // Assess
        expectConsistent(result);
      }),
      { numRuns: 500 },
    );
  });

  it('never returns ELIGIBLE with a failing or unevaluated gate, and never shows a variable value', () => {
    fc.assert(
      fc.property(factsArb, contextArb, (facts, context) => {
        // Act
        const result = assess(facts, context);

        // Assess
        expectConsistent(result);
        expect(JSON.stringify(result)).not.toContain(SECRET_MARK);
        expect(JSON.stringify(result)).not.toContain(POLICY);
        expectLaterStepsAccept(facts, result);
      }),
      { numRuns: 2000 },
    );
  });

  it('never finds a function ELIGIBLE once a fact it needs is taken away', () => {
    // Prepare
    const eligible = ELIGIBLE_FACTS;
    const needed = [
      ...['FunctionName', 'FunctionArn', 'PackageType', 'Runtime', 'Handler', 'MemorySize', 'Timeout'].map(
        (key) => ['configuration', key] as const,
      ),
      ['provisionedConcurrencyConfigs'] as const,
      ['throttles24h'] as const,
    ];
    const brokenValue = fc.oneof(
      fc.constant(undefined),
      fc.constant(null),
      fc.constant(NaN),
      fc.constant(-1),
      fc.object(),
      fc.constant(true),
    );

    fc.assert(
      fc.property(
        fc.constantFrom(...needed),
        brokenValue,
        fc.constantFrom(LITERAL_CONFIG, HANDLER_CONFIG),
        (path, value, config) => {
          // Prepare
          fc.pre(!(path[path.length - 1] === 'Handler' && config.defender.method === 'exec-wrapper'));
          const facts = structuredClone(eligible) as Record<string, unknown>;
          const target = (path.length === 2 ? facts.configuration : facts) as Record<string, unknown>;
          target[path[path.length - 1] as string] = value;

          // Act
          const result = assess(facts, { config });

          // Assess
          expect(assess(eligible, { config }).verdict).toBe('ELIGIBLE');
          expect(result.verdict).toBe('SKIP');
          expect(result.reasons).toContain('FACTS_MISSING');
        },
      ),
    );
  });
});
