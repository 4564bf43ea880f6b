/**
 * Applies a scenario (local/scenario.ts) to a local session: the fault plan (local/fault-plan.ts) decides, call by
 * call, and this module does what it decides.
 *
 * - Every call to the simulated account is reported to the plan before it is answered (`onCall`: throw the fault's
 *   SDK exception, let an update end `Failed`, apply `before` events) and once it was answered (`onCallEnd`: apply
 *   `after` events). Every `dynamodb:*` attempt is reported before it reaches the local server
 *   (local/dynamo-faults.ts); DynamoDB calls have no `after` events.
 * - Every task invocation that has done its work is reported (`afterTask`): `crash` throws `Lambda.ServiceException`
 *   from it (the task's Retry then runs, as when an invocation's answer is lost); other events are applied.
 * - Calls belong to the run in whose async context they were made (`runScope`), so work left over from a killed run
 *   never hits the next run's faults, and calls outside any run (the runner reading the tables) are never faulted.
 * - `kill`: the run's `onKill` is called (the runner aborts the execution) and every later call of that run, from any
 *   invocation still in flight, throws a non-retryable `RunKilled` error: nothing more of that run reaches AWS.
 *
 * Events: `tag` merges tags, `deploy` is `changeFunction` (an out-of-band deployment, recorded in `outOfBand`),
 * `delete` and `create` change the account (a created function's configuration counts as its initial one, and its
 * variable values as secrets). An event about a function that does not exist (deleted already) does nothing.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FunctionConfiguration } from '../lambdas/shared/domain/types';
import { describeDynamoCall, dynamoError, DynamoFaultInjector } from './dynamo-faults';
import type { EstateFunction } from './estate';
import {
  BatchNumbers,
  FaultPlan,
  type CallDecision,
  type FaultRecord,
  type FiredEvent,
  type PlannedCall,
} from './fault-plan';
import type { StandInFault, StandInOperation, StandInRequest } from './prisma-console-standin';
import { consoleFaultOf, functionNameOf, type Scenario } from './scenario';
import type { CallEvent, SimulatedAccount } from './simulated-account';
import type { VirtualClock } from './virtual-clock';

/** The error a call of a killed run fails with (HTTP 400: the SDK does not retry it). */
export const RUN_KILLED = 'RunKilled';
/** The error a `crash` event makes a task invocation fail with (a lost answer; the task's Retry covers it). */
export const CRASH_ERROR = 'Lambda.ServiceException';

interface RunScope {
  number: number;
  startedAt: number;
  onKill: () => void;
}

export interface ScenarioDriverOptions {
  scenario: Scenario;
  account: SimulatedAccount;
  clock: VirtualClock;
  /** The local table names. */
  tables: { audit: string; state: string };
}

/** The function a call is about, from its input (FunctionName, a ListTags Resource, an SNS functionName). */
function functionOfInput(operation: string, input: Readonly<Record<string, unknown>>): string | undefined {
  const name = input['FunctionName'];
  if (typeof name === 'string' && name.length > 0) return functionNameOf(name);
  const resource = input['Resource'];
  if (operation.startsWith('lambda:') && typeof resource === 'string') return functionNameOf(resource);
  const attributes = input['MessageAttributes'];
  if (attributes !== null && typeof attributes === 'object') {
    const value = (attributes as Record<string, { StringValue?: unknown }>)['functionName']?.StringValue;
    if (typeof value === 'string') return value;
  }
  return undefined;
}

function valuesOf(configuration: FunctionConfiguration): string[] {
  const variables = configuration.Environment?.Variables;
  return variables !== null && typeof variables === 'object'
    ? Object.values(variables).filter((v): v is string => typeof v === 'string')
    : [];
}

/** See the module comment. */
/** How long a "timeout" fault holds the stand-in's answer back (real time; the local client gives up after 200 ms). */
export const LOCAL_CONSOLE_DELAY_MS = 1000;

