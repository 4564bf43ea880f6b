/**
 * The local run: the hourly job, end to end, on a simulated account.
 *
 * A session sets up, in this order: the stack's template (synthesized in-process from the configuration, or given),
 * the state machine prepared from it (local/asl-local.ts), a DynamoDB-compatible server with the audit and state
 * tables (local/dynamo-local.ts), the handlers' environment (every variable of docs/architecture.md, from the
 * template's function environment resolved to local names, with ZERO_IMPACT_CONFIG from the configuration, dummy
 * credentials and AWS_ENDPOINT_URL_DYNAMODB), the simulated account installed (local/simulated-account.ts), the
 * handlers' log lines captured, and the handler modules loaded. `run()` executes the state machine once and
 * summarizes what the run did from its audit items. `stop()` undoes everything (idempotent), also after a failure;
 * `stopAllSessions()` is for a Ctrl-C handler.
 *
 * The handlers keep real time (their rate limiter paces control-plane calls at `rates.controlPlanePerSecond`), so a
 * local run takes as long as the configuration's rates make it take.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { strFromU8 } from 'fflate';
import type { Config } from '../lib/config';
import { AUDIT_TABLE, STATE_TABLE } from '../lambdas/shared/domain/table-schema';
import type { AuditItem, FunctionConfiguration } from '../lambdas/shared/domain/types';
import {
  executeStateMachine,
  physicalName,
  prepareStateMachine,
  resolveIntrinsics,
  type CfnTemplate,
  type InvokeEvent,
  type Json,
  type LambdaHandler,
  type LocalNaming,
  type PreparedStateMachine,
} from './asl-local';
import { startLocalDynamo, type LocalDynamo } from './dynamo-local';
import type { Estate } from './estate';
import packageJson from '../package.json';
import { countDelta, summarizeDecisions, type RunSummary } from './run-summary';
import { functionPolicies, type CallerPolicy } from './iam-policy';
import {
  SimulatedAccount,
  runAsCaller,
  type KmsKeyDefinition,
  type LayerDefinition,
  type SimulatedAccountOptions,
} from './simulated-account';

export const LAMBDAS_DIR = join(__dirname, '..', 'lambdas');
export const DEFAULT_STACK_NAME = 'ZeroImpactProtect';
const PACKAGE_VERSION = packageJson.version;

/** A problem with the local run's inputs (the command prints it as one line, exit 2). */
export class LocalRunError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalRunError';
  }
}

export interface SessionOptions {
  estate: Estate;
  /** The validated configuration the handlers run with (and the stack is synthesized from). */
  config: Config;
  /** The stack template. @default synthesized in-process from `config` (bin/app.ts) */
  template?: CfnTemplate;
  /** @default "ZeroImpactProtect" */
  stackName?: string;
  /** Options for the simulated account (seed, clock, update settling, extra or replacement layers). */
  simulation?: Partial<Omit<SimulatedAccountOptions, 'estate' | 'topicArns' | 'buckets'>>;
  /** Progress lines while the session works. */
  progress?: (line: string) => void;
  /** Capture what the handlers write to stdout/stderr (their logs) instead of printing it. @default true */
  captureLogs?: boolean;
  /** POWERTOOLS_LOG_LEVEL for the handlers (read when their modules load). @default "INFO" */
  logLevel?: string;
  /** Called after every Lambda invocation, with the payloads that crossed the boundary. */
  onInvoke?: (event: InvokeEvent) => void;
}

export interface PublishedRecord {
  runId: string | null;
  subject: string | null;
  message: string;
  attributes: Record<string, { DataType?: string; StringValue?: string }>;
}

export interface LocalRunReport {
  runs: RunSummary[];
  /** Every audit item, scanned from the table after the last run, oldest first. */
  auditItems: AuditItem[];
  /** Every SNS message published, with the run it was published in. */
  messages: PublishedRecord[];
  /** The estate's function configurations after the last run (GetFunctionConfiguration shape). */
  functions: FunctionConfiguration[];
  /** What the handlers wrote to stdout/stderr. */
  logs: string[];
}

