/**
 * Protect function (mode `protect` only): one eligible function in, one outcome out (issue 3, "Protecting a
 * function", steps 1-7).
 *
 * 1. Re-read the function (GetFunction) and re-run the funnel on the fresh facts, with our SSM values resolved.
 * 2. Plan the change (domain/plan.ts, pure).
 * 3. Claim one of the run's `maxProtectionsPerRun` slots, else DEFERRED.
 * 4. Write the PENDING audit item with the before-image. If that write fails, nothing is changed and the invocation
 *    fails (the state machine records the failure).
 * 5. UpdateFunctionConfiguration with the RevisionId just read: precondition failed → SKIPPED CHANGED_DURING_RUN;
 *    update in progress → bounded retries, then SKIPPED FUNCTION_NOT_READY; any other error → FAILED.
 * 6. Wait (bounded) for LastUpdateStatus: Successful → PROTECTED; Failed → FAILED with AWS's reason (the function is
 *    left as AWS left it; the record says how to roll back); no answer in time → FAILED.
 * 7. Complete the audit record with the after-image, publish skips, then update the function's last-decision digest
 *    (only after the publish succeeded: a notice SNS refused is sent by the next run, never lost).
 *
 * Exactly once per run (issue 9): the PENDING and the final decision have deterministic keys per (run, function,
 * stage) and conditional puts. A retried invocation (its earlier answer lost) first reads both: a decision already
 * there is returned as it is, and nothing is read, changed, written or published again; a PENDING without a
 * decision means the earlier attempt may have sent the change: if the function carries it now, it is recorded
 * PROTECTED; otherwise the change is tried again under that PENDING (same revision), or not at all.
 *
 * The fresh configuration holds real variable values: it stays in this invocation's memory. Logs, audit items and
 * messages carry names, sizes and hashes only, and AWS messages are scrubbed of every value we know.
 */
import type { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';
import { getParameter } from '@aws-lambda-powertools/parameters/ssm';
import { defenderVariables, isConsoleVariable, POLICY_VARIABLE, type Config } from '../shared/domain/config';
import { getAuditItem, putAuditItem, runRecordsOf, type RunRecords } from '../shared/adapters/audit-store';
import {
  awsMessage,
  isNotFound,
  readFunction,
  readTags,
  updateConfiguration,
  waitForUpdate,
  type FreshFunction,
  type Pacing,
  type UpdateResult,
} from '../shared/adapters/function-update';
import { describeLayer, layerCompatibleWith, type LayerLookup } from '../shared/adapters/layer-check';
import { publishNotice } from '../shared/adapters/notifier';
import { controlPlaneLimiters, systemClock } from '../shared/adapters/rate-limiter';
import {
  claimProtectionSlot,
  isExcluded,
  lastDecisions,
  putLastDecisions,
  putRejection,
  readRejection,
  renewLease,
  runCounterExpiry,
} from '../shared/adapters/state-store';
import { defenderPolicy } from '../shared/adapters/defender-policy';
import { macKey } from '../shared/adapters/mac-key';
import { putRestore } from '../shared/adapters/restore-store';
import {
  DETERMINISTIC_REJECTIONS,
  nextRejection,
  rejectionBackoff,
  type FunctionRevision,
  type RejectionRecord,
} from '../shared/domain/backoff';
import { workersOf } from '../shared/domain/batching';
import {
  AUDIT_STAGE,
  auditSortKey,
  decisionItem,
  nextDigest,
  pendingLanding,
  sameDecision,
  type DecisionDigest,
} from '../shared/domain/audit';
import { ourVariableNames, valueMac, type MacContext } from '../shared/domain/mac';
import { decisionNotice } from '../shared/domain/notice';
import { arnRegion, assess, type FunnelContext } from '../shared/domain/funnel';
import {
  applyChange,
  changeApplied,
  configurationImage,
  planProtection,
  planRefresh,
  scrubValues,
} from '../shared/domain/plan';
import {
  isRecord,
  type Assessment,
  type AuditItem,
  type Check,
  type ConfigurationImage,
  type FunctionFacts,
  type Outcome,
  type ProtectOutput,
  type ProtectRequest,
  type ReasonCode,
  type WarningCode,
} from '../shared/domain/types';
import { logger, startInvocation } from '../shared/observability';
import { cutQuoted, recordSettings, withRetries } from '../shared/recording';
import { keepInOutbox } from '../shared/notices';
import { runtime, type Runtime } from '../shared/runtime';

/** How long a resolved SSM value is cached in the container. */
const SSM_MAX_AGE_SECONDS = 300;
/** Notified outcomes. DEFERRED is not (issue 11): the run summary counts the deferred. */
const SKIP_OUTCOMES: ReadonlySet<Outcome> = new Set(['SKIPPED', 'FAILED']);

/**
 * The run's slot for this change: claimed by assess (issue 11: `slotClaimed`), when the lease must still be this
 * run's (renewed here); otherwise claimed now (a request from an engine before issue 11, in flight across a deploy).
 * False: no slot (cap reached, or the lease lost). Throws when the state table cannot be reached.
 */
async function holdSlot(rt: Runtime, request: ProtectRequest): Promise<boolean> {
  const now = systemClock.now();
  if (request.slotClaimed === true) return renewLease(rt.stateTableName, request.runId, Math.floor(now / 1000));
  return claimProtectionSlot(rt.stateTableName, {
    runId: request.runId,
    max: rt.config.maxProtectionsPerRun,
    expiresAt: runCounterExpiry(request.startedAt),
    now,
  });
}

/** The event is not a ProtectRequest: nothing is read or changed. */
export class ProtectRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ProtectRequestError';
  }
}

