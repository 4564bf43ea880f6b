/**
 * The run's shared control-plane budget, as data (the adapter is lambdas/shared/adapters/control-plane-budget.ts):
 * its item in the state table and the spacing of its schedule. Pure; shared by the adapter and the IAM grant.
 */

/** Milliseconds of every second left unscheduled, for late calls and clock skew (see the adapter's comment). */
export const BUDGET_GUARD_MS = 50;

/** The state table's budget items: a key family of their own, beside `stateKeys` (table-schema.ts). */
export const budgetKeys = {
  /** The shared schedule of Lambda's "remainder of the control plane" quota. */
  controlPlane: () => 'BUDGET#lambda-control-plane',
} as const;

/**
 * Milliseconds between two slots of a shared schedule of `limitPerSecond` calls a second: `limit` slots span
 * `1000 + BUDGET_GUARD_MS`, so calls up to the guard late still leave every one-second window within the limit.
 */
export function slotSpacingMs(limitPerSecond: number): number {
  return Math.ceil((1000 + BUDGET_GUARD_MS) / limitPerSecond);
}
