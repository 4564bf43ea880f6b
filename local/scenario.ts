/**
 * The scenario file of `zero-impact local-run --scenario FILE` (issue 9): faults to inject into the simulated
 * account and the local DynamoDB, and events to apply during the runs. A contract for tests and for users who
 * rehearse a rollout; local/fault-plan.ts decides, call by call, what the scenario does.
 *
 * Shape (every key of the issue's example is kept; the extensions are marked):
 * ```json
 * {
 *   "seed": 7,
 *   "faults": [{ "operation": "lambda:UpdateFunctionConfiguration", "function": "app-01",
 *                "error": "ResourceConflictException", "times": 3 }],
 *   "events": [{ "after": "lambda:ListFunctions", "do": "delete", "function": "app-07" }]
 * }
 * ```
 *
 * Faults. `operation` is an IAM action (`lambda:GetFunctionConfiguration`), a service wildcard (`lambda:*`), or
 * `*` (extension). A fault fires on a matching call when every condition it names holds: `function` (a name or an
 * ARN; only calls about that function), `runs` (1-based run numbers), `after` (only once the named operation was
 * called for the same function in the same run), `table` (`audit` or `state`, DynamoDB only), `outcome` (a PutItem
 * whose Item.outcome equals it), `fromSecond` / `forSeconds` (a window relative to the run's start on the run's
 * clock), `probability` (drawn from the scenario's seeded PRNG), and `times` (at most that many faults from this
 * rule over the whole scenario, @default "all"). It either throws `error` (the SDK's exception of that name;
 * `message` is an extension) or, for `lambda:UpdateFunctionConfiguration`, accepts the update and lets it end
 * `updateEnds: "Failed"` with `reason`.
 *
 * Console faults (extension, issue 10): the stand-in Prisma Cloud Console's operations are `prisma:Authenticate`,
 * `prisma:EncodeServerlessPolicy` (about a function: `function` filters) and `prisma:DownloadServerlessBundle`
 * (`prisma:*` names all three). Their `error` is what the Console does instead of answering: an HTTP status from 400
 * to 599 as a string (`"429"`, `"401"`, `"500"`), `"timeout"` (no answer within the client's timeout) or
 * `"malformed"` (a 200 whose body is not the documented shape); `retryAfterSeconds` adds a Retry-After header to the
 * answer. An HTTP status, `timeout` or `malformed` needs a `prisma:` operation and a `prisma:` operation needs one of
 * them; the `*` operation never matches a Console call (local/fault-plan.ts), so an AWS exception is never sent as
 * a Console answer. `consoleFaultOf` reads such an error.
 *
 * Events. A trigger, exactly one of: `after` (an operation, once the call has completed successfully), `before` (an
 * operation, before the call reaches the account) or `afterTask` (a state of the state machine, once its invocation
 * has done its work; with `batch`, only that batch, 1-based). `run` limits it to one run and `times` (extension)
 * bounds how often it fires, @default 1. `function` names the event's target; on a trigger call that concerns a
 * function it also filters (the call must be about that function); a call that names no function (ListFunctions,
 * tag:GetResources) is not filtered. `do`:
 * - `tag`: set `tags` on `function` (merged into its tags);
 * - `deploy`: an out-of-band deployment of `function` applying `change` (fields of a FunctionConfiguration);
 * - `kill`: end the whole run at that point, as if the execution and every Lambda died;
 * - `crash`: the task invocation throws after it has done its work, so the retry policy runs (`afterTask` only);
 * - `delete`: delete `function`;
 * - `create`: create `function`, a FunctionConfiguration with at least FunctionName (`tags`, an extension, tags it).
 *
 * Validation follows the configuration's conventions (lib/config.ts): strict objects, every problem collected, one
 * line per problem naming the key path (`faults[2].times: expected a positive integer or "all"`). Problems never
 * quote the file's values: key names and expected shapes only.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { OUTCOMES } from '../lambdas/shared/domain/types';

/** A problem with a scenario: `problems` holds one line per bad key. */
export class ScenarioError extends Error {
  constructor(
    public readonly source: string,
    public readonly problems: string[],
  ) {
    super(`invalid scenario in ${source}: ${problems.join('; ')}`);
    this.name = 'ScenarioError';
  }
}

