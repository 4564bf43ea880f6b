/**
 * `zero-impact audit [--function NAME] [--format table|csv|json|html] [--out FILE] [--fail-on OUTCOME,...]
 *  [--config FILE] [--region R] [--quiet]`: a read-only assessment of the live account from a laptop with the
 * deployed job's facts gathering, funnel and pacing (bin/reports/live-audit.ts), printed as `report` prints a run.
 * It never writes to AWS; it lists the facts it could not read with the caller's permissions (stderr, and in the
 * JSON document). Exit 1 when an outcome of --fail-on occurs.
 */
import { buildReport, failOnMatches } from '../reports/report-model';
import { liveAudit, type Unreadable } from '../reports/live-audit';
import { applyRegion, emit, EXIT, parseFailOn, parseFormat, progressBar, runReview } from '../reports/cli-support';
import { paragraph, safe } from '../reports/text';
import { renderReport, REPORT_FORMATS, type ReportFormat } from './report';
import type { Command } from 'commander';
import { loadConfig, newCommand } from './common';
import { AUDIT_HELP } from './review-help';

export interface AuditOptions {
  config?: string;
  functionName?: string;
  format: ReportFormat;
  out?: string;
  failOn: string[];
  quiet: boolean;
}

export function unreadableLines(unreadable: readonly Unreadable[]): string[] {
  if (unreadable.length === 0) return ['Every fact was readable with these credentials.'];
  const out = ["Facts that could not be read with the caller's permissions (those functions show FACTS_MISSING):"];
  for (const u of unreadable) {
    out.push(...paragraph(`${u.call} (${u.error}): ${u.functions.map(safe).join(', ')}`, 2, 4));
  }
  return out;
}

export async function auditCommand(options: AuditOptions): Promise<number> {
  const config = loadConfig(options.config);
  const bar = progressBar('Assessing', 0, options.quiet);
  let result;
  try {
    result = await liveAudit(config, {
      ...(options.functionName !== undefined ? { only: options.functionName } : {}),
      progress: bar,
    });
  } finally {
    bar.stop();
  }
  const model = {
    ...buildReport(result.runId, result.items, undefined, [{ runId: result.runId, items: result.items }]),
    changes: [],
  };
  if (options.format === 'json') {
    emit(`${JSON.stringify({ ...model, unreadable: result.unreadable }, null, 2)}\n`, options.out);
  } else if (options.format === 'table') {
    emit(`${renderReport(model, 'table')}\n${unreadableLines(result.unreadable).join('\n')}\n`, options.out);
  } else {
    emit(renderReport(model, options.format), options.out);
    if (result.unreadable.length > 0) console.error(unreadableLines(result.unreadable).join('\n'));
  }
  const matched = failOnMatches(model, options.failOn);
  if (matched.length > 0) {
    console.error(
      `zero-impact audit: --fail-on matched: ${matched.map((o) => `${o} ${model.outcomes[o]}`).join(', ')}`,
    );
    return EXIT.failOn;
  }
  return EXIT.ok;
}

/** The flags of `audit`, as commander parses them. */
export interface AuditFlags {
  config?: string;
  function?: string;
  format: string;
  out?: string;
  failOn?: string;
  region?: string;
  quiet?: boolean;
}

export function command(): Command {
  return newCommand<AuditFlags>(AUDIT_HELP, (flags) => {
    applyRegion('audit', flags.region);
    return auditCommand({
      ...(flags.config !== undefined ? { config: flags.config } : {}),
      ...(flags.function !== undefined ? { functionName: flags.function } : {}),
      ...(flags.out !== undefined ? { out: flags.out } : {}),
      format: parseFormat('audit', flags.format, REPORT_FORMATS, 'table'),
      failOn: parseFailOn('audit', flags.failOn),
      quiet: flags.quiet === true,
    });
  })
    .option('--config <file>', 'configuration file, merged over the zeroImpact context of cdk.json')
    .option('--function <name>', 'assess only this function (default: every function)')
    .option('--format <format>', `output format: ${REPORT_FORMATS.join(', ')}`, 'table')
    .option('--out <file>', 'write the report to this file (default: standard output)')
    .option('--fail-on <outcomes>', 'exit 1 when one of these outcomes (comma-separated) occurs')
    .option('--region <region>', 'AWS region (default: the environment variable AWS_REGION)')
    .option('--quiet', 'no progress bar (it shows only when stdout and stderr are terminals)');
}

export async function run(argv: string[]): Promise<number> {
  return runReview('audit', command(), argv, () => 'reading the account');
}
