import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '../../bin/commands/common';
import { parseConfig, type Config, type ConfigInput } from '../../lib/config';
import {
  assess,
  defenderLayerName,
  envVarsSize,
  GATE_MESSAGES,
  ourEnvironmentLiterals,
  sameLayer,
  SSM_VALUE_ESTIMATE_BYTES,
  type FunnelContext,
} from '../../lambdas/shared/domain/funnel';
import type { Assessment, Check, Code, FunctionConfiguration } from '../../lambdas/shared/domain/types';

const LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32';
const OLD_LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:31';
const WRAPPER = '/opt/twistlock/twistlock_wrapper';
const POLICY = 'policy-token-literal';
const DEFENDER_HANDLER = 'twistlock.handler';
const SECRET = 'S3CR3T-customer-value';

function makeConfig(
  overrides: Partial<ConfigInput> = {},
  environment?: ConfigInput['defender']['environment'],
): Config {
  return parseConfig(
    {
      defender: {
        layerArn: LAYER,
        environment: environment ?? { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY },
      },
      ...overrides,
    },
    'test',
  );
}

function handlerConfig(): Config {
  return parseConfig(
    {
      defender: { layerArn: LAYER, environment: { TW_POLICY: POLICY }, method: 'handler', handler: DEFENDER_HANDLER },
    },
    'test',
  );
}

/** The standard microservice: passes every gate. */
function makeFacts(configuration: Partial<FunctionConfiguration> = {}, rest: Record<string, unknown> = {}) {
  return {
    configuration: {
      FunctionName: 'orders-api',
      FunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:orders-api',
      PackageType: 'Zip',
      Runtime: 'python3.11',
      Handler: 'app.handler',
      Architectures: ['x86_64'],
      MemorySize: 512,
      Timeout: 30,
      Environment: { Variables: { TABLE_NAME: SECRET } },
      Layers: [],
      SnapStart: { ApplyOn: 'None' },
      State: 'Active',
      LastUpdateStatus: 'Successful',
      ...configuration,
    },
    tags: { team: 'orders' },
    provisionedConcurrencyConfigs: [],
    throttles24h: 0,
    ...rest,
  };
}

function withoutKey<T extends object>(record: T, key: keyof T): Partial<T> {
  const copy: Partial<T> = { ...record };
  delete copy[key];
  return copy;
}

function check(assessment: Assessment, code: Code): Check {
  const found = assessment.checks.find((c) => c.code === code);
  if (found === undefined) throw new Error(`no check ${code}`);
  return found;
}

const context = (config: Config = makeConfig(), extra: Partial<FunnelContext> = {}): FunnelContext => ({
  config,
  ...extra,
});

function fixture(name: string): unknown {
  return JSON.parse(readFileSync(join(__dirname, '..', 'fixtures', 'facts', `${name}.json`), 'utf8')) as unknown;
}

describe('the four scenarios of the design (cdk.json example config)', () => {
  const config = loadConfig(undefined);

  it('finds the standard microservice ELIGIBLE', () => {
    // Act
    const result = assess(fixture('standard-microservice'), { config });

    // Assess
    expect(result).toMatchObject({ functionName: 'orders-api', verdict: 'ELIGIBLE', reasons: [], warnings: [] });
    expect(result.checks.every((c) => c.status === 'pass')).toBe(true);
  });

  it('skips the massive monolith for its timeout', () => {
    // Act
    const result = assess(fixture('massive-monolith'), { config });

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['TIMEOUT_NEAR_LIMIT'] });
    expect(check(result, 'TIMEOUT_NEAR_LIMIT')).toMatchObject({ status: 'fail', observed: 900, limit: 870 });
    expect(check(result, 'MEMORY_LOW')).toMatchObject({ status: 'pass', observed: 10240 });
  });

  it('skips the legacy container as an image', () => {
    // Act
    const result = assess(fixture('legacy-container'), { config });

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['PACKAGE_IMAGE'] });
    expect(check(result, 'PACKAGE_IMAGE').message).toBe('Requires Dockerfile update');
    expect(check(result, 'RUNTIME_UNSUPPORTED')).toMatchObject({
      status: 'not_evaluated',
      observed: 'not applicable: Image package',
    });
  });

  it('skips the high-frequency trader for its provisioned concurrency', () => {
    // Act
    const result = assess(fixture('high-frequency-trader'), { config });

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['PROVISIONED_CONCURRENCY'] });
    expect(check(result, 'PROVISIONED_CONCURRENCY')).toMatchObject({
      status: 'fail',
      message: 'Provisioned Concurrency Active',
    });
  });
});

describe('the checks', () => {
  it('has one check per gate 0..23 in order, each with a message and a remediation', () => {
    // Act
    const result = assess(makeFacts(), context());

    // Assess
    expect(result.checks.map((c) => c.gate)).toEqual([...Array(24).keys()]);
    expect(result.checks.map((c) => Object.keys(c))).toEqual(
      result.checks.map(() => ['gate', 'code', 'status', 'observed', 'limit', 'message', 'remediation']),
    );
    for (const c of result.checks) {
      expect(c.message).toBe(GATE_MESSAGES[c.code as keyof typeof GATE_MESSAGES].message);
      expect(c.remediation.length).toBeGreaterThan(0);
      expect(c.remediation).not.toContain('\n');
    }
  });

  it('never carries an environment variable value', () => {
    // Prepare
    const facts = makeFacts({
      Environment: { Variables: { TABLE_NAME: SECRET, AWS_LAMBDA_EXEC_WRAPPER: `/opt/${SECRET}`, TW_POLICY: SECRET } },
      Layers: [{ Arn: LAYER }],
    });

    // Act
    const result = assess(facts, context());

    // Assess
    expect(result.reasons).toEqual(['WRAPPER_CONFLICT', 'ENV_CONFLICT', 'PARTIAL_PROTECTION']);
    expect(JSON.stringify(result)).not.toContain(SECRET);
    expect(JSON.stringify(result)).not.toContain(POLICY);
  });
});

