/**
 * The domain's shared vocabulary: facts, checks, verdicts, audit items, and the payloads that pass between the
 * state machine's states. PURE: no AWS SDK import, no process.env, no clock.
 */

/** True for a JSON object (not null, not an array): the one shape guard every untrusted input goes through. */
export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

/** The subset of Lambda's `FunctionConfiguration` the engine reads, in AWS's own shape (every field optional). */
export interface FunctionConfiguration {
  FunctionName?: string;
  FunctionArn?: string;
  PackageType?: string;
  Runtime?: string;
  Handler?: string;
  Architectures?: string[];
  MemorySize?: number;
  Timeout?: number;
  Environment?: { Variables?: Record<string, string> };
  Layers?: Array<{ Arn?: string; CodeSize?: number }>;
  VpcConfig?: { SubnetIds?: string[]; SecurityGroupIds?: string[]; VpcId?: string };
  SnapStart?: { ApplyOn?: string; OptimizationStatus?: string };
  State?: string;
  StateReason?: string;
  LastUpdateStatus?: string;
  LastUpdateStatusReason?: string;
  RevisionId?: string;
  [key: string]: unknown;
}

export type VpcEgress = 'nat' | 'none' | 'unknown';

/**
 * One function's facts: the document the funnel decides on (issue "safety funnel").
 * `assess` accepts anything; fields that are missing or malformed make the gates that need them fail with
 * FACTS_MISSING.
 */
export interface FunctionFacts {
  configuration: FunctionConfiguration;
  tags?: Record<string, string>;
  provisionedConcurrencyConfigs?: unknown[];
  throttles24h?: number | null;
  vpcEgress?: VpcEgress;
  reservedConcurrency?: number | null;
  peakConcurrency?: number | null;
  /**
   * Facts whose read failed after retries (e.g. `["vpcEgress", "reservedConcurrency"]`). Where the document's own
   * default for an absent fact would be optimistic (no VPC egress known, none reserved), this keeps a failed read
   * from passing as that default: the funnel treats each listed fact as missing (FACTS_MISSING).
   */
  unreadable?: string[];
  /**
   * True when a CloudFront distribution associates any version of the function (Lambda@Edge). Absent: false.
   * 'lambdaEdge' in `unreadable` → FACTS_MISSING, for functions in us-east-1 only.
   */
  lambdaEdge?: boolean;
  /** The function's code signing policy (GetFunctionCodeSigningConfig + GetCodeSigningConfig). Absent: 'none'. */
  codeSigning?: 'none' | 'Warn' | 'Enforce';
  /** Set by the caller only while a back-off after a deterministic rejection is active (domain/backoff.ts). */
  previousRejection?: { reason: string; nextAttemptAt: string };
  /** The exact byte size of the real variables map, carried by redacted documents (placeholders are fixed-width). */
  variablesBytes?: number;
}

export const REASON_CODES = [
  'EXCLUDED',
  'PACKAGE_IMAGE',
  'ARCH_ARM64',
  'RUNTIME_UNSUPPORTED',
  'MEMORY_LOW',
  'TIMEOUT_NEAR_LIMIT',
  'ENV_QUOTA',
  'VPC_NO_NAT',
  'SNAPSTART',
  'PROVISIONED_CONCURRENCY',
  'RECENTLY_THROTTLED',
  'LAYER_LIMIT',
  'WRAPPER_CONFLICT',
  'FUNCTION_NOT_READY',
  'FACTS_MISSING',
  'CONCURRENCY_SATURATED',
  /** Our layer without our wrapper variable, or the reverse: a person must look. */
  'PARTIAL_PROTECTION',
  /** One of our variables (other than the wrapper) is already set to a different value: we never overwrite. */
  'ENV_CONFLICT',
  /** Protect: the function changed between our read and our write (RevisionId precondition failed). */
  'CHANGED_DURING_RUN',
  /** Protect: the run's Defender layer check failed, so nothing is changed this run. */
  'DEFENDER_LAYER_INVALID',
  /** A Defender installed outside this tool (full foreign or manual install). */
  'DEFENDER_PRESENT',
  /** The function is associated with a CloudFront distribution (Lambda@Edge): no layers, no variables. */
  'LAMBDA_EDGE',
  /** A code signing config with UntrustedArtifactOnDeployment = Enforce: AWS rejects our update. */
  'CODE_SIGNING_ENFORCED',
  /** AWS deterministically rejected our update before; backing off (domain/backoff.ts). */
  'PREVIOUSLY_REJECTED',
  /** Protect: the function was deleted during the run (ResourceNotFoundException). */
  'FUNCTION_DELETED',
  /**
   * Protect: the function's own TW_POLICY could not be had from the Prisma Cloud Console (defender.policySource):
   * Console unreachable, 401/403, 429 or 5xx after retries, a malformed answer, or its credentials secret missing or
   * denied. Nothing was changed; the next run tries again.
   */
  'DEFENDER_POLICY_UNAVAILABLE',
] as const;
export type ReasonCode = (typeof REASON_CODES)[number];