/** The folders under lambdas/ that hold a handler.ts. */
export function handlerNames(dir = LAMBDAS_DIR): string[] {
  return readdirSync(dir, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(dir, entry.name, 'handler.ts')))
    .map((entry) => entry.name)
    .sort();
}

/** The Defender layer as the simulated account holds it: a ZIP with the wrapper file, compatible as configured. */
export function defenderLayer(config: Config): LayerDefinition {
  const wrapper = config.defender.environment['AWS_LAMBDA_EXEC_WRAPPER'];
  const files: Record<string, string> = { 'twistlock/README.txt': 'Simulated Prisma Cloud Defender layer\n' };
  if (typeof wrapper === 'string' && wrapper.startsWith('/opt/')) {
    files[wrapper.slice('/opt/'.length)] = '#!/bin/bash\n# simulated Defender wrapper\nexec "$@"\n';
  }
  return {
    layerVersionArn: config.defender.layerArn,
    files,
    compatibleRuntimes: [...config.funnel.supportedRuntimes],
    compatibleArchitectures: ['x86_64'],
    description: 'Prisma Cloud Defender (simulated)',
  };
}

/** The SSM parameters the configuration reads that the estate does not provide. */
export function missingParameters(config: Config, estate: Estate): string[] {
  return Object.values(config.defender.environment)
    .filter((value): value is { ssmParameter: string } => typeof value === 'object')
    .map((value) => value.ssmParameter)
    .filter((name) => estate.ssmParameters[name] === undefined);
}

/** Captures writes to stdout/stderr; `write` reaches the real stderr. */
class OutputCapture {
  readonly lines: string[] = [];
  private originals: { out: typeof process.stdout.write; err: typeof process.stderr.write } | undefined;
  private partial = '';

  start(): void {
    if (this.originals !== undefined) return;
    this.originals = { out: process.stdout.write, err: process.stderr.write };
    const collect = (chunk: unknown, ...rest: unknown[]): boolean => {
      this.partial += typeof chunk === 'string' ? chunk : Buffer.from(chunk as Uint8Array).toString('utf8');
      const parts = this.partial.split('\n');
      this.partial = parts.pop() ?? '';
      this.lines.push(...parts);
      const callback = rest.find((r): r is () => void => typeof r === 'function');
      callback?.();
      return true;
    };
    process.stdout.write = collect as typeof process.stdout.write;
    process.stderr.write = collect as typeof process.stderr.write;
  }

  /** Runs `print` with the real stdout/stderr (synchronously), also while capturing. */
  bypass(print: () => void): void {
    const originals = this.originals;
    if (originals === undefined) return print();
    const patched = { out: process.stdout.write, err: process.stderr.write };
    process.stdout.write = originals.out;
    process.stderr.write = originals.err;
    try {
      print();
    } finally {
      process.stdout.write = patched.out;
      process.stderr.write = patched.err;
    }
  }

  stop(): void {
    if (this.originals === undefined) return;
    process.stdout.write = this.originals.out;
    process.stderr.write = this.originals.err;
    this.originals = undefined;
    if (this.partial.length > 0) this.lines.push(this.partial);
    this.partial = '';
  }
}

const activeSessions = new Set<LocalSession>();

/** Stops every session still running (for a Ctrl-C handler). */
export async function stopAllSessions(): Promise<void> {
  await Promise.all([...activeSessions].map((session) => session.stop()));
}

/** One local account, DynamoDB server and handler environment, for one or more runs. */
export class LocalSession {
  account!: SimulatedAccount;
  prepared!: PreparedStateMachine;
  /** The handlers' environment (also set in process.env while the session runs). */
  environment: Record<string, string> = {};
  private dynamo: LocalDynamo | undefined;
  private readonly capture = new OutputCapture();
  private savedEnv = new Map<string, string | undefined>();
  private handlers: Record<string, LambdaHandler> = {};
  private naming!: LocalNaming;
  private readonly runIds: string[] = [];
  private readonly publishedRuns: Array<string | null> = [];
  private stopped = false;

  private constructor(private readonly options: SessionOptions) {}

