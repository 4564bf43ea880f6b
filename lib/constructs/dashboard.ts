/**
 * The picture an operator looks at: decisions by outcome over time, skip reasons, run duration and run results.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { OUTCOMES, REASON_CODES } from '../../lambdas/shared/domain/types';
import { engineMetric } from './alarms';
import { ENGINE_METRICS } from './metrics';

export interface EngineDashboardProps {
  readonly stateMachine: sfn.IStateMachine;
}

/** Outcomes worth a line: PENDING is a write-ahead state, ROLLED_BACK is written by the command line. */
const DASHBOARD_OUTCOMES = OUTCOMES.filter((o) => o !== 'PENDING' && o !== 'ROLLED_BACK');

export class EngineDashboard extends Construct {
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: EngineDashboardProps) {
    super(scope, id);
    const sm = props.stateMachine;
    const hourly = { period: Duration.hours(1), statistic: cloudwatch.Stats.SUM };

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(7),
    });
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Decisions by outcome (per hour)',
        width: 12,
        stacked: true,
        left: DASHBOARD_OUTCOMES.map((outcome) =>
          engineMetric(ENGINE_METRICS.decisions.name, { [ENGINE_METRICS.decisions.dimension]: outcome }).with({
            label: outcome,
          }),
        ),
      }),
      new cloudwatch.GraphWidget({
        title: 'Skip reasons (per hour)',
        width: 12,
        stacked: true,
        left: REASON_CODES.map((reason) =>
          engineMetric(ENGINE_METRICS.skips.name, { [ENGINE_METRICS.skips.dimension]: reason }).with({
            label: reason,
          }),
        ),
      }),
    );
    this.dashboard.addWidgets(
      new cloudwatch.GraphWidget({
        title: 'Run duration',
        width: 12,
        left: [
          sm.metricTime({ period: Duration.hours(1), statistic: cloudwatch.Stats.AVERAGE, label: 'average (ms)' }),
          sm.metricTime({ period: Duration.hours(1), statistic: cloudwatch.Stats.MAXIMUM, label: 'maximum (ms)' }),
        ],
      }),
      new cloudwatch.GraphWidget({
        title: 'Runs',
        width: 12,
        stacked: true,
        left: [
          sm.metricSucceeded({ ...hourly, label: 'succeeded' }),
          sm.metricFailed({ ...hourly, label: 'failed' }),
          sm.metricTimedOut({ ...hourly, label: 'timed out' }),
          sm.metricAborted({ ...hourly, label: 'aborted' }),
        ],
      }),
      new cloudwatch.SingleValueWidget({
        title: 'Layer check failures (last 24 h)',
        width: 6,
        metrics: [engineMetric(ENGINE_METRICS.layerCheckFailed.name, {}, Duration.days(1))],
      }),
    );
  }
}
