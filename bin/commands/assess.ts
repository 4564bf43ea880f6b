/**
 * `zero-impact assess --facts FILE [--config FILE] [--human]`: runs the safety funnel on facts documents.
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
import { guarded, loadConfig, parseFlags, readJsonFile, UsageError } from './common';

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

export async function run(argv: string[]): Promise<number> {
  return guarded(async () => {
    const flags = parseFlags('assess', argv, {
      facts: { type: 'string' },
      config: { type: 'string' },
      human: { type: 'boolean', default: false },
    });
    if (flags.facts === undefined) throw new UsageError('assess: --facts FILE is required');
    const documents = factsDocuments(flags.facts);
    const config = loadConfig(flags.config);
    const assessments = documents.map((facts) => assess(facts, { config }));
    if (flags.human === true) console.log(humanTable(assessments));
    else for (const a of assessments) console.log(jsonLine(a));
    return 0;
  });
}
