/**
 * The report in each format: table (aligned text, 100 columns), CSV (RFC 4180, one row per function), JSON (the
 * model, one document) and HTML (render-html.ts). PURE.
 */
import type { FunctionRow, ReportModel } from './report-model';
import { csv, paragraph, percent, safe, table } from './text';

export function fixLine(fix: FunctionRow['fixes'][number]): string {
  const found = fix.observed !== null && fix.observed.length > 0 ? ` (found: ${fix.observed})` : '';
  return `${fix.code}: ${fix.remediation.length > 0 ? fix.remediation : fix.message}${found}`;
}

/** The ticket text of one team: its functions and what to change. */
export function teamTicket(team: ReportModel['teams'][number]): string[] {
  const out: string[] = [];
  for (const row of team.functions) {
    out.push(`  - ${safe(row.functionName)} (${row.outcome})`);
    for (const fix of row.fixes) out.push(...paragraph(fixLine(fix), 6, 2));
    if (row.fixes.length === 0 && row.detail !== undefined) out.push(...paragraph(row.detail, 6, 2));
  }
  return out;
}

export function reportTable(model: ReportModel): string {
  const out: string[] = [];
  out.push(`Run ${safe(model.runId)} (${model.mode}), started ${model.startedAt}`);
  if (model.account !== null) out.push(`Account ${model.account}, region ${model.region ?? 'unknown'}`);
  for (const event of model.runEvents) out.push(...paragraph(`${event.outcome}: ${event.detail}`));
  out.push('');
  out.push(`Outcomes (${model.total} functions)`);
  out.push(
    ...table(
      ['Outcome', 'Functions', 'Share'],
      Object.entries(model.outcomes).map(([o, n]) => [o, String(n), percent(model.total === 0 ? 0 : n / model.total)]),
      2,
    ),
  );
  const latest = model.coverage[model.coverage.length - 1];
  if (latest !== undefined) {
    out.push('');
    out.push(`Coverage ($LATEST) over the last ${model.coverage.length} run(s)`);
    out.push(
      ...table(
        ['Run', 'Started', 'Protected', 'Would protect', 'Share'],
        model.coverage.map((c) => [
          c.runId,
          c.startedAt,
          `${c.protected}/${c.total}`,
          String(c.wouldProtect),
          percent(c.share),
        ]),
        2,
      ),
    );
  }
  if (model.skips.length > 0) {
    out.push('');
    out.push('Skipped, by reason');
    out.push(
      ...table(
        ['Reason', 'Count', 'What to change'],
        model.skips.map((s) => [s.reason, String(s.count), s.remediation.length > 0 ? s.remediation : s.message]),
        2,
      ),
    );
  }
  const teams = model.teams.filter((t) => t.functions.length > 0);
  if (teams.length > 0) {
    out.push('');
    out.push('By owner team (ready to paste into a ticket)');
    for (const team of teams) {
      out.push('');
      out.push(`${safe(team.team)}: ${team.functions.length} of ${team.total} function(s) need a change`);
      out.push(...teamTicket(team));
    }
  }
  if (model.warnings.length > 0) {
    out.push('');
    out.push('Warnings');
    out.push(
      ...table(
        ['Warning', 'Functions'],
        model.warnings.map((w) => [w.warning, w.functions.join(', ')]),
        2,
      ),
    );
  }
  out.push('');
  if (model.changes.length === 0) out.push('Changed in this run: nothing');
  else {
    out.push(`Changed in this run (${model.changes.length})`);
    out.push(
      ...table(
        ['Function', 'Before', 'Now'],
        model.changes.map((c) => [c.functionName, c.from ?? '(new)', c.to]),
        2,
      ),
    );
  }
  return `${out.join('\n')}\n`;
}

export const REPORT_CSV_HEADER = [
  'run_id',
  'mode',
  'function',
  'owner',
  'outcome',
  'reasons',
  'warnings',
  'what_to_change',
  'decided_at',
] as const;

/** One row per function of the run; multi-valued fields joined with "; " (line breaks inside "what to change"). */
export function reportCsv(model: ReportModel): string {
  return csv(
    REPORT_CSV_HEADER,
    model.functions.map((row) => [
      model.runId,
      model.mode,
      row.functionName,
      row.owner,
      row.outcome,
      row.reasons.join('; '),
      row.warnings.join('; '),
      row.fixes.map(fixLine).join('\n'),
      row.decidedAt,
    ]),
  );
}

export function reportJson(model: ReportModel): string {
  return `${JSON.stringify(model, null, 2)}\n`;
}
