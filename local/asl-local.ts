/**
 * Runs the synthesized state machine locally with aws-local-stepfunctions, each Lambda task bound in-process to the
 * real handler module. Nothing here knows the engine's states: it reads whatever definition the template holds.
 *
 * 1. The template: the state machine's `DefinitionString` (usually an `Fn::Join`) and the Lambda functions'
 *    properties are resolved with local names (`resolveIntrinsics`): `Ref`/`Fn::GetAtt` of a function give
 *    `<stackName>-<logicalId>` and its ARN in the simulated account, of a bucket/table/topic a local name or ARN, and
 *    the pseudo parameters the simulated region and account.
 * 2. Each function resource is mapped to a handler folder `lambdas/<name>/handler.ts` (`handlerNameFor`): the
 *    `zero-impact:handler` tag if the stack sets one, else the construct path in the `aws:cdk:path` metadata (the
 *    deepest segment whose kebab-case name, less a `Function`/`Fn`/`Lambda`/`Handler` suffix, is a handler folder),
 *    else the logical id the same way. No match, or two functions for one folder, is an error.
 * 3. The local definition (`toLocalDefinition`), two documented bindings and nothing else:
 *    - The interpreter runs Map states inline and ignores a Distributed Map's `ItemReader`, `ItemBatcher` and
 *      `ResultWriter`. A Distributed Map state is therefore bound, under its own name and with its own
 *      `InputPath`/`ResultSelector`/`ResultPath`/`OutputPath`/`Retry`/`Catch`/`Next`, to a local task that does what
 *      the service does: read the items its `ItemReader` names from the (simulated) S3 object, apply `ItemSelector`,
 *      batch them as its `ItemBatcher` says (`MaxItemsPerBatch`, `MaxInputBytesPerBatch`, `BatchInput` evaluated
 *      against the map's input) into `{ Items, BatchInput }`, and run the unchanged `ItemProcessor` definition as one
 *      child execution per batch with the interpreter, `MaxConcurrency` at a time, honouring
 *      `ToleratedFailurePercentage`/`ToleratedFailureCount`, and give the children's results as its
 *      `ResultWriter` says: COMPACT by default, `WriterConfig` NONE or FLATTEN, or the S3 export
 *      (`batchesForDistributedMap`, `runDistributedMap`, `resultWriterOf`).
 *    - The interpreter gives a Task without `TimeoutSeconds` 60 seconds; AWS gives it none. Such tasks get a very
 *      long timeout instead, and each Lambda invocation is bounded by the function's own `Timeout` (as in AWS, where
 *      the function times out, not the state).
 *    Every other state runs as written: Choice, Pass, Succeed, Fail, inline Map, Parallel, Retry and Catch.
 * 4. Task states whose resource is `arn:aws:states:::lambda:invoke` (Parameters `FunctionName` + `Payload`) or a
 *    function ARN are bound (`taskResourceLocalHandlers`) to the handler: the payload goes through JSON like a real
 *    invocation, the output of `lambda:invoke` has AWS's shape (`{ ExecutedVersion, Payload, StatusCode, ... }`), and
 *    a thrown error becomes the task error named after the error (Cause: `{"errorType","errorMessage","trace"}`).
 *    A state payload over 256 KiB fails with `States.DataLimitExceeded`. Any other service integration is refused
 *    when the machine is prepared, so a gap never passes silently.
 */
import './polyfills';
import { randomUUID } from 'node:crypto';
import type { Context as LambdaContext } from 'aws-lambda';
import { ExecutionError, StateMachine, type StateMachineDefinition } from 'aws-local-stepfunctions';
import { isRecord } from '../lambdas/shared/domain/types';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  Metadata?: Record<string, unknown>;
}

export interface CfnTemplate {
  Resources?: Record<string, CfnResource>;
}

/** The local names intrinsics resolve to. */
export interface LocalNaming {
  region: string;
  account: string;
  stackName: string;
  /** Physical names to use for these logical ids (e.g. the local table names), instead of the defaults. */
  physicalNames?: Record<string, string>;
}

/** AWS's state payload limit (input and output of a state). */
export const STATE_PAYLOAD_LIMIT_BYTES = 262144;
/** The resource of the local task a Distributed Map state is bound to. */
export const LOCAL_DISTRIBUTED_MAP_RESOURCE = 'arn:aws:states:::local:distributed-map';
/** The timeout given to Task states that declare none (under setTimeout's 2^31 ms ceiling). */
export const LOCAL_NO_TIMEOUT_SECONDS = 2_000_000;
const DEFAULT_MAX_CONCURRENCY = 40;

export class LocalStateMachineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalStateMachineError';
  }
}

// ----- 1. template and intrinsics ---------------------------------------------------------------------------------

/** The physical name a local resource gets (`Ref` of most resources). */
export function physicalName(template: CfnTemplate, logicalId: string, naming: LocalNaming): string {
  const override = naming.physicalNames?.[logicalId];
  if (override !== undefined) return override;
  const resource = template.Resources?.[logicalId];
  const explicit = ['FunctionName', 'BucketName', 'TableName', 'TopicName', 'StateMachineName', 'Name'].map(
    (key) => resource?.Properties?.[key],
  );
  const named = explicit.find((v): v is string => typeof v === 'string');
  if (named !== undefined) return named;
  return resource?.Type === 'AWS::S3::Bucket'
    ? `${naming.stackName}-${logicalId}`.toLowerCase()
    : `${naming.stackName}-${logicalId}`;
}

