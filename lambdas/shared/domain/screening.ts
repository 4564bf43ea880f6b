/**
 * Gathering in two steps, so the expensive reads are made only where they can change the decision. PURE.
 *
 * Step 1 (every function): the inventory's configuration, tags and the batched metrics. The funnel runs on these
 * with optimistic stand-ins for the facts not read yet (no provisioned concurrency, egress `nat`, no reserved
 * concurrency, readiness not reported). Those stand-ins can only make their gates pass, never fail, so:
 * - ELIGIBLE → a candidate: step 2 reads the real facts and the funnel decides again on them;
 * - SKIP or ALREADY_PROTECTED → already decided without the expensive facts. That decision is recorded with the
 *   gates whose facts were not read marked `not_evaluated` ("not gathered"), not with the stand-ins' passes.
 * Step 2 (candidates only): ListProvisionedConcurrencyConfigs, GetFunction, DescribeRouteTables.
 */
import { assess, type FunnelContext } from './funnel';
import type { Assessment, FunctionConfiguration, FunctionFacts, VpcEgress } from './types';

/** Gates whose facts are read only for candidates: VPC egress, provisioned concurrency, readiness, headroom. */
export const CANDIDATE_ONLY_GATES: ReadonlySet<number> = new Set([7, 9, 13, 15]);
const VPC_GATE = 7;

/** The facts every function gets (step 1). Metric facts are undefined when they could not be read. */
export interface CheapFacts {
  configuration: FunctionConfiguration;
  tags: Record<string, string>;
  throttles24h?: number;
  peakConcurrency?: number;
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
  return facts;
}

/** Step 1: decides whether the function needs the expensive facts. */
export function screen(cheap: CheapFacts, context: FunnelContext): Screening {
  const { State: _state, LastUpdateStatus: _update, ...configuration } = cheap.configuration;
  const optimistic = assess(
    { ...cheapFactsDocument(cheap), configuration, provisionedConcurrencyConfigs: [], vpcEgress: 'nat' },
    context,
  );
  if (optimistic.verdict === 'ELIGIBLE') return { candidate: true, assessment: optimistic };
  const why = optimistic.verdict === 'ALREADY_PROTECTED' ? 'already protected' : 'skipped by other gates';
  const vpc = hasSubnets(cheap.configuration);
  return {
    candidate: false,
    assessment: {
      ...optimistic,
      checks: optimistic.checks.map((check) =>
        CANDIDATE_ONLY_GATES.has(check.gate) && (check.gate !== VPC_GATE || vpc)
          ? { ...check, status: 'not_evaluated', observed: `not gathered: ${why}` }
          : check,
      ),
    },
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
  const unreadable = [
    ...(read.reservedConcurrency === undefined ? ['reservedConcurrency'] : []),
    ...(attachedToSubnets && read.vpcEgress === undefined ? ['vpcEgress'] : []),
  ];
  if (unreadable.length > 0) facts.unreadable = unreadable;
  return facts;
}
