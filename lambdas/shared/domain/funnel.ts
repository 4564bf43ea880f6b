/**
 * The safety funnel: one function's facts in, one decision out (issue 2, "the gates, their codes, and the verdict").
 *
 * PURE: no AWS SDK, no process.env, no clock. `assess` never throws, whatever it is given: a fact that a gate needs
 * and cannot read makes that gate `not_evaluated` and the facts gate (14) fail with FACTS_MISSING. Unknown is never
 * safe.
 *
 * Every gate whose facts are present is evaluated, so a report shows every reason. Gates 0-15 are the issue's;
 * 16-23 are extensions:
 *   16 ENV_CONFLICT        one of our variables (other than the exec wrapper) is set to a value that is not ours;
 *                          we never overwrite a customer's variable, so a rollback can restore exactly what was there
 *   17 PARTIAL_PROTECTION  half a Defender: our layer without our marker, our marker without our layer, our layer
 *                          attached at two versions, or any lone mark of a Defender (a Defender handler,
 *                          ORIGINAL_HANDLER, TW_POLICY, a Defender wrapper path) without a complete install
 *   18 DEFENDER_OUTDATED   (warning) the Defender layer is attached at another version than `defender.layerArn`
 *   19 DEFENDER_PRESENT    a complete Defender installed outside this tool (a Defender handler with ORIGINAL_HANDLER,
 *                          or a Defender wrapper, with a layer), whatever method is configured
 *   20 LAMBDA_EDGE         a CloudFront distribution associates the function (`lambdaEdge`); the fact matters, and
 *                          its failed read is FACTS_MISSING, only in us-east-1 where Lambda@Edge functions live
 *   21 CODE_SIGNING_ENFORCED  the function's code signing config says Enforce (`codeSigning`; absent = none)
 *   22 PREVIOUSLY_REJECTED AWS rejected our update deterministically and the back-off is active (`previousRejection`)
 *   23 DEFENDER_CONFIG_OUTDATED (warning) one of our variables holds a value the engine wrote earlier
 *                          (`FunnelContext.engineWritten`), not the configured one: still ours, not a conflict
 * Gate 13 carries the warning PROTECTION_UNHEALTHY instead of FUNCTION_NOT_READY on a protected function whose last
 * update failed (or State Failed/Inactive), with AWS's reason.
 *
 * Variables whose value comes from `{ ssmParameter }` are not known to the funnel unless the caller passes the
 * resolved values (`FunnelContext.resolvedEnvironment`; assess-batch and the protect Lambda do). For an unresolved
 * value, absence of the variable counts as "not set"; presence counts as ours for the verdict and gate 17, but gate
 * 16 cannot tell it from a conflict and says "value not resolved" (FACTS_MISSING, never a silent pass). For the size
 * gate its existing value is counted if the function has the variable, else SSM_VALUE_ESTIMATE_BYTES.
 *
 * No check ever carries an environment variable value: names, counts and sizes only.
 */
import {
  defenderVariables,
  EXEC_WRAPPER_VARIABLE,
  isConsoleVariable,
  ORIGINAL_HANDLER_VARIABLE,
  type Config,
  type OurValueSource,
} from './config';
import {
  isRecord,
  REASON_CODES,
  WARNING_CODES,
  type Assessment,
  type Check,
  type CheckStatus,
  type Code,
  type FunctionFacts,
  type ReasonCode,
  type VpcEgress,
  type WarningCode,
} from './types';

/** What the funnel needs besides the facts. */
export interface FunnelContext {
  config: Config;
  /** Function names rolled back and excluded until someone runs `zero-impact include`. @default - none */
  persistentExclusions?: ReadonlySet<string>;
  /** Functions whose names start with this are the engine's own and never touched. @default - none */
  engineFunctionPrefix?: string;
  /** The real values of `{ ssmParameter }` variables, by variable name. @default - unknown (see the module doc) */
  resolvedEnvironment?: Record<string, string>;
  /**
   * Names of our variables whose current value the caller recognised as one the engine wrote earlier (by MAC).
   * Such a variable is ours even when its value differs from the configured one: ours but outdated (gate 23).
   * @default - none
   */
  engineWritten?: ReadonlySet<string>;
}

/** Size assumed for an SSM-sourced value the funnel does not know and the function does not already carry. */
export const SSM_VALUE_ESTIMATE_BYTES = 1024;
/** The stand-in value of that size. */
const SSM_VALUE_ESTIMATE = 'x'.repeat(SSM_VALUE_ESTIMATE_BYTES);
/** Lambda's hard limit on layers per function. */
export const LAYER_SLOT_LIMIT = 5;
/** Lambda's hard limit on a function's timeout, in seconds. */
export const MAX_TIMEOUT_SECONDS = 900;

// ---------------------------------------------------------------------------------------------------------------
// Helpers the rest of the system shares

/** A layer version ARN without its version: `arn:...:layer:twistlock-defender:32` → `arn:...:layer:twistlock-defender`. */
export function defenderLayerName(arn: string): string {
  const match = /^(arn:[^:]+:lambda:[^:]*:[^:]*:layer:[^:]+)(?::\d+)?$/.exec(arn);
  return match?.[1] ?? arn;
}

/** True when both ARNs name the same layer (any version). */
export function sameLayer(a: string, b: string): boolean {
  return defenderLayerName(a) === defenderLayerName(b);
}

const utf8 = new TextEncoder();

/** Lambda's measure of the variables map: the UTF-8 byte length of its compact JSON. */
export function envVarsSize(vars: Readonly<Record<string, string>>): number {
  return utf8.encode(JSON.stringify(vars)).length;
}

/** A character JSON escapes, or one that is not printable ASCII. */
const NOT_COPIED_AS_IS = /[^\x20\x21\x23-\x5b\x5d-\x7e]/;

/**
 * The UTF-8 bytes of `JSON.stringify(text)`. Printable ASCII without `"` and `\` is copied as it is, inside two
 * quotes; any other text is measured by encoding its JSON (escapes, non-ASCII, lone surrogates).
 */
function jsonStringBytes(text: string): number {
  if (text === SSM_VALUE_ESTIMATE) return SSM_VALUE_ESTIMATE_BYTES + 2;
  return NOT_COPIED_AS_IS.test(text) ? utf8.encode(JSON.stringify(text)).length : text.length + 2;
}

/**
 * `envVarsSize` of a map, without building the object or its JSON: `{`, `"name":"value"` per entry, commas, `}`
 * (the compact JSON of an object of strings is exactly that, and UTF-8 lengths add up).
 */
export function variablesMapBytes(variables: ReadonlyMap<string, string>): number {
  let bytes = 2 + Math.max(0, variables.size - 1);
  for (const [name, value] of variables) bytes += jsonStringBytes(name) + 1 + jsonStringBytes(value);
  return bytes;
}

/** Our variables whose values are literal strings in the configuration (SSM-sourced ones are left out). */
export function ourEnvironmentLiterals(config: Config): Record<string, string> {
  return Object.fromEntries(
    Object.entries(config.defender.environment).flatMap(([name, value]) =>
      typeof value === 'string' ? [[name, value]] : [],
    ),
  );
}

/** Every code a funnel check can carry. */
export type GateCode = Exclude<
  Code,
  'CHANGED_DURING_RUN' | 'DEFENDER_LAYER_INVALID' | 'FUNCTION_DELETED' | 'DEFENDER_POLICY_UNAVAILABLE'
>;

export interface GateMessage {
  gate: number;
  /** The design's human message (the log line of a skip). */
  message: string;
  /** One line a team can act on, with this configuration's numbers. */
  remediation: (config: Config) => string;
}

