/**
 * The fault plan: what a scenario (local/scenario.ts) does to each call of a local run. PURE and deterministic: no
 * I/O, no clock (the caller passes the second since the run's start on the run's clock), no global state. The same
 * scenario, seed and call stream give the same decisions and the same record.
 *
 * The caller (the local run) reports every call twice: `phase: 'before'`, when the call is about to reach the
 * simulated account or the local DynamoDB (the answer says whether to throw an error, let an update end `Failed`,
 * and which `before` events to apply first), and `phase: 'after'`, once it completed (the answer lists the `after`
 * events). `task()` reports a state machine task invocation that has done its work (the answer lists `afterTask`
 * events, e.g. a crash to throw). After a `kill` event fires, every later call of that run answers `killed: true`
 * (the run is dead: the caller fails the call) and fires nothing.
 *
 * Randomness: each fault rule draws from its own PRNG (local/estate.ts `seededRandom`, seeded from the scenario's
 * seed and the rule's index), and only on calls the rule otherwise matches, so adding a rule does not change what
 * the others draw. `pure-rand` is only a transitive dependency (of fast-check, dev only), so it is not used here.
 *
 * Console calls (issue 10) are planned like the others: the local run reports `prisma:Authenticate`,
 * `prisma:EncodeServerlessPolicy` (with the function) and `prisma:DownloadServerlessBundle`, and turns an `error`
 * decision into the stand-in Console's answer (scenario.ts `consoleFaultOf`; `retryAfterSeconds` for Retry-After).
 *
 * Rules are evaluated in file order; the first rule that fires decides the call. `after` conditions are observed
 * for every rule on every call (the named operation, called for a function in a run, arms the rule for that function
 * in that run from the next call on).
 */
import { seededRandom } from './estate';
import {
  functionNameOf,
  operationMatches,
  type FaultTimes,
  type Scenario,
  type ScenarioEvent,
  type ScenarioFault,
} from './scenario';

/** One call of the local run, as the plan sees it. */
export interface PlannedCall {
  /** 1-based run number. */
  run: number;
  /** Seconds since the run started, on the run's clock. */
  second: number;
  /** `service:Operation`, e.g. `lambda:UpdateFunctionConfiguration`, `dynamodb:PutItem`. */
  operation: string;
  /** The function the call is about (name or ARN), when it names one. */
  functionName?: string;
  /** DynamoDB calls: which table. */
  table?: 'audit' | 'state';
  /** DynamoDB PutItem: the item's `outcome`. */
  outcome?: string;
  phase: 'before' | 'after';
  /** `after` phase: false when the call failed (then `after` events do not fire). @default true */
  ok?: boolean;
}

/** A task invocation that has done its work (before its output goes back to the state machine). */
export interface PlannedTask {
  run: number;
  second: number;
  /** The state's name, e.g. `Assess batch`. */
  state: string;
  /** 1-based batch number within the run (a retry keeps its batch's number; see `BatchNumbers`). */
  batch?: number;
}

export type FaultDecision =
  | { kind: 'none' }
  | {
      kind: 'error';
      /** An AWS exception name, or for a `prisma:` call a Console fault (scenario.ts `consoleFaultOf`). */
      error: string;
      message: string;
      rule: number;
      /** Console faults with an HTTP status: the answer's Retry-After. */
      retryAfterSeconds?: number;
    }
  | { kind: 'update-fails'; reason: string; rule: number };

/** An event to apply now, with its payload. */
export type FiredEvent = ScenarioEvent & { index: number };

export interface CallDecision {
  fault: FaultDecision;
  events: FiredEvent[];
  /** The run was killed earlier: fail this call, fire nothing. */
  killed: boolean;
}

/** One line of faults.jsonl. */
export type FaultRecord =
  | {
      run: number;
      second: number;
      callIndex: number;
      operation: string;
      function?: string;
      fault: string;
      rule: number;
    }
  | {
      run: number;
      second: number;
      callIndex: number;
      operation: string;
      function?: string;
      event: ScenarioEvent['do'];
      index: number;
    };

interface RuleState {
  fault: ScenarioFault;
  index: number;
  fired: number;
  random: () => number;
  /** `${run}#${function}` for which `after` was seen. */
  armed: Set<string>;
}