export const WARNING_CODES = [
  'VPC_NO_NAT',
  'DEFENDER_OUTDATED',
  /** One of our variables holds an older value that the engine wrote. */
  'DEFENDER_CONFIG_OUTDATED',
  /** An ALREADY_PROTECTED function whose LastUpdateStatus is Failed (or State Failed/Inactive). */
  'PROTECTION_UNHEALTHY',
] as const;
export type WarningCode = (typeof WARNING_CODES)[number];

export type Code = ReasonCode | WarningCode;

export type CheckStatus = 'pass' | 'fail' | 'warn' | 'not_evaluated';

/** One gate's result. `observed` and `limit` never carry an environment variable value. */
export interface Check {
  gate: number;
  code: Code;
  status: CheckStatus;
  observed: string | number | boolean | null;
  limit: string | number | boolean | null;
  message: string;
  remediation: string;
}

export type Verdict = 'ELIGIBLE' | 'SKIP' | 'ALREADY_PROTECTED';

/** The funnel's decision on one function. */
export interface Assessment {
  functionName: string | null;
  functionArn: string | null;
  verdict: Verdict;
  reasons: ReasonCode[];
  warnings: WarningCode[];
  checks: Check[];
}

export type Mode = 'dry-run' | 'protect';

export const OUTCOMES = [
  'PROTECTED',
  'WOULD_PROTECT',
  'ALREADY_PROTECTED',
  'SKIPPED',
  'DEFERRED',
  'FAILED',
  'ROLLED_BACK',
  'PENDING',
] as const;
export type Outcome = (typeof OUTCOMES)[number];

/**
 * Run-level audit items (kind "run"): RUN_OVERLAP, a run that found another one still running and ended at once;
 * LEASE_TAKEN_OVER, a run that found the lease held by an execution that no longer runs and took it (issue 9).
 */
export type RunOutcome = 'RUN_OVERLAP' | 'LEASE_TAKEN_OVER' | 'REPEATS';

/** One group of functions whose repeated decision is the same. */
export interface RepeatGroup {
  outcome: Outcome;
  reasons: string[];
  warnings: string[];
  /** The owner tag value shared by the group's functions (absent: none). */
  owner?: string;
  /** Indexes into `functions`. */
  members: number[];
}

/** The payload of a repeats item. */
export interface Repeated {
  /** The functions, in the batch's order. */
  functions: string[];
  /** For each function (same index), the sort key of its last full decision item, whose checks this repeats. */
  sameAs: string[];
  groups: RepeatGroup[];
}

/**
 * What protection touches, before or after. No trace of a customer value is kept: variable names and the byte size
 * of the whole variables map only. Our own variables (config.defender.environment keys, AWS_LAMBDA_EXEC_WRAPPER,
 * ORIGINAL_HANDLER) present in the image carry a keyed MAC (domain/mac.ts) so that rollback can tell "still the value
 * we set"; no other variable ever gets one.
 */
export interface ConfigurationImage {
  layers: string[];
  variableNames: string[];
  variablesBytes: number;
  handler: string | null;
  revisionId: string | null;
  ourValueMacs: Record<string, string>;
}