const wrapperOrHandler = (config: Config): string =>
  config.defender.method === 'handler' ? 'handler' : EXEC_WRAPPER_VARIABLE;

/** Each funnel code's gate, human message and remediation. */
export const GATE_MESSAGES: Readonly<Record<GateCode, GateMessage>> = {
  EXCLUDED: {
    gate: 0,
    message: 'Excluded from protection',
    remediation: (c) =>
      `none needed; to protect it, remove it from exclusions.functions, remove the tag "${c.exclusions.tagKey}", or run zero-impact include after a rollback`,
  },
  PACKAGE_IMAGE: {
    gate: 1,
    message: 'Requires Dockerfile update',
    remediation: () => 'bake the Defender into the container image (Dockerfile)',
  },
  ARCH_ARM64: {
    gate: 2,
    message: 'ARM64 Incompatible',
    remediation: () => 'move the function to x86_64, or protect it by hand with an arm64 build of the Defender',
  },
  RUNTIME_UNSUPPORTED: {
    gate: 3,
    message: 'Unsupported Runtime',
    remediation: (c) => `move to a supported runtime (${c.funnel.supportedRuntimes.join(', ')})`,
  },
  MEMORY_LOW: {
    gate: 4,
    message: 'High Risk - OOM',
    remediation: (c) => `raise MemorySize to ${c.funnel.minMemoryMb} MB`,
  },
  TIMEOUT_NEAR_LIMIT: {
    gate: 5,
    message: 'Timeout too close to limit',
    remediation: (c) => `lower Timeout to ${MAX_TIMEOUT_SECONDS - c.funnel.timeoutBufferSeconds} s or less`,
  },
  ENV_QUOTA: {
    gate: 6,
    message: 'Env Var Quota Full',
    remediation: (c) => `remove unused environment variables so that ours fit within ${c.funnel.envQuotaBytes} bytes`,
  },
  VPC_NO_NAT: {
    gate: 7,
    message: 'VPC Detected - Verify NAT',
    remediation: () => "route the function's subnets to the internet through a NAT gateway (0.0.0.0/0)",
  },
  SNAPSTART: {
    gate: 8,
    message: 'SnapStart Enabled',
    remediation: () => "turn SnapStart off, or add the Defender in the function's own deployment",
  },
  PROVISIONED_CONCURRENCY: {
    gate: 9,
    message: 'Provisioned Concurrency Active',
    remediation: () => "add the Defender in the function's own deployment, when new warm instances are acceptable",
  },
  RECENTLY_THROTTLED: {
    gate: 10,
    message: 'Unstable - Recently Throttled',
    remediation: (c) =>
      `give the function more concurrency; it is assessed again once it has had no throttles for ${c.funnel.throttleLookbackHours} h`,
  },
  LAYER_LIMIT: {
    gate: 11,
    message: 'Layer Limit Reached',
    remediation: () => `merge or remove a layer to free one of the ${LAYER_SLOT_LIMIT} slots`,
  },
  WRAPPER_CONFLICT: {
    gate: 12,
    message: 'Exec Wrapper Already In Use',
    remediation: (c) =>
      c.defender.method === 'handler'
        ? `rename the function's own ${ORIGINAL_HANDLER_VARIABLE} variable; the Defender's handler method needs it`
        : `remove the function's own ${EXEC_WRAPPER_VARIABLE}, or chain it with the Defender by hand`,
  },
  FUNCTION_NOT_READY: {
    gate: 13,
    message: 'Function Not Ready',
    remediation: () => 'let the update in progress finish, or fix the failed update; it is assessed again next run',
  },
  FACTS_MISSING: {
    gate: 14,
    message: 'Facts Missing - Cannot Verify Safety',
    remediation: () => "grant the engine's read permissions and fix the listed facts; it is assessed again next run",
  },
  CONCURRENCY_SATURATED: {
    gate: 15,
    message: 'Near Reserved Concurrency Limit',
    remediation: (c) =>
      `raise reserved concurrency so that the peak stays under ${Math.round(c.funnel.concurrencySaturation * 100)}% of it`,
  },
  ENV_CONFLICT: {
    gate: 16,
    message: 'Env Var Conflict',
    remediation: () =>
      "rename the function's own variable that has the same name as one of ours; we never overwrite it",
  },
  PARTIAL_PROTECTION: {
    gate: 17,
    message: 'Partial Protection - Review Needed',
    remediation: (c) =>
      `add or remove the Defender layer and the ${wrapperOrHandler(c)} change together, by hand or with zero-impact rollback`,
  },
  DEFENDER_OUTDATED: {
    gate: 18,
    message: 'Defender Outdated',
    remediation: (c) => `update the Defender layer to ${c.defender.layerArn}`,
  },
  DEFENDER_PRESENT: {
    gate: 19,
    message: 'Defender Already Present',
    remediation: () =>
      'already runs a Defender installed outside this tool; leave it, or remove it and let the tool manage it',
  },
  LAMBDA_EDGE: {
    gate: 20,
    message: 'Lambda@Edge Function',
    remediation: () =>
      "Lambda@Edge supports neither layers nor environment variables: add the Defender in the function's own code, or leave it unprotected (if the Defender is attached, remove it: zero-impact rollback --function)",
  },
  CODE_SIGNING_ENFORCED: {
    gate: 21,
    message: 'Code Signing Enforced',
    remediation: () =>
      "AWS rejects an unsigned layer under an Enforce code signing policy: add a signed Defender layer in the function's own deployment, or set the policy to Warn (if the unsigned Defender is attached, remove it: zero-impact rollback --function)",
  },
  PREVIOUSLY_REJECTED: {
    gate: 22,
    message: 'Previously Rejected - Backing Off',
    remediation: () =>
      'fix the reason AWS gave; any deploy that changes the function ends the back-off, otherwise it is tried again after the time shown',
  },
  DEFENDER_CONFIG_OUTDATED: {
    gate: 23,
    message: 'Defender Configuration Outdated',
    remediation: () =>
      'none needed: protect mode updates our variable to the configured value in place (a rollback restores the previous one)',
  },
  PROTECTION_UNHEALTHY: {
    gate: 13,
    message: 'Protection Unhealthy',
    remediation: () =>
      "fix the function's failed update (see AWS's reason), or roll back with zero-impact rollback --function; it is reported every run until healthy",
  },
};

// ---------------------------------------------------------------------------------------------------------------
// What the funnel derives from a configuration, once per configuration object (issue 11: not once per function)

interface Derived {
  /** Each gate code's remediation with this configuration's numbers. */
  remediations: Readonly<Record<GateCode, string>>;
  /** `exclusions.functions`, in order, each with its compiled glob. */
  exclusions: ReadonlyArray<{ pattern: string; matcher: RegExp }>;
  /** `defenderVariables(config)`: our variables and where their values come from. */
  variables: ReadonlyArray<readonly [string, OurValueSource]>;
  supportedRuntimes: ReadonlySet<string>;
  /** Gate 3's limit: the supported runtimes, comma-separated. */
  runtimesLimit: string;
  /** `defenderLayerName(defender.layerArn)`. */
  layerName: string;
}

/** A `Config` is never changed once parsed, so what is derived from it is kept as long as the object lives. */
const derivedByConfig = new WeakMap<Config, Derived>();

