/**
 * What the engine tells people over SNS: one message per skip (or failure), one summary per run, one alarm when the
 * Defender layer check fails. PURE: the notifier adapter only publishes what this builds.
 *
 * Messages carry names, codes, the gates' human messages and remediation, never a variable value (and never a
 * check's `observed`, which is free text).
 */
import { GATE_MESSAGES, type GateCode } from './funnel';
import type { AuditItem, Check } from './types';

/** Subject rules of SNS Publish (https://docs.aws.amazon.com/sns/latest/api/API_Publish.html): ASCII text, no line
 *  breaks or control characters, starting with a letter, number or punctuation mark, less than 100 characters. */
export const SUBJECT_MAX_CHARS = 99;

/** Codes that no funnel gate produces, with their message and remediation. */
const OTHER_CODES: Readonly<Record<string, { message: string; remediation: string }>> = {
  CHANGED_DURING_RUN: {
    message: 'Changed During Run',
    remediation: 'none needed; the function was deployed while we read it and is assessed again next run',
  },
  DEFENDER_LAYER_INVALID: {
    message: 'Defender Layer Check Failed',
    remediation: "fix defender.layerArn (see the engine's alarm topic); nothing is changed until the check passes",
  },
  DEFENDER_POLICY_UNAVAILABLE: {
    message: 'Defender Policy Unavailable',
    remediation:
      "none needed from the function's team: the engine could not get the function's TW_POLICY from the Prisma Cloud Console (see the record's detail: the Console's HTTP status or the secret's AWS error); it is tried again next run",
  },
};

export interface CodeDescription {
  code: string;
  message: string;
  remediation: string;
}

/** Each code with its human message and remediation: from the function's own checks, else the known tables. */
export function describeCodes(codes: readonly string[], checks: readonly Check[]): CodeDescription[] {
  return codes.map((code) => {
    const check = checks.find((c) => c.code === code && (c.status === 'fail' || c.status === 'warn'));
    if (check !== undefined) return { code, message: check.message, remediation: check.remediation };
    const known = (GATE_MESSAGES as Readonly<Record<string, { message: string } | undefined>>)[code as GateCode];
    const other = OTHER_CODES[code];
    return {
      code,
      message: known?.message ?? other?.message ?? code,
      remediation: other?.remediation ?? 'see the audit record',
    };
  });
}

/** Printable ASCII only, one line, at most `max` characters, starting with a letter or digit. */
export function asciiSubject(text: string, max = SUBJECT_MAX_CHARS): string {
  const ascii = text
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/\s+/g, ' ')
    .trim();
  const start = /^[A-Za-z0-9]/.test(ascii) ? ascii : `Zero-Impact ${ascii}`;
  return start.length <= max ? start : `${start.slice(0, max - 3)}...`;
}

/** A message ready to publish: subject, body and the attributes subscription filter policies match on. */
export interface Notice {
  subject: string;
  /** JSON, pretty-printed so that e-mail subscribers can read it. */
  message: string;
  /** String attributes (empty values are left out: SNS refuses them). */
  attributes: Record<string, string>;
  /** String.Array attributes. */
  arrayAttributes: Record<string, string[]>;
}

function attributes(values: Record<string, string | null | undefined>): Record<string, string> {
  return Object.fromEntries(
    Object.entries(values).flatMap(([k, v]) => (typeof v === 'string' && v.length > 0 ? [[k, v]] : [])),
  );
}

/**
 * The identity of a decision's notice: its audit item's key (`functionName|sk`). The same notice sent again (at least
 * once: a run died between the publish and its sent mark, lambdas/shared/notices.ts; standard SNS topics deliver
 * at least once themselves, Amazon SNS Developer Guide, "Message ordering and deduplication") carries the same id, so
 * a subscriber can drop the copy; a new decision's notice always has a new one.
 */
export function noticeIdOf(item: Pick<AuditItem, 'functionName' | 'sk'>): string {
  return `${item.functionName}|${item.sk}`;
}

