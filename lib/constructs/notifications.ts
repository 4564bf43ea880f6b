/**
 * Two SNS topics, both encrypted with the stack's key and TLS-only: skips and run summaries for the platform team
 * (subscribers filter on message attributes), and the engine's own alarms for whoever operates it.
 */
import * as kms from 'aws-cdk-lib/aws-kms';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface NotificationsProps {
  readonly key: kms.IKey;
  /** Email addresses subscribed to the skip topic (notifications.emails). */
  readonly emails: string[];
  /** Email addresses subscribed to the alarm topic (notifications.alarmEmails). */
  readonly alarmEmails: string[];
}

export class Notifications extends Construct {
  public readonly skipTopic: sns.Topic;
  public readonly alarmTopic: sns.Topic;

  constructor(scope: Construct, id: string, props: NotificationsProps) {
    super(scope, id);
    this.skipTopic = new sns.Topic(this, 'SkipTopic', {
      displayName: 'Zero-Impact Protect skips and run summaries',
      masterKey: props.key,
      enforceSSL: true,
    });
    this.alarmTopic = new sns.Topic(this, 'AlarmTopic', {
      displayName: 'Zero-Impact Protect alarms',
      masterKey: props.key,
      enforceSSL: true,
    });
    for (const email of props.emails) this.skipTopic.addSubscription(new subscriptions.EmailSubscription(email));
    for (const email of props.alarmEmails) this.alarmTopic.addSubscription(new subscriptions.EmailSubscription(email));
  }
}
