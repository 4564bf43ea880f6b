/**
 * Replay of the S3 fallback (issue 9, decision 5): the decisions record-failure could not write to the audit table
 * in an earlier run (`runs/<runId>/unrecorded/<function>.json`, adapters/unrecorded-store.ts) are written now, each
 * with the conditional put on its own run's `decision` key, and the object is deleted once the table has the
 * decision. A replay is therefore idempotent: an object replayed twice (a crash between write and delete), or one for
 * a function its run decided after all, writes nothing the second time. Notices are not published here: the result
 * names the replayed runs, and start-run's outbox drain sends what their decisions still owe, once.
 *
 * Bounded: one ListObjectsV2 listing of `runs/` (at most MAX_LIST_PAGES pages; the prefix expires after 7 days, so a
 * few objects per run), at most MAX_REPLAYS objects per call; what is left is replayed by the next run. Called by
 * start-run (after reconcilePending, so that a PENDING's reconciled decision wins over a FAILED that only says "the
 * protect step failed").
 */
import type { AuditItem } from './domain/types';
import { RunRepeats, writeFailed } from './failure-record';
import {
  deleteUnrecorded,
  getUnrecorded,
  listUnrecorded,
  parseUnrecorded,
  RUNS_PREFIX,
} from './adapters/unrecorded-store';
import { logger } from './observability';
import { emitMetric, errorSummary } from './recording';
import type { Runtime } from './runtime';

export const MAX_LIST_PAGES = 5;
export const MAX_REPLAYS = 200;

export interface ReplayResult {
  /** Decisions written to the audit table now. */
  replayed: number;
  /** Objects whose function its run had decided after all (nothing written). */
  alreadyDecided: number;
  /** The runs of the decisions replayed: start-run sends what they owe (lambdas/shared/notices.ts). */
  runIds: string[];
  /** The decisions written now, as written (the byRun index may not show them yet). */
  items?: AuditItem[];
  /** Objects left for the next run (the table or S3 still failing, or over the per-call bound). */
  kept: number;
}

/** Replays every fallback object of earlier runs; never throws (start-run goes on, the objects stay). */
export async function replayUnrecorded(rt: Runtime, runId: string): Promise<ReplayResult> {
  const result: ReplayResult = { replayed: 0, alreadyDecided: 0, runIds: [], kept: 0 };
  let keys: string[];
  try {
    const listed = await listUnrecorded(rt.inventoryBucket, MAX_LIST_PAGES);
    keys = listed.keys.filter((key) => !key.startsWith(`${RUNS_PREFIX}${runId}/`));
    if (listed.truncated) logger.warn('more objects under runs/ than one replay lists; the rest next run');
  } catch (error) {
    logger.error('the S3 fallback cannot be listed; replayed next run', { error: errorSummary(error) });
    return result;
  }
  result.kept = Math.max(0, keys.length - MAX_REPLAYS);
  const repeats = new RunRepeats(rt);
  for (const key of keys.slice(0, MAX_REPLAYS)) {
    if (await replayOne(rt, key, result, repeats)) continue;
    result.kept += 1;
  }
  if (result.replayed > 0) emitMetric('UnrecordedReplayed', result.replayed);
  logger.info('S3 fallback replayed', { ...result });
  return result;
}

/** One object; true when it is done with (and deleted), false when it stays for the next run. */
async function replayOne(rt: Runtime, key: string, result: ReplayResult, repeats: RunRepeats): Promise<boolean> {
  let text: string;
  try {
    text = await getUnrecorded(rt.inventoryBucket, key);
  } catch (error) {
    logger.error('fallback object unreadable; kept', { key, error: errorSummary(error) });
    return false;
  }
  const decision = parseUnrecorded(text);
  if (decision === undefined) {
    logger.error('fallback object is not a decision; left alone', { key });
    return false;
  }
  const log = { key, functionName: decision.functionName, runId: decision.runId };
  // `recorded: true` (written by an earlier version when SNS refused a notice): the item exists, its notice is owed
  // and the outbox drain of its run sends it. Otherwise the decision is written now (conditional put).
  if (decision.recorded !== true) {
    let written;
    try {
      written = await writeFailed(rt, decision, repeats);
    } catch (error) {
      logger.error('fallback decision still cannot be written; kept', { ...log, error: errorSummary(error) });
      return false;
    }
    if (written.result === 'exists') result.alreadyDecided += 1;
    else {
      result.replayed += 1;
      (result.items ??= []).push(written.item);
    }
  }
  // Its notice (if still owed) is sent by start-run's drain of the run (lambdas/shared/notices.ts).
  if (!result.runIds.includes(decision.runId)) result.runIds.push(decision.runId);
  try {
    await deleteUnrecorded(rt.inventoryBucket, key);
  } catch (error) {
    // Replayed, not deleted: the next replay finds the decision written and writes nothing.
    logger.warn('replayed fallback object not deleted', { ...log, error: errorSummary(error) });
  }
  return true;
}
