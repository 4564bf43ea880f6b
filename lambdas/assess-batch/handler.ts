/**
 * Assess batch (Distributed Map child): gathers the facts of a batch of inventory items as cheaply as the data
 * allows, runs the funnel, records every decision that is final here, and returns the eligible functions for the
 * protect step.
 *
 * 1. previous decisions (state table, one BatchGetItem per 100 functions); our `{ ssmParameter }` values, read-only
 *    (SSM GetParameter through Powertools, cached in the container), so that dry-run decides as protect does
 *    (issue 8 item 9); the values stay in memory: only the funnel sees them, no record, log or payload carries them;
 *    a value that cannot be read makes gate 16 say "value not resolved" (FACTS_MISSING) where it matters;
 * 2. the funnel on the inventory's facts (domain/screening.ts); only functions it does not already skip or find
 *    protected are candidates for the expensive reads: Throttles and ConcurrentExecutions (one GetMetricData call
 *    per 250 candidates; issue 11: never for the others), DescribeRouteTables (VPC functions, cached per subnet for the run),
 *    ListProvisionedConcurrencyConfigs, GetFunctionCodeSigningConfig and GetCodeSigningConfig (cached per config)
 *    (paced by this worker's share of the control plane), GetFunction (its own quota), and the candidates' back-off
 *    records (state table REJECT# items, one BatchGetItem per 100 candidates);
 *    ALREADY_PROTECTED functions get GetFunction too, for their readiness: a failed last update is recorded as
 *    ALREADY_PROTECTED with warning PROTECTION_UNHEALTHY every run until healthy (metric ProtectionUnhealthy);
 * 4. the funnel on the complete facts, then per function:
 *    SKIP → SKIPPED (SNS when new or changed, or always with notifications.skips "always");
 *    ALREADY_PROTECTED → ALREADY_PROTECTED (warnings such as DEFENDER_OUTDATED kept, no SNS);
 *    ELIGIBLE → WOULD_PROTECT in dry-run; SKIPPED with DEFENDER_LAYER_INVALID when the run's layer check failed;
 *    otherwise returned in `eligible` (the protect Lambda records it);
 *    a function whose processing throws → FAILED (the rest of the batch goes on); a decision the audit table refuses
 *    fails the whole invocation at the end (AuditWriteError), after every other function was recorded, so that the
 *    state machine's retry (and then record-failure) records it;
 * 5. the digests of what was recorded (state table), for repeat detection and changed-only notifications.
 *
 * Exactly once (issue 9): each decision is a conditional put on the run's `decision` key (domain/audit.ts), so a
 * retry of a batch that crashed after some of its writes writes, publishes and digests only the functions not yet
 * decided; a notice is published only by the write that succeeded, and a digest kept only after its publish.
 */
import { getParameter } from '@aws-lambda-powertools/parameters/ssm';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { Context } from 'aws-lambda';
import { POLICY_VARIABLE } from '../shared/domain/config';
import { putAuditItem, putRepeats, repeatsOfBatch } from '../shared/adapters/audit-store';
import {
  codeSigningPolicy,
  functionStatus,
  provisionedConcurrencyConfigs,
  type CodeSigningCache,
  type FunctionStatus,
  type ReadFailure,
} from '../shared/adapters/function-details';
import { functionMetrics } from '../shared/adapters/metrics';
import { publishNotice } from '../shared/adapters/notifier';
import { controlPlaneLimiters, systemClock } from '../shared/adapters/rate-limiter';
import { rejectionRecords } from '../shared/adapters/rejections';
import { readCachedPolicies } from '../shared/adapters/policy-cache';
import {
  claimSlotFor,
  lastDecisions,
  putLastDecisions,
  releaseSlotFor,
  runCounterExpiry,
  type StoredDigest,
} from '../shared/adapters/state-store';
import { resolveEgress, type VpcFunction } from '../shared/adapters/vpc';
import { rejectionBackoff, type RejectionRecord } from '../shared/domain/backoff';
import { workersOf } from '../shared/domain/batching';
import {
  arnParts,
  AUDIT_STAGE,
  auditSortKey,
  CHANGE_OUTCOMES,
  decisionItem,
  nextDigest,
  sameDecision,
  type DecisionDigest,
} from '../shared/domain/audit';
import {
  CARRIED_SKIPS,
  factsFingerprint,
  needsFullRecord,
  recheckDue,
  repeatsItems,
  type RepeatEntry,
} from '../shared/domain/repeats';
import { arnRegion, assess, type FunnelContext } from '../shared/domain/funnel';
import { decisionNotice } from '../shared/domain/notice';
import {
  candidateFacts,
  hasSubnets,
  protectedWithStatus,
  screen,
  type CandidateFacts,
  type CheapFacts,
  type Screening,
} from '../shared/domain/screening';
import {
  isRecord,
  type Assessment,
  type AssessBatchInput,
  type AssessBatchOutput,
  type AuditItem,
  type InventoryItem,
  type Outcome,
  type ProtectRequest,
  type RunContext,
  type VpcEgress,
} from '../shared/domain/types';
import { logger, startInvocation } from '../shared/observability';
import { emitCounts, emitMetric, errorSummary, increment, recordSettings, withRetries } from '../shared/recording';
import { keepInOutbox } from '../shared/notices';
import { runtime, type Runtime } from '../shared/runtime';

/** Thrown at the end of a batch some of whose decisions could not be written (the state machine retries it). */
export class AuditWriteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AuditWriteError';
  }
}

/** Per-invocation metrics (the run totals `Decisions`/`Skips` come from finish-run). */
export const BATCH_METRICS = {
  decisions: { name: 'BatchDecisions', dimension: 'Outcome' },
  skips: { name: 'BatchSkips', dimension: 'Reason' },
} as const;

const UNNAMED = '(unnamed function)';

/** How long a resolved SSM value is cached in the container (the protect Lambda uses the same). */
const SSM_MAX_AGE_SECONDS = 300;

/**
 * Our `{ ssmParameter }` values, read-only (SecureStrings decrypted). A value that cannot be read is left out: the
 * funnel then says "value not resolved" wherever it matters. Values are returned, never logged.
 */