interface EventState {
  event: ScenarioEvent;
  index: number;
  fired: number;
}

const NONE: FaultDecision = { kind: 'none' };

function withinTimes(times: FaultTimes, fired: number): boolean {
  return times === 'all' || fired < times;
}

/** A seed per rule: the scenario's seed mixed with the rule's index (FNV-style), so that rules draw independently. */
function ruleSeed(seed: number, index: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  h = Math.imul(h ^ (index + 1), 0x01000193) >>> 0;
  return Math.imul(h ^ (h >>> 13), 0x5bd1e995) >>> 0;
}

function fnKey(run: number, functionName: string | undefined): string {
  return `${run}#${functionName === undefined ? '' : functionNameOf(functionName)}`;
}

/** See the module comment. */
export class FaultPlan {
  private readonly rules: RuleState[];
  private readonly events: EventState[];
  private readonly log: FaultRecord[] = [];
  private readonly callsPerRun = new Map<number, number>();
  private readonly killedRuns = new Set<number>();

  constructor(scenario: Scenario) {
    this.rules = scenario.faults.map((fault, index) => ({
      fault,
      index,
      fired: 0,
      random: seededRandom(ruleSeed(scenario.seed, index)),
      armed: new Set<string>(),
    }));
    this.events = scenario.events.map((event, index) => ({ event, index, fired: 0 }));
  }

  /** True once a `kill` event fired in the run. */
  isKilled(run: number): boolean {
    return this.killedRuns.has(run);
  }

  /** Decides one call (see the module comment). Never throws for a well-formed call. */
  onCall(call: PlannedCall): CallDecision {
    if (this.killedRuns.has(call.run)) return { fault: NONE, events: [], killed: true };
    if (call.phase === 'after') {
      const callIndex = this.callsPerRun.get(call.run) ?? 0;
      const events = call.ok === false ? [] : this.fire(call, callIndex, 'after');
      return { fault: NONE, events, killed: false };
    }
    const callIndex = (this.callsPerRun.get(call.run) ?? 0) + 1;
    this.callsPerRun.set(call.run, callIndex);
    const events = this.fire(call, callIndex, 'before');
    // A `kill` before this call: the run dies before the call reaches the account.
    if (this.killedRuns.has(call.run)) return { fault: NONE, events, killed: true };
    const fault = this.decideFault(call, callIndex);
    this.observe(call);
    return { fault, events, killed: false };
  }

  /** A task invocation that has done its work: the `afterTask` events that fire (e.g. `crash`). */
  task(task: PlannedTask): FiredEvent[] {
    if (this.killedRuns.has(task.run)) return [];
    const callIndex = this.callsPerRun.get(task.run) ?? 0;
    const fired: FiredEvent[] = [];
    for (const state of this.events) {
      const { event } = state;
      if (event.trigger.kind !== 'afterTask' || event.trigger.state !== task.state) continue;
      if (event.trigger.batch !== undefined && event.trigger.batch !== task.batch) continue;
      if (!this.eventAllowed(state, task.run)) continue;
      fired.push(
        this.record(state, { run: task.run, second: task.second, operation: `task:${task.state}` }, callIndex),
      );
    }
    return fired;
  }

  /** Every fault and event applied so far, in order (the lines of faults.jsonl). */
  records(): FaultRecord[] {
    return this.log.map((r) => ({ ...r }));
  }

  /** Faults fired per rule index. */
  firedPerRule(): number[] {
    return this.rules.map((r) => r.fired);
  }

  private decideFault(call: PlannedCall, callIndex: number): FaultDecision {
    for (const rule of this.rules) {
      if (!this.matches(rule, call)) continue;
      const { fault } = rule;
      if (fault.probability !== undefined && rule.random() >= fault.probability) continue;
      rule.fired += 1;
      const name = fault.error ?? `updateEnds:${fault.updateEnds ?? 'Failed'}`;
      this.log.push({
        run: call.run,
        second: call.second,
        callIndex,
        operation: call.operation,
        ...(call.functionName !== undefined ? { function: functionNameOf(call.functionName) } : {}),
        fault: name,
        rule: rule.index,
      });
      if (fault.error !== undefined) {
        return {
          kind: 'error',
          error: fault.error,
          message: fault.message ?? `Injected fault: ${fault.error}`,
          rule: rule.index,
          ...(fault.retryAfterSeconds !== undefined ? { retryAfterSeconds: fault.retryAfterSeconds } : {}),
        };
      }
      return { kind: 'update-fails', reason: fault.reason ?? 'Injected', rule: rule.index };
    }
    return NONE;
  }

