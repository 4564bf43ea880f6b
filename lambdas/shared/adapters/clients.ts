/**
 * The AWS SDK clients, built once per Lambda container (module scope) and shared by every adapter.
 * Endpoints and credentials come from the standard SDK configuration chain (AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>),
 * so tests and the local run redirect them without any switch in this code.
 *
 * Retries: "adaptive" mode adds client-side rate limiting on throttling errors on top of standard exponential
 * backoff with jitter; a bounded number of attempts keeps a run from hanging on a struggling API.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { EC2Client } from '@aws-sdk/client-ec2';
import { KMSClient } from '@aws-sdk/client-kms';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { ResourceGroupsTaggingAPIClient } from '@aws-sdk/client-resource-groups-tagging-api';
import { S3Client } from '@aws-sdk/client-s3';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SNSClient } from '@aws-sdk/client-sns';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

const common = { retryMode: 'adaptive', maxAttempts: 5 } as const;

export const lambda = new LambdaClient(common);
export const tagging = new ResourceGroupsTaggingAPIClient(common);
export const cloudwatch = new CloudWatchClient(common);
export const ec2 = new EC2Client(common);
export const sns = new SNSClient(common);
export const s3 = new S3Client(common);
/** start-run asks whether the lease holder's execution still runs (states:DescribeExecution). */
export const sfn = new SFNClient(common);
/** The stack's HMAC key (adapters/mac-key.ts) and, for refresh restore values, its CMK. */
export const kms = new KMSClient(common);
export const dynamodb = DynamoDBDocumentClient.from(new DynamoDBClient(common), {
  marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
});