describe('gate 0: exclusion', () => {
  it.each([
    ['an exact name', ['orders-api'], 'matches exclusions.functions "orders-api"'],
    ['a glob', ['orders-*'], 'matches exclusions.functions "orders-*"'],
    ['an ARN glob', ['arn:aws:lambda:*:123456789012:function:orders-?pi'], 'matches exclusions.functions'],
  ])('excludes a function matching %s', (_label, functions, observed) => {
    // Act
    const result = assess(makeFacts(), context(makeConfig({ exclusions: { functions } })));

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['EXCLUDED'] });
    expect(check(result, 'EXCLUDED').observed).toContain(observed);
  });

  it('does not treat glob characters of a name literally as regular expressions', () => {
    // Act
    const result = assess(makeFacts(), context(makeConfig({ exclusions: { functions: ['orders.api', 'orders-a+'] } })));

    // Assess
    expect(check(result, 'EXCLUDED').status).toBe('pass');
  });

  it.each([
    ['true', 'fail'],
    ['', 'fail'],
    ['false', 'pass'],
  ])('treats exclusion tag value "%s" as %s', (value, status) => {
    // Act
    const result = assess(makeFacts({}, { tags: { 'zero-impact:exclude': value } }), context());

    // Assess
    expect(check(result, 'EXCLUDED').status).toBe(status);
  });

  it('excludes a persistently excluded function and says why', () => {
    // Act
    const result = assess(makeFacts(), context(makeConfig(), { persistentExclusions: new Set(['orders-api']) }));

    // Assess
    expect(result.reasons).toEqual(['EXCLUDED']);
    expect(check(result, 'EXCLUDED').observed).toBe(
      'persistently excluded after a rollback (zero-impact include lifts it)',
    );
  });

  it("excludes the engine's own functions", () => {
    // Act
    const result = assess(
      makeFacts({ FunctionName: 'ZeroImpact-AssessBatch' }),
      context(makeConfig(), { engineFunctionPrefix: 'ZeroImpact-' }),
    );

    // Assess
    expect(result.reasons).toEqual(['EXCLUDED']);
    expect(check(result, 'EXCLUDED').observed).toBe(`the engine's own function (prefix "ZeroImpact-")`);
  });

  it('treats absent tags as no tags', () => {
    // Act
    const result = assess(withoutKey(makeFacts(), 'tags'), context());

    // Assess
    expect(result.verdict).toBe('ELIGIBLE');
  });
});

describe('gates 1-3: package, architecture, runtime', () => {
  it('skips an image', () => {
    // Act
    const result = assess(makeFacts({ PackageType: 'Image' }), context());

    // Assess
    expect(result.reasons).toEqual(['PACKAGE_IMAGE']);
  });

  it('skips arm64 and passes when Architectures is absent (x86_64)', () => {
    // Act
    const arm = assess(makeFacts({ Architectures: ['arm64'] }), context());
    const absent = assess(
      { ...makeFacts(), configuration: withoutKey(makeFacts().configuration, 'Architectures') },
      context(),
    );

    // Assess
    expect(arm.reasons).toEqual(['ARCH_ARM64']);
    expect(check(arm, 'ARCH_ARM64')).toMatchObject({ observed: 'arm64', message: 'ARM64 Incompatible' });
    expect(absent.verdict).toBe('ELIGIBLE');
  });

  it.each(['python3.8', 'provided.al2023', 'java21'])('skips runtime %s', (runtime) => {
    // Act
    const result = assess(makeFacts({ Runtime: runtime }), context());

    // Assess
    expect(result.reasons).toEqual(['RUNTIME_UNSUPPORTED']);
    expect(check(result, 'RUNTIME_UNSUPPORTED').message).toBe('Unsupported Runtime');
  });

  it('follows funnel.supportedRuntimes', () => {
    // Act
    const result = assess(makeFacts(), context(makeConfig({ funnel: { supportedRuntimes: ['nodejs22.x'] } })));

    // Assess
    expect(result.reasons).toEqual(['RUNTIME_UNSUPPORTED']);
    expect(check(result, 'RUNTIME_UNSUPPORTED').remediation).toBe('move to a supported runtime (nodejs22.x)');
  });
});

describe('gate 4: memory headroom', () => {
  it.each([
    [128, 'fail'],
    [255, 'fail'],
    [256, 'pass'],
    [257, 'pass'],
  ])('%i MB is a %s', (memory, status) => {
    // Act
    const result = assess(makeFacts({ MemorySize: memory }), context());

    // Assess
    expect(check(result, 'MEMORY_LOW')).toMatchObject({ status, observed: memory, limit: 256 });
  });

  it('names the fix', () => {
    // Act
    const result = assess(makeFacts({ MemorySize: 128 }), context());

    // Assess
    expect(check(result, 'MEMORY_LOW')).toMatchObject({
      message: 'High Risk - OOM',
      remediation: 'raise MemorySize to 256 MB',
    });
  });

  it('follows funnel.minMemoryMb', () => {
    // Act
    const result = assess(makeFacts({ MemorySize: 512 }), context(makeConfig({ funnel: { minMemoryMb: 1024 } })));

    // Assess
    expect(check(result, 'MEMORY_LOW')).toMatchObject({ status: 'fail', remediation: 'raise MemorySize to 1024 MB' });
  });
});

describe('gate 5: timeout buffer', () => {
  it.each([
    [869, 'pass'],
    [870, 'pass'],
    [871, 'fail'],
    [900, 'fail'],
  ])('%i s is a %s', (timeout, status) => {
    // Act
    const result = assess(makeFacts({ Timeout: timeout }), context());

    // Assess
    expect(check(result, 'TIMEOUT_NEAR_LIMIT')).toMatchObject({ status, observed: timeout, limit: 870 });
  });

  it('follows funnel.timeoutBufferSeconds', () => {
    // Act
    const result = assess(makeFacts({ Timeout: 900 }), context(makeConfig({ funnel: { timeoutBufferSeconds: 0 } })));

    // Assess
    expect(check(result, 'TIMEOUT_NEAR_LIMIT')).toMatchObject({ status: 'pass', limit: 900 });
  });
});