function arnOf(template: CfnTemplate, logicalId: string, naming: LocalNaming): string {
  const { region, account } = naming;
  const name = physicalName(template, logicalId, naming);
  switch (template.Resources?.[logicalId]?.Type) {
    case 'AWS::Lambda::Function':
      return `arn:aws:lambda:${region}:${account}:function:${name}`;
    case 'AWS::S3::Bucket':
      return `arn:aws:s3:::${name}`;
    case 'AWS::DynamoDB::Table':
      return `arn:aws:dynamodb:${region}:${account}:table/${name}`;
    case 'AWS::SNS::Topic':
      return `arn:aws:sns:${region}:${account}:${name}`;
    case 'AWS::StepFunctions::StateMachine':
      return `arn:aws:states:${region}:${account}:stateMachine:${name}`;
    case 'AWS::SSM::Parameter':
      return `arn:aws:ssm:${region}:${account}:parameter/${name.replace(/^\//, '')}`;
    case 'AWS::KMS::Key':
      return `arn:aws:kms:${region}:${account}:key/${name}`;
    case 'AWS::IAM::Role':
      return `arn:aws:iam::${account}:role/${name}`;
    default:
      return `arn:aws:local:${region}:${account}:${logicalId}`;
  }
}

function refOf(template: CfnTemplate, logicalId: string, naming: LocalNaming): string {
  const pseudo: Record<string, string> = {
    'AWS::Region': naming.region,
    'AWS::AccountId': naming.account,
    'AWS::Partition': 'aws',
    'AWS::URLSuffix': 'amazonaws.com',
    'AWS::StackName': naming.stackName,
    'AWS::StackId': `arn:aws:cloudformation:${naming.region}:${naming.account}:stack/${naming.stackName}/local`,
  };
  const known = pseudo[logicalId];
  if (known !== undefined) return known;
  const type = template.Resources?.[logicalId]?.Type;
  if (type === undefined) throw new LocalStateMachineError(`Ref to ${logicalId}, which is not in the template`);
  // SNS topics and state machines give their ARN as Ref; the others their name.
  if (type === 'AWS::SNS::Topic' || type === 'AWS::StepFunctions::StateMachine')
    return arnOf(template, logicalId, naming);
  return physicalName(template, logicalId, naming);
}

/** Resolves `Ref`, `Fn::GetAtt`, `Fn::Join`, `Fn::Sub` (with ${Name} / ${Name.Attr}) and `Fn::Select` to local values. */
export function resolveIntrinsics(value: unknown, template: CfnTemplate, naming: LocalNaming): unknown {
  if (Array.isArray(value)) return value.map((v) => resolveIntrinsics(v, template, naming));
  if (!isRecord(value)) return value;
  const keys = Object.keys(value);
  if (keys.length === 1) {
    const [key] = keys as [string];
    const arg = value[key];
    if (key === 'Ref') return refOf(template, String(arg), naming);
    if (key === 'Fn::GetAtt') {
      const [logicalId, attribute] = Array.isArray(arg) ? (arg as string[]) : String(arg).split('.');
      return getAtt(template, String(logicalId), String(attribute), naming);
    }
    if (key === 'Fn::Join') {
      const [delimiter, parts] = arg as [string, unknown[]];
      return (resolveIntrinsics(parts, template, naming) as unknown[]).map(String).join(delimiter);
    }
    if (key === 'Fn::Select') {
      const [index, list] = arg as [unknown, unknown];
      return (resolveIntrinsics(list, template, naming) as unknown[])[
        Number(resolveIntrinsics(index, template, naming))
      ];
    }
    if (key === 'Fn::Sub') {
      const [text, variables] = Array.isArray(arg) ? (arg as [string, Record<string, unknown>]) : [String(arg), {}];
      const resolved = resolveIntrinsics(variables, template, naming) as Record<string, unknown>;
      return text.replace(/\$\{([^}!]+)\}/g, (_match, name: string) => {
        if (resolved[name] !== undefined) return String(resolved[name]);
        const [logicalId, attribute] = name.split('.') as [string, string | undefined];
        return attribute === undefined
          ? refOf(template, logicalId, naming)
          : getAtt(template, logicalId, attribute, naming);
      });
    }
    if (key.startsWith('Fn::')) throw new LocalStateMachineError(`the local run does not resolve ${key}`);
  }
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, resolveIntrinsics(v, template, naming)]));
}

function getAtt(template: CfnTemplate, logicalId: string, attribute: string, naming: LocalNaming): string {
  if (template.Resources?.[logicalId] === undefined) {
    throw new LocalStateMachineError(`Fn::GetAtt of ${logicalId}, which is not in the template`);
  }
  if (attribute === 'Arn') return arnOf(template, logicalId, naming);
  if (attribute === 'Name' || attribute === 'TopicName') return physicalName(template, logicalId, naming);
  return `${physicalName(template, logicalId, naming)}.${attribute}`;
}

/** The state machine's definition, resolved to local names. */
export function stateMachineDefinition(
  template: CfnTemplate,
  naming: LocalNaming,
  logicalId?: string,
): { logicalId: string; definition: JsonObject } {
  const machines = Object.entries(template.Resources ?? {}).filter(
    ([, r]) => r.Type === 'AWS::StepFunctions::StateMachine',
  );
  const chosen = logicalId === undefined ? machines : machines.filter(([id]) => id === logicalId);
  if (chosen.length !== 1) {
    throw new LocalStateMachineError(
      `expected one state machine in the template${logicalId === undefined ? '' : ` named ${logicalId}`}, found ${machines.map(([id]) => id).join(', ') || 'none'}`,
    );
  }
  const [id, resource] = chosen[0] as [string, CfnResource];
  const properties = resource.Properties ?? {};
  let text: string;
  if (properties['DefinitionString'] !== undefined) {
    text = String(resolveIntrinsics(properties['DefinitionString'], template, naming));
  } else if (properties['Definition'] !== undefined) {
    text = JSON.stringify(resolveIntrinsics(properties['Definition'], template, naming));
  } else {
    throw new LocalStateMachineError(`state machine ${id} has no DefinitionString or Definition`);
  }
  const substitutions = resolveIntrinsics(properties['DefinitionSubstitutions'] ?? {}, template, naming) as Record<
    string,
    unknown
  >;
  text = text.replace(/\$\{([A-Za-z0-9_]+)\}/g, (match, name: string) =>
    substitutions[name] === undefined ? match : String(substitutions[name]),
  );
  return { logicalId: id, definition: JSON.parse(text) as JsonObject };
}