function derivedFrom(config: Config): Derived {
  const cached = derivedByConfig.get(config);
  if (cached !== undefined) return cached;
  const remediations = Object.fromEntries(
    Object.entries(GATE_MESSAGES).map(([code, { remediation }]) => [code, remediation(config)]),
  ) as Record<GateCode, string>;
  const derived: Derived = {
    remediations,
    exclusions: config.exclusions.functions.map((pattern) => ({ pattern, matcher: globToRegExp(pattern) })),
    variables: Object.entries(defenderVariables(config)),
    supportedRuntimes: new Set(config.funnel.supportedRuntimes),
    runtimesLimit: config.funnel.supportedRuntimes.join(','),
    layerName: defenderLayerName(config.defender.layerArn),
  };
  derivedByConfig.set(config, derived);
  return derived;
}

/**
 * `sameLayer(arn, defender.layerArn)`: the layer name is a prefix of its ARN, so most ARNs are told apart at once.
 * `arn` may be a hole of a sparse Layers list (`find` visits holes): never ours.
 */
function isOurLayer(arn: string | undefined, ours: Ours): boolean {
  return (
    arn !== undefined && arn.startsWith(ours.derived.layerName) && defenderLayerName(arn) === ours.derived.layerName
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Reading the facts: every fact is either a value or the problem that keeps it from being known

type Fact<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly problem: string };
type Obj = Readonly<Record<string, unknown>>;

const known = <T>(value: T): Fact<T> => ({ ok: true, value });
const notKnown = <T>(problem: string): Fact<T> => ({ ok: false, problem });

/** An own property only: inherited names such as `toString` are never facts. */
function own(record: Obj, key: string): unknown {
  return Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}

const isString = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0;
const isPositive = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v > 0;
const isNonNegative = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

interface FieldSpec<T> {
  /** Turns the raw value into the fact, or undefined when it is malformed. */
  parse: (raw: unknown) => T | undefined;
  /** What a well-formed value looks like, for the problem text (never the value itself). */
  expected: string;
  /** AWS's default when the field is absent; without it an absent field is missing. */
  absent?: T;
}

/** Reads `key` of a record that may itself be unknown; absent and null are the same. */
function field<T>(source: Fact<Obj>, path: string, key: string, spec: FieldSpec<T>): Fact<T> {
  if (!source.ok) return source;
  const raw = own(source.value, key);
  if (raw === undefined || raw === null) {
    return spec.absent !== undefined ? known(spec.absent) : notKnown(`${path}: missing`);
  }
  const parsed = spec.parse(raw);
  return parsed === undefined ? notKnown(`${path}: expected ${spec.expected}`) : known(parsed);
}

function parseStringArray(raw: unknown): string[] | undefined {
  return Array.isArray(raw) && raw.every(isString) ? [...raw] : undefined;
}

function parseArchitectures(raw: unknown): string[] | undefined {
  const list = parseStringArray(raw);
  return list !== undefined && list.length > 0 && list.every((a) => a === 'x86_64' || a === 'arm64') ? list : undefined;
}

function parseStringMap(raw: unknown): ReadonlyMap<string, string> | undefined {
  if (!isRecord(raw)) return undefined;
  const entries = Object.entries(raw);
  return entries.every(([, v]) => isString(v)) ? new Map(entries as Array<[string, string]>) : undefined;
}

/** `Environment`: the variables, unknown when Lambda could not decrypt them (`Environment.Error`). */
function parseEnvironment(raw: unknown): ReadonlyMap<string, string> | undefined {
  if (!isRecord(raw) || own(raw, 'Error') !== undefined) return undefined;
  const variables = own(raw, 'Variables');
  return variables === undefined || variables === null ? new Map() : parseStringMap(variables);
}

function parseLayers(raw: unknown): string[] | undefined {
  if (!Array.isArray(raw)) return undefined;
  const arns = raw.map((layer: unknown) => (isRecord(layer) ? own(layer, 'Arn') : undefined));
  return arns.every(isString) ? arns : undefined;
}

function parseSubnetCount(raw: unknown): number | undefined {
  if (!isRecord(raw)) return undefined;
  const subnets = own(raw, 'SubnetIds');
  if (subnets === undefined || subnets === null) return 0;
  return parseStringArray(subnets)?.length;
}

function parseApplyOn(raw: unknown): string | undefined {
  const applyOn = isRecord(raw) ? own(raw, 'ApplyOn') : undefined;
  return isString(applyOn) ? applyOn : undefined;
}

function parseVpcEgress(raw: unknown): VpcEgress | undefined {
  return raw === 'nat' || raw === 'none' || raw === 'unknown' ? raw : undefined;
}

const stringOf = (raw: unknown): string | undefined => (isString(raw) && raw.length > 0 ? raw : undefined);

/** One function's facts, read once. */
interface Reading {
  name: Fact<string>;
  arn: Fact<string>;
  tags: Fact<ReadonlyMap<string, string>>;
  packageType: Fact<'Zip' | 'Image'>;
  architectures: Fact<readonly string[]>;
  runtime: Fact<string>;
  handler: Fact<string>;
  memorySize: Fact<number>;
  timeout: Fact<number>;
  variables: Fact<ReadonlyMap<string, string>>;
  layers: Fact<readonly string[]>;
  subnetCount: Fact<number>;
  vpcEgress: Fact<VpcEgress>;
  snapStart: Fact<string>;
  provisionedConfigs: Fact<number>;
  throttles: Fact<number>;
  state: Fact<string | null>;
  lastUpdateStatus: Fact<string | null>;
  reservedConcurrency: Fact<number | null>;
  peakConcurrency: Fact<number>;
  /** `StateReason` / `LastUpdateStatusReason`: AWS's words, scrubbed, for PROTECTION_UNHEALTHY. */
  statusReason: Fact<string | null>;
  lambdaEdge: Fact<boolean>;
  codeSigning: Fact<CodeSigning>;
  previousRejection: Fact<{ reason: string; nextAttemptAt: string } | null>;
  /** The real size of the variables map, when a redacted document carries it. */
  variablesBytes: Fact<number | null>;
}

type CodeSigning = NonNullable<FunctionFacts['codeSigning']>;

/** The facts document keys that `unreadable` may name, and the reading each one stands for. */
const UNREADABLE_FACTS: Readonly<Record<string, keyof Reading>> = {
  tags: 'tags',
  vpcEgress: 'vpcEgress',
  provisionedConcurrencyConfigs: 'provisionedConfigs',
  throttles24h: 'throttles',
  reservedConcurrency: 'reservedConcurrency',
  peakConcurrency: 'peakConcurrency',
  lambdaEdge: 'lambdaEdge',
  codeSigning: 'codeSigning',
  previousRejection: 'previousRejection',
};

/** Marks every fact listed in `unreadable` as missing: a failed read never passes as the fact's default. */
function withUnreadable(facts: unknown, reading: Reading): Reading {
  const listed = isRecord(facts) ? own(facts, 'unreadable') : undefined;
  if (!Array.isArray(listed)) return reading;
  const marked: Record<string, Fact<unknown>> = { ...reading };
  for (const key of listed) {
    const property = typeof key === 'string' ? UNREADABLE_FACTS[key] : undefined;
    if (property !== undefined) marked[property] = notKnown(`${key}: could not be read`);
  }
  return marked as unknown as Reading;
}

function readFacts(facts: unknown): Reading {
  return withUnreadable(facts, readDocument(facts));
}

const positive = (r: unknown): number | undefined => (isPositive(r) ? r : undefined);
const nonNegative = (r: unknown): number | undefined => (isNonNegative(r) ? r : undefined);
const count = (r: unknown): number | undefined => (isCount(r) ? r : undefined);
const optionalString: FieldSpec<string | null> = { parse: stringOf, expected: 'a string', absent: null };

/** How each field is read (built once: `readDocument` runs for every function). */
const SPECS = {
  configuration: {
    parse: (raw: unknown) => (isRecord(raw) ? raw : undefined),
    expected: 'a FunctionConfiguration object',
  },
  name: { parse: stringOf, expected: 'a function name' },
  arn: { parse: stringOf, expected: 'a function ARN' },
  tags: { parse: parseStringMap, expected: 'an object of string tag values', absent: new Map() },
  packageType: {
    parse: (raw: unknown) => (raw === 'Zip' || raw === 'Image' ? raw : undefined),
    expected: '"Zip" or "Image"',
  },
  architectures: {
    parse: parseArchitectures,
    expected: 'a non-empty list of "x86_64" or "arm64"',
    absent: ['x86_64'],
  },
  runtime: { parse: stringOf, expected: 'a runtime identifier' },
  handler: { parse: stringOf, expected: 'a handler name' },
  memorySize: { parse: positive, expected: 'a positive number' },
  timeout: { parse: positive, expected: 'a positive number' },
  variables: {
    parse: parseEnvironment,
    expected: 'readable Variables (an object of strings, no Environment.Error)',
    absent: new Map(),
  },
  layers: { parse: parseLayers, expected: 'a list of { Arn } objects', absent: [] },
  subnetCount: { parse: parseSubnetCount, expected: 'an object with SubnetIds', absent: 0 },
  vpcEgress: { parse: parseVpcEgress, expected: '"nat", "none" or "unknown"', absent: 'unknown' as const },
  snapStart: { parse: parseApplyOn, expected: 'an object with ApplyOn', absent: 'None' },
  provisionedConfigs: {
    parse: (raw: unknown) => (Array.isArray(raw) ? raw.length : undefined),
    expected: 'a list',
  },
  throttles: { parse: nonNegative, expected: 'a number >= 0' },
  reservedConcurrency: { parse: count, expected: 'a whole number >= 0', absent: null },
  peakConcurrency: { parse: nonNegative, expected: 'a number >= 0' },
  lambdaEdge: {
    parse: (r: unknown) => (typeof r === 'boolean' ? r : undefined),
    expected: 'true or false',
    absent: false,
  },
  codeSigning: {
    parse: (r: unknown) => (r === 'none' || r === 'Warn' || r === 'Enforce' ? r : undefined),
    expected: '"none", "Warn" or "Enforce"',
    absent: 'none' as const,
  },
  previousRejection: {
    parse: parseRejection,
    expected: 'an object with reason and nextAttemptAt strings',
    absent: null,
  },
  variablesBytes: { parse: count, expected: 'a whole number >= 0', absent: null },
} satisfies Record<string, FieldSpec<unknown>>;

function readDocument(facts: unknown): Reading {
  const root: Fact<Obj> = isRecord(facts) ? known(facts) : notKnown('(root): expected a facts object');
  const configuration = field(root, 'configuration', 'configuration', SPECS.configuration);
  const inConfiguration = <T>(key: string, spec: FieldSpec<T>): Fact<T> =>
    field(configuration, `configuration.${key}`, key, spec);
  const top = <T>(key: string, spec: FieldSpec<T>): Fact<T> => field(root, key, key, spec);
  return {
    name: inConfiguration('FunctionName', SPECS.name),
    arn: inConfiguration('FunctionArn', SPECS.arn),
    tags: top('tags', SPECS.tags),
    packageType: inConfiguration('PackageType', SPECS.packageType),
    // Absent: AWS's default x86_64. null is not a shape AWS returns: missing (issue 8 item 11), as later steps
    // (the layer compatibility check) must accept every fact the funnel accepts.
    architectures:
      configuration.ok && own(configuration.value, 'Architectures') === null
        ? notKnown('configuration.Architectures: expected a non-empty list of "x86_64" or "arm64", not null')
        : inConfiguration('Architectures', SPECS.architectures),
    runtime: inConfiguration('Runtime', SPECS.runtime),
    handler: inConfiguration('Handler', SPECS.handler),
    memorySize: inConfiguration('MemorySize', SPECS.memorySize),
    timeout: inConfiguration('Timeout', SPECS.timeout),
    variables: inConfiguration('Environment', SPECS.variables),
    layers: inConfiguration('Layers', SPECS.layers),
    subnetCount: inConfiguration('VpcConfig', SPECS.subnetCount),
    vpcEgress: top('vpcEgress', SPECS.vpcEgress),
    snapStart: inConfiguration('SnapStart', SPECS.snapStart),
    provisionedConfigs: top('provisionedConcurrencyConfigs', SPECS.provisionedConfigs),
    throttles: top('throttles24h', SPECS.throttles),
    state: inConfiguration('State', optionalString),
    lastUpdateStatus: inConfiguration('LastUpdateStatus', optionalString),
    reservedConcurrency: top('reservedConcurrency', SPECS.reservedConcurrency),
    peakConcurrency: top('peakConcurrency', SPECS.peakConcurrency),
    statusReason: statusReasonOf(configuration),
    lambdaEdge: top('lambdaEdge', SPECS.lambdaEdge),
    codeSigning: top('codeSigning', SPECS.codeSigning),
    previousRejection: top('previousRejection', SPECS.previousRejection),
    variablesBytes: top('variablesBytes', SPECS.variablesBytes),
  };
}

function parseRejection(raw: unknown): { reason: string; nextAttemptAt: string } | undefined {
  if (!isRecord(raw)) return undefined;
  const reason = own(raw, 'reason');
  const nextAttemptAt = own(raw, 'nextAttemptAt');
  return isString(reason) && isString(nextAttemptAt) ? { reason: scrubReason(reason), nextAttemptAt } : undefined;
}

/** AWS's free text without quoted parts (they can echo input back), on one line, at most 200 characters. */
export function scrubReason(text: string): string {
  const scrubbed = text
    .replace(/'[^']*'|"[^"]*"|`[^`]*`/g, '[…]')
    .replace(/\s+/g, ' ')
    .trim();
  return scrubbed.length <= 200 ? scrubbed : `${scrubbed.slice(0, 199)}…`;
}

/** The reason AWS gives for the function's state or last update, whichever is present (scrubbed). */
function statusReasonOf(configuration: Fact<Obj>): Fact<string | null> {
  if (!configuration.ok) return configuration;
  const reasons = ['LastUpdateStatusReason', 'StateReason']
    .map((key) => own(configuration.value, key))
    .filter((v): v is string => isString(v) && v.length > 0);
  return known(reasons.length > 0 ? reasons.map(scrubReason).join('; ') : null);
}

// ---------------------------------------------------------------------------------------------------------------
// What we add, and whether it is already there

interface Ours {
  config: Config;
  derived: Derived;
  /** Our variables: name → our value, or undefined when it comes from SSM and is not resolved. */
  values: ReadonlyMap<string, string | undefined>;
  /** Our variables whose current value the engine wrote earlier (FunnelContext.engineWritten). */
  engineWritten: ReadonlySet<string>;
}

const NONE: ReadonlySet<string> = new Set();

function ourSide(context: FunnelContext): Ours {
  const derived = derivedFrom(context.config);
  const resolved: Obj = context.resolvedEnvironment ?? {};
  const values = new Map<string, string | undefined>();
  for (const [name, value] of derived.variables) {
    const resolvedValue = typeof value === 'string' ? value : own(resolved, name);
    values.set(name, isString(resolvedValue) ? resolvedValue : undefined);
  }
  const written = context.engineWritten;
  const engineWritten =
    written === undefined || written.size === 0
      ? NONE
      : new Set([...written].filter((name) => values.has(name) || name === ORIGINAL_HANDLER_VARIABLE));
  return { config: context.config, derived, values, engineWritten };
}

/**
 * Set to our value, or to a value the engine wrote earlier; an unresolved SSM value counts as ours when the
 * variable is present (gate 16 then says "value not resolved"); an unresolved Console value only when the engine
 * wrote it.
 */
function isOurValue(variables: ReadonlyMap<string, string>, name: string, ours: Ours): boolean {
  const existing = variables.get(name);
  const our = ours.values.get(name);
  // The Console's TW_POLICY is written only by this tool (per function, recognised by its keyed MAC): an unresolved
  // one the engine did not write is the function's own variable, a conflict, not "value not resolved" every run.
  if (our === undefined && isConsoleVariable(ours.config, name)) {
    return existing !== undefined && ours.engineWritten.has(name);
  }
  return existing !== undefined && (our === undefined || existing === our || ours.engineWritten.has(name));
}

/**
 * Our variables that hold a value the engine wrote earlier, not the configured one. An older value of the function's
 * own Console policy (TW_POLICY with `defender.policySource`) is outdated only with `policySource.refresh: true`;
 * otherwise it is simply ours (issue 10: ALREADY_PROTECTED, not refreshed). With refresh on and the current value
 * unknown (not in the cache, or the cache expired), it counts as possibly outdated, so that the protect step checks.
 */
function outdatedVariables(variables: ReadonlyMap<string, string>, ours: Ours): string[] {
  const refreshConsole = ours.config.defender.policySource?.refresh === true;
  return [...ours.engineWritten].filter((name) => {
    const console = isConsoleVariable(ours.config, name);
    if (console && !refreshConsole) return false;
    const existing = variables.get(name);
    const our = ours.values.get(name);
    // With refresh on, a Console value the caller could not resolve (assess: no fresh cached value) may be outdated:
    // in protect mode the protect step fetches the current one and refreshes only if it differs (once per cacheHours
    // at most). A dry run cannot tell, and says nothing rather than report every protected function outdated.
    if (console && our === undefined) return existing !== undefined && ours.config.mode === 'protect';
    return existing !== undefined && our !== undefined && existing !== our;
  });
}

type ProtectionState = 'protected' | 'partial' | 'foreign' | 'unprotected';
interface Protection {
  state: ProtectionState;
  observed: string;
}

/** The Prisma Cloud Defender's own variable: a mark of a Defender whoever installed it. */
export const DEFENDER_POLICY_VARIABLE = 'TW_POLICY';
/** Handlers and wrapper paths of the Defender, whoever installed it (besides the configured ones). */
const DEFENDER_HANDLER = /^twistlock[._]/i;
const DEFENDER_WRAPPER = /^\/opt\/twistlock\//;

/** Every mark of a Defender on the function, ours or not (issue 8 item 2). */
interface DefenderMarks {
  /** Versions of our layer (same layer name, any version) attached. */
  ourLayers: string[];
  /** The handler is a Defender's (the configured `defender.handler`, or `twistlock.*`). */
  defenderHandler: boolean;
  originalHandler: boolean;
  /** AWS_LAMBDA_EXEC_WRAPPER is a Defender's wrapper (the configured path, or one under /opt/twistlock/). */
  defenderWrapper: boolean;
  policy: boolean;
}

function defenderMarks(r: Reading, layers: readonly string[], variables: ReadonlyMap<string, string>, ours: Ours) {
  const wrapper = variables.get(EXEC_WRAPPER_VARIABLE);
  const configuredWrapper = ours.values.get(EXEC_WRAPPER_VARIABLE);
  const handler = r.handler.ok ? r.handler.value : undefined;
  const marks: DefenderMarks = {
    ourLayers: layers.filter((arn) => isOurLayer(arn, ours)),
    defenderHandler:
      handler !== undefined && (handler === ours.config.defender.handler || DEFENDER_HANDLER.test(handler)),
    originalHandler: variables.has(ORIGINAL_HANDLER_VARIABLE),
    defenderWrapper:
      wrapper !== undefined &&
      ((configuredWrapper !== undefined && wrapper === configuredWrapper) || DEFENDER_WRAPPER.test(wrapper)),
    policy: variables.has(DEFENDER_POLICY_VARIABLE),
  };
  return marks;
}

/**
 * Whether a Defender is in place, and whose. Ours is the configured layer (any version) with the configured
 * marker: our exec wrapper variable or, with the handler method, the handler set to the Defender's (which must
 * come with ORIGINAL_HANDLER). Otherwise any mark of a Defender counts, whatever method is configured (issue 8
 * item 2): a complete start mechanism (a Defender handler with ORIGINAL_HANDLER, or a Defender wrapper) with a
 * layer attached is a Defender installed outside this tool ('foreign'); any other mark alone is half of one
 * ('partial'), as is our layer attached twice at two versions (item 12): a person must look.
 */
function protection(r: Reading, ours: Ours): Fact<Protection> {
  if (!r.layers.ok) return r.layers;
  if (!r.variables.ok) return r.variables;
  const variables = r.variables.value;
  const layers = r.layers.value;
  const marks = defenderMarks(r, layers, variables, ours);
  const layer = marks.ourLayers.length > 0;
  const handlerMethod = ours.config.defender.method === 'handler';
  const marker = handlerMethod
    ? r.handler.ok && r.handler.value === ours.config.defender.handler
    : isOurValue(variables, EXEC_WRAPPER_VARIABLE, ours);
  const orphanMarker = handlerMethod && marker && !marks.originalHandler;
  const allOurs = [...ours.values.keys()].every((name) => isOurValue(variables, name, ours));
  const twice = marks.ourLayers.length > 1;

  const start = (marks.defenderHandler && marks.originalHandler) || marks.defenderWrapper;
  const ourInstall = layer && marker;
  const foreign = !ourInstall && start && layers.length > 0;
  // TW_POLICY alone starts nothing: it is a mark for the report, not half a Defender (gate 16 judges its value).
  const anyMark = layer || marks.defenderHandler || marks.originalHandler || marks.defenderWrapper || marker;

  let state: ProtectionState;
  if (twice || (!foreign && (layer !== marker || orphanMarker))) state = 'partial';
  else if (ourInstall) state = allOurs ? 'protected' : 'unprotected';
  else if (foreign) state = 'foreign';
  else state = anyMark ? 'partial' : 'unprotected';

  const foreignMarks = [
    marks.defenderHandler && !marker ? `handler is a Defender's` : '',
    marks.originalHandler ? `${ORIGINAL_HANDLER_VARIABLE} set` : '',
    marks.defenderWrapper && !marker ? `${EXEC_WRAPPER_VARIABLE} is a Defender wrapper` : '',
    marks.policy ? `${DEFENDER_POLICY_VARIABLE} set` : '',
  ].filter((m) => m.length > 0);
  const observed = [
    twice
      ? `Defender layer attached ${marks.ourLayers.length} times (${marks.ourLayers.map(layerVersion).join(', ')})`
      : layer
        ? 'layer attached'
        : 'layer not attached',
    handlerMethod
      ? `handler ${marker ? 'is' : 'is not'} the Defender's`
      : `${EXEC_WRAPPER_VARIABLE} ${marker ? 'ours' : 'not ours'}`,
    ...(orphanMarker ? [`${ORIGINAL_HANDLER_VARIABLE} not set`] : []),
    ...(state === 'foreign' || (state === 'partial' && !layer && !marker) ? foreignMarks : []),
    ...(state === 'foreign' ? [`${layers.length} layer(s) attached`] : []),
  ].join(', ');
  return known({ state, observed });
}

/** `arn:...:layer:name:31` → `:31`. */
function layerVersion(arn: string): string {
  const match = /:(\d+)$/.exec(arn);
  return match?.[1] !== undefined ? `:${match[1]}` : arn;
}

/**
 * The variables map after protection; unresolved SSM values are counted as described in the module doc. When the
 * document carries `variablesBytes` (a redacted document: its values are fixed-width placeholders), that is the
 * size of the existing map, and only what we add or replace changes it.
 */
function variablesAfter(r: Reading, variables: ReadonlyMap<string, string>, ours: Ours) {
  const merged = new Map(variables);
  const estimated: string[] = [];
  for (const [name, value] of ours.values) {
    if (value !== undefined) merged.set(name, value);
    else if (!variables.has(name)) {
      merged.set(name, SSM_VALUE_ESTIMATE);
      estimated.push(name);
    }
  }
  if (ours.config.defender.method === 'handler' && !variables.has(ORIGINAL_HANDLER_VARIABLE)) {
    merged.set(ORIGINAL_HANDLER_VARIABLE, r.handler.ok ? r.handler.value : '');
  }
  const after = variablesMapBytes(merged);
  const realBytes = r.variablesBytes.ok ? r.variablesBytes.value : null;
  if (realBytes === null) return { bytes: after, estimated };
  // Same keys, placeholder values: the difference between the documents is what we add or replace.
  return { bytes: Math.max(0, realBytes + after - variablesMapBytes(variables)), estimated };
}

// ---------------------------------------------------------------------------------------------------------------
// The gates: one small function each

type Observed = Check['observed'];

type Outcome = (
  | { status: Exclude<CheckStatus, 'not_evaluated'>; observed: Observed; limit: Observed }
  | { status: 'not_evaluated'; observed: string; limit: Observed; missing: string[] }
) & {
  /** The code the check carries instead of the gate's own (gate 13's PROTECTION_UNHEALTHY warning). */
  code?: GateCode;
};

interface GateInput {
  r: Reading;
  ours: Ours;
  context: FunnelContext;
  /** `protection(r, ours)`, which five gates and the verdict need: found once. */
  found: Fact<Protection>;
}

interface Gate {
  gate: number;
  code: GateCode;
  evaluate: (input: GateInput) => Outcome;
}

const pass = (observed: Observed, limit: Observed): Outcome => ({ status: 'pass', observed, limit });
const fail = (observed: Observed, limit: Observed): Outcome => ({ status: 'fail', observed, limit });
const failWhen = (failed: boolean, observed: Observed, limit: Observed): Outcome =>
  failed ? fail(observed, limit) : pass(observed, limit);
const notApplicable = (why: string, limit: Observed): Outcome => ({
  status: 'not_evaluated',
  observed: `not applicable: ${why}`,
  limit,
  missing: [],
});

/** The gate cannot be evaluated: names the facts it needs and lacks. */
function lacking(limit: Observed, ...facts: Array<Fact<unknown>>): Outcome {
  const missing = [...new Set(facts.flatMap((f) => (f.ok ? [] : [f.problem])))];
  return { status: 'not_evaluated', observed: `unknown: ${missing.join('; ')}`, limit, missing };
}

/**
 * `exclusions.functions`' dialect: `*` any characters, `?` one, every other character literal (picomatch would read
 * `!`, `{}`, `[]`, `\` and `/` differently: docs/design.md). Compiled once per configuration (`derivedFrom`).
 */
function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${body}$`);
}

/** Why the known facts exclude the function (empty when they do not). */
function exclusionReasons({ r, ours, context }: GateInput): string[] {
  const { tagKey } = ours.config.exclusions;
  const name = r.name.ok ? r.name.value : undefined;
  const arn = r.arn.ok ? r.arn.value : undefined;
  const pattern = ours.derived.exclusions.find(
    ({ matcher }) => (name !== undefined && matcher.test(name)) || (arn !== undefined && matcher.test(arn)),
  )?.pattern;
  const tag = r.tags.ok ? r.tags.value.get(tagKey) : undefined;
  const prefix = context.engineFunctionPrefix;
  const reasons: string[] = [];
  if (pattern !== undefined) reasons.push(`matches exclusions.functions "${pattern}"`);
  // Only the exact value `false` opts back in: "FALSE ", "False" and any other value exclude (issue 8 item 14).
  if (tag !== undefined && tag !== 'false') reasons.push(`tag "${tagKey}" is set`);
  if (name !== undefined && context.persistentExclusions?.has(name) === true) {
    reasons.push('persistently excluded after a rollback (zero-impact include lifts it)');
  }
  if (name !== undefined && prefix !== undefined && prefix.length > 0 && name.startsWith(prefix)) {
    reasons.push(`the engine's own function (prefix "${prefix}")`);
  }
  return reasons;
}

