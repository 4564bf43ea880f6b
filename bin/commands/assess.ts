/**
 * `zero-impact assess --facts FILE [--config FILE] [--format table|json] [--human] [--json]`: runs the safety funnel on facts documents.
 *
 * Prints one JSON line per function, in input order (or a readable table with --human), and exits 0. Bad input
 * (unreadable file, not JSON, an entry that is not an object, a bad config) is one line naming the file and the JSON
 * path of the problem, exit 2. A facts object with missing fields is assessed, and skipped with FACTS_MISSING.
 *
 * Nothing is read from AWS. The facts the hourly run gathers for candidates may be given in the document
 * (`lambdaEdge`, `codeSigning`, `previousRejection`, `variablesBytes`, `unreadable`); absent, they take the funnel's
 * defaults (no Lambda@Edge association, no code signing config, no back-off). `{ ssmParameter }` values are not
 * resolved here: a function that carries such a variable gets "value not resolved" on gate 16 (FACTS_MISSING).
 */
import { assess } from '../../lambdas/shared/domain/funnel';
import { isRecord, type Assessment } from '../../lambdas/shared/domain/types';
import type { Command } from 'commander';
import { formatOf, formatOptions, loadConfig, newCommand, readJsonFile, runCommand, UsageError } from './common';

/** The facts documents in FILE: one object, or an array of them. */
function factsDocuments(path: string): unknown[] {
  const content = readJsonFile(path);
  if (!Array.isArray(content)) {
    if (isRecord(content)) return [content];
    throw new UsageError(`${path}: (root): expected a facts object or an array of them`);
  }
  const bad = content.findIndex((entry) => !isRecord(entry));
  if (bad >= 0) throw new UsageError(`${path}: [${bad}]: expected a facts object`);
  return content;
}

/** One JSON line, fields in the documented order. */
function jsonLine(a: Assessment): string {
  return JSON.stringify({
    functionName: a.functionName,
    functionArn: a.functionArn,
    verdict: a.verdict,
    reasons: a.reasons,
    warnings: a.warnings,
    checks: a.checks.map((c) => ({
      gate: c.gate,
      code: c.code,
      status: c.status,
      observed: c.observed,
      limit: c.limit,
      message: c.message,
      remediation: c.remediation,
    })),
  });
}

const orDash = (codes: readonly string[]): string => (codes.length > 0 ? codes.join(', ') : '-');

/** A table (function, verdict, reasons, warnings), then each failing or warning check with its remediation. */
export function humanTable(assessments: readonly Assessment[]): string {
  const rows = assessments.map((a) => [
    a.functionName ?? '(unknown)',
    a.verdict,
    orDash(a.reasons),
    orDash(a.warnings),
  ]);
  const header = ['FUNCTION', 'VERDICT', 'REASONS', 'WARNINGS'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const format = (row: readonly string[]): string =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  const details = assessments.flatMap((a) => {
    const flagged = a.checks.filter((c) => c.status === 'fail' || c.status === 'warn');
    if (flagged.length === 0) return [];
    return [
      '',
      `${a.functionName ?? '(unknown)'}:`,
      ...flagged.map(
        (c) =>
          `  ${c.status.toUpperCase()} gate ${c.gate} ${c.code}: ${c.message} (observed: ${String(c.observed)}; limit: ${String(c.limit)})\n    -> ${c.remediation}`,
      ),
    ];
  });
  const counts = ['ELIGIBLE', 'SKIP', 'ALREADY_PROTECTED'].map(
    (v) => `${assessments.filter((a) => a.verdict === v).length} ${v}`,
  );
  return [format(header), ...rows.map(format), ...details, '', counts.join(', ')].join('\n');
}

/** The options of `assess` (the flags, parsed). */
export interface AssessOptions {
  facts?: string;
  config?: string;
  format?: string;
  human?: boolean;
  json?: boolean;
}

/** Runs the funnel on the facts and prints the result; 0, or a UsageError for bad input. */
export async function assessCommand(options: AssessOptions): Promise<number> {
  if (options.facts === undefined) throw new UsageError('assess: --facts FILE is required');
  const format = formatOf('assess', options, 'json');
  const documents = factsDocuments(options.facts);
  const config = loadConfig(options.config);
  const assessments = documents.map((facts) => assess(facts, { config }));
  if (format === 'table') console.log(humanTable(assessments));
  else for (const a of assessments) console.log(jsonLine(a));
  return 0;
}

export function command(): Command {
  const cmd = newCommand<AssessOptions>(
    {
      name: 'assess',
      summary: 'run the safety funnel on facts documents (reads nothing from AWS)',
      details:
        'Prints one JSON line per function, in input order (--format json), or a table with the failing checks and their remediation (--format table).\nExit codes: 0 assessed, 2 bad input (one line naming the file and the JSON path).',
      examples: [
        'zero-impact assess --facts test/fixtures/facts/scenarios.json --human',
        'zero-impact assess --facts facts.json --config my-config.json',
      ],
    },
    assessCommand,
  );
  cmd
    .option('--facts <file>', 'a facts document (one object or an array of them); - reads standard input')
    .option(
      '--config <file>',
      'configuration file, merged over the zeroImpact context of cdk.json (see `zero-impact config show`)',
    );
  return formatOptions(cmd, 'json');
}

export async function run(argv: string[]): Promise<number> {
  return runCommand('assess', command(), argv);
}