// ----- 2. functions and handler folders ---------------------------------------------------------------------------

export interface LocalFunction {
  logicalId: string;
  /** `<stackName>-<logicalId>` unless the template names it. */
  name: string;
  arn: string;
  /** The folder under lambdas/ whose handler.ts runs this function. */
  handlerName: string;
  timeoutSeconds: number;
  memorySize: number;
  /** The function's environment from the template, resolved to local names (string values only). */
  environment: Record<string, string>;
}

function kebab(text: string): string {
  return text
    .replace(/([a-z0-9])([A-Z])/g, '$1-$2')
    .replace(/([A-Z])([A-Z][a-z])/g, '$1-$2')
    .replace(/[^A-Za-z0-9]+/g, '-')
    .toLowerCase()
    .replace(/^-|-$/g, '');
}

function candidatesOf(text: string): string[] {
  const base = kebab(text);
  const stripped = base.replace(/-(function|fn|lambda|handler)$/, '');
  return [...new Set([base, stripped])];
}

/** The handler folder of one function resource (see the module comment), or undefined. */
export function handlerNameFor(
  logicalId: string,
  resource: CfnResource,
  handlerNames: readonly string[],
): string | undefined {
  const known = new Set(handlerNames);
  const tags = resource.Properties?.['Tags'];
  if (Array.isArray(tags)) {
    const tagged = (tags as Array<{ Key?: unknown; Value?: unknown }>).find((t) => t.Key === 'zero-impact:handler');
    if (typeof tagged?.Value === 'string' && known.has(tagged.Value)) return tagged.Value;
  }
  const path = resource.Metadata?.['aws:cdk:path'];
  if (typeof path === 'string') {
    const segments = path.split('/').slice(1).reverse();
    for (const segment of segments) {
      const match = candidatesOf(segment).find((c) => known.has(c));
      if (match !== undefined) return match;
    }
  }
  const withoutHash = logicalId.replace(/[0-9A-F]{8}$/, '');
  return candidatesOf(withoutHash).find((c) => known.has(c));
}

/** Every Lambda function of the template with its handler folder. */
export function localFunctions(
  template: CfnTemplate,
  naming: LocalNaming,
  handlerNames: readonly string[],
): LocalFunction[] {
  const functions: LocalFunction[] = [];
  for (const [logicalId, resource] of Object.entries(template.Resources ?? {})) {
    if (resource.Type !== 'AWS::Lambda::Function') continue;
    const handlerName = handlerNameFor(logicalId, resource, handlerNames);
    if (handlerName === undefined) {
      throw new LocalStateMachineError(
        `cannot tell which lambdas/<name>/handler.ts runs function ${logicalId}; tag it "zero-impact:handler" or name its construct after the folder`,
      );
    }
    const clash = functions.find((f) => f.handlerName === handlerName);
    if (clash !== undefined) {
      throw new LocalStateMachineError(
        `functions ${clash.logicalId} and ${logicalId} both map to lambdas/${handlerName}`,
      );
    }
    const properties = resource.Properties ?? {};
    const variables = resolveIntrinsics(
      (properties['Environment'] as { Variables?: unknown } | undefined)?.Variables ?? {},
      template,
      naming,
    ) as Record<string, unknown>;
    functions.push({
      logicalId,
      name: physicalName(template, logicalId, naming),
      arn: arnOf(template, logicalId, naming),
      handlerName,
      timeoutSeconds: typeof properties['Timeout'] === 'number' ? properties['Timeout'] : 3,
      memorySize: typeof properties['MemorySize'] === 'number' ? properties['MemorySize'] : 128,
      environment: Object.fromEntries(
        Object.entries(variables).filter((entry): entry is [string, string] => typeof entry[1] === 'string'),
      ),
    });
  }
  return functions;
}

// ----- 3. the local definition ------------------------------------------------------------------------------------

export interface LocalDefinition {
  definition: JsonObject;
  /** The Distributed Map states bound to the local task, by state name, as written (ItemProcessor made local too). */
  distributedMaps: Record<string, JsonObject>;
  /** Every Task state (at any depth), by name. */
  tasks: Record<string, JsonObject>;
}

const KEPT_ON_DISTRIBUTED_MAP = [
  'Comment',
  'InputPath',
  'ResultSelector',
  'ResultPath',
  'OutputPath',
  'Retry',
  'Catch',
  'Next',
  'End',
];

/**
 * A Distributed Map's ResultWriter as the local run models it: `WriterConfig` alone (JSON output, COMPACT, NONE or
 * FLATTEN: the map's state output), or `Resource` and `Parameters` without `WriterConfig` (the S3 export); none:
 * COMPACT. Anything else is refused, so that a definition the local run would misrepresent never runs.
 * "COMPACT - returns the output of the child workflow executions. Default when ResultWriter is not specified.
 * FLATTEN - ... If a child workflow execution returns an array, this option flattens the array, prior to returning
 * the result to a state output ... If a child workflow execution fails, Step Functions returns its execution result
 * unchanged" (https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html). The record of a
 * failed child is modelled on the S3 export's (ExecutionArn, Name, Input as a string, Status, Error, Cause, dates).
 */
