/**
 * `audit`: a read-only assessment of the live account from a laptop, with the deployed job's facts gathering and
 * funnel: the same adapters (inventory.ts ListFunctions, tags.ts, metrics.ts GetMetricData, function-details.ts
 * GetFunction / ListProvisionedConcurrencyConfigs / code signing, vpc.ts DescribeRouteTables, cloudfront.ts for
 * us-east-1), the same two-step screening (domain/screening.ts: the expensive reads only for candidates), the same
 * funnel (domain/funnel.ts) and the same pacing (controlPlaneLimiters with rates.controlPlanePerSecond, one worker).
 * It mirrors lambdas/take-inventory and lambdas/assess-batch step by step, minus everything they write: no S3
 * inventory, no audit item, no digest, no notice. Our SSM-sourced values are read read-only
 * (ssm:GetParameter, as assess does) and stay in memory. What it cannot know from a laptop: the state table's
 * persistent exclusions and back-off records (the deployed stack's), so PREVIOUSLY_REJECTED never shows and a
 * rolled-back function shows as the funnel sees it.
 *
 * The decisions are returned as audit items (never written) so that `report`'s model and renderers print them.
 * Every read that failed is listed with the call and AWS's error name: the facts the caller's permissions hid.
 */
import { assess, arnRegion, LAMBDA_EDGE_REGION, type FunnelContext } from '../../lambdas/shared/domain/funnel';
import {
  candidateFacts,
  hasSubnets,
  protectedWithStatus,
  screen,
  type CandidateFacts,
  type CheapFacts,
} from '../../lambdas/shared/domain/screening';
import type { Assessment, AuditItem, FunctionConfiguration, Outcome } from '../../lambdas/shared/domain/types';
import type { Config } from '../../lib/config';
import { edgeFunctionArns } from '../../lambdas/shared/adapters/cloudfront';
import {
  codeSigningPolicy,
  functionStatus,
  provisionedConcurrencyConfigs,
  type CodeSigningCache,
  type ReadFailure,
} from '../../lambdas/shared/adapters/function-details';
import { listFunctions } from '../../lambdas/shared/adapters/inventory';
import { functionMetrics } from '../../lambdas/shared/adapters/metrics';
import { controlPlaneLimiters, systemClock } from '../../lambdas/shared/adapters/rate-limiter';
import { functionTags } from '../../lambdas/shared/adapters/tags';
import { resolveEgress, type VpcFunction } from '../../lambdas/shared/adapters/vpc';
import { resolveOurParameters } from '../../lambdas/assess-batch/handler';
import type { Progress } from './cli-support';

export interface Unreadable {
  /** The API call that failed (e.g. GetFunction, tag:GetResources). */
  call: string;
  /** AWS's error name (never its message: it may quote input). */
  error: string;
  functions: string[];
}

export interface LiveAudit {
  runId: string;
  items: AuditItem[];
  unreadable: Unreadable[];
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'Error';
}

