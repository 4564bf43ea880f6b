/**
 * The expensive per-function reads, made only for functions that still pass the cheaper gates:
 * - ListProvisionedConcurrencyConfigs (control-plane quota; paginated, 50 per page:
 *   https://docs.aws.amazon.com/lambda/latest/api/API_ListProvisionedConcurrencyConfigs.html);
 * - GetFunction (its own 100 requests/s quota) for reserved concurrency (`Concurrency.ReservedConcurrentExecutions`,
 *   absent when none is reserved), `State` and `LastUpdateStatus`, which ListFunctions does not return
 *   (https://docs.aws.amazon.com/lambda/latest/api/API_GetFunction.html).
 * Only those fields are kept: GetFunction's configuration carries variable values and its Code a download URL.
 *
 * Each read that fails after the SDK's retries returns `undefined` (the fact is missing). Never throws.
 */
import { GetFunctionCommand, ListProvisionedConcurrencyConfigsCommand } from '@aws-sdk/client-lambda';
import { lambda } from './clients';
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
  let Marker: string | undefined;
  try {
    do {
      const page = await limiter.run(() =>
        lambda.send(
          new ListProvisionedConcurrencyConfigsCommand({
            FunctionName: functionName,
            MaxItems: PROVISIONED_CONFIGS_PAGE_SIZE,
            Marker,
          }),
        ),
      );
      configs.push(...(page.ProvisionedConcurrencyConfigs ?? []));
      Marker = page.NextMarker;
    } while (Marker !== undefined && Marker.length > 0);
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
}

/** Reserved concurrency and readiness from GetFunction, or undefined when unreadable. */
export async function functionStatus(
  functionName: string,
  limiter: TokenBucket,
  onError?: (failure: ReadFailure) => void,
): Promise<FunctionStatus | undefined> {
  try {
    const out = await limiter.run(() => lambda.send(new GetFunctionCommand({ FunctionName: functionName })));
    const status: FunctionStatus = { reservedConcurrency: out.Concurrency?.ReservedConcurrentExecutions ?? null };
    if (out.Configuration?.State !== undefined) status.state = out.Configuration.State;
    if (out.Configuration?.LastUpdateStatus !== undefined) status.lastUpdateStatus = out.Configuration.LastUpdateStatus;
    return status;
  } catch (error) {
    onError?.({ call: 'GetFunction', error: error instanceof Error ? error.name : 'Error' });
    return undefined;
  }
}
