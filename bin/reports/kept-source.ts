/**
 * `--local DIR` of the reviewing commands (report, history, export, coverage) on a folder that `local-run --keep DIR`
 * kept (issue 13 item 3): DIR/session.json holds the audit table's items and the estate as the runs and any
 * `rollback --local DIR` left them (local/kept-session.ts). A folder `local-run --out DIR` wrote is read by
 * bin/reports/source.ts as before; a folder with both is read as the kept session (the one rollback keeps current).
 *
 * The items are read as the local run's audit.jsonl holds them: in the order of the table's scan after the runs
 * (decidedAt, then sort key), with the same rules as source.ts's local reader (rollback records are not runs). The
 * session file is read whole (it is one JSON document); export still yields it page by page. Nothing here writes.
 */
import type { AuditItem } from '../../lambdas/shared/domain/types';
import { hasKeptSession, KeptSessionError, readKeptSession, type KeptSession } from '../../local/kept-session';
import { UsageError } from '../commands/common';
import { openSource, ROLLBACK_RUN_PREFIX, type AuditSource, type SourceOptions } from './source';

const PAGE_ITEMS = 500;

export { hasKeptSession };

/** The kept session in DIR, or a UsageError in one line (never the file's content). */
export function readKept(dir: string): KeptSession {
  try {
    return readKeptSession(dir);
  } catch (error) {
    if (error instanceof KeptSessionError) throw new UsageError(`--local: ${error.message}`);
    throw error;
  }
}

function runStartOf(item: AuditItem): string {
  return item.sk.split('#')[0] ?? item.decidedAt;
}

/** The audit trail of a kept session. */
export function keptSource(dir: string): AuditSource {
  const items = (readKept(dir).tables.audit as unknown as AuditItem[])
    .slice()
    .sort((a, b) => a.decidedAt.localeCompare(b.decidedAt) || a.sk.localeCompare(b.sk));
  return {
    label: `kept local session ${dir}`,
    runIds(limit) {
      const starts = new Map<string, string>();
      for (const item of items) {
        if (item.kind !== 'decision' || item.runId.startsWith(ROLLBACK_RUN_PREFIX)) continue;
        if (!starts.has(item.runId)) starts.set(item.runId, runStartOf(item));
      }
      return Promise.resolve(
        [...starts.entries()]
          .sort(([, a], [, b]) => b.localeCompare(a))
          .slice(0, limit)
          .map(([id]) => id),
      );
    },
    runItems: (runId) => Promise.resolve(items.filter((item) => item.runId === runId)),
    functionHistory: (name) =>
      Promise.resolve(items.filter((item) => item.functionName === name).sort((a, b) => a.sk.localeCompare(b.sk))),
    async *pages(since, until) {
      let page: AuditItem[] = [];
      for (const item of items) {
        if (item.decidedAt < since || (until !== undefined && item.decidedAt >= until)) continue;
        page.push(item);
        if (page.length >= PAGE_ITEMS) {
          yield page;
          page = [];
        }
      }
      if (page.length > 0) yield page;
    },
  };
}

/** The source the flags name (source.ts openSource), a kept session for `--local DIR` when DIR holds one. */
export async function openReviewSource(options: SourceOptions, defaultStack: string): Promise<AuditSource> {
  if (options.local !== undefined && hasKeptSession(options.local)) {
    if (options.stack !== undefined || options.auditTable !== undefined) {
      throw new UsageError('give either --local DIR or --stack/--audit-table, not both');
    }
    return keptSource(options.local);
  }
  return openSource(options, defaultStack);
}
