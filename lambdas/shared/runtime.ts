/**
 * The Lambdas' environment, read and validated once per container. A missing variable or an invalid
 * ZERO_IMPACT_CONFIG fails the invocation loudly (the state machine then records the failure): never a guess.
 */
import { ConfigError, parseConfig, type Config } from './domain/config';

export interface Runtime {
  config: Config;
  auditTableName: string;
  stateTableName: string;
  skipTopicArn: string;
  alarmTopicArn: string;
  inventoryBucket: string;
  /** Functions whose names start with this are the engine's own. */
  engineFunctionPrefix: string;
  engineVersion: string;
}

export class RuntimeConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RuntimeConfigurationError';
  }
}

function required(env: NodeJS.ProcessEnv, name: string): string {
  const value = env[name];
  if (value === undefined || value.length === 0) {
    throw new RuntimeConfigurationError(`environment variable ${name} is not set`);
  }
  return value;
}

/** Reads the runtime from an environment (process.env by default). Exported for tests. */
export function readRuntime(env: NodeJS.ProcessEnv = process.env): Runtime {
  let configJson: unknown;
  try {
    configJson = JSON.parse(required(env, 'ZERO_IMPACT_CONFIG'));
  } catch (error) {
    if (error instanceof RuntimeConfigurationError) throw error;
    throw new RuntimeConfigurationError('ZERO_IMPACT_CONFIG is not valid JSON');
  }
  let config: Config;
  try {
    config = parseConfig(configJson, 'ZERO_IMPACT_CONFIG');
  } catch (error) {
    if (error instanceof ConfigError) throw new RuntimeConfigurationError(error.message);
    throw error;
  }
  return {
    config,
    auditTableName: required(env, 'AUDIT_TABLE_NAME'),
    stateTableName: required(env, 'STATE_TABLE_NAME'),
    skipTopicArn: required(env, 'SKIP_TOPIC_ARN'),
    alarmTopicArn: required(env, 'ALARM_TOPIC_ARN'),
    inventoryBucket: required(env, 'INVENTORY_BUCKET'),
    engineFunctionPrefix: required(env, 'ENGINE_FUNCTION_PREFIX'),
    engineVersion: env['ENGINE_VERSION'] ?? '0.0.0',
  };
}

let cached: Runtime | undefined;

/** The runtime of this container, read on first use. */
export function runtime(): Runtime {
  cached ??= readRuntime();
  return cached;
}

/** Forgets the cached runtime (the local run changes the environment between runs). */
export function resetRuntime(): void {
  cached = undefined;
}