/** `service:Operation`, `service:*`, or `*`. */
export const OPERATION_PATTERN = /^(\*|[a-z][a-z0-9-]*:(\*|[A-Z][A-Za-z0-9]*))$/;
const OPERATION_SHAPE = 'expected an IAM action such as "lambda:UpdateFunctionConfiguration" or "lambda:*"';
const EXACT_OPERATION_PATTERN = /^[a-z][a-z0-9-]*:[A-Z][A-Za-z0-9]*$/;
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const FUNCTION_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:[a-zA-Z0-9_-]{1,64}(:[a-zA-Z0-9$_-]+)?$/;
const ERROR_NAME = /^[A-Za-z][A-Za-z0-9_.]{0,127}$/;
/** A Console fault's `error`: an HTTP error status, `timeout` or `malformed`. */
const CONSOLE_ERROR = /^([45]\d\d|timeout|malformed)$/;
/** The operations of the stand-in Console (local/prisma-console-standin.ts). */
export const CONSOLE_OPERATIONS = [
  'prisma:Authenticate',
  'prisma:EncodeServerlessPolicy',
  'prisma:DownloadServerlessBundle',
] as const;
const UPDATE_OPERATION = 'lambda:UpdateFunctionConfiguration';

const operation = z.string().regex(OPERATION_PATTERN, OPERATION_SHAPE);
const exactOperation = z
  .string()
  .regex(EXACT_OPERATION_PATTERN, 'expected an IAM action such as "lambda:UpdateFunctionConfiguration" (no wildcard)');
const functionRef = z
  .string()
  .refine((v) => FUNCTION_NAME.test(v) || FUNCTION_ARN.test(v), 'expected a Lambda function name or ARN');
const positiveInt = z.number().int().positive();
const TIMES_SHAPE = 'expected a positive integer or "all"';
const times = z.union([z.number().int(TIMES_SHAPE).positive(TIMES_SHAPE), z.literal('all')], { error: TIMES_SHAPE });
const runs = z.array(positiveInt, { error: 'expected an array of run numbers (1, 2, ...)' }).min(1);

const faultSchema = z.strictObject({
  operation,
  function: functionRef.optional(),
  error: z
    .string()
    .refine(
      (v) => ERROR_NAME.test(v) || CONSOLE_ERROR.test(v),
      'expected an exception name such as "TooManyRequestsException" (or, for a "prisma:" operation, an HTTP status such as "429", "timeout" or "malformed")',
    )
    .optional(),
  /** Extension: Console faults with an HTTP status: the answer's Retry-After, in seconds. */
  retryAfterSeconds: z.number({ error: 'expected a whole number of seconds >= 0' }).int().min(0).max(86_400).optional(),
  /** Extension: the injected error's message. @default "Injected fault: NAME" */
  message: z.string().max(1024).optional(),
  times: times.optional(),
  probability: z
    .number({ error: 'expected a number from 0 to 1' })
    .gt(0, 'expected a number greater than 0 and at most 1')
    .max(1, 'expected a number greater than 0 and at most 1')
    .optional(),
  runs: runs.optional(),
  after: exactOperation.optional(),
  table: z.enum(['audit', 'state'], { error: 'expected "audit" or "state"' }).optional(),
  outcome: z.enum(OUTCOMES, { error: `expected one of ${OUTCOMES.join(', ')}` }).optional(),
  fromSecond: z.number({ error: 'expected a number of seconds >= 0' }).min(0).optional(),
  forSeconds: z.number({ error: 'expected a number of seconds > 0' }).positive().optional(),
  updateEnds: z.literal('Failed', { error: 'expected "Failed"' }).optional(),
  reason: z.string().min(1).max(1024).optional(),
});

const EVENT_ACTIONS = ['tag', 'deploy', 'kill', 'crash', 'delete', 'create'] as const;

const createdFunction = z.looseObject({
  FunctionName: z.string().regex(FUNCTION_NAME, 'expected a Lambda function name (1-64 letters, digits, - or _)'),
});

const eventSchema = z.strictObject({
  after: exactOperation.optional(),
  before: exactOperation.optional(),
  afterTask: z.string().min(1, 'expected a state name such as "Assess batch"').optional(),
  batch: positiveInt.optional(),
  run: positiveInt.optional(),
  /** Extension: how many times the event fires over the scenario. @default 1 */
  times: times.optional(),
  do: z.enum(EVENT_ACTIONS, { error: `expected one of ${EVENT_ACTIONS.join(', ')}` }),
  function: z.union([functionRef, createdFunction], { error: 'expected a Lambda function name or ARN' }).optional(),
  tags: z.record(z.string().min(1).max(128), z.string().max(256)).optional(),
  change: z.record(z.string().min(1), z.unknown()).optional(),
});

const SEED_SHAPE = 'expected an integer from 0 to 4294967295';

