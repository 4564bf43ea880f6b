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
import type { Context } from 'aws-lambda';
import { POLICY_VARIABLE } from '../../lib/config';
import { putAuditItem } from '../shared/adapters/audit-store';
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
import { lastDecisions, putLastDecisions } from '../shared/adapters/state-store';
import { resolveEgress, type VpcFunction } from '../shared/adapters/vpc';
import { rejectionBackoff, type RejectionRecord } from '../shared/domain/backoff';
import { workersOf } from '../shared/domain/batching';
import { decisionItem, nextDigest, sameDecision, type DecisionDigest } from '../shared/domain/audit';
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
}

interface Decision {
  outcome: Outcome | 'ELIGIBLE';
  assessment: Assessment;
  reasons: string[];
  request?: ProtectRequest;
}

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
    const digest = nextDigest(this.previous.get(entry.name), { outcome, reasons, warnings: assessment.warnings });
    const previous = this.previous.get(entry.name);
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
      },
      this.settings,
    );
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
  // Functions that carry one of our resolved SSM-sourced (or cached Console) variables: their inventory holds a
  // placeholder, so the real value is read (GetFunction, needed anyway for the protected ones) and compared in memory.
  for (const entry of entries) {
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
  const screened = entries.map((entry) => ({ entry, screening: screen(entry.view, entry.funnel) }));
  // A protected function holding an older value the engine wrote is refreshed in protect mode (issue 8 item 7): an
  // update like any other, so it gets the candidates' reads and gates first.
  const refreshable = ({ assessment }: { assessment: Assessment }): boolean =>
    assessment.verdict === 'ALREADY_PROTECTED' &&
    assessment.warnings.includes('DEFENDER_CONFIG_OUTDATED') &&
    config.mode === 'protect' &&
    run.protectionAllowed;
  // Issue 11: the metrics only for the candidates (an already-protected or skipped function costs no metric), read
  // before any control-plane call so that a throttled function costs none; the candidates are screened again on them.
  const measuredFor = screened.filter((s) => s.screening.candidate || refreshable(s.screening)).map((s) => s.entry);
  let getMetricDataCalls = 0;
  if (measuredFor.length > 0) {
    const measured = await functionMetrics({
      functionNames: measuredFor.map((c) => c.name).filter((n) => n !== UNNAMED),
      lookbackHours: config.funnel.throttleLookbackHours,
      now: systemClock.now(),
    });
    getMetricDataCalls = measured.calls;
    if (measured.errors.length > 0) {
      logger.warn('metrics unreadable; those facts are missing', { errors: measured.errors });
    }
    for (const candidate of measuredFor) {
      const m = measured.byFunction.get(candidate.name);
      for (const facts of new Set([candidate.cheap, candidate.view])) {
        facts.metricsRead = true;
        if (m?.throttles !== undefined) facts.throttles24h = m.throttles;
        if (m?.peakConcurrency !== undefined) facts.peakConcurrency = m.peakConcurrency;
      }
    }
    const again = new Set(measuredFor);
    for (const s of screened) if (again.has(s.entry)) s.screening = screen(s.entry.view, s.entry.funnel);
  }
  const candidates = screened.filter((s) => s.screening.candidate || refreshable(s.screening)).map((s) => s.entry);
  const egressOf = await resolveEgress(
    run.runId,
    candidates.filter((c) => hasSubnets(c.cheap.configuration)).map(vpcFunction),
  );
  const rejections =
    candidates.length === 0
      ? new Map<string, RejectionRecord>()
      : await rejectionRecords(
          rt.stateTableName,
          candidates.map((c) => c.name),
        ).catch((error: unknown) => {
          logger.warn('back-off records unreadable; the candidates are FACTS_MISSING', { error: errorSummary(error) });
          return undefined;
        });
  let unhealthy = 0;

  for (const { entry, screening } of screened) {
    try {
      let decision: Decision;
      if (screening.candidate || refreshable(screening)) {
        const { facts, assessment } = await batch.decideCandidate(entry, egressOf, rejections);
        decision = batch.decide(entry, assessment, facts);
      } else if (screening.assessment.verdict === 'ALREADY_PROTECTED') {
        const assessment = await batch.decideProtected(entry, screening);
        if (assessment.warnings.includes('PROTECTION_UNHEALTHY')) unhealthy += 1;
        decision = batch.decide(entry, assessment);
      } else {
        decision = batch.decide(entry, screening.assessment);
      }
      if (decision.outcome === 'ELIGIBLE') {
        if (decision.request !== undefined) batch.eligible.push(decision.request);
        logger.info('eligible for protection', { functionName: entry.name, warnings: decision.assessment.warnings });
      } else {
        await batch.record(entry, { ...decision, outcome: decision.outcome });
      }
    } catch (error) {
      await batch.fail(entry, error);
    }
  }

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
    candidates: candidates.length,
    eligible: batch.eligible.length,
    getMetricDataCalls,
    controlPlaneCalls: batch.controlPlaneCalls,
    getFunctionCalls: batch.getFunctionCalls,
  });
  return { eligible: batch.eligible, counts: Object.fromEntries(batch.counts) as AssessBatchOutput['counts'] };
};