function exclusion(input: GateInput): Outcome {
  const limit = 'not excluded';
  const reasons = exclusionReasons(input);
  if (reasons.length > 0) return fail(reasons.join('; '), limit);
  const { r } = input;
  if (!r.name.ok || !r.arn.ok || !r.tags.ok) return lacking(limit, r.name, r.arn, r.tags);
  return pass('not excluded', limit);
}

function immutablePackage({ r }: GateInput): Outcome {
  if (!r.packageType.ok) return lacking('Zip', r.packageType);
  return failWhen(r.packageType.value === 'Image', r.packageType.value, 'Zip');
}

function architecture({ r }: GateInput): Outcome {
  if (!r.architectures.ok) return lacking('x86_64', r.architectures);
  return failWhen(r.architectures.value.includes('arm64'), r.architectures.value.join(','), 'x86_64');
}

function runtime({ r, ours }: GateInput): Outcome {
  const limit = ours.derived.runtimesLimit;
  if (r.packageType.ok && r.packageType.value === 'Image') return notApplicable('Image package', limit);
  if (!r.runtime.ok) return lacking(limit, r.runtime);
  return failWhen(!ours.derived.supportedRuntimes.has(r.runtime.value), r.runtime.value, limit);
}

function memory({ r, ours }: GateInput): Outcome {
  const limit = ours.config.funnel.minMemoryMb;
  if (!r.memorySize.ok) return lacking(limit, r.memorySize);
  return failWhen(r.memorySize.value < limit, r.memorySize.value, limit);
}

