/**
 * What one local run did, from its audit items: counts by outcome, the skips grouped by reason with the gate's
 * message and remediation, the warnings, and the functions changed. Pure.
 */
import type { AuditItem, FunctionConfiguration } from '../lambdas/shared/domain/types';

export interface SkipGroup {
  reason: string;
  message: string;
  remediation: string;
  functions: string[];
}

export interface RunSummary {
  runId: string;
  status: 'SUCCEEDED' | 'FAILED' | 'KILLED';
  /** The execution's error, when it failed. */
  error?: string;
  /** One decision per function: every decision item's outcome except the write-ahead PENDING. */
  outcomes: Record<string, number>;
  /** Attempts per `service:Operation` during the run (simulated AWS and the local DynamoDB). */
  apiCalls: Record<string, number>;
  skips: SkipGroup[];
  warnings: Array<{ warning: string; functions: string[] }>;
  /**
   * Functions whose configuration really changed in this run (the simulated account's configurations before and
   * after, compared without the fields every update bumps), each with its final decision's outcome (`CHANGED` when
   * the run recorded none). Without configurations: the functions the audit says were protected or failed.
   */
  changed: Array<{ functionName: string; outcome: string }>;
  /**
   * With `defender.policySource` (issue 10): the functions' own TW_POLICY values the protect Lambda got in this run,
   * fetched from the Console, taken from the cache, or failed (each failure is a DEFENDER_POLICY_UNAVAILABLE skip).
   */
  policyValues?: { fetched: number; cached: number; failed: number };
  durationMs: number;
}

/** The run's final decisions (PENDING is the write-ahead half of a change, not a decision). */
export function decisions(items: readonly AuditItem[], runId: string): AuditItem[] {
  return items.filter((item) => item.runId === runId && item.kind === 'decision' && item.outcome !== 'PENDING');
}

/** Fields an update sets whatever it changes, or that only report progress: not a change of configuration. */
const VOLATILE = new Set([
  'RevisionId',
  'LastModified',
  'LastUpdateStatus',
  'LastUpdateStatusReason',
  'LastUpdateStatusReasonCode',
  'State',
  'StateReason',
  'StateReasonCode',
]);

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value) ?? 'undefined';
}

/** The functions whose configuration differs between `before` and `after` (by FunctionName), sorted. */
export function changedFunctions(
  before: readonly FunctionConfiguration[],
  after: readonly FunctionConfiguration[],
): string[] {
  const strip = (c: FunctionConfiguration): string =>
    canonical(Object.fromEntries(Object.entries(c).filter(([k]) => !VOLATILE.has(k))));
  const old = new Map(before.map((c) => [String(c.FunctionName), strip(c)]));
  return after
    .filter((c) => old.get(String(c.FunctionName)) !== strip(c))
    .map((c) => String(c.FunctionName))
    .sort();
}

export function summarizeDecisions(
  items: readonly AuditItem[],
  runId: string,
  configurations?: { before: readonly FunctionConfiguration[]; after: readonly FunctionConfiguration[] },
): Pick<RunSummary, 'outcomes' | 'skips' | 'warnings' | 'changed'> {
  const final = decisions(items, runId);
  const outcomes: Record<string, number> = {};
  const skips = new Map<string, SkipGroup>();
  const warnings = new Map<string, string[]>();
  const changed: RunSummary['changed'] = [];
  for (const item of final) {
    outcomes[item.outcome] = (outcomes[item.outcome] ?? 0) + 1;
    if (item.outcome === 'SKIPPED') {
      for (const reason of item.reasons) {
        const check = item.checks.find((c) => c.code === reason && (c.status === 'fail' || c.status === 'warn'));
        const group = skips.get(reason) ?? {
          reason,
          message: check?.message ?? reason,
          remediation: check?.remediation ?? item.detail ?? '',
          functions: [],
        };
        group.functions.push(item.functionName);
        skips.set(reason, group);
      }
    }
    for (const warning of item.warnings) warnings.set(warning, [...(warnings.get(warning) ?? []), item.functionName]);
    if (configurations === undefined && (item.outcome === 'PROTECTED' || item.outcome === 'FAILED')) {
      changed.push({ functionName: item.functionName, outcome: item.outcome });
    }
  }
  if (configurations !== undefined) {
    for (const name of changedFunctions(configurations.before, configurations.after)) {
      const outcome = final.filter((item) => item.functionName === name).pop()?.outcome ?? 'CHANGED';
      changed.push({ functionName: name, outcome });
    }
  }
  const byCount = <T extends { functions: string[] }>(a: T, b: T): number => b.functions.length - a.functions.length;
  return {
    outcomes: Object.fromEntries(Object.entries(outcomes).sort(([a], [b]) => a.localeCompare(b))),
    skips: [...skips.values()].map((g) => ({ ...g, functions: g.functions.sort() })).sort(byCount),
    warnings: [...warnings.entries()].map(([warning, functions]) => ({ warning, functions: functions.sort() })),
    changed: changed.sort((a, b) => a.functionName.localeCompare(b.functionName)),
  };
}

/** `b - a` per key, keys with a positive difference only, sorted. */
export function countDelta(before: Record<string, number>, after: Record<string, number>): Record<string, number> {
  return Object.fromEntries(
    Object.entries(after)
      .map(([key, value]) => [key, value - (before[key] ?? 0)] as const)
      .filter(([, value]) => value > 0)
      .sort(([a], [b]) => a.localeCompare(b)),
  );
}
