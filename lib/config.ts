/**
 * The one configuration schema of Zero-Impact Protect.
 *
 * Read by the CDK app (cdk.json context key `zeroImpact`, overridable with `-c`), passed to the Lambdas at deploy
 * time (environment variable `ZERO_IMPACT_CONFIG`), and read by the command line (`--config FILE`). Validated once,
 * here; every problem is collected and reported with the key path that is wrong and what was expected.
 *
 * Pure: no AWS SDK, no process.env, no file system.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';

/** The variable that names the Lambda exec wrapper. */
export const EXEC_WRAPPER_VARIABLE = 'AWS_LAMBDA_EXEC_WRAPPER';
/** The variable that keeps a function's own handler when the `handler` method is used. */
export const ORIGINAL_HANDLER_VARIABLE = 'ORIGINAL_HANDLER';

export const DEFAULT_SUPPORTED_RUNTIMES = [
  'python3.9',
  'python3.10',
  'python3.11',
  'python3.12',
  'python3.13',
  'nodejs18.x',
  'nodejs20.x',
  'nodejs22.x',
] as const;

const LAYER_VERSION_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$/;
const SSM_PARAMETER_NAME = /^\/?[A-Za-z0-9_.\-/]+$/;

const envValue = z.union([
  z.string().max(4096),
  z.strictObject({
    ssmParameter: z.string().regex(SSM_PARAMETER_NAME, 'an SSM parameter name such as "/zero-impact/tw-policy"'),
  }),
]);

const positiveInt = z.number().int().positive();