export async function liveAudit(
  config: Config,
  options: { only?: string; progress: Progress; engineFunctionPrefix?: string },
): Promise<LiveAudit> {
  const startedAt = new Date(systemClock.now()).toISOString();
  const runId = `audit-${startedAt}`;
  const failures = new Map<string, Unreadable>();
  const failed = (call: string, error: string, functionName: string): void => {
    const key = `${call}\u0000${error}`;
    const entry = failures.get(key) ?? { call, error, functions: [] };
    if (!entry.functions.includes(functionName)) entry.functions.push(functionName);
    failures.set(key, entry);
  };
  const limiters = controlPlaneLimiters(config.rates, 1);
  // Nothing to assess without the inventory: a failure here propagates (the command prints one line).
  let configurations = await listFunctions(limiters.controlPlane, (c): FunctionConfiguration => c);
  if (options.only !== undefined) configurations = configurations.filter((c) => c.FunctionName === options.only);
  options.progress.setTotal(configurations.length);
  let tags = new Map<string, Record<string, string>>();
  try {
    tags = await functionTags([config.exclusions.tagKey, config.audit.ownerTagKey]);
  } catch (error) {
    for (const c of configurations) failed('tag:GetResources', errorName(error), String(c.FunctionName));
  }
  const names = configurations.map((c) => String(c.FunctionName));
  const measured = await functionMetrics({
    functionNames: names,
    lookbackHours: config.funnel.throttleLookbackHours,
    now: systemClock.now(),
  });
  for (const problem of measured.errors) {
    for (const name of names.filter((n) => measured.byFunction.get(n)?.throttles === undefined)) {
      failed('cloudwatch:GetMetricData', problem, name);
    }
  }
  const east = configurations.filter((c) => arnRegion(c.FunctionArn ?? '') === LAMBDA_EDGE_REGION);
  let edge: Set<string> | undefined = new Set();
  if (east.length > 0) {
    try {
      edge = (await edgeFunctionArns()).arns;
    } catch (error) {
      edge = undefined;
      for (const c of east) failed('cloudfront:ListDistributions', errorName(error), String(c.FunctionName));
    }
  }
  const resolvedEnvironment = await resolveOurParameters(config);
  const funnel: FunnelContext = {
    config,
    resolvedEnvironment,
    ...(options.engineFunctionPrefix !== undefined ? { engineFunctionPrefix: options.engineFunctionPrefix } : {}),
  };
  const codeSigningCache: CodeSigningCache = new Map();
  const entries = configurations.map((configuration) => {
    const name = String(configuration.FunctionName);
    const cheap: CheapFacts = { configuration, tags: tags.get(configuration.FunctionArn ?? '') ?? {} };
    const m = measured.byFunction.get(name);
    if (m?.throttles !== undefined) cheap.throttles24h = m.throttles;
    if (m?.peakConcurrency !== undefined) cheap.peakConcurrency = m.peakConcurrency;
    if (arnRegion(configuration.FunctionArn ?? '') === LAMBDA_EDGE_REGION) {
      if (edge === undefined) cheap.unreadable = ['lambdaEdge'];
      else cheap.lambdaEdge = edge.has(configuration.FunctionArn ?? '');
    }
    return { name, cheap, screening: screen(cheap, funnel) };
  });
  const vpcFunctions: VpcFunction[] = entries
    .filter((e) => e.screening.candidate && hasSubnets(e.cheap.configuration))
    .map((e) => vpcOf(e.cheap.configuration));
  const egressOf = await resolveEgress(runId, vpcFunctions);

  const items: AuditItem[] = [];
  for (const entry of entries) {
    const arn = entry.cheap.configuration.FunctionArn ?? entry.name;
    const onError = (failure: ReadFailure): void => failed(failure.call, failure.error, entry.name);
    let assessment: Assessment = entry.screening.assessment;
    if (entry.screening.candidate) {
      const read: CandidateFacts = {};
      const configs = await provisionedConcurrencyConfigs(arn, limiters.controlPlane, onError);
      if (configs !== undefined) read.provisionedConcurrencyConfigs = configs;
      const status = await functionStatus(arn, limiters.getFunction, onError);
      if (status !== undefined) {
        read.reservedConcurrency = status.reservedConcurrency;
        if (status.state !== undefined) read.state = status.state;
        if (status.lastUpdateStatus !== undefined) read.lastUpdateStatus = status.lastUpdateStatus;
      }
      const signing = await codeSigningPolicy(arn, limiters.controlPlane, codeSigningCache, onError);
      if (signing !== undefined) read.codeSigning = signing;
      const attached = hasSubnets(entry.cheap.configuration);
      if (attached) {
        const egress = egressOf(vpcOf(entry.cheap.configuration));
        if (egress !== undefined) read.vpcEgress = egress;
        else failed('ec2:DescribeRouteTables', 'unreadable', entry.name);
      }
      assessment = assess(candidateFacts(entry.cheap, read, attached), funnel);
    } else if (assessment.verdict === 'ALREADY_PROTECTED') {
      const status = await functionStatus(arn, limiters.getFunction, onError);
      if (status !== undefined) {
        const readiness: Parameters<typeof protectedWithStatus>[2] = {};
        if (status.state !== undefined) readiness.state = status.state;
        if (status.lastUpdateStatus !== undefined) readiness.lastUpdateStatus = status.lastUpdateStatus;
        if (status.stateReason !== undefined) readiness.stateReason = status.stateReason;
        if (status.lastUpdateStatusReason !== undefined)
          readiness.lastUpdateStatusReason = status.lastUpdateStatusReason;
        assessment = protectedWithStatus(entry.cheap, entry.screening, readiness, funnel);
      }
    }
    const outcome: Outcome =
      assessment.verdict === 'SKIP'
        ? 'SKIPPED'
        : assessment.verdict === 'ALREADY_PROTECTED'
          ? 'ALREADY_PROTECTED'
          : 'WOULD_PROTECT';
    const owner = entry.cheap.tags[config.audit.ownerTagKey];
    items.push({
      functionName: entry.name,
      sk: `${startedAt}#${runId}#1-decision`,
      kind: 'decision',
      functionArn: assessment.functionArn ?? entry.cheap.configuration.FunctionArn ?? null,
      account: /^arn:[^:]+:lambda:[^:]+:(\d{12}):/.exec(arn)?.[1] ?? null,
      region: arnRegion(arn) ?? null,
      runId,
      decidedAt: startedAt,
      mode: 'dry-run',
      outcome,
      reasons: outcome === 'SKIPPED' ? [...assessment.reasons] : [],
      warnings: [...assessment.warnings],
      checks: assessment.checks,
      engineVersion: 'audit',
      configHash: '',
      repeat: false,
      ...(owner !== undefined ? { owner } : {}),
    });
    options.progress.increment();
  }
  return { runId, items, unreadable: [...failures.values()].sort((a, b) => a.call.localeCompare(b.call)) };
}

function vpcOf(configuration: FunctionConfiguration): VpcFunction {
  const vpc = configuration.VpcConfig;
  const subnetIds = Array.isArray(vpc?.SubnetIds) ? vpc.SubnetIds.filter((s) => typeof s === 'string') : [];
  return { subnetIds, ...(typeof vpc?.VpcId === 'string' ? { vpcId: vpc.VpcId } : {}) };
}