function timeout({ r, ours }: GateInput): Outcome {
  const limit = MAX_TIMEOUT_SECONDS - ours.config.funnel.timeoutBufferSeconds;
  if (!r.timeout.ok) return lacking(limit, r.timeout);
  return failWhen(r.timeout.value > limit, r.timeout.value, limit);
}

function envQuota({ r, ours }: GateInput): Outcome {
  const limit = ours.config.funnel.envQuotaBytes;
  if (!r.variables.ok) return lacking(limit, r.variables);
  const { bytes, estimated } = variablesAfter(r, r.variables.value, ours);
  const notes: string[] = [];
  for (const [name, value] of ours.values) {
    if (value !== undefined && isConsoleVariable(ours.config, name)) {
      notes.push(`${name}: this function's value from the Console`);
    }
  }
  const fromSsm: string[] = [];
  for (const name of estimated) {
    if (!isConsoleVariable(ours.config, name)) fromSsm.push(name);
    else {
      notes.push(
        `${name} not cached yet, fetched from the Console at protect time: counted as ${SSM_VALUE_ESTIMATE_BYTES} bytes`,
      );
    }
  }
  if (fromSsm.length > 0)
    notes.push(`${fromSsm.join(', ')} not resolved: counted as ${SSM_VALUE_ESTIMATE_BYTES} bytes`);
  const note = notes.length > 0 ? ` (${notes.join('; ')})` : '';
  return failWhen(bytes > limit, `${bytes} bytes after adding ours${note}`, limit);
}