describe('gate 6: environment variable quota', () => {
  const ours = { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY };
  /** Padding that makes the variables after protection exactly `bytes` long, written with 3-byte characters. */
  function padding(bytes: number): string {
    const room = bytes - envVarsSize({ PADDING: '', ...ours });
    const euros = Math.floor(room / 3);
    return '€'.repeat(euros) + 'x'.repeat(room - euros * 3);
  }

  it('passes at exactly 4096 bytes, counting UTF-8 bytes rather than characters', () => {
    // Prepare
    const pad = padding(4096);

    // Act
    const result = assess(makeFacts({ Environment: { Variables: { PADDING: pad } } }), context());

    // Assess
    expect(pad.length).toBeLessThan(2000);
    expect(envVarsSize({ PADDING: pad, ...ours })).toBe(4096);
    expect(check(result, 'ENV_QUOTA')).toMatchObject({
      status: 'pass',
      observed: '4096 bytes after adding ours',
      limit: 4096,
    });
  });

  it('fails at 4097 bytes', () => {
    // Act
    const result = assess(makeFacts({ Environment: { Variables: { PADDING: padding(4097) } } }), context());

    // Assess
    expect(result.reasons).toEqual(['ENV_QUOTA']);
    expect(check(result, 'ENV_QUOTA')).toMatchObject({
      observed: '4097 bytes after adding ours',
      message: 'Env Var Quota Full',
    });
  });

  it.each([
    [4094, 'pass', 4096],
    [4095, 'fail', 4097],
  ])('adds a 2-byte character to %i bytes: a %s at %i bytes', (base, status, total) => {
    // Prepare
    const pad = `${padding(base)}é`;

    // Act
    const result = assess(makeFacts({ Environment: { Variables: { PADDING: pad } } }), context());

    // Assess
    expect(check(result, 'ENV_QUOTA')).toMatchObject({ status, observed: `${total} bytes after adding ours` });
  });

  it('estimates an unresolved SSM value at SSM_VALUE_ESTIMATE_BYTES and says so', () => {
    // Prepare
    const config = makeConfig({}, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } });
    const expected = envVarsSize({ A: 'b', AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: 'x'.repeat(1024) });

    // Act
    const result = assess(makeFacts({ Environment: { Variables: { A: 'b' } } }), context(config));

    // Assess
    expect(SSM_VALUE_ESTIMATE_BYTES).toBe(1024);
    expect(check(result, 'ENV_QUOTA').observed).toBe(
      `${expected} bytes after adding ours (TW_POLICY not resolved: counted as 1024 bytes)`,
    );
  });

  it('counts the existing value of an unresolved SSM variable the function already has', () => {
    // Prepare
    const config = makeConfig({}, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } });
    const variables = { TW_POLICY: 'short' };

    // Act
    const result = assess(makeFacts({ Environment: { Variables: variables } }), context(config));

    // Assess
    expect(check(result, 'ENV_QUOTA').observed).toBe(
      `${envVarsSize({ ...variables, AWS_LAMBDA_EXEC_WRAPPER: WRAPPER })} bytes after adding ours`,
    );
  });

  it('uses resolved values when the caller passes them', () => {
    // Prepare
    const config = makeConfig({}, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } });
    const resolvedEnvironment = { TW_POLICY: 'p'.repeat(4050) };

    // Act
    const result = assess(makeFacts({ Environment: { Variables: {} } }), context(config, { resolvedEnvironment }));

    // Assess
    expect(result.reasons).toEqual(['ENV_QUOTA']);
    expect(check(result, 'ENV_QUOTA').observed).toBe(
      `${envVarsSize({ AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, ...resolvedEnvironment })} bytes after adding ours`,
    );
  });

  it('treats an absent Environment as no variables', () => {
    // Act
    const result = assess(
      { ...makeFacts(), configuration: withoutKey(makeFacts().configuration, 'Environment') },
      context(),
    );

    // Assess
    expect(check(result, 'ENV_QUOTA')).toMatchObject({
      status: 'pass',
      observed: `${envVarsSize(ours)} bytes after adding ours`,
    });
  });
});

describe('gate 7: VPC egress', () => {
  const vpc = { VpcConfig: { SubnetIds: ['subnet-1', 'subnet-2'], SecurityGroupIds: ['sg-1'] } };

  it('passes without subnets', () => {
    // Act
    const result = assess(makeFacts({ VpcConfig: { SubnetIds: [], SecurityGroupIds: [] } }), context());

    // Assess
    expect(check(result, 'VPC_NO_NAT')).toMatchObject({ status: 'pass', observed: 'no VPC' });
  });

  it('passes a VPC function with NAT', () => {
    // Act
    const result = assess(makeFacts(vpc, { vpcEgress: 'nat' }), context());

    // Assess
    expect(check(result, 'VPC_NO_NAT')).toMatchObject({ status: 'pass', observed: '2 subnet(s), egress nat' });
  });

  it.each([[{ vpcEgress: 'none' }], [{ vpcEgress: 'unknown' }], [{}]])(
    'warns, and stays ELIGIBLE, for a VPC function with egress %j',
    (egress) => {
      // Act
      const result = assess(makeFacts(vpc, egress), context());

      // Assess
      expect(result).toMatchObject({ verdict: 'ELIGIBLE', reasons: [], warnings: ['VPC_NO_NAT'] });
      expect(check(result, 'VPC_NO_NAT')).toMatchObject({ status: 'warn', message: 'VPC Detected - Verify NAT' });
    },
  );

  it('skips with vpcWithoutNat "skip"', () => {
    // Act
    const result = assess(
      makeFacts(vpc, { vpcEgress: 'none' }),
      context(makeConfig({ funnel: { vpcWithoutNat: 'skip' } })),
    );

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['VPC_NO_NAT'], warnings: [] });
  });
});

describe('gates 8-10: SnapStart, provisioned concurrency, throttles', () => {
  it('skips SnapStart', () => {
    // Act
    const result = assess(makeFacts({ SnapStart: { ApplyOn: 'PublishedVersions' } }), context());

    // Assess
    expect(result.reasons).toEqual(['SNAPSTART']);
    expect(check(result, 'SNAPSTART').message).toBe('SnapStart Enabled');
  });

  it('skips any provisioned concurrency config', () => {
    // Act
    const result = assess(
      makeFacts({}, { provisionedConcurrencyConfigs: [{ RequestedProvisionedConcurrentExecutions: 1 }] }),
      context(),
    );

    // Assess
    expect(check(result, 'PROVISIONED_CONCURRENCY')).toMatchObject({ status: 'fail', observed: 1, limit: 0 });
  });

  it.each([
    [0, 'pass'],
    [1, 'fail'],
  ])('%i throttles is a %s', (throttles, status) => {
    // Act
    const result = assess(makeFacts({}, { throttles24h: throttles }), context());

    // Assess
    expect(check(result, 'RECENTLY_THROTTLED')).toMatchObject({ status, message: 'Unstable - Recently Throttled' });
  });
});

describe('gate 11: layer slots', () => {
  const other = (n: number) => ({ Arn: `arn:aws:lambda:eu-west-1:123456789012:layer:other-${n}:1` });

  it.each([
    [4, 'pass'],
    [5, 'fail'],
  ])('%i other layers is a %s', (count, status) => {
    // Act
    const result = assess(makeFacts({ Layers: [...Array(count).keys()].map(other) }), context());

    // Assess
    expect(check(result, 'LAYER_LIMIT')).toMatchObject({ status, observed: count, limit: 4 });
  });

  it('passes five layers when one of them is the Defender (any version)', () => {
    // Act
    const result = assess(
      makeFacts({
        Layers: [...[0, 1, 2, 3].map(other), { Arn: OLD_LAYER }],
        Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
      }),
      context(),
    );

    // Assess
    expect(check(result, 'LAYER_LIMIT').status).toBe('pass');
  });
});

