/**
 * STUB (helper FIX2, issue 9): the signature start-run calls. Helper FIX1 owns this module and replaces this file
 * with the real reconciliation of PENDING items without a decision (decision 6 of the issue-9 contract).
 */
import type { Runtime } from './runtime';

/** Completes the PENDING changes of earlier runs that have no final decision; `now` in ms (the injectable clock). */
export async function reconcilePending(_rt: Runtime, _now: number): Promise<{ reconciled: number }> {
  return { reconciled: 0 };
}
