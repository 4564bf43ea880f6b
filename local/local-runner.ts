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
 * Time. By default (`virtualTime`, what `local-run` uses; `virtualTime: false` keeps real time, the rate limiter
 * then pacing control-plane calls at `rates.controlPlanePerSecond` in real seconds) the session runs on a virtual clock
 * (local/virtual-clock.ts): the engine's `systemClock` and the simulated account read it, a sleep moves it instead of
 * waiting, the state machine's Retry intervals move it by their average wait, and consecutive runs start one schedule interval
 * apart (`schedule`, an hour by default), so leases, back-offs and retention behave as in an hourly deployment and an
 * hour costs nothing; the SDK clients' retry back-off waits on it too (local/sdk-virtual-time.ts).
 *
 * Scenario (local/scenario-driver.ts): faults and events are applied during the runs; a `kill` aborts the execution
 * (registered in the simulated account as ABORTED for `states:DescribeExecution`) and the session waits until every
 * invocation still in flight has given up before the next run. After the runs, `invariantInput()` gathers what
 * local/invariants.ts checks.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { strFromU8 } from 'fflate';
import type { Config } from '../lib/config';
import { AUDIT_TABLE, STATE_TABLE, stateKeys } from '../lambdas/shared/domain/table-schema';
import type { AuditItem, FunctionConfiguration } from '../lambdas/shared/domain/types';
import { expandRepeats } from '../lambdas/shared/domain/repeats';
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
  checkInvariants,
  type AuditRecord,
  type InvariantInput,
  type InvariantReport,
  type RunInput,
} from './invariants';
import type { FaultRecord } from './fault-plan';
import type { Scenario } from './scenario';
import { ScenarioDriver } from './scenario-driver';
import { VirtualClock, scheduleIntervalMs } from './virtual-clock';
import { installSdkVirtualTime, uninstallSdkVirtualTime } from './sdk-virtual-time';
import { defenderVariables, ORIGINAL_HANDLER_VARIABLE } from '../lib/config';
import type { PolicyStats } from '../lambdas/shared/adapters/defender-policy';
import {
  startStandInConsole,
  STANDIN_ACCESS_KEY,
  STANDIN_SECRET_KEY,
  type StandInConsole,
  type StandInOptions,
} from './prisma-console-standin';
import {
  SimulatedAccount,
  runAsCaller,
  type KmsKeyDefinition,
  type LayerDefinition,
  type SimulatedAccountOptions,
} from './simulated-account';

/** Variable values shorter than this are not looked for in logs and records (invariant 6): ordinary words. */
export const MIN_SECRET_LENGTH = 8;
/** The Console client's per-request timeout in a local run (real time: the HTTP call is real). */
export const LOCAL_CONSOLE_TIMEOUT_MS = 200;
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

function sortedItems(items: AuditItem[]): AuditItem[] {
  return items.sort((a, b) => a.decidedAt.localeCompare(b.decidedAt) || a.sk.localeCompare(b.sk));
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
  /**
   * Instead of `progress`'s line, a run's start, each state entered and each batch's end as an event (called with the
   * real stdout/stderr): bin/commands/local-run.ts draws a bar on a terminal and orders the batch lines otherwise.
   */
  onProgress?: (event: SessionProgress) => void;
  /** Capture what the handlers write to stdout/stderr (their logs) instead of printing it. @default true */
  captureLogs?: boolean;
  /** POWERTOOLS_LOG_LEVEL for the handlers (read when their modules load). @default "INFO" */
  logLevel?: string;
  /** Called after every Lambda invocation, with the payloads that crossed the boundary. */
  onInvoke?: (event: InvokeEvent) => void;
  /** Faults and events to apply during the runs (local/scenario.ts). */
  scenario?: Scenario;
  /** Called on every state the parent execution enters or exits (the benchmark counts Standard transitions). */
  onState?: (event: { type: string; state: string }) => void;
  /** Called when a Distributed Map child execution (a batch) ends. */
  onBatch?: (event: { state: string; index: number; total: number; failed: boolean }) => void;
  /** Run on a virtual clock (see the module comment): runs an hour apart, sleeps cost nothing. @default true */
  virtualTime?: boolean;
  /**
   * With `defender.policySource` (issue 10) the session starts the stand-in Prisma Cloud Console
   * (local/prisma-console-standin.ts) on 127.0.0.1, points the handlers' configuration at it, and creates the
   * credentials secret in the simulated account. This hook decides its faults (e.g. a test's 429s). @default none
   */
  consoleFault?: StandInOptions['fault'];
}