describe('gate 12: exec wrapper', () => {
  it('skips a function with another wrapper', () => {
    // Act
    const result = assess(
      makeFacts({ Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/otel-instrument' } } }),
      context(),
    );

    // Assess
    expect(result.reasons).toEqual(['WRAPPER_CONFLICT']);
    expect(check(result, 'WRAPPER_CONFLICT').observed).toBe('set to another wrapper');
  });
});

describe('gate 13: readiness', () => {
  it.each([
    [{ State: 'Pending' }, 'fail'],
    [{ State: 'Inactive' }, 'fail'],
    [{ LastUpdateStatus: 'InProgress' }, 'fail'],
    [{ LastUpdateStatus: 'Failed' }, 'fail'],
    [{ State: 'Active', LastUpdateStatus: 'Successful' }, 'pass'],
  ])('%j is a %s', (status, expected) => {
    // Act
    const result = assess(makeFacts(status), context());

    // Assess
    expect(check(result, 'FUNCTION_NOT_READY').status).toBe(expected);
  });

  it('passes when ListFunctions left State and LastUpdateStatus out', () => {
    // Prepare
    const configuration = withoutKey(withoutKey(makeFacts().configuration, 'State'), 'LastUpdateStatus');

    // Act
    const result = assess({ ...makeFacts(), configuration }, context());

    // Assess
    expect(result.verdict).toBe('ELIGIBLE');
    expect(check(result, 'FUNCTION_NOT_READY').observed).toBe('State not reported, LastUpdateStatus not reported');
  });
});

describe('gate 15: concurrency headroom', () => {
  it.each([
    [8, 'pass'],
    [9, 'fail'],
  ])('peak %i of reserved 10 is a %s', (peak, status) => {
    // Act
    const result = assess(makeFacts({}, { reservedConcurrency: 10, peakConcurrency: peak }), context());

    // Assess
    expect(check(result, 'CONCURRENCY_SATURATED')).toMatchObject({ status, observed: peak, limit: 8 });
  });

  it('passes without reserved concurrency, whatever the peak', () => {
    // Act
    const result = assess(makeFacts({}, { reservedConcurrency: null, peakConcurrency: 900 }), context());

    // Assess
    expect(check(result, 'CONCURRENCY_SATURATED')).toMatchObject({
      status: 'pass',
      observed: 'no reserved concurrency',
    });
  });

  it('needs the peak when reserved concurrency is set', () => {
    // Act
    const result = assess(makeFacts({}, { reservedConcurrency: 10 }), context());

    // Assess
    expect(result.reasons).toEqual(['FACTS_MISSING']);
    expect(check(result, 'CONCURRENCY_SATURATED').status).toBe('not_evaluated');
    expect(check(result, 'FACTS_MISSING').observed).toBe('peakConcurrency: missing');
  });
});

describe('gate 16: environment conflict', () => {
  it("skips when one of our variables holds the customer's own value", () => {
    // Act
    const result = assess(makeFacts({ Environment: { Variables: { TW_POLICY: SECRET } } }), context());

    // Assess
    expect(result.reasons).toEqual(['ENV_CONFLICT']);
    expect(check(result, 'ENV_CONFLICT')).toMatchObject({
      status: 'fail',
      observed: 'set to another value: TW_POLICY',
    });
  });

  it('item 9: says "value not resolved" for an unresolved SSM variable that is present, never a silent pass', () => {
    // Prepare
    const config = makeConfig({}, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } });

    // Act
    const result = assess(makeFacts({ Environment: { Variables: { TW_POLICY: SECRET } } }), context(config));

    // Assess
    expect(check(result, 'ENV_CONFLICT')).toMatchObject({ status: 'not_evaluated', observed: 'value not resolved' });
    expect(check(result, 'FACTS_MISSING')).toMatchObject({ status: 'fail', observed: 'TW_POLICY: value not resolved' });
    expect(result.verdict).toBe('SKIP');
    expect(JSON.stringify(result)).not.toContain(SECRET);
  });

  it('item 9: passes an unresolved SSM variable the function does not have', () => {
    // Prepare
    const config = makeConfig({}, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } });

    // Act
    const result = assess(makeFacts(), context(config));

    // Assess
    expect(check(result, 'ENV_CONFLICT')).toMatchObject({ status: 'pass', observed: 'none' });
  });

  it('item 9: decides with the resolved SSM value as protect does (equal value: no conflict)', () => {
    // Prepare
    const config = makeConfig({}, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } });

    // Act
    const result = assess(
      makeFacts({ Environment: { Variables: { TW_POLICY: 'the-real-policy' } } }),
      context(config, { resolvedEnvironment: { TW_POLICY: 'the-real-policy' } }),
    );

    // Assess
    expect(check(result, 'ENV_CONFLICT')).toMatchObject({ status: 'pass' });
    expect(result.verdict).toBe('ELIGIBLE');
  });

  it('compares with the resolved SSM value when it is known', () => {
    // Prepare
    const config = makeConfig({}, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } });

    // Act
    const result = assess(
      makeFacts({ Environment: { Variables: { TW_POLICY: SECRET } } }),
      context(config, { resolvedEnvironment: { TW_POLICY: 'the-real-policy' } }),
    );

    // Assess
    expect(result.reasons).toEqual(['ENV_CONFLICT']);
  });
});

describe('the verdict', () => {
  const protectedVariables = { Variables: { TABLE_NAME: SECRET, AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY } };

  it('is ALREADY_PROTECTED with our layer and all our variables', () => {
    // Act
    const result = assess(makeFacts({ Layers: [{ Arn: LAYER }], Environment: protectedVariables }), context());

    // Assess
    expect(result).toMatchObject({ verdict: 'ALREADY_PROTECTED', reasons: [], warnings: [] });
  });

  it('warns DEFENDER_OUTDATED when another version of our layer is attached', () => {
    // Act
    const result = assess(makeFacts({ Layers: [{ Arn: OLD_LAYER }], Environment: protectedVariables }), context());

    // Assess
    expect(result).toMatchObject({ verdict: 'ALREADY_PROTECTED', warnings: ['DEFENDER_OUTDATED'] });
    expect(check(result, 'DEFENDER_OUTDATED')).toMatchObject({ status: 'warn', observed: OLD_LAYER, limit: LAYER });
  });

  it('does not take a layer of the same name in another account for ours: a Defender installed by hand', () => {
    // Act
    const result = assess(
      makeFacts({ Layers: [{ Arn: LAYER.replace('123456789012', '210987654321') }], Environment: protectedVariables }),
      context(),
    );

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['DEFENDER_PRESENT'] });
  });

  it('is ALREADY_PROTECTED with an unresolved SSM variable present', () => {
    // Prepare
    const config = makeConfig({}, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } });

    // Act
    const result = assess(makeFacts({ Layers: [{ Arn: LAYER }], Environment: protectedVariables }), context(config));

    // Assess
    expect(result.verdict).toBe('ALREADY_PROTECTED');
  });

  it('is SKIP with PARTIAL_PROTECTION for our layer without our wrapper', () => {
    // Act
    const result = assess(makeFacts({ Layers: [{ Arn: LAYER }] }), context());

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['PARTIAL_PROTECTION'] });
    expect(check(result, 'PARTIAL_PROTECTION').observed).toBe('layer attached, AWS_LAMBDA_EXEC_WRAPPER not ours');
  });

  it('is SKIP with PARTIAL_PROTECTION for our wrapper without our layer', () => {
    // Act
    const result = assess(makeFacts({ Environment: protectedVariables }), context());

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['PARTIAL_PROTECTION'] });
  });

  it('is ELIGIBLE when layer and wrapper are ours but another of our variables is missing', () => {
    // Act
    const result = assess(
      makeFacts({ Layers: [{ Arn: LAYER }], Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } } }),
      context(),
    );

    // Assess
    expect(result).toMatchObject({ verdict: 'ELIGIBLE', reasons: [] });
  });

  it('lists several reasons at once, in gate order', () => {
    // Act
    const result = assess(
      makeFacts(
        { Architectures: ['arm64'], MemorySize: 128, Timeout: 900, SnapStart: { ApplyOn: 'PublishedVersions' } },
        { throttles24h: 3, tags: { 'zero-impact:exclude': 'yes' } },
      ),
      context(),
    );

    // Assess
    expect(result).toMatchObject({
      verdict: 'SKIP',
      reasons: ['EXCLUDED', 'ARCH_ARM64', 'MEMORY_LOW', 'TIMEOUT_NEAR_LIMIT', 'SNAPSTART', 'RECENTLY_THROTTLED'],
    });
  });
});