export function resultWriterOf(
  name: string,
  state: JsonObject,
): { transformation: 'COMPACT' | 'NONE' | 'FLATTEN'; exportsToS3: boolean } {
  const writer = state['ResultWriter'];
  if (writer === undefined) return { transformation: 'COMPACT', exportsToS3: false };
  if (!isRecord(writer)) throw new LocalStateMachineError(`state "${name}": ResultWriter is not an object`);
  const config = writer['WriterConfig'];
  const exportsToS3 = writer['Resource'] !== undefined;
  if (config === undefined) {
    if (!exportsToS3) throw new LocalStateMachineError(`state "${name}": an empty ResultWriter`);
    return { transformation: 'NONE', exportsToS3 };
  }
  if (exportsToS3) {
    throw new LocalStateMachineError(`state "${name}": the local run does not model WriterConfig with an S3 export`);
  }
  const transformation = isRecord(config) ? config['Transformation'] : undefined;
  const outputType = isRecord(config) ? config['OutputType'] : undefined;
  if (
    outputType !== 'JSON' ||
    (transformation !== 'COMPACT' && transformation !== 'NONE' && transformation !== 'FLATTEN')
  ) {
    throw new LocalStateMachineError(
      `state "${name}": the local run models WriterConfig OutputType JSON with COMPACT, NONE or FLATTEN only, not ${JSON.stringify(config)}`,
    );
  }
  return { transformation, exportsToS3 };
}

function isDistributedMap(state: JsonObject): boolean {
  const processor = state['ItemProcessor'];
  const mode =
    isRecord(processor) && isRecord(processor['ProcessorConfig']) ? processor['ProcessorConfig']['Mode'] : undefined;
  return state['Type'] === 'Map' && (state['ItemReader'] !== undefined || mode === 'DISTRIBUTED');
}

/** The definition the interpreter runs: see the module comment, point 3. Does not modify its input. */
export function toLocalDefinition(definition: JsonObject): LocalDefinition {
  const distributedMaps: Record<string, JsonObject> = {};
  const tasks: Record<string, JsonObject> = {};
  const seen = new Set<string>();
  const visit = (machine: JsonObject): JsonObject => {
    if (machine['QueryLanguage'] === 'JSONata') {
      throw new LocalStateMachineError('the local interpreter runs JSONPath only; the definition uses JSONata');
    }
    const states = machine['States'];
    if (!isRecord(states)) throw new LocalStateMachineError('a state machine without States');
    const localStates: JsonObject = {};
    for (const [name, raw] of Object.entries(states as JsonObject)) {
      if (seen.has(name))
        throw new LocalStateMachineError(`state name "${name}" is used twice; local bindings go by name`);
      seen.add(name);
      const state = JSON.parse(JSON.stringify(raw)) as JsonObject; // not structuredClone: under jest it builds objects of another realm, which the interpreter does not treat as plain objects
      if (state['Assign'] !== undefined || state['QueryLanguage'] === 'JSONata') {
        throw new LocalStateMachineError(
          `state "${name}" uses variables or JSONata, which the local interpreter cannot run`,
        );
      }
      if (isDistributedMap(state)) {
        resultWriterOf(name, state);
        const processor = state['ItemProcessor'] as JsonObject;
        const { ProcessorConfig: _config, ...childMachine } = processor;
        distributedMaps[name] = { ...state, ItemProcessor: visit(childMachine as JsonObject) };
        const task: JsonObject = {
          Type: 'Task',
          Resource: LOCAL_DISTRIBUTED_MAP_RESOURCE,
          TimeoutSeconds: LOCAL_NO_TIMEOUT_SECONDS,
        };
        for (const key of KEPT_ON_DISTRIBUTED_MAP) if (state[key] !== undefined) task[key] = state[key] as Json;
        localStates[name] = task;
        tasks[name] = task;
        continue;
      }
      if (state['Type'] === 'Task') {
        if (state['TimeoutSeconds'] === undefined && state['TimeoutSecondsPath'] === undefined) {
          state['TimeoutSeconds'] = LOCAL_NO_TIMEOUT_SECONDS;
        }
        tasks[name] = state;
      }
      for (const key of ['ItemProcessor', 'Iterator']) {
        if (isRecord(state[key])) {
          const { ProcessorConfig: _config, ...inner } = state[key] as JsonObject;
          state[key] = visit(inner as JsonObject);
        }
      }
      if (Array.isArray(state['Branches'])) state['Branches'] = (state['Branches'] as JsonObject[]).map(visit);
      localStates[name] = state;
    }
    return { ...machine, States: localStates };
  };
  return { definition: visit(definition), distributedMaps, tasks };
}

/** Evaluates a payload template (`"key.$": "$.path"`, intrinsics) exactly as the interpreter does, with a Pass state. */
export async function evaluatePayloadTemplate(template: Json, input: Json, context: JsonObject): Promise<Json> {
  const machine = new StateMachine(
    { StartAt: 'Evaluate', States: { Evaluate: { Type: 'Pass', Parameters: template as JsonObject, End: true } } },
    { validationOptions: { noValidate: true } },
  );
  return (await machine.run(input, { context }).result) as Json;
}

export interface DistributedMapIo {
  /** The text of an S3 object, or undefined when it does not exist. */
  readObject(bucket: string, key: string): string | undefined;
  writeObject?(bucket: string, key: string, body: string): void;
}

/**
 * The child inputs a Distributed Map state gives its ItemProcessor: the items its ItemReader reads (or its
 * ItemsPath selects), through its ItemSelector, batched by its ItemBatcher.
 * @param state the Distributed Map state as written
 * @param mapInput the map's input (after its InputPath)
 */