/** A step of a run, for `onProgress`. */
export type SessionProgress =
  | { type: 'run'; run: number; runId: string; mode: string }
  | { type: 'state'; state: string }
  | { type: 'batch'; index: number; total: number; failed: boolean };

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
  /** faults.jsonl: every fault and event the scenario applied (empty without a scenario). */
  faults: FaultRecord[];
  /** invariants.json: the six invariants of issue 9, checked after the last run. */
  invariants: InvariantReport;
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
  /** The stack template the session runs (given, or synthesized from the configuration). */
  template: CfnTemplate | undefined;
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
  /** The session's clock (virtual or the real one). */
  clock: { now(): number } = { now: () => Date.now() };
  private virtualClock: VirtualClock | undefined;
  private driver: ScenarioDriver | undefined;
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Invocations per handler so far, with their summed duration on the session's clock and memory (the benchmark). */
  readonly invocations = new Map<string, { count: number; ms: number; memoryMb: number }>();
  private readonly runInputs: RunInput[] = [];
  private initialConfigurations: FunctionConfiguration[] = [];
  private lastRunStart: number | undefined;
  /** The stand-in Console, when the configuration names a policySource. */
  standInConsole: StandInConsole | undefined;
  /** The configuration the handlers run with: the options' one, its policySource pointed at the stand-in. */
  private handlerConfig!: Config;
  /**
   * The protect Lambda's TW_POLICY counters (lambdas/shared/adapters/defender-policy.ts), loaded with the handlers:
   * imported earlier, its logger would be built before the session sets the handlers' environment.
   */
  private policyCounters: () => PolicyStats = () => ({ fetched: 0, cached: 0, failed: 0 });

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
  private progress(line: string, event?: SessionProgress): void {
    const { progress: print, onProgress } = this.options;
    if (event !== undefined && onProgress !== undefined) this.capture.bypass(() => onProgress(event));
    else if (print !== undefined) this.capture.bypass(() => print(line));
  }

  /**
   * Issue 10: the stand-in Console for a configuration with a policySource; the handlers' configuration names its URL
   * (the template is synthesized from the configuration as given), and the secret the stack reads is created with
   * the stand-in's (fake) keys.
   */
  private async startConsole(): Promise<Record<string, string>> {
    const { config } = this.options;
    this.handlerConfig = config;
    const source = config.defender.policySource;
    if (source === undefined) return {};
    // A scenario's prisma:* faults reach the stand-in through the driver (created later; the hook reads it per call).
    const fault: StandInOptions['fault'] =
      this.options.consoleFault ?? ((operation, request) => this.driver?.consoleCall(operation, request));
    this.standInConsole = await startStandInConsole({ fault });
    this.handlerConfig = {
      ...config,
      defender: { ...config.defender, policySource: { ...source, console: this.standInConsole.url } },
    };
    this.progress(`Stand-in Prisma Cloud Console on ${this.standInConsole.url}`);
    return {
      [source.credentialsSecret]: JSON.stringify({ accessKey: STANDIN_ACCESS_KEY, secretKey: STANDIN_SECRET_KEY }),
    };
  }

  /** The counts of TW_POLICY values the protect Lambda got so far (fetched from the Console, cached, failed). */
  policyValues(): PolicyStats {
    return this.policyCounters();
  }

  private async setUp(): Promise<void> {
    const { estate, config } = this.options;
    const secrets = await this.startConsole();
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
    this.template = template;
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
    if (this.options.virtualTime ?? true) {
      this.virtualClock = new VirtualClock().install();
      this.clock = this.virtualClock;
      installSdkVirtualTime(this.virtualClock);
    }
    this.account = new SimulatedAccount({
      ...(this.virtualClock !== undefined ? { clock: this.virtualClock } : {}),
      permissions: this.rolePolicies(template),
      kmsKeys: this.templateKeys(template),
      secrets,
      ...this.options.simulation,
      estate,
      layers: [...new Map(layers.map((l) => [l.layerVersionArn, l])).values()],
      topicArns: [this.environment['SKIP_TOPIC_ARN'] as string, this.environment['ALARM_TOPIC_ARN'] as string],
      buckets: [this.environment['INVENTORY_BUCKET'] as string],
    }).install();
    this.initialConfigurations = this.account.functionConfigurations();
    if (this.options.scenario !== undefined) {
      this.driver = new ScenarioDriver({
        scenario: this.options.scenario,
        account: this.account,
        clock: this.virtualClock ?? new VirtualClock(),
        tables: {
          audit: this.environment['AUDIT_TABLE_NAME'] as string,
          state: this.environment['STATE_TABLE_NAME'] as string,
        },
      });
    }
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
      ZERO_IMPACT_CONFIG: JSON.stringify(this.handlerConfig),
      // A stand-in answer held back by a "timeout" fault (LOCAL_CONSOLE_DELAY_MS, real time) outlasts this.
      CONSOLE_TIMEOUT_MS: String(LOCAL_CONSOLE_TIMEOUT_MS),
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
    // The handlers' logger reads POWERTOOLS_LOG_LEVEL when its module first loads, which may have been before this
    // session set it (a CLI command or another session imported a handler module): set the session's level on it.
    const { logger } = await import('../lambdas/shared/observability');
    logger.setLogLevel((process.env['POWERTOOLS_LOG_LEVEL'] ?? 'INFO') as Parameters<typeof logger.setLogLevel>[0]);
    // Like a new Lambda container: no credentials, Console client or counts from another session.
    const policy = await import('../lambdas/shared/adapters/defender-policy');
    policy.resetDefenderPolicy();
    this.policyCounters = () => policy.policyStats();
    const handlers: Record<string, LambdaHandler> = {};
    for (const fn of this.prepared.functions) {
      const module = (await import(join(LAMBDAS_DIR, fn.handlerName, 'handler'))) as { handler?: unknown };
      if (typeof module.handler !== 'function') {
        throw new LocalRunError(`lambdas/${fn.handlerName}/handler.ts does not export a handler function`);
      }
      const handler = module.handler as LambdaHandler;
      // Each invocation runs as its function's role: the simulated account checks its calls against that policy.
      handlers[fn.handlerName] = (event, context) => {
        const started = this.clock.now();
        const invocation = runAsCaller(fn.handlerName, () => handler(event, context));
        const meter = (): void => {
          const stats = this.invocations.get(fn.handlerName) ?? { count: 0, ms: 0, memoryMb: fn.memorySize };
          stats.count += 1;
          // Lambda bills duration in 1 ms increments (https://aws.amazon.com/lambda/pricing/).
          stats.ms += Math.max(1, Math.ceil(this.clock.now() - started));
          this.invocations.set(fn.handlerName, stats);
        };
        invocation.then(meter, meter);
        this.inFlight.add(invocation);
        const forget = (): void => void this.inFlight.delete(invocation);
        invocation.then(forget, forget);
        return invocation;
      };
    }
    return handlers;
  }

  /**
   * Executes the state machine once (one hourly run) and summarizes it. On a virtual clock the run starts one
   * schedule interval after the previous one, or with `now` at the clock's current time (runs that overlap).
   */
  async run(options: { now?: boolean } = {}): Promise<RunSummary> {
    if (this.stopped) throw new Error('the local session is stopped');
    if (this.virtualClock !== undefined && this.lastRunStart !== undefined && options.now !== true) {
      // The next scheduled run: one schedule interval after the previous one started.
      const next = this.lastRunStart + scheduleIntervalMs(this.options.config.schedule);
      this.virtualClock.advance(next - this.virtualClock.now());
    }
    const started = this.clock.now();
    this.lastRunStart = started;
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
    const policyBefore = this.policyCounters();
    const configurationsBefore = this.account.functionConfigurations();
    const publishedBefore = this.account.published.length;
    this.progress(`Run ${this.runIds.length}: ${runId} (${this.options.config.mode})`, {
      type: 'run',
      run: this.runIds.length,
      runId,
      mode: this.options.config.mode,
    });
    let status: RunSummary['status'] = 'SUCCEEDED';
    let error: string | undefined;
    const runNumber = this.runIds.length;
    const executionArn = `arn:aws:states:${region}:${account}:execution:${machineName}:${runId}`;
    const startTime = new Date(started).toISOString();
    this.account.setExecution({
      executionArn,
      stateMachineArn: machineArn,
      name: runId,
      status: 'RUNNING',
      startDate: started,
    });
    const abort = new AbortController();
    let inventory: { bucket: string; key: string } | undefined;
    const onInvoke = (event: InvokeEvent): void => {
      const output = event.output;
      if (output !== null && typeof output === 'object' && !Array.isArray(output)) {
        const candidate = output['inventory'];
        if (candidate !== null && typeof candidate === 'object' && !Array.isArray(candidate)) {
          const { bucket, key } = candidate;
          if (typeof bucket === 'string' && typeof key === 'string') inventory = { bucket, key };
        }
      }
      this.options.onInvoke?.(event);
    };
    const execute = (): Promise<Json> =>
      executeStateMachine(
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
            Execution: { Id: executionArn, Name: runId, StartTime: startTime },
            StateMachine: { Id: machineArn, Name: machineName },
          },
          ...(this.virtualClock !== undefined ? { retryIntervalMs: 0 } : {}),
          signal: abort.signal,
          hooks: {
            onInvoke,
            ...(this.virtualClock !== undefined
              ? { onRetryWait: (event) => void this.virtualClock?.sleep(event.waitMs) }
              : {}),
            ...(this.driver !== undefined
              ? {
                  beforeTask: (event) => this.driver?.beforeTask(event.state, event.input),
                  afterTask: (event) => this.driver?.afterTask(event.state, event.input),
                }
              : {}),
            onState: (event) => {
              this.options.onState?.(event);
              if (event.type === 'StateEntered') {
                this.progress(`  ${event.state}`, { type: 'state', state: event.state });
              }
            },
            onBatch: (event) => {
              this.options.onBatch?.(event);
              this.progress(`    batch ${event.index + 1} of ${event.total} ${event.failed ? 'FAILED' : 'done'}`, {
                type: 'batch',
                index: event.index,
                total: event.total,
                failed: event.failed,
              });
            },
          },
        },
      );
    const killed = (): boolean => this.driver?.isKilled(runNumber) === true;
    try {
      await (this.driver !== undefined ? this.driver.runScope(runNumber, () => abort.abort(), execute) : execute());
    } catch (failure) {
      status = 'FAILED';
      const cause = failure instanceof Error && failure.cause instanceof Error ? failure.cause : failure;
      error = cause instanceof Error ? `${cause.name}: ${cause.message}` : String(cause);
    }
    if (killed()) {
      status = 'KILLED';
      error = 'the scenario killed the run (the execution and every Lambda died)';
      // Invocations still in flight give up (every call of the run fails) before the next run starts.
      while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight]);
    }
    this.account.setExecution({
      executionArn,
      stateMachineArn: machineArn,
      name: runId,
      status: status === 'SUCCEEDED' ? 'SUCCEEDED' : status === 'KILLED' ? 'ABORTED' : 'FAILED',
      startDate: started,
      stopDate: this.clock.now(),
      ...(status === 'FAILED' ? { error: 'States.TaskFailed', cause: 'the run failed (local run)' } : {}),
    });
    this.runInputs.push({
      runId,
      inventory: inventory === undefined ? [] : this.inventoryNames(inventory),
      ...(killed() ? { killed: true } : {}),
      mode: this.options.config.mode,
      notifications: this.options.config.notifications.skips,
    });
    for (let i = publishedBefore; i < this.account.published.length; i += 1) this.publishedRuns[i] = runId;
    const apiCalls = countDelta(callsBefore, { ...this.account.calls(), ...this.dynamoRequests() });
    const summary = summarizeDecisions(await this.auditItems(), runId, {
      before: configurationsBefore,
      after: this.account.functionConfigurations(),
    });
    const policyAfter = this.policyCounters();
    return {
      runId,
      status,
      ...(error !== undefined ? { error } : {}),
      ...summary,
      apiCalls,
      ...(this.standInConsole !== undefined
        ? {
            policyValues: {
              fetched: policyAfter.fetched - policyBefore.fetched,
              cached: policyAfter.cached - policyBefore.cached,
              failed: policyAfter.failed - policyBefore.failed,
            },
          }
        : {}),
      durationMs: this.clock.now() - started,
    };
  }

  /** The function names of a run's inventory object (the Take inventory output names it). */
  private inventoryNames(location: { bucket: string; key: string }): string[] {
    const body = this.account.s3Object(location.bucket, location.key);
    if (body === undefined) return [];
    try {
      const items = JSON.parse(strFromU8(body)) as unknown;
      if (!Array.isArray(items)) return [];
      return items
        .map((item: unknown) =>
          item !== null && typeof item === 'object'
            ? (item as { configuration?: { FunctionName?: unknown } }).configuration?.FunctionName
            : undefined,
        )
        .filter((name): name is string => typeof name === 'string');
    } catch {
      return [];
    }
  }

  /** Every item of the table the handlers' variable names (AUDIT_TABLE_NAME or STATE_TABLE_NAME). */
  async dynamoScan(variable: 'AUDIT_TABLE_NAME' | 'STATE_TABLE_NAME'): Promise<Array<Record<string, unknown>>> {
    if (this.dynamo === undefined) throw new Error('the local session has not started');
    return this.dynamo.scan(this.environment[variable] as string);
  }

  /** Moves the virtual clock on (e.g. past a lease, mid-run). Only with `virtualTime`. */
  advanceClock(ms: number): void {
    if (this.virtualClock === undefined) throw new Error('advanceClock needs a session with virtualTime');
    this.virtualClock.advance(ms);
  }

  /** faults.jsonl: every fault and event the scenario applied so far. */
  faults(): FaultRecord[] {
    return this.driver?.records() ?? [];
  }

  /**
   * What local/invariants.ts checks, after the runs so far: every audit item, message and log line, the
   * configurations before the first run (and of functions created since, as created) and now, and as secrets every
   * customer variable value of the estate (not the values the configuration adds).
   */
  async invariantInput(): Promise<InvariantInput> {
    const { config, estate } = this.options;
    const ourValues = new Set(
      Object.values(config.defender.environment)
        .map((value) => (typeof value === 'string' ? value : estate.ssmParameters[value.ssmParameter]))
        .filter((value): value is string => value !== undefined),
    );
    const estateValues = estate.functions.flatMap((f) => {
      const variables = f.configuration.Environment?.Variables;
      return variables !== null && typeof variables === 'object'
        ? Object.values(variables).filter((v): v is string => typeof v === 'string')
        : [];
    });
    // A value also found among the functions' names, ARNs and handlers, or shorter than 8 characters (INFO,
    // orders), is an ordinary word there, not a secret that can be told apart in a log line.
    // Tag values are not secret either: the owner tag is sent with every message on purpose (SERVICE=identity on a
    // function tagged team=identity is the same word, not a leak).
    const identifiers = [
      ...this.initialConfigurations.flatMap((c) => [c.FunctionName, c.FunctionArn, c.Handler, c.Runtime]),
      ...estate.functions.flatMap((f) => Object.values(f.tags ?? {})),
    ].filter((v): v is string => typeof v === 'string');
    // The Console's values are ours but secret too: they must never reach a log, a record or a message.
    const consoleValues =
      this.standInConsole === undefined
        ? []
        : [...this.initialConfigurations, ...(this.driver?.created.values() ?? [])].flatMap((c) =>
            typeof c.FunctionName === 'string'
              ? [this.standInConsole?.policyFor(c.FunctionName, estate.region) ?? '']
              : [],
          );
    const secrets = [...new Set([...estateValues, ...(this.driver?.createdSecrets ?? []), ...consoleValues])].filter(
      (value) =>
        !ourValues.has(value) &&
        value.length >= MIN_SECRET_LENGTH &&
        !identifiers.some((identifier) => identifier.includes(value)),
    );
    const variableNames = [
      ...Object.keys(defenderVariables(config)),
      ...(config.defender.method === 'handler' ? [ORIGINAL_HANDLER_VARIABLE] : []),
    ];
    return {
      runs: this.runInputs.map((r) => ({ ...r, inventory: [...r.inventory] })),
      auditItems: (await this.auditItems()) as unknown as AuditRecord[],
      messages: this.messages(),
      logs: this.logs(),
      initialConfigurations: [...this.initialConfigurations, ...(this.driver?.created.values() ?? [])],
      finalConfigurations: this.account.functionConfigurations(),
      secrets,
      ours: {
        layerArn: config.defender.layerArn,
        variableNames,
        ...(config.defender.method === 'handler' && config.defender.handler !== undefined
          ? { handler: config.defender.handler }
          : {}),
      },
      outOfBand: [...(this.driver?.outOfBand ?? [])],
      outbox: await this.outboxRuns(),
      unrecorded: this.unrecordedDecisions(),
    };
  }

  private dynamoRequests(): Record<string, number> {
    return this.dynamo?.requests() ?? {};
  }

  /**
   * Every decision and run item, oldest first, each compact repeats item expanded into the decisions it records
   * (domain/repeats.ts), as every reader of the table sees them.
   */
  async auditItems(): Promise<AuditItem[]> {
    return sortedItems(expandRepeats(await this.tableItems()));
  }

  /** The audit table's items as stored (repeats items not expanded), oldest first. */
  async tableItems(): Promise<AuditItem[]> {
    if (this.dynamo === undefined) return [];
    const items = (await this.dynamo.scan(this.environment['AUDIT_TABLE_NAME'] as string)) as unknown as AuditItem[];
    return sortedItems(items);
  }

  /** Decisions left in the S3 fallback and not replayed yet (`runs/<runId>/unrecorded/<fn>.json`). */
  unrecordedDecisions(): Array<{ runId: string; functionName: string }> {
    const bucket = this.environment['INVENTORY_BUCKET'] as string;
    return this.account.s3Keys(bucket, 'runs/').flatMap((key) => {
      const match = /^runs\/([^/]+)\/unrecorded\/(.+)\.json$/.exec(key);
      return match === null
        ? []
        : [{ runId: match[1] as string, functionName: decodeURIComponent(match[2] as string) }];
    });
  }

  /** The runs the state table's outbox still names (their notices are owed, lambdas/shared/notices.ts). */
  async outboxRuns(): Promise<string[]> {
    if (this.dynamo === undefined) return [];
    const items = await this.dynamo.scan(this.environment['STATE_TABLE_NAME'] as string);
    const outbox = items.find((i) => i['pk'] === stateKeys.outbox());
    const runs: unknown = outbox?.['runIds'];
    return runs instanceof Set || Array.isArray(runs) ? [...(runs as Iterable<unknown>)].map(String) : [];
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
    this.driver?.stop();
    this.account?.uninstall();
    await this.standInConsole?.close();
    if (this.virtualClock !== undefined) uninstallSdkVirtualTime();
    this.virtualClock?.uninstall();
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

/** Hooks of `localRun` around the runs (local-run --keep DIR: load a kept session first, keep it after). */
export interface LocalRunHooks {
  /** After the session started, before the first run. */
  afterStart?: (session: LocalSession) => Promise<void>;
  /** After the last run, before the session stops. */
  beforeStop?: (session: LocalSession) => Promise<void>;
}

/** Runs the job `runs` times on a fresh session and reports; the session is always stopped. */
export async function localRun(options: SessionOptions & { runs: number } & LocalRunHooks): Promise<LocalRunReport> {
  const session = await LocalSession.start(options);
  try {
    await options.afterStart?.(session);
    const runs: RunSummary[] = [];
    for (let i = 0; i < options.runs; i += 1) runs.push(await session.run());
    await options.beforeStop?.(session);
    return {
      runs,
      auditItems: await session.auditItems(),
      messages: session.messages(),
      functions: session.account.functionConfigurations(),
      logs: session.logs(),
      faults: session.faults(),
      invariants: checkInvariants(await session.invariantInput()),
    };
  } finally {
    await session.stop();
  }
}

export type { Json };
