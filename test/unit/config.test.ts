import {
  ConfigError,
  configHash,
  defenderVariables,
  deployProblems,
  parseConfig,
  type ConfigInput,
} from '../../lib/config';

const minimal: ConfigInput = {
  defender: {
    layerArn: 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32',
    environment: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper', TW_POLICY: 'policy-literal' },
  },
};

function problemsOf(input: unknown): string[] {
  try {
    parseConfig(input, 'test.json');
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('parseConfig', () => {
  it('fills in every default', () => {
    const config = parseConfig(minimal, 'test.json');

    expect(config.mode).toBe('dry-run');
    expect(config.schedule).toBe('rate(1 hour)');
    expect(config.defender.method).toBe('exec-wrapper');
    expect(config.funnel).toEqual({
      minMemoryMb: 256,
      timeoutBufferSeconds: 30,
      envQuotaBytes: 4096,
      supportedRuntimes: [
        'python3.9',
        'python3.10',
        'python3.11',
        'python3.12',
        'python3.13',
        'nodejs18.x',
        'nodejs20.x',
        'nodejs22.x',
      ],
      vpcWithoutNat: 'warn',
      throttleLookbackHours: 24,
      concurrencySaturation: 0.8,
    });
    expect(config.exclusions).toEqual({ functions: [], tagKey: 'zero-impact:exclude' });
    expect(config.maxProtectionsPerRun).toBe(25);
    expect(config.rates).toEqual({ controlPlanePerSecond: 5, maxConcurrency: 5, batchSize: 50 });
    expect(config.audit).toEqual({ retentionDays: 400, repeatRetentionDays: 30, ownerTagKey: 'team' });
    expect(config.notifications).toEqual({ skips: 'changed', emails: [], alarmEmails: [] });
  });

  it('refuses rates whose batch could not read its functions within the 5-minute Express child', () => {
    // 250 functions x 2 reads at 5/5 requests/s: 500 s of paced reads.
    const problems = problemsOf({ ...minimal, rates: { batchSize: 250 } });

    expect(problems).toEqual([
      expect.stringMatching(/^rates\.batchSize: too large .* could take 500 s, over the 150 s .* Express child/),
    ]);
    // 75 functions at the defaults: 150 s, the bound itself, is accepted; so is 250 at 15/3 requests/s (100 s).
    expect(problemsOf({ ...minimal, rates: { batchSize: 75 } })).toEqual([]);
    expect(problemsOf({ ...minimal, rates: { batchSize: 250, controlPlanePerSecond: 15, maxConcurrency: 3 } })).toEqual(
      [],
    );
  });

  it('refuses maxProtectionsPerRun above what one Step Functions payload holds (issue 11)', () => {
    expect(problemsOf({ ...minimal, maxProtectionsPerRun: 201 })).toEqual([
      expect.stringMatching(/^maxProtectionsPerRun: at most 200 \(.*256 KiB\)$/),
    ]);
    expect(problemsOf({ ...minimal, maxProtectionsPerRun: 200 })).toEqual([]);
  });

  it('names the key path and the expectation of a bad value', () => {
    const problems = problemsOf({ ...minimal, funnel: { minMemoryMb: 'lots' } });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^funnel\.minMemoryMb: .*number/);
  });

  it('rejects unknown keys, naming them', () => {
    const problems = problemsOf({ ...minimal, funnel: { minMemory: 128 } });

    expect(problems).toEqual(['funnel: unknown key "minMemory"']);
  });

  it('collects every problem at once', () => {
    const problems = problemsOf({ mode: 'yolo', defender: { layerArn: 'nope', environment: {} } });

    expect(problems.map((p) => p.split(':')[0])).toEqual(['mode', 'defender.layerArn']);
  });

  it('prefixes key paths for cdk.json context', () => {
    expect(() => parseConfig({ ...minimal, mode: 'fast' }, 'cdk.json', 'zeroImpact')).toThrow(/zeroImpact\.mode:/);
  });

  it('requires the wrapper variable with the exec-wrapper method', () => {
    const problems = problemsOf({ defender: { ...minimal.defender, environment: { TW_POLICY: 'x' } } });

    expect(problems).toEqual([expect.stringMatching(/^defender\.environment\.AWS_LAMBDA_EXEC_WRAPPER: required/)]);
  });

  it('requires the wrapper to be a path inside the layer', () => {
    const problems = problemsOf({
      defender: { ...minimal.defender, environment: { AWS_LAMBDA_EXEC_WRAPPER: '/tmp/evil' } },
    });

    expect(problems).toEqual([expect.stringMatching(/starting with \/opt\//)]);
  });

  it('requires defender.handler with the handler method and forbids the wrapper there', () => {
    const problems = problemsOf({ defender: { ...minimal.defender, method: 'handler' } });

    expect(problems).toEqual([
      expect.stringMatching(/^defender\.handler: required/),
      expect.stringMatching(/^defender\.environment\.AWS_LAMBDA_EXEC_WRAPPER: not allowed/),
    ]);
  });

  it('accepts an SSM parameter reference as a value', () => {
    const config = parseConfig(
      {
        defender: {
          ...minimal.defender,
          environment: { ...minimal.defender.environment, TW_POLICY: { ssmParameter: '/zi/p' } },
        },
      },
      'test.json',
    );

    expect(config.defender.environment['TW_POLICY']).toEqual({ ssmParameter: '/zi/p' });
  });
});

describe('deployProblems', () => {
  it('rejects a literal TW_POLICY for a deployed stack', () => {
    const problems = deployProblems(parseConfig(minimal, 'test.json'), 'zeroImpact');

    expect(problems).toEqual([
      expect.stringMatching(/^zeroImpact\.defender\.environment\.TW_POLICY: .*SSM SecureString/),
    ]);
  });

  it('accepts TW_POLICY from SSM', () => {
    const config = parseConfig(
      {
        defender: {
          ...minimal.defender,
          environment: { ...minimal.defender.environment, TW_POLICY: { ssmParameter: '/zi/p' } },
        },
      },
      'test.json',
    );

    expect(deployProblems(config)).toEqual([]);
  });
});

describe('configHash', () => {
  it('is stable across key order and changes with any value', () => {
    const a = parseConfig(minimal, 'a');
    const b = parseConfig(
      { defender: { environment: minimal.defender.environment, layerArn: minimal.defender.layerArn } },
      'b',
    );
    const c = parseConfig({ ...minimal, maxProtectionsPerRun: 3 }, 'c');

    expect(configHash(a)).toBe(configHash(b));
    expect(configHash(a)).not.toBe(configHash(c));
  });
});

describe('defender.policySource (issue 10)', () => {
  const handlerMethod = {
    layerArn: 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32',
    method: 'handler' as const,
    handler: 'twistlock.handler',
    environment: {},
  };
  const source = {
    console: 'https://eu-west-1.cloud.twistlock.com/eu-123456',
    credentialsSecret: 'zero-impact/prisma',
  };

  it('fills in cacheHours 24, refresh false, ratePerSecond 5, and adds TW_POLICY to our variables', () => {
    const config = parseConfig({ defender: { ...handlerMethod, policySource: source } }, 'test.json');

    expect(config.defender.policySource).toEqual({ ...source, cacheHours: 24, refresh: false, ratePerSecond: 5 });
    expect(defenderVariables(config)).toEqual({ TW_POLICY: { policySource: true } });
    expect(deployProblems(config)).toEqual([]);
  });

  it('is mutually exclusive with a static TW_POLICY: one problem naming both keys', () => {
    const problems = problemsOf({
      defender: { ...handlerMethod, environment: { TW_POLICY: 'static' }, policySource: source },
    });

    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^defender\.policySource, defender\.environment\.TW_POLICY: mutually exclusive/);
  });

  it.each([
    [{ ...source, console: 'http://eu-west-1.cloud.twistlock.com/eu-1' }, 'defender.policySource.console'],
    [{ ...source, console: 'not a url' }, 'defender.policySource.console'],
    [{ ...source, credentialsSecret: 'has space' }, 'defender.policySource.credentialsSecret'],
    [{ ...source, credentialsSecret: 'zero-impact/prisma-AbC123' }, 'defender.policySource.credentialsSecret'],
    [{ ...source, cacheHours: 0 }, 'defender.policySource.cacheHours'],
    [{ ...source, ratePerSecond: 0 }, 'defender.policySource.ratePerSecond'],
    [{ ...source, refresh: 'yes' }, 'defender.policySource.refresh'],
    [{ ...source, consoleUrl: 'x' }, 'defender.policySource'],
  ])('rejects %j naming %s', (policySource, key) => {
    const problems = problemsOf({ defender: { ...handlerMethod, policySource } });

    expect(problems).toHaveLength(1);
    expect(problems[0]?.startsWith(`${key}:`)).toBe(true);
  });

  it('accepts plain http only to the loopback stand-in, and a deployed stack refuses it', () => {
    const config = parseConfig(
      { defender: { ...handlerMethod, policySource: { ...source, console: 'http://127.0.0.1:8123/local' } } },
      'test.json',
    );

    expect(deployProblems(config, 'zeroImpact')).toEqual([
      'zeroImpact.defender.policySource.console: a deployed stack reaches the Console over https only',
    ]);
  });
});
