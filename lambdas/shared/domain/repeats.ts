/**
 * Compact records of unchanged repeats (issue 11). PURE.
 *
 * Most of an estate decides the same thing every hour: an already-protected function stays ALREADY_PROTECTED, a
 * container-image function stays SKIPPED PACKAGE_IMAGE. Writing a full audit item (about 4.6 KB with its checks, plus
 * its index copies) for each of them every hour was most of the engine's cost. A decision that repeats the function's
 * previous one exactly — same outcome, reasons and warnings, and the same facts fingerprint (configuration
 * `RevisionId`, `CodeSha256`, tags, engine version and configuration hash: `factsFingerprint`) — and owes no notice is
 * therefore recorded in ONE item per assess batch: a run-level item (partition `#run`, kind `repeats`, outcome
 * `REPEATS`) listing each such function, its decision, and `sameAs`, the sort key of the function's last full item,
 * whose checks it repeats. Everything else (a new or changed decision, any change, any failure, any decision that
 * owes a notice) keeps its full item.
 *
 * "Every decision is recorded and queryable" stays true: the repeats item is written (conditional put on a
 * deterministic key, before any full item of its batch) before the run counts the decision; `expandRepeats` turns it
 * back into one decision per function — the same shape, sort key and counts as a full item, with `checks: []`,
 * `repeat: true` and `sameAs` naming the full item that holds the checks — for every reader (finish-run's counts, the
 * reviewing commands, the local checker). A full item is written again, even for a repeat, once the one it would
 * point at would expire before the repeats item (`needsFullRecord`), so that `sameAs` never names an expired item.
 */
import { createHash } from 'node:crypto';
import { auditSortKey, AUDIT_STAGE, expiryOf, type RecordSettings } from './audit';
import { RUN_ITEMS_PARTITION } from './table-schema';
import type { AuditItem, FunctionConfiguration, Mode, Outcome, RepeatGroup, Repeated } from './types';

/** The stage of a batch's repeats item (sorts after every decision of the run in the `#run` partition). */
export const REPEATS_STAGE = '2-repeats';

/** At most this many functions in one repeats item (about 100 bytes each: far below DynamoDB's 400 KB item limit). */
export const REPEATS_PER_ITEM = 1_000;

/** One repeated decision, as assess-batch collects it. */
export interface RepeatEntry {
  functionName: string;
  outcome: Outcome;
  reasons: string[];
  warnings: string[];
  owner?: string;
  sameAs: string;
}

/** The sort key of a batch's repeats item: the batch is named by its first function (each batch's are distinct). */
export function repeatsSortKey(runStartedAt: string, runId: string, batchKey: string, part: number): string {
  return `${auditSortKey(runStartedAt, runId, REPEATS_STAGE)}#${batchKey}#${part}`;
}

/** The prefix of every repeats item of a run (Query `#run` with begins_with). */
export function repeatsPrefix(runStartedAt: string, runId: string): string {
  return `${auditSortKey(runStartedAt, runId, REPEATS_STAGE)}#`;
}

export interface RepeatsInput {
  runId: string;
  runStartedAt: string;
  decidedAt: string;
  mode: Mode;
  batchKey: string;
  account: string | null;
  region: string | null;
  entries: readonly RepeatEntry[];
}

/** The repeats items of one batch (one per REPEATS_PER_ITEM functions; none without entries). */
export function repeatsItems(input: RepeatsInput, settings: RecordSettings): AuditItem[] {
  const items: AuditItem[] = [];
  for (let start = 0, part = 0; start < input.entries.length; start += REPEATS_PER_ITEM, part++) {
    const chunk = input.entries.slice(start, start + REPEATS_PER_ITEM);
    const groups = new Map<string, RepeatGroup>();
    chunk.forEach((entry, index) => {
      const key = JSON.stringify([entry.outcome, entry.reasons, entry.warnings, entry.owner ?? null]);
      let group = groups.get(key);
      if (group === undefined) {
        group = { outcome: entry.outcome, reasons: entry.reasons, warnings: entry.warnings, members: [] };
        if (entry.owner !== undefined) group.owner = entry.owner;
        groups.set(key, group);
      }
      group.members.push(index);
    });
    items.push({
      functionName: RUN_ITEMS_PARTITION,
      sk: repeatsSortKey(input.runStartedAt, input.runId, input.batchKey, part),
      kind: 'repeats',
      functionArn: null,
      account: input.account,
      region: input.region,
      runId: input.runId,
      decidedAt: input.decidedAt,
      mode: input.mode,
      outcome: 'REPEATS',
      reasons: [],
      warnings: [],
      checks: [],
      engineVersion: settings.engineVersion,
      configHash: settings.configHash,
      expiresAt: expiryOf(input.decidedAt, settings.repeatRetentionDays),
      repeat: true,
      repeated: {
        functions: chunk.map((e) => e.functionName),
        sameAs: chunk.map((e) => e.sameAs),
        groups: [...groups.values()],
      },
    });
  }
  return items;
}