/** Thrown when the write-ahead audit item cannot be written: the function was not changed. */
export class WriteAheadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WriteAheadError';
  }
}

/** Validates the event shape. Facts are redacted: only their shape is checked here. */
export function parseProtectRequest(event: unknown): ProtectRequest {
  if (!isRecord(event)) throw new ProtectRequestError('event is not an object');
  const { runId, startedAt, protectionAllowed, functionName, functionArn, facts } = event;
  const problems = [
    typeof runId === 'string' && runId.length > 0 ? '' : 'runId',
    typeof startedAt === 'string' && !Number.isNaN(Date.parse(startedAt)) ? '' : 'startedAt',
    typeof protectionAllowed === 'boolean' ? '' : 'protectionAllowed',
    typeof functionName === 'string' && functionName.length > 0 ? '' : 'functionName',
    typeof functionArn === 'string' && functionArn.length > 0 ? '' : 'functionArn',
    isRecord(facts) && isRecord(facts['configuration']) ? '' : 'facts.configuration',
  ].filter((p) => p.length > 0);
  if (problems.length > 0)
    throw new ProtectRequestError(`invalid ProtectRequest: bad or missing ${problems.join(', ')}`);
  return event as unknown as ProtectRequest;
}

/** Our variables with `{ ssmParameter }` values resolved (SecureStrings decrypted). Throws naming the variable. */
export async function resolveDefenderEnvironment(config: Config): Promise<Record<string, string>> {
  const resolved: Record<string, string> = {};
  for (const [name, source] of Object.entries(config.defender.environment)) {
    if (typeof source === 'string') {
      resolved[name] = source;
      continue;
    }
    let value: unknown;
    try {
      value = await getParameter(source.ssmParameter, { decrypt: true, maxAge: SSM_MAX_AGE_SECONDS });
    } catch (error) {
      throw new Error(`${name}: SSM parameter ${source.ssmParameter} cannot be read (${awsMessage(error)})`);
    }
    if (typeof value !== 'string') throw new Error(`${name}: SSM parameter ${source.ssmParameter} has no value`);
    resolved[name] = value;
  }
  return resolved;
}

/** The Defender layer's declaration, read once per container (failures are not cached). */
let layerLookup: { arn: string; result: Promise<LayerLookup> } | undefined;
async function defenderLayer(arn: string, beforeCall: () => Promise<void>): Promise<LayerLookup> {
  if (layerLookup?.arn !== arn) layerLookup = { arn, result: describeLayer(arn, beforeCall) };
  const result = await layerLookup.result;
  if (!result.ok) layerLookup = undefined;
  return result;
}

interface Decision {
  outcome: Outcome;
  reasons?: ReasonCode[];
  warnings?: WarningCode[];
  checks?: Check[];
  before?: ConfigurationImage;
  after?: ConfigurationImage;
  detail?: string;
  /** AWS refused the update: nothing was changed (the record is no change a rollback could undo). */
  nothingChanged?: boolean;
}

/** Records decisions for one function: audit item, last-decision digest, skip notification, log line. */
class Recorder {
  private readonly secrets: string[] = [];
  private previous: DecisionDigest | undefined;
  /** This function's logger: the run id and the function name on every line, whatever else runs in the process. */
  readonly log: Logger;

  constructor(
    private readonly rt: Runtime,
    private readonly request: ProtectRequest,
    private owner: string | undefined,
  ) {
    this.log = logger.createChild({ persistentKeys: { runId: request.runId, functionName: request.functionName } });
  }

  get functionName(): string {
    return this.request.functionName;
  }

  /** Values that must never leave: every value of the function and ours (anything that is not a string is no value). */
  knowSecrets(values: Iterable<unknown>): void {
    for (const value of values) if (typeof value === 'string') this.secrets.push(value);
  }

  scrub(text: string): string {
    return scrubValues(text, this.secrets);
  }

  /**
   * An AWS message as it may be stored: every known value removed, and whatever AWS quotes back cut out too
   * (validation messages quote the offending input, `Value '{PIN=482, ...}' at 'environment.variables'`, and values
   * shorter than SCRUB_MIN_LENGTH cannot be removed by value).
   */
  scrubAws(message: string): string {
    return cutQuoted(this.scrub(message));
  }

  setOwner(owner: string | undefined): void {
    if (owner !== undefined) this.owner = owner;
  }

  /** The function's previous decision digest (undefined: none, or unreadable). */
  get previousDigest(): DecisionDigest | undefined {
    return this.previous;
  }

  async loadPrevious(): Promise<void> {
    try {
      this.previous = (await lastDecisions(this.rt.stateTableName, [this.request.functionName])).get(
        this.request.functionName,
      );
    } catch (error) {
      this.log.warn('previous decision unavailable; treating this decision as new', { error: awsMessage(error) });
    }
  }

  /** This run's PENDING and decision of the function, read at the start (empty when unreadable). */
  runRecords: RunRecords = {};

  async loadRunRecords(): Promise<void> {
    try {
      this.runRecords = await runRecordsOf(this.rt.auditTableName, this.request.functionName, this.request);
    } catch (error) {
      // The conditional puts still keep one decision per run; only the early answer of a retry is lost.
      this.log.warn("this run's earlier records unreadable; the conditional writes decide", {
        error: awsMessage(error),
      });
    }
  }