export async function resolveOurParameters(config: Runtime['config']): Promise<Record<string, string>> {
  const resolved: Record<string, string> = {};
  for (const [name, source] of Object.entries(config.defender.environment)) {
    if (typeof source === 'string') continue;
    try {
      const value = await getParameter(source.ssmParameter, { decrypt: true, maxAge: SSM_MAX_AGE_SECONDS });
      if (typeof value === 'string') resolved[name] = value;
      else logger.warn('SSM parameter has no value; it counts as not resolved', { variable: name });
    } catch (error) {
      logger.warn('SSM parameter unreadable; it counts as not resolved', {
        variable: name,
        parameter: source.ssmParameter,
        error: error instanceof Error ? error.name : 'Error',
      });
    }
  }
  return resolved;
}

const ssm = new SSMClient({});
const versionCache = new Map<string, { version: number; until: number }>();

/** Forgets the cached versions (tests: a new container). */
export function forgetParameterVersions(): void {
  versionCache.clear();
}

/**
 * The Version of each of our `{ ssmParameter }` values (issue 11: identifiers, not values, for the facts fingerprint:
 * an unchanged protected function's decision is carried only while our values are unchanged too). Read without
 * decryption and cached in the container like the values (Powertools' getParameter returns the value only). A
 * version that cannot be read is absent: nothing is carried then.
 */
export async function ourParameterVersions(config: Runtime['config']): Promise<Record<string, number> | undefined> {
  const versions: Record<string, number> = {};
  for (const [name, source] of Object.entries(config.defender.environment)) {
    if (typeof source === 'string') continue;
    const now = systemClock.now();
    const cached = versionCache.get(source.ssmParameter);
    if (cached !== undefined && cached.until > now) {
      versions[name] = cached.version;
      continue;
    }
    try {
      const out = await ssm.send(new GetParameterCommand({ Name: source.ssmParameter, WithDecryption: false }));
      const version = out.Parameter?.Version;
      if (typeof version !== 'number') return undefined;
      versionCache.set(source.ssmParameter, { version, until: now + SSM_MAX_AGE_SECONDS * 1000 });
      versions[name] = version;
    } catch {
      return undefined;
    }
  }
  return versions;
}

interface Entry {
  item: InventoryItem;
  name: string;
  /** The redacted facts: what is recorded and handed to protect. */
  cheap: CheapFacts;
  /**
   * What the funnel decides on: `cheap` with the real values of our SSM-sourced variables put back (read by
   * GetFunction, in memory only), so that it compares them with our resolved values as protect does (item 9).
   */
  view: CheapFacts;
  /** The funnel's context for this function (without the resolved values it could not compare). */
  funnel: FunnelContext;
  /** GetFunction, when it was read before screening. */
  status?: FunctionStatus;
  /** True once this run read the function's expensive facts (candidate reads, or a protected function's readiness). */
  checked?: boolean;
}

interface Decision {
  outcome: Outcome | 'ELIGIBLE';
  assessment: Assessment;
  reasons: string[];
  request?: ProtectRequest;
  /** Recorded with the decision (never a variable value). */
  detail?: string;
}

/** A function and what the funnel says on the facts read so far. */
interface Screened {
  entry: Entry;
  screening: Screening;
}

/** A function's decision waiting to be recorded (or the error its processing threw). */
type Decided = { entry: Entry; decision: Decision & { outcome: Outcome } } | { entry: Entry; error: unknown };

/**
 * Our variables whose current value the engine wrote earlier (issue 8 item 7): the inventory's keyed MAC of the value
 * equals the MAC recorded with the function's last protection. Values are never seen here, only MACs.
 */
function engineWrittenOf(item: InventoryItem | undefined, previous: DecisionDigest | undefined): Set<string> {
  const current = item?.ourValueMacs;
  const recorded = previous?.ourValueMacs;
  if (!isRecordOfStrings(current) || recorded === undefined) return new Set();
  return new Set(
    Object.keys(current).filter((name) => recorded[name] !== undefined && recorded[name] === current[name]),
  );
}

function isRecordOfStrings(value: unknown): value is Record<string, string> {
  return isRecord(value) && Object.values(value).every((v) => typeof v === 'string');
}

/** The owner tag alone (a request stays small however many tags the function has: MAX_PROTECTIONS_PER_RUN). */
function ownerOnly(tags: Record<string, string> | undefined, key: string): Record<string, string> {
  const owner = tags?.[key];
  return typeof owner === 'string' ? { [key]: owner } : {};
}

function nameOf(item: InventoryItem): string {
  const name = item?.configuration?.FunctionName;
  return typeof name === 'string' && name.length > 0 ? name : UNNAMED;
}

function vpcFunction(entry: Entry): VpcFunction {
  const vpc = entry.cheap.configuration.VpcConfig;
  const subnetIds = Array.isArray(vpc?.SubnetIds) ? vpc.SubnetIds.filter((s) => typeof s === 'string') : [];
  const fn: VpcFunction = { subnetIds };
  if (typeof vpc?.VpcId === 'string') fn.vpcId = vpc.VpcId;
  return fn;
}

class BatchRun {
  private readonly config: Runtime['config'];
  private readonly settings: ReturnType<typeof recordSettings>;
  /** This worker's share of the budget: `run.workers` workers run at once (domain/batching.ts). */
  private readonly limiters: ReturnType<typeof controlPlaneLimiters>;
  readonly counts = new Map<string, number>();
  readonly skips = new Map<string, number>();
  readonly digests: Array<{ functionName: string; digest: DecisionDigest; decidedAt: string }> = [];
  readonly eligible: ProtectRequest[] = [];
  /** Functions whose decision (and its FAILED fallback) could not be written: the batch fails for a retry. */
  readonly unrecorded: string[] = [];
  /** The batch's decisions, recorded together by `recordAll` (repeats first, in one item). */
  readonly decided: Decided[] = [];
  private readonly codeSigningCache: CodeSigningCache = new Map();

