/**
 * `zero-impact history --function NAME [--format table|json] [--out FILE] [--local DIR | --stack NAME |
 *  --audit-table T] [--region R]`: every decision for one function, newest first, with the before/after of each
 * change (names and sizes, never values), the run, the mode and the reasons (bin/reports/history.ts).
 */
import { DEFAULT_STACK_NAME, openSource, type SourceOptions } from '../reports/source';
import { historyOf, historyTable } from '../reports/history';
import { applyRegion, emit, EXIT, parseFormat, reviewGuard, SOURCE_FLAGS } from '../reports/cli-support';
import { parseFlags, UsageError } from './common';

export const HISTORY_FORMATS = ['table', 'json'] as const;

export interface HistoryOptions extends SourceOptions {
  functionName: string;
  format: (typeof HISTORY_FORMATS)[number];
  out?: string;
}

export async function historyCommand(options: HistoryOptions): Promise<number> {
  const source = await openSource(options, DEFAULT_STACK_NAME);
  const entries = historyOf(await source.functionHistory(options.functionName));
  if (entries.length === 0) {
    throw new UsageError(`history: no decision about ${options.functionName} in ${source.label}`);
  }
  emit(
    options.format === 'json'
      ? `${JSON.stringify({ functionName: options.functionName, decisions: entries }, null, 2)}\n`
      : historyTable(options.functionName, entries),
    options.out,
  );
  return EXIT.ok;
}

export async function run(argv: string[]): Promise<number> {
  let what = 'the audit table';
  return reviewGuard(
    'history',
    () => what,
    async () => {
      const flags = parseFlags('history', argv, {
        ...SOURCE_FLAGS,
        function: { type: 'string' },
        format: { type: 'string' },
        out: { type: 'string' },
      });
      if (flags.function === undefined || flags.function.length === 0) {
        throw new UsageError('history: --function NAME is required');
      }
      applyRegion('history', flags.region);
      what = flags['audit-table'] ?? `stack ${flags.stack ?? DEFAULT_STACK_NAME}`;
      return historyCommand({
        ...(flags.local !== undefined ? { local: flags.local } : {}),
        ...(flags.stack !== undefined ? { stack: flags.stack } : {}),
        ...(flags['audit-table'] !== undefined ? { auditTable: flags['audit-table'] } : {}),
        ...(flags.out !== undefined ? { out: flags.out } : {}),
        functionName: flags.function,
        format: parseFormat('history', flags.format, HISTORY_FORMATS, 'table'),
      });
    },
  );
}
