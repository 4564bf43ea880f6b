/**
 * The account's functions, one ListFunctions page at a time, each page paced by the control-plane bucket.
 *
 * ListFunctions returns at most 50 functions per call whatever MaxItems says, and without `FunctionVersion: ALL` it
 * returns only each function's unpublished ($LATEST) configuration, which is the one protection changes
 * (https://docs.aws.amazon.com/lambda/latest/api/API_ListFunctions.html). Its configurations omit State and
 * LastUpdateStatus; assess-batch reads those with GetFunction for the functions that still pass the cheaper gates.
 *
 * A failed page (after the SDK's retries) throws: without the whole inventory no run is safe to make.
 */
import { paginateListFunctions } from '@aws-sdk/client-lambda';
import type { FunctionConfiguration } from '../domain/types';
import { lambda } from './clients';
import { ownInput, pacedClient } from './paging';
import type { TokenBucket } from './rate-limiter';

/** ListFunctions' page size (its maximum). */
export const LIST_FUNCTIONS_PAGE_SIZE = 50;

/**
 * Every function's $LATEST configuration, passed through `map` page by page (so that raw configurations, which
 * carry variable values, never pile up in memory longer than one page).
 */
export async function listFunctions<T>(
  limiter: TokenBucket,
  map: (configuration: FunctionConfiguration) => T,
): Promise<T[]> {
  const found: T[] = [];
  const pages = paginateListFunctions(
    { client: pacedClient(lambda, limiter), pageSize: LIST_FUNCTIONS_PAGE_SIZE, withCommand: ownInput },
    {},
  );
  for await (const page of pages) {
    for (const configuration of page.Functions ?? []) found.push(map(configuration as FunctionConfiguration));
  }
  return found;
}