export class ScenarioDriver {
  readonly plan: FaultPlan;
  /** Functions a `deploy` event changed out of band. */
  readonly outOfBand = new Set<string>();
  /** Functions created by `create` events, with their configuration when created. */
  readonly created = new Map<string, FunctionConfiguration>();
  /** Variable values of created functions (customer values the invariants look for). */
  readonly createdSecrets: string[] = [];
  private readonly batches = new BatchNumbers();
  private readonly scope = new AsyncLocalStorage<RunScope>();
  private readonly injector: DynamoFaultInjector;
  private readonly detach: Array<() => void> = [];
  /** The run started last (the Console hook's run; see `consoleCall`). */
  private latest: RunScope | undefined;

  constructor(private readonly options: ScenarioDriverOptions) {
    this.plan = new FaultPlan(options.scenario);
    const { account } = options;
    this.detach.push(account.onCall((event) => this.beforeCall(event)));
    this.detach.push(account.onCallEnd((event) => this.afterCall(event, event.ok)));
    this.injector = new DynamoFaultInjector((operation, input) => this.dynamoCall(operation, input)).install();
    this.detach.push(() => this.injector.uninstall());
  }

  /** Runs `fn` as run number `run` (1-based): its calls are that run's. `onKill` is called once if it is killed. */
  runScope<T>(run: number, onKill: () => void, fn: () => Promise<T>): Promise<T> {
    let killed = false;
    const scope: RunScope = {
      number: run,
      startedAt: this.options.clock.now(),
      onKill: () => {
        if (killed) return;
        killed = true;
        onKill();
      },
    };
    this.latest = scope;
    return this.scope.run(scope, fn);
  }

  /**
   * The stand-in Console's fault hook: a scenario's `prisma:*` rule decides the answer. The Console's HTTP requests
   * run outside the run's async scope (the server side of a socket), so they count for the run started last.
   */
  consoleCall(operation: StandInOperation, request: StandInRequest): StandInFault {
    const run = this.latest;
    if (run === undefined) return undefined;
    const decision = this.decide(run, {
      operation,
      ...(request.functionName !== undefined ? { functionName: request.functionName } : {}),
      phase: 'before',
    });
    if (decision.fault.kind !== 'error') return undefined;
    const fault = consoleFaultOf(decision.fault.error);
    if (fault === undefined) return { status: 500 };
    switch (fault.kind) {
      case 'status':
        return {
          status: fault.status,
          ...(decision.fault.retryAfterSeconds !== undefined
            ? { retryAfterSeconds: decision.fault.retryAfterSeconds }
            : {}),
        };
      case 'timeout':
        return { delayMs: LOCAL_CONSOLE_DELAY_MS };
      case 'malformed':
        return { malformed: true };
    }
  }

  /** True once the run was killed. */
  isKilled(run: number): boolean {
    return this.plan.isKilled(run);
  }

  /** faults.jsonl: every fault and event applied. */
  records(): FaultRecord[] {
    return this.plan.records();
  }

  /** Numbers the invocation's batch in the order invocations start (local/asl-local.ts `beforeTask`). */
  beforeTask(state: string, input: unknown): void {
    const run = this.scope.getStore();
    if (run !== undefined) this.batches.batchOf(run.number, state, JSON.stringify(input) ?? 'null');
  }

  /** The task hook of the state machine (local/asl-local.ts `afterTask`). */
  afterTask(state: string, input: unknown): void {
    const run = this.scope.getStore();
    if (run === undefined) return;
    const batch = this.batches.batchOf(run.number, state, JSON.stringify(input) ?? 'null');
    const fired = this.plan.task({ run: run.number, second: this.second(run), state, batch });
    this.apply(run, fired);
    if (this.plan.isKilled(run.number)) throw this.killedError('lambda');
    if (fired.some((e) => e.do === 'crash')) {
      const error = new Error(`Injected crash: the invocation of "${state}" did its work, then its answer was lost`);
      error.name = CRASH_ERROR;
      throw error;
    }
  }

  /** Removes every hook. Idempotent. */
  stop(): void {
    for (const undo of this.detach.splice(0).reverse()) undo();
  }

  private second(run: RunScope): number {
    return Math.max(0, (this.options.clock.now() - run.startedAt) / 1000);
  }

