/**
 * STUB (helper FIX2, issue 9): the signature start-run calls. Helper FIX1 owns this module and replaces this file
 * with the real replay of `runs/<runId>/unrecorded/<fn>.json` (decision 5 of the issue-9 contract).
 */
import type { Runtime } from './runtime';

/** Replays the decisions record-failure could not write (conditional puts), deleting each object once written. */
export async function replayUnrecorded(_rt: Runtime, _runId: string): Promise<{ replayed: number }> {
  return { replayed: 0 };
}