describe('the handler method', () => {
  const handlerFacts = (configuration: Partial<FunctionConfiguration>) => makeFacts(configuration);

  it('finds a plain function ELIGIBLE', () => {
    // Act
    const result = assess(handlerFacts({}), context(handlerConfig()));

    // Assess
    expect(result.verdict).toBe('ELIGIBLE');
    expect(check(result, 'WRAPPER_CONFLICT').observed).toBe('ORIGINAL_HANDLER not set');
  });

  it('skips when someone else uses ORIGINAL_HANDLER', () => {
    // Act
    const result = assess(
      handlerFacts({ Environment: { Variables: { ORIGINAL_HANDLER: SECRET } } }),
      context(handlerConfig()),
    );

    // Assess: ORIGINAL_HANDLER is also a mark of half a Defender (issue 8 item 2)
    expect(result.reasons).toEqual(['WRAPPER_CONFLICT', 'PARTIAL_PROTECTION']);
    expect(check(result, 'WRAPPER_CONFLICT').observed).toBe('ORIGINAL_HANDLER set by someone else');
  });

  it('is ALREADY_PROTECTED with our layer, our handler and ORIGINAL_HANDLER', () => {
    // Act
    const result = assess(
      handlerFacts({
        Handler: DEFENDER_HANDLER,
        Layers: [{ Arn: LAYER }],
        Environment: { Variables: { ORIGINAL_HANDLER: 'app.handler', TW_POLICY: POLICY } },
      }),
      context(handlerConfig()),
    );

    // Assess
    expect(result).toMatchObject({ verdict: 'ALREADY_PROTECTED', reasons: [] });
  });

  it.each([
    [
      'our handler without our layer',
      { Handler: DEFENDER_HANDLER, Environment: { Variables: { ORIGINAL_HANDLER: 'a.b' } } },
    ],
    ['our layer without our handler', { Layers: [{ Arn: LAYER }] }],
    ['our handler and layer without ORIGINAL_HANDLER', { Handler: DEFENDER_HANDLER, Layers: [{ Arn: LAYER }] }],
  ])('is PARTIAL_PROTECTION for %s', (_label, configuration) => {
    // Act
    const result = assess(handlerFacts(configuration), context(handlerConfig()));

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP' });
    expect(result.reasons).toContain('PARTIAL_PROTECTION');
  });

  it('needs the Handler of a Zip function', () => {
    // Act
    const result = assess(
      { ...makeFacts(), configuration: withoutKey(makeFacts().configuration, 'Handler') },
      context(handlerConfig()),
    );

    // Assess
    expect(result.reasons).toEqual(['FACTS_MISSING']);
    expect(check(result, 'FACTS_MISSING').observed).toBe('configuration.Handler: missing');
  });
});

describe('gate 14: malformed or missing facts', () => {
  it.each([
    ['null', null],
    ['an array', []],
    ['a string', 'orders-api'],
    ['an empty object', {}],
    ['a configuration that is not an object', { ...makeFacts(), configuration: 'orders-api' }],
  ])('skips %s with FACTS_MISSING and never throws', (_label, facts) => {
    // Act
    const result = assess(facts, context());

    // Assess
    expect(result).toMatchObject({
      functionName: null,
      functionArn: null,
      verdict: 'SKIP',
      reasons: ['FACTS_MISSING'],
    });
  });

  it.each([
    ['MemorySize missing', { MemorySize: undefined }, 'configuration.MemorySize: missing'],
    ['MemorySize negative', { MemorySize: -512 }, 'configuration.MemorySize: expected a positive number'],
    ['MemorySize NaN', { MemorySize: NaN }, 'configuration.MemorySize: expected a positive number'],
    [
      'MemorySize a string',
      { MemorySize: '512' as unknown as number },
      'configuration.MemorySize: expected a positive number',
    ],
    ['Timeout Infinity', { Timeout: Infinity }, 'configuration.Timeout: expected a positive number'],
    ['PackageType unknown', { PackageType: 'Tarball' }, 'configuration.PackageType: expected "Zip" or "Image"'],
    ['Runtime missing', { Runtime: undefined }, 'configuration.Runtime: missing'],
    [
      'Layers not a list',
      { Layers: 'none' as unknown as [] },
      'configuration.Layers: expected a list of { Arn } objects',
    ],
    [
      'variables unreadable (Environment.Error)',
      { Environment: { Error: { ErrorCode: 'KMSAccessDeniedException' } } as FunctionConfiguration['Environment'] },
      'configuration.Environment: expected readable Variables (an object of strings, no Environment.Error)',
    ],
    [
      'a variable that is not a string',
      { Environment: { Variables: { N: 1 as unknown as string } } },
      'configuration.Environment: expected readable Variables (an object of strings, no Environment.Error)',
    ],
    ['State not a string', { State: 3 as unknown as string }, 'configuration.State: expected a string'],
  ])('skips %s with FACTS_MISSING', (_label, configuration, problem) => {
    // Act
    const result = assess(makeFacts(configuration), context());

    // Assess
    expect(result.verdict).toBe('SKIP');
    expect(result.reasons).toContain('FACTS_MISSING');
    expect(check(result, 'FACTS_MISSING').observed).toBe(problem);
  });

  it.each([
    ['throttles24h null', { throttles24h: null }, 'throttles24h: missing'],
    ['throttles24h absent', { throttles24h: undefined }, 'throttles24h: missing'],
    ['throttles24h negative', { throttles24h: -1 }, 'throttles24h: expected a number >= 0'],
    [
      'provisionedConcurrencyConfigs absent',
      { provisionedConcurrencyConfigs: undefined },
      'provisionedConcurrencyConfigs: missing',
    ],
    [
      'provisionedConcurrencyConfigs an object',
      { provisionedConcurrencyConfigs: {} },
      'provisionedConcurrencyConfigs: expected a list',
    ],
    ['tags not an object', { tags: ['team'] }, 'tags: expected an object of string tag values'],
    [
      'reservedConcurrency fractional',
      { reservedConcurrency: 2.5 },
      'reservedConcurrency: expected a whole number >= 0',
    ],
  ])('skips %s with FACTS_MISSING', (_label, rest, problem) => {
    // Act
    const result = assess(makeFacts({}, rest), context());

    // Assess
    expect(result.reasons).toEqual(['FACTS_MISSING']);
    expect(check(result, 'FACTS_MISSING')).toMatchObject({ status: 'fail', observed: problem });
  });

  it('still evaluates every gate whose facts are present', () => {
    // Act
    const result = assess(makeFacts({ MemorySize: 128 }, { throttles24h: null }), context());

    // Assess
    expect(result.reasons).toEqual(['MEMORY_LOW', 'FACTS_MISSING']);
    expect(check(result, 'RECENTLY_THROTTLED')).toMatchObject({
      status: 'not_evaluated',
      observed: 'unknown: throttles24h: missing',
    });
  });

  it('ignores a malformed vpcEgress for a function without VPC, and needs it with one', () => {
    // Act
    const plain = assess(makeFacts({}, { vpcEgress: 42 }), context());
    const inVpc = assess(makeFacts({ VpcConfig: { SubnetIds: ['subnet-1'] } }, { vpcEgress: 42 }), context());

    // Assess
    expect(plain.verdict).toBe('ELIGIBLE');
    expect(inVpc.reasons).toEqual(['FACTS_MISSING']);
  });
});