  static async start(options: SessionOptions): Promise<LocalSession> {
    const session = new LocalSession(options);
    activeSessions.add(session);
    try {
      await session.setUp();
    } catch (error) {
      await session.stop();
      throw error;
    }
    return session;
  }

  /** A progress line to the caller's printer, which writes to the real stdout/stderr. */
  private progress(line: string): void {
    const print = this.options.progress;
    if (print !== undefined) this.capture.bypass(() => print(line));
  }

  private async setUp(): Promise<void> {
    const { estate, config } = this.options;
    const missing = missingParameters(config, estate);
    if (missing.length > 0) {
      throw new LocalRunError(
        `the configuration reads SSM parameter${missing.length > 1 ? 's' : ''} ${missing.join(', ')}: give ${missing.length > 1 ? 'their values' : 'its value'} in the estate file ({ "functions": [...], "ssmParameters": { "${missing[0]}": "..." } }) or use a literal in --config`,
      );
    }
    const stackName = this.options.stackName ?? DEFAULT_STACK_NAME;
    this.naming = { region: estate.region, account: estate.account, stackName };
    let template = this.options.template;
    if (template === undefined) {
      this.progress('Synthesizing the stack (the state machine cdk synth produces) ...');
      const { synthesizeTemplate } = await import('./stack-template');
      template = synthesizeTemplate(config);
    }
    this.prepared = prepareStateMachine(template, this.naming, handlerNames());
    this.environment = this.handlerEnvironment(template);

    this.dynamo = await startLocalDynamo([
      { name: this.environment['AUDIT_TABLE_NAME'] as string, schema: AUDIT_TABLE },
      { name: this.environment['STATE_TABLE_NAME'] as string, schema: STATE_TABLE },
    ]);
    this.setEnv({
      ...this.environment,
      AWS_REGION: estate.region,
      AWS_DEFAULT_REGION: estate.region,
      AWS_ACCESS_KEY_ID: 'local',
      AWS_SECRET_ACCESS_KEY: 'local',
      AWS_SESSION_TOKEN: undefined,
      AWS_PROFILE: undefined,
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ENDPOINT_URL_DYNAMODB: this.dynamo.endpoint,
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      POWERTOOLS_LOG_LEVEL: this.options.logLevel ?? process.env['POWERTOOLS_LOG_LEVEL'] ?? 'INFO',
      POWERTOOLS_DEV: undefined,
    });
    const layers = [defenderLayer(config), ...(this.options.simulation?.layers ?? [])];
    this.account = new SimulatedAccount({
      permissions: this.rolePolicies(template),
      kmsKeys: this.templateKeys(template),
      ...this.options.simulation,
      estate,
      layers: [...new Map(layers.map((l) => [l.layerVersionArn, l])).values()],
      topicArns: [this.environment['SKIP_TOPIC_ARN'] as string, this.environment['ALARM_TOPIC_ARN'] as string],
      buckets: [this.environment['INVENTORY_BUCKET'] as string],
    }).install();
    if (this.options.captureLogs !== false) this.capture.start();
    this.handlers = await this.loadHandlers();
  }

  /**
   * Each handler's role policy, from the template's AWS::IAM::Policy resources (the policy data the stack's roles
   * are built from), keyed by handler folder: the simulated account checks every call a handler makes against it.
   */
  private rolePolicies(template: CfnTemplate): Record<string, CallerPolicy> {
    const byLogicalId = functionPolicies(template, this.naming);
    const policies: Record<string, CallerPolicy> = {};
    for (const fn of this.prepared.functions) {
      policies[fn.handlerName] = byLogicalId.get(fn.logicalId) ?? { role: fn.handlerName, statements: [] };
    }
    return policies;
  }