function isRepeated(value: unknown): value is Repeated {
  if (value === null || typeof value !== 'object') return false;
  const r = value as Partial<Repeated>;
  return Array.isArray(r.functions) && Array.isArray(r.sameAs) && Array.isArray(r.groups);
}

/** The functions a repeats item decided (empty for any other item). */
export function repeatedFunctions(item: Pick<AuditItem, 'kind' | 'repeated'>): string[] {
  return item.kind === 'repeats' && isRepeated(item.repeated)
    ? item.repeated.functions.filter((f) => typeof f === 'string')
    : [];
}

/** The decisions of one repeats item, each as the full decision item it stands for (checks in `sameAs`). */
export function expandRepeatsItem(item: AuditItem): AuditItem[] {
  if (item.kind !== 'repeats' || !isRepeated(item.repeated)) return [];
  const { functions, sameAs, groups } = item.repeated;
  const runStartedAt = item.sk.split('#')[0] ?? '';
  const out: AuditItem[] = [];
  for (const group of groups) {
    for (const index of Array.isArray(group.members) ? group.members : []) {
      const functionName = functions[index];
      if (typeof functionName !== 'string') continue;
      const decision: AuditItem = {
        functionName,
        sk: auditSortKey(runStartedAt, item.runId, AUDIT_STAGE.decision),
        kind: 'decision',
        functionArn:
          item.account !== null && item.region !== null
            ? `arn:aws:lambda:${item.region}:${item.account}:function:${functionName}`
            : null,
        account: item.account,
        region: item.region,
        runId: item.runId,
        decidedAt: item.decidedAt,
        mode: item.mode,
        outcome: group.outcome,
        reasons: group.reasons,
        warnings: group.warnings,
        checks: [],
        engineVersion: item.engineVersion,
        configHash: item.configHash,
        repeat: true,
        recordedIn: item.sk,
      };
      const ref = sameAs[index];
      if (typeof ref === 'string') decision.sameAs = ref;
      if (item.expiresAt !== undefined) decision.expiresAt = item.expiresAt;
      if (group.owner !== undefined) decision.owner = group.owner;
      const first = group.reasons[0];
      if (group.outcome === 'SKIPPED' && first !== undefined) decision.primaryReason = first;
      out.push(decision);
    }
  }
  return out;
}

/** Items as written, with every repeats item replaced by the decisions it records (any other item unchanged). */
export function expandRepeats(items: readonly AuditItem[]): AuditItem[] {
  return items.flatMap((item) => (item.kind === 'repeats' ? expandRepeatsItem(item) : [item]));
}

/**
 * The facts fingerprint of a function's decision: what, unchanged, makes the same decision a repeat (issue 11:
 * configuration RevisionId and CodeSha256 — RevisionId changes with every configuration change, values included —,
 * the tags, and the engine and configuration the decision was made with). A SHA-256 of identifiers only: no
 * variable value goes in (a value change shows as a new RevisionId).
 */
export function factsFingerprint(
  configuration: FunctionConfiguration,
  tags: Readonly<Record<string, string>>,
  settings: Pick<RecordSettings, 'engineVersion' | 'configHash'>,
  mode: Mode,
  /** Run-level facts the decision also rests on (identifiers only: e.g. our SSM parameters' versions). */
  context: readonly unknown[] = [],
): string | undefined {
  const revision = configuration.RevisionId;
  const code = configuration['CodeSha256'];
  if (typeof revision !== 'string' || revision.length === 0 || typeof code !== 'string') return undefined;
  const sortedTags = Object.keys(tags)
    .sort()
    .map((k) => [k, tags[k]]);
  return createHash('sha256')
    .update(JSON.stringify([revision, code, sortedTags, settings.engineVersion, settings.configHash, mode, ...context]))
    .digest('base64url')
    .slice(0, 22);
}