describe('facts whose read failed (unreadable)', () => {
  it('skips a VPC function whose route tables could not be read, instead of only warning', () => {
    const facts = {
      ...makeFacts({ VpcConfig: { SubnetIds: ['subnet-1'], SecurityGroupIds: [] } }),
      unreadable: ['vpcEgress'],
    };

    const result = assess(facts, context());

    expect(result.verdict).toBe('SKIP');
    expect(result.reasons).toEqual(['FACTS_MISSING']);
    expect(result.checks.find((c) => c.gate === 14)?.observed).toEqual(expect.stringContaining('vpcEgress'));
  });

  it('skips when reserved concurrency could not be read, instead of taking "none reserved"', () => {
    const result = assess({ ...makeFacts(), unreadable: ['reservedConcurrency'] }, context());

    expect(result.reasons).toEqual(['FACTS_MISSING']);
  });

  it('ignores an unreadable fact no gate needs (egress of a function outside any VPC)', () => {
    const result = assess({ ...makeFacts(), unreadable: ['vpcEgress', 'no-such-fact'] }, context());

    expect(result.verdict).toBe('ELIGIBLE');
  });
});

describe('shared helpers', () => {
  it('names a layer without its version', () => {
    // Act & Assess
    expect(defenderLayerName(LAYER)).toBe('arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender');
    expect(defenderLayerName('arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender')).toBe(
      'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender',
    );
    expect(sameLayer(LAYER, OLD_LAYER)).toBe(true);
    expect(sameLayer(LAYER, 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender-arm:32')).toBe(false);
  });

  it('measures variables as UTF-8 bytes of their compact JSON', () => {
    // Act & Assess
    expect(envVarsSize({})).toBe(2);
    expect(envVarsSize({ A: 'é' })).toBe(10);
    expect(envVarsSize({ A: '"\n' })).toBe(12);
    expect(envVarsSize({ A: '😀' })).toBe(12);
  });

  it('lists our literal variables only', () => {
    // Prepare
    const config = makeConfig({}, { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zi/policy' } });

    // Act & Assess
    expect(ourEnvironmentLiterals(config)).toEqual({ AWS_LAMBDA_EXEC_WRAPPER: WRAPPER });
  });

  it('gives every funnel code its gate number', () => {
    // Act
    const gates = Object.entries(GATE_MESSAGES).map(([code, m]) => [code, m.gate]);

    // Assess
    expect(gates).toEqual(
      [
        'EXCLUDED',
        'PACKAGE_IMAGE',
        'ARCH_ARM64',
        'RUNTIME_UNSUPPORTED',
        'MEMORY_LOW',
        'TIMEOUT_NEAR_LIMIT',
        'ENV_QUOTA',
        'VPC_NO_NAT',
        'SNAPSTART',
        'PROVISIONED_CONCURRENCY',
        'RECENTLY_THROTTLED',
        'LAYER_LIMIT',
        'WRAPPER_CONFLICT',
        'FUNCTION_NOT_READY',
        'FACTS_MISSING',
        'CONCURRENCY_SATURATED',
        'ENV_CONFLICT',
        'PARTIAL_PROTECTION',
        'DEFENDER_OUTDATED',
        'DEFENDER_PRESENT',
        'LAMBDA_EDGE',
        'CODE_SIGNING_ENFORCED',
        'PREVIOUSLY_REJECTED',
        'DEFENDER_CONFIG_OUTDATED',
      ]
        .map((code, gate) => [code, gate])
        .concat([['PROTECTION_UNHEALTHY', 13]]),
    );
  });
});

describe('issue 8 item 2: a Defender installed outside this tool', () => {
  const FOREIGN_LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:prisma-defender-manual:4';

  it('item 2: skips a hand-installed handler-method Defender with DEFENDER_PRESENT', () => {
    // Act: exec-wrapper is configured; the team installed the Defender by hand with the handler method
    const result = assess(
      makeFacts({
        Handler: DEFENDER_HANDLER,
        Layers: [{ Arn: FOREIGN_LAYER }],
        Environment: { Variables: { ORIGINAL_HANDLER: 'app.handler', TW_POLICY: SECRET } },
      }),
      context(),
    );

    // Assess: the foreign Defender's own TW_POLICY is not an ENV_CONFLICT ("rename your variable" would be wrong)
    expect(result.verdict).toBe('SKIP');
    expect(result.reasons).toEqual(['DEFENDER_PRESENT']);
    expect(check(result, 'ENV_CONFLICT').status).toBe('not_evaluated');
    expect(check(result, 'DEFENDER_PRESENT')).toMatchObject({
      gate: 19,
      status: 'fail',
      remediation:
        'already runs a Defender installed outside this tool; leave it, or remove it and let the tool manage it',
    });
    expect(JSON.stringify(result)).not.toContain(SECRET);
  });

  it('item 2: skips our layer (any version) started by the handler method while exec-wrapper is configured', () => {
    // Act
    const result = assess(
      makeFacts({
        Handler: 'twistlock.handler',
        Layers: [{ Arn: OLD_LAYER }],
        Environment: { Variables: { ORIGINAL_HANDLER: 'app.handler' } },
      }),
      context(),
    );

    // Assess
    expect(result).toMatchObject({ verdict: 'SKIP' });
    expect(result.reasons).toContain('DEFENDER_PRESENT');
    expect(result.reasons).not.toContain('PARTIAL_PROTECTION');
  });

  it('item 2: skips a hand-installed exec-wrapper Defender under another layer name while the handler method is configured', () => {
    // Act
    const result = assess(
      makeFacts({
        Layers: [{ Arn: FOREIGN_LAYER }],
        Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper', TW_POLICY: SECRET } },
      }),
      context(handlerConfig()),
    );

    // Assess
    expect(result.reasons).toContain('DEFENDER_PRESENT');
  });

  it.each([
    ['a Defender handler without ORIGINAL_HANDLER', { Handler: DEFENDER_HANDLER }],
    ['ORIGINAL_HANDLER alone', { Environment: { Variables: { ORIGINAL_HANDLER: 'app.handler' } } }],
    [
      'a Defender wrapper without any layer',
      { Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/other_wrapper' } } },
    ],
  ])('item 2: skips half a Defender (%s) with PARTIAL_PROTECTION', (_name, configuration) => {
    // Act
    const result = assess(makeFacts(configuration as Partial<FunctionConfiguration>), context());

    // Assess
    expect(result.verdict).toBe('SKIP');
    expect(result.reasons).toContain('PARTIAL_PROTECTION');
    expect(result.reasons).not.toContain('DEFENDER_PRESENT');
  });

  it('item 2: keeps ELIGIBLE a function without any mark of a Defender', () => {
    expect(assess(makeFacts(), context()).verdict).toBe('ELIGIBLE');
  });
});

describe('issue 8 item 12: two versions of the Defender layer on one function', () => {
  it('item 12: skips [defender:30, a:1, defender:31] with PARTIAL_PROTECTION, never ALREADY_PROTECTED', () => {
    // Prepare
    const v30 = LAYER.replace(/:32$/, ':30');
    const v31 = LAYER.replace(/:32$/, ':31');
    const other = 'arn:aws:lambda:eu-west-1:123456789012:layer:a:1';

    // Act
    const result = assess(
      makeFacts({
        Layers: [{ Arn: v30 }, { Arn: other }, { Arn: v31 }],
        Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY } },
      }),
      context(),
    );

    // Assess
    expect(result.verdict).toBe('SKIP');
    expect(result.reasons).toContain('PARTIAL_PROTECTION');
    expect(check(result, 'PARTIAL_PROTECTION').observed).toContain('Defender layer attached 2 times (:30, :31)');
  });

  it('item 12: skips two versions without our wrapper with PARTIAL_PROTECTION too', () => {
    const result = assess(makeFacts({ Layers: [{ Arn: LAYER }, { Arn: OLD_LAYER }] }), context());
    expect(result.reasons).toContain('PARTIAL_PROTECTION');
  });
});

describe('issue 8 item 14: only the exact tag value "false" opts back in', () => {
  it.each(['FALSE ', 'False', ' false', 'false ', 'FALSE', 'no', '0'])(
    'item 14: excludes a function tagged "%s"',
    (value) => {
      const result = assess(makeFacts({}, { tags: { 'zero-impact:exclude': value } }), context());
      expect(check(result, 'EXCLUDED').status).toBe('fail');
      expect(result.verdict).toBe('SKIP');
    },
  );

  it('item 14: does not exclude a function tagged exactly "false"', () => {
    const result = assess(makeFacts({}, { tags: { 'zero-impact:exclude': 'false' } }), context());
    expect(check(result, 'EXCLUDED').status).toBe('pass');
  });
});

describe('issue 8 item 11: Architectures of an unexpected shape', () => {
  it.each([null, 'x86_64', [], ['x86_64', 7], {}])('item 11: is FACTS_MISSING for Architectures %p', (value) => {
    // Act
    const result = assess(makeFacts({ Architectures: value as unknown as string[] }), context());

    // Assess
    expect(result.verdict).toBe('SKIP');
    expect(result.reasons).toEqual(['FACTS_MISSING']);
    expect(check(result, 'ARCH_ARM64').status).toBe('not_evaluated');
  });

  it('item 11: takes absent Architectures as x86_64 (AWS default)', () => {
    const facts = makeFacts();
    const { Architectures: _a, ...configuration } = facts.configuration;
    expect(assess({ ...facts, configuration }, context()).verdict).toBe('ELIGIBLE');
  });
});

describe('issue 8 item 10: a protected function whose last update failed', () => {
  const protectedFacts = (configuration: Partial<FunctionConfiguration>) =>
    makeFacts({
      Layers: [{ Arn: LAYER }],
      Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY } },
      ...configuration,
    });

  it('item 10: records ALREADY_PROTECTED with warning PROTECTION_UNHEALTHY and AWS reason', () => {
    // Act
    const result = assess(
      protectedFacts({
        LastUpdateStatus: 'Failed',
        LastUpdateStatusReason: "The layer 'arn:secret' could not be extracted",
      }),
      context(),
    );

    // Assess
    expect(result).toMatchObject({ verdict: 'ALREADY_PROTECTED', warnings: ['PROTECTION_UNHEALTHY'] });
    expect(check(result, 'PROTECTION_UNHEALTHY')).toMatchObject({
      gate: 13,
      status: 'warn',
      observed: 'State Active, LastUpdateStatus Failed: The layer […] could not be extracted',
    });
    expect(result.reasons).not.toContain('FUNCTION_NOT_READY');
  });

  it.each(['Failed', 'Inactive'])('item 10: warns PROTECTION_UNHEALTHY for State %s', (state) => {
    const result = assess(protectedFacts({ State: state, StateReason: 'KMS key disabled' }), context());
    expect(result.warnings).toContain('PROTECTION_UNHEALTHY');
    expect(check(result, 'PROTECTION_UNHEALTHY').observed).toContain('KMS key disabled');
  });

  it('item 10: keeps FUNCTION_NOT_READY for an unprotected function whose update failed', () => {
    const result = assess(makeFacts({ LastUpdateStatus: 'Failed' }), context());
    expect(result.reasons).toEqual(['FUNCTION_NOT_READY']);
  });
});

describe('issue 8 item 15: Lambda@Edge', () => {
  const EAST = 'arn:aws:lambda:us-east-1:123456789012:function:orders-api';

  it('item 15: skips a function associated with CloudFront with LAMBDA_EDGE', () => {
    const result = assess(makeFacts({ FunctionArn: EAST }, { lambdaEdge: true }), context());
    expect(result.reasons).toEqual(['LAMBDA_EDGE']);
    expect(check(result, 'LAMBDA_EDGE')).toMatchObject({ gate: 20, status: 'fail' });
  });

  it('item 15: is FACTS_MISSING when the associations could not be read, in us-east-1 only', () => {
    const east = assess(makeFacts({ FunctionArn: EAST }, { unreadable: ['lambdaEdge'] }), context());
    const west = assess(makeFacts({}, { unreadable: ['lambdaEdge'] }), context());
    expect(east.reasons).toEqual(['FACTS_MISSING']);
    expect(west.verdict).toBe('ELIGIBLE');
    expect(check(west, 'LAMBDA_EDGE')).toMatchObject({ status: 'pass', observed: 'not us-east-1' });
  });

  it('item 15: a Defender already attached to a Lambda@Edge function is a skip that says to roll it back', () => {
    const protectedVariables = { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY } };
    const result = assess(
      makeFacts({ FunctionArn: EAST, Layers: [{ Arn: LAYER }], Environment: protectedVariables }, { lambdaEdge: true }),
      context(),
    );

    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['LAMBDA_EDGE'] });
    expect(check(result, 'LAMBDA_EDGE').remediation).toMatch(/zero-impact rollback --function/);
  });

  it('item 16: so is an unsigned Defender attached under a code signing Enforce policy', () => {
    const protectedVariables = { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY } };
    const result = assess(
      makeFacts({ Layers: [{ Arn: LAYER }], Environment: protectedVariables }, { codeSigning: 'Enforce' }),
      context(),
    );

    expect(result).toMatchObject({ verdict: 'SKIP', reasons: ['CODE_SIGNING_ENFORCED'] });
  });

  it('item 15: takes an absent lambdaEdge as false', () => {
    expect(assess(makeFacts({ FunctionArn: EAST }), context()).verdict).toBe('ELIGIBLE');
  });
});

