/**
 * Fault injection for `dynamodb:*` calls of the local run, which talk to a real DynamoDB-compatible server
 * (local/dynamo-local.ts) and not to the simulated account.
 *
 * How it plugs in, as local/simulated-account.ts does for the other services: while installed, `send` on the
 * prototypes of DynamoDBClient and DynamoDBDocumentClient (which shares its inner client's middleware stack) is
 * patched to add one middleware to each client's stack. The middleware sits at the start of the `deserialize` step,
 * where the HTTP call would be made, so everything above it is the real SDK: the document client's marshalling, the
 * retry strategy (standard or adaptive, real backoff) and `$metadata.attempts`. On every attempt it asks the
 * caller's `decide(operation, input)` (operation `dynamodb:PutItem`, input the low-level, marshalled command input);
 * an Error returned is thrown instead of sending the request. `dynamoError()` builds the SDK's own exceptions.
 * `uninstall()` removes the middleware from every stack it was added to and restores the prototypes.
 */
import * as dynamodb from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { patchSend, type SendPatch } from './sdk-send-patch';

/** Decides one attempt: an Error to throw instead of sending it, or undefined to let it reach the server. */
export type DynamoFaultDecider = (operation: string, input: Readonly<Record<string, unknown>>) => Error | undefined;

const MIDDLEWARE_NAME = 'zeroImpactDynamoFaults';

const STATUS_BY_ERROR: Readonly<Record<string, number>> = {
  ProvisionedThroughputExceededException: 400,
  ThrottlingException: 400,
  RequestLimitExceeded: 400,
  ConditionalCheckFailedException: 400,
  TransactionConflictException: 400,
  ResourceNotFoundException: 400,
  AccessDeniedException: 400,
  InternalServerError: 500,
  ServiceUnavailable: 503,
};

type ExceptionCtor = new (options: { message: string; $metadata: Metadata }) => Error;
type BaseCtor = new (options: {
  name: string;
  $fault: 'client' | 'server';
  message: string;
  $metadata: Metadata;
}) => Error;
interface Metadata {
  httpStatusCode: number;
  requestId: string;
  attempts: number;
  totalRetryDelay: number;
}

let requestCounter = 0;

/**
 * The SDK's own exception for `name` (e.g. ProvisionedThroughputExceededException, InternalServerError), or the
 * service's base exception with that name (e.g. ServiceUnavailable: `$fault` server, HTTP 503), with `$metadata`.
 */
export function dynamoError(name: string, message = `Injected fault: ${name}`): Error {
  const httpStatusCode = STATUS_BY_ERROR[name] ?? (/Internal|Unavailable|Service/.test(name) ? 500 : 400);
  requestCounter += 1;
  const $metadata: Metadata = {
    httpStatusCode,
    requestId: `INJECTED${String(requestCounter).padStart(12, '0')}`,
    attempts: 1,
    totalRetryDelay: 0,
  };
  const candidate = (dynamodb as Record<string, unknown>)[name];
  if (typeof candidate === 'function' && candidate.prototype instanceof dynamodb.DynamoDBServiceException) {
    return new (candidate as ExceptionCtor)({ message, $metadata });
  }
  const base = dynamodb.DynamoDBServiceException as unknown as BaseCtor;
  return new base({ name, $fault: httpStatusCode >= 500 ? 'server' : 'client', message, $metadata });
}

/** What a fault plan needs to know about a DynamoDB call (local/fault-plan.ts `PlannedCall`). */
export interface DynamoCallFacts {
  table?: 'audit' | 'state';
  /** PutItem: the item's `outcome` attribute. */
  outcome?: string;
  /** The item's `functionName` attribute (PutItem, or the key of GetItem/UpdateItem/DeleteItem). */
  functionName?: string;
}

function stringAttribute(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const s = (value as { S?: unknown }).S;
  return typeof s === 'string' ? s : undefined;
}

/**
 * The table kind, item outcome and function of a low-level (marshalled) DynamoDB input, as the middleware sees it.
 * @param tables the local table names of the audit and state tables
 */