  /** The plan's answer for one call of `run` (its second on the run's clock added), with its events applied. */
  private decide(run: RunScope, call: Omit<PlannedCall, 'run' | 'second'>): CallDecision {
    const decision = this.plan.onCall({ run: run.number, second: this.second(run), ...call });
    this.apply(run, decision.events);
    return decision;
  }

  private killedError(prefix: string): Error {
    return this.options.account.error(prefix, RUN_KILLED, 'the run was killed: this call never reached AWS', {}, 400);
  }

  private beforeCall(event: CallEvent): void {
    const run = this.scope.getStore();
    if (run === undefined) return;
    const prefix = event.operation.split(':')[0] as string;
    const functionName = functionOfInput(event.operation, event.input);
    const decision = this.decide(run, {
      operation: event.operation,
      ...(functionName !== undefined ? { functionName } : {}),
      phase: 'before',
    });
    if (decision.killed) {
      run.onKill();
      throw this.killedError(prefix);
    }
    const { fault } = decision;
    if (fault.kind === 'error') throw this.options.account.error(prefix, fault.error, fault.message);
    if (fault.kind === 'update-fails') {
      // Listeners run before the account's own faults: this one-shot rule is matched by this very call.
      this.options.account.injectFault({
        operation: event.operation,
        ...(functionName !== undefined ? { functionName } : {}),
        updateFails: fault.reason,
        times: 1,
      });
    }
  }

  private afterCall(event: CallEvent, ok: boolean): void {
    const run = this.scope.getStore();
    if (run === undefined || this.plan.isKilled(run.number)) return;
    const functionName = functionOfInput(event.operation, event.input);
    this.decide(run, {
      operation: event.operation,
      ...(functionName !== undefined ? { functionName } : {}),
      phase: 'after',
      ok,
    });
    // Killed right after the call was answered: the account changed, the caller never hears of it.
    if (this.plan.isKilled(run.number)) throw this.killedError(event.operation.split(':')[0] as string);
  }

  private dynamoCall(operation: string, input: Readonly<Record<string, unknown>>): Error | undefined {
    const run = this.scope.getStore();
    if (run === undefined) return undefined;
    const facts = describeDynamoCall(input, this.options.tables);
    const decision = this.decide(run, {
      operation,
      ...(facts.functionName !== undefined ? { functionName: facts.functionName } : {}),
      ...(facts.table !== undefined ? { table: facts.table } : {}),
      ...(facts.outcome !== undefined ? { outcome: facts.outcome } : {}),
      phase: 'before',
    });
    if (decision.killed) {
      run.onKill();
      return dynamoError(RUN_KILLED, 'the run was killed: this call never reached DynamoDB');
    }
    return decision.fault.kind === 'error' ? dynamoError(decision.fault.error, decision.fault.message) : undefined;
  }

  private apply(run: RunScope, events: readonly FiredEvent[]): void {
    const { account } = this.options;
    const exists = (name: string): boolean => account.functionConfiguration(name) !== undefined;
    for (const event of events) {
      switch (event.do) {
        case 'tag':
          if (exists(functionNameOf(event.function))) account.tagFunction(functionNameOf(event.function), event.tags);
          break;
        case 'deploy': {
          const name = functionNameOf(event.function);
          if (!exists(name)) break;
          account.changeFunction(name, event.change as Partial<FunctionConfiguration>);
          this.outOfBand.add(name);
          break;
        }
        case 'delete':
          if (exists(functionNameOf(event.function))) account.deleteFunction(functionNameOf(event.function));
          break;
        case 'create': {
          const name = event.function.FunctionName;
          if (exists(name)) break;
          const facts: EstateFunction = {
            configuration: event.function as EstateFunction['configuration'],
            ...(event.tags !== undefined ? { tags: event.tags } : {}),
          };
          account.createFunction(facts);
          const configuration = account.functionConfiguration(name);
          if (configuration !== undefined) {
            this.created.set(name, configuration);
            this.createdSecrets.push(...valuesOf(configuration));
          }
          break;
        }
        case 'kill':
          run.onKill();
          break;
        case 'crash':
          break;
      }
    }
  }
}
