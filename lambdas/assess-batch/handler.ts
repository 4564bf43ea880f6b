/**
 * Assess batch (Distributed Map child): gathers the facts of a batch of inventory items as cheaply as the data
 * allows, runs the funnel, records every decision that is final here, and returns the eligible functions for the
 * protect step.
 *
 * 1. previous decisions (state table, one BatchGetItem per 100 functions);
 * 2. Throttles and ConcurrentExecutions for the whole batch in one GetMetricData call (250 functions per call);
 * 3. the funnel on these facts (domain/screening.ts); only functions it does not already skip or find protected
 *    are candidates for the expensive reads: DescribeRouteTables (VPC functions, cached per subnet for the run),
 *    ListProvisionedConcurrencyConfigs and GetFunction (paced by this worker's share of the control plane);
 * 4. the funnel on the complete facts, then per function:
 *    SKIP → SKIPPED (SNS when new or changed, or always with notifications.skips "always");
 *    ALREADY_PROTECTED → ALREADY_PROTECTED (warnings such as DEFENDER_OUTDATED kept, no SNS);
 *    ELIGIBLE → WOULD_PROTECT in dry-run; SKIPPED with DEFENDER_LAYER_INVALID when the run's layer check failed;
 *    otherwise returned in `eligible` (the protect Lambda records it);
 *    a function whose processing throws → FAILED (the rest of the batch goes on);
 * 5. the digests of what was recorded (state table), for repeat detection and changed-only notifications.
 */
import type { Context } from 'aws-lambda';
import { putAuditItem } from '../shared/adapters/audit-store';
import { functionStatus, provisionedConcurrencyConfigs, type ReadFailure } from '../shared/adapters/function-details';
import { functionMetrics } from '../shared/adapters/metrics';
import { publishNotice } from '../shared/adapters/notifier';
import { controlPlaneLimiters, systemClock } from '../shared/adapters/rate-limiter';
import { lastDecisions, putLastDecisions } from '../shared/adapters/state-store';
import { resolveEgress, type VpcFunction } from '../shared/adapters/vpc';
import { workersOf } from '../shared/domain/batching';
import { decisionItem, nextDigest, sameDecision, type DecisionDigest } from '../shared/domain/audit';
import { assess, type FunnelContext } from '../shared/domain/funnel';
import { decisionNotice } from '../shared/domain/notice';
import { candidateFacts, hasSubnets, screen, type CandidateFacts, type CheapFacts } from '../shared/domain/screening';
import type {
  Assessment,
  AssessBatchInput,
  AssessBatchOutput,
  AuditItem,
  InventoryItem,
  Outcome,
  ProtectRequest,
  RunContext,
  VpcEgress,
} from '../shared/domain/types';
import { logger, startInvocation } from '../shared/observability';
import { emitCounts, emitMetric, errorSummary, increment, recordSettings } from '../shared/recording';
import { runtime, type Runtime } from '../shared/runtime';

/** Per-invocation metrics (the run totals `Decisions`/`Skips` come from finish-run). */
export const BATCH_METRICS = {
  decisions: { name: 'BatchDecisions', dimension: 'Outcome' },
  skips: { name: 'BatchSkips', dimension: 'Reason' },
} as const;

const UNNAMED = '(unnamed function)';

interface Entry {
  item: InventoryItem;
  name: string;
  cheap: CheapFacts;
}

interface Decision {
  outcome: Outcome | 'ELIGIBLE';
  assessment: Assessment;
  reasons: string[];
  request?: ProtectRequest;
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

  constructor(
    private readonly rt: Runtime,
    private readonly run: RunContext,
    private readonly previous: ReadonlyMap<string, DecisionDigest>,
    private readonly funnel: FunnelContext,
  ) {
    this.config = rt.config;
    this.settings = recordSettings(rt);
    this.limiters = controlPlaneLimiters(this.config.rates, workersOf(run.workers, this.config.rates));
  }

  get controlPlaneCalls(): number {
    return this.limiters.controlPlane.taken;
  }

  get getFunctionCalls(): number {
    return this.limiters.getFunction.taken;
  }

  /** Step 2 for one candidate: the expensive reads, then the funnel on the complete facts. */
  async decideCandidate(entry: Entry, egressOf: (fn: VpcFunction) => VpcEgress | undefined) {
    const arn = entry.cheap.configuration.FunctionArn ?? entry.name;
    const onError = (failure: ReadFailure): void =>
      logger.warn('read failed; the fact is missing', { functionName: entry.name, ...failure });
    const read: CandidateFacts = {};
    const configs = await provisionedConcurrencyConfigs(arn, this.limiters.controlPlane, onError);
    if (configs !== undefined) read.provisionedConcurrencyConfigs = configs;
    const status = await functionStatus(arn, this.limiters.getFunction, onError);
    if (status !== undefined) {
      read.reservedConcurrency = status.reservedConcurrency;
      if (status.state !== undefined) read.state = status.state;
      if (status.lastUpdateStatus !== undefined) read.lastUpdateStatus = status.lastUpdateStatus;
    }
    const attached = hasSubnets(entry.cheap.configuration);
    if (attached) {
      const egress = egressOf(vpcFunction(entry));
      if (egress !== undefined) read.vpcEgress = egress;
    }
    const facts = candidateFacts(entry.cheap, read, attached);
    return { facts, assessment: assess(facts, this.funnel) };
  }

