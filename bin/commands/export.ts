/**
 * `zero-impact export --since DATE [--until DATE] --format csv|jsonl [--out FILE] [--local DIR | --stack NAME |
 *  --audit-table T] [--region R] [--quiet]`: the audit items decided in [since, until) as compliance evidence,
 * streamed page by page (bin/reports/export.ts). On a deployed stack this Scans the audit table (every item is read;
 * the filter drops the rest), one page (1 MB) at a time.
 */
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import type { Writable } from 'node:stream';
import { DEFAULT_STACK_NAME, type SourceOptions } from '../reports/source';
import { openReviewSource } from '../reports/kept-source';
import { EXPORT_FORMATS, exportItems, parseInstant, type ExportFormat } from '../reports/export';
import {
  applyRegion,
  EXIT,
  parseFormat,
  progressBar,
  runReview,
  sourceFrom,
  sourceOptions,
  sourceWhat,
  type ReviewTarget,
  type SourceFlags,
} from '../reports/cli-support';
import type { Command } from 'commander';
import { newCommand, UsageError } from './common';
import { EXPORT_HELP } from './review-help';

export interface ExportOptions extends SourceOptions {
  /** ISO 8601, inclusive. */
  since: string;
  /** ISO 8601, exclusive; undefined: up to now. */
  until?: string;
  format: ExportFormat;
  out?: string;
  quiet: boolean;
  /** Called after each page (tests sample memory here). */
  onPage?: (items: number) => void;
}

export async function exportCommand(options: ExportOptions): Promise<number> {
  const source = await openReviewSource(options, DEFAULT_STACK_NAME);
  let sink: Writable = process.stdout;
  if (options.out !== undefined) {
    const file = createWriteStream(options.out);
    await new Promise<void>((resolve, reject) => {
      file.once('open', () => resolve());
      file.once('error', (error: NodeJS.ErrnoException) =>
        reject(new UsageError(`export: --out: cannot write ${options.out} (${error.code ?? 'error'})`)),
      );
    });
    sink = file;
  }
  const bar = progressBar('Exporting', 0, options.quiet || options.out === undefined);
  let seen = 0;
  const count = await exportItems(source.pages(options.since, options.until), options.format, sink, (n) => {
    seen += n;
    bar.setTotal(seen);
    bar.increment(n);
    options.onPage?.(n);
  });
  bar.stop();
  if (sink !== process.stdout) {
    sink.end();
    await finished(sink);
  }
  if (!options.quiet) {
    console.error(
      `zero-impact export: ${count} item(s) decided from ${options.since} to ${options.until ?? 'now'}${options.out !== undefined ? ` written to ${options.out}` : ''}`,
    );
  }
  return EXIT.ok;
}

/** The flags of `export`, as commander parses them. */
export interface ExportFlags extends SourceFlags {
  since?: string;
  until?: string;
  format?: string;
  out?: string;
}

export function command(target: ReviewTarget = { what: 'the audit table' }): Command {
  const cmd: Command = newCommand<ExportFlags>(EXPORT_HELP, (flags) => {
    if (flags.since === undefined) throw new UsageError('export: --since DATE is required (e.g. 2026-01-01)');
    if (flags.format === undefined) throw new UsageError('export: --format csv|jsonl is required');
    const since = parseInstant(flags.since, false);
    if (since === undefined) {
      throw new UsageError(`export: --since: expected a date (YYYY-MM-DD) or an ISO 8601 time, got "${flags.since}"`);
    }
    const until = flags.until === undefined ? undefined : parseInstant(flags.until, true);
    if (flags.until !== undefined && until === undefined) {
      throw new UsageError(`export: --until: expected a date (YYYY-MM-DD) or an ISO 8601 time, got "${flags.until}"`);
    }
    if (until !== undefined && until <= since) throw new UsageError('export: --until must be after --since');
    applyRegion('export', flags.region);
    const source = sourceFrom(cmd, flags);
    target.what = sourceWhat(source);
    return exportCommand({
      ...source,
      ...(flags.out !== undefined ? { out: flags.out } : {}),
      since,
      ...(until !== undefined ? { until } : {}),
      format: parseFormat('export', flags.format, EXPORT_FORMATS, 'csv'),
      quiet: flags.quiet === true,
    });
  })
    .option('--since <date>', 'first day or time, inclusive (YYYY-MM-DD or ISO 8601; required)')
    .option('--until <date>', 'end, exclusive (YYYY-MM-DD or ISO 8601; default: now)')
    .option('--format <format>', `${EXPORT_FORMATS.join(' or ')} (required)`)
    .option('--out <file>', 'write to this file (default: standard output)');
  return sourceOptions(cmd, { stateMachine: "the stack's state machine (accepted; export does not list runs)" });
}

export async function run(argv: string[]): Promise<number> {
  const target: ReviewTarget = { what: 'the audit table' };
  return runReview('export', command(target), argv, () => target.what);
}