  /**
   * The KMS keys the stack creates (the CMK; an HMAC_256 key for MACs), and the key MAC_KEY_ID names if the
   * template has it but not as one of its own keys.
   */
  private templateKeys(template: CfnTemplate): KmsKeyDefinition[] {
    const keys: KmsKeyDefinition[] = [];
    for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
      if (resource.Type !== 'AWS::KMS::Key') continue;
      const arn = String(resolveIntrinsics({ 'Fn::GetAtt': [logicalId, 'Arn'] }, template, this.naming));
      const spec = resource.Properties?.['KeySpec'] === 'HMAC_256' ? 'HMAC_256' : 'SYMMETRIC_DEFAULT';
      keys.push({ arn, keySpec: spec });
    }
    const macKeyId = this.environment['MAC_KEY_ID'];
    if (macKeyId !== undefined && !keys.some((k) => k.arn === macKeyId))
      keys.push({ arn: macKeyId, keySpec: 'HMAC_256' });
    return keys;
  }

  /** The variables the stack gives the functions, resolved to local names; the local configuration on top. */
  private handlerEnvironment(template: CfnTemplate): Record<string, string> {
    const stackName = this.naming.stackName;
    const fromTemplate: Record<string, string> = {};
    for (const fn of this.prepared.functions) Object.assign(fromTemplate, fn.environment);
    const { NODE_OPTIONS: _nodeOptions, POWERTOOLS_LOG_LEVEL: _level, ...variables } = fromTemplate;
    const named = (type: string, fallback: string): string => {
      const id = Object.entries(template.Resources ?? {}).find(([, r]) => r.Type === type)?.[0];
      return id === undefined ? fallback : physicalName(template, id, this.naming);
    };
    const { region, account } = this.naming;
    return {
      AUDIT_TABLE_NAME: `${stackName}-AuditTable`,
      STATE_TABLE_NAME: `${stackName}-StateTable`,
      SKIP_TOPIC_ARN: `arn:aws:sns:${region}:${account}:${stackName}-SkipTopic`,
      ALARM_TOPIC_ARN: `arn:aws:sns:${region}:${account}:${stackName}-AlarmTopic`,
      INVENTORY_BUCKET: named('AWS::S3::Bucket', `${stackName}-inventory`.toLowerCase()),
      ENGINE_FUNCTION_PREFIX: `${stackName}-`,
      ENGINE_VERSION: PACKAGE_VERSION,
      POWERTOOLS_SERVICE_NAME: 'zero-impact-protect',
      POWERTOOLS_METRICS_NAMESPACE: 'ZeroImpactProtect',
      ...variables,
      ZERO_IMPACT_CONFIG: JSON.stringify(this.options.config),
    };
  }

  private setEnv(values: Record<string, string | undefined>): void {
    for (const [key, value] of Object.entries(values)) {
      if (!this.savedEnv.has(key)) this.savedEnv.set(key, process.env[key]);
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }

  private async loadHandlers(): Promise<Record<string, LambdaHandler>> {
    const runtime = (await import('../lambdas/shared/runtime')) as { resetRuntime?: () => void };
    // Handler modules may already be loaded in this process (another session): forget their cached environment.
    runtime.resetRuntime?.();
    const handlers: Record<string, LambdaHandler> = {};
    for (const fn of this.prepared.functions) {
      const module = (await import(join(LAMBDAS_DIR, fn.handlerName, 'handler'))) as { handler?: unknown };
      if (typeof module.handler !== 'function') {
        throw new LocalRunError(`lambdas/${fn.handlerName}/handler.ts does not export a handler function`);
      }
      const handler = module.handler as LambdaHandler;
      // Each invocation runs as its function's role: the simulated account checks its calls against that policy.
      handlers[fn.handlerName] = (event, context) => runAsCaller(fn.handlerName, () => handler(event, context));
    }
    return handlers;
  }

  /** Executes the state machine once (one hourly run) and summarizes it. */
  async run(): Promise<RunSummary> {
    if (this.stopped) throw new Error('the local session is stopped');
    const started = Date.now();
    const stamp = new Date(started)
      .toISOString()
      .replace(/[-:]/g, '')
      .replace(/\.\d+Z$/, 'Z');
    const runId = `local-${stamp}-${this.runIds.length + 1}-${randomUUID().slice(0, 4)}`;
    this.runIds.push(runId);
    const { region, account } = this.naming;
    const machineName = physicalName({ Resources: {} }, this.prepared.logicalId, this.naming);
    const machineArn = `arn:aws:states:${region}:${account}:stateMachine:${machineName}`;
    const callsBefore = { ...this.account.calls(), ...this.dynamoRequests() };
    const configurationsBefore = this.account.functionConfigurations();
    const publishedBefore = this.account.published.length;
    this.progress(`Run ${this.runIds.length}: ${runId} (${this.options.config.mode})`);
    let status: RunSummary['status'] = 'SUCCEEDED';
    let error: string | undefined;
    try {
      await executeStateMachine(
        this.prepared,
        {
          version: '0',
          id: randomUUID(),
          'detail-type': 'Scheduled Event',
          source: 'aws.events',
          account,
          time: new Date(started).toISOString().replace(/\.\d+Z$/, 'Z'),
          region,
          resources: [`arn:aws:events:${region}:${account}:rule/${this.naming.stackName}-Schedule`],
          detail: {},
        },
        {
          handlers: this.handlers,
          io: {
            readObject: (bucket, key) => {
              const body = this.account.s3Object(bucket, key);
              return body === undefined ? undefined : strFromU8(body);
            },
            writeObject: (bucket, key, body) => this.account.putS3Object(bucket, key, body),
          },
          context: {
            Execution: { Id: `arn:aws:states:${region}:${account}:execution:${machineName}:${runId}`, Name: runId },
            StateMachine: { Id: machineArn, Name: machineName },
          },
          hooks: {
            onInvoke: this.options.onInvoke,
            onState: (event) => {
              if (event.type === 'StateEntered') this.progress(`  ${event.state}`);
            },
            onBatch: (event) =>
              this.progress(`    batch ${event.index + 1} of ${event.total} ${event.failed ? 'FAILED' : 'done'}`),
          },
        },
      );
    } catch (failure) {
      status = 'FAILED';
      const cause = failure instanceof Error && failure.cause instanceof Error ? failure.cause : failure;
      error = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    }
    for (let i = publishedBefore; i < this.account.published.length; i += 1) this.publishedRuns[i] = runId;
    const apiCalls = countDelta(callsBefore, { ...this.account.calls(), ...this.dynamoRequests() });
    const summary = summarizeDecisions(await this.auditItems(), runId, {
      before: configurationsBefore,
      after: this.account.functionConfigurations(),
    });
    return {
      runId,
      status,
      ...(error !== undefined ? { error } : {}),
      ...summary,
      apiCalls,
      durationMs: Date.now() - started,
    };
  }

  private dynamoRequests(): Record<string, number> {
    return this.dynamo?.requests() ?? {};
  }

  /** Every audit item, oldest first. */
  async auditItems(): Promise<AuditItem[]> {
    if (this.dynamo === undefined) return [];
    const items = (await this.dynamo.scan(this.environment['AUDIT_TABLE_NAME'] as string)) as unknown as AuditItem[];
    return items.sort((a, b) => a.decidedAt.localeCompare(b.decidedAt) || a.sk.localeCompare(b.sk));
  }

  /** Every message published so far, with the run it was published in. */
  messages(): PublishedRecord[] {
    return this.account.published.map((m, i) => ({
      runId: this.publishedRuns[i] ?? null,
      subject: m.subject,
      message: m.message,
      attributes: m.attributes,
    }));
  }

  /** What the handlers wrote so far. */
  logs(): string[] {
    return [...this.capture.lines];
  }

  /** Undoes everything the session set up; safe to call more than once. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    activeSessions.delete(this);
    this.capture.stop();
    this.account?.uninstall();
    try {
      await this.dynamo?.stop();
    } finally {
      for (const [key, value] of this.savedEnv) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
      this.savedEnv.clear();
    }
  }
}

/** Runs the job `runs` times on a fresh session and reports; the session is always stopped. */
export async function localRun(options: SessionOptions & { runs: number }): Promise<LocalRunReport> {
  const session = await LocalSession.start(options);
  try {
    const runs: RunSummary[] = [];
    for (let i = 0; i < options.runs; i += 1) runs.push(await session.run());
    return {
      runs,
      auditItems: await session.auditItems(),
      messages: session.messages(),
      functions: session.account.functionConfigurations(),
      logs: session.logs(),
    };
  } finally {
    await session.stop();
  }
}

export type { Json };