const rootSchema = z.strictObject({
  /** Seed of the PRNG behind `probability`. @default 1 */
  seed: z.number({ error: SEED_SHAPE }).int(SEED_SHAPE).min(0, SEED_SHAPE).max(0xffffffff, SEED_SHAPE).optional(),
  /** Extension: a human description of what the scenario rehearses. */
  description: z.string().max(2000).optional(),
  faults: z.array(z.unknown(), { error: 'expected an array of faults' }).optional(),
  events: z.array(z.unknown(), { error: 'expected an array of events' }).optional(),
});

export type FaultTimes = number | 'all';

/** One fault rule, as validated. See the module comment. */
export interface ScenarioFault {
  operation: string;
  function?: string;
  error?: string;
  message?: string;
  times: FaultTimes;
  probability?: number;
  runs?: number[];
  after?: string;
  table?: 'audit' | 'state';
  outcome?: (typeof OUTCOMES)[number];
  fromSecond?: number;
  forSeconds?: number;
  updateEnds?: 'Failed';
  reason?: string;
  retryAfterSeconds?: number;
}

export type EventTrigger =
  | { kind: 'after'; operation: string }
  | { kind: 'before'; operation: string }
  | { kind: 'afterTask'; state: string; batch?: number };

interface EventBase {
  trigger: EventTrigger;
  run?: number;
  times: FaultTimes;
}

/** One event, as validated: the trigger and the action with its payload. */
export type ScenarioEvent = EventBase &
  (
    | { do: 'tag'; function: string; tags: Record<string, string> }
    | { do: 'deploy'; function: string; change: Record<string, unknown> }
    | { do: 'kill'; function?: string }
    | { do: 'crash'; function?: string }
    | { do: 'delete'; function: string }
    | {
        do: 'create';
        function: { FunctionName: string; [key: string]: unknown };
        tags?: Record<string, string>;
      }
  );

export interface Scenario {
  seed: number;
  description?: string;
  faults: ScenarioFault[];
  events: ScenarioEvent[];
}

/** `faults[2].times`, `events[0].function.FunctionName`, or `(root)`. */
export function keyPath(path: ReadonlyArray<PropertyKey>): string {
  const text = path.reduce<string>(
    (acc, key) =>
      typeof key === 'number' ? `${acc}[${key}]` : acc.length === 0 ? String(key) : `${acc}.${String(key)}`,
    '',
  );
  return text.length > 0 ? text : '(root)';
}

/** The zod issue as one line that names the key and the expected shape, never the value found. */
function describeIssue(issue: z.core.$ZodIssue, prefix: ReadonlyArray<PropertyKey>): string {
  const path = [...prefix, ...issue.path];
  if (issue.code === 'unrecognized_keys') {
    const keys = issue.keys.map((k) => `"${k}"`).join(', ');
    return `${keyPath(path)}: unknown key${issue.keys.length > 1 ? 's' : ''} ${keys}`;
  }
  return `${keyPath(path)}: ${expectation(issue)}`;
}

/** zod's own messages may quote the value received ("received 'x'"): rebuild them from the issue's fields. */
function expectation(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return issue.message.startsWith('Invalid input') ? `expected ${issue.expected}` : issue.message;
    case 'too_small':
    case 'too_big':
    case 'invalid_format':
    case 'custom':
    case 'invalid_value':
    case 'invalid_union':
    case 'not_multiple_of':
      return /received/i.test(issue.message) ? 'invalid value' : issue.message.replace(/^Invalid string: /, '');
    default:
      return 'invalid value';
  }
}