  constructor(
    private readonly rt: Runtime,
    private readonly run: RunContext,
    private readonly previous: ReadonlyMap<string, DecisionDigest>,
    /** False when the previous digests could not be read: no notice is published (or marked) from this batch. */
    private readonly previousKnown = true,
  ) {
    this.config = rt.config;
    this.settings = recordSettings(rt);
    this.limiters = controlPlaneLimiters(this.config.rates, workersOf(run.workers, this.config.rates), systemClock, {
      stateTableName: rt.stateTableName,
    });
  }

  /** GetFunction before screening, keeping the real values of `keep` in memory (issue 8 item 9). */
  async readStatus(entry: Entry, keep: readonly string[]): Promise<FunctionStatus | undefined> {
    const arn = entry.cheap.configuration.FunctionArn ?? entry.name;
    entry.checked = true;
    return functionStatus(
      arn,
      this.limiters.getFunction,
      (failure) => logger.warn('read failed; the fact is missing', { functionName: entry.name, ...failure }),
      keep,
    );
  }

  get controlPlaneCalls(): number {
    return this.limiters.controlPlane.taken;
  }

  get getFunctionCalls(): number {
    return this.limiters.getFunction.taken;
  }

  /**
   * Step 2 for one candidate: the expensive reads, then the funnel on the complete facts.
   * @param rejections the candidates' back-off records; undefined when they could not be read
   */
  async decideCandidate(
    entry: Entry,
    egressOf: (fn: VpcFunction) => VpcEgress | undefined,
    rejections: ReadonlyMap<string, RejectionRecord> | undefined,
  ) {
    const arn = entry.cheap.configuration.FunctionArn ?? entry.name;
    entry.checked = true;
    const onError = (failure: ReadFailure): void =>
      logger.warn('read failed; the fact is missing', { functionName: entry.name, ...failure });
    const read: CandidateFacts = {};
    const configs = await provisionedConcurrencyConfigs(arn, this.limiters.controlPlane, onError);
    if (configs !== undefined) read.provisionedConcurrencyConfigs = configs;
    const status = entry.status ?? (await functionStatus(arn, this.limiters.getFunction, onError));
    if (status !== undefined) {
      read.reservedConcurrency = status.reservedConcurrency;
      if (status.state !== undefined) read.state = status.state;
      if (status.lastUpdateStatus !== undefined) read.lastUpdateStatus = status.lastUpdateStatus;
    }
    const signing = await codeSigningPolicy(arn, this.limiters.controlPlane, this.codeSigningCache, onError);
    if (signing !== undefined) read.codeSigning = signing;
    if (rejections === undefined) read.rejectionsReadable = false;
    else {
      const backoff = rejectionBackoff(rejections.get(entry.name), systemClock.now(), {
        revisionId: status?.revisionId ?? null,
        codeSha256: status?.codeSha256 ?? null,
        engine: `${this.settings.engineVersion}/${this.settings.configHash}`,
      });
      if (backoff.active) read.previousRejection = { reason: backoff.reason, nextAttemptAt: backoff.nextAttemptAt };
    }
    const attached = hasSubnets(entry.cheap.configuration);
    if (attached) {
      const egress = egressOf(vpcFunction(entry));
      if (egress !== undefined) read.vpcEgress = egress;
    }
    const facts = candidateFacts(entry.cheap, read, attached);
    return { facts, assessment: assess(candidateFacts(entry.view, read, attached), entry.funnel) };
  }

  /** An ALREADY_PROTECTED function: GetFunction for its readiness (ListFunctions omits LastUpdateStatus). */
  async decideProtected(entry: Entry, screening: Screening): Promise<Assessment> {
    const arn = entry.cheap.configuration.FunctionArn ?? entry.name;
    // Issue 11: an unchanged, healthy protected function's readiness is read once a day, not every hour.
    const due = recheckDue(
      this.previousKnown ? this.previous.get(entry.name) : undefined,
      { outcome: 'ALREADY_PROTECTED', fingerprint: this.fingerprintOf(entry), unlessWarning: 'PROTECTION_UNHEALTHY' },
      systemClock.now(),
    );
    if (entry.status === undefined && !due) return screening.assessment;
    entry.checked = true;
    const status =
      entry.status ??
      (await functionStatus(arn, this.limiters.getFunction, (failure) =>
        logger.warn('readiness of a protected function unreadable', { functionName: entry.name, ...failure }),
      ));
    if (status === undefined) return screening.assessment;
    const readiness: Parameters<typeof protectedWithStatus>[2] = {};
    if (status.state !== undefined) readiness.state = status.state;
    if (status.lastUpdateStatus !== undefined) readiness.lastUpdateStatus = status.lastUpdateStatus;
    if (status.stateReason !== undefined) readiness.stateReason = status.stateReason;
    if (status.lastUpdateStatusReason !== undefined) readiness.lastUpdateStatusReason = status.lastUpdateStatusReason;
    return protectedWithStatus(entry.view, screening, readiness, entry.funnel);
  }

  /** True when candidates claim one of the run's protection slots before their expensive reads (protect mode). */
  get claimsSlots(): boolean {
    return this.config.mode === 'protect' && this.run.protectionAllowed;
  }

  private readonly slots = new Set<string>();

  /** Claims a slot for this candidate (idempotent per function: a retried batch finds its own claims). */
  async claimSlot(entry: Entry): Promise<boolean> {
    try {
      const claimed = await claimSlotFor(this.rt.stateTableName, {
        runId: this.run.runId,
        functionName: entry.name,
        max: this.config.maxProtectionsPerRun,
        expiresAt: runCounterExpiry(this.run.startedAt),
        now: systemClock.now(),
      });
      if (claimed) this.slots.add(entry.name);
      return claimed;
    } catch (error) {
      // The counter cannot be read or updated: defer (nothing is changed without a slot).
      logger.warn('protection slot cannot be claimed; the candidate is deferred', {
        functionName: entry.name,
        error: errorSummary(error),
      });
      return false;
    }
  }

  /** Gives back the slot of a candidate that will not be changed (a skip after the expensive reads). */
  async releaseSlot(entry: Entry): Promise<void> {
    if (!this.slots.delete(entry.name)) return;
    await releaseSlotFor(this.rt.stateTableName, this.run.runId, entry.name).catch((error: unknown) => {
      logger.warn('protection slot not given back; the run may protect one function fewer', {
        functionName: entry.name,
        error: errorSummary(error),
      });
    });
  }

