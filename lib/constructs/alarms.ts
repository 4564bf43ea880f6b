/**
 * The alarms an operator needs, on by default, all to the alarm topic: the run failed, timed out or was aborted; a
 * function's decision was FAILED; no run succeeded for `observability.noSuccessAlarmHours`; the Defender layer check
 * failed (nothing is protected until it passes); start-run could not settle what earlier runs left (replay,
 * reconciliation), finish-run could not release the lease, or a change had to be reconciled (issue 9).
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { ENGINE_METRICS, METRICS_NAMESPACE, SERVICE_NAME } from './metrics';

export interface EngineAlarmsProps {
  readonly stateMachine: sfn.IStateMachine;
  readonly alarmTopic: sns.ITopic;
  /** Alarm when no run has succeeded for this many hours. */
  readonly noSuccessAlarmHours: number;
  /**
   * With `defender.policySource` (issue 10): alarm when at least this many functions of one run were skipped
   * DEFENDER_POLICY_UNAVAILABLE (the Console or its credentials failed for more than a few). @default - no alarm
   */
  readonly policyUnavailableThreshold?: number;
}

/** "More than a few": a run with this many DEFENDER_POLICY_UNAVAILABLE skips alarms (one or two are retried next run). */
export const POLICY_UNAVAILABLE_ALARM_THRESHOLD = 3;

/** A metric the handlers emit through Powertools (EMF). */
export function engineMetric(
  name: string,
  dimensions: Record<string, string> = {},
  period = Duration.hours(1),
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName: name,
    dimensionsMap: { service: SERVICE_NAME, ...dimensions },
    statistic: cloudwatch.Stats.SUM,
    period,
  });
}

export class EngineAlarms extends Construct {
  public readonly alarms: cloudwatch.Alarm[] = [];
  private readonly action: actions.SnsAction;

  constructor(scope: Construct, id: string, props: EngineAlarmsProps) {
    super(scope, id);
    this.action = new actions.SnsAction(props.alarmTopic);
    const sm = props.stateMachine;
    const fiveMinutes = { period: Duration.minutes(5), statistic: cloudwatch.Stats.SUM };

    this.add('RunFailed', sm.metricFailed(fiveMinutes), 'A run failed: see the execution history and Finish run', {});
    this.add('RunTimedOut', sm.metricTimedOut(fiveMinutes), 'A run timed out before Finish run', {});
    this.add('RunAborted', sm.metricAborted(fiveMinutes), 'A run was aborted (stopped by hand?)', {});
    this.add(
      'FailedDecisions',
      engineMetric(ENGINE_METRICS.decisions.name, { [ENGINE_METRICS.decisions.dimension]: 'FAILED' }),
      'At least one function ended FAILED: query the audit table for outcome FAILED',
      {},
    );
    this.add(
      'LayerCheckFailed',
      engineMetric(ENGINE_METRICS.layerCheckFailed.name),
      'The Defender layer check failed: nothing is protected this run. The alarm message says whether the layer is wrong (DEFENDER_LAYER_INVALID: fix defender.layerArn) or could not be checked (FACTS_MISSING, with the AWS error)',
      {},
    );
    this.add(
      'ProtectionUnhealthy',
      engineMetric(ENGINE_METRICS.protectionUnhealthy.name),
      'A protected function is in a Failed state (PROTECTION_UNHEALTHY): read its ALREADY_PROTECTED record, fix it or roll it back',
      {},
    );
    this.add(
      'RunMaintenanceFailed',
      engineMetric(ENGINE_METRICS.runMaintenanceFailed.name),
      'Start run could not replay unrecorded decisions or reconcile pending changes (see its log); the next run tries again',
      {},
    );
    this.add(
      'LeaseNotReleased',
      engineMetric(ENGINE_METRICS.leaseNotReleased.name),
      'Finish run could not release the run lease; the next run takes it over once this execution has ended',
      {},
    );
    this.add(
      'ReconciledChanges',
      engineMetric(ENGINE_METRICS.reconciledChanges.name),
      'A run died between a change and its record; the next run reconciled it (audit items with reconciled: true)',
      {},
    );
    if (props.policyUnavailableThreshold !== undefined) {
      // finish-run emits Skips by Reason once per run, so the hourly sum is the run's count.
      this.add(
        'DefenderPolicyUnavailable',
        engineMetric(ENGINE_METRICS.skips.name, { [ENGINE_METRICS.skips.dimension]: 'DEFENDER_POLICY_UNAVAILABLE' }),
        `At least ${props.policyUnavailableThreshold} functions in a run could not get their TW_POLICY from the Prisma Cloud Console (DEFENDER_POLICY_UNAVAILABLE): read the records' detail (HTTP status, or the credentials secret's AWS error); check the Console, the egress to it and the secret`,
        { threshold: props.policyUnavailableThreshold },
      );
    }
    this.add(
      'NoSuccessfulRun',
      sm.metricSucceeded({ period: Duration.hours(props.noSuccessAlarmHours), statistic: cloudwatch.Stats.SUM }),
      `No run has succeeded for ${props.noSuccessAlarmHours} h: is the schedule enabled, are runs failing?`,
      {
        comparisonOperator: cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.BREACHING,
      },
    );
  }

  private add(
    id: string,
    metric: cloudwatch.IMetric,
    description: string,
    overrides: Partial<Pick<cloudwatch.AlarmProps, 'comparisonOperator' | 'treatMissingData' | 'threshold'>>,
  ): void {
    const alarm = new cloudwatch.Alarm(this, id, {
      metric,
      alarmDescription: `Zero-Impact Protect: ${description}`,
      threshold: 1,
      evaluationPeriods: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
      ...overrides,
    });
    alarm.addAlarmAction(this.action);
    this.alarms.push(alarm);
  }
}