function vpcEgress({ r, ours }: GateInput): Outcome {
  if (!r.subnetCount.ok) return lacking('nat', r.subnetCount);
  if (r.subnetCount.value === 0) return pass('no VPC', 'nat');
  if (!r.vpcEgress.ok) return lacking('nat', r.vpcEgress);
  const observed = `${r.subnetCount.value} subnet(s), egress ${r.vpcEgress.value}`;
  if (r.vpcEgress.value === 'nat') return pass(observed, 'nat');
  return { status: ours.config.funnel.vpcWithoutNat === 'skip' ? 'fail' : 'warn', observed, limit: 'nat' };
}

function snapStart({ r }: GateInput): Outcome {
  if (!r.snapStart.ok) return lacking('None', r.snapStart);
  return failWhen(r.snapStart.value !== 'None', r.snapStart.value, 'None');
}

function provisionedConcurrency({ r }: GateInput): Outcome {
  if (!r.provisionedConfigs.ok) return lacking(0, r.provisionedConfigs);
  return failWhen(r.provisionedConfigs.value > 0, r.provisionedConfigs.value, 0);
}

function stability({ r }: GateInput): Outcome {
  if (!r.throttles.ok) return lacking(0, r.throttles);
  return failWhen(r.throttles.value > 0, r.throttles.value, 0);
}

