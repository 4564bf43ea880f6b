/**
 * Gathering in two steps, so the expensive reads are made only where they can change the decision. PURE.
 *
 * Step 1 (every function): the inventory's configuration, tags and the run-level Lambda@Edge signal. The funnel runs
 * on these with optimistic stand-ins for the facts not read yet (no provisioned concurrency, egress `nat`, no
 * throttles and no concurrency peak, no reserved concurrency, readiness not reported, no code signing config, no
 * back-off). Issue 11: the CloudWatch metrics are step-2 facts too (read in one GetMetricData call per 250
 * candidates), so an already-protected or configuration-skipped function costs no metric.
 * Those stand-ins can only make their gates pass, never fail, so:
 * - ELIGIBLE → a candidate: step 2 reads the real facts and the funnel decides again on them;
 * - SKIP or ALREADY_PROTECTED → already decided without the expensive facts. That decision is recorded with the
 *   gates whose facts were not read marked `not_evaluated` ("not gathered"), not with the stand-ins' passes.
 * Step 2 (candidates only): ListProvisionedConcurrencyConfigs, GetFunction, DescribeRouteTables,
 * GetFunctionCodeSigningConfig (+ GetCodeSigningConfig), the back-off record.
 * ALREADY_PROTECTED functions get one read too: GetFunction for their readiness (`protectedWithStatus`), because
 * ListFunctions omits LastUpdateStatus and a protected function whose update failed must say so every run
 * (issue 8 item 10).
 */
import { assess, type FunnelContext } from './funnel';
import type { Assessment, FunctionConfiguration, FunctionFacts, VpcEgress } from './types';

/**
 * Gates whose facts are read only for candidates: VPC egress, provisioned concurrency, recent throttles (issue 11:
 * the metrics are read only for candidates), readiness, headroom, code signing, back-off.
 */
export const CANDIDATE_ONLY_GATES: ReadonlySet<number> = new Set([7, 9, 10, 13, 15, 21, 22]);
const VPC_GATE = 7;
const READINESS_GATE = 13;
const THROTTLE_GATE = 10;

/** The facts every function gets (step 1). Metric facts are undefined when they could not be read. */
export interface CheapFacts {
  configuration: FunctionConfiguration;
  tags: Record<string, string>;
  throttles24h?: number;
  peakConcurrency?: number;
  /** From the inventory (take-inventory reads CloudFront once per run). */
  lambdaEdge?: boolean;
  /** Run-level reads that failed (e.g. 'lambdaEdge'). */
  unreadable?: string[];
  /** The real size of the variables map (the inventory's values are fixed-width placeholders). */
  variablesBytes?: number;
  /**
   * True once the metrics were read for this function (a candidate): a missing metric is then missing (FACTS_MISSING),
   * no longer stood in for. @default false
   */
  metricsRead?: boolean;
}

export interface Screening {
  candidate: boolean;
  /** For a non-candidate, the decision to record; for a candidate, the preliminary one (not recorded). */
  assessment: Assessment;
}

/** True when the function is attached to subnets (a malformed VpcConfig counts as attached: never assume less). */
export function hasSubnets(configuration: FunctionConfiguration): boolean {
  const vpc: unknown = configuration.VpcConfig;
  if (vpc === undefined || vpc === null) return false;
  if (typeof vpc !== 'object') return true;
  const subnets: unknown = (vpc as Record<string, unknown>)['SubnetIds'];
  if (subnets === undefined || subnets === null) return false;
  return !Array.isArray(subnets) || subnets.length > 0;
}

/** The facts document of step 1 (missing metrics stay absent: the funnel reports them as missing). */
export function cheapFactsDocument(cheap: CheapFacts): FunctionFacts {
  const facts: FunctionFacts = { configuration: cheap.configuration, tags: cheap.tags };
  if (cheap.throttles24h !== undefined) facts.throttles24h = cheap.throttles24h;
  if (cheap.peakConcurrency !== undefined) facts.peakConcurrency = cheap.peakConcurrency;
  if (cheap.lambdaEdge !== undefined) facts.lambdaEdge = cheap.lambdaEdge;
  if (cheap.variablesBytes !== undefined) facts.variablesBytes = cheap.variablesBytes;
  if (cheap.unreadable !== undefined && cheap.unreadable.length > 0) facts.unreadable = [...cheap.unreadable];
  return facts;
}

/** Step 1's facts document: metrics not read yet stand in as no throttles and no concurrency (they only pass). */
function optimisticMetrics(cheap: CheapFacts): FunctionFacts {
  const facts = cheapFactsDocument(cheap);
  if (cheap.metricsRead === true) return facts;
  facts.throttles24h = cheap.throttles24h ?? 0;
  facts.peakConcurrency = cheap.peakConcurrency ?? 0;
  return facts;
}

/** Step 1's stand-ins for the facts read only for candidates (they can only pass): a new document each call. */
function optimisticFacts(cheap: CheapFacts, configuration: FunctionConfiguration): FunctionFacts {
  const facts = optimisticMetrics(cheap);
  facts.configuration = configuration;
  // codeSigning and previousRejection absent = "no config" and "no back-off".
  facts.provisionedConcurrencyConfigs = [];
  facts.vpcEgress = 'nat';
  return facts;
}