export function describeDynamoCall(
  input: Readonly<Record<string, unknown>>,
  tables: { audit: string; state: string },
): DynamoCallFacts {
  const facts: DynamoCallFacts = {};
  const tableName = typeof input['TableName'] === 'string' ? input['TableName'] : undefined;
  if (tableName === tables.audit) facts.table = 'audit';
  else if (tableName === tables.state) facts.table = 'state';
  const record = (input['Item'] ?? input['Key']) as Record<string, unknown> | undefined;
  if (record !== undefined && record !== null && typeof record === 'object') {
    const outcome = stringAttribute(record['outcome']);
    const functionName = stringAttribute(record['functionName']);
    if (outcome !== undefined && input['Item'] !== undefined) facts.outcome = outcome;
    if (functionName !== undefined) facts.functionName = functionName;
  }
  return facts;
}

interface PatchableClient {
  middlewareStack: {
    add(middleware: unknown, options: { step: string; priority: string; name: string }): void;
    remove(name: string): boolean;
  };
  handlers?: unknown;
}

let installed: DynamoFaultInjector | undefined;

/** See the module comment. One injector is installed at a time. */
export class DynamoFaultInjector {
  private patch: SendPatch | undefined;
  private readonly stacks = new Set<PatchableClient['middlewareStack']>();
  private readonly clients = new Set<PatchableClient>();
  private readonly attemptCounts = new Map<string, number>();
  private readonly faultCounts = new Map<string, number>();

  constructor(private readonly decide: DynamoFaultDecider) {}

  get isInstalled(): boolean {
    return installed === this;
  }

  /** Adds the middleware to every DynamoDB client used from now on, until `uninstall()`. */
  install(): this {
    if (installed === this) return this;
    if (installed !== undefined) throw new Error('another DynamoFaultInjector is installed; uninstall it first');
    installed = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the one installed injector
    const middleware = this.middleware();
    this.patch = patchSend<PatchableClient>(
      [dynamodb.DynamoDBClient.prototype, DynamoDBDocumentClient.prototype],
      (client) => this.attach(client, middleware),
    );
    return this;
  }

  /** Restores the prototypes and removes the middleware from every stack it was added to. Idempotent. */
  uninstall(): void {
    if (installed !== this) return;
    this.patch?.restore();
    this.patch = undefined;
    for (const stack of this.stacks) stack.remove(MIDDLEWARE_NAME);
    for (const client of this.clients) delete client.handlers;
    this.stacks.clear();
    this.clients.clear();
    installed = undefined;
  }

  /** Attempts per `dynamodb:Operation` (faulted ones included). */
  attempts(): Record<string, number> {
    return Object.fromEntries([...this.attemptCounts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Attempts answered with an injected error, per `dynamodb:Operation`. */
  faults(): Record<string, number> {
    return Object.fromEntries([...this.faultCounts.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  private attach(client: PatchableClient, middleware: unknown): void {
    this.clients.add(client);
    // A document client shares its inner client's stack: one middleware per stack.
    if (this.stacks.has(client.middlewareStack)) return;
    client.middlewareStack.remove(MIDDLEWARE_NAME);
    client.middlewareStack.add(middleware, { step: 'deserialize', priority: 'high', name: MIDDLEWARE_NAME });
    delete client.handlers;
    this.stacks.add(client.middlewareStack);
  }

  private middleware() {
    return (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input?: Record<string, unknown> }) => {
        if (installed !== this) return next(args);
        const operation = `dynamodb:${(context.commandName ?? 'Unknown').replace(/Command$/, '')}`;
        this.attemptCounts.set(operation, (this.attemptCounts.get(operation) ?? 0) + 1);
        const error = this.decide(operation, args.input ?? {});
        if (error !== undefined) {
          this.faultCounts.set(operation, (this.faultCounts.get(operation) ?? 0) + 1);
          throw error;
        }
        return next(args);
      };
  }
}
