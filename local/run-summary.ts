/**
 * What one local run did, from its audit items: counts by outcome, the skips grouped by reason with the gate's
 * message and remediation, the warnings, and the functions changed. Pure.
 */
import type { AuditItem } from '../lambdas/shared/domain/types';

export interface SkipGroup {
  reason: string;
  message: string;
  remediation: string;
  functions: string[];
}

export interface RunSummary {
  runId: string;
  status: 'SUCCEEDED' | 'FAILED';
  /** The execution's error, when it failed. */
  error?: string;
  /** One decision per function: every decision item's outcome except the write-ahead PENDING. */
  outcomes: Record<string, number>;
  /** Attempts per `service:Operation` during the run (simulated AWS and the local DynamoDB). */
  apiCalls: Record<string, number>;
  skips: SkipGroup[];
  warnings: Array<{ warning: string; functions: string[] }>;
  /** Functions protected (or whose change failed) in this run. */
  changed: Array<{ functionName: string; outcome: string }>;
  durationMs: number;
}

/** The run's final decisions (PENDING is the write-ahead half of a change, not a decision). */
export function decisions(items: readonly AuditItem[], runId: string): AuditItem[] {
  return items.filter((item) => item.runId === runId && item.kind === 'decision' && item.outcome !== 'PENDING');
}

export function summarizeDecisions(
  items: readonly AuditItem[],
  runId: string,
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
    if (item.outcome === 'PROTECTED' || item.outcome === 'FAILED') {
      changed.push({ functionName: item.functionName, outcome: item.outcome });
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
