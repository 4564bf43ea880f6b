/**
 * `npm run audit:prod`: `npm audit --omit=dev --audit-level=high` on the production dependencies (what the
 * Lambdas bundle and the CLI loads). Fails (exit 1) on any high or critical advisory; prints a warning and passes
 * (exit 0) when the audit could not be done at all: the registry or its audit endpoint cannot be reached (offline,
 * a proxy or mirror without the advisories API). Run by `npm test` (issue 9, "Security checks in the test suite").
 */
import { spawnSync } from 'node:child_process';

export type AuditVerdict =
  | { exit: 0; kind: 'clean'; message: string }
  | { exit: 1; kind: 'findings'; message: string }
  | { exit: 0; kind: 'unreachable'; message: string };

const AUDIT_TIMEOUT_MS = 120_000;

interface AuditReport {
  metadata?: { vulnerabilities?: Record<string, number> };
  vulnerabilities?: Record<string, { severity?: string; name?: string }>;
}

/** What `npm audit --json` printed, judged. PURE (exported for tests). */
export function auditVerdict(stdout: string, stderr: string): AuditVerdict {
  let report: AuditReport & { error?: unknown; message?: unknown };
  try {
    report = JSON.parse(stdout) as typeof report;
  } catch {
    return { exit: 0, kind: 'unreachable', message: `npm audit gave no report (${firstLine(stderr)})` };
  }
  const counts = report.metadata?.vulnerabilities;
  if (counts === undefined) {
    const why = typeof report.message === 'string' ? report.message : firstLine(stderr);
    return { exit: 0, kind: 'unreachable', message: `the registry's audit endpoint cannot be reached (${why})` };
  }
  const high = (counts['high'] ?? 0) + (counts['critical'] ?? 0);
  if (high > 0) {
    const names = Object.values(report.vulnerabilities ?? {})
      .filter((v) => v.severity === 'high' || v.severity === 'critical')
      .map((v) => `${v.name ?? '?'} (${v.severity ?? '?'})`)
      .sort();
    return {
      exit: 1,
      kind: 'findings',
      message: `${high} high or critical advisories in production dependencies: ${names.join(', ')}; run npm audit --omit=dev`,
    };
  }
  return { exit: 0, kind: 'clean', message: 'no high or critical advisory in production dependencies' };
}

function firstLine(text: string): string {
  const line = text.split('\n').find((l) => l.trim().length > 0);
  return line === undefined ? 'no output' : line.trim().slice(0, 200);
}

if (require.main === module) {
  const run = spawnSync('npm', ['audit', '--omit=dev', '--audit-level=high', '--json'], {
    encoding: 'utf8',
    timeout: AUDIT_TIMEOUT_MS,
  });
  const verdict =
    run.error !== undefined
      ? ({ exit: 0, kind: 'unreachable', message: `npm audit could not run (${run.error.message})` } as const)
      : auditVerdict(run.stdout ?? '', run.stderr ?? '');
  if (verdict.kind === 'unreachable') {
    console.warn(`audit:prod WARNING: ${verdict.message}; dependencies NOT checked this time`);
  } else if (verdict.kind === 'findings') {
    console.error(`audit:prod FAILED: ${verdict.message}`);
  } else {
    console.log(`audit:prod: ${verdict.message}`);
  }
  process.exitCode = verdict.exit;
}