describe('issue 8 item 16: code signing and back-off gates', () => {
  it('item 16: skips code signing Enforce with CODE_SIGNING_ENFORCED', () => {
    const result = assess(makeFacts({}, { codeSigning: 'Enforce' }), context());
    expect(result.reasons).toEqual(['CODE_SIGNING_ENFORCED']);
  });

  it('item 16: passes code signing Warn and none, and is FACTS_MISSING when unreadable', () => {
    expect(assess(makeFacts({}, { codeSigning: 'Warn' }), context()).verdict).toBe('ELIGIBLE');
    expect(assess(makeFacts({}, { codeSigning: 'none' }), context()).verdict).toBe('ELIGIBLE');
    expect(assess(makeFacts({}, { unreadable: ['codeSigning'] }), context()).reasons).toEqual(['FACTS_MISSING']);
  });

  it('item 16: skips PREVIOUSLY_REJECTED naming the reason and the next attempt', () => {
    const result = assess(
      makeFacts(
        {},
        {
          previousRejection: {
            reason: "InvalidParameterValueException: Value 'S3CR3T' is invalid",
            nextAttemptAt: '2030-01-01T02:00:00.000Z',
          },
        },
      ),
      context(),
    );
    expect(result.reasons).toEqual(['PREVIOUSLY_REJECTED']);
    expect(check(result, 'PREVIOUSLY_REJECTED').observed).toBe(
      'InvalidParameterValueException: Value […] is invalid; next attempt after 2030-01-01T02:00:00.000Z',
    );
  });
});

