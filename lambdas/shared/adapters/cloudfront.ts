/**
 * The Lambda@Edge signal (issue 8 item 15): the functions that a CloudFront distribution associates, read once per
 * run by take-inventory. Lambda@Edge functions can only be created in US East (N. Virginia), us-east-1 ("You can
 * author Node.js or Python functions in the Lambda console in one AWS Region, US East (N. Virginia)":
 * https://docs.aws.amazon.com/AmazonCloudFront/latest/DeveloperGuide/lambda-at-the-edge.html), so the read is made
 * only for a run in us-east-1.
 *
 * Signal and cost: CloudFront ListDistributions (a global API, `cloudfront:ListDistributions`), paginated with the
 * SDK's `paginateListDistributions` (up to 100 distributions per page by default), so a run costs
 * ceil(distributions / 100) calls whatever the number of functions. Every
 * `LambdaFunctionAssociations.Items[].LambdaFunctionARN` of DefaultCacheBehavior and of each CacheBehaviors item
 * counts; the ARN is a version ARN, so the version qualifier is stripped to match ListFunctions' FunctionArn.
 * (The alternative signal, a resource policy allowing edgelambda.amazonaws.com, needs one GetPolicy per function.)
 *
 * A failed read throws: the caller marks every us-east-1 function's `lambdaEdge` as unreadable (FACTS_MISSING).
 */
import { CloudFrontClient, paginateListDistributions, type DistributionSummary } from '@aws-sdk/client-cloudfront';

/** CloudFront is global; its API lives in us-east-1. Built once per container. */
export const cloudfront = new CloudFrontClient({ region: 'us-east-1', retryMode: 'adaptive', maxAttempts: 5 });

/** `arn:aws:lambda:us-east-1:1:function:edge:3` → `arn:aws:lambda:us-east-1:1:function:edge`. */
export function unqualifiedFunctionArn(arn: string): string {
  const match = /^(arn:[^:]+:lambda:[^:]+:[^:]+:function:[^:]+)(?::[^:]+)?$/.exec(arn);
  return match?.[1] ?? arn;
}

function associatedArns(distribution: DistributionSummary): string[] {
  const behaviors = [distribution.DefaultCacheBehavior, ...(distribution.CacheBehaviors?.Items ?? [])];
  return behaviors.flatMap((behavior) =>
    (behavior?.LambdaFunctionAssociations?.Items ?? []).flatMap((association) =>
      typeof association.LambdaFunctionARN === 'string' ? [unqualifiedFunctionArn(association.LambdaFunctionARN)] : [],
    ),
  );
}

/** Unqualified ARNs of every function a distribution associates, and the number of ListDistributions calls. */
export async function edgeFunctionArns(client: CloudFrontClient = cloudfront): Promise<{
  arns: Set<string>;
  calls: number;
}> {
  const arns = new Set<string>();
  let calls = 0;
  for await (const page of paginateListDistributions({ client }, {})) {
    calls += 1;
    for (const distribution of page.DistributionList?.Items ?? []) {
      for (const arn of associatedArns(distribution)) arns.add(arn);
    }
  }
  return { arns, calls };
}
