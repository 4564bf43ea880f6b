import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as sns from 'aws-cdk-lib/aws-sns';
import { AwsSolutionsChecks } from 'cdk-nag';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import { buildApp, deepMerge, misspeltContextKeys, readCdkJsonConfig, resolveConfig, synthLine } from '../../bin/app';
import { ConfigError } from '../../lib/config';
import { synth } from './synth';

const ROOT = path.join(__dirname, '..', '..');

function problemsOf(override: unknown): string[] {
  try {
    resolveConfig(readCdkJsonConfig(), override);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('configuration', () => {
  it('reads cdk.json context zeroImpact', () => {
    const config = resolveConfig(readCdkJsonConfig(), undefined);

    expect(config.mode).toBe('dry-run');
    expect(config.defender.layerArn).toBe('arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32');
  });

  it('deep-merges a -c JSON string over cdk.json', () => {
    const config = resolveConfig(readCdkJsonConfig(), '{"mode":"protect","rates":{"batchSize":10}}');

    expect(config.mode).toBe('protect');
    expect(config.rates).toEqual({ controlPlanePerSecond: 5, maxConcurrency: 5, batchSize: 10 });
    expect(config.defender.environment.TW_POLICY).toEqual({ ssmParameter: '/zero-impact/tw-policy' });
  });

  it('replaces arrays instead of merging them', () => {
    expect(deepMerge({ a: [1, 2], b: { c: 1, d: 2 } }, { a: [3], b: { d: 4 } })).toEqual({ a: [3], b: { c: 1, d: 4 } });
  });

  it('names the key of an invalid value', () => {
    expect(problemsOf('{"rates":{"batchSize":0}}')).toEqual([expect.stringMatching(/^zeroImpact\.rates\.batchSize: /)]);
  });

  it('names an unknown key', () => {
    expect(problemsOf('{"mdoe":"protect"}')).toEqual([expect.stringMatching(/^zeroImpact: unknown key "mdoe"/)]);
  });

  it('rejects a literal TW_POLICY for a deployed stack', () => {
    expect(problemsOf('{"defender":{"environment":{"TW_POLICY":"secret-policy"}}}')).toEqual([
      expect.stringMatching(
        /^zeroImpact\.defender\.environment\.TW_POLICY: a deployed stack takes TW_POLICY only from/,
      ),
    ]);
  });

  it('requires TW_POLICY for a deployed stack', () => {
    // Prepare
    const base = readCdkJsonConfig() as { defender: { environment: Record<string, unknown> } };
    const { TW_POLICY: _policy, ...environment } = base.defender.environment;
    const withoutPolicy = { ...base, defender: { ...base.defender, environment } };

    // Act
    const act = (): unknown => resolveConfig(withoutPolicy, undefined);

    // Assess
    expect(act).toThrow(/zeroImpact\.defender\.environment\.TW_POLICY: required for a deployed stack/);
  });

  it('rejects a log retention CloudWatch Logs does not accept', () => {
    expect(problemsOf('{"observability":{"logRetentionDays":42}}')).toEqual([
      expect.stringMatching(/^zeroImpact\.observability\.logRetentionDays: CloudWatch Logs accepts only 1, 3, 5, 7/),
    ]);
  });

  it('rejects a configuration too large for the Lambda environment', () => {
    const functions = Array.from({ length: 200 }, (_, i) => `payments-service-function-${i}`);

    expect(problemsOf(JSON.stringify({ exclusions: { functions } }))).toEqual([
      expect.stringMatching(/^zeroImpact: the configuration is \d+ bytes as JSON/),
    ]);
  });

  it('names the context key when -c is not JSON', () => {
    expect(problemsOf('{mode: protect}')).toEqual([expect.stringMatching(/^zeroImpact: not valid JSON/)]);
  });

  it('fails synth with one line naming the key and exit code 1, without a stack trace', () => {
    // Prepare: the CDK CLI passes `-c zeroImpact=...` to the app in CDK_CONTEXT_JSON.
    const env = {
      ...process.env,
      CDK_CONTEXT_JSON: JSON.stringify({ zeroImpact: '{"defender":{"environment":{"TW_POLICY":"secret"}}}' }),
      CDK_OUTDIR: fs.mkdtempSync(path.join(os.tmpdir(), 'zero-impact-app-')),
    };

    // Act
    const result = spawnSync(process.execPath, ['-r', 'ts-node/register/transpile-only', 'bin/app.ts'], {
      cwd: ROOT,
      env,
      encoding: 'utf8',
    });

    // Assess
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    const lines = result.stderr.trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(
      /^zero-impact: invalid configuration in cdk\.json context zeroImpact: zeroImpact\.defender\.environment\.TW_POLICY: /,
    );
    expect(result.stderr).not.toContain('secret');
  });
});

describe('cdk-nag AwsSolutions', () => {
  it.each([
    ['dry-run', { mode: 'dry-run' }],
    ['protect', { mode: 'protect', notifications: { emails: ['a@example.com'], alarmEmails: ['b@example.com'] } }],
  ])('reports no unacknowledged finding (%s)', (_mode, overrides) => {
    const { stack } = synth(overrides);

    const report = new AwsSolutionsChecks().validateScope(stack);

    expect(report.violations.map((v) => `${v.ruleName} ${v.violatingResources.map((r) => r.constructPath)}`)).toEqual(
      [],
    );
  });

  it('runs as a validation plugin of the app, so `cdk synth` fails on a new finding', () => {
    // Prepare: a topic without encryption or TLS policy (AwsSolutions-SNS2, SNS3).
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'zero-impact-nag-'));
    const { app, stack } = buildApp({ context: { 'aws:cdk:bundling-stacks': [] }, outdir });
    new sns.Topic(stack, 'UnencryptedTopic');

    // Act
    const act = (): unknown => app.synth();

    // Assess
    expect(act).toThrow(/AwsSolutions-SNS3/);
  });
});

describe('issue 13 item 10: what synth built, and context keys that would be silently ignored', () => {
  it('names misspelt zeroImpact keys (other case, dotted path), never the right one or unrelated keys', () => {
    expect(
      misspeltContextKeys({
        zeroImpact: '{}',
        zeroimpact: '{}',
        'zeroImpact.mode': 'protect',
        'zero-impact': '{}',
        '@aws-cdk/core:newStyleStackSynthesis': true,
        'aws:cdk:bundling-stacks': [],
      }),
    ).toEqual(['zeroimpact', 'zeroImpact.mode', 'zero-impact']);
  });

  it('warns on the stack (CDK Annotations) for such a key, and says mode and layer in one line', () => {
    // Act
    const { stack, config } = buildApp({
      context: { 'aws:cdk:bundling-stacks': [], 'zeroImpact.mode': 'protect' },
      outdir: fs.mkdtempSync(path.join(os.tmpdir(), 'zero-impact-ctx-')),
    });

    // Assess
    Annotations.fromStack(stack).hasWarning('*', Match.stringLikeRegexp('context key "zeroImpact.mode" is ignored'));
    expect(synthLine(config)).toBe(
      `zero-impact: built ZeroImpactProtect in dry-run mode, Defender layer ${config.defender.layerArn}`,
    );
  });
});