  /**
   * A decision carried from the function's previous one (issue 11: unchanged facts, read within the day): its
   * outcome, reasons and warnings; `checks` are only what this run looked at (the repeat points at the full item).
   */
  carried(
    entry: Entry,
    before: DecisionDigest,
    outcome: 'ALREADY_PROTECTED' | 'WOULD_PROTECT' | 'SKIPPED',
    checks: Assessment['checks'] = [],
  ): Decision & { outcome: Outcome } {
    const reasons = outcome === 'WOULD_PROTECT' ? [] : (before.reasons as Assessment['reasons']);
    const verdict = outcome === 'SKIPPED' ? 'SKIP' : outcome === 'WOULD_PROTECT' ? 'ELIGIBLE' : 'ALREADY_PROTECTED';
    const assessment: Assessment = {
      functionName: entry.name,
      functionArn: entry.cheap.configuration.FunctionArn ?? null,
      verdict,
      reasons,
      warnings: before.warnings as Assessment['warnings'],
      checks,
    };
    return { outcome, assessment, reasons };
  }

  /** A candidate over the run's cap: DEFERRED on its cheap facts (no expensive read, no protect step, no notice). */
  deferred(assessment: Assessment): Decision {
    const max = this.config.maxProtectionsPerRun;
    return {
      outcome: 'DEFERRED',
      assessment,
      reasons: [],
      detail: `maxProtectionsPerRun (${max}) reached in this run, or the run no longer holds its lease: deferred to the next run`,
    };
  }

  /** The outcome of a final assessment. */
  decide(entry: Entry, assessment: Assessment, facts?: ProtectRequest['facts']): Decision {
    if (assessment.verdict === 'SKIP') return { outcome: 'SKIPPED', assessment, reasons: assessment.reasons };
    // An outdated value the engine wrote (issue 8 item 7) is refreshed in place by the protect step, in protect
    // mode and when the run may change functions; otherwise it is recorded ALREADY_PROTECTED with the warning.
    const refresh =
      assessment.verdict === 'ALREADY_PROTECTED' &&
      assessment.warnings.includes('DEFENDER_CONFIG_OUTDATED') &&
      this.config.mode === 'protect' &&
      this.run.protectionAllowed &&
      assessment.reasons.length === 0;
    if (assessment.verdict === 'ALREADY_PROTECTED' && !refresh) {
      return { outcome: 'ALREADY_PROTECTED', assessment, reasons: assessment.reasons };
    }
    if (this.config.mode === 'dry-run') return { outcome: 'WOULD_PROTECT', assessment, reasons: [] };
    if (!this.run.protectionAllowed) {
      return { outcome: 'SKIPPED', assessment, reasons: [this.run.protectionBlockedBy ?? 'DEFENDER_LAYER_INVALID'] };
    }
    if (facts === undefined) throw new Error('eligible without complete facts');
    return {
      outcome: 'ELIGIBLE',
      assessment,
      reasons: [],
      request: {
        runId: this.run.runId,
        startedAt: this.run.startedAt,
        protectionAllowed: this.run.protectionAllowed,
        workers: workersOf(this.run.workers, this.config.rates),
        functionName: entry.name,
        functionArn: assessment.functionArn ?? entry.cheap.configuration.FunctionArn ?? '',
        // Protect re-reads the configuration (GetFunction) before changing anything, so the request carries only
        // the gathered facts and the function's identity: 50 eligible functions stay far below the 256 KiB
        // state payload limit however large their variables are.
        facts: {
          ...facts,
          configuration: {
            FunctionName: facts.configuration.FunctionName,
            FunctionArn: facts.configuration.FunctionArn,
          },
          // Protect re-reads the tags (ListTags); the owner tag only names the owner in its records until then.
          tags: ownerOnly(facts.tags, this.config.audit.ownerTagKey),
        },
      },
    };
  }

  /**
   * Writes the audit item of a decision, publishes it when due, and keeps its digest. A retry of this batch (Step
   * Functions runs it again after a crash) finds the decision already written (the conditional put on the run's
   * `decision` key answers 'exists'): it counts the function as before but neither publishes nor keeps a digest
   * again. The digest is kept only once the notice (when due) is published: a failed publish is sent next run.
   */
  async record(entry: Entry, decision: Decision & { outcome: Outcome }, detail?: string): Promise<void> {
    const { outcome, assessment, reasons } = decision;
    // The MACs of what the engine wrote (issue 8 item 7) are carried forward from the previous digest.
    const decided = nextDigest(this.previous.get(entry.name), { outcome, reasons, warnings: assessment.warnings });
    const previous = this.previous.get(entry.name);
    const alwaysNotified = outcome === 'SKIPPED' && this.config.notifications.skips === 'always';
    const owner = entry.cheap.tags[this.config.audit.ownerTagKey];
    const decidedAt = new Date(systemClock.now()).toISOString();
    const item = decisionItem(
      {
        functionName: entry.name,
        functionArn: assessment.functionArn ?? entry.cheap.configuration.FunctionArn ?? null,
        runId: this.run.runId,
        runStartedAt: this.run.startedAt,
        decidedAt,
        mode: this.config.mode,
        outcome,
        reasons,
        warnings: assessment.warnings,
        checks: assessment.checks,
        ...(owner !== undefined ? { owner } : {}),
        ...(detail !== undefined ? { detail } : {}),
        ...(previous !== undefined ? { previous } : {}),
        // Later unchanged repeats point at this item (domain/repeats.ts): it keeps the full retention.
        referenced: !alwaysNotified,
      },
      this.settings,
    );
    // The digest names this item and the facts it was decided on: the next identical decision is a compact repeat.
    const fingerprint = this.fingerprintOf(entry);
    const checkedAt = entry.checked === true ? decidedAt : previous?.checkedAt;
    const digest: DecisionDigest = {
      ...decided,
      ...(fingerprint !== undefined && outcome !== 'FAILED' ? { fingerprint } : {}),
      recordedAs: item.sk,
      ...(item.expiresAt !== undefined ? { recordedUntil: item.expiresAt } : {}),
      ...(checkedAt !== undefined && outcome !== 'FAILED' ? { checkedAt } : {}),
    };
    const written = await putAuditItem(this.rt.auditTableName, item);
    increment(this.counts, outcome);
    if (outcome === 'SKIPPED') for (const reason of reasons) increment(this.skips, reason);
    if (written === 'exists') {
      logger.info('decision already recorded in this run (a retry); nothing written or published again', {
        functionName: entry.name,
        outcome,
      });
      return;
    }
    logger.info('decision recorded', {
      functionName: entry.name,
      outcome,
      reasons,
      warnings: assessment.warnings,
      repeat: item.repeat,
    });

    const notify =
      outcome === 'FAILED' ||
      (outcome === 'SKIPPED' && (this.config.notifications.skips === 'always' || !sameDecision(previous, digest)));
    if (!this.previousKnown) {
      // Repeat or new cannot be told: the item owes its notice (repeat false) and the outbox drain decides.
      await this.keepRunInOutbox();
      return;
    }
    if (!notify) {
      this.digests.push({ functionName: entry.name, digest, decidedAt });
      return;
    }
    if (!(await this.publish(item))) return; // not marked sent: the outbox drain sends it (shared/notices.ts)
    // Marked sent at once, not at the batch's end: a batch that dies later must not leave sent notices unmarked
    // (the drain would send them again).
    await withRetries('storing the last-decision digest', () =>
      putLastDecisions(this.rt.stateTableName, [{ functionName: entry.name, digest, decidedAt }]),
    ).catch((error: unknown) => {
      logger.error('notice sent but not marked; it may be sent again', { error: errorSummary(error) });
    });
  }