  /** The outcome of a final assessment. */
  decide(entry: Entry, assessment: Assessment, facts?: ProtectRequest['facts']): Decision {
    if (assessment.verdict === 'SKIP') return { outcome: 'SKIPPED', assessment, reasons: assessment.reasons };
    if (assessment.verdict === 'ALREADY_PROTECTED') {
      return { outcome: 'ALREADY_PROTECTED', assessment, reasons: assessment.reasons };
    }
    if (this.config.mode === 'dry-run') return { outcome: 'WOULD_PROTECT', assessment, reasons: [] };
    if (!this.run.protectionAllowed) {
      return { outcome: 'SKIPPED', assessment, reasons: ['DEFENDER_LAYER_INVALID'] };
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

  /** Writes the audit item of a decision, publishes it when due, and keeps its digest. */
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
    await putAuditItem(this.rt.auditTableName, item);
    increment(this.counts, outcome);
    if (outcome === 'SKIPPED') for (const reason of reasons) increment(this.skips, reason);
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
    if (notify && !(await this.publish(item))) return; // not remembered: the next run notifies again
    this.digests.push({ functionName: entry.name, digest, decidedAt });
  }

  private async publish(item: AuditItem): Promise<boolean> {
    try {
      await publishNotice(this.rt.skipTopicArn, decisionNotice(item));
      return true;
    } catch (error) {
      logger.error('skip notification failed', { functionName: item.functionName, error: errorSummary(error) });
      emitMetric('NotificationsFailed', 1);
      return false;
    }
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
      increment(this.counts, 'FAILED');
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

  const previous = await lastDecisions(rt.stateTableName, names).catch((error: unknown) => {
    logger.warn('previous decisions unreadable; every decision counts as new', { error: errorSummary(error) });
    return new Map<string, DecisionDigest>();
  });
  const measured = await functionMetrics({
    functionNames: names.filter((n) => n !== UNNAMED),
    lookbackHours: config.funnel.throttleLookbackHours,
    now: systemClock.now(),
  });
  if (measured.errors.length > 0) {
    logger.warn('metrics unreadable; those facts are missing', { errors: measured.errors });
  }

  const funnel: FunnelContext = {
    config,
    persistentExclusions: new Set(
      items.flatMap((item, i) => (item?.persistentlyExcluded === true ? [names[i] ?? ''] : [])),
    ),
    engineFunctionPrefix: rt.engineFunctionPrefix,
  };
  const batch = new BatchRun(rt, run, previous, funnel);

  const entries: Entry[] = items.map((item, i) => {
    const name = names[i] ?? UNNAMED;
    const cheap: CheapFacts = {
      configuration: item?.configuration ?? {},
      tags: item?.tags ?? {},
    };
    const m = measured.byFunction.get(name);
    if (m?.throttles !== undefined) cheap.throttles24h = m.throttles;
    if (m?.peakConcurrency !== undefined) cheap.peakConcurrency = m.peakConcurrency;
    return { item, name, cheap };
  });
  const screened = entries.map((entry) => ({ entry, screening: screen(entry.cheap, funnel) }));
  const candidates = screened.filter((s) => s.screening.candidate).map((s) => s.entry);
  const egressOf = await resolveEgress(
    run.runId,
    candidates.filter((c) => hasSubnets(c.cheap.configuration)).map(vpcFunction),
  );

  for (const { entry, screening } of screened) {
    try {
      let decision: Decision;
      if (screening.candidate) {
        const { facts, assessment } = await batch.decideCandidate(entry, egressOf);
        decision = batch.decide(entry, assessment, facts);
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
    await putLastDecisions(rt.stateTableName, batch.digests).catch((error: unknown) => {
      logger.error('previous-decision digests not stored; the next run treats these decisions as new', {
        error: errorSummary(error),
      });
    });
  }

  emitCounts(BATCH_METRICS.decisions.name, BATCH_METRICS.decisions.dimension, batch.counts);
  emitCounts(BATCH_METRICS.skips.name, BATCH_METRICS.skips.dimension, batch.skips);
  logger.info('batch assessed', {
    functions: items.length,
    candidates: candidates.length,
    eligible: batch.eligible.length,
    getMetricDataCalls: measured.calls,
    controlPlaneCalls: batch.controlPlaneCalls,
    getFunctionCalls: batch.getFunctionCalls,
  });
  return { eligible: batch.eligible, counts: Object.fromEntries(batch.counts) as AssessBatchOutput['counts'] };
};