export async function batchesForDistributedMap(
  state: JsonObject,
  mapInput: Json,
  context: JsonObject,
  io: DistributedMapIo,
): Promise<Json[]> {
  let items: Json[];
  const reader = state['ItemReader'];
  if (isRecord(reader)) {
    const resource = String(reader['Resource']);
    const config = (isRecord(reader['ReaderConfig']) ? reader['ReaderConfig'] : {}) as JsonObject;
    if (!/^arn:aws:states:::s3:getObject$/.test(resource) || (config['InputType'] ?? 'JSON') !== 'JSON') {
      throw new LocalStateMachineError(
        `the local run reads JSON arrays with s3:getObject only, not ${resource} ${String(config['InputType'])}`,
      );
    }
    const location = (await evaluatePayloadTemplate(
      (reader['Parameters'] ?? {}) as Json,
      mapInput,
      context,
    )) as JsonObject;
    const bucket = String(location['Bucket']);
    const key = String(location['Key']);
    const text = io.readObject(bucket, key);
    if (text === undefined)
      throw Object.assign(new Error(`S3 object s3://${bucket}/${key} does not exist`), {
        name: 'States.ItemReaderFailed',
      });
    const parsed = JSON.parse(text) as Json;
    if (!Array.isArray(parsed)) {
      throw Object.assign(new Error(`s3://${bucket}/${key} is not a JSON array`), { name: 'States.ItemReaderFailed' });
    }
    const maxItems =
      config['MaxItems'] ??
      (typeof config['MaxItemsPath'] === 'string'
        ? await evaluatePayloadTemplate({ 'v.$': config['MaxItemsPath'] }, mapInput, context).then(
            (v) => (v as JsonObject)['v'] as Json,
          )
        : undefined);
    items = typeof maxItems === 'number' && maxItems > 0 ? parsed.slice(0, maxItems) : parsed;
  } else {
    const path = typeof state['ItemsPath'] === 'string' ? state['ItemsPath'] : '$';
    const selected = (await evaluatePayloadTemplate({ 'items.$': path }, mapInput, context)) as JsonObject;
    if (!Array.isArray(selected['items'])) throw new LocalStateMachineError('ItemsPath does not select an array');
    items = selected['items'] as Json[];
  }
  const selector = state['ItemSelector'] ?? state['Parameters'];
  if (selector !== undefined) {
    const selected: Json[] = [];
    for (const [index, value] of items.entries()) {
      selected.push(
        await evaluatePayloadTemplate(selector, mapInput, {
          ...context,
          Map: { Item: { Index: index, Value: value } },
        }),
      );
    }
    items = selected;
  }
  const batcher = state['ItemBatcher'];
  if (!isRecord(batcher)) return items;
  const fromPath = async (path: unknown): Promise<number | undefined> =>
    typeof path === 'string'
      ? (((await evaluatePayloadTemplate({ 'v.$': path }, mapInput, context)) as JsonObject)['v'] as number)
      : undefined;
  const maxItems =
    (batcher['MaxItemsPerBatch'] as number | undefined) ?? (await fromPath(batcher['MaxItemsPerBatchPath']));
  const maxBytes =
    (batcher['MaxInputBytesPerBatch'] as number | undefined) ??
    (await fromPath(batcher['MaxInputBytesPerBatchPath'])) ??
    STATE_PAYLOAD_LIMIT_BYTES;
  const batchInput =
    batcher['BatchInput'] === undefined
      ? undefined
      : await evaluatePayloadTemplate(batcher['BatchInput'] as Json, mapInput, context);
  const batches: Json[] = [];
  let current: Json[] = [];
  const bytesOf = (batch: Json[]): number =>
    Buffer.byteLength(
      JSON.stringify(batchInput === undefined ? { Items: batch } : { Items: batch, BatchInput: batchInput }),
      'utf8',
    );
  const flush = (): void => {
    if (current.length > 0)
      batches.push(batchInput === undefined ? { Items: current } : { Items: current, BatchInput: batchInput });
    current = [];
  };
  for (const item of items) {
    if (
      current.length > 0 &&
      ((maxItems !== undefined && current.length >= maxItems) || bytesOf([...current, item]) > maxBytes)
    )
      flush();
    current.push(item);
  }
  flush();
  return batches;
}

export interface DistributedMapRunOptions extends DistributedMapIo {
  /** Runs one child execution of the ItemProcessor. */
  runChild(definition: JsonObject, input: Json, context: JsonObject): Promise<Json>;
  onBatch?(event: { state: string; index: number; total: number; failed: boolean }): void;
}

/** A failure of the Distributed Map state itself (the interpreter matches Retry/Catch on `name`). */
class MapRunError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