/** Observed: layers other than the Defender (any version); ours needs one free slot. */
function layerSlots({ r, ours }: GateInput): Outcome {
  const limit = LAYER_SLOT_LIMIT - 1;
  if (!r.layers.ok) return lacking(limit, r.layers);
  const others = r.layers.value.filter((arn) => !isOurLayer(arn, ours)).length;
  return failWhen(others > limit, others, limit);
}

function execWrapper({ r, ours }: GateInput): Outcome {
  if (!r.variables.ok) return lacking('not set, or ours', r.variables);
  if (ours.config.defender.method === 'handler') return originalHandler(r, r.variables.value, ours);
  const variables = r.variables.value;
  if (!variables.has(EXEC_WRAPPER_VARIABLE)) return pass('not set', 'not set, or ours');
  const mine = isOurValue(variables, EXEC_WRAPPER_VARIABLE, ours);
  return failWhen(!mine, mine ? 'set to ours' : 'set to another wrapper', 'not set, or ours');
}

/** Gate 12 with the handler method: ORIGINAL_HANDLER must be free, or ours (the handler is the Defender's). */
function originalHandler(r: Reading, variables: ReadonlyMap<string, string>, ours: Ours): Outcome {
  const limit = `${ORIGINAL_HANDLER_VARIABLE} not set, or ours`;
  if (r.packageType.ok && r.packageType.value === 'Image') return notApplicable('Image package', limit);
  if (!r.handler.ok) return lacking(limit, r.handler);
  if (!variables.has(ORIGINAL_HANDLER_VARIABLE)) return pass(`${ORIGINAL_HANDLER_VARIABLE} not set`, limit);
  const mine = r.handler.value === ours.config.defender.handler;
  return failWhen(!mine, `${ORIGINAL_HANDLER_VARIABLE} set${mine ? ' by us' : ' by someone else'}`, limit);
}

/**
 * Gate 13. A protected function whose last update failed (or whose State is Failed or Inactive) carries the
 * warning PROTECTION_UNHEALTHY with AWS's reason instead (issue 8 item 10): it stays ALREADY_PROTECTED, and says
 * so every run until it is healthy.
 */
function readiness({ r, found }: GateInput): Outcome {
  const limit = 'Active/Successful';
  if (!r.state.ok || !r.lastUpdateStatus.ok) return lacking(limit, r.state, r.lastUpdateStatus);
  const state = r.state.value ?? 'not reported';
  const update = r.lastUpdateStatus.value ?? 'not reported';
  const notReady =
    (r.state.value !== null && r.state.value !== 'Active') ||
    (r.lastUpdateStatus.value !== null && r.lastUpdateStatus.value !== 'Successful');
  const observed = `State ${state}, LastUpdateStatus ${update}`;
  const unhealthy = r.lastUpdateStatus.value === 'Failed' || r.state.value === 'Failed' || r.state.value === 'Inactive';
  if (unhealthy && found.ok && found.value.state === 'protected') {
    const why = r.statusReason.ok && r.statusReason.value !== null ? r.statusReason.value : 'no reason given';
    return { status: 'warn', observed: `${observed}: ${why}`, limit, code: 'PROTECTION_UNHEALTHY' };
  }
  return failWhen(notReady, observed, limit);
}

function factsOutcome(missing: readonly string[]): Outcome {
  const limit = 'every fact a gate needs';
  return missing.length > 0 ? fail(missing.join('; '), limit) : pass('all facts present', limit);
}

function concurrencyHeadroom({ r, ours }: GateInput): Outcome {
  if (!r.reservedConcurrency.ok) return lacking(null, r.reservedConcurrency);
  const reserved = r.reservedConcurrency.value;
  if (reserved === null) return pass('no reserved concurrency', null);
  const limit = ours.config.funnel.concurrencySaturation * reserved;
  const shown = Math.round(limit * 100) / 100;
  if (!r.peakConcurrency.ok) return lacking(shown, r.peakConcurrency);
  return failWhen(r.peakConcurrency.value > limit, r.peakConcurrency.value, shown);
}

/**
 * Gate 16. A variable the function has whose our value is not known (an SSM value the caller could not resolve)
 * cannot be told from a conflict: never a silent pass, the gate says "value not resolved" and the function is
 * FACTS_MISSING (issue 8 item 9). A Defender installed outside this tool (gate 19) has its own variables, not a
 * conflict.
 */
function envConflict({ r, ours, found }: GateInput): Outcome {
  const limit = 'not set, or our value';
  if (!r.variables.ok) return lacking(limit, r.variables);
  if (found.ok && found.value.state === 'foreign')
    return notApplicable('a Defender installed outside this tool (gate 19)', limit);
  const variables = r.variables.value;
  const names = [...ours.values.keys()].filter((name) => name !== EXEC_WRAPPER_VARIABLE && variables.has(name));
  const conflicts = names.filter((name) => !isOurValue(variables, name, ours));
  const unresolved = names.filter((name) => ours.values.get(name) === undefined && !ours.engineWritten.has(name));
  if (conflicts.length > 0) return fail(`set to another value: ${conflicts.join(', ')}`, limit);
  if (unresolved.length > 0) {
    return {
      status: 'not_evaluated',
      observed: 'value not resolved',
      limit,
      missing: unresolved.map((name) => `${name}: value not resolved`),
    };
  }
  return pass('none', limit);
}

function partialProtection({ ours, found }: GateInput): Outcome {
  const limit = `layer and ${wrapperOrHandler(ours.config)} together, or neither`;
  if (!found.ok) return lacking(limit, found);
  return failWhen(found.value.state === 'partial', found.value.observed, limit);
}

function defenderPresent({ found }: GateInput): Outcome {
  const limit = "no Defender, or this tool's";
  if (!found.ok) return lacking(limit, found);
  return failWhen(found.value.state === 'foreign', found.value.observed, limit);
}

/** Lambda@Edge functions can only be created in us-east-1: elsewhere the signal is not needed. */
export const LAMBDA_EDGE_REGION = 'us-east-1';

/** The Region of a Lambda ARN, or undefined. */
export function arnRegion(arn: string): string | undefined {
  return ARN_REGION.exec(arn)?.[1];
}
/** `arn:PARTITION:SERVICE:REGION...`: the fourth field, when it is not empty. */
const ARN_REGION = /^arn:[^:]*:[^:]*:([^:]+)/;