  /** Every condition of the rule except the probability draw. */
  private matches(rule: RuleState, call: PlannedCall): boolean {
    const { fault } = rule;
    if (!operationMatches(fault.operation, call.operation)) return false;
    if (!withinTimes(fault.times, rule.fired)) return false;
    if (fault.runs !== undefined && !fault.runs.includes(call.run)) return false;
    if (fault.function !== undefined) {
      if (call.functionName === undefined) return false;
      if (functionNameOf(call.functionName) !== functionNameOf(fault.function)) return false;
    }
    if (fault.table !== undefined && call.table !== fault.table) return false;
    if (fault.outcome !== undefined && (call.operation !== 'dynamodb:PutItem' || call.outcome !== fault.outcome)) {
      return false;
    }
    const from = fault.fromSecond ?? 0;
    if (call.second < from) return false;
    if (fault.forSeconds !== undefined && call.second >= from + fault.forSeconds) return false;
    if (fault.after !== undefined && !rule.armed.has(fnKey(call.run, call.functionName))) return false;
    return true;
  }

  /** Arms the rules whose `after` is this call's operation (for this run and function). */
  private observe(call: PlannedCall): void {
    for (const rule of this.rules) {
      if (rule.fault.after === call.operation) rule.armed.add(fnKey(call.run, call.functionName));
    }
  }

  private eventAllowed(state: EventState, run: number): boolean {
    if (state.event.run !== undefined && state.event.run !== run) return false;
    return withinTimes(state.event.times, state.fired);
  }

  private fire(call: PlannedCall, callIndex: number, phase: 'before' | 'after'): FiredEvent[] {
    const fired: FiredEvent[] = [];
    for (const state of this.events) {
      if (this.killedRuns.has(call.run)) break;
      const { event } = state;
      if (event.trigger.kind !== phase || event.trigger.operation !== call.operation) continue;
      if (!this.eventAllowed(state, call.run)) continue;
      const target = typeof event.function === 'string' ? event.function : undefined;
      if (
        target !== undefined &&
        call.functionName !== undefined &&
        functionNameOf(call.functionName) !== functionNameOf(target)
      ) {
        continue;
      }
      fired.push(this.record(state, call, callIndex));
    }
    return fired;
  }

  private record(
    state: EventState,
    call: Pick<PlannedCall, 'run' | 'second' | 'operation' | 'functionName'>,
    callIndex: number,
  ): FiredEvent {
    state.fired += 1;
    const { event } = state;
    const target =
      typeof event.function === 'string'
        ? functionNameOf(event.function)
        : event.function !== undefined
          ? event.function.FunctionName
          : call.functionName !== undefined
            ? functionNameOf(call.functionName)
            : undefined;
    this.log.push({
      run: call.run,
      second: call.second,
      callIndex,
      operation: call.operation,
      ...(target !== undefined ? { function: target } : {}),
      event: event.do,
      index: state.index,
    });
    if (event.do === 'kill') this.killedRuns.add(call.run);
    return { ...event, index: state.index };
  }
}

/**
 * Numbers the distinct inputs of each state within a run, 1-based, so that a retried invocation (same input) keeps
 * its batch's number: the `batch` of an `afterTask` event. `key` is any stable text of the input (e.g. its JSON).
 */
export class BatchNumbers {
  private readonly seen = new Map<string, number>();
  private readonly next = new Map<string, number>();

  batchOf(run: number, state: string, key: string): number {
    const id = `${run}\u0000${state}\u0000${key}`;
    const known = this.seen.get(id);
    if (known !== undefined) return known;
    const counter = `${run}\u0000${state}`;
    const number = (this.next.get(counter) ?? 0) + 1;
    this.next.set(counter, number);
    this.seen.set(id, number);
    return number;
  }
}