/**
 * Whether a repeat still needs a full item: there is none to point at, or the one there is expires before a repeats
 * item written now would (`recordedUntil`, epoch seconds; absent: kept forever), so `sameAs` never names a deleted
 * item. With the defaults (400 and 30 days) a function's full item is written again once every 370 days.
 */
export function needsFullRecord(
  recorded: { recordedAs?: string; recordedUntil?: number },
  now: number,
  settings: Pick<RecordSettings, 'repeatRetentionDays'>,
): boolean {
  if (recorded.recordedAs === undefined) return true;
  if (recorded.recordedUntil === undefined) return false;
  return recorded.recordedUntil * 1000 < now + settings.repeatRetentionDays * 24 * 60 * 60 * 1000;
}

/**
 * How long the expensive facts of an unchanged function stay good for (issue 11): a dry-run candidate's metrics,
 * provisioned concurrency, code signing and route tables, and a protected function's readiness (GetFunction) are
 * read again once a day, not every hour, while its facts fingerprint and decision stay the same. Anything that
 * changes the function (RevisionId, code, tags), the engine or the configuration reads them at once.
 */
export const FACTS_RECHECK_MS = 24 * 60 * 60 * 1000;

/**
 * Skips that the expensive facts decide, and that an unchanged function may carry for FACTS_RECHECK_MS without
 * reading them again (issue 11). Never FACTS_MISSING (a failed read is retried next run) nor PREVIOUSLY_REJECTED (its
 * back-off may end within the hour). RECENTLY_THROTTLED's own remediation already says "assessed again once it has
 * had no throttles for 24 h".
 */
export const CARRIED_SKIPS: ReadonlySet<string> = new Set([
  'RECENTLY_THROTTLED',
  'CONCURRENCY_SATURATED',
  'PROVISIONED_CONCURRENCY',
  'VPC_NO_NAT',
  'CODE_SIGNING_ENFORCED',
]);

/**
 * Whether an unchanged function's expensive facts must be read again this run: always unless its previous decision
 * was `outcome` (with no reasons, or only `carriedReasons`) on the same fingerprint, without `unlessWarning`, and they
 * were read within FACTS_RECHECK_MS.
 */
export function recheckDue(
  previous:
    { outcome: string; reasons: string[]; warnings: string[]; fingerprint?: string; checkedAt?: string } | undefined,
  expected: {
    outcome: string;
    fingerprint: string | undefined;
    unlessWarning?: string;
    carriedReasons?: ReadonlySet<string>;
  },
  now: number,
): boolean {
  if (previous === undefined || expected.fingerprint === undefined) return true;
  if (previous.outcome !== expected.outcome) return true;
  if (!previous.reasons.every((reason) => expected.carriedReasons?.has(reason) === true)) return true;
  if (previous.fingerprint !== expected.fingerprint) return true;
  if (expected.unlessWarning !== undefined && previous.warnings.includes(expected.unlessWarning)) return true;
  const checked = previous.checkedAt === undefined ? Number.NaN : Date.parse(previous.checkedAt);
  return Number.isNaN(checked) || now - checked >= FACTS_RECHECK_MS || checked > now;
}

/**
 * Decisions expanded from repeats items with the checks (and detail) of the full item each one repeats (`sameAs`),
 * for readers that show them (the reviewing commands). `full` holds the referenced items; one not found leaves the
 * decision without checks.
 */
export function withRepeatedChecks(items: readonly AuditItem[], full: readonly AuditItem[]): AuditItem[] {
  const byKey = new Map(full.map((item) => [`${item.functionName}|${item.sk}`, item]));
  return items.map((item) => {
    if (item.sameAs === undefined || item.checks.length > 0) return item;
    const source = byKey.get(`${item.functionName}|${item.sameAs}`);
    if (source === undefined) return item;
    return {
      ...item,
      checks: source.checks,
      ...(source.detail !== undefined ? { detail: source.detail } : {}),
      ...(item.functionArn === null ? { functionArn: source.functionArn } : {}),
    };
  });
}

/** The keys of the full items that expanded repeats point at. */
export function repeatedKeys(items: readonly AuditItem[]): Array<{ functionName: string; sk: string }> {
  const keys = new Map<string, { functionName: string; sk: string }>();
  for (const item of items) {
    if (item.sameAs === undefined || item.checks.length > 0) continue;
    keys.set(`${item.functionName}|${item.sameAs}`, { functionName: item.functionName, sk: item.sameAs });
  }
  return [...keys.values()];
}
