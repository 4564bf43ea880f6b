/**
 * The expensive per-function reads, made only for functions that still pass the cheaper gates:
 * - ListProvisionedConcurrencyConfigs (control-plane quota; paginated, 50 per page:
 *   https://docs.aws.amazon.com/lambda/latest/api/API_ListProvisionedConcurrencyConfigs.html);
 * - GetFunction (its own 100 requests/s quota) for reserved concurrency (`Concurrency.ReservedConcurrentExecutions`,
 *   absent when none is reserved), `State` and `LastUpdateStatus`, which ListFunctions does not return
 *   (https://docs.aws.amazon.com/lambda/latest/api/API_GetFunction.html).
 * - GetFunctionCodeSigningConfig, then GetCodeSigningConfig for the config it names (control-plane quota; one read
 *   per config ARN per invocation, cached): the policy `UntrustedArtifactOnDeployment` (`Warn` or `Enforce`)
 *   (https://docs.aws.amazon.com/lambda/latest/api/API_GetFunctionCodeSigningConfig.html,
 *   https://docs.aws.amazon.com/lambda/latest/api/API_GetCodeSigningConfig.html).
 * Only those fields are kept: GetFunction's configuration carries variable values and its Code a download URL.
 * GetFunction is also read for ALREADY_PROTECTED functions (issue 8 item 10): ListFunctions does not return
 * `LastUpdateStatus`, and a protected function whose last update failed must be reported.
 *
 * Each read that fails after the SDK's retries returns `undefined` (the fact is missing). Never throws.
 */
import {
  GetCodeSigningConfigCommand,
  GetFunctionCodeSigningConfigCommand,
  GetFunctionCommand,
  paginateListProvisionedConcurrencyConfigs,
} from '@aws-sdk/client-lambda';
import type { FunctionFacts } from '../domain/types';
import { scrubMessage } from '../recording';
import { lambda } from './clients';
import { ownInput, pacedClient } from './paging';
import type { TokenBucket } from './rate-limiter';

export const PROVISIONED_CONFIGS_PAGE_SIZE = 50;

export interface ReadFailure {
  call: string;
  error: string;
}

/** The function's provisioned concurrency configurations (AWS's list items), or undefined when unreadable. */
export async function provisionedConcurrencyConfigs(
  functionName: string,
  limiter: TokenBucket,
  onError?: (failure: ReadFailure) => void,
): Promise<unknown[] | undefined> {
  const configs: unknown[] = [];
  try {
    const pages = paginateListProvisionedConcurrencyConfigs(
      { client: pacedClient(lambda, limiter), pageSize: PROVISIONED_CONFIGS_PAGE_SIZE, withCommand: ownInput },
      { FunctionName: functionName },
    );
    for await (const page of pages) configs.push(...(page.ProvisionedConcurrencyConfigs ?? []));
  } catch (error) {
    onError?.({ call: 'ListProvisionedConcurrencyConfigs', error: error instanceof Error ? error.name : 'Error' });
    return undefined;
  }
  return configs;
}

export interface FunctionStatus {
  /** null when none is reserved. */
  reservedConcurrency: number | null;
  state?: string;
  lastUpdateStatus?: string;
  /** AWS's reasons (StateReason, LastUpdateStatusReason), scrubbed: quoted input cut out. */
  stateReason?: string;
  lastUpdateStatusReason?: string;
  /** For the back-off (domain/backoff.ts): a deploy changes these. */
  revisionId?: string;
  codeSha256?: string;
  /**
   * The real values of the variables named in `keep` that the function has (our SSM-sourced ones, issue 8 item 9).
   * In memory only: never logged, recorded or returned from a handler.
   */
  ourValues?: Record<string, string>;
}

/** Reserved concurrency and readiness from GetFunction, or undefined when unreadable. */
export async function functionStatus(
  functionName: string,
  limiter: TokenBucket,
  onError?: (failure: ReadFailure) => void,
  keep: readonly string[] = [],
): Promise<FunctionStatus | undefined> {
  try {
    const out = await limiter.run(() => lambda.send(new GetFunctionCommand({ FunctionName: functionName })));
    const status: FunctionStatus = { reservedConcurrency: out.Concurrency?.ReservedConcurrentExecutions ?? null };
    if (out.Configuration?.State !== undefined) status.state = out.Configuration.State;
    if (out.Configuration?.LastUpdateStatus !== undefined) status.lastUpdateStatus = out.Configuration.LastUpdateStatus;
    const c = out.Configuration;
    if (typeof c?.StateReason === 'string') status.stateReason = scrubMessage(c.StateReason);
    if (typeof c?.LastUpdateStatusReason === 'string') {
      status.lastUpdateStatusReason = scrubMessage(c.LastUpdateStatusReason);
    }
    if (typeof c?.RevisionId === 'string') status.revisionId = c.RevisionId;
    if (typeof c?.CodeSha256 === 'string') status.codeSha256 = c.CodeSha256;
    const variables = c?.Environment?.Error === undefined ? c?.Environment?.Variables : undefined;
    if (keep.length > 0 && variables !== undefined) {
      status.ourValues = Object.fromEntries(
        keep.flatMap((name) => (typeof variables[name] === 'string' ? [[name, variables[name]]] : [])),
      );
    }
    return status;
  } catch (error) {
    onError?.({ call: 'GetFunction', error: error instanceof Error ? error.name : 'Error' });
    return undefined;
  }
}

export type CodeSigningPolicy = NonNullable<FunctionFacts['codeSigning']>;

/** Policies by code signing config ARN, for one invocation (many functions share one config). */
export type CodeSigningCache = Map<string, Promise<CodeSigningPolicy | undefined>>;

/**
 * The function's code signing policy: 'none' without a config, else the config's UntrustedArtifactOnDeployment.
 * undefined when a read failed (the fact is unreadable: FACTS_MISSING). Both reads are paced by `limiter`.
 */
export async function codeSigningPolicy(
  functionName: string,
  limiter: TokenBucket,
  cache: CodeSigningCache,
  onError?: (failure: ReadFailure) => void,
): Promise<CodeSigningPolicy | undefined> {
  let configArn: string | undefined;
  try {
    const out = await limiter.run(() =>
      lambda.send(new GetFunctionCodeSigningConfigCommand({ FunctionName: functionName })),
    );
    configArn = out.CodeSigningConfigArn;
  } catch (error) {
    onError?.({ call: 'GetFunctionCodeSigningConfig', error: error instanceof Error ? error.name : 'Error' });
    return undefined;
  }
  if (configArn === undefined || configArn.length === 0) return 'none';
  let policy = cache.get(configArn);
  if (policy === undefined) {
    const arn = configArn;
    policy = limiter
      .run(() => lambda.send(new GetCodeSigningConfigCommand({ CodeSigningConfigArn: arn })))
      .then((out): CodeSigningPolicy | undefined => {
        const value = out.CodeSigningConfig?.CodeSigningPolicies?.UntrustedArtifactOnDeployment;
        // AWS's default policy is Warn; anything else unexpected is unknown.
        if (value === undefined) return 'Warn';
        return value === 'Warn' || value === 'Enforce' ? value : undefined;
      })
      .catch((error: unknown) => {
        onError?.({ call: 'GetCodeSigningConfig', error: error instanceof Error ? error.name : 'Error' });
        cache.delete(arn);
        return undefined;
      });
    cache.set(configArn, policy);
  }
  return policy;
}