  /** Our SSM parameters' versions this run (undefined: unknown), part of every fingerprint. */
  ssmVersions: Record<string, number> | undefined;

  fingerprintOf(entry: Entry): string | undefined {
    return factsFingerprint(entry.cheap.configuration, entry.cheap.tags, this.settings, this.config.mode, [
      this.ssmVersions ?? null,
      entry.item?.persistentlyExcluded === true,
      entry.cheap.lambdaEdge === true,
    ]);
  }

  /**
   * A decision recorded in the batch's repeats item instead of a full item (domain/repeats.ts, issue 11): it repeats
   * the previous one exactly, on the same facts fingerprint, changes nothing, owes no notice, and the full item it
   * points at outlives the repeats item.
   */
  private repeatOf(entry: Entry, decision: Decision & { outcome: Outcome }, now: number): RepeatEntry | undefined {
    const previous = this.previous.get(entry.name);
    const { outcome, reasons, assessment } = decision;
    if (!this.previousKnown || previous === undefined || previous.recordedAs === undefined) return undefined;
    // A digest this run already wrote (a retried batch whose first attempt recorded the function in full): that item
    // is the run's decision, and the full path finds it ('exists').
    if (previous.recordedAs === auditSortKey(this.run.startedAt, this.run.runId, AUDIT_STAGE.decision))
      return undefined;
    if (CHANGE_OUTCOMES.has(outcome) || entry.name === UNNAMED) return undefined;
    if (outcome === 'SKIPPED' && this.config.notifications.skips === 'always') return undefined;
    const fingerprint = this.fingerprintOf(entry);
    if (fingerprint === undefined || previous.fingerprint !== fingerprint) return undefined;
    if (needsFullRecord(previous, now, this.settings)) return undefined;
    if (!sameDecision(previous, { outcome, reasons, warnings: assessment.warnings })) return undefined;
    const owner = entry.cheap.tags[this.config.audit.ownerTagKey];
    return {
      functionName: entry.name,
      outcome,
      reasons,
      warnings: assessment.warnings,
      sameAs: previous.recordedAs,
      ...(owner !== undefined ? { owner } : {}),
    };
  }

  /**
   * Records the batch's decisions: first the unchanged repeats, in one conditional put of the batch's repeats item
   * (before any full item, so that a retry of the batch knows them: when the item is already there, its functions
   * are decided and the rest are written as full items), then every other decision and failure, one full item each.
   */
  async recordAll(batchKey: string): Promise<void> {
    const now = systemClock.now();
    const repeats: RepeatEntry[] = [];
    for (const d of this.decided) {
      const repeat = 'decision' in d ? this.repeatOf(d.entry, d.decision, now) : undefined;
      if (repeat !== undefined) repeats.push(repeat);
    }
    /** The functions the batch's repeats item decides. */
    let standing = new Set<string>();
    /** Repeats the table refused: neither recorded nor written in full (the batch fails for a retry). */
    let refused = new Set<string>();
    if (repeats.length > 0) {
      const items = repeatsItems(
        {
          runId: this.run.runId,
          runStartedAt: this.run.startedAt,
          decidedAt: new Date(now).toISOString(),
          mode: this.config.mode,
          batchKey,
          ...this.accountAndRegion(),
          entries: repeats,
        },
        this.settings,
      );
      try {
        standing = new Set(repeats.map((r) => r.functionName));
        if ((await putRepeats(this.rt.auditTableName, items)) === 'exists') {
          // A retry: the first attempt's repeats stand; whatever else it decided gets a full item now (or finds its
          // own already there).
          standing = await repeatsOfBatch(this.rt.auditTableName, this.run, batchKey);
          logger.info('repeats already recorded in this run (a retry); they stand', { functions: standing.size });
        } else {
          logger.info('unchanged repeats recorded compactly', { functions: repeats.length });
        }
      } catch (error) {
        emitMetric('AuditWriteFailed', 1);
        logger.error('repeats could not be recorded', { functions: repeats.length, error: errorSummary(error) });
        standing = new Set();
        refused = new Set(repeats.map((r) => r.functionName));
        this.unrecorded.push(...refused);
      }
    }
    for (const d of this.decided) {
      if (refused.has(d.entry.name)) continue;
      if (standing.has(d.entry.name)) {
        const previous = this.previous.get(d.entry.name) as StoredDigest | undefined;
        if (
          d.entry.checked === true &&
          previous !== undefined &&
          repeats.some((r) => r.functionName === d.entry.name)
        ) {
          // Read again and unchanged: the digest remembers when (the facts are good for another day).
          const { decidedAt, ...digest } = previous;
          this.digests.push({
            functionName: d.entry.name,
            digest: { ...digest, checkedAt: new Date(now).toISOString() },
            decidedAt: decidedAt ?? new Date(now).toISOString(),
          });
        }
        if ('decision' in d) {
          increment(this.counts, d.decision.outcome);
          if (d.decision.outcome === 'SKIPPED') for (const reason of d.decision.reasons) increment(this.skips, reason);
        }
        continue;
      }
      if ('error' in d) await this.fail(d.entry, d.error);
      else {
        try {
          await this.record(d.entry, d.decision, d.decision.detail);
        } catch (error) {
          await this.fail(d.entry, error);
        }
      }
    }
  }