  /** The function's decision in this run, read consistently (after a put answered 'exists'). */
  private async existingDecision(): Promise<AuditItem | undefined> {
    const { rt, request } = this;
    try {
      const sk = auditSortKey(request.startedAt, request.runId, AUDIT_STAGE.decision);
      return await getAuditItem(rt.auditTableName, request.functionName, sk);
    } catch (error) {
      this.log.warn('the earlier decision of this run is unreadable', { error: awsMessage(error) });
      return undefined;
    }
  }

  /** Writes one audit item; 'exists' when this run already has it (a retry). Throws if the write fails. */
  async write(decision: Decision): Promise<{ item: AuditItem; result: 'written' | 'exists' }> {
    const { rt, request } = this;
    const decidedAt = new Date(systemClock.now()).toISOString();
    const detail = decision.detail === undefined ? undefined : this.scrub(decision.detail);
    const item = decisionItem(
      {
        functionName: request.functionName,
        functionArn: request.functionArn,
        runId: request.runId,
        runStartedAt: request.startedAt,
        decidedAt,
        mode: rt.config.mode,
        outcome: decision.outcome,
        reasons: decision.reasons ?? [],
        warnings: decision.warnings ?? [],
        checks: decision.checks ?? [],
        ...(decision.before !== undefined ? { before: decision.before } : {}),
        ...(decision.after !== undefined ? { after: decision.after } : {}),
        ...(detail !== undefined ? { detail } : {}),
        ...(decision.nothingChanged === true ? { nothingChanged: true } : {}),
        ...(this.owner !== undefined ? { owner: this.owner } : {}),
        ...(this.previous !== undefined ? { previous: this.previous } : {}),
      },
      recordSettings(rt),
    );
    return { item, result: await putAuditItem(rt.auditTableName, item) };
  }

  /**
   * The final decision: audit item, notification, digest. Returns the handler's output. When this run already has
   * the function's decision (a retry whose earlier answer was lost), that decision is the answer: nothing is
   * published or stored again.
   */
  async finish(decision: Decision): Promise<ProtectOutput> {
    const { rt, request } = this;
    const reasons = decision.reasons ?? [];
    const warnings = decision.warnings ?? [];
    const { item, result } = await this.write(decision);
    if (result === 'exists') {
      const existing = await this.existingDecision();
      this.log.info('decision already recorded in this run (a retry); nothing written or published again', {
        outcome: existing?.outcome ?? decision.outcome,
      });
      return existing !== undefined
        ? outputOf(existing)
        : { functionName: request.functionName, outcome: decision.outcome, reasons };
    }
    const decidedAt = item.decidedAt;
    // The MACs of what the engine wrote live on in the digest (issue 8 item 7): a PROTECTED brings new ones.
    const written = decision.outcome === 'PROTECTED' ? decision.after?.ourValueMacs : undefined;
    const digest = nextDigest(this.previous, {
      outcome: decision.outcome,
      reasons,
      warnings,
      ...(written !== undefined ? { ourValueMacs: written } : {}),
    });
    const detail = decision.detail === undefined ? undefined : this.scrub(decision.detail);
    const line = `${decision.outcome}: ${request.functionName}${reasons.length > 0 ? ` - ${reasons.join(', ')}` : ''}`;
    if (decision.outcome === 'FAILED') this.log.error(line, { reasons, warnings, detail });
    else if (decision.outcome === 'PROTECTED') this.log.info(line, { warnings });
    else this.log.warn(line, { reasons, warnings, detail });

    const changed = !sameDecision(this.previous, digest);
    if (SKIP_OUTCOMES.has(decision.outcome) && (rt.config.notifications.skips === 'always' || changed)) {
      try {
        await publishNotice(rt.skipTopicArn, decisionNotice(item));
      } catch (error) {
        // Not marked sent (the digest stays the previous one): the outbox drain sends it (shared/notices.ts); the
        // run goes in the outbox now, in case finish-run's drain cannot.
        this.log.error('skip notification not published; the outbox drain sends it', { error: awsMessage(error) });
        await keepInOutbox(rt, request.runId).catch((outboxError: unknown) => {
          this.log.warn('run not kept in the outbox; finish-run drains it', { error: awsMessage(outboxError) });
        });
        return { functionName: request.functionName, outcome: decision.outcome, reasons };
      }
    }
    try {
      // Retried through a short outage: the digest is also the sent mark of the notice (shared/notices.ts).
      await withRetries('storing the last-decision digest', () =>
        putLastDecisions(rt.stateTableName, [{ functionName: request.functionName, digest, decidedAt }]),
      );
    } catch (error) {
      this.log.error('last-decision digest not stored', { error: awsMessage(error) });
    }
    return { functionName: request.functionName, outcome: decision.outcome, reasons };
  }

  /**
   * Writes the write-ahead PENDING. 'proceed': written, or this run's earlier attempt wrote it for the same revision
   * (the change it describes is this one); 'stale': an earlier attempt wrote it for another revision (the function
   * changed since): nothing may be sent under it. Throws WriteAheadError when the write fails.
   */
  async writeAhead(decision: Decision, revisionId: string): Promise<'proceed' | 'stale'> {
    const name = this.request.functionName;
    let result: 'written' | 'exists';
    try {
      ({ result } = await this.write(decision));
    } catch (error) {
      this.log.error(`write-ahead audit record failed for ${name}: nothing was changed`, { error: awsMessage(error) });
      throw new WriteAheadError(
        `write-ahead audit record for ${name} failed (${awsMessage(error)}): nothing was changed`,
      );
    }
    if (result === 'written') return 'proceed';
    let earlier = this.runRecords.pending;
    if (earlier === undefined) {
      try {
        const sk = auditSortKey(this.request.startedAt, this.request.runId, AUDIT_STAGE.pending);
        earlier = await getAuditItem(this.rt.auditTableName, name, sk);
      } catch (error) {
        this.log.warn('the earlier write-ahead of this run is unreadable', { error: awsMessage(error) });
      }
    }
    return earlier?.before?.revisionId === revisionId ? 'proceed' : 'stale';
  }
}