export const configSchema = z.strictObject({
  /** `dry-run` records what would happen and changes nothing; `protect` changes functions. @default "dry-run" */
  mode: z.enum(['dry-run', 'protect']).default('dry-run'),
  /** EventBridge schedule expression. @default "rate(1 hour)" */
  schedule: z
    .string()
    .regex(/^(rate\(.+\)|cron\(.+\))$/, 'an EventBridge schedule expression: rate(...) or cron(...)')
    .default('rate(1 hour)'),
  defender: z.strictObject({
    /** The Defender layer version ARN to add. Required. */
    layerArn: z
      .string()
      .regex(LAYER_VERSION_ARN, 'a Lambda layer version ARN (arn:aws:lambda:REGION:ACCOUNT:layer:NAME:VERSION)'),
    /** Variables protection adds. A value is a literal string or `{ "ssmParameter": "/name" }` resolved at run time. */
    environment: z.record(
      z.string().regex(/^[a-zA-Z]([a-zA-Z0-9_])*$/, 'a Lambda environment variable name'),
      envValue,
    ),
    /**
     * How the Defender is started: `exec-wrapper` sets AWS_LAMBDA_EXEC_WRAPPER (which `environment` must contain);
     * `handler` replaces the handler with `defender.handler` and keeps the original in ORIGINAL_HANDLER.
     * @default "exec-wrapper"
     */
    method: z.enum(['exec-wrapper', 'handler']).default('exec-wrapper'),
    /** The Defender's handler, required with method `handler`. */
    handler: z.string().min(1).optional(),
  }),
  funnel: z
    .strictObject({
      /** Gate 4. @default 256 */
      minMemoryMb: positiveInt.default(256),
      /** Gate 5: the timeout limit is 900 s minus this. @default 30 */
      timeoutBufferSeconds: z.number().int().min(0).max(899).default(30),
      /** Gate 6: Lambda's limit on the environment variables map. @default 4096 */
      envQuotaBytes: positiveInt.default(4096),
      /** Gate 3. Align with the Defender version you run. */
      supportedRuntimes: z.array(z.string().min(1)).default([...DEFAULT_SUPPORTED_RUNTIMES]),
      /** Gate 7: `warn` protects and records a warning, `skip` skips. @default "warn" */
      vpcWithoutNat: z.enum(['warn', 'skip']).default('warn'),
      /** Gate 10. @default 24 */
      throttleLookbackHours: z
        .number()
        .int()
        .min(1)
        .max(24 * 14)
        .default(24),
      /** Gate 15: skip when peak concurrency exceeds this share of reserved concurrency. @default 0.8 */
      concurrencySaturation: z.number().gt(0).max(1).default(0.8),
    })
    .prefault({}),
  exclusions: z
    .strictObject({
      /** Names, ARNs or glob patterns (`payments-*`) never touched. @default [] */
      functions: z.array(z.string().min(1)).default([]),
      /** A function carrying this tag (any value but exactly `false`, case and spaces count) is never touched. @default "zero-impact:exclude" */
      tagKey: z.string().min(1).max(128).default('zero-impact:exclude'),
    })
    .prefault({}),
  /** At most this many functions are changed in one run; the rest are DEFERRED. @default 25 */
  maxProtectionsPerRun: z.number().int().min(0).max(1000).default(25),
  rates: z
    .strictObject({
      /** Share of the Lambda control-plane quota (~15 req/s per account) the job may use. @default 5 */
      controlPlanePerSecond: z.number().gt(0).max(15).default(5),
      /** Distributed Map MaxConcurrency: child workflows at once; each gets controlPlanePerSecond / this. @default 5 */
      maxConcurrency: z.number().int().min(1).max(100).default(5),
      /** Functions per Distributed Map batch (ItemBatcher MaxItemsPerBatch). @default 50 */
      batchSize: z.number().int().min(1).max(250).default(50),
    })
    .prefault({}),
  audit: z
    .strictObject({
      /** Retention of changes and changed decisions, in days. @default 400 */
      retentionDays: z.number().int().min(1).max(3650).default(400),
      /** Retention of an unchanged repeat of a function's previous decision, in days. @default 30 */
      repeatRetentionDays: z.number().int().min(1).max(3650).default(30),
      /** Tag naming a function's owning team, sent with SNS messages. @default "team" */
      ownerTagKey: z.string().min(1).max(128).default('team'),
    })
    .prefault({}),
  notifications: z
    .strictObject({
      /** `changed`: publish a skip only when new or its reasons changed; `always`: every run. @default "changed" */
      skips: z.enum(['changed', 'always']).default('changed'),
      /** Email addresses subscribed to the skip topic. @default [] */
      emails: z.array(z.email()).default([]),
      /** Email addresses subscribed to the alarm topic. @default [] */
      alarmEmails: z.array(z.email()).default([]),
    })
    .prefault({}),
  observability: z
    .strictObject({
      /** Retention of the Lambdas' and state machine's log groups, in days. @default 90 */
      logRetentionDays: z.number().int().positive().default(90),
      /** Alarm when no run has succeeded for this many hours. @default 3 */
      noSuccessAlarmHours: z.number().int().min(1).max(24).default(3),
    })
    .prefault({}),
});

/** Configuration as written (defaults optional). */
export type ConfigInput = z.input<typeof configSchema>;
/** Configuration after validation, every default filled in. */
export type Config = z.output<typeof configSchema>;
export type DefenderEnvValue = Config['defender']['environment'][string];

/** Thrown for an invalid configuration; `problems` names each bad key. Never carries a stack trace to the user. */
export class ConfigError extends Error {
  constructor(
    public readonly source: string,
    public readonly problems: string[],
  ) {
    super(`invalid configuration in ${source}: ${problems.join('; ')}`);
    this.name = 'ConfigError';
  }
}

function keyPath(prefix: string, path: ReadonlyArray<PropertyKey>): string {
  return [prefix, ...path.map(String)].filter((p) => p.length > 0).join('.');
}