describe('issue 8 contract: engine-written values and the real variables size', () => {
  it('is ALREADY_PROTECTED with DEFENDER_CONFIG_OUTDATED when our variable holds a value the engine wrote', () => {
    const result = assess(
      makeFacts({
        Layers: [{ Arn: LAYER }],
        Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: 'rotated-away' } },
      }),
      context(makeConfig(), { engineWritten: new Set(['TW_POLICY']) }),
    );
    expect(result).toMatchObject({ verdict: 'ALREADY_PROTECTED', reasons: [], warnings: ['DEFENDER_CONFIG_OUTDATED'] });
  });

  it('measures gate 6 with variablesBytes when a redacted document carries it', () => {
    const result = assess(
      makeFacts({ Environment: { Variables: { BIG: '[redacted]' } } }, { variablesBytes: 4050 }),
      context(),
    );
    expect(result.reasons).toEqual(['ENV_QUOTA']);
  });
});

describe('issue 10: a TW_POLICY from the Console (defender.policySource)', () => {
  const consoleConfig = (): Config =>
    parseConfig(
      {
        defender: {
          layerArn: LAYER,
          environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER },
          policySource: { console: 'https://eu-west-1.cloud.twistlock.com/eu-123456', credentialsSecret: 'zi/prisma' },
        },
      },
      'test',
    );

  it("skips a function's own TW_POLICY as ENV_CONFLICT, not FACTS_MISSING every run, when its value is unknown", () => {
    const facts = makeFacts({ Environment: { Variables: { TABLE_NAME: SECRET, TW_POLICY: 'their-own-policy' } } });

    const result = assess(facts, { config: consoleConfig() });

    expect(result.verdict).toBe('SKIP');
    expect(result.reasons).toEqual(['ENV_CONFLICT']);
  });

  it('with refresh on, calls an unknown current value outdated only where protect can check it (protect mode)', () => {
    const withRefresh = (mode: 'dry-run' | 'protect'): Config =>
      parseConfig(
        {
          mode,
          defender: {
            layerArn: LAYER,
            environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER },
            policySource: {
              console: 'https://eu-west-1.cloud.twistlock.com/e',
              credentialsSecret: 'zi/p',
              refresh: true,
            },
          },
        },
        'test',
      );
    const facts = makeFacts({
      Layers: [{ Arn: LAYER }],
      Environment: { Variables: { TABLE_NAME: SECRET, TW_POLICY: 'written-by-us', AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
    });
    const written = new Set(['TW_POLICY']);

    expect(assess(facts, { config: withRefresh('protect'), engineWritten: written }).warnings).toContain(
      'DEFENDER_CONFIG_OUTDATED',
    );
    const dry = assess(facts, { config: withRefresh('dry-run'), engineWritten: written });
    expect(dry.verdict).toBe('ALREADY_PROTECTED');
    expect(dry.warnings).not.toContain('DEFENDER_CONFIG_OUTDATED');
  });

  it('counts a TW_POLICY the engine wrote (recognised by its MAC) as ours although its current value is unknown', () => {
    const facts = makeFacts({
      Layers: [{ Arn: LAYER }],
      Environment: { Variables: { TABLE_NAME: SECRET, TW_POLICY: 'written-by-us', AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
    });

    const result = assess(facts, { config: consoleConfig(), engineWritten: new Set(['TW_POLICY']) });

    expect(result.verdict).toBe('ALREADY_PROTECTED');
  });
});
