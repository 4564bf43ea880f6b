/**
 * How the Distributed Map splits the inventory, and what that means for each worker's share of the Lambda
 * control-plane budget. Pure; shared by the CDK workflow (ItemBatcher settings) and take-inventory.
 */
import type { Config } from './config';

/** A Step Functions payload is at most 256 KiB; a batch stays below this with room for BatchInput. */
export const MAX_INPUT_BYTES_PER_BATCH = 200 * 1024;

/**
 * The most functions one run may change (`maxProtectionsPerRun`): the parent state machine collects the run's
 * eligible functions into one list (workflow.ts, ResultWriter FLATTEN), and a Step Functions payload is at most
 * 256 KiB. A protect request carries the function's identity, the gathered facts and its owner tag only
 * (assess-batch `decide`): under 1 KiB each even with a 256-character owner, so 200 stay below 200 KiB.
 */
export const MAX_PROTECTIONS_PER_RUN = 200;

/**
 * How many child workflows may run at once in this run: the map's MaxConcurrency, or 1 when the whole inventory
 * fits in one batch (by count and by bytes). Each worker paces itself at `controlPlanePerSecond / workers`, so the
 * run's total stays within `rates.controlPlanePerSecond` either way, and a small estate is not slowed to a fraction
 * of the budget it may use.
 */
export function concurrentWorkers(itemCount: number, inventoryBytes: number, rates: Config['rates']): number {
  const oneBatch = itemCount <= rates.batchSize && inventoryBytes < MAX_INPUT_BYTES_PER_BATCH;
  return oneBatch ? 1 : rates.maxConcurrency;
}

/**
 * The worker count a child workflow paces itself by. Anything but a whole number between 1 and
 * `rates.maxConcurrency` (absent, malformed) falls back to `rates.maxConcurrency`: the slowest, always-safe share.
 */
export function workersOf(workers: unknown, rates: Config['rates']): number {
  return typeof workers === 'number' && Number.isInteger(workers) && workers >= 1 && workers <= rates.maxConcurrency
    ? workers
    : rates.maxConcurrency;
}

/**
 * Lambda control-plane reads assess-batch makes for each candidate function, paced at the worker's share:
 * GetFunctionCodeSigningConfig and ListProvisionedConcurrencyConfigs (GetFunction has its own quota). The bench
 * counts one of each per candidate (300 functions: 103 candidates, 103 of each).
 */
export const ASSESS_CONTROL_PLANE_READS_PER_FUNCTION = 2;

/**
 * The most a batch may spend waiting for its paced control-plane reads. A batch runs in an Express child workflow
 * (at most 5 minutes, https://docs.aws.amazon.com/step-functions/latest/dg/service-quotas.html) and the assess
 * Lambda times out at 4 minutes; the rest is for latency, metrics, VPC reads and the audit writes. With the defaults
 * (50 functions, 1 request/s per worker) the bound is 100 s; the bench's longest batch took 88 s of virtual time.
 */
export const MAX_ASSESS_PACED_SECONDS = 150;

/**
 * The seconds one batch's control-plane reads take at the slowest worker share (`maxConcurrency` workers at once)
 * when every function of the batch is a candidate: the worst case `rates` must keep under MAX_ASSESS_PACED_SECONDS.
 */
export function assessBatchPacedSeconds(rates: Config['rates']): number {
  return (
    (rates.batchSize * ASSESS_CONTROL_PLANE_READS_PER_FUNCTION * rates.maxConcurrency) / rates.controlPlanePerSecond
  );
}