function lambdaEdge({ r }: GateInput): Outcome {
  const limit = 'not associated with CloudFront';
  const region = r.arn.ok ? arnRegion(r.arn.value) : undefined;
  if (region !== undefined && region !== LAMBDA_EDGE_REGION) return pass(`not ${LAMBDA_EDGE_REGION}`, limit);
  if (!r.lambdaEdge.ok) return lacking(limit, r.lambdaEdge);
  return failWhen(
    r.lambdaEdge.value,
    r.lambdaEdge.value ? 'associated with a CloudFront distribution' : 'not associated',
    limit,
  );
}

function codeSigning({ r }: GateInput): Outcome {
  const limit = 'no code signing config, or Warn';
  if (!r.codeSigning.ok) return lacking(limit, r.codeSigning);
  const observed = r.codeSigning.value === 'none' ? 'no code signing config' : r.codeSigning.value;
  return failWhen(r.codeSigning.value === 'Enforce', observed, limit);
}

function previouslyRejected({ r }: GateInput): Outcome {
  const limit = 'no back-off active';
  if (!r.previousRejection.ok) return lacking(limit, r.previousRejection);
  const rejection = r.previousRejection.value;
  if (rejection === null) return pass('none', limit);
  return fail(`${rejection.reason}; next attempt after ${rejection.nextAttemptAt}`, limit);
}

function configOutdated({ r, ours }: GateInput): Outcome {
  const limit = 'our variables hold the configured values';
  if (!r.variables.ok) return lacking(limit, r.variables);
  const outdated = outdatedVariables(r.variables.value, ours);
  if (outdated.length === 0) return pass('current', limit);
  return { status: 'warn', observed: `older value the engine wrote: ${outdated.join(', ')}`, limit };
}

function defenderVersion({ r, ours }: GateInput): Outcome {
  const limit = ours.config.defender.layerArn;
  if (!r.layers.ok) return lacking(limit, r.layers);
  const attached = r.layers.value.find((arn) => isOurLayer(arn, ours));
  if (attached === undefined) return pass('not attached', limit);
  return { status: attached === limit ? 'pass' : 'warn', observed: attached, limit };
}

/** The gates in gate order. Gate 14 (facts) is derived from what the others could not read. */
const GATES: readonly Gate[] = [
  { gate: 0, code: 'EXCLUDED', evaluate: exclusion },
  { gate: 1, code: 'PACKAGE_IMAGE', evaluate: immutablePackage },
  { gate: 2, code: 'ARCH_ARM64', evaluate: architecture },
  { gate: 3, code: 'RUNTIME_UNSUPPORTED', evaluate: runtime },
  { gate: 4, code: 'MEMORY_LOW', evaluate: memory },
  { gate: 5, code: 'TIMEOUT_NEAR_LIMIT', evaluate: timeout },
  { gate: 6, code: 'ENV_QUOTA', evaluate: envQuota },
  { gate: 7, code: 'VPC_NO_NAT', evaluate: vpcEgress },
  { gate: 8, code: 'SNAPSTART', evaluate: snapStart },
  { gate: 9, code: 'PROVISIONED_CONCURRENCY', evaluate: provisionedConcurrency },
  { gate: 10, code: 'RECENTLY_THROTTLED', evaluate: stability },
  { gate: 11, code: 'LAYER_LIMIT', evaluate: layerSlots },
  { gate: 12, code: 'WRAPPER_CONFLICT', evaluate: execWrapper },
  { gate: 13, code: 'FUNCTION_NOT_READY', evaluate: readiness },
  { gate: 15, code: 'CONCURRENCY_SATURATED', evaluate: concurrencyHeadroom },
  { gate: 16, code: 'ENV_CONFLICT', evaluate: envConflict },
  { gate: 17, code: 'PARTIAL_PROTECTION', evaluate: partialProtection },
  { gate: 18, code: 'DEFENDER_OUTDATED', evaluate: defenderVersion },
  { gate: 19, code: 'DEFENDER_PRESENT', evaluate: defenderPresent },
  { gate: 20, code: 'LAMBDA_EDGE', evaluate: lambdaEdge },
  { gate: 21, code: 'CODE_SIGNING_ENFORCED', evaluate: codeSigning },
  { gate: 22, code: 'PREVIOUSLY_REJECTED', evaluate: previouslyRejected },
  { gate: 23, code: 'DEFENDER_CONFIG_OUTDATED', evaluate: configOutdated },
];
const FACTS_GATE = 14;
/** Where gate 14's check goes among the others' so that the checks are in gate order. */
const FACTS_CHECK_INDEX = GATES.findIndex((g) => g.gate > FACTS_GATE);
/** Gates whose failure makes an attached Defender itself a problem (see the verdict in `assess`). */
const HARMFUL_WHEN_PROTECTED: ReadonlySet<ReasonCode> = new Set(['LAMBDA_EDGE', 'CODE_SIGNING_ENFORCED']);

const REASONS: ReadonlySet<Code> = new Set(REASON_CODES);
const WARNINGS: ReadonlySet<Code> = new Set(WARNING_CODES);
const isReasonCode = (code: Code): code is ReasonCode => REASONS.has(code);
const isWarningCode = (code: Code): code is WarningCode => WARNINGS.has(code);

function toCheck(gate: number, code: GateCode, outcome: Outcome, ours: Ours): Check {
  return {
    gate,
    code,
    status: outcome.status,
    observed: outcome.observed,
    limit: outcome.limit,
    message: GATE_MESSAGES[code].message,
    remediation: ours.derived.remediations[code],
  };
}

/**
 * Runs every gate on one function's facts.
 * @param facts anything; a facts document in AWS's shapes (issue 2, "the facts document")
 * @returns ALREADY_PROTECTED when the Defender (any version) and all our variables are in place; SKIP when any gate
 *   fails; else ELIGIBLE (possibly with warnings). Never throws.
 */
export function assess(facts: unknown, context: FunnelContext): Assessment {
  const r = readFacts(facts);
  const ours = ourSide(context);
  const state = protection(r, ours);
  const input: GateInput = { r, ours, context, found: state };
  const checks: Check[] = [];
  const missing = new Set<string>();
  for (const gate of GATES) {
    const outcome = gate.evaluate(input);
    if (outcome.status === 'not_evaluated') for (const problem of outcome.missing) missing.add(problem);
    checks.push(toCheck(gate.gate, outcome.code ?? gate.code, outcome, ours));
  }
  checks.splice(FACTS_CHECK_INDEX, 0, toCheck(FACTS_GATE, 'FACTS_MISSING', factsOutcome([...missing]), ours));

  const reasons: ReasonCode[] = [];
  const warnings: WarningCode[] = [];
  for (const { status, code } of checks) {
    if (status === 'fail' && isReasonCode(code)) reasons.push(code);
    else if (status === 'warn' && isWarningCode(code)) warnings.push(code);
  }
  // A Defender that is in place where it breaks the function's own deployments (Lambda@Edge publishes, code signing
  // Enforce) is not a quiet ALREADY_PROTECTED: it is a skip, published, whose remediation says to roll it back.
  const harmful = reasons.some((code) => HARMFUL_WHEN_PROTECTED.has(code));
  const verdict =
    state.ok && state.value.state === 'protected' && !harmful
      ? 'ALREADY_PROTECTED'
      : reasons.length > 0
        ? 'SKIP'
        : 'ELIGIBLE';
  return {
    functionName: r.name.ok ? r.name.value : null,
    functionArn: r.arn.ok ? r.arn.value : null,
    verdict,
    reasons,
    warnings,
    checks,
  };
}
