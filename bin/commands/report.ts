/**
 * `zero-impact report [--run RUN_ID | --latest] [--format table|csv|json|html] [--out FILE] [--fail-on OUTCOME,...]
 *  [--local DIR | --stack NAME | --audit-table T [--state-machine ARN]] [--region R] [--runs N] [--quiet]`:
 * the estate as of a run (bin/reports/report-model.ts), from a deployed stack's audit table or a local run's folder.
 * Without --run, the latest run. Exit 1 when an outcome of --fail-on occurs in the run (a CI gate).
 */
import { DEFAULT_STACK_NAME as STACK_NAME, type AuditSource, type SourceOptions } from '../reports/source';
import { openReviewSource } from '../reports/kept-source';
import { buildReport, failOnMatches, type ReportModel } from '../reports/report-model';
import { reportCsv, reportJson, reportTable } from '../reports/report-render';
import { reportHtml } from '../reports/render-html';
import {
  applyRegion,
  emit,
  EXIT,
  parseFailOn,
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
import { REPORT_HELP } from './review-help';
import type { AuditItem } from '../../lambdas/shared/domain/types';
import { systemClock } from '../../lambdas/shared/adapters/rate-limiter';

export const REPORT_FORMATS = ['table', 'csv', 'json', 'html'] as const;
export type ReportFormat = (typeof REPORT_FORMATS)[number];

export interface ReportOptions extends SourceOptions {
  /** A run id; undefined: the latest run. */
  run?: string;
  format: ReportFormat;
  out?: string;
  failOn: string[];
  /** How many runs the coverage trend shows. @default 10 */
  trendRuns: number;
  quiet: boolean;
}

/** The model of one run, with the run before it and the coverage trend. */
export async function loadReport(
  source: AuditSource,
  runId: string | undefined,
  trendRuns: number,
  quiet: boolean,
): Promise<ReportModel> {
  const recent = await source.runIds(Math.max(trendRuns, 2) + 1);
  const target = runId ?? recent[0];
  if (target === undefined) throw new UsageError(`report: ${source.label} holds no run yet`);
  const items = await source.runItems(target);
  if (items.length === 0) throw new UsageError(`report: run ${target} is not in ${source.label}`);
  const index = recent.indexOf(target);
  // The runs up to and including this one, newest first (a run not in the recent list: its own trend only).
  const window = index === -1 ? [target] : recent.slice(index, index + trendRuns);
  const previousId = index === -1 ? undefined : recent[index + 1];
  const bar = progressBar('Reading runs', window.length, quiet);
  const history: Array<{ runId: string; items: AuditItem[] }> = [];
  for (const id of [...window].reverse()) {
    history.push({ runId: id, items: id === target ? items : await source.runItems(id) });
    bar.increment();
  }
  bar.stop();
  const previous =
    previousId === undefined
      ? undefined
      : (history.find((h) => h.runId === previousId)?.items ?? (await source.runItems(previousId)));
  return buildReport(target, items, previous, history);
}

export function renderReport(model: ReportModel, format: ReportFormat): string {
  switch (format) {
    case 'csv':
      return reportCsv(model);
    case 'json':
      return reportJson(model);
    case 'html':
      return reportHtml(model, new Date(systemClock.now()).toISOString());
    default:
      return reportTable(model);
  }
}

export async function reportCommand(options: ReportOptions): Promise<number> {
  const source = await openReviewSource(options, STACK_NAME);
  const model = await loadReport(source, options.run, options.trendRuns, options.quiet);
  emit(renderReport(model, options.format), options.out);
  const matched = failOnMatches(model, options.failOn);
  if (matched.length > 0) {
    console.error(
      `zero-impact report: --fail-on matched: ${matched.map((o) => `${o} ${model.outcomes[o]}`).join(', ')}`,
    );
    return EXIT.failOn;
  }
  return EXIT.ok;
}

/** The flags of `report`, as commander parses them. */
export interface ReportFlags extends SourceFlags {
  run?: string;
  latest?: boolean;
  format: string;
  out?: string;
  failOn?: string;
  runs: string;
}

export function command(target: ReviewTarget = { what: 'the audit table' }): Command {
  const cmd: Command = newCommand<ReportFlags>(REPORT_HELP, (flags) => {
    if (flags.run !== undefined && flags.latest === true) {
      throw new UsageError('report: give --run RUN_ID or --latest, not both');
    }
    const trendRuns = Number(flags.runs);
    if (!Number.isInteger(trendRuns) || trendRuns < 1 || trendRuns > 100) {
      throw new UsageError(`report: --runs: expected a whole number from 1 to 100, got "${flags.runs}"`);
    }
    applyRegion('report', flags.region);
    const source = sourceFrom(cmd, flags);
    target.what = sourceWhat(source);
    return reportCommand({
      ...source,
      ...(flags.run !== undefined ? { run: flags.run } : {}),
      ...(flags.out !== undefined ? { out: flags.out } : {}),
      format: parseFormat('report', flags.format, REPORT_FORMATS, 'table'),
      failOn: parseFailOn('report', flags.failOn),
      trendRuns,
      quiet: flags.quiet === true,
    });
  })
    .option('--run <runId>', 'the run to report (default: the latest run)')
    .option('--latest', 'the latest run (the default; refused with --run)')
    .option('--format <format>', `output format: ${REPORT_FORMATS.join(', ')}`, 'table')
    .option('--out <file>', 'write the report to this file (default: standard output)')
    .option('--fail-on <outcomes>', 'exit 1 when one of these outcomes (comma-separated) occurs in the run')
    .option('--runs <n>', 'how many runs the coverage trend shows (1 to 100)', '10');
  return sourceOptions(cmd, {
    stateMachine: "the stack's state machine: its executions list the runs (default: the stack's output)",
  });
}

export async function run(argv: string[]): Promise<number> {
  const target: ReviewTarget = { what: 'the audit table' };
  return runReview('report', command(target), argv, () => target.what);
}
