/**
 * Redaction of a customer function's configuration before it leaves the Lambda that read it (S3 inventory, state
 * payloads, logs, audit items, SNS). PURE.
 *
 * - Every environment variable VALUE is replaced by the one fixed placeholder `[redacted]`: nothing of a value, not
 *   even its length, leaves (issue 8 item 3). The exact size of the REAL map, as Lambda measures it (UTF-8 bytes of
 *   its compact JSON), travels beside it as `variablesBytes` (`redactFunction`), so the env-quota gate (6) decides
 *   exactly as on the real values.
 * - A value exactly equal to our own literal for that variable (e.g. AWS_LAMBDA_EXEC_WRAPPER) is kept: it is ours,
 *   not a secret, and the funnel needs it to tell "protected" from "someone else's wrapper".
 * - Only the fields the funnel and the protect plan read are kept (an allow list); everything else a
 *   `FunctionConfiguration` may carry (Description, Role, KMSKeyArn, signing, logging, file systems, ...) is dropped.
 *   `Environment.Error` keeps its ErrorCode only (its Message is free text) so the funnel still sees that the
 *   variables could not be read.
 */
import type { FunctionConfiguration } from './types';

/** The configuration fields kept in the inventory and passed on (everything else is dropped). */
export const KEPT_FIELDS = [
  'FunctionName',
  'FunctionArn',
  'PackageType',
  'Runtime',
  'Handler',
  'Architectures',
  'MemorySize',
  'Timeout',
  'SnapStart',
  'State',
  'LastUpdateStatus',
  'RevisionId',
  'CodeSha256',
  'LastModified',
] as const;

/** The placeholder of every redacted value. */
export const REDACTED = '[redacted]';
/** Used instead of REDACTED only when our own literal for that variable is REDACTED (never mistaken for ours). */
export const REDACTED_OTHER = '[redacted:other]';

const utf8 = new TextEncoder();

/** The placeholder of a value that is not our literal `avoid`. */
export function placeholderFor(avoid?: string): string {
  return avoid === REDACTED ? REDACTED_OTHER : REDACTED;
}

/**
 * Lambda's measure of a variables map (UTF-8 bytes of its compact JSON), when it is a readable map of strings;
 * undefined when it is absent-but-errored, malformed or holds a non-string.
 */
export function realVariablesBytes(cfg: FunctionConfiguration): number | undefined {
  const env: unknown = cfg.Environment;
  if (env === undefined || env === null) return 2;
  if (typeof env !== 'object' || Array.isArray(env)) return undefined;
  if ((env as { Error?: unknown }).Error !== undefined && (env as { Error?: unknown }).Error !== null) return undefined;
  const vars: unknown = (env as { Variables?: unknown }).Variables;
  if (vars === undefined || vars === null) return 2;
  if (typeof vars !== 'object' || Array.isArray(vars)) return undefined;
  if (Object.values(vars).some((v) => typeof v !== 'string')) return undefined;
  return utf8.encode(JSON.stringify(vars)).length;
}

function copyJson<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function redactVariables(variables: unknown, ourLiterals: Readonly<Record<string, string>>): unknown {
  if (variables === null || typeof variables !== 'object' || Array.isArray(variables)) {
    // Malformed: keep its shape out of the inventory; the funnel then reports the fact as malformed.
    return variables === undefined || variables === null ? variables : '[malformed]';
  }
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(variables as Record<string, unknown>)) {
    if (typeof value !== 'string') {
      out[name] = null;
      continue;
    }
    const ours = Object.prototype.hasOwnProperty.call(ourLiterals, name) ? ourLiterals[name] : undefined;
    out[name] = ours !== undefined && value === ours ? value : placeholderFor(ours);
  }
  return out;
}

function redactEnvironment(environment: unknown, ourLiterals: Readonly<Record<string, string>>): unknown {
  if (environment === null || typeof environment !== 'object' || Array.isArray(environment)) {
    return environment === undefined || environment === null ? environment : '[malformed]';
  }
  const source = environment as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  if ('Variables' in source) out['Variables'] = redactVariables(source['Variables'], ourLiterals);
  if (source['Error'] !== undefined && source['Error'] !== null) {
    const error = source['Error'] as Record<string, unknown>;
    out['Error'] = { ErrorCode: typeof error['ErrorCode'] === 'string' ? error['ErrorCode'] : 'Unknown' };
  }
  return out;
}

/**
 * A redacted copy of a function configuration (the input is not modified).
 * @param cfg a `FunctionConfiguration` as ListFunctions/GetFunction return it
 * @param ourLiterals our variables that have literal values (name → value); those exact values are kept
 */
export function redactConfiguration(
  cfg: FunctionConfiguration,
  ourLiterals: Readonly<Record<string, string>>,
): FunctionConfiguration {
  const kept: Record<string, unknown> = {};
  for (const key of KEPT_FIELDS) {
    const value: unknown = cfg[key];
    if (value !== undefined) kept[key] = copyJson(value);
  }
  const out = kept as FunctionConfiguration;
  if (cfg.Layers !== undefined) {
    out.Layers = Array.isArray(cfg.Layers)
      ? cfg.Layers.map((layer) => {
          const kept: { Arn?: string; CodeSize?: number } = {};
          if (layer?.Arn !== undefined) kept.Arn = layer.Arn;
          if (layer?.CodeSize !== undefined) kept.CodeSize = layer.CodeSize;
          return kept;
        })
      : copyJson(cfg.Layers);
  }
  if (cfg.VpcConfig !== undefined && (cfg.VpcConfig === null || typeof cfg.VpcConfig !== 'object')) {
    out.VpcConfig = copyJson(cfg.VpcConfig);
  } else if (cfg.VpcConfig !== undefined) {
    const vpc: NonNullable<FunctionConfiguration['VpcConfig']> = {};
    if (cfg.VpcConfig.SubnetIds !== undefined) vpc.SubnetIds = copyJson(cfg.VpcConfig.SubnetIds);
    if (cfg.VpcConfig.SecurityGroupIds !== undefined) vpc.SecurityGroupIds = copyJson(cfg.VpcConfig.SecurityGroupIds);
    if (cfg.VpcConfig.VpcId !== undefined) vpc.VpcId = cfg.VpcConfig.VpcId;
    out.VpcConfig = vpc;
  }
  if (cfg.Environment !== undefined) {
    out.Environment = redactEnvironment(cfg.Environment, ourLiterals) as FunctionConfiguration['Environment'];
  }
  return out;
}

/** A redacted configuration and the exact size of its real variables map (absent when that map is unreadable). */
export interface RedactedFunction {
  configuration: FunctionConfiguration;
  variablesBytes?: number;
}

/** `redactConfiguration` plus `variablesBytes`, the real size the placeholders no longer keep. */
export function redactFunction(
  cfg: FunctionConfiguration,
  ourLiterals: Readonly<Record<string, string>>,
): RedactedFunction {
  const configuration = redactConfiguration(cfg, ourLiterals);
  const variablesBytes = realVariablesBytes(cfg);
  return variablesBytes === undefined ? { configuration } : { configuration, variablesBytes };
}
