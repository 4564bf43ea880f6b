/**
 * The estate as of a run, from its audit items: PURE (no I/O, no clock). Every renderer (table, CSV, JSON, HTML)
 * draws from this one model, so the formats never disagree.
 *
 * - counts by outcome (one final decision per function; a PENDING with no final decision counts as PENDING);
 * - skips by reason, with the gate's message, its remediation line and the count;
 * - skips by owner team (the item's `owner`, the engine's copy of the `audit.ownerTagKey` tag; "unowned" when
 *   absent): each team's functions that need something and what to change, ready to paste into a ticket;
 * - the warnings; what changed in this run (outcome different from the function's decision in the previous run);
 * - coverage over the last runs (share of functions PROTECTED or ALREADY_PROTECTED).
 * Names are carried as given: the renderers escape them.
 */
import { OUTCOMES, type AuditItem, type Check } from '../../lambdas/shared/domain/types';

export const UNOWNED = 'unowned';

export interface Fix {
  code: string;
  message: string;
  remediation: string;
  /** What the gate found (never a variable value: checks carry none). */
  observed: string | null;
}

export interface FunctionRow {
  functionName: string;
  owner: string;
  outcome: string;
  reasons: string[];
  warnings: string[];
  /** What to change: one entry per reason and warning, from the gate's check. */
  fixes: Fix[];
  detail?: string;
  decidedAt: string;
}

export interface SkipGroup {
  reason: string;
  message: string;
  remediation: string;
  count: number;
  functions: string[];
}

export interface TeamGroup {
  team: string;
  /** Functions of the team in this run. */
  total: number;
  /** The team's functions that need something (skipped, failed, or with a warning), with what to change. */
  functions: FunctionRow[];
}

export interface CoveragePoint {
  runId: string;
  startedAt: string;
  mode: string;
  total: number;
  protected: number;
  wouldProtect: number;
  /** protected / total, 0 when the run decided nothing. */
  share: number;
}

export interface ReportModel {
  runId: string;
  mode: string;
  startedAt: string;
  account: string | null;
  region: string | null;
  total: number;
  outcomes: Record<string, number>;
  skips: SkipGroup[];
  teams: TeamGroup[];
  warnings: Array<{ warning: string; message: string; functions: string[] }>;
  changes: Array<{ functionName: string; from: string | null; to: string }>;
  /** Run-level events (RUN_OVERLAP, LEASE_TAKEN_OVER) with their detail. */
  runEvents: Array<{ outcome: string; detail: string }>;
  coverage: CoveragePoint[];
  functions: FunctionRow[];
}

const byName = (a: { functionName: string }, b: { functionName: string }): number =>
  a.functionName < b.functionName ? -1 : a.functionName > b.functionName ? 1 : 0;

/** One final decision per function (the newest decision-stage item; else its PENDING). */
export function finalDecisions(items: readonly AuditItem[]): AuditItem[] {
  const byFunction = new Map<string, AuditItem>();
  for (const item of [...items].sort((a, b) => a.sk.localeCompare(b.sk))) {
    if (item.kind !== 'decision') continue;
    const seen = byFunction.get(item.functionName);
    if (seen !== undefined && seen.outcome !== 'PENDING' && item.outcome === 'PENDING') continue;
    byFunction.set(item.functionName, item);
  }
  return [...byFunction.values()].sort(byName);
}

function fixOf(code: string, checks: readonly Check[], fallback: string): Fix {
  const check = checks.find((c) => c.code === code && (c.status === 'fail' || c.status === 'warn'));
  const observed = check?.observed;
  return {
    code,
    message: check?.message ?? code,
    remediation: check?.remediation ?? fallback,
    observed: observed === undefined || observed === null ? null : String(observed),
  };
}

export function functionRow(item: AuditItem): FunctionRow {
  const reasons = [...item.reasons];
  const warnings = [...item.warnings];
  const fixes = [...reasons, ...warnings].map((code) => fixOf(code, item.checks, item.detail ?? ''));
  return {
    functionName: item.functionName,
    owner: item.owner !== undefined && item.owner.length > 0 ? item.owner : UNOWNED,
    outcome: item.outcome,
    reasons,
    warnings,
    fixes,
    ...(item.detail !== undefined ? { detail: item.detail } : {}),
    decidedAt: item.decidedAt,
  };
}

const PROTECTED_OUTCOMES = new Set(['PROTECTED', 'ALREADY_PROTECTED']);

