/**
 * SNS: skips and failures, run summaries (skip topic) and the engine's own alarms (alarm topic).
 *
 * Every message carries MessageAttributes so that subscribers can filter with subscription filter policies
 * (https://docs.aws.amazon.com/sns/latest/dg/sns-subscription-filter-policies.html; policies match String,
 * String.Array and Number attributes). `reasons` is a String.Array whose Value is a JSON array
 * (https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html).
 */
import { PublishCommand, type MessageAttributeValue } from '@aws-sdk/client-sns';
import type { Notice } from '../domain/notice';
import { sns } from './clients';

export function messageAttributes(notice: Notice): Record<string, MessageAttributeValue> {
  const out: Record<string, MessageAttributeValue> = {};
  for (const [name, value] of Object.entries(notice.attributes)) {
    out[name] = { DataType: 'String', StringValue: value };
  }
  for (const [name, values] of Object.entries(notice.arrayAttributes)) {
    out[name] = { DataType: 'String.Array', StringValue: JSON.stringify(values) };
  }
  return out;
}

/** Publishes one notice; throws when SNS refuses it (callers decide what a failed notification means). */
export async function publishNotice(topicArn: string, notice: Notice): Promise<void> {
  await sns.send(
    new PublishCommand({
      TopicArn: topicArn,
      Subject: notice.subject,
      Message: notice.message,
      MessageAttributes: messageAttributes(notice),
    }),
  );
}