function validateFault(raw: unknown, at: ReadonlyArray<PropertyKey>, problems: string[]): ScenarioFault | undefined {
  const parsed = faultSchema.safeParse(raw);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((issue) => describeIssue(issue, at)));
    return undefined;
  }
  const f = parsed.data;
  const local: string[] = [];
  const problem = (key: string, text: string): void => {
    local.push(`${keyPath([...at, key])}: ${text}`);
  };
  if (f.error === undefined && f.updateEnds === undefined) {
    problem('error', 'required (or "updateEnds": "Failed" with a "reason")');
  }
  if (f.error !== undefined && f.updateEnds !== undefined) problem('updateEnds', 'not allowed together with "error"');
  if (f.updateEnds !== undefined && f.operation !== UPDATE_OPERATION) {
    problem('updateEnds', `only with "operation": "${UPDATE_OPERATION}"`);
  }
  if (f.updateEnds !== undefined && f.reason === undefined) problem('reason', 'required with "updateEnds"');
  if (f.updateEnds === undefined && f.reason !== undefined) problem('reason', 'only with "updateEnds"');
  const dynamo = f.operation === '*' || f.operation.startsWith('dynamodb:');
  if (f.table !== undefined && !dynamo) problem('table', 'only with a "dynamodb:" operation');
  if (f.outcome !== undefined && !['dynamodb:PutItem', 'dynamodb:*', '*'].includes(f.operation)) {
    problem('outcome', 'only with "operation": "dynamodb:PutItem" (or "dynamodb:*")');
  }
  if (f.runs !== undefined && new Set(f.runs).size !== f.runs.length) problem('runs', 'lists a run twice');
  const consoleOperation = f.operation.startsWith('prisma:');
  if (
    consoleOperation &&
    f.operation !== 'prisma:*' &&
    !(CONSOLE_OPERATIONS as readonly string[]).includes(f.operation)
  ) {
    problem('operation', `expected one of ${CONSOLE_OPERATIONS.join(', ')} or "prisma:*"`);
  }
  if (f.error !== undefined && consoleOperation && !CONSOLE_ERROR.test(f.error)) {
    problem(
      'error',
      'expected an HTTP status from "400" to "599", "timeout" or "malformed" with a "prisma:" operation',
    );
  }
  if (f.error !== undefined && !consoleOperation && CONSOLE_ERROR.test(f.error) && !ERROR_NAME.test(f.error)) {
    problem('error', 'an HTTP status is a Console fault: only with a "prisma:" operation');
  }
  if (f.error !== undefined && !consoleOperation && (f.error === 'timeout' || f.error === 'malformed')) {
    problem('error', `"${f.error}" is a Console fault: only with a "prisma:" operation`);
  }
  if (f.retryAfterSeconds !== undefined && (!consoleOperation || f.error === undefined || !/^\d+$/.test(f.error))) {
    problem('retryAfterSeconds', 'only with a "prisma:" operation and an HTTP status "error"');
  }
  problems.push(...local);
  if (local.length > 0) return undefined;
  const fault: ScenarioFault = { ...f, times: f.times ?? 'all' };
  return fault;
}

function validateEvent(raw: unknown, at: ReadonlyArray<PropertyKey>, problems: string[]): ScenarioEvent | undefined {
  const parsed = eventSchema.safeParse(raw);
  if (!parsed.success) {
    problems.push(...parsed.error.issues.map((issue) => describeIssue(issue, at)));
    return undefined;
  }
  const e = parsed.data;
  const local: string[] = [];
  const problem = (key: string, text: string): void => {
    local.push(`${keyPath([...at, key])}: ${text}`);
  };
  const triggers = (['after', 'before', 'afterTask'] as const).filter((k) => e[k] !== undefined);
  if (triggers.length !== 1) {
    problem(triggers[1] ?? 'after', 'exactly one of "after", "before" or "afterTask" is required');
  }
  if (e.batch !== undefined && e.afterTask === undefined) problem('batch', 'only with "afterTask"');
  if (e.do === 'crash' && e.afterTask === undefined) problem('afterTask', 'required with "do": "crash"');
  const named = typeof e.function === 'string' ? e.function : undefined;
  if (e.do === 'create') {
    if (e.function === undefined || typeof e.function === 'string') {
      problem('function', 'expected a FunctionConfiguration with "FunctionName" for "do": "create"');
    }
  } else if (e.function !== undefined && named === undefined) {
    problem('function', `expected a Lambda function name or ARN for "do": "${e.do}"`);
  }
  if ((e.do === 'tag' || e.do === 'deploy' || e.do === 'delete') && named === undefined && e.function === undefined) {
    problem('function', `required with "do": "${e.do}"`);
  }
  if (e.do === 'tag' && e.tags === undefined) problem('tags', 'required with "do": "tag"');
  if (e.tags !== undefined && e.do !== 'tag' && e.do !== 'create') problem('tags', 'only with "do": "tag" or "create"');
  if (e.do === 'deploy' && e.change === undefined) problem('change', 'required with "do": "deploy"');
  if (e.change !== undefined && e.do !== 'deploy') problem('change', 'only with "do": "deploy"');
  if (e.change !== undefined && ('FunctionName' in e.change || 'FunctionArn' in e.change)) {
    problem('change', 'cannot rename a function (FunctionName, FunctionArn)');
  }
  problems.push(...local);
  if (local.length > 0) return undefined;
  const trigger: EventTrigger =
    e.after !== undefined
      ? { kind: 'after', operation: e.after }
      : e.before !== undefined
        ? { kind: 'before', operation: e.before }
        : { kind: 'afterTask', state: e.afterTask as string, ...(e.batch !== undefined ? { batch: e.batch } : {}) };
  const base: EventBase = { trigger, times: e.times ?? 1, ...(e.run !== undefined ? { run: e.run } : {}) };
  switch (e.do) {
    case 'tag':
      return { ...base, do: 'tag', function: named as string, tags: e.tags as Record<string, string> };
    case 'deploy':
      return { ...base, do: 'deploy', function: named as string, change: e.change as Record<string, unknown> };
    case 'delete':
      return { ...base, do: 'delete', function: named as string };
    case 'create':
      return {
        ...base,
        do: 'create',
        function: e.function as { FunctionName: string },
        ...(e.tags !== undefined ? { tags: e.tags } : {}),
      };
    case 'kill':
    case 'crash':
      return { ...base, do: e.do, ...(named !== undefined ? { function: named } : {}) };
  }
}

