/**
 * How the Distributed Map splits the inventory, and what that means for each worker's share of the Lambda
 * control-plane budget. Pure; shared by the CDK workflow (ItemBatcher settings) and take-inventory.
 */
import type { Config } from './config';

/** A Step Functions payload is at most 256 KiB; a batch stays below this with room for BatchInput. */
export const MAX_INPUT_BYTES_PER_BATCH = 200 * 1024;

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