/** Runs a Distributed Map state locally (see the module comment); resolves with the map's result. */
export async function runDistributedMap(
  name: string,
  state: JsonObject,
  mapInput: Json,
  context: JsonObject,
  options: DistributedMapRunOptions,
): Promise<Json> {
  const inputs = await batchesForDistributedMap(state, mapInput, context, options);
  const childDefinition = state['ItemProcessor'] as JsonObject;
  const concurrency =
    typeof state['MaxConcurrency'] === 'number' && state['MaxConcurrency'] > 0
      ? state['MaxConcurrency']
      : DEFAULT_MAX_CONCURRENCY;
  const results: Json[] = new Array<Json>(inputs.length).fill(null);
  /** Each child's execution record, as ResultWriter's NONE transformation gives it. */
  const records: JsonObject[] = new Array<JsonObject>(inputs.length).fill({});
  const failed: number[] = [];
  const execution = isRecord(context['Execution']) ? context['Execution'] : {};
  const mapRunId = randomUUID();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < inputs.length) {
      const index = next;
      next += 1;
      const input = inputs[index] as Json;
      const childName = `${mapRunId.slice(0, 8)}-${index}`;
      const childArn = `${String(execution['Id'] ?? 'local')}/${name}:${childName}`;
      const startDate = new Date().toISOString();
      const childContext: JsonObject = {
        Execution: { Id: childArn, Name: childName, Input: input, StartTime: startDate },
        StateMachine: isRecord(context['StateMachine']) ? (context['StateMachine'] as JsonObject) : {},
      };
      const record = (status: string): JsonObject => ({
        ExecutionArn: childArn,
        Name: childName,
        Input: JSON.stringify(input),
        InputDetails: { Included: true },
        StartDate: startDate,
        StopDate: new Date().toISOString(),
        Status: status,
      });
      try {
        results[index] = await options.runChild(childDefinition, input, childContext);
        records[index] = {
          ...record('SUCCEEDED'),
          Output: JSON.stringify(results[index]),
          OutputDetails: { Included: true },
        };
        options.onBatch?.({ state: name, index, total: inputs.length, failed: false });
      } catch (error) {
        const cause = error instanceof ExecutionError && error.cause instanceof Error ? error.cause : error;
        failed.push(index);
        results[index] = {
          Error: cause instanceof Error ? cause.name : 'States.TaskFailed',
          Cause: cause instanceof Error ? cause.message : String(cause),
        };
        records[index] = { ...record('FAILED'), ...(results[index] as JsonObject) };
        options.onBatch?.({ state: name, index, total: inputs.length, failed: true });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(inputs.length, 1)) }, () => worker()));
  const toleratedPercent =
    typeof state['ToleratedFailurePercentage'] === 'number' ? state['ToleratedFailurePercentage'] : 0;
  const toleratedCount = typeof state['ToleratedFailureCount'] === 'number' ? state['ToleratedFailureCount'] : 0;
  if (failed.length > 0) {
    const percent = (failed.length / inputs.length) * 100;
    if (percent > toleratedPercent && failed.length > toleratedCount) {
      const first = results[failed[0] as number] as JsonObject;
      throw new MapRunError(
        'States.ExceedToleratedFailureThreshold',
        `The specified tolerated failure threshold was exceeded: ${failed.length} of ${inputs.length} child executions failed (first: ${String(first['Error'])}: ${String(first['Cause'])})`,
      );
    }
  }
  const writer = state['ResultWriter'];
  const { transformation, exportsToS3 } = resultWriterOf(name, state);
  if (!exportsToS3) {
    if (transformation === 'COMPACT') return results;
    if (transformation === 'NONE') return records;
    // FLATTEN: a child's array output is spliced in; a failed child is returned as with NONE.
    return results.flatMap((result, index) =>
      failed.includes(index) ? [records[index] as JsonObject] : Array.isArray(result) ? result : [result],
    );
  }
  if (isRecord(writer)) {
    const location = (await evaluatePayloadTemplate(
      (writer['Parameters'] ?? {}) as Json,
      mapInput,
      context,
    )) as JsonObject;
    const bucket = String(location['Bucket']);
    const prefix = `${String(location['Prefix'] ?? '')}`.replace(/\/?$/, '/');
    const key = `${prefix}${mapRunId}/manifest.json`;
    options.writeObject?.(
      bucket,
      `${prefix}${mapRunId}/SUCCEEDED_0.json`,
      JSON.stringify(results.filter((_r, i) => !failed.includes(i))),
    );
    if (failed.length > 0)
      options.writeObject?.(
        bucket,
        `${prefix}${mapRunId}/FAILED_0.json`,
        JSON.stringify(failed.map((i) => results[i])),
      );
    options.writeObject?.(bucket, key, JSON.stringify({ MapRunArn: `local:${mapRunId}`, ResultFiles: {} }));
    return { MapRunArn: `local:${mapRunId}`, ResultWriterDetails: { Bucket: bucket, Key: key } };
  }
  return results;
}

// ----- 4. binding tasks -------------------------------------------------------------------------------------------

export type LambdaHandler = (event: unknown, context: LambdaContext) => Promise<unknown>;

export interface InvokeEvent {
  function: LocalFunction;
  state: string;
  input: Json;
  output?: Json;
  error?: { name: string; message: string };
  durationMs: number;
}

export interface LocalRunHooks {
  /** Called after every Lambda invocation (payloads as they crossed the boundary). */
  onInvoke?(event: InvokeEvent): void;
  /**
   * Called when a task's handler has returned, before its output goes back to the state machine. An error it throws
   * is the task's error (named after the error, as if the invocation failed after doing its work): the state's Retry
   * and Catch apply.
   */
  afterTask?(event: { function: LocalFunction; state: string; input: Json; output: Json }): void;
  /**
   * With `retryIntervalMs`: called when a task failed with an error one of its retriers will retry, with the wait
   * that retrier would have drawn on average (IntervalSeconds x BackoffRate^n, at most MaxDelaySeconds, halved with
   * full jitter), so that a virtual clock can move on by it.
   */
  onRetryWait?(event: { state: string; error: string; waitMs: number }): void;
  /** Called when a task is about to invoke its handler (in the order the invocations start). */
  beforeTask?(event: { function: LocalFunction; state: string; input: Json }): void;
  onBatch?(event: { state: string; index: number; total: number; failed: boolean }): void;
  onState?(event: { type: string; state: string }): void;
}

export interface PreparedStateMachine {
  logicalId: string;
  local: LocalDefinition;
  functions: LocalFunction[];
}

/** Reads the template once: the local definition and the functions it binds. Refuses unbound integrations. */
export function prepareStateMachine(
  template: CfnTemplate,
  naming: LocalNaming,
  handlerNames: readonly string[],
  stateMachineLogicalId?: string,
): PreparedStateMachine {
  const { logicalId, definition } = stateMachineDefinition(template, naming, stateMachineLogicalId);
  const local = toLocalDefinition(definition);
  const functions = localFunctions(template, naming, handlerNames);
  for (const [name, task] of Object.entries(local.tasks)) {
    functionForTask(name, task, functions);
  }
  return { logicalId, local, functions };
}