/** Cross-key rules zod cannot express on one field. */
function semanticProblems(config: Config, prefix: string): string[] {
  const problems: string[] = [];
  const env = config.defender.environment;
  if (config.defender.method === 'exec-wrapper' && env[EXEC_WRAPPER_VARIABLE] === undefined) {
    problems.push(
      `${keyPath(prefix, ['defender', 'environment', EXEC_WRAPPER_VARIABLE])}: required with defender.method "exec-wrapper" (the wrapper path inside the Defender layer, e.g. "/opt/twistlock/twistlock_wrapper")`,
    );
  }
  const wrapper = env[EXEC_WRAPPER_VARIABLE];
  if (typeof wrapper === 'object') {
    problems.push(
      `${keyPath(prefix, ['defender', 'environment', EXEC_WRAPPER_VARIABLE])}: expected a literal path under /opt, not an SSM parameter`,
    );
  } else if (typeof wrapper === 'string' && !wrapper.startsWith('/opt/')) {
    problems.push(
      `${keyPath(prefix, ['defender', 'environment', EXEC_WRAPPER_VARIABLE])}: expected a path inside the layer, starting with /opt/`,
    );
  }
  if (config.defender.method === 'handler') {
    if (config.defender.handler === undefined) {
      problems.push(`${keyPath(prefix, ['defender', 'handler'])}: required with defender.method "handler"`);
    }
    if (wrapper !== undefined) {
      problems.push(
        `${keyPath(prefix, ['defender', 'environment', EXEC_WRAPPER_VARIABLE])}: not allowed with defender.method "handler"`,
      );
    }
  }
  if (env[ORIGINAL_HANDLER_VARIABLE] !== undefined) {
    problems.push(
      `${keyPath(prefix, ['defender', 'environment', ORIGINAL_HANDLER_VARIABLE])}: reserved, set by the handler method`,
    );
  }
  if (config.rates.maxConcurrency > 0 && config.rates.controlPlanePerSecond / config.rates.maxConcurrency < 0.05) {
    problems.push(
      `${keyPath(prefix, ['rates', 'maxConcurrency'])}: too high for rates.controlPlanePerSecond (each worker would get under 0.05 requests/s)`,
    );
  }
  return problems;
}

/**
 * Validates a configuration object and fills in the defaults.
 * @param input the parsed JSON (or cdk.json context value)
 * @param source where it came from, for the error message (a file name, "cdk.json context zeroImpact")
 * @param prefix prepended to key paths in errors (e.g. "zeroImpact" for cdk.json)
 * @throws ConfigError naming every bad key
 */
export function parseConfig(input: unknown, source: string, prefix = ''): Config {
  const result = configSchema.safeParse(input);
  if (!result.success) {
    const problems = result.error.issues.map((issue) => {
      const path = keyPath(prefix, issue.path);
      if (issue.code === 'unrecognized_keys') {
        return `${keyPath(path, [])}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
      }
      return `${path.length > 0 ? path : '(root)'}: ${issue.message}`;
    });
    throw new ConfigError(source, problems);
  }
  const problems = semanticProblems(result.data, prefix);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return result.data;
}

/** Problems that only matter for a deployed stack (the CLI accepts literals for local use). */
export function deployProblems(config: Config, prefix = ''): string[] {
  const problems: string[] = [];
  const policy = config.defender.environment['TW_POLICY'];
  if (policy === undefined) {
    problems.push(
      `${keyPath(prefix, ['defender', 'environment', 'TW_POLICY'])}: required for a deployed stack, as { "ssmParameter": "/name" } of a SecureString`,
    );
  } else if (typeof policy === 'string') {
    problems.push(
      `${keyPath(prefix, ['defender', 'environment', 'TW_POLICY'])}: a deployed stack takes TW_POLICY only from an SSM SecureString ({ "ssmParameter": "/name" }), never a literal in the template`,
    );
  }
  return problems;
}

/** Stable JSON: object keys sorted, so equal configurations hash equally. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A short hash of the effective configuration, stored on every audit item (`configHash`). */
export function configHash(config: Config): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 16);
}