  /** The account and region of the batch (from its first function ARN), for the repeats item. */
  private accountAndRegion(): { account: string | null; region: string | null } {
    for (const d of this.decided) {
      const arn = 'decision' in d ? d.decision.assessment.functionArn : d.entry.cheap.configuration.FunctionArn;
      const parts = arnParts(arn);
      if (parts.account !== null) return parts;
    }
    return { account: null, region: null };
  }

  private async publish(item: AuditItem): Promise<boolean> {
    try {
      await publishNotice(this.rt.skipTopicArn, decisionNotice(item));
      return true;
    } catch (error) {
      logger.error('skip notification failed', { functionName: item.functionName, error: errorSummary(error) });
      emitMetric('NotificationsFailed', 1);
      await this.keepRunInOutbox();
      return false;
    }
  }

  private keptInOutbox = false;

  /**
   * A notice SNS refused: the run goes in the outbox now (once per batch), so the next run's start sends it even if
   * finish-run's drain cannot (cut short, or the byRun index not showing the item yet). shared/notices.ts.
   */
  private async keepRunInOutbox(): Promise<void> {
    if (this.keptInOutbox) return;
    this.keptInOutbox = true;
    await keepInOutbox(this.rt, this.run.runId).catch((error: unknown) => {
      logger.warn('run not kept in the outbox; finish-run drains it', { error: errorSummary(error) });
    });
  }

  /** A function whose processing threw: recorded FAILED, the batch goes on. */
  async fail(entry: Entry, error: unknown): Promise<void> {
    const detail = errorSummary(error);
    logger.error('function processing failed', { functionName: entry.name, error: detail });
    const assessment: Assessment = {
      functionName: entry.name,
      functionArn: entry.cheap.configuration.FunctionArn ?? null,
      verdict: 'SKIP',
      reasons: [],
      warnings: [],
      checks: [],
    };
    try {
      await this.record(entry, { outcome: 'FAILED', assessment, reasons: [] }, detail);
    } catch (recordError) {
      this.unrecorded.push(entry.name);
      emitMetric('AuditWriteFailed', 1);
      logger.error('FAILED decision could not be recorded', {
        functionName: entry.name,
        error: errorSummary(recordError),
      });
    }
  }
}