function functionForTask(name: string, task: JsonObject, functions: LocalFunction[]): LocalFunction | undefined {
  const resource = String(task['Resource']);
  if (resource === LOCAL_DISTRIBUTED_MAP_RESOURCE) return undefined;
  let target: string;
  if (resource === 'arn:aws:states:::lambda:invoke') {
    const parameters = isRecord(task['Parameters']) ? task['Parameters'] : {};
    if (typeof parameters['FunctionName'] !== 'string') {
      throw new LocalStateMachineError(`state "${name}": lambda:invoke without a literal FunctionName`);
    }
    target = parameters['FunctionName'];
  } else if (/^arn:aws:lambda:/.test(resource)) {
    target = resource;
  } else {
    throw new LocalStateMachineError(`state "${name}" uses ${resource}, which the local run does not bind`);
  }
  const bare = target.replace(/:(\$LATEST|\d+)$/, '');
  const fn = functions.find((f) => f.arn === bare || f.name === bare);
  if (fn === undefined)
    throw new LocalStateMachineError(`state "${name}" invokes ${target}, which is not a function of the template`);
  return fn;
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value) ?? 'null', 'utf8');
}

class TaskError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

function lambdaContext(fn: LocalFunction, deadline: number): LambdaContext {
  const requestId = randomUUID();
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: fn.name,
    functionVersion: '$LATEST',
    invokedFunctionArn: fn.arn,
    memoryLimitInMB: String(fn.memorySize),
    awsRequestId: requestId,
    logGroupName: `/aws/lambda/${fn.name}`,
    logStreamName: `local/[$LATEST]${requestId.replace(/-/g, '')}`,
    getRemainingTimeInMillis: () => Math.max(0, deadline - Date.now()),
    done: () => undefined,
    fail: () => undefined,
    succeed: () => undefined,
  };
}

/** Invokes a handler like Lambda does: JSON in and out, bounded by the function's timeout. */
async function invoke(
  fn: LocalFunction,
  handler: LambdaHandler,
  state: string,
  payload: Json,
  hooks: LocalRunHooks,
): Promise<Json> {
  const started = Date.now();
  const event = JSON.parse(JSON.stringify(payload ?? null)) as Json;
  const deadline = started + fn.timeoutSeconds * 1000;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new TaskError(
            'Sandbox.Timedout',
            JSON.stringify({ errorMessage: `Task timed out after ${fn.timeoutSeconds}.00 seconds` }),
          ),
        ),
      fn.timeoutSeconds * 1000,
    );
  });
  try {
    hooks.beforeTask?.({ function: fn, state, input: event });
    const result = await Promise.race([
      Promise.resolve().then(() => handler(event, lambdaContext(fn, deadline))),
      timeout,
    ]);
    const output = JSON.parse(JSON.stringify(result ?? null)) as Json;
    hooks.afterTask?.({ function: fn, state, input: event, output });
    hooks.onInvoke?.({ function: fn, state, input: event, output, durationMs: Date.now() - started });
    return output;
  } catch (error) {
    const failure =
      error instanceof TaskError
        ? error
        : new TaskError(
            error instanceof Error ? error.name : 'Error',
            JSON.stringify({
              errorType: error instanceof Error ? error.name : 'Error',
              errorMessage: error instanceof Error ? error.message : String(error),
              trace: [],
            }),
          );
    hooks.onInvoke?.({
      function: fn,
      state,
      input: event,
      error: { name: failure.name, message: failure.message },
      durationMs: Date.now() - started,
    });
    throw failure;
  } finally {
    clearTimeout(timer);
  }
}

export interface ExecuteOptions {
  /** The handler of each function, by handler folder name. */
  handlers: Record<string, LambdaHandler>;
  io: DistributedMapIo;
  /** The execution's context object (`$$`): Execution.Id/Name/StartTime, StateMachine. */
  context: JsonObject;
  hooks?: LocalRunHooks;
  /**
   * Every Retry waits this many milliseconds instead of what its IntervalSeconds, BackoffRate and JitterStrategy
   * give (the local run's virtual time: a retry costs nothing). @default as the definition says
   */
  retryIntervalMs?: number;
  /**
   * Aborting it ends the execution at once, as if it and every Lambda died: the execution and its child executions
   * are aborted (the result rejects with ExecutionAbortedError) and no task invokes its handler any more.
   */
  signal?: AbortSignal;
}

/** The names of every state with a `Retry`, in a definition and the definitions nested in it. */
export function retryableStates(definition: Json): string[] {
  const names = new Set<string>();
  const visit = (value: Json): void => {
    if (Array.isArray(value)) {
      value.forEach(visit);
      return;
    }
    if (value === null || typeof value !== 'object') return;
    const states = value['States'];
    if (states !== null && typeof states === 'object' && !Array.isArray(states)) {
      for (const [name, state] of Object.entries(states)) {
        if (state !== null && typeof state === 'object' && !Array.isArray(state) && Array.isArray(state['Retry'])) {
          names.add(name);
        }
      }
    }
    Object.values(value).forEach(visit);
  };
  visit(definition);
  return [...names].sort();
}

/**
 * The average wait before the retry of a Task that failed with `error` (see `LocalRunHooks.onRetryWait`), or
 * undefined when no retrier retries it. `attempts` counts the retries already made per retrier index.
 */
