/**
 * `zero-impact history --function NAME [--format table|json] [--out FILE] [--local DIR | --stack NAME |
 *  --audit-table T] [--region R]`: every decision for one function, newest first, with the before/after of each
 * change (names and sizes, never values), the run, the mode and the reasons (bin/reports/history.ts).
 */
import { DEFAULT_STACK_NAME, type SourceOptions } from '../reports/source';
import { openReviewSource } from '../reports/kept-source';
import { historyOf, historyTable } from '../reports/history';
import {
  applyRegion,
  emit,
  EXIT,
  parseFormat,
  runReview,
  sourceFrom,
  sourceOptions,
  sourceWhat,
  type ReviewTarget,
  type SourceFlags,
} from '../reports/cli-support';
import type { Command } from 'commander';
import { newCommand, UsageError } from './common';
import { HISTORY_HELP } from './review-help';

export const HISTORY_FORMATS = ['table', 'json'] as const;

export interface HistoryOptions extends SourceOptions {
  functionName: string;
  format: (typeof HISTORY_FORMATS)[number];
  out?: string;
}

export async function historyCommand(options: HistoryOptions): Promise<number> {
  const source = await openReviewSource(options, DEFAULT_STACK_NAME);
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

/** The flags of `history`, as commander parses them. */
export interface HistoryFlags extends SourceFlags {
  function?: string;
  format: string;
  out?: string;
}

export function command(target: ReviewTarget = { what: 'the audit table' }): Command {
  const cmd: Command = newCommand<HistoryFlags>(HISTORY_HELP, (flags) => {
    if (flags.function === undefined || flags.function.length === 0) {
      throw new UsageError('history: --function NAME is required');
    }
    applyRegion('history', flags.region);
    const source = sourceFrom(cmd, flags);
    target.what = sourceWhat(source);
    return historyCommand({
      ...source,
      ...(flags.out !== undefined ? { out: flags.out } : {}),
      functionName: flags.function,
      format: parseFormat('history', flags.format, HISTORY_FORMATS, 'table'),
    });
  })
    .option('--function <name>', 'the function (required)')
    .option('--format <format>', `output format: ${HISTORY_FORMATS.join(', ')}`, 'table')
    .option('--out <file>', 'write to this file (default: standard output)');
  return sourceOptions(cmd, { stateMachine: "the stack's state machine (accepted; history does not list runs)" });
}

export async function run(argv: string[]): Promise<number> {
  const target: ReviewTarget = { what: 'the audit table' };
  return runReview('history', command(target), argv, () => target.what);
}