function outputOf(item: AuditItem): ProtectOutput {
  return { functionName: item.functionName, outcome: item.outcome as Outcome, reasons: item.reasons };
}

const STALE_WRITE_AHEAD =
  'an earlier attempt of this run recorded its write-ahead for another revision of the function: nothing was changed';

/** The identity of the function's code and configuration, for the back-off (domain/backoff.ts). */
function revisionOf(configuration: FreshFunction['configuration'], rt: Runtime): FunctionRevision {
  return {
    revisionId: typeof configuration.RevisionId === 'string' ? configuration.RevisionId : null,
    codeSha256: typeof configuration['CodeSha256'] === 'string' ? configuration['CodeSha256'] : null,
    engine: engineIdentity(rt),
  };
}

/** The engine deciding: a new version or configuration ends every back-off (domain/backoff.ts). */
function engineIdentity(rt: Runtime): string {
  return `${rt.engineVersion}/${recordSettings(rt).configHash}`;
}

const DELETED_DETAIL = 'deleted during the run: nothing was changed';

/** A fresh read before the change failed: the function was deleted in between, or a fact is unknown. */
function freshReadFailed(error: unknown, call: string, consequence = ''): Decision {
  if (isNotFound(error)) return { outcome: 'SKIPPED', reasons: ['FUNCTION_DELETED'], detail: DELETED_DETAIL };
  return {
    outcome: 'SKIPPED',
    reasons: ['FACTS_MISSING'],
    detail: `${call} failed (${awsMessage(error)}): ${consequence}nothing was changed`,
  };
}

function variablesOf(fresh: FreshFunction): Record<string, string> {
  return fresh.configuration.Environment?.Variables ?? {};
}

function failedChecks(assessment: Assessment): Pick<Decision, 'reasons' | 'warnings' | 'checks'> {
  return { reasons: assessment.reasons, warnings: assessment.warnings, checks: assessment.checks };
}

