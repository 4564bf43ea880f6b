import { Match } from 'aws-cdk-lib/assertions';
import { logicalId, synth, Synthesized } from './synth';

const DRY_RUN = { mode: 'dry-run' };

function alarms({ template }: Synthesized): Array<Record<string, unknown>> {
  return Object.values(template.findResources('AWS::CloudWatch::Alarm')).map(
    (alarm) => alarm.Properties as Record<string, unknown>,
  );
}

function byMetric(s: Synthesized, metricName: string): Record<string, unknown> {
  const found = alarms(s).filter((alarm) => alarm.MetricName === metricName);
  if (found.length !== 1) throw new Error(`${metricName}: expected one alarm, found ${found.length}`);
  return found[0]!;
}

describe('alarms', () => {
  it.each(['ExecutionsFailed', 'ExecutionsTimedOut', 'ExecutionsAborted'])(
    'alarms on %s of the state machine, to the alarm topic',
    (metricName) => {
      const s = synth(DRY_RUN);

      expect(byMetric(s, metricName)).toEqual({
        AlarmDescription: expect.stringMatching(/^Zero-Impact Protect: /),
        Namespace: 'AWS/States',
        MetricName: metricName,
        Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: logicalId(s.stack, s.stack.stateMachine) } }],
        Statistic: 'Sum',
        Period: 300,
        EvaluationPeriods: 1,
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: logicalId(s.stack, s.stack.alarmTopic) }],
        Tags: [{ Key: 'zero-impact:exclude', Value: 'engine' }],
      });
    },
  );

  it('alarms on any FAILED decision (Decisions, Outcome=FAILED, from finish-run)', () => {
    const s = synth(DRY_RUN);

    expect(byMetric(s, 'Decisions')).toMatchObject({
      Namespace: 'ZeroImpactProtect',
      Dimensions: [
        { Name: 'Outcome', Value: 'FAILED' },
        { Name: 'service', Value: 'zero-impact-protect' },
      ],
      Statistic: 'Sum',
      Period: 3600,
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: logicalId(s.stack, s.stack.alarmTopic) }],
    });
  });

  it('alarms when the Defender layer check fails', () => {
    const s = synth(DRY_RUN);

    expect(byMetric(s, 'LayerCheckFailed')).toMatchObject({
      Namespace: 'ZeroImpactProtect',
      Dimensions: [{ Name: 'service', Value: 'zero-impact-protect' }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      AlarmActions: [{ Ref: logicalId(s.stack, s.stack.alarmTopic) }],
    });
  });

  it('issue 8 item 10: alarms when a protected function is unhealthy (ProtectionUnhealthy)', () => {
    const s = synth(DRY_RUN);

    expect(byMetric(s, 'ProtectionUnhealthy')).toMatchObject({
      Namespace: 'ZeroImpactProtect',
      Dimensions: [{ Name: 'service', Value: 'zero-impact-protect' }],
      Statistic: 'Sum',
      Threshold: 1,
      ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      TreatMissingData: 'notBreaching',
      AlarmActions: [{ Ref: logicalId(s.stack, s.stack.alarmTopic) }],
    });
  });

  it('alarms when no run succeeded for noSuccessAlarmHours, missing data breaching', () => {
    const s = synth({ observability: { noSuccessAlarmHours: 6 } });

    expect(byMetric(s, 'ExecutionsSucceeded')).toMatchObject({
      Namespace: 'AWS/States',
      Statistic: 'Sum',
      Period: 6 * 3600,
      EvaluationPeriods: 1,
      Threshold: 1,
      ComparisonOperator: 'LessThanThreshold',
      TreatMissingData: 'breaching',
      AlarmActions: [{ Ref: logicalId(s.stack, s.stack.alarmTopic) }],
    });
  });

  it('uses 3 hours by default', () => {
    expect(byMetric(synth(DRY_RUN), 'ExecutionsSucceeded').Period).toBe(3 * 3600);
  });

  it.each(['RunMaintenanceFailed', 'LeaseNotReleased', 'ReconciledChanges'])(
    'issue 9: alarms on %s (no extra dimension) to the alarm topic',
    (name) => {
      const s = synth(DRY_RUN);

      expect(byMetric(s, name)).toMatchObject({
        Namespace: 'ZeroImpactProtect',
        Dimensions: [{ Name: 'service', Value: 'zero-impact-protect' }],
        Statistic: 'Sum',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: logicalId(s.stack, s.stack.alarmTopic) }],
      });
    },
  );

  it('has exactly these ten alarms', () => {
    expect(
      alarms(synth(DRY_RUN))
        .map((alarm) => alarm.MetricName)
        .sort(),
    ).toEqual(
      [
        'Decisions',
        'ExecutionsAborted',
        'ExecutionsFailed',
        'ExecutionsSucceeded',
        'ExecutionsTimedOut',
        'LayerCheckFailed',
        'LeaseNotReleased',
        'ProtectionUnhealthy',
        'ReconciledChanges',
        'RunMaintenanceFailed',
      ].sort(),
    );
  });
});

describe('dashboard', () => {
  function body(s: Synthesized): string {
    const dashboards = Object.values(s.template.findResources('AWS::CloudWatch::Dashboard'));
    expect(dashboards).toHaveLength(1);
    return JSON.stringify(dashboards[0]!.Properties.DashboardBody);
  }

  it('shows decisions by outcome, skip reasons, run duration and runs', () => {
    const text = body(synth(DRY_RUN));

    for (const title of [
      'Decisions by outcome (per hour)',
      'Skip reasons (per hour)',
      'Run duration',
      'Runs',
      'Layer check failures (last 24 h)',
    ]) {
      expect(text).toContain(title);
    }
    for (const outcome of ['PROTECTED', 'SKIPPED', 'FAILED', 'DEFERRED']) {
      expect(text).toContain(`ZeroImpactProtect\\",\\"Decisions\\",\\"Outcome\\",\\"${outcome}\\"`);
    }
    expect(text).toMatch(/ZeroImpactProtect\\",\\"Skips\\",\\"Reason\\",\\"MEMORY_LOW\\"/);
    expect(text).toContain('ExecutionTime');
  });

  it('is a CloudWatch dashboard resource', () => {
    synth(DRY_RUN).template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: Match.anyValue() });
  });
});