/** The message for one decision item (SKIPPED, FAILED, ...). */
export function decisionNotice(item: AuditItem): Notice {
  const reasons = describeCodes(item.reasons, item.checks);
  const warnings = describeCodes(item.warnings, item.checks);
  const headline = item.reasons.length > 0 ? `: ${item.reasons.join(', ')}` : '';
  const body: Record<string, unknown> = {
    type: 'decision',
    outcome: item.outcome,
    functionName: item.functionName,
    functionArn: item.functionArn,
    account: item.account,
    region: item.region,
    owner: item.owner ?? null,
    runId: item.runId,
    noticeId: noticeIdOf(item),
    mode: item.mode,
    decidedAt: item.decidedAt,
    reasons,
    warnings,
  };
  if (item.detail !== undefined) body['detail'] = item.detail;
  return {
    subject: asciiSubject(`Zero-Impact ${item.outcome} ${item.functionName}${headline}`),
    message: JSON.stringify(body, null, 2),
    attributes: attributes({
      kind: 'decision',
      outcome: item.outcome,
      functionName: item.functionName,
      account: item.account,
      region: item.region,
      owner: item.owner,
      runId: item.runId,
      noticeId: noticeIdOf(item),
    }),
    arrayAttributes: { reasons: [...item.reasons] },
  };
}

export interface RunSummary {
  runId: string;
  status: 'SUCCEEDED' | 'FAILED';
  mode: string;
  startedAt: string;
  finishedAt: string;
  /** Decisions by outcome (PENDING write-ahead items are not decisions). */
  counts: Record<string, number>;
  /** Write-ahead items without a completion in the run (a protect Lambda stopped mid-way). */
  unfinished: string[];
  topReasons: Array<{ code: string; count: number }>;
  account: string | null;
  region: string | null;
  /** The run's failure, names only (error name and a trimmed cause). */
  error?: string;
}

export function runSummaryNotice(summary: RunSummary): Notice {
  const total = Object.values(summary.counts).reduce((a, b) => a + b, 0);
  const parts = Object.entries(summary.counts)
    .filter(([, n]) => n > 0)
    .map(([outcome, n]) => `${n} ${outcome}`);
  return {
    subject: asciiSubject(
      `Zero-Impact run ${summary.status}: ${total} function(s)${parts.length > 0 ? ` - ${parts.join(', ')}` : ''}`,
    ),
    message: JSON.stringify({ type: 'run-summary', ...summary }, null, 2),
    attributes: attributes({
      kind: 'run-summary',
      outcome: summary.status,
      account: summary.account,
      region: summary.region,
      runId: summary.runId,
    }),
    arrayAttributes: { reasons: summary.topReasons.map((r) => r.code) },
  };
}

export interface LayerAlarm {
  runId: string;
  layerArn: string;
  reason: string;
  raisedAt: string;
  /**
   * DEFENDER_LAYER_INVALID: the layer was read and is wrong (fix defender.layerArn). FACTS_MISSING: it could not be
   * checked (`awsError`: throttling, 5xx, access denied); nothing to fix in the configuration. @default DEFENDER_LAYER_INVALID
   */
  code?: 'DEFENDER_LAYER_INVALID' | 'FACTS_MISSING';
  awsError?: string;
}

/** The engine alarm (alarm topic, never owner mail) of a failed Defender layer check. */
export function layerAlarmNotice(alarm: LayerAlarm): Notice {
  const { code = 'DEFENDER_LAYER_INVALID', ...rest } = alarm;
  const unchecked = code === 'FACTS_MISSING';
  return {
    subject: asciiSubject(
      unchecked
        ? `Zero-Impact ALARM: Defender layer not checked (${alarm.awsError ?? 'AWS error'}), nothing protected this run`
        : 'Zero-Impact ALARM: Defender layer check failed, nothing is protected this run',
    ),
    message: JSON.stringify(
      {
        type: 'alarm',
        alarm: code,
        ...rest,
        remediation: unchecked
          ? "none in the configuration: the check could not be done (see awsError); if it persists, check the engine's lambda:GetLayerVersion permission and the layer's resource policy. The next run checks again"
          : OTHER_CODES['DEFENDER_LAYER_INVALID']?.remediation,
      },
      null,
      2,
    ),
    attributes: attributes({ kind: 'alarm', outcome: code, runId: alarm.runId }),
    arrayAttributes: { reasons: [code] },
  };
}