/** Step 1: decides whether the function needs the expensive facts. */
export function screen(cheap: CheapFacts, context: FunnelContext): Screening {
  const {
    State: _state,
    LastUpdateStatus: _update,
    StateReason: _stateReason,
    LastUpdateStatusReason: _updateReason,
    ...configuration
  } = cheap.configuration;
  const optimistic = assess(optimisticFacts(cheap, configuration), context);
  if (optimistic.verdict === 'ELIGIBLE') return { candidate: true, assessment: optimistic };
  const why = optimistic.verdict === 'ALREADY_PROTECTED' ? 'already protected' : 'skipped by other gates';
  const vpc = hasSubnets(cheap.configuration);
  return {
    candidate: false,
    assessment: {
      ...optimistic,
      checks: optimistic.checks.map((check) =>
        CANDIDATE_ONLY_GATES.has(check.gate) &&
        (check.gate !== VPC_GATE || vpc) &&
        (check.gate !== THROTTLE_GATE || cheap.metricsRead !== true)
          ? { ...check, status: 'not_evaluated', observed: `not gathered: ${why}` }
          : check,
      ),
    },
  };
}

/** What GetFunction says about readiness (issue 8 item 10). */
export interface ReadinessFacts {
  state?: string;
  lastUpdateStatus?: string;
  stateReason?: string;
  lastUpdateStatusReason?: string;
}

/**
 * The decision on an ALREADY_PROTECTED function once its readiness is read: gate 13 is evaluated on it (a failed
 * update is the warning PROTECTION_UNHEALTHY), the other candidate-only gates stay "not gathered".
 * @param screening the screening of a non-candidate whose verdict is ALREADY_PROTECTED
 */
export function protectedWithStatus(
  cheap: CheapFacts,
  screening: Screening,
  status: ReadinessFacts,
  context: FunnelContext,
): Assessment {
  const configuration: FunctionConfiguration = { ...cheap.configuration };
  if (status.state !== undefined) configuration.State = status.state;
  if (status.lastUpdateStatus !== undefined) configuration.LastUpdateStatus = status.lastUpdateStatus;
  if (status.stateReason !== undefined) configuration.StateReason = status.stateReason;
  if (status.lastUpdateStatusReason !== undefined) configuration.LastUpdateStatusReason = status.lastUpdateStatusReason;
  const fresh = assess(optimisticFacts(cheap, configuration), context);
  if (fresh.verdict !== 'ALREADY_PROTECTED') return screening.assessment;
  const readiness = fresh.checks.find((c) => c.gate === READINESS_GATE);
  if (readiness === undefined) return screening.assessment;
  const checks = screening.assessment.checks.map((c) => (c.gate === READINESS_GATE ? readiness : c));
  const warnings: Assessment['warnings'] = screening.assessment.warnings.filter((c) => c !== 'PROTECTION_UNHEALTHY');
  const reasons: Assessment['reasons'] = screening.assessment.reasons.filter((c) => c !== 'FUNCTION_NOT_READY');
  if (readiness.status === 'warn' && readiness.code === 'PROTECTION_UNHEALTHY') warnings.push('PROTECTION_UNHEALTHY');
  if (readiness.status === 'fail' && readiness.code === 'FUNCTION_NOT_READY') reasons.push('FUNCTION_NOT_READY');
  const gateOf = (code: string): number => checks.find((c) => c.code === code)?.gate ?? 0;
  return {
    ...screening.assessment,
    checks,
    reasons: reasons.sort((a, b) => gateOf(a) - gateOf(b)),
    warnings: warnings.sort((a, b) => gateOf(a) - gateOf(b)),
  };
}

/** What step 2 read; undefined = the read failed (the fact is missing). */
export interface CandidateFacts {
  provisionedConcurrencyConfigs?: unknown[];
  /** undefined: unreadable; null: none reserved. */
  reservedConcurrency?: number | null;
  state?: string;
  lastUpdateStatus?: string;
  /** Only for functions with subnets; undefined when the route tables could not be read. */
  vpcEgress?: VpcEgress;
  /** undefined: unreadable. */
  codeSigning?: NonNullable<FunctionFacts['codeSigning']>;
  /** Set only while a back-off is active (domain/backoff.ts). */
  previousRejection?: { reason: string; nextAttemptAt: string };
  /** false when the back-off records could not be read. @default true */
  rejectionsReadable?: boolean;
}

/**
 * The complete facts of a candidate. A read that failed is listed in `unreadable`, so the funnel skips with
 * FACTS_MISSING instead of taking the document's default for an absent fact ("none reserved", egress "unknown").
 */
export function candidateFacts(cheap: CheapFacts, read: CandidateFacts, attachedToSubnets: boolean): FunctionFacts {
  const configuration: FunctionConfiguration = { ...cheap.configuration };
  if (read.state !== undefined) configuration.State = read.state;
  if (read.lastUpdateStatus !== undefined) configuration.LastUpdateStatus = read.lastUpdateStatus;
  const facts: FunctionFacts = { ...cheapFactsDocument(cheap), configuration };
  if (read.provisionedConcurrencyConfigs !== undefined)
    facts.provisionedConcurrencyConfigs = read.provisionedConcurrencyConfigs;
  if (read.reservedConcurrency !== undefined) facts.reservedConcurrency = read.reservedConcurrency;
  if (read.vpcEgress !== undefined) facts.vpcEgress = read.vpcEgress;
  if (read.codeSigning !== undefined) facts.codeSigning = read.codeSigning;
  if (read.previousRejection !== undefined) facts.previousRejection = read.previousRejection;
  const unreadable = [
    ...(cheap.unreadable ?? []),
    ...(read.reservedConcurrency === undefined ? ['reservedConcurrency'] : []),
    ...(attachedToSubnets && read.vpcEgress === undefined ? ['vpcEgress'] : []),
    ...(read.codeSigning === undefined ? ['codeSigning'] : []),
    ...(read.rejectionsReadable === false ? ['previousRejection'] : []),
  ];
  if (unreadable.length > 0) facts.unreadable = unreadable;
  return facts;
}