/** The protect step for one function. */
export async function protect(request: ProtectRequest, rt: Runtime): Promise<ProtectOutput> {
  const { config } = rt;
  const name = request.functionName;
  const recorder = new Recorder(rt, request, request.facts.tags?.[config.audit.ownerTagKey]);

  // A retry (the earlier answer lost): the decision this run already recorded is the answer (issue 9).
  await recorder.loadRunRecords();
  const earlier = recorder.runRecords.decision;
  if (earlier !== undefined) {
    recorder.log.info('already decided in this run (a retry); nothing is done again', { outcome: earlier.outcome });
    return outputOf(earlier);
  }

  // Defensive refusals, before any Lambda call: this handler changes nothing unless every one of these holds.
  await recorder.loadPrevious();
  if (config.mode !== 'protect') {
    return recorder.finish({ outcome: 'WOULD_PROTECT', detail: 'mode is dry-run: nothing was changed' });
  }
  if (rt.engineFunctionPrefix.length > 0 && name.startsWith(rt.engineFunctionPrefix)) {
    return recorder.finish({ outcome: 'SKIPPED', reasons: ['EXCLUDED'], detail: "the engine's own function" });
  }
  if (!request.protectionAllowed) {
    const code = request.protectionBlockedBy ?? 'DEFENDER_LAYER_INVALID';
    return recorder.finish({
      outcome: 'SKIPPED',
      reasons: [code],
      detail:
        code === 'FACTS_MISSING'
          ? 'the Defender layer could not be checked this run: nothing is changed'
          : 'the Defender layer check failed this run: nothing is changed',
    });
  }

  // Protections run one at a time per child workflow, so this invocation takes the child's share.
  const limiters = controlPlaneLimiters(config.rates, workersOf(request.workers, config.rates), systemClock, {
    stateTableName: rt.stateTableName,
  });
  const pacing: Pacing = {
    beforeCall: () => limiters.controlPlane.take(),
    sleep: (ms) => systemClock.sleep(ms),
  };

  // 1. Fresh facts: the configuration, the tags as they are now (a team may have tagged the function for exclusion
  // after the run's inventory), the persistent exclusion and the back-off, all read after the assess step.
  let fresh: FreshFunction;
  let resolved: Record<string, string>;
  let excluded: boolean;
  try {
    fresh = await readFunction(name, { beforeCall: () => limiters.getFunction.take() });
  } catch (error) {
    return recorder.finish(freshReadFailed(error, 'GetFunction'));
  }
  recorder.knowSecrets(Object.values(variablesOf(fresh)));
  let tags: Record<string, string>;
  try {
    const arn =
      typeof fresh.configuration.FunctionArn === 'string' ? fresh.configuration.FunctionArn : request.functionArn;
    tags = await readTags(arn, pacing);
  } catch (error) {
    return recorder.finish(freshReadFailed(error, 'ListTags', 'the exclusion tag cannot be checked; '));
  }
  recorder.setOwner(tags[config.audit.ownerTagKey]);
  try {
    resolved = await resolveDefenderEnvironment(config);
    recorder.knowSecrets(Object.values(resolved));
  } catch (error) {
    return recorder.finish({
      outcome: 'SKIPPED',
      reasons: ['FACTS_MISSING'],
      detail: `our variables cannot be resolved: ${error instanceof Error ? error.message : String(error)}`,
    });
  }
  let rejection: RejectionRecord | undefined;
  try {
    excluded = await isExcluded(rt.stateTableName, name);
    rejection = await readRejection(rt.stateTableName, name);
  } catch (error) {
    return recorder.finish({
      outcome: 'SKIPPED',
      reasons: ['FACTS_MISSING'],
      detail: `the persistent exclusion or the back-off record cannot be read (${awsMessage(error)})`,
    });
  }
  const backoff = rejectionBackoff(rejection, systemClock.now(), revisionOf(fresh.configuration, rt));

  // Issue 10: the function's own TW_POLICY, from the cache or the Prisma Cloud Console, before the funnel runs again
  // (gate 6 then measures the real value). Any failure: nothing is changed.
  const source = config.defender.policySource;
  if (source !== undefined) {
    const arn =
      typeof fresh.configuration.FunctionArn === 'string' ? fresh.configuration.FunctionArn : request.functionArn;
    const region = arnRegion(arn) ?? process.env['AWS_REGION'] ?? '';
    const policy = await defenderPolicy(name, region, {
      source,
      stateTableName: rt.stateTableName,
      workers: workersOf(request.workers, config.rates),
    });
    if (!policy.ok) {
      return recorder.finish({
        outcome: 'SKIPPED',
        reasons: ['DEFENDER_POLICY_UNAVAILABLE'],
        detail: `this function's ${POLICY_VARIABLE} (${region}) is unavailable: ${policy.detail}; nothing was changed`,
      });
    }
    recorder.knowSecrets([policy.value]);
    resolved = { ...resolved, [POLICY_VARIABLE]: policy.value };
    recorder.log.info(`${POLICY_VARIABLE} value ready`, { source: policy.source, cache: policy.cache });
  }

  // Issue 8 items 3 and 7: the MAC key (images keep keyed MACs of our values only) and our variables that hold a
  // value the engine wrote earlier (an outdated Defender configuration, refreshed in place below).
  let mac: MacContext;
  try {
    mac = { key: await macKey(), ourNames: ourVariableNames(config) };
  } catch (error) {
    return recorder.finish({
      outcome: 'SKIPPED',
      reasons: ['FACTS_MISSING'],
      detail: `the MAC key cannot be derived (${awsMessage(error)}): nothing was changed`,
    });
  }
  const earlierPending = recorder.runRecords.pending;
  if (earlierPending?.after !== undefined) {
    // An earlier attempt of this run wrote its write-ahead and may have sent the change before it died.
    const now = configurationImage(fresh.configuration, mac, name);
    if (pendingLanding(now, earlierPending.after, earlierPending.before) === 'landed') {
      return recorder.finish({
        outcome: 'PROTECTED',
        ...(earlierPending.before !== undefined ? { before: earlierPending.before } : {}),
        after: now,
        warnings: earlierPending.warnings as WarningCode[],
        checks: earlierPending.checks,
        detail: 'the change an earlier attempt of this run sent has landed',
      });
    }
  }
  const engineWritten = engineWrittenNames(fresh, mac, name, recorder.previousDigest, config, resolved);

  const facts: FunctionFacts = {
    ...request.facts,
    configuration: fresh.configuration,
    tags,
    reservedConcurrency: fresh.reservedConcurrency,
  };
  // The fresh configuration holds the real values: the inventory's size of them (and its back-off) are stale here.
  delete facts.variablesBytes;
  delete facts.previousRejection;
  // Gate 22 (PREVIOUSLY_REJECTED) skips it while the back-off holds: no slot is claimed, nothing is sent.
  if (backoff.active) facts.previousRejection = { reason: backoff.reason, nextAttemptAt: backoff.nextAttemptAt };
  const funnel: FunnelContext & { engineWritten: ReadonlySet<string> } = {
    config,
    persistentExclusions: excluded ? new Set([name]) : new Set<string>(),
    engineFunctionPrefix: rt.engineFunctionPrefix,
    resolvedEnvironment: resolved,
    engineWritten,
  };
  const assessment = assess(facts, funnel);
  // An older value of the function's own Console policy is ours (the MAC rule) but refreshed only with
  // policySource.refresh: true; otherwise it stays as it is (the refresh plan then sees it as the wanted value).
  const keepOwnPolicy = config.defender.policySource?.refresh !== true;
  const refreshable = new Set(
    [...engineWritten].filter((variable) => !(keepOwnPolicy && isConsoleVariable(config, variable))),
  );
  if (assessment.verdict === 'ALREADY_PROTECTED' && refreshable.size > 0) {
    const kept = [...engineWritten].filter((variable) => !refreshable.has(variable));
    const current = variablesOf(fresh);
    return refreshInPlace({
      rt,
      request,
      recorder,
      fresh,
      resolved: { ...resolved, ...Object.fromEntries(kept.map((variable) => [variable, current[variable] ?? ''])) },
      engineWritten: refreshable,
      mac,
      assessment,
      pacing,
      rejection,
    });
  }
  if (assessment.verdict === 'ALREADY_PROTECTED') {
    return recorder.finish({ outcome: 'ALREADY_PROTECTED', ...failedChecks(assessment), reasons: [] });
  }
  if (assessment.verdict === 'SKIP') {
    return recorder.finish({ outcome: 'SKIPPED', ...failedChecks(assessment), detail: 'fresh facts fail the funnel' });
  }
  // The layer must run on this function as it declares itself.
  const layer = await defenderLayer(config.defender.layerArn, () => limiters.controlPlane.take());
  if (!layer.ok) {
    return recorder.finish({
      outcome: 'SKIPPED',
      ...failedChecks(assessment),
      reasons: [layer.code],
      detail: layer.reason,
    });
  }
  const compatible = layerCompatibleWith(layer.layer, fresh.configuration.Runtime, fresh.configuration.Architectures);
  if (!compatible.ok) {
    return recorder.finish({
      outcome: 'SKIPPED',
      ...failedChecks(assessment),
      reasons: [compatible.code],
      detail: compatible.reason,
    });
  }

  // 2. The plan.
  const plan = planProtection(fresh.configuration, config, resolved);
  if (!plan.ok) {
    return recorder.finish({
      outcome: 'SKIPPED',
      ...failedChecks(assessment),
      reasons: [plan.code],
      detail: plan.problem,
    });
  }
  const revisionId = fresh.configuration.RevisionId;
  if (typeof revisionId !== 'string' || revisionId.length === 0) {
    return recorder.finish({
      outcome: 'SKIPPED',
      ...failedChecks(assessment),
      reasons: ['FACTS_MISSING'],
      detail: 'GetFunction returned no RevisionId: a change without a precondition is never sent',
    });
  }

  // 3. The per-run cap.
  let claimed: boolean;
  try {
    claimed = await holdSlot(rt, request);
  } catch (error) {
    return recorder.finish({
      outcome: 'DEFERRED',
      ...failedChecks(assessment),
      reasons: [],
      detail: `the run's protection counter cannot be updated (${awsMessage(error)}): deferred to the next run`,
    });
  }
  if (!claimed) {
    return recorder.finish({
      outcome: 'DEFERRED',
      ...failedChecks(assessment),
      reasons: [],
      detail: `maxProtectionsPerRun (${config.maxProtectionsPerRun}) reached in this run, or the run no longer holds its lease: deferred to the next run`,
    });
  }

  // 4. Write-ahead, with the before-image and the planned after-image (what our change will produce), so that even a
  // change whose completion is never recorded can be rolled back exactly.
  const before = configurationImage(fresh.configuration, mac, name);
  const planned = applyChange(fresh.configuration, plan.change);
  const plannedAfter = configurationImage({ ...planned, RevisionId: undefined }, mac, name);
  const intent = [
    plan.replacedLayer !== null
      ? `replace layer ${plan.replacedLayer} with ${config.defender.layerArn}`
      : `add layer ${config.defender.layerArn}`,
    plan.addedVariables.length > 0 ? `add variables ${plan.addedVariables.join(', ')}` : '',
    plan.change.Handler !== undefined && plan.change.Handler !== fresh.configuration.Handler
      ? `set handler ${plan.change.Handler}`
      : '',
  ].filter((s) => s.length > 0);
  const ahead = await recorder.writeAhead(
    {
      outcome: 'PENDING',
      ...failedChecks(assessment),
      reasons: [],
      before,
      after: plannedAfter,
      detail: `about to ${intent.join('; ')} (RevisionId ${revisionId})`,
    },
    revisionId,
  );
  if (ahead === 'stale') {
    return recorder.finish({
      outcome: 'SKIPPED',
      ...failedChecks(assessment),
      reasons: ['CHANGED_DURING_RUN'],
      // The function as it is now (without our change: the funnel found it eligible) completes the write-ahead.
      before,
      detail: STALE_WRITE_AHEAD,
    });
  }

  // 5. The change, with the RevisionId just read as a precondition.
  const update = await updateConfiguration(name, plan.change, revisionId, pacing);
  const common = { ...failedChecks(assessment), reasons: [] as ReasonCode[], before };
  const rollbackHint = `to undo: npx zero-impact rollback --function ${name}`;
  let landed = false;
  if (update.status !== 'accepted' && update.status !== 'deleted' && update.uncertain) {
    // The SDK resent the update: an earlier send may have been applied and its answer lost. Look before saying
    // "nothing was changed".
    const look = await waitForUpdate(name, pacing, 1);
    if (look.status === 'deleted') {
      return recorder.finish({ ...common, outcome: 'SKIPPED', reasons: ['FUNCTION_DELETED'], detail: DELETED_DETAIL });
    }
    if (look.configuration === null) {
      return recorder.finish({
        ...common,
        outcome: 'FAILED',
        after: plannedAfter,
        detail: `UpdateFunctionConfiguration was sent more than once and its outcome is unknown (${recorder.scrubAws(update.message)}); the change may have been applied; ${rollbackHint}`,
      });
    }
    recorder.knowSecrets(Object.values(look.configuration.Environment?.Variables ?? {}));
    landed = changeApplied(look.configuration, plan.change);
  }
  const result: UpdateResult = landed ? { status: 'accepted', attempts: 0 } : update;
  switch (result.status) {
    case 'precondition-failed':
      return recorder.finish({
        ...common,
        outcome: 'SKIPPED',
        reasons: ['CHANGED_DURING_RUN'],
        detail: `the function changed after it was read (${result.message}): nothing was changed`,
      });
    case 'conflict':
      return recorder.finish({
        ...common,
        outcome: 'SKIPPED',
        reasons: ['FUNCTION_NOT_READY'],
        detail: `an update was still in progress after ${result.attempts} attempts (${result.message}): nothing was changed`,
      });
    case 'deleted':
      return recorder.finish({ ...common, outcome: 'SKIPPED', reasons: ['FUNCTION_DELETED'], detail: DELETED_DETAIL });
    case 'rejected': {
      const backoffNote = await backOff(rt, recorder, fresh, rejection, result);
      return recorder.finish({
        ...common,
        outcome: 'FAILED',
        nothingChanged: true,
        detail: `UpdateFunctionConfiguration was rejected (${recorder.scrubAws(result.message)}): nothing was changed${backoffNote}`,
      });
    }
    case 'accepted':
      break;
  }

  // 6. Wait until AWS has applied it.
  const waited = await waitForUpdate(name, pacing);
  if (waited.status !== 'deleted' && waited.configuration !== null)
    recorder.knowSecrets(Object.values(waited.configuration.Environment?.Variables ?? {}));
  switch (waited.status) {
    case 'deleted':
      return recorder.finish({
        ...common,
        outcome: 'SKIPPED',
        reasons: ['FUNCTION_DELETED'],
        detail: 'deleted during the run, while its update was applied: there is nothing left to roll back',
      });
    case 'Successful': {
      // The after-image is what our change produced (the fresh configuration with the plan applied), not the next
      // read: a change someone else makes after ours must never look like ours to rollback. Its warnings come from
      // that after-image too (an upgraded Defender is no longer DEFENDER_OUTDATED; a VPC without NAT still is).
      const afterAssessment = assess(
        { ...facts, configuration: { ...planned, State: 'Active', LastUpdateStatus: 'Successful' } },
        funnel,
      );
      return recorder.finish({
        ...common,
        outcome: 'PROTECTED',
        warnings: afterAssessment.warnings,
        after: configurationImage({ ...planned, RevisionId: waited.configuration.RevisionId }, mac, name),
      });
    }
    case 'Failed':
      return recorder.finish({
        ...common,
        outcome: 'FAILED',
        after: configurationImage(waited.configuration, mac, name),
        detail: `the update failed: ${recorder.scrubAws(waited.reason)}. The function is left as AWS left it (not reverted automatically); ${rollbackHint}`,
      });
    case 'timeout':
      return recorder.finish({
        ...common,
        outcome: 'FAILED',
        ...(waited.configuration !== null ? { after: configurationImage(waited.configuration, mac, name) } : {}),
        detail: `update did not complete within ${waited.polls} checks${
          waited.lastError !== null ? ` (last error: ${recorder.scrubAws(waited.lastError)})` : ''
        }; the function may carry the change; ${rollbackHint}`,
      });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Issue 8 item 7 (SECRETS): an outdated Defender configuration, refreshed in place.

/**
 * Our variables whose current value is one the engine wrote earlier (its MAC equals the one the last-decision digest
 * keeps from the latest protection) and differs from the value configured now.
 */
function engineWrittenNames(
  fresh: FreshFunction,
  mac: MacContext,
  name: string,
  previous: DecisionDigest | undefined,
  config: Config,
  resolved: Readonly<Record<string, string>>,
): Set<string> {
  const written = previous?.ourValueMacs ?? {};
  const vars = isRecord(fresh.configuration.Environment?.Variables) ? variablesOf(fresh) : {};
  const found = new Set<string>();
  for (const variable of Object.keys(defenderVariables(config))) {
    const value = vars[variable];
    const recorded = written[variable];
    if (typeof value !== 'string' || recorded === undefined || value === resolved[variable]) continue;
    if (valueMac(mac.key, name, variable, value) === recorded) found.add(variable);
  }
  return found;
}

/**
 * After a deterministic rejection, stores the function's back-off (domain/backoff.ts) and says so for the record;
 * '' when the rejection is not deterministic or the record could not be stored (the next run then tries again).
 */
async function backOff(
  rt: Runtime,
  recorder: Recorder,
  fresh: FreshFunction,
  rejection: RejectionRecord | undefined,
  result: { message: string; errorName: string },
): Promise<string> {
  if (!DETERMINISTIC_REJECTIONS.has(result.errorName)) return '';
  const name = recorder.functionName;
  const next = nextRejection(
    rejection,
    systemClock.now(),
    recorder.scrubAws(result.message),
    revisionOf(fresh.configuration, rt),
  );
  try {
    await putRejection(rt.stateTableName, name, next);
  } catch (error) {
    recorder.log.error('back-off record not stored; the next run tries again', { error: awsMessage(error) });
    return '';
  }
  return `; not tried again before ${next.nextAttemptAt} unless the function changes`;
}

/** Gate 23's warning (contract: WARNING_CODES gains it). */
const CONFIG_OUTDATED = 'DEFENDER_CONFIG_OUTDATED' as WarningCode;

interface RefreshInput {
  rt: Runtime;
  request: ProtectRequest;
  recorder: Recorder;
  fresh: FreshFunction;
  resolved: Record<string, string>;
  engineWritten: ReadonlySet<string>;
  mac: MacContext;
  assessment: Assessment;
  pacing: Pacing;
  /** The function's back-off record, if any (a rejected refresh backs off like a rejected protection). */
  rejection: RejectionRecord | undefined;
}

/**
 * Replaces our outdated values in place (only those variables; layers, handler and every other variable stay byte
 * for byte): a slot, the previous values encrypted into the state table (RESTORE#<function>#<runId>, for an exact
 * rollback), the write-ahead PENDING item, the update with the RevisionId just read, the bounded wait. Whenever the
 * refresh is not done, the function is recorded ALREADY_PROTECTED with DEFENDER_CONFIG_OUTDATED.
 */
async function refreshInPlace(input: RefreshInput): Promise<ProtectOutput> {
  const { rt, request, recorder, fresh, resolved, engineWritten, mac, assessment, pacing, rejection } = input;
  const { config } = rt;
  const name = request.functionName;
  const checks = assessment.checks;
  const warnings: WarningCode[] = assessment.warnings.includes(CONFIG_OUTDATED)
    ? assessment.warnings
    : [...assessment.warnings, CONFIG_OUTDATED];
  const outdated = (detail: string): Promise<ProtectOutput> =>
    recorder.finish({ outcome: 'ALREADY_PROTECTED', reasons: [], warnings, checks, detail });

  if (assessment.reasons.length > 0) {
    // A refresh is an update like any other: it is sent only when every gate passes on the fresh facts.
    return outdated(`not refreshed: ${assessment.reasons.join(', ')} on the fresh facts`);
  }
  const plan = planRefresh(fresh.configuration, config, resolved, engineWritten);
  if (!plan.ok)
    return recorder.finish({ outcome: 'SKIPPED', reasons: [plan.code], warnings, checks, detail: plan.problem });
  if (plan.change === null) return outdated('nothing to refresh');
  const revisionId = fresh.configuration.RevisionId;
  if (typeof revisionId !== 'string' || revisionId.length === 0) {
    return outdated('GetFunction returned no RevisionId: the refresh is not sent without a precondition');
  }
  let claimed = false;
  try {
    claimed = await holdSlot(rt, request);
  } catch (error) {
    return outdated(`the run's protection counter cannot be updated (${awsMessage(error)}): refresh deferred`);
  }
  if (!claimed)
    return outdated(
      `maxProtectionsPerRun (${config.maxProtectionsPerRun}) reached, or the lease lost: refresh deferred`,
    );

  const vars = variablesOf(fresh);
  const previous = Object.fromEntries(plan.refreshed.map((variable) => [variable, vars[variable] ?? '']));
  try {
    await putRestore(rt.stateTableName, {
      functionName: name,
      runId: request.runId,
      createdAt: new Date(systemClock.now()).toISOString(),
      previous,
    });
  } catch (error) {
    return outdated(`the previous values cannot be stored for rollback (${awsMessage(error)}): nothing was changed`);
  }
  const before = configurationImage(fresh.configuration, mac, name);
  const planned = applyChange(fresh.configuration, plan.change);
  const plannedAfter = configurationImage({ ...planned, RevisionId: undefined }, mac, name);
  const ahead = await recorder.writeAhead(
    {
      outcome: 'PENDING',
      reasons: [],
      warnings,
      checks,
      before,
      after: plannedAfter,
      detail: `about to refresh variables ${plan.refreshed.join(', ')} in place (RevisionId ${revisionId})`,
    },
    revisionId,
  );
  if (ahead === 'stale') {
    return recorder.finish({
      outcome: 'SKIPPED',
      reasons: ['CHANGED_DURING_RUN'],
      warnings,
      checks,
      before,
      detail: STALE_WRITE_AHEAD,
    });
  }

  const rollbackHint = `to undo: npx zero-impact rollback --function ${name}`;
  const common = { reasons: [] as ReasonCode[], warnings, checks, before };
  const update = await updateConfiguration(name, plan.change, revisionId, pacing);
  if (update.status === 'deleted') {
    return recorder.finish({ ...common, outcome: 'SKIPPED', reasons: ['FUNCTION_DELETED'], detail: DELETED_DETAIL });
  }
  if (update.status !== 'accepted') {
    if (update.uncertain) {
      return recorder.finish({
        ...common,
        outcome: 'FAILED',
        after: plannedAfter,
        detail: `the refresh was sent more than once and its outcome is unknown (${recorder.scrubAws(update.message)}); the change may have been applied; ${rollbackHint}`,
      });
    }
    if (update.status === 'precondition-failed') {
      return recorder.finish({
        ...common,
        outcome: 'SKIPPED',
        reasons: ['CHANGED_DURING_RUN'],
        detail: 'the function changed after it was read: nothing was changed',
      });
    }
    if (update.status === 'conflict') {
      return recorder.finish({
        ...common,
        outcome: 'SKIPPED',
        reasons: ['FUNCTION_NOT_READY'],
        detail: 'an update was still in progress: nothing was changed',
      });
    }
    const backoffNote = update.status === 'rejected' ? await backOff(rt, recorder, fresh, rejection, update) : '';
    return recorder.finish({
      ...common,
      outcome: 'FAILED',
      nothingChanged: true,
      detail: `the refresh was rejected (${recorder.scrubAws(update.message)}): nothing was changed${backoffNote}`,
    });
  }
  const waited = await waitForUpdate(name, pacing);
  if (waited.status === 'deleted') {
    return recorder.finish({ ...common, outcome: 'SKIPPED', reasons: ['FUNCTION_DELETED'], detail: DELETED_DETAIL });
  }
  if (waited.status === 'Successful') {
    return recorder.finish({
      ...common,
      warnings: assessment.warnings.filter((w) => w !== CONFIG_OUTDATED),
      outcome: 'PROTECTED',
      after: configurationImage({ ...planned, RevisionId: waited.configuration.RevisionId }, mac, name),
      detail: `refreshed variables ${plan.refreshed.join(', ')} in place`,
    });
  }
  return recorder.finish({
    ...common,
    outcome: 'FAILED',
    after: waited.configuration !== null ? configurationImage(waited.configuration, mac, name) : plannedAfter,
    detail: `the refresh did not complete (${waited.status === 'Failed' ? recorder.scrubAws(waited.reason) : 'no answer in time'}); the function may carry it; ${rollbackHint}`,
  });
}

/** Step Functions task: ProtectRequest in, ProtectOutput out. */
export const handler = async (event: unknown, context?: Context): Promise<ProtectOutput> => {
  const request = parseProtectRequest(event);
  startInvocation({ runId: request.runId, functionName: request.functionName }, context);
  return protect(request, runtime());
};