/** One item of the audit table. Append-only. */
export interface AuditItem {
  /** Partition key. For run-level items: "#run". */
  functionName: string;
  /**
   * Sort key: `${runStartedAt}#${runId}#${stage}` (domain/audit.ts auditSortKey), stage `0-pending` or `1-decision`
   * (run-level items: the outcome). Deterministic per (run, function, stage): one final decision per run.
   * Items written before issue 9 have `${decidedAt}#${runId}#${outcome}`.
   */
  sk: string;
  /** 'repeats': a batch's compact record of unchanged repeats (domain/repeats.ts), expanded by every reader. */
  kind: 'decision' | 'run' | 'repeats';
  functionArn: string | null;
  account: string | null;
  region: string | null;
  runId: string;
  decidedAt: string;
  mode: Mode;
  outcome: Outcome | RunOutcome;
  reasons: string[];
  warnings: string[];
  checks: Check[];
  before?: ConfigurationImage;
  after?: ConfigurationImage;
  /** Human detail (AWS's failure reason, the rollback actor, the overlapping run). Never a variable value. */
  detail?: string;
  engineVersion: string;
  configHash: string;
  /**
   * TTL attribute, epoch seconds. Absent on change items (PENDING, PROTECTED, ROLLED_BACK, a FAILED with a
   * before-image): the record a rollback needs lives as long as the change (issue 8 item 4).
   */
  expiresAt?: number;
  /** True when this decision repeats the function's previous one unchanged (short retention, no notification). */
  repeat: boolean;
  /** GSI byChange (sparse): "CHANGE" on PENDING, PROTECTED, FAILED and ROLLED_BACK items. */
  changeKey?: 'CHANGE';
  /** GSI byReason (sparse): the first reason of a SKIPPED item. */
  primaryReason?: string;
  /** Owner tag value (audit.ownerTagKey), when the function has one. */
  owner?: string;
  /**
   * True on a decision written by a later run for this run's PENDING whose protect invocation never finished
   * (lambdas/shared/reconcile.ts).
   */
  reconciled?: boolean;
  /**
   * True on a final record whose update AWS refused (nothing was changed, though a PENDING preceded it): not a change
   * a rollback could undo, and kept only as long as any other decision (issue 8 review).
   */
  nothingChanged?: boolean;
  /** On a ROLLED_BACK record: the sort key of the change record it undid (a later rollback goes on to the one before). */
  undoes?: string;
  /** On a repeats item (kind 'repeats'): the functions it records and their decisions (domain/repeats.ts). */
  repeated?: Repeated;
  /** On a decision expanded from a repeats item: the sort key of the function's full item whose checks it repeats. */
  sameAs?: string;
  /** On a decision expanded from a repeats item: the sort key of that repeats item (partition `#run`). */
  recordedIn?: string;
}

/** One entry of the run's inventory (the S3 object the Distributed Map reads). Variable values are redacted. */
export interface InventoryItem {
  configuration: FunctionConfiguration;
  tags: Record<string, string>;
  /** True when the function is in the persistent exclusion list (rolled back, not yet included again). */
  persistentlyExcluded?: boolean;
  /**
   * The exact byte size of the REAL variables map (redaction placeholders are fixed-width): the funnel's
   * `FunctionFacts.variablesBytes`. Absent when the variables are unreadable or not a map of strings.
   */
  variablesBytes?: number;
  /**
   * Keyed MACs (domain/mac.ts) of the function's values of OUR variables that differ from the configured literal,
   * by name: assess recognises an older value the engine wrote (issue 8 item 7) without ever seeing it.
   */
  ourValueMacs?: Record<string, string>;
  /** True when a CloudFront distribution associates the function (read once per run, us-east-1 only). */
  lambdaEdge?: boolean;
  /** Facts whose run-level read failed (e.g. `["lambdaEdge"]`): the funnel treats them as missing. */
  unreadable?: string[];
}

/** What the state machine passes to each child workflow (ItemBatcher BatchInput). */
export interface RunContext {
  runId: string;
  startedAt: string;
  /** False when the run's Defender layer check failed: nothing is changed this run. */
  protectionAllowed: boolean;
  /**
   * Why protection is not allowed (take-inventory's layer check, issue 9): DEFENDER_LAYER_INVALID when the layer was
   * read and is wrong, FACTS_MISSING when it could not be checked (throttled, 5xx, access denied). null when allowed
   * or in dry-run; absent (an input from before issue 9): DEFENDER_LAYER_INVALID.
   */
  protectionBlockedBy?: 'DEFENDER_LAYER_INVALID' | 'FACTS_MISSING' | null;
  /**
   * Child workflows that may run at once this run (domain/batching.ts): each paces its Lambda control-plane calls
   * at `rates.controlPlanePerSecond / workers`. Absent: `rates.maxConcurrency`.
   */
  workers?: number;
}

/** Input of the assess-batch handler (Distributed Map child with ItemBatcher). */
export interface AssessBatchInput {
  Items: InventoryItem[];
  BatchInput: RunContext;
}

/** One eligible function handed from assess-batch to protect. Facts are redacted (values replaced). */
export interface ProtectRequest extends RunContext {
  functionName: string;
  functionArn: string;
  facts: FunctionFacts;
  /**
   * True when assess already claimed this function's protection slot (issue 11); protect then only renews the run's
   * lease. Absent (a request from an engine before issue 11, in flight across a deploy): protect claims it itself.
   */
  slotClaimed?: boolean;
}

export interface AssessBatchOutput {
  eligible: ProtectRequest[];
  counts: Partial<Record<Outcome, number>>;
}

export interface ProtectOutput {
  functionName: string;
  outcome: Outcome;
  reasons: string[];
}