/**
 * Validates a parsed scenario.
 * @param input the parsed JSON
 * @param source where it came from (a file name), for the error
 * @throws ScenarioError naming every bad key, never quoting a value
 */
export function parseScenario(input: unknown, source: string): Scenario {
  const root = rootSchema.safeParse(input);
  const problems: string[] = root.success ? [] : root.error.issues.map((issue) => describeIssue(issue, []));
  // Every problem at once: the elements are checked even when the root has problems of its own.
  const record = input !== null && typeof input === 'object' && !Array.isArray(input) ? input : {};
  const list = (key: 'faults' | 'events'): unknown[] => {
    const value = (record as Record<string, unknown>)[key];
    return Array.isArray(value) ? value : [];
  };
  const faults = list('faults').map((raw, i) => validateFault(raw, ['faults', i], problems));
  const events = list('events').map((raw, i) => validateEvent(raw, ['events', i], problems));
  if (!root.success || problems.length > 0) throw new ScenarioError(source, problems);
  return {
    seed: root.data.seed ?? 1,
    ...(root.data.description !== undefined ? { description: root.data.description } : {}),
    faults: faults as ScenarioFault[],
    events: events as ScenarioEvent[],
  };
}

/** Where JSON.parse stopped, from its message (`at position 12`, or `line 2 column 3`), without the text around it. */
function parsePosition(error: unknown): string {
  const message = error instanceof Error ? error.message : '';
  const position = /position (\d+)/.exec(message);
  const line = /line (\d+) column (\d+)/.exec(message);
  if (line !== null) return `at line ${line[1]} column ${line[2]}`;
  if (position !== null) return `at position ${position[1]}`;
  if (/end of (JSON )?input/i.test(message)) return 'unexpected end of input';
  return 'parse error';
}

/**
 * Reads and validates a scenario file.
 * @throws ScenarioError: the file cannot be read, is not JSON (the file name and the parse position only), or
 *   breaks the contract (one line per bad key)
 */
export function loadScenarioFile(path: string): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ScenarioError(path, [`cannot read file (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`]);
  }
  let input: unknown;
  try {
    input = JSON.parse(text) as unknown;
  } catch (error) {
    throw new ScenarioError(path, [`not valid JSON (${parsePosition(error)})`]);
  }
  return parseScenario(input, path);
}

/** A function name from a name or a (partial, qualified) ARN. */
export function functionNameOf(nameOrArn: string): string {
  const arn = /^(?:arn:aws[a-z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?function:([^:]+)(?::[^:]+)?$/.exec(nameOrArn);
  if (arn !== null) return arn[1] as string;
  return nameOrArn.split(':')[0] as string;
}

/** What a Console fault's `error` makes the stand-in do (see the module comment); undefined for an AWS exception. */
export function consoleFaultOf(
  error: string,
): { kind: 'status'; status: number } | { kind: 'timeout' } | { kind: 'malformed' } | undefined {
  if (/^[45]\d\d$/.test(error)) return { kind: 'status', status: Number(error) };
  if (error === 'timeout') return { kind: 'timeout' };
  if (error === 'malformed') return { kind: 'malformed' };
  return undefined;
}

/**
 * True when an IAM-style pattern (`*`, `service:*`, `service:Operation`) matches an operation. `*` is every AWS call
 * and DynamoDB call, never a Console (`prisma:`) call: their errors are of another kind.
 */
export function operationMatches(pattern: string, operation: string): boolean {
  if (pattern === '*') return !operation.startsWith('prisma:');
  if (pattern.endsWith(':*')) return operation.startsWith(pattern.slice(0, -1));
  return pattern === operation;
}