export const handler = async (event: AssessBatchInput, context?: Context): Promise<AssessBatchOutput> => {
  const rt = runtime();
  const { config } = rt;
  const run = event.BatchInput;
  startInvocation({ runId: run.runId }, context);
  const items = Array.isArray(event.Items) ? event.Items : [];
  const names = items.map(nameOf);

  // Retried through a short outage. Still unreadable: every decision counts as new in its record, but nothing is
  // published from here (a repeat would be sent again): the outbox drain sends what is owed, comparing each decision
  // with the digest once the table answers (shared/notices.ts).
  let previousKnown = true;
  const previous = await withRetries('reading previous decisions', () => lastDecisions(rt.stateTableName, names)).catch(
    (error: unknown) => {
      previousKnown = false;
      logger.warn('previous decisions unreadable; notices left to the outbox drain', { error: errorSummary(error) });
      return new Map<string, DecisionDigest>();
    },
  );

  const resolvedEnvironment = await resolveOurParameters(config);
  const funnel: FunnelContext = {
    config,
    resolvedEnvironment,
    persistentExclusions: new Set(
      items.flatMap((item, i) => (item?.persistentlyExcluded === true ? [names[i] ?? ''] : [])),
    ),
    engineFunctionPrefix: rt.engineFunctionPrefix,
  };
  const batch = new BatchRun(rt, run, previous, previousKnown);

  const entries: Entry[] = items.map((item, i) => {
    const name = names[i] ?? UNNAMED;
    const cheap: CheapFacts = {
      configuration: item?.configuration ?? {},
      tags: item?.tags ?? {},
    };
    if (typeof item?.lambdaEdge === 'boolean') cheap.lambdaEdge = item.lambdaEdge;
    if (typeof item?.variablesBytes === 'number') cheap.variablesBytes = item.variablesBytes;
    if (Array.isArray(item?.unreadable)) cheap.unreadable = item.unreadable.filter((u) => typeof u === 'string');
    const written = engineWrittenOf(item, previous.get(name));
    return {
      item,
      name,
      cheap,
      view: cheap,
      funnel: written.size > 0 ? { ...funnel, engineWritten: written } : funnel,
    };
  });
  // Issue 10: assess never calls the Console. Each function's own TW_POLICY is known here only from the cache the
  // protect Lambda keeps (state table, values encrypted with the stack key: this role already reads the state table
  // with BatchGetItem and holds kms:Decrypt on the stack key); without an unexpired entry gate 6 counts the documented
  // estimate and says so.
  if (config.defender.policySource !== undefined) {
    const byRegion = new Map<string, Entry[]>();
    for (const entry of entries) {
      if (entry.name === UNNAMED) continue;
      const arn = entry.cheap.configuration.FunctionArn;
      const region = (typeof arn === 'string' ? arnRegion(arn) : undefined) ?? process.env['AWS_REGION'] ?? '';
      byRegion.set(region, [...(byRegion.get(region) ?? []), entry]);
    }
    for (const [region, group] of byRegion) {
      const cached = await readCachedPolicies(
        rt.stateTableName,
        group.map((entry) => entry.name),
        region,
        config.defender.policySource.cacheHours * 60 * 60 * 1000,
        systemClock.now(),
      );
      if (cached.errors.length > 0) {
        logger.warn('TW_POLICY cache partly unreadable; those functions use the estimate', { errors: cached.errors });
      }
      for (const entry of group) {
        const value = cached.values.get(entry.name);
        if (value === undefined) continue;
        const own = { ...(entry.funnel.resolvedEnvironment ?? {}), [POLICY_VARIABLE]: value };
        entry.funnel = { ...entry.funnel, resolvedEnvironment: own };
      }
    }
  }
  // Issue 11: an unchanged protected function (same fingerprint, our SSM values' versions included) whose decision
  // was healthy and current within the day is carried as it is: no GetFunction to compare our values, no screening.
  batch.ssmVersions = await ourParameterVersions(config);
  const carried = new Set<Entry>();
  if (config.defender.policySource === undefined && batch.ssmVersions !== undefined && previousKnown) {
    for (const entry of entries) {
      const before = previous.get(entry.name);
      if (before === undefined || entry.name === UNNAMED || before.warnings.includes('DEFENDER_CONFIG_OUTDATED'))
        continue;
      const due = recheckDue(
        before,
        {
          outcome: 'ALREADY_PROTECTED',
          fingerprint: batch.fingerprintOf(entry),
          unlessWarning: 'PROTECTION_UNHEALTHY',
        },
        systemClock.now(),
      );
      if (due) continue;
      carried.add(entry);
      batch.decided.push({ entry, decision: batch.carried(entry, before, 'ALREADY_PROTECTED') });
    }
  }
  // Functions that carry one of our resolved SSM-sourced (or cached Console) variables: their inventory holds a
  // placeholder, so the real value is read (GetFunction, needed anyway for the protected ones) and compared in memory.
  for (const entry of entries) {
    if (carried.has(entry)) continue;
    const resolvedHere = entry.funnel.resolvedEnvironment ?? {};
    const ssmNames = Object.keys(resolvedHere).filter((name) => typeof config.defender.environment[name] !== 'string');
    const variables = entry.cheap.configuration.Environment?.Variables;
    const present = ssmNames.filter((name) => isRecordOfStrings(variables) && typeof variables[name] === 'string');
    if (present.length === 0) continue;
    entry.status = await batch.readStatus(entry, present);
    const real = entry.status?.ourValues;
    const known = present.filter((name) => real?.[name] !== undefined);
    const unknown = present.filter((name) => real?.[name] === undefined);
    if (known.length > 0 && isRecordOfStrings(variables)) {
      const merged = { ...variables, ...Object.fromEntries(known.map((name) => [name, real?.[name] ?? ''])) };
      const environment = { ...entry.cheap.configuration.Environment, Variables: merged };
      entry.view = { ...entry.cheap, configuration: { ...entry.cheap.configuration, Environment: environment } };
    }
    if (unknown.length > 0) {
      // Could not compare: the funnel says "value not resolved" for these (never a silent pass).
      const kept = Object.fromEntries(Object.entries(resolvedHere).filter(([n]) => !unknown.includes(n)));
      entry.funnel = { ...entry.funnel, resolvedEnvironment: kept };
    }
  }
  const screened = entries
    .filter((entry) => !carried.has(entry))
    .map((entry) => ({ entry, screening: screen(entry.view, entry.funnel) }));
  // A protected function holding an older value the engine wrote is refreshed in protect mode (issue 8 item 7): an
  // update like any other, so it gets the candidates' reads and gates first.
  const refreshable = ({ assessment }: { assessment: Assessment }): boolean =>
    assessment.verdict === 'ALREADY_PROTECTED' &&
    assessment.warnings.includes('DEFENDER_CONFIG_OUTDATED') &&
    config.mode === 'protect' &&
    run.protectionAllowed;
  const wanted = (s: Screened): boolean => s.screening.candidate || refreshable(s.screening);
  let unhealthy = 0;
  let getMetricDataCalls = 0;
  let candidateCount = 0;

  /**
   * The expensive reads and the final decision for some candidates: the metrics first (one GetMetricData per 250,
   * issue 11: never for the others), read before any control-plane call so that a throttled function costs none;
   * then route tables, back-off records and each candidate's control-plane reads.
   */
  const decideCandidates = async (
    take: Screened[],
  ): Promise<Array<{ s: Screened; decision?: Decision; error?: unknown }>> => {
    candidateCount += take.length;
    const measured = await functionMetrics({
      functionNames: take.map((c) => c.entry.name).filter((n) => n !== UNNAMED),
      lookbackHours: config.funnel.throttleLookbackHours,
      now: systemClock.now(),
    });
    getMetricDataCalls += measured.calls;
    if (measured.errors.length > 0)
      logger.warn('metrics unreadable; those facts are missing', { errors: measured.errors });
    for (const { entry } of take) {
      entry.checked = true;
      const m = measured.byFunction.get(entry.name);
      for (const facts of new Set([entry.cheap, entry.view])) {
        facts.metricsRead = true;
        if (m?.throttles !== undefined) facts.throttles24h = m.throttles;
        if (m?.peakConcurrency !== undefined) facts.peakConcurrency = m.peakConcurrency;
      }
    }
    for (const s of take) s.screening = screen(s.entry.view, s.entry.funnel);
    const still = take.filter(wanted);
    const egressOf = await resolveEgress(
      run.runId,
      still.filter((c) => hasSubnets(c.entry.cheap.configuration)).map((c) => vpcFunction(c.entry)),
    );
    const rejections =
      still.length === 0
        ? new Map<string, RejectionRecord>()
        : await rejectionRecords(
            rt.stateTableName,
            still.map((c) => c.entry.name),
          ).catch((error: unknown) => {
            logger.warn('back-off records unreadable; the candidates are FACTS_MISSING', {
              error: errorSummary(error),
            });
            return undefined;
          });
    const out: Array<{ s: Screened; decision?: Decision; error?: unknown }> = [];
    for (const s of take) {
      try {
        if (!wanted(s)) {
          const protectedNow = s.screening.assessment.verdict === 'ALREADY_PROTECTED';
          const assessment = protectedNow ? await batch.decideProtected(s.entry, s.screening) : s.screening.assessment;
          out.push({ s, decision: batch.decide(s.entry, assessment) });
          continue;
        }
        const { facts, assessment } = await batch.decideCandidate(s.entry, egressOf, rejections);
        out.push({ s, decision: batch.decide(s.entry, assessment, facts) });
      } catch (error) {
        out.push({ s, error });
      }
    }
    return out;
  };

  const conclude = (entry: Entry, decision: Decision): void => {
    if (decision.outcome === 'ELIGIBLE') {
      if (decision.request !== undefined) batch.eligible.push({ ...decision.request, slotClaimed: batch.claimsSlots });
      logger.info('eligible for protection', { functionName: entry.name, warnings: decision.assessment.warnings });
    } else {
      batch.decided.push({ entry, decision: { ...decision, outcome: decision.outcome } });
    }
  };

  // Everything that is not a candidate is decided on the cheap facts (a protected function's readiness aside).
  for (const s of screened.filter((x) => !wanted(x))) {
    try {
      if (s.screening.assessment.verdict === 'ALREADY_PROTECTED') {
        const assessment = await batch.decideProtected(s.entry, s.screening);
        if (assessment.warnings.includes('PROTECTION_UNHEALTHY')) unhealthy += 1;
        conclude(s.entry, batch.decide(s.entry, assessment));
      } else {
        conclude(s.entry, batch.decide(s.entry, s.screening.assessment));
      }
    } catch (error) {
      batch.decided.push({ entry: s.entry, error });
    }
  }

  // The candidates. In protect mode each first claims one of the run's slots (issue 11: deferral is decided here,
  // before any expensive read, protect invocation or notice); a candidate the reads then skip gives its slot back
  // for the next one. Without a slot, a candidate is DEFERRED on its cheap facts.
  const queue: Screened[] = [];
  for (const s of screened.filter(wanted)) {
    // Issue 11: an unchanged candidate's expensive facts are read once a day: in between, a dry-run WOULD_PROTECT or
    // a skip those facts decided (CARRIED_SKIPS, both modes: no slot claimed) repeats the last full check (the
    // repeats item points at it).
    const before = previousKnown ? previous.get(s.entry.name) : undefined;
    const fingerprint = batch.fingerprintOf(s.entry);
    const now = systemClock.now();
    const wouldProtect =
      config.mode === 'dry-run' && !recheckDue(before, { outcome: 'WOULD_PROTECT', fingerprint }, now);
    const skipped =
      !refreshable(s.screening) &&
      (before?.reasons.length ?? 0) > 0 &&
      !recheckDue(before, { outcome: 'SKIPPED', fingerprint, carriedReasons: CARRIED_SKIPS }, now);
    if (before !== undefined && (wouldProtect || skipped)) {
      const outcome = wouldProtect ? 'WOULD_PROTECT' : 'SKIPPED';
      conclude(s.entry, batch.carried(s.entry, before, outcome, s.screening.assessment.checks));
    } else queue.push(s);
  }
  let slotsLeft = true;
  while (queue.length > 0) {
    const take: Screened[] = [];
    if (!batch.claimsSlots) take.push(...queue.splice(0));
    while (batch.claimsSlots && slotsLeft && queue.length > 0) {
      const next = queue.shift() as Screened;
      if (await batch.claimSlot(next.entry)) take.push(next);
      else {
        slotsLeft = false;
        queue.unshift(next);
      }
    }
    if (take.length === 0) break;
    for (const { s, decision, error } of await decideCandidates(take)) {
      if (decision?.outcome !== 'ELIGIBLE' && batch.claimsSlots) {
        // Given back: the next candidate may have it.
        await batch.releaseSlot(s.entry);
        slotsLeft = true;
      }
      if (decision !== undefined) conclude(s.entry, decision);
      else batch.decided.push({ entry: s.entry, error });
    }
  }
  for (const s of queue) conclude(s.entry, batch.deferred(s.screening.assessment));

  // Recorded in the batch's order (the candidates were decided last).
  const order = new Map(entries.map((entry, i) => [entry, i]));
  batch.decided.sort((a, b) => (order.get(a.entry) ?? 0) - (order.get(b.entry) ?? 0));
  await batch.recordAll(names[0] ?? UNNAMED);

  if (batch.digests.length > 0) {
    // Retried through a short outage: a digest is also the sent mark of a notice (a lost one means a repeat message).
    const digests = batch.digests;
    await withRetries('storing last-decision digests', () => putLastDecisions(rt.stateTableName, digests)).catch(
      (error: unknown) => {
        logger.error('previous-decision digests not stored; the next run treats these decisions as new', {
          error: errorSummary(error),
        });
      },
    );
  }

  if (batch.unrecorded.length > 0) {
    // The audit table refused writes: fail the invocation so that Step Functions retries it (the retry writes only
    // what is missing) and, after its retries, record-failure records the rest (with its S3 fallback).
    throw new AuditWriteError(
      `${batch.unrecorded.length} of ${items.length} decisions could not be written to the audit table`,
    );
  }
  // Alarmed by the stack (missing data = healthy): protected functions whose last update failed, every run.
  if (unhealthy > 0) emitMetric('ProtectionUnhealthy', unhealthy);
  emitCounts(BATCH_METRICS.decisions.name, BATCH_METRICS.decisions.dimension, batch.counts);
  emitCounts(BATCH_METRICS.skips.name, BATCH_METRICS.skips.dimension, batch.skips);
  logger.info('batch assessed', {
    functions: items.length,
    candidates: candidateCount,
    deferred: queue.length,
    eligible: batch.eligible.length,
    getMetricDataCalls,
    controlPlaneCalls: batch.controlPlaneCalls,
    getFunctionCalls: batch.getFunctionCalls,
  });
  return { eligible: batch.eligible, counts: Object.fromEntries(batch.counts) as AssessBatchOutput['counts'] };
};
