/**
 * Issue 10: with defender.policySource the protect role may read that one credentials secret (and nothing else new),
 * no SSM parameter any more, and the DefenderPolicyUnavailable alarm exists.
 */
import { App } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import { parseConfig } from '../../lib/config';
import { ZeroImpactStack } from '../../lib/zero-impact-stack';
import { statementsOf } from './synth';

const config = parseConfig(
  {
    mode: 'protect',
    defender: {
      layerArn: 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32',
      method: 'handler',
      handler: 'twistlock.handler',
      environment: {},
      policySource: {
        console: 'https://eu-west-1.cloud.twistlock.com/eu-123456',
        credentialsSecret: 'zero-impact/prisma-compute',
      },
    },
  },
  'test',
);

describe('a stack with defender.policySource', () => {
  const app = new App({ context: { 'aws:cdk:bundling-stacks': [] } });
  const stack = new ZeroImpactStack(app, 'PolicySourceStack', {
    config,
    env: { account: '123456789012', region: 'eu-west-1' },
  });
  const template = Template.fromStack(stack);
  const protect = stack.houseFunctions['protect-function'];

  it('lets protect GetSecretValue on secret:NAME-?????? only, and read no SSM parameter', () => {
    // Act
    const statements = statementsOf({ stack, template }, protect?.role as NonNullable<typeof protect>['role']);

    // Assess
    expect(statements).toContainEqual({
      Sid: 'ReadConsoleCredentials',
      Effect: 'Allow',
      Action: 'secretsmanager:GetSecretValue',
      Resource: {
        'Fn::Join': [
          '',
          [
            'arn:',
            { Ref: 'AWS::Partition' },
            ':secretsmanager:eu-west-1:123456789012:secret:zero-impact/prisma-compute-??????',
          ],
        ],
      },
    });
    const actions = JSON.stringify(statements);
    expect(actions).not.toContain('ssm:GetParameter');
    expect(statements.filter((s) => JSON.stringify(s).includes('"secretsmanager:'))).toHaveLength(1);
  });

  it('alarms when at least 3 functions of a run are DEFENDER_POLICY_UNAVAILABLE', () => {
    // Assess
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Skips',
      Threshold: 3,
      Dimensions: Match.arrayWith([{ Name: 'Reason', Value: 'DEFENDER_POLICY_UNAVAILABLE' }]),
    });
  });
});