export function retryWait(
  task: JsonObject,
  error: Error,
  attempts: number[],
): { index: number; waitMs: number } | undefined {
  const retriers = Array.isArray(task['Retry']) ? task['Retry'] : [];
  for (let index = 0; index < retriers.length; index += 1) {
    const retrier = retriers[index];
    if (retrier === null || typeof retrier !== 'object' || Array.isArray(retrier)) continue;
    const errors = Array.isArray(retrier['ErrorEquals']) ? retrier['ErrorEquals'] : [];
    const timeout = error.name === 'States.Timeout' || error.name === 'Sandbox.Timedout';
    const matches = errors.some(
      (e) => e === error.name || e === 'States.ALL' || (e === 'States.TaskFailed' && !timeout),
    );
    if (!matches) continue;
    const made = attempts[index] ?? 0;
    const max = typeof retrier['MaxAttempts'] === 'number' ? retrier['MaxAttempts'] : 3;
    if (made >= max) return undefined;
    const interval = typeof retrier['IntervalSeconds'] === 'number' ? retrier['IntervalSeconds'] : 1;
    const rate = typeof retrier['BackoffRate'] === 'number' ? retrier['BackoffRate'] : 2;
    const cap = typeof retrier['MaxDelaySeconds'] === 'number' ? retrier['MaxDelaySeconds'] : Infinity;
    const seconds = Math.min(interval * rate ** made, cap) * (retrier['JitterStrategy'] === 'FULL' ? 0.5 : 1);
    return { index, waitMs: Math.round(seconds * 1000) };
  }
  return undefined;
}

/** The error a task of an aborted execution fails with. */
class ExecutionKilledError extends Error {
  constructor() {
    super('the execution was aborted (the run was killed)');
    this.name = 'States.Aborted';
  }
}

/** Executes the prepared state machine once; resolves with its output or rejects with the interpreter's error. */
export async function executeStateMachine(
  prepared: PreparedStateMachine,
  input: Json,
  options: ExecuteOptions,
): Promise<Json> {
  const hooks = options.hooks ?? {};
  const overrides: Record<string, (input: unknown) => Promise<Json>> = {};
  const signal = options.signal;
  const retryIntervalOverrides: Record<string, number> = {};
  if (options.retryIntervalMs !== undefined) {
    const all: Json[] = [
      prepared.local.definition as unknown as Json,
      ...Object.values(prepared.local.distributedMaps),
    ];
    for (const name of retryableStates(all)) retryIntervalOverrides[name] = options.retryIntervalMs;
  }
  const running = new Set<{ abort: () => void }>();
  const abortAll = (): void => {
    for (const execution of running) execution.abort();
  };
  signal?.addEventListener('abort', abortAll, { once: true });
  const alive = (): void => {
    if (signal?.aborted === true) throw new ExecutionKilledError();
  };
  const limit = (name: string, value: Json, what: string): Json => {
    if (jsonBytes(value) > STATE_PAYLOAD_LIMIT_BYTES) {
      throw new TaskError(
        'States.DataLimitExceeded',
        `The state/task '${name}' returned a result with a size exceeding the maximum number of bytes service limit (${what}).`,
      );
    }
    return value;
  };
  const runChild = async (definition: JsonObject, childInput: Json, context: JsonObject): Promise<Json> => {
    const machine = new StateMachine(definition as unknown as StateMachineDefinition, {
      validationOptions: { noValidate: true },
    });
    alive();
    const execution = machine.run(childInput, {
      overrides: { taskResourceLocalHandlers: overrides, retryIntervalOverrides },
      context,
    });
    running.add(execution);
    try {
      return (await execution.result) as Json;
    } finally {
      running.delete(execution);
    }
  };
  for (const [name, task] of Object.entries(prepared.local.tasks)) {
    const fn = functionForTask(name, task, prepared.functions);
    if (fn === undefined) {
      const mapState = prepared.local.distributedMaps[name] as JsonObject;
      overrides[name] = async (mapInput) => {
        alive();
        return limit(
          name,
          await runDistributedMap(name, mapState, mapInput as Json, options.context, {
            ...options.io,
            runChild,
            onBatch: hooks.onBatch,
          }),
          'map output',
        );
      };
      continue;
    }
    const handler = options.handlers[fn.handlerName];
    if (handler === undefined) throw new LocalStateMachineError(`no handler loaded for lambdas/${fn.handlerName}`);
    const viaInvoke = String(task['Resource']) === 'arn:aws:states:::lambda:invoke';
    const retries = new Map<string, number[]>();
    overrides[name] = async (stateInput) => {
      alive();
      const payload = (viaInvoke ? (stateInput as JsonObject)['Payload'] : stateInput) as Json;
      limit(name, payload ?? null, 'input');
      let output: Json;
      try {
        output = limit(name, await invoke(fn, handler, name, payload ?? null, hooks), 'output');
      } catch (error) {
        if (options.retryIntervalMs !== undefined && error instanceof Error && hooks.onRetryWait !== undefined) {
          const key = JSON.stringify(stateInput) ?? 'null';
          const attempts = retries.get(key) ?? [];
          const wait = retryWait(task, error, attempts);
          if (wait !== undefined) {
            attempts[wait.index] = (attempts[wait.index] ?? 0) + 1;
            retries.set(key, attempts);
            hooks.onRetryWait({ state: name, error: error.name, waitMs: wait.waitMs });
          }
        }
        throw error;
      }
      alive();
      if (!viaInvoke) return output;
      return {
        ExecutedVersion: '$LATEST',
        Payload: output,
        SdkHttpMetadata: { HttpStatusCode: 200 },
        SdkResponseMetadata: { RequestId: randomUUID() },
        StatusCode: 200,
      };
    };
  }
  const machine = new StateMachine(prepared.local.definition as unknown as StateMachineDefinition, {
    validationOptions: { checkArn: false, checkPaths: true },
  });
  alive();
  const execution = machine.run(input, {
    overrides: { taskResourceLocalHandlers: overrides, retryIntervalOverrides },
    context: options.context,
  });
  running.add(execution);
  if (hooks.onState !== undefined) {
    const onState = hooks.onState;
    void (async () => {
      for await (const event of execution.eventLogs) {
        if (
          'state' in event &&
          event.state !== undefined &&
          (event.type === 'StateEntered' || event.type === 'StateExited')
        ) {
          onState({ type: event.type, state: event.state.name });
        }
      }
    })();
  }
  try {
    return (await execution.result) as Json;
  } finally {
    running.delete(execution);
    signal?.removeEventListener('abort', abortAll);
  }
}