export function coveragePoint(runId: string, items: readonly AuditItem[]): CoveragePoint {
  const final = finalDecisions(items);
  const protectedCount = final.filter((i) => PROTECTED_OUTCOMES.has(i.outcome)).length;
  return {
    runId,
    startedAt: items[0]?.sk.split('#')[0] ?? '',
    mode: final[0]?.mode ?? 'dry-run',
    total: final.length,
    protected: protectedCount,
    wouldProtect: final.filter((i) => i.outcome === 'WOULD_PROTECT').length,
    share: final.length === 0 ? 0 : protectedCount / final.length,
  };
}

/** Whether a function needs someone: a skip, a failure, a warning, or an unfinished change. */
function needsAction(row: FunctionRow): boolean {
  return row.outcome === 'SKIPPED' || row.outcome === 'FAILED' || row.outcome === 'PENDING' || row.warnings.length > 0;
}

/**
 * @param items every item the run wrote
 * @param previous the items of the run before it (for "what changed"), if any
 * @param history the items of the last runs, oldest first, this run included (for coverage over time)
 */
export function buildReport(
  runId: string,
  items: readonly AuditItem[],
  previous: readonly AuditItem[] | undefined,
  history: ReadonlyArray<{ runId: string; items: readonly AuditItem[] }>,
): ReportModel {
  const final = finalDecisions(items);
  const rows = final.map(functionRow);
  const outcomes: Record<string, number> = {};
  for (const outcome of OUTCOMES) {
    const count = rows.filter((r) => r.outcome === outcome).length;
    if (count > 0) outcomes[outcome] = count;
  }
  const skips = new Map<string, SkipGroup>();
  for (const row of rows) {
    if (row.outcome !== 'SKIPPED') continue;
    for (const fix of row.fixes.filter((f) => row.reasons.includes(f.code))) {
      const group = skips.get(fix.code) ?? {
        reason: fix.code,
        message: fix.message,
        remediation: fix.remediation,
        count: 0,
        functions: [],
      };
      group.count += 1;
      group.functions.push(row.functionName);
      skips.set(fix.code, group);
    }
  }
  const warnings = new Map<string, { warning: string; message: string; functions: string[] }>();
  for (const row of rows) {
    for (const fix of row.fixes.filter((f) => row.warnings.includes(f.code))) {
      const group = warnings.get(fix.code) ?? { warning: fix.code, message: fix.message, functions: [] };
      group.functions.push(row.functionName);
      warnings.set(fix.code, group);
    }
  }
  const teams = new Map<string, TeamGroup>();
  for (const row of rows) {
    const team = teams.get(row.owner) ?? { team: row.owner, total: 0, functions: [] };
    team.total += 1;
    if (needsAction(row)) team.functions.push(row);
    teams.set(row.owner, team);
  }
  const changes: ReportModel['changes'] = [];
  if (previous !== undefined) {
    const before = new Map(finalDecisions(previous).map((i) => [i.functionName, i.outcome] as const));
    for (const row of rows) {
      const from = before.get(row.functionName) ?? null;
      if (from !== row.outcome) changes.push({ functionName: row.functionName, from, to: row.outcome });
    }
    const now = new Set(rows.map((r) => r.functionName));
    for (const [name, outcome] of before) {
      if (!now.has(name)) changes.push({ functionName: name, from: outcome, to: 'GONE' });
    }
  } else {
    for (const row of rows) changes.push({ functionName: row.functionName, from: null, to: row.outcome });
  }
  const first = final[0] ?? items[0];
  return {
    runId,
    mode: first?.mode ?? 'dry-run',
    startedAt: items.find((i) => i.kind === 'decision')?.sk.split('#')[0] ?? first?.decidedAt ?? '',
    account: first?.account ?? null,
    region: first?.region ?? null,
    total: rows.length,
    outcomes,
    skips: [...skips.values()]
      .map((g) => ({ ...g, functions: g.functions.sort() }))
      .sort((a, b) => b.count - a.count || a.reason.localeCompare(b.reason)),
    teams: [...teams.values()].sort(
      (a, b) =>
        Number(a.team === UNOWNED) - Number(b.team === UNOWNED) ||
        b.functions.length - a.functions.length ||
        a.team.localeCompare(b.team),
    ),
    warnings: [...warnings.values()].sort((a, b) => a.warning.localeCompare(b.warning)),
    changes: changes.sort(byName),
    runEvents: items.filter((i) => i.kind === 'run').map((i) => ({ outcome: i.outcome, detail: i.detail ?? '' })),
    coverage: history.map((h) => coveragePoint(h.runId, h.items)),
    functions: rows,
  };
}

/** The outcomes `--fail-on` lists that the report has (for a CI gate: exit 1 when any). */
export function failOnMatches(model: Pick<ReportModel, 'outcomes'>, failOn: readonly string[]): string[] {
  return failOn.filter((outcome) => (model.outcomes[outcome] ?? 0) > 0);
}
