/**
 * The CDK app: reads the configuration (cdk.json context `zeroImpact`, overridable with
 * `-c zeroImpact='{"mode":"protect"}'`, deep-merged over cdk.json's value), validates it, builds the stack and runs
 * the cdk-nag AwsSolutions checks. An invalid configuration prints one line naming the key and exits 1.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Annotations, App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { isRecord } from '../lambdas/shared/domain/types';
import { Config, ConfigError, deployProblems, mergeConfigLayers, parseConfig } from '../lib/config';
import { stackProblems, ZeroImpactStack } from '../lib/zero-impact-stack';
import { STACK_NAME } from './stack-name';

/** The context key holding the configuration. */
export const CONTEXT_KEY = 'zeroImpact';
/** The stack's name; the engine's own functions are named `<stack name>-...`. */
export { STACK_NAME } from './stack-name';

const CDK_JSON = path.join(__dirname, '..', 'cdk.json');
const SOURCE = `cdk.json context ${CONTEXT_KEY}`;

/**
 * Deep merge: objects merge key by key, anything else (arrays and `defender.environment` included) in `override`
 * replaces `base`. The one merge of configuration layers (lib/config.ts mergeConfigLayers, on defu).
 */
export function deepMerge(base: unknown, override: unknown): unknown {
  if (!isRecord(base) || !isRecord(override)) return override;
  return mergeConfigLayers([
    { source: 'base', value: base },
    { source: 'override', value: override },
  ]);
}

/** cdk.json's `context.zeroImpact`, or undefined when the file or the key is missing. */
export function readCdkJsonConfig(file = CDK_JSON): unknown {
  if (!fs.existsSync(file)) return undefined;
  const cdkJson: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  return isRecord(cdkJson) && isRecord(cdkJson.context) ? cdkJson.context[CONTEXT_KEY] : undefined;
}

/**
 * The configuration from cdk.json and a context value: the CDK CLI replaces a context key wholesale with `-c`, so
 * an override arrives as a JSON string (or, without `-c`, as cdk.json's own object) and is merged here.
 * @throws ConfigError naming every bad key
 */
export function resolveConfig(base: unknown, contextValue: unknown): Config {
  let override: unknown = contextValue;
  if (typeof contextValue === 'string') {
    try {
      override = JSON.parse(contextValue);
    } catch {
      // The parser's message may quote the value (which could hold a secret): say only what is wrong.
      throw new ConfigError(`-c ${CONTEXT_KEY}`, [`${CONTEXT_KEY}: not valid JSON`]);
    }
  }
  const input = override === undefined ? base : deepMerge(base ?? {}, override);
  const config = parseConfig(input, SOURCE, CONTEXT_KEY);
  const problems = [...deployProblems(config, CONTEXT_KEY), ...stackProblems(config, CONTEXT_KEY)];
  if (problems.length > 0) throw new ConfigError(SOURCE, problems);
  return config;
}

export interface BuildAppOptions {
  /** Context for the App (tests: `{ 'aws:cdk:bundling-stacks': [] }` skips esbuild; `zeroImpact` overrides). */
  readonly context?: Record<string, unknown>;
  /** The configuration the context is merged over. @default cdk.json's `context.zeroImpact` */
  readonly baseConfig?: unknown;
  /** Cloud assembly directory. @default - the CLI's, or a temporary directory */
  readonly outdir?: string;
}

/** Creates the stack for a validated configuration. */
export function createStack(app: App, config: Config, id = STACK_NAME): ZeroImpactStack {
  return new ZeroImpactStack(app, id, { config });
}

/** Builds the whole app in-process (the CDK CLI, tests and the local runner use this). */
export function buildApp(options: BuildAppOptions = {}): { app: App; stack: ZeroImpactStack; config: Config } {
  const app = new App({ context: options.context, outdir: options.outdir });
  const base = options.baseConfig ?? readCdkJsonConfig();
  const config = resolveConfig(base, app.node.tryGetContext(CONTEXT_KEY));
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  const stack = createStack(app, config);
  for (const key of misspeltContextKeys(app.node.getAllContext())) {
    Annotations.of(stack).addWarningV2(
      'zero-impact:context-key',
      `context key "${key}" is ignored: the configuration is read from "${CONTEXT_KEY}" only (-c ${CONTEXT_KEY}='{"mode":"protect"}')`,
    );
  }
  return { app, stack, config };
}

/**
 * Context keys that look like a misspelt `zeroImpact` (another case, or a dotted path such as `zeroImpact.mode`,
 * which the CDK CLI passes as its own key): silently ignored otherwise (issue 13 item 10).
 */
export function misspeltContextKeys(context: Record<string, unknown>): string[] {
  return Object.keys(context).filter(
    (key) =>
      key !== CONTEXT_KEY &&
      (key.toLowerCase() === CONTEXT_KEY.toLowerCase() ||
        key.toLowerCase().startsWith(`${CONTEXT_KEY.toLowerCase()}.`) ||
        key.toLowerCase().replace(/[-_]/g, '') === CONTEXT_KEY.toLowerCase()),
  );
}

/** The one line synth prints: which mode and which Defender layer it built (issue 13 item 10). */
export function synthLine(config: Config): string {
  return `zero-impact: built ${STACK_NAME} in ${config.mode} mode, Defender layer ${config.defender.layerArn}`;
}

/** Entry point of `npx cdk synth|deploy`. */
export function main(): void {
  try {
    const { app, config } = buildApp();
    app.synth();
    console.error(synthLine(config));
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(`zero-impact: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

if (require.main === module) main();
