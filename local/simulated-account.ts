/**
 * The simulated AWS account: one in-memory model of an account's Lambda estate that answers the SDK calls the
 * handlers make, so the real handler code runs unchanged on a laptop, in the tests, in the benchmark and in the
 * fault-injection suite.
 *
 * How it plugs in: while installed, `send` on the prototypes of the SDK clients the engine uses (Lambda, Tagging,
 * CloudWatch, EC2, SNS, S3, SSM, Secrets Manager, CloudFront, KMS, Step Functions) is patched to add one middleware to each client instance it sees.
 * The middleware sits where the HTTP call and the response parsing would be (the start of the `deserialize` step), so everything
 * above it is the real SDK: serialization, the client's retry strategy (standard or adaptive, with its real backoff)
 * and `$metadata.attempts`. It dispatches on the command's name and input and answers with AWS's response shapes, or
 * throws the SDK's own exception classes (`instanceof` works, `name` and `$metadata` are set). Every attempt is
 * counted per `service:Operation` (IAM action names, e.g. `lambda:ListFunctions`, `tag:GetResources`).
 * `uninstall()` removes the middleware from every client and restores the prototypes. DynamoDB is not simulated: the
 * local run uses a real DynamoDB-compatible server (local/dynamo-local.ts).
 *
 * The rules the simulator enforces, each with the AWS source it follows (docs/local-run.md has the same list;
 * test/unit/simulated-account*.test.ts has a test per rule):
 * 1. **Caller permissions**: every call a handler makes runs as that handler's role (AsyncLocalStorage, so
 *    concurrent Map children keep their own) and is checked against the role's statements from the synthesized
 *    template: actions, resource patterns, `ForAnyValue:`/`ForAllValues:` `String*`/`Arn*` conditions (a context key
 *    the request lacks, e.g. `kms:ViaService` on a direct call, fails them). Refused: the service's own error
 *    (Lambda `AccessDeniedException` 403, EC2 `UnauthorizedOperation`, SNS `AuthorizationErrorException`,
 *    S3/CloudFront/CloudWatch `AccessDenied`, SSM/KMS/tagging `AccessDeniedException`). Calls outside any handler
 *    (tests, `rollback`) are allowed unless `outsidePermissions` is given. DynamoDB (a real local server) is not
 *    checked. *Source:* IAM User Guide, Policy evaluation logic; each service's Common Errors; EC2 API Error codes.
 * 2. **Layers in an update need GetLayerVersion**: `UpdateFunctionConfiguration` also needs `lambda:GetLayerVersion`
 *    on every layer of the request, and carries `lambda:Layer` for conditions. *Source:* Lambda Developer Guide,
 *    Adding layers to functions; Service Authorization Reference, AWS Lambda condition keys.
 * 3. **Tags need ListTags**: `GetFunction` returns `Tags` only to a caller allowed `lambda:ListTags` on the
 *    function; `ListTags` (Resource = function ARN) returns `{ Tags }`. *Source:* Lambda API Reference, GetFunction:
 *    "Lambda returns tag data only if you have explicit allow permissions for lambda:ListTags"; ListTags.
 * 4. **ListFunctions pages**: at most 50 per page (Marker/NextMarker) and omits State and LastUpdateStatus.
 *    *Source:* Lambda API Reference, ListFunctions.
 * 5. **Update replaces wholesale**: `UpdateFunctionConfiguration` replaces `Layers` and `Environment.Variables`
 *    wholesale and changes only `$LATEST`; published versions keep their own layers, variables and configuration.
 *    *Source:* Lambda API Reference, UpdateFunctionConfiguration; Lambda Developer Guide, Function versions.
 * 6. **Update limits**: more than 5 layers, two versions of one layer, an unknown layer version, layers on a
 *    container image, variables over 4 KB (message quotes the variables) or an invalid variable name:
 *    `InvalidParameterValueException`. *Source:* Lambda Developer Guide, Lambda quotas; Adding layers; Working with
 *    environment variables.
 * 7. **Update preconditions**: a stale `RevisionId`: `PreconditionFailedException`; an update in progress:
 *    `ResourceConflictException`; an accepted update bumps the RevisionId and is `InProgress` until settled
 *    (`updateSettle`), then `Successful` (or `Failed` by fault injection); an `InProgress` from the estate never
 *    ends. *Source:* Lambda API Reference, UpdateFunctionConfiguration; Lambda Developer Guide, Lambda function
 *    states.
 * 8. **Code signing**: `GetFunctionCodeSigningConfig` (empty ARN when none) and `GetCodeSigningConfig` answer the
 *    estate's `codeSigningConfig`; with `Enforce`, an update that adds an unsigned layer fails with
 *    `CodeVerificationFailedException` and changes nothing; `Warn` deploys. *Source:* Lambda Developer Guide, Using
 *    code signing ("any layers that you add to the function must also be signed"); botocore Lambda exceptions,
 *    CodeVerificationFailedException.
 * 9. **Qualifiers**: `GetFunction`/`GetFunctionConfiguration` take a version or alias (`Qualifier` or a qualified
 *    name); unknown: `ResourceNotFoundException`; `ListVersionsByFunction` ($LATEST first) and `ListAliases` (with
 *    `RoutingConfig`) page with Marker/NextMarker. *Source:* Lambda API Reference, GetFunctionConfiguration,
 *    ListVersionsByFunction, ListAliases.
 * 10. **Estate shapes**: `Environment.Error` (variables Lambda cannot decrypt) and fields given as `null` (e.g.
 *    `Architectures`) reach the engine as given. *Source:* Lambda API Reference, EnvironmentResponse /
 *    EnvironmentError.
 * 11. **Lambda@Edge**: CloudFront `ListDistributions` pages with Marker/NextMarker and MaxItems and shows each
 *    association as a `LambdaFunctionAssociation` of a qualified version ARN (default or path cache behavior); an
 *    update that leaves layers or variables on an associated function is accepted but recorded in `edgeBroken`;
 *    estates place such functions in us-east-1 only. *Source:* CloudFront API Reference, ListDistributions;
 *    CloudFront Developer Guide, Restrictions on Lambda@Edge (no layers, no environment variables, us-east-1,
 *    numbered versions).
 * 12. **KMS**: `GenerateMac`/`VerifyMac` (HMAC_SHA_256, a deterministic per-account secret per key) need an HMAC_256
 *    key (else `InvalidKeyUsageException`); `Encrypt`/`Decrypt` round-trip on a symmetric key with an opaque
 *    ciphertext; an unknown key: `NotFoundException`; the keys are the template's `AWS::KMS::Key`s and the key
 *    `MAC_KEY_ID` names. *Source:* KMS API Reference, GenerateMac, VerifyMac, Encrypt, Decrypt.
 * 13. **Control-plane rate**: 15 requests in any one-second window across ListFunctions, GetFunctionConfiguration,
 *    UpdateFunctionConfiguration and ListProvisionedConcurrencyConfigs; above: `TooManyRequestsException` (the SDK
 *    retries). *Source:* Lambda Developer Guide, Lambda quotas (API requests).
 * 14. **Route tables**: derived from `vpcEgress` (nat: NAT route; none: local only; unknown: transit gateway, or
 *    `UnauthorizedOperation` with `unknownEgress: 'denied'`). *Source:* Amazon VPC User Guide, Route tables; EC2 API
 *    Reference, DescribeRouteTables.
 * 15. **Metrics**: `GetMetricData` answers Throttles (Sum) and ConcurrentExecutions (Maximum); absent: no
 *    datapoints; `null`: StatusCode `InternalError`. *Source:* CloudWatch API Reference, GetMetricData /
 *    MetricDataResult.
 * 16. **Layers and SNS**: `GetLayerVersion` gives a `data:` URL of a real ZIP; `sns:Publish` checks the subject
 *    rules and the 10-attribute limit. *Source:* Lambda API Reference, GetLayerVersion; SNS API Reference, Publish.
 * 17. **Executions**: `states:DescribeExecution` answers the executions the local run registers (`setExecution`):
 *    RUNNING while one is in progress, SUCCEEDED/FAILED/ABORTED once it ended (a killed run is ABORTED), with
 *    `startDate`/`stopDate` as Dates; an unknown execution: `ExecutionDoesNotExist`; a malformed ARN: `InvalidArn`.
 *    *Source:* Step Functions API Reference, DescribeExecution.
 * 18. **Secrets Manager**: `GetSecretValue` by name, full ARN or partial ARN; the ARN ends in `-` and six random
 *    characters; authorized on the full ARN; an unknown secret: `ResourceNotFoundException` to a caller allowed on
 *    its name, `AccessDeniedException` otherwise. *Source:* Secrets Manager API Reference, CreateSecret (ARN),
 *    GetSecretValue (SecretId, Errors), Common Errors.
 * 19. **PublishLayerVersion** (issue 10; IAM action `lambda:PublishLayerVersion` on the layer ARN without version):
 *    `LayerName` a name (1-140 of `[a-zA-Z0-9-_]`) or a layer ARN; `Content` a `ZipFile` of at most 50 MB (over:
 *    `RequestEntityTooLargeException` 413) or an `S3Bucket`/`S3Key` of the account, a ZIP that unzips to at most
 *    250 MB; `CompatibleRuntimes` at most 15 Lambda runtime identifiers, `CompatibleArchitectures` at most 2 of
 *    `x86_64`, `arm64` (else `InvalidParameterValueException` with AWS's "1 validation error detected" message);
 *    `Description` at most 256 characters, `LicenseInfo` 512. Answers `LayerVersionArn` (and `Version`): the
 *    layer's highest version plus one (1 for a new layer), then readable with GetLayerVersion(ByArn).
 *    *Source:* Lambda API Reference, PublishLayerVersion (request syntax, constraints, errors); Lambda Developer
 *    Guide, Lambda quotas ("Deployment package (.zip file archive) size: 50 MB (zipped, when uploading through the
 *    Lambda API or SDKs) ... 250 MB (unzipped)"); Service Authorization Reference, Actions defined by AWS Lambda.
 *
 * For the benchmark and fault injection: `calls()`, `throttledCalls()`, `peakControlPlaneRate()`, `injectFault()`
 * (an error by name, on the nth matching call, or with a probability drawn from a seeded RNG; or an update that ends
 * `Failed`), `onCall()` (observe or interfere, e.g. deploy in between; a listener may throw the call's error),
 * `onCallEnd()` (after the answer), `changeFunction()` (an out-of-band deploy), `deleteFunction()`,
 * `createFunction()`, `tagFunction()` (changes by others) and a controllable clock (`ManualClock`).
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { createCipheriv, createDecipheriv, createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { Readable } from 'node:stream';
import * as cloudfront from '@aws-sdk/client-cloudfront';
import * as cloudwatch from '@aws-sdk/client-cloudwatch';
import * as ec2 from '@aws-sdk/client-ec2';
import * as kms from '@aws-sdk/client-kms';
import * as lambda from '@aws-sdk/client-lambda';
import * as tagging from '@aws-sdk/client-resource-groups-tagging-api';
import * as s3 from '@aws-sdk/client-s3';
import * as sns from '@aws-sdk/client-sns';
import * as sfn from '@aws-sdk/client-sfn';
import * as secretsmanager from '@aws-sdk/client-secrets-manager';
import * as ssm from '@aws-sdk/client-ssm';
import { strToU8, unzipSync, zipSync, type Zippable } from 'fflate';
import type { FunctionConfiguration, FunctionFacts, VpcEgress } from '../lambdas/shared/domain/types';
import {
  DEFAULT_ACCOUNT,
  DEFAULT_REGION,
  ENV_VARIABLES_LIMIT_BYTES,
  MAX_LAYERS,
  functionArn,
  seededRandom,
  type Estate,
  type EstateFunction,
} from './estate';
import { isAllowed, type CallerPolicy, type RequestContext } from './iam-policy';
import { patchSend, type SendPatch } from './sdk-send-patch';

export type { CallerPolicy, PolicyStatement } from './iam-policy';

/** Who is calling: the handler (its role) whose invocation made the call. Per async context, not global. */
const callers = new AsyncLocalStorage<string>();

/**
 * Runs `fn` as `caller` (a handler name, a key of `permissions`): every SDK call made inside it, in any async
 * continuation, is checked against that caller's policy. Concurrent invocations keep their own caller.
 */
export function runAsCaller<T>(caller: string, fn: () => T): T {
  return callers.run(caller, fn);
}

/** The caller of the current async context, or undefined outside any handler invocation. */
export function currentCaller(): string | undefined {
  return callers.getStore();
}

/** The simulation's notion of time (epoch milliseconds). */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** A clock that moves only when told to: deterministic tests of rate windows and update settling. */
export class ManualClock implements Clock {
  private current: number;
  constructor(start = Date.parse('2025-01-06T09:00:00.000Z')) {
    this.current = start;
  }
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

/** A fault to inject. Matching calls are counted per rule. */
export interface FaultRule {
  /** `service:Operation` (e.g. `lambda:UpdateFunctionConfiguration`), or `*` for every operation. */
  operation: string;
  /** Only calls about this function (FunctionName, name or ARN). */
  functionName?: string;
  /** The exception to throw, by the SDK's name (e.g. `ServiceException`, `TooManyRequestsException`). */
  error?: string;
  message?: string;
  /** HTTP status of the injected error. @default by name: 429 throttling, 500 service errors, else 400 */
  httpStatusCode?: number;
  /** Only the nth matching call (1-based). */
  nth?: number;
  /** Each matching call with this probability, drawn from the account's seeded RNG. */
  probability?: number;
  /** At most this many faults from this rule. @default unlimited */
  times?: number;
  /** For UpdateFunctionConfiguration: accept the update, then let it end `Failed` with this reason. */
  updateFails?: string;
}

export interface FaultHandle {
  /** How many times this rule has fired. */
  readonly fired: () => number;
  remove(): void;
}

/** A layer version the simulated account holds. */
export interface LayerDefinition {
  layerVersionArn: string;
  /** Files in the layer's ZIP (paths relative to /opt). */
  files?: Record<string, string>;
  compatibleRuntimes?: string[];
  compatibleArchitectures?: string[];
  description?: string;
  /** Signed by a publisher that code signing configs allow. @default false */
  signed?: boolean;
}

/** A KMS key the simulated account holds. */
export interface KmsKeyDefinition {
  /** `arn:aws:kms:REGION:ACCOUNT:key/ID` */
  arn: string;
  /** @default SYMMETRIC_DEFAULT (ENCRYPT_DECRYPT); HMAC_256 is a GENERATE_VERIFY_MAC key */
  keySpec?: 'SYMMETRIC_DEFAULT' | 'HMAC_256';
  /** Alias names (`alias/...`). */
  aliases?: string[];
}

export interface SimulatedAccountOptions {
  /** The functions (and SSM parameter values) of the account. */
  estate: Estate | FunctionFacts[];
  /** @default the estate's region, else eu-west-1 */
  region?: string;
  /** @default the estate's account, else 123456789012 */
  account?: string;
  /** @default systemClock */
  clock?: Clock;
  /** Seed of the RNG behind fault probabilities and generated ids. @default 1 */
  seed?: number;
  /** Layer versions besides those the estate's functions carry (which get a placeholder ZIP). */
  layers?: LayerDefinition[];
  /**
   * The identity policy of each caller (see `runAsCaller`), e.g. from the synthesized template
   * (local/iam-policy.ts `functionPolicies`). A call made as a caller is allowed only when its policy allows the IAM
   * action on the resource; a caller without an entry may do nothing. @default no checks at all
   */
  permissions?: Record<string, CallerPolicy>;
  /** The policy for calls made outside any caller context (tests, CLI commands). @default everything allowed */
  outsidePermissions?: CallerPolicy;
  /** KMS keys the account holds (the stack's CMK, its HMAC key). */
  kmsKeys?: KmsKeyDefinition[];
  /** Secrets Manager secrets (name → SecretString), e.g. the Prisma Cloud Console credentials. @default none */
  secrets?: Record<string, string>;
  /** Topics that exist; publishing elsewhere is NotFoundException. @default any topic exists */
  topicArns?: string[];
  /** Buckets that exist; other buckets are NoSuchBucket. @default any bucket exists */
  buckets?: string[];
  /** Requests per one-second window across the rate-limited control-plane operations. @default 15 */
  controlPlaneRateLimit?: number;
  /**
   * Which operations share `controlPlaneRateLimit`. `core` (default): the four the engine paces (ListFunctions,
   * GetFunctionConfiguration, UpdateFunctionConfiguration, ListProvisionedConcurrencyConfigs). `quota`: as the
   * Lambda quota is written, every Lambda API call except invocation, GetFunction and GetPolicy ("Remainder of the
   * control plane API requests (excludes invocation, GetFunction, and GetPolicy requests): 15 requests per
   * second"), e.g. also ListTags, ListAliases, GetFunctionConcurrency, GetFunctionCodeSigningConfig,
   * GetLayerVersion. *Source:* Lambda Developer Guide, Lambda quotas, "API requests". The benchmark uses `quota`.
   */
  controlPlaneScope?: 'core' | 'quota';
  /**
   * Per-operation limits (`service:Operation` → requests in any one-second window), enforced like the control
   * plane's: above, the service's throttling error (Lambda `TooManyRequestsException`, CloudWatch `Throttling`).
   * AWS: GetFunction 100/s (Lambda quotas, "GetFunction API requests"); GetMetricData 50 TPS per Region (CloudWatch
   * service quotas, "GetMetricData: 50 transactions per second"). @default none (the benchmark sets both)
   */
  operationRateLimits?: Record<string, number>;
  /**
   * Latency of each answer, on a clock that can sleep (the local run's virtual clock): `ms(operation)` milliseconds
   * pass between a call's arrival (where limits are counted) and its answer. @default none (answers at once)
   */
  latency?: { sleep(ms: number): Promise<void>; ms(operation: string): number };
  /**
   * What `vpcEgress: "unknown"` looks like. `transit-gateway` (default): the subnet's default route goes to a transit
   * gateway, which the account cannot follow to a NAT (as with a central egress VPC). `denied`: DescribeRouteTables
   * requests that name the subnet or its VPC fail with UnauthorizedOperation. (AWS has no per-subnet permission on
   * DescribeRouteTables: an account-wide denial is a fault to inject, `{ operation: 'ec2:DescribeRouteTables',
   * error: 'UnauthorizedOperation' }`.)
   */
  unknownEgress?: 'transit-gateway' | 'denied';
  /**
   * When an update started here leaves `InProgress`: after `reads` reads of the function have seen it in progress,
   * or `afterMs` of the clock, whichever comes first. @default { reads: 1, afterMs: DEFAULT_SETTLE_AFTER_MS }
   */
  updateSettle?: { reads?: number; afterMs?: number };
}

/** When an accepted update settles if nobody reads the function (see `updateSettle`). */
export const DEFAULT_SETTLE_AFTER_MS = 5 * 60 * 1000;

export interface PublishedMessage {
  topicArn: string;
  subject: string | null;
  message: string;
  attributes: Record<string, { DataType?: string; StringValue?: string }>;
  publishedAt: string;
}

export interface CallEvent {
  /** `service:Operation` */
  operation: string;
  input: Readonly<Record<string, unknown>>;
}

/** A call that has been answered: `ok` false when it threw (`error` is the exception's name). */
export interface CallEndEvent extends CallEvent {
  ok: boolean;
  error?: string;
}

/** Step Functions execution statuses (DescribeExecution). */
export type ExecutionStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'TIMED_OUT' | 'ABORTED' | 'PENDING_REDRIVE';

/** An execution the account knows (the local run registers its executions). */
export interface ExecutionRecord {
  executionArn: string;
  stateMachineArn: string;
  name: string;
  status: ExecutionStatus;
  startDate: number;
  stopDate?: number;
  input?: string;
  error?: string;
  cause?: string;
}

/** The four operations that share Lambda's ~15 requests/second account budget. */
export const CONTROL_PLANE_OPERATIONS: ReadonlySet<string> = new Set([
  'lambda:ListFunctions',
  'lambda:GetFunctionConfiguration',
  'lambda:UpdateFunctionConfiguration',
  'lambda:ListProvisionedConcurrencyConfigs',
]);

/** Lambda calls outside the shared control-plane quota (Lambda quotas: "excludes invocation, GetFunction, and GetPolicy"). */
export const QUOTA_EXEMPT_OPERATIONS: ReadonlySet<string> = new Set([
  'lambda:GetFunction',
  'lambda:GetPolicy',
  'lambda:Invoke',
  'lambda:InvokeWithResponseStream',
]);

const MIDDLEWARE_NAME = 'zeroImpactSimulatedAccount';
/** Where an operation puts raw bytes that the dispatcher answers as a streaming `Body` (after cloning the rest). */
const RAW_BODY = '__rawBody';
const LIST_FUNCTIONS_PAGE = 50;

type ExceptionOptions = { message: string; $metadata: ResponseMetadata; [key: string]: unknown };
type ExceptionCtor = new (options: ExceptionOptions) => Error;
type BaseExceptionCtor = new (options: ExceptionOptions & { name: string; $fault: 'client' | 'server' }) => Error;
interface ResponseMetadata {
  httpStatusCode: number;
  requestId: string;
  attempts: number;
  totalRetryDelay: number;
}

interface ServiceBinding {
  prefix: string;
  client: { prototype: object; name: string };
  exceptions: Record<string, unknown>;
  base: unknown;
}

const SERVICES: ServiceBinding[] = [
  { prefix: 'lambda', client: lambda.LambdaClient, exceptions: lambda, base: lambda.LambdaServiceException },
  {
    prefix: 'tag',
    client: tagging.ResourceGroupsTaggingAPIClient,
    exceptions: tagging,
    base: tagging.ResourceGroupsTaggingAPIServiceException,
  },
  {
    prefix: 'cloudwatch',
    client: cloudwatch.CloudWatchClient,
    exceptions: cloudwatch,
    base: cloudwatch.CloudWatchServiceException,
  },
  { prefix: 'ec2', client: ec2.EC2Client, exceptions: ec2, base: ec2.EC2ServiceException },
  { prefix: 'sns', client: sns.SNSClient, exceptions: sns, base: sns.SNSServiceException },
  { prefix: 's3', client: s3.S3Client, exceptions: s3, base: s3.S3ServiceException },
  { prefix: 'ssm', client: ssm.SSMClient, exceptions: ssm, base: ssm.SSMServiceException },
  {
    prefix: 'secretsmanager',
    client: secretsmanager.SecretsManagerClient,
    exceptions: secretsmanager,
    base: secretsmanager.SecretsManagerServiceException,
  },
  {
    prefix: 'cloudfront',
    client: cloudfront.CloudFrontClient,
    exceptions: cloudfront,
    base: cloudfront.CloudFrontServiceException,
  },
  { prefix: 'kms', client: kms.KMSClient, exceptions: kms, base: kms.KMSServiceException },
  { prefix: 'states', client: sfn.SFNClient, exceptions: sfn, base: sfn.SFNServiceException },
];

/**
 * The error each service returns for an implicit or explicit deny, and its HTTP status (each service's API
 * reference, "Common Errors"; EC2: "Error codes", UnauthorizedOperation; SNS Publish: AuthorizationError 403).
 */
const ACCESS_DENIED: Record<string, { name: string; status: number }> = {
  lambda: { name: 'AccessDeniedException', status: 403 },
  tag: { name: 'AccessDeniedException', status: 400 },
  cloudwatch: { name: 'AccessDenied', status: 403 },
  ec2: { name: 'UnauthorizedOperation', status: 403 },
  sns: { name: 'AuthorizationErrorException', status: 403 },
  s3: { name: 'AccessDenied', status: 403 },
  ssm: { name: 'AccessDeniedException', status: 400 },
  // Secrets Manager API Reference, Common Errors: AccessDeniedException, HTTP 400.
  secretsmanager: { name: 'AccessDeniedException', status: 400 },
  cloudfront: { name: 'AccessDenied', status: 403 },
  kms: { name: 'AccessDeniedException', status: 400 },
  states: { name: 'AccessDeniedException', status: 400 },
};

/** SDK command names whose IAM action differs (Service Authorization Reference, "Actions defined by AWS Lambda"). */
const IAM_ACTION: Record<string, string> = {
  'lambda:GetLayerVersionByArn': 'lambda:GetLayerVersion',
  // Amazon S3 API reference, ListObjectsV2: "you must have permission to perform the s3:ListBucket action", on the
  // bucket (not its objects), with the request's Prefix as the condition key s3:prefix.
  's3:ListObjectsV2': 's3:ListBucket',
};

const STATUS_BY_ERROR: Record<string, number> = {
  TooManyRequestsException: 429,
  ThrottledException: 400,
  PreconditionFailedException: 412,
  ResourceConflictException: 409,
  ResourceNotFoundException: 404,
  NotFoundException: 404,
  NoSuchKey: 404,
  NoSuchBucket: 404,
  UnauthorizedOperation: 403,
  AccessDenied: 403,
  AccessDeniedException: 403,
  ServiceException: 500,
  InternalServiceException: 500,
  InternalErrorException: 500,
  InternalServerError: 500,
  InternalError: 500,
};

/** The middleware stack surface the simulator uses (every smithy client has it). */
interface PatchableClient {
  middlewareStack: {
    add(middleware: unknown, options: { step: string; priority: string; name: string }): void;
    remove(name: string): boolean;
  };
  handlers?: unknown;
}

interface SimFunction {
  configuration: FunctionConfiguration & { FunctionName: string; FunctionArn: string };
  tags: Record<string, string>;
  provisioned: Array<Record<string, unknown>>;
  reserved: number | undefined;
  /** undefined: no datapoints; null: the metric cannot be read (GetMetricData StatusCode InternalError). */
  throttles: number | null | undefined;
  peak: number | null | undefined;
  egress: VpcEgress;
  pendingUpdate?: { readsLeft: number; settleAt: number | undefined; failReason: string | undefined };
  /** Published versions by number: each keeps its own configuration; updates change only $LATEST. */
  versions: Map<string, SimFunction['configuration']>;
  aliases: Array<{ name: string; functionVersion: string; routing?: Record<string, number>; revisionId: string }>;
  codeSigningConfigArn: string | undefined;
  edge: Array<{ distributionId: string; eventType: string; version: string; pathPattern?: string }>;
}

interface SimKey {
  arn: string;
  id: string;
  spec: 'SYMMETRIC_DEFAULT' | 'HMAC_256';
  secret: Buffer;
}

interface SimLayer {
  arn: string;
  files: Record<string, string>;
  compatibleRuntimes: string[] | undefined;
  compatibleArchitectures: string[] | undefined;
  description: string;
  signed?: boolean;
  zip?: Uint8Array;
}

interface RouteTable {
  RouteTableId: string;
  VpcId: string;
  OwnerId: string;
  Routes: Array<Record<string, string>>;
  Associations: Array<Record<string, unknown>>;
  Tags: [];
  PropagatingVgws: [];
}

interface ActiveFault {
  rule: FaultRule;
  matched: number;
  fired: number;
}

let installedAccount: SimulatedAccount | undefined;

/**
 * A deep copy in the caller's realm. Not structuredClone: under jest that builds objects of another realm, which
 * code checking for plain objects does not recognise.
 */
function clone<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => clone(v)) as T;
  if (value instanceof Date) return new Date(value.getTime()) as T;
  if (value instanceof Uint8Array) return new Uint8Array(value) as T;
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, clone(v)])) as T;
  }
  return value;
}

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'Error';
}

function shortHash(text: string, length = 17): string {
  return createHash('sha256').update(text).digest('hex').slice(0, length);
}

function lastModified(epochMs: number): string {
  return new Date(epochMs).toISOString().replace('Z', '+0000');
}

function encodeToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset }), 'utf8').toString('base64');
}

function decodeToken(token: string): number | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(token, 'base64').toString('utf8')) as { offset?: unknown };
    return typeof parsed.offset === 'number' && Number.isInteger(parsed.offset) && parsed.offset >= 0
      ? parsed.offset
      : undefined;
  } catch {
    return undefined;
  }
}

function streamingBody(bytes: Uint8Array): Readable & {
  transformToString(encoding?: BufferEncoding): Promise<string>;
  transformToByteArray(): Promise<Uint8Array>;
} {
  const stream = Readable.from([Buffer.from(bytes)]);
  return Object.assign(stream, {
    transformToString: async (encoding: BufferEncoding = 'utf8') => Buffer.from(bytes).toString(encoding),
    transformToByteArray: async () => new Uint8Array(bytes),
    transformToWebStream: () => Readable.toWeb(Readable.from([Buffer.from(bytes)])),
  });
}

/** The simulated account. See the module comment. */
export class SimulatedAccount {
  readonly region: string;
  readonly account: string;
  readonly clock: Clock;
  /** Every SNS message published, in order. */
  readonly published: PublishedMessage[] = [];
  /**
   * Lambda@Edge functions whose $LATEST got layers or variables while associated with a distribution: Lambda
   * accepts the update, but the team's next publish-and-associate fails (Lambda@Edge supports neither; CloudFront
   * Developer Guide, "Restrictions on Lambda@Edge"). The engine must never cause one.
   */
  readonly edgeBroken = new Set<string>();
  /** Calls refused by the callers' policies, as `caller service:Action resource`. */
  readonly denied: string[] = [];

  private readonly functions = new Map<string, SimFunction>();
  private readonly order: string[] = [];
  private readonly layers = new Map<string, SimLayer>();
  private readonly parameters: Map<string, string>;
  /** Each parameter's Version: 1 when created, +1 on every overwrite (SSM PutParameter with Overwrite). */
  private readonly parameterVersions = new Map<string, number>();
  private readonly objects = new Map<string, Uint8Array>();
  private readonly topics: Set<string> | undefined;
  private readonly buckets: Set<string> | undefined;
  private readonly rateLimit: number;
  private readonly settleReads: number;
  private readonly settleAfterMs: number | undefined;
  private readonly unknownEgress: 'transit-gateway' | 'denied';
  private readonly random: () => number;
  private readonly routeTables: RouteTable[] = [];
  private readonly permissions: Record<string, CallerPolicy> | undefined;
  private readonly outsidePermissions: CallerPolicy | undefined;
  private readonly codeSigningConfigs = new Map<string, 'Warn' | 'Enforce'>();
  private readonly keys = new Map<string, SimKey>();
  private readonly keyAliases = new Map<string, string>();
  private readonly seed: number;
  private readonly deniedSubnets = new Set<string>();
  private readonly deniedVpcs = new Set<string>();
  private readonly counters = new Map<string, number>();
  private readonly throttled = new Map<string, number>();
  private controlPlaneWindow: number[] = [];
  private demandWindow: number[] = [];
  private readonly operationWindows = new Map<string, number[]>();
  private readonly controlPlaneScope: 'core' | 'quota';
  private readonly operationRateLimits: Record<string, number>;
  private readonly latency: SimulatedAccountOptions['latency'];
  private readonly metricsRequested = { count: 0 };
  private peakRate = 0;
  private readonly faults = new Set<ActiveFault>();
  private readonly listeners = new Set<(event: CallEvent) => void>();
  private readonly endListeners = new Set<(event: CallEndEvent) => void>();
  private readonly executions = new Map<string, ExecutionRecord>();
  private readonly patches: SendPatch[] = [];
  private readonly attachedClients = new Set<PatchableClient>();
  private idCounter = 0;

  constructor(options: SimulatedAccountOptions) {
    const estate: Estate = Array.isArray(options.estate)
      ? { functions: options.estate, ssmParameters: {}, region: DEFAULT_REGION, account: DEFAULT_ACCOUNT }
      : options.estate;
    this.region = options.region ?? estate.region;
    this.account = options.account ?? estate.account;
    this.clock = options.clock ?? systemClock;
    this.random = seededRandom(options.seed ?? 1);
    this.seed = options.seed ?? 1;
    this.permissions = options.permissions;
    this.outsidePermissions = options.outsidePermissions;
    for (const key of options.kmsKeys ?? []) this.addKey(key);
    for (const [name, value] of Object.entries(options.secrets ?? {})) this.putSecret(name, value);
    this.parameters = new Map(Object.entries(estate.ssmParameters));
    this.topics = options.topicArns === undefined ? undefined : new Set(options.topicArns);
    this.buckets = options.buckets === undefined ? undefined : new Set(options.buckets);
    this.rateLimit = options.controlPlaneRateLimit ?? 15;
    this.controlPlaneScope = options.controlPlaneScope ?? 'core';
    this.operationRateLimits = options.operationRateLimits ?? {};
    this.latency = options.latency;
    this.settleReads = options.updateSettle?.reads ?? (options.updateSettle?.afterMs === undefined ? 1 : Infinity);
    // An update AWS accepted settles on its own, whether anyone reads the function or not ("Lambda function states":
    // LastUpdateStatus goes from InProgress to Successful or Failed, typically in seconds, a VPC function's ENI work
    // in minutes). A run killed right after the update must find it settled an hour later.
    this.settleAfterMs = options.updateSettle?.afterMs ?? DEFAULT_SETTLE_AFTER_MS;
    this.unknownEgress = options.unknownEgress ?? 'transit-gateway';
    for (const facts of estate.functions) this.addFunction(facts);
    for (const layer of options.layers ?? []) {
      this.layers.set(layer.layerVersionArn, {
        arn: layer.layerVersionArn,
        files: layer.files ?? {},
        compatibleRuntimes: layer.compatibleRuntimes,
        compatibleArchitectures: layer.compatibleArchitectures,
        description: layer.description ?? '',
        signed: layer.signed ?? false,
      });
    }
    this.buildRouteTables();
  }

  // ----- installation -------------------------------------------------------------------------------------------

  get isInstalled(): boolean {
    return installedAccount === this;
  }

  /** Answers the SDK clients' calls from this account until `uninstall()`. One account at a time. */
  install(): this {
    if (installedAccount === this) return this;
    if (installedAccount !== undefined) throw new Error('another SimulatedAccount is installed; uninstall it first');
    installedAccount = this; // eslint-disable-line @typescript-eslint/no-this-alias -- the one installed account
    for (const service of SERVICES) {
      const middleware = this.middlewareFor(service);
      this.patches.push(
        patchSend<PatchableClient>([service.client.prototype], (client) => this.attach(client, middleware)),
      );
    }
    return this;
  }

  /** Restores the SDK: prototypes as they were, the middleware removed from every client it was added to. */
  uninstall(): void {
    if (installedAccount !== this) return;
    for (const patch of this.patches.reverse()) patch.restore();
    this.patches.length = 0;
    for (const client of this.attachedClients) {
      client.middlewareStack.remove(MIDDLEWARE_NAME);
      delete client.handlers;
    }
    this.attachedClients.clear();
    installedAccount = undefined;
  }

  private attach(client: PatchableClient, middleware: unknown): void {
    if (this.attachedClients.has(client)) return;
    client.middlewareStack.remove(MIDDLEWARE_NAME);
    client.middlewareStack.add(middleware, { step: 'deserialize', priority: 'high', name: MIDDLEWARE_NAME });
    // Clients that cache resolved handlers (cacheMiddleware) must rebuild them with the middleware.
    delete client.handlers;
    this.attachedClients.add(client);
  }

  private middlewareFor(service: ServiceBinding) {
    return (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) =>
      async (args: { input?: Record<string, unknown> }) => {
        if (installedAccount !== this) return next(args);
        const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
        const input = args.input ?? {};
        let output: Record<string, unknown>;
        const latency = this.latency;
        try {
          output = this.dispatch(service, operation, input);
        } catch (error) {
          if (latency !== undefined) await latency.sleep(latency.ms(`${service.prefix}:${operation}`));
          this.callEnded({ operation: `${service.prefix}:${operation}`, input, ok: false, error: errorName(error) });
          throw error;
        }
        if (latency !== undefined) await latency.sleep(latency.ms(`${service.prefix}:${operation}`));
        this.callEnded({ operation: `${service.prefix}:${operation}`, input, ok: true });
        return {
          output: { ...output, $metadata: this.metadata(200) },
          response: { statusCode: 200, headers: {}, body: undefined },
        };
      };
  }

  // ----- observation and fault injection ------------------------------------------------------------------------

  /** Attempts per `service:Operation` (every attempt, including throttled and faulted ones). */
  calls(): Record<string, number> {
    return Object.fromEntries([...this.counters.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Attempts rejected with TooManyRequestsException by the control-plane rate limit, per operation. */
  throttledCalls(): Record<string, number> {
    return Object.fromEntries(this.throttled.entries());
  }

  /**
   * The most control-plane requests attempted within any one-second window so far (accepted or throttled): the
   * demand a benchmark compares with the account's 15/s budget.
   */
  peakControlPlaneRate(): number {
    return this.peakRate;
  }

  resetCounters(): void {
    this.counters.clear();
    this.throttled.clear();
    this.peakRate = 0;
    this.metricsRequested.count = 0;
  }

  /** Metrics requested so far: MetricDataQueries of GetMetricData, one per GetMetricStatistics (what CloudWatch bills). */
  metricsRequestedCount(): number {
    return this.metricsRequested.count;
  }

  /** Whether `key` (`service:Operation`) counts against the control-plane rate limit (see `controlPlaneScope`). */
  isControlPlane(key: string): boolean {
    if (this.controlPlaneScope === 'core') return CONTROL_PLANE_OPERATIONS.has(key);
    return key.startsWith('lambda:') && !QUOTA_EXEMPT_OPERATIONS.has(key);
  }

  injectFault(rule: FaultRule): FaultHandle {
    const fault: ActiveFault = { rule, matched: 0, fired: 0 };
    this.faults.add(fault);
    return { fired: () => fault.fired, remove: () => this.faults.delete(fault) };
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /**
   * Called on every attempt, before faults and limits apply; may change the account (e.g. `changeFunction`). An
   * error the listener throws is the call's answer (throw `error()`'s SDK exceptions).
   */
  onCall(listener: (event: CallEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Called once every attempt has been answered (or has thrown); may change the account. */
  onCallEnd(listener: (event: CallEndEvent) => void): () => void {
    this.endListeners.add(listener);
    return () => this.endListeners.delete(listener);
  }

  private callEnded(event: CallEndEvent): void {
    for (const listener of this.endListeners) listener(event);
  }

  // ----- Step Functions executions -------------------------------------------------------------------------------

  /** Registers or updates an execution that `states:DescribeExecution` answers for. */
  setExecution(record: ExecutionRecord): void {
    this.executions.set(record.executionArn, { ...record });
  }

  execution(executionArn: string): ExecutionRecord | undefined {
    const record = this.executions.get(executionArn);
    return record === undefined ? undefined : { ...record };
  }

  // ----- changes by others (not an AWS call of the engine: not counted) -----------------------------------------

  /** Deletes a function (someone else's DeleteFunction): later calls about it are ResourceNotFoundException. */
  deleteFunction(name: string): void {
    this.mustGet(name);
    this.functions.delete(name);
    this.order.splice(this.order.indexOf(name), 1);
  }

  /** Creates a function (someone else's CreateFunction), with the estate's defaults for what it leaves out. */
  createFunction(facts: EstateFunction): void {
    const name = String(facts.configuration.FunctionName);
    if (this.functions.has(name)) throw new Error(`function ${name} exists already`);
    this.addFunction(facts);
  }

  /** Merges tags into a function's tags (someone else's TagResource). */
  tagFunction(name: string, tags: Record<string, string>): void {
    const fn = this.mustGet(name);
    Object.assign(fn.tags, tags);
  }

  // ----- direct access (not an AWS call: not counted) -----------------------------------------------------------

  /** Every function's configuration as GetFunctionConfiguration returns it, in estate order. */
  functionConfigurations(): FunctionConfiguration[] {
    return this.order.map((name) => clone(this.mustGet(name).configuration));
  }

  functionConfiguration(name: string): FunctionConfiguration | undefined {
    const fn = this.functions.get(name);
    return fn === undefined ? undefined : clone(fn.configuration);
  }

  /** A published version's configuration (GetFunctionConfiguration with Qualifier). */
  versionConfiguration(name: string, version: string): FunctionConfiguration | undefined {
    const config = this.functions.get(name)?.versions.get(version);
    return config === undefined ? undefined : clone(config);
  }

  /** Adds a KMS key (e.g. the stack's HMAC key once the template names it). Idempotent per ARN. */
  addKey(definition: KmsKeyDefinition): void {
    const id = definition.arn.slice(definition.arn.lastIndexOf('/') + 1);
    if (!this.keys.has(definition.arn)) {
      this.keys.set(definition.arn, {
        arn: definition.arn,
        id,
        spec: definition.keySpec ?? 'SYMMETRIC_DEFAULT',
        // Per account and key, deterministic for a seed: the same estate gives the same MACs on every run.
        secret: createHash('sha256').update(`simulated-kms:${this.account}:${definition.arn}:${this.seed}`).digest(),
      });
    }
    for (const alias of definition.aliases ?? []) this.keyAliases.set(alias, definition.arn);
  }

  /** Whether the current caller (see `runAsCaller`) may perform `action` on `resource`. */
  callerMay(action: string, resource: string, context: RequestContext = {}): boolean {
    const policy = this.policyOfCaller();
    return policy === undefined || isAllowed(policy.policy, action, resource, context);
  }

  /** An out-of-band deployment (someone else's): applies the fields and bumps the RevisionId. */
  changeFunction(name: string, patch: Partial<FunctionConfiguration>): void {
    const fn = this.mustGet(name);
    Object.assign(fn.configuration, clone(patch));
    fn.configuration.RevisionId = this.newId();
    fn.configuration.LastModified = lastModified(this.clock.now());
  }

  s3Object(bucket: string, key: string): Uint8Array | undefined {
    const body = this.objects.get(`${bucket}/${key}`);
    return body === undefined ? undefined : new Uint8Array(body);
  }

  /** The keys of a bucket's objects under `prefix`, sorted. */
  s3Keys(bucket: string, prefix = ''): string[] {
    return [...this.objects.keys()]
      .filter((k) => k.startsWith(`${bucket}/${prefix}`))
      .map((k) => k.slice(bucket.length + 1))
      .sort();
  }

  putS3Object(bucket: string, key: string, body: string | Uint8Array): void {
    this.objects.set(`${bucket}/${key}`, typeof body === 'string' ? strToU8(body) : new Uint8Array(body));
  }

  /**
   * Overwrites (or creates) a parameter. Its Version goes up by one on every overwrite, as SSM's does ("Each time you
   * edit a parameter, Parameter Store creates a new version": Systems Manager user guide, parameter versions), so a
   * reader that keys on Version sees the change.
   */
  setParameter(name: string, value: string): void {
    const existed = this.parameters.has(name);
    this.parameters.set(name, value);
    this.parameterVersions.set(name, existed ? (this.parameterVersions.get(name) ?? 1) + 1 : 1);
  }

  // ----- Secrets Manager (issue 10) -------------------------------------------------------------------------------
  // Rule 18. A secret's ARN is `arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX`: the name followed by a
  // hyphen and six random characters (Secrets Manager API Reference, CreateSecret: ARN, "The ARN includes the name of
  // the secret followed by six random characters"), here derived from the seed. GetSecretValue takes the name, the
  // full ARN or a partial ARN without the suffix (API Reference, GetSecretValue: SecretId) and is authorized on the
  // full ARN, so an IAM grant `secret:NAME-??????` covers it. A secret that does not exist answers
  // ResourceNotFoundException ("Secrets Manager can't find the resource that you asked for.") to a caller allowed on
  // its would-be ARN and AccessDeniedException otherwise ("you receive either a ResourceNotFoundException or an
  // AccessDeniedException error, depending on your permissions", API Reference, SecretId); the check is made on
  // `secret:NAME`, which a suffixed grant does not match. Errors: API Reference, GetSecretValue, Errors; Common Errors.

  private readonly secrets = new Map<string, { arn: string; value: string; versionId: string }>();

  /** Creates (or overwrites) a secret; returns its ARN. */
  putSecret(name: string, secretString: string): string {
    const existing = this.secrets.get(name);
    const suffix = Buffer.from(shortHash(`secret:${this.account}:${name}:${this.seed}`, 12), 'hex')
      .toString('base64')
      .replace(/[^A-Za-z0-9]/g, 'x')
      .slice(0, 6);
    const arn = existing?.arn ?? `arn:aws:secretsmanager:${this.region}:${this.account}:secret:${name}-${suffix}`;
    this.secrets.set(name, { arn, value: secretString, versionId: this.newId() });
    return arn;
  }

  /** Deletes a secret (GetSecretValue then answers ResourceNotFoundException). */
  deleteSecret(name: string): void {
    this.secrets.delete(name);
  }

  /** The secret a SecretId names (name, full ARN, or partial ARN without the suffix), or undefined. */
  private findSecret(secretId: string): { name: string; arn: string; value: string; versionId: string } | undefined {
    for (const [name, secret] of this.secrets) {
      const partial = secret.arn.slice(0, secret.arn.length - 7);
      if (secretId === name || secretId === secret.arn || secretId === partial) return { name, ...secret };
    }
    return undefined;
  }

  /** The ARN IAM checks for a SecretId: the full ARN when the secret exists, else what the request names. */
  private secretResource(secretId: string): string {
    const found = this.findSecret(secretId);
    if (found !== undefined) return found.arn;
    return secretId.startsWith('arn:')
      ? secretId
      : `arn:aws:secretsmanager:${this.region}:${this.account}:secret:${secretId}`;
  }

  // ----- dispatch -----------------------------------------------------------------------------------------------

  private dispatch(
    service: ServiceBinding,
    operation: string,
    input: Record<string, unknown>,
  ): Record<string, unknown> {
    const key = `${service.prefix}:${operation}`;
    this.counters.set(key, (this.counters.get(key) ?? 0) + 1);
    for (const listener of this.listeners) listener({ operation: key, input });
    const fault = this.matchFault(key, input);
    if (fault?.error !== undefined) {
      throw this.error(
        service,
        fault.error,
        fault.message ?? `Injected fault: ${fault.error}`,
        {},
        fault.httpStatusCode,
      );
    }
    this.authorize(service, key, input);
    if (this.isControlPlane(key)) this.admitControlPlane(service, key);
    const operationLimit = this.operationRateLimits[key];
    if (operationLimit !== undefined) this.admitOperation(service, key, operationLimit);
    const handler = this.operations[key];
    if (handler === undefined) {
      throw this.error(
        service,
        'UnknownOperationException',
        `the simulated account does not implement ${key}; add it to local/simulated-account.ts`,
      );
    }
    const { [RAW_BODY]: rawBody, ...result } = handler(input, service, fault);
    const output = clone(result);
    if (rawBody instanceof Uint8Array) output['Body'] = streamingBody(rawBody);
    return output;
  }

  private policyOfCaller(): { caller: string; policy: CallerPolicy } | undefined {
    const caller = callers.getStore();
    if (caller === undefined) {
      return this.outsidePermissions === undefined ? undefined : { caller: 'outside', policy: this.outsidePermissions };
    }
    if (this.permissions === undefined) return undefined;
    return { caller, policy: this.permissions[caller] ?? { role: caller, statements: [] } };
  }

  /** The resources (ARNs) an operation acts on, as IAM evaluates them; `*` for actions without resource types. */
  private resourcesOf(key: string, input: Record<string, unknown>): string[] {
    const [prefix] = key.split(':') as [string];
    const text = (name: string): string => String(input[name] ?? '');
    switch (prefix) {
      case 'lambda': {
        if (key === 'lambda:ListFunctions') return ['*'];
        if (key === 'lambda:GetLayerVersion') {
          const name = text('LayerName');
          const base = name.startsWith('arn:') ? name : `arn:aws:lambda:${this.region}:${this.account}:layer:${name}`;
          return [`${base}:${text('VersionNumber')}`];
        }
        if (key === 'lambda:GetLayerVersionByArn') return [text('Arn')];
        if (key === 'lambda:GetCodeSigningConfig') return [text('CodeSigningConfigArn')];
        // PublishLayerVersion (issue 10): the layer, without version.
        if (key === 'lambda:PublishLayerVersion') return [this.layerBaseArn(text('LayerName'))];
        const raw = key === 'lambda:ListTags' ? text('Resource') : text('FunctionName');
        const arn = functionArn(this.region, this.account, this.nameOf(raw));
        const qualifier = this.qualifierOf(raw, input['Qualifier']);
        return [qualifier === undefined ? arn : `${arn}:${qualifier}`];
      }
      case 'sns':
        return [text('TopicArn') || text('TargetArn')];
      case 's3':
        if (key === 's3:ListObjectsV2') return [`arn:aws:s3:::${text('Bucket')}`];
        return [`arn:aws:s3:::${text('Bucket')}/${text('Key')}`];
      case 'ssm': {
        const names = key === 'ssm:GetParameters' ? ((input['Names'] as unknown[] | undefined) ?? []) : [input['Name']];
        return names.map((n) => {
          const name = this.parameterName(String(n ?? ''));
          return `arn:aws:ssm:${this.region}:${this.account}:parameter${name.startsWith('/') ? '' : '/'}${name}`;
        });
      }
      case 'states':
        return [text('executionArn')];
      case 'secretsmanager':
        return [this.secretResource(text('SecretId'))];
      case 'kms': {
        const keyId = input['KeyId'];
        if (typeof keyId === 'string') return [this.findKey(keyId)?.arn ?? keyId];
        const blob = input['CiphertextBlob'];
        const fromBlob = blob instanceof Uint8Array ? this.keyOfCiphertext(blob) : undefined;
        return [fromBlob?.arn ?? '*'];
      }
      default:
        return ['*'];
    }
  }

  /**
   * Refuses a call the caller's policy does not allow, with the service's own AccessDenied error and AWS's message
   * shape. UpdateFunctionConfiguration also needs lambda:GetLayerVersion on every layer of the request (Lambda
   * developer guide, "Adding layers to functions": "you must have permission to call GetLayerVersion on the layer
   * version") and carries the `lambda:Layer` condition key (Service Authorization Reference, AWS Lambda).
   */
  private authorize(service: ServiceBinding, key: string, input: Record<string, unknown>): void {
    const current = this.policyOfCaller();
    if (current === undefined) return;
    const action = IAM_ACTION[key] ?? key;
    const layers =
      key === 'lambda:UpdateFunctionConfiguration' && Array.isArray(input['Layers'])
        ? (input['Layers'] as unknown[]).map(String)
        : undefined;
    const context: RequestContext =
      layers !== undefined
        ? { 'lambda:Layer': layers }
        : key === 's3:ListObjectsV2'
          ? { 's3:prefix': [typeof input['Prefix'] === 'string' ? input['Prefix'] : ''] }
          : {};
    const checks: Array<[string, string]> = this.resourcesOf(key, input).map((r) => [action, r]);
    for (const layer of layers ?? []) checks.push(['lambda:GetLayerVersion', layer]);
    for (const [checkedAction, resource] of checks) {
      if (isAllowed(current.policy, checkedAction, resource, context)) continue;
      this.denied.push(`${current.caller} ${checkedAction} ${resource}`);
      const { name, status } = ACCESS_DENIED[service.prefix] ?? { name: 'AccessDeniedException', status: 403 };
      const principal = `arn:aws:sts::${this.account}:assumed-role/${current.policy.role}/${current.caller}`;
      throw this.error(
        service,
        name,
        `User: ${principal} is not authorized to perform: ${checkedAction} on resource: ${resource} because no identity-based policy allows the ${checkedAction} action`,
        {},
        status,
      );
    }
  }

  private matchFault(key: string, input: Record<string, unknown>): FaultRule | undefined {
    for (const fault of this.faults) {
      const { rule } = fault;
      if (rule.operation !== '*' && rule.operation !== key) continue;
      if (rule.functionName !== undefined) {
        const named = typeof input['FunctionName'] === 'string' ? this.nameOf(input['FunctionName']) : undefined;
        if (named !== this.nameOf(rule.functionName)) continue;
      }
      fault.matched += 1;
      if (rule.times !== undefined && fault.fired >= rule.times) continue;
      if (rule.nth !== undefined && fault.matched !== rule.nth) continue;
      if (rule.probability !== undefined && this.random() >= rule.probability) continue;
      fault.fired += 1;
      return rule;
    }
    return undefined;
  }

  private admitControlPlane(service: ServiceBinding, key: string): void {
    const now = this.clock.now();
    this.demandWindow = this.demandWindow.filter((t) => t > now - 1000);
    this.demandWindow.push(now);
    this.peakRate = Math.max(this.peakRate, this.demandWindow.length);
    this.controlPlaneWindow = this.controlPlaneWindow.filter((t) => t > now - 1000);
    if (this.controlPlaneWindow.length >= this.rateLimit) {
      this.throttled.set(key, (this.throttled.get(key) ?? 0) + 1);
      throw this.error(service, 'TooManyRequestsException', 'Rate exceeded', {
        Reason: 'CallerRateLimitExceeded',
        Type: 'User',
        retryAfterSeconds: '1',
      });
    }
    this.controlPlaneWindow.push(now);
  }

  /** A per-operation limit (`operationRateLimits`): requests in any one-second window, like the control plane's. */
  private admitOperation(service: ServiceBinding, key: string, limit: number): void {
    const now = this.clock.now();
    const window = (this.operationWindows.get(key) ?? []).filter((t) => t > now - 1000);
    this.operationWindows.set(key, window);
    if (window.length >= limit) {
      this.throttled.set(key, (this.throttled.get(key) ?? 0) + 1);
      const name = service.prefix === 'cloudwatch' ? 'Throttling' : 'TooManyRequestsException';
      throw this.error(service, name, 'Rate exceeded', {}, 429);
    }
    window.push(now);
  }

  private metadata(httpStatusCode: number): ResponseMetadata {
    return { httpStatusCode, requestId: this.newId(), attempts: 1, totalRetryDelay: 0 };
  }

  /** An instance of the SDK's own exception class for `name` (or the service's base exception with that name). */
  error(
    service: ServiceBinding | string,
    name: string,
    message: string,
    extra: Record<string, unknown> = {},
    httpStatusCode?: number,
  ): Error {
    const binding = typeof service === 'string' ? SERVICES.find((s) => s.prefix === service) : service;
    if (binding === undefined) throw new Error(`unknown service ${String(service)}`);
    const status = httpStatusCode ?? STATUS_BY_ERROR[name] ?? (/Service|Internal/.test(name) ? 500 : 400);
    const $metadata = this.metadata(status);
    const candidate = binding.exceptions[name];
    const base = binding.base as BaseExceptionCtor;
    if (typeof candidate === 'function' && candidate.prototype instanceof base) {
      return new (candidate as ExceptionCtor)({ message, $metadata, ...extra });
    }
    return new base({ name, $fault: status >= 500 ? 'server' : 'client', message, $metadata, ...extra });
  }

  private newId(): string {
    this.idCounter += 1;
    const hex = shortHash(`${this.idCounter}:${this.random()}`, 32);
    return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-a${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
  }

  // ----- the model ----------------------------------------------------------------------------------------------

  private addFunction(facts: EstateFunction): void {
    const given = clone(facts.configuration);
    const name = String(given.FunctionName);
    const image = given.PackageType === 'Image';
    const defaults: FunctionConfiguration = {
      FunctionName: name,
      FunctionArn: functionArn(this.region, this.account, name),
      ...(image ? {} : { Handler: 'index.handler' }),
      Role: `arn:aws:iam::${this.account}:role/${name}-role`,
      CodeSize: image ? 0 : 4096,
      Description: '',
      Timeout: 3,
      MemorySize: 128,
      LastModified: '2024-10-01T08:00:00.000+0000',
      CodeSha256: Buffer.from(shortHash(`code:${name}`, 32), 'hex').toString('base64'),
      Version: '$LATEST',
      TracingConfig: { Mode: 'PassThrough' },
      RevisionId: `${shortHash(`rev:${name}`, 8)}-0000-4000-a000-${shortHash(`rev2:${name}`, 12)}`,
      State: 'Active',
      LastUpdateStatus: 'Successful',
      PackageType: 'Zip',
      Architectures: ['x86_64'],
      EphemeralStorage: { Size: 512 },
      SnapStart: { ApplyOn: 'None', OptimizationStatus: 'Off' },
      LoggingConfig: { LogFormat: 'Text', LogGroup: `/aws/lambda/${name}` },
    };
    const configuration = { ...defaults, ...given } as SimFunction['configuration'];
    // AWS omits an empty Environment and an empty layer list; an Environment.Error (variables Lambda cannot
    // decrypt) and fields given as null stay as given.
    const environment = configuration.Environment as { Variables?: unknown; Error?: unknown } | null | undefined;
    if (
      environment !== null &&
      environment !== undefined &&
      environment.Error === undefined &&
      Object.keys(environment.Variables ?? {}).length === 0
    ) {
      delete configuration.Environment;
    }
    if (Array.isArray(configuration.Layers) && configuration.Layers.length === 0) delete configuration.Layers;
    const placeholder = (arn: string): void => {
      if (this.layers.has(arn)) return;
      this.layers.set(arn, {
        arn,
        files: { 'README.txt': `placeholder content of ${arn}\n` },
        compatibleRuntimes: undefined,
        compatibleArchitectures: undefined,
        description: '',
      });
    };
    for (const layer of configuration.Layers ?? []) if (typeof layer.Arn === 'string') placeholder(layer.Arn);
    const versions = new Map<string, SimFunction['configuration']>();
    for (const v of facts.versions ?? []) {
      for (const arn of v.layers ?? []) placeholder(arn);
      const version = {
        ...clone(configuration),
        ...clone(v.configuration ?? {}),
        FunctionArn: `${configuration.FunctionArn}:${v.version}`,
        Version: v.version,
        RevisionId: `${shortHash(`rev:${name}:${v.version}`, 8)}-0000-4000-a000-${shortHash(`rev2:${name}:${v.version}`, 12)}`,
        State: 'Active',
        LastUpdateStatus: 'Successful',
      } as SimFunction['configuration'];
      delete version.Layers;
      delete version.Environment;
      if (v.layers !== undefined && v.layers.length > 0) {
        version.Layers = v.layers.map((arn) => ({
          Arn: arn,
          CodeSize: this.layerZip(this.layers.get(arn) as SimLayer).length,
        }));
      } else if (v.layers === undefined && configuration.Layers !== undefined) {
        version.Layers = clone(configuration.Layers);
      }
      const variables = v.variables ?? configuration.Environment?.Variables;
      if (variables !== undefined && Object.keys(variables).length > 0)
        version.Environment = { Variables: { ...variables } };
      versions.set(v.version, version);
    }
    let codeSigningConfigArn: string | undefined;
    if (facts.codeSigningConfig !== undefined) {
      codeSigningConfigArn =
        facts.codeSigningConfig.arn ??
        `arn:aws:lambda:${this.region}:${this.account}:code-signing-config:csc-${shortHash(`csc:${name}`, 17)}`;
      this.codeSigningConfigs.set(codeSigningConfigArn, facts.codeSigningConfig.untrustedArtifactOnDeployment);
    }
    const highest = [...versions.keys()].sort((a, b) => Number(b) - Number(a))[0] ?? '1';
    this.functions.set(name, {
      versions,
      aliases: (facts.aliases ?? []).map((a) => ({
        name: a.name,
        functionVersion: a.functionVersion,
        ...(a.routingConfig !== undefined ? { routing: { ...a.routingConfig.additionalVersionWeights } } : {}),
        revisionId: `${shortHash(`alias:${name}:${a.name}`, 8)}-0000-4000-a000-${shortHash(`alias2:${name}:${a.name}`, 12)}`,
      })),
      codeSigningConfigArn,
      edge: (facts.cloudFront ?? []).map((e) => ({
        distributionId: e.distributionId,
        eventType: e.eventType,
        version: e.version ?? highest,
        ...(e.pathPattern !== undefined ? { pathPattern: e.pathPattern } : {}),
      })),
      configuration,
      tags: { ...(facts.tags ?? {}) },
      provisioned: clone((facts.provisionedConcurrencyConfigs ?? []) as Array<Record<string, unknown>>),
      reserved: facts.reservedConcurrency ?? undefined,
      throttles: facts.throttles24h,
      peak: facts.peakConcurrency,
      egress: facts.vpcEgress ?? 'unknown',
    });
    this.order.push(name);
  }

  private buildRouteTables(): void {
    const seenSubnets = new Set<string>();
    const mainTables = new Set<string>();
    for (const name of this.order) {
      const fn = this.mustGet(name);
      const subnets = fn.configuration.VpcConfig?.SubnetIds ?? [];
      if (subnets.length === 0) continue;
      const vpcId = fn.configuration.VpcConfig?.VpcId || `vpc-0${shortHash(`vpc:${subnets.join(',')}`)}`;
      if (!mainTables.has(vpcId)) {
        mainTables.add(vpcId);
        const id = `rtb-0${shortHash(`main:${vpcId}`)}`;
        this.routeTables.push({
          RouteTableId: id,
          VpcId: vpcId,
          OwnerId: this.account,
          Routes: [
            { DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local', Origin: 'CreateRouteTable', State: 'active' },
          ],
          Associations: [
            {
              Main: true,
              RouteTableAssociationId: `rtbassoc-0${shortHash(`assoc:${id}`)}`,
              RouteTableId: id,
              AssociationState: { State: 'associated' },
            },
          ],
          Tags: [],
          PropagatingVgws: [],
        });
      }
      for (const subnet of subnets) {
        if (seenSubnets.has(subnet)) continue;
        seenSubnets.add(subnet);
        if (fn.egress === 'unknown' && this.unknownEgress === 'denied') {
          this.deniedSubnets.add(subnet);
          this.deniedVpcs.add(vpcId);
          continue;
        }
        const id = `rtb-0${shortHash(`subnet:${subnet}`)}`;
        const routes: Array<Record<string, string>> = [
          { DestinationCidrBlock: '10.0.0.0/16', GatewayId: 'local', Origin: 'CreateRouteTable', State: 'active' },
        ];
        if (fn.egress === 'nat') {
          routes.push({
            DestinationCidrBlock: '0.0.0.0/0',
            NatGatewayId: `nat-0${shortHash(`nat:${vpcId}`)}`,
            Origin: 'CreateRoute',
            State: 'active',
          });
        }
        if (fn.egress === 'unknown') {
          routes.push({
            DestinationCidrBlock: '0.0.0.0/0',
            TransitGatewayId: `tgw-0${shortHash(`tgw:${vpcId}`)}`,
            Origin: 'CreateRoute',
            State: 'active',
          });
        }
        this.routeTables.push({
          RouteTableId: id,
          VpcId: vpcId,
          OwnerId: this.account,
          Routes: routes,
          Associations: [
            {
              Main: false,
              RouteTableAssociationId: `rtbassoc-0${shortHash(`assoc:${id}`)}`,
              RouteTableId: id,
              SubnetId: subnet,
              AssociationState: { State: 'associated' },
            },
          ],
          Tags: [],
          PropagatingVgws: [],
        });
      }
    }
  }

  private mustGet(name: string): SimFunction {
    const fn = this.functions.get(name);
    if (fn === undefined) throw new Error(`no function ${name} in the simulated account`);
    return fn;
  }

  /** A function name from a name, a full or partial ARN, with or without a qualifier. */
  private nameOf(nameOrArn: string): string {
    const arn = /^(?:arn:aws[a-z-]*:lambda:[a-z0-9-]+:)?(?:\d{12}:)?function:([^:]+)(?::([^:]+))?$/.exec(nameOrArn);
    if (arn !== null) return arn[1] as string;
    return nameOrArn.split(':')[0] as string;
  }

  /** The qualifier of a qualified name or ARN, else the Qualifier parameter; undefined for none. */
  private qualifierOf(raw: string, parameter: unknown): string | undefined {
    const inName = /^(?:arn:[^:]+:lambda:[^:]+:\d{12}:function:[^:]+|[^:]+):([^:]+)$/.exec(raw)?.[1];
    const qualifier = inName ?? (typeof parameter === 'string' && parameter.length > 0 ? parameter : undefined);
    return qualifier;
  }

  /**
   * The configuration a read with a qualifier sees: $LATEST, a published version, or the version an alias points
   * to (GetFunctionConfiguration, "Qualifier: Specify a version or alias"). Unknown: ResourceNotFoundException.
   */
  private findQualified(
    service: ServiceBinding,
    input: Record<string, unknown>,
  ): { fn: SimFunction; configuration: SimFunction['configuration']; latest: boolean } {
    const raw = typeof input['FunctionName'] === 'string' ? input['FunctionName'] : '';
    const qualifier = this.qualifierOf(raw, input['Qualifier']);
    const fn = this.findFunction(service, { FunctionName: this.nameOf(raw) });
    if (qualifier === undefined || qualifier === '$LATEST')
      return { fn, configuration: fn.configuration, latest: true };
    const version = /^\d+$/.test(qualifier) ? qualifier : fn.aliases.find((a) => a.name === qualifier)?.functionVersion;
    if (version === '$LATEST') return { fn, configuration: fn.configuration, latest: true };
    const configuration = version === undefined ? undefined : fn.versions.get(version);
    if (configuration === undefined) {
      throw this.error(
        service,
        'ResourceNotFoundException',
        `Function not found: ${fn.configuration.FunctionArn}:${qualifier}`,
        { Type: 'User' },
      );
    }
    return { fn, configuration, latest: false };
  }

  private findFunction(service: ServiceBinding, input: Record<string, unknown>, key = 'FunctionName'): SimFunction {
    const raw = input[key];
    if (typeof raw !== 'string' || raw.length === 0) {
      throw this.error(service, 'InvalidParameterValueException', `${key} is required`);
    }
    const qualifier = this.qualifierOf(raw, input['Qualifier']);
    const fn = this.functions.get(this.nameOf(raw));
    if (fn === undefined || (qualifier !== undefined && qualifier !== '$LATEST')) {
      throw this.error(
        service,
        'ResourceNotFoundException',
        `Function not found: ${functionArn(this.region, this.account, this.nameOf(raw))}`,
        { Type: 'User' },
      );
    }
    return fn;
  }

  /** Moves an update started here towards its end; `read` when the caller reads the function's status. */
  private settle(fn: SimFunction, read: boolean): void {
    const pending = fn.pendingUpdate;
    if (pending === undefined) return;
    const timeUp = pending.settleAt !== undefined && this.clock.now() >= pending.settleAt;
    if (!timeUp) {
      if (!read) return;
      if (pending.readsLeft > 0) {
        pending.readsLeft -= 1;
        return;
      }
    }
    fn.pendingUpdate = undefined;
    if (pending.failReason !== undefined) {
      fn.configuration.LastUpdateStatus = 'Failed';
      fn.configuration.LastUpdateStatusReason = pending.failReason;
      fn.configuration.LastUpdateStatusReasonCode = 'InternalError';
    } else {
      fn.configuration.LastUpdateStatus = 'Successful';
      delete fn.configuration.LastUpdateStatusReason;
      delete fn.configuration.LastUpdateStatusReasonCode;
    }
  }

  private listView(fn: SimFunction): FunctionConfiguration {
    const {
      State: _state,
      StateReason: _stateReason,
      StateReasonCode: _stateReasonCode,
      LastUpdateStatus: _lastUpdateStatus,
      LastUpdateStatusReason: _lastUpdateStatusReason,
      LastUpdateStatusReasonCode: _lastUpdateStatusReasonCode,
      ...rest
    } = fn.configuration;
    return rest;
  }

  private layer(arn: string): SimLayer | undefined {
    return this.layers.get(arn);
  }

  private layerZip(layer: SimLayer): Uint8Array {
    if (layer.zip === undefined) {
      const entries: Zippable = {};
      for (const [path, content] of Object.entries(layer.files)) entries[path] = strToU8(content);
      layer.zip = zipSync(entries, { level: 6, mtime: new Date('2024-01-01T00:00:00Z') });
    }
    return layer.zip;
  }

  // ----- operations ---------------------------------------------------------------------------------------------

  private readonly operations: Record<
    string,
    (input: Record<string, unknown>, service: ServiceBinding, fault: FaultRule | undefined) => Record<string, unknown>
  > = {
    'lambda:ListFunctions': (input, service) => {
      const max = input['MaxItems'] === undefined ? LIST_FUNCTIONS_PAGE : Number(input['MaxItems']);
      if (!Number.isInteger(max) || max < 1 || max > 10000) {
        throw this.error(service, 'InvalidParameterValueException', 'MaxItems must be between 1 and 10000');
      }
      const size = Math.min(max, LIST_FUNCTIONS_PAGE);
      const offset = this.pageOffset(service, input['Marker'], 'InvalidParameterValueException');
      const names = this.order.slice(offset, offset + size);
      const next = offset + size < this.order.length ? encodeToken(offset + size) : undefined;
      for (const name of names) this.settle(this.mustGet(name), false);
      return {
        Functions: names.map((name) => this.listView(this.mustGet(name))),
        ...(next !== undefined ? { NextMarker: next } : {}),
      };
    },
    'lambda:GetFunction': (input, service) => {
      const { fn, configuration, latest } = this.findQualified(service, input);
      if (latest) this.settle(fn, true);
      const image = fn.configuration.PackageType === 'Image';
      // "Tags: The function's tags. Lambda returns tag data only if you have explicit allow permissions for
      // lambda:ListTags." (Lambda API reference, GetFunction, Response Elements)
      const tagsAllowed = this.callerMay('lambda:ListTags', fn.configuration.FunctionArn);
      return {
        Configuration: latest ? fn.configuration : configuration,
        Code: image
          ? {
              RepositoryType: 'ECR',
              ImageUri: `${this.account}.dkr.ecr.${this.region}.amazonaws.com/${fn.configuration.FunctionName}:latest`,
            }
          : {
              RepositoryType: 'S3',
              Location: `https://awslambda-${this.region}-tasks.s3.${this.region}.amazonaws.com/snapshots/${this.account}/${fn.configuration.FunctionName}`,
            },
        ...(tagsAllowed && Object.keys(fn.tags).length > 0 ? { Tags: fn.tags } : {}),
        ...(fn.reserved !== undefined ? { Concurrency: { ReservedConcurrentExecutions: fn.reserved } } : {}),
      };
    },
    'lambda:GetFunctionConfiguration': (input, service) => {
      const { fn, configuration, latest } = this.findQualified(service, input);
      if (latest) this.settle(fn, true);
      return { ...(latest ? fn.configuration : configuration) };
    },
    'lambda:ListVersionsByFunction': (input, service) => {
      const fn = this.findFunction(service, { FunctionName: input['FunctionName'] });
      const all = [
        this.listView(fn),
        ...[...fn.versions.entries()].sort(([a], [b]) => Number(a) - Number(b)).map(([, v]) => v),
      ];
      return this.markerPage(service, input, all, 'Versions', 50);
    },
    'lambda:ListAliases': (input, service) => {
      const fn = this.findFunction(service, { FunctionName: input['FunctionName'] });
      const wanted = input['FunctionVersion'];
      const aliases = fn.aliases
        .filter((a) => wanted === undefined || a.functionVersion === wanted)
        .map((a) => ({
          AliasArn: `${fn.configuration.FunctionArn}:${a.name}`,
          Name: a.name,
          FunctionVersion: a.functionVersion,
          Description: '',
          RevisionId: a.revisionId,
          ...(a.routing !== undefined ? { RoutingConfig: { AdditionalVersionWeights: a.routing } } : {}),
        }));
      return this.markerPage(service, input, aliases, 'Aliases', 50);
    },
    'lambda:GetFunctionCodeSigningConfig': (input, service) => {
      const fn = this.findFunction(service, input);
      // A function without a code signing config answers an empty ARN (both fields are always present).
      return {
        CodeSigningConfigArn: fn.codeSigningConfigArn ?? '',
        FunctionName: fn.configuration.FunctionName,
      };
    },
    'lambda:GetCodeSigningConfig': (input, service) => {
      const arn = String(input['CodeSigningConfigArn'] ?? '');
      const policy = this.codeSigningConfigs.get(arn);
      if (policy === undefined) {
        throw this.error(service, 'ResourceNotFoundException', `Code signing config not found: ${arn}`, {
          Type: 'User',
        });
      }
      return {
        CodeSigningConfig: {
          CodeSigningConfigId: arn.slice(arn.lastIndexOf(':') + 1),
          CodeSigningConfigArn: arn,
          Description: '',
          AllowedPublishers: {
            SigningProfileVersionArns: [
              `arn:aws:signer:${this.region}:${this.account}:/signing-profiles/teamProfile/${shortHash(`sp:${arn}`, 10)}`,
            ],
          },
          CodeSigningPolicies: { UntrustedArtifactOnDeployment: policy },
          LastModified: '2024-09-01T00:00:00.000+0000',
        },
      };
    },
    'cloudwatch:GetMetricStatistics': (input) => {
      // One metric a call (CloudWatch API Reference, GetMetricStatistics); answers the estate's Throttles Sum and
      // ConcurrentExecutions Maximum for a FunctionName dimension, else no datapoints.
      this.metricsRequested.count += 1;
      const dimensions = (input['Dimensions'] as Array<{ Name?: string; Value?: string }> | undefined) ?? [];
      const name = dimensions.find((d) => d.Name === 'FunctionName')?.Value;
      const fn = name === undefined || input['Namespace'] !== 'AWS/Lambda' ? undefined : this.functions.get(name);
      const metric = String(input['MetricName']);
      const value =
        fn === undefined
          ? undefined
          : metric === 'Throttles'
            ? fn.throttles
            : metric === 'ConcurrentExecutions'
              ? fn.peak
              : undefined;
      const end = input['EndTime'] instanceof Date ? input['EndTime'] : new Date(String(input['EndTime']));
      return {
        Label: metric,
        Datapoints: typeof value === 'number' ? [{ Timestamp: end, Sum: value, Maximum: value, Unit: 'Count' }] : [],
      };
    },
    'lambda:GetFunctionConcurrency': (input, service) => {
      const fn = this.findFunction(service, input);
      return fn.reserved === undefined ? {} : { ReservedConcurrentExecutions: fn.reserved };
    },
    'lambda:ListTags': (input, service) => {
      const fn = this.findFunction(service, input, 'Resource');
      return { Tags: fn.tags };
    },
    'cloudfront:ListDistributions': (input, service) => this.listDistributions(input, service),
    'kms:GenerateMac': (input, service) => {
      const key = this.macKey(service, input);
      return {
        KeyId: key.arn,
        Mac: new Uint8Array(createHmac('sha256', key.secret).update(this.bytes(input['Message'])).digest()),
        MacAlgorithm: 'HMAC_SHA_256',
      };
    },
    'kms:VerifyMac': (input, service) => {
      const key = this.macKey(service, input);
      const expected = createHmac('sha256', key.secret).update(this.bytes(input['Message'])).digest();
      const given = Buffer.from(this.bytes(input['Mac']));
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw this.error(service, 'KMSInvalidMacException', 'The MAC is not valid for the message and key', {}, 400);
      }
      return { KeyId: key.arn, MacValid: true, MacAlgorithm: 'HMAC_SHA_256' };
    },
    'kms:Encrypt': (input, service) => {
      const key = this.symmetricKey(service, this.mustFindKey(service, input['KeyId']));
      const plaintext = Buffer.from(this.bytes(input['Plaintext']));
      if (plaintext.length < 1 || plaintext.length > 4096) {
        throw this.error(service, 'ValidationException', 'Plaintext must be 1 to 4096 bytes', {}, 400);
      }
      const iv = createHash('sha256').update(`${key.arn}:${this.newId()}`).digest().subarray(0, 12);
      const cipher = createCipheriv('aes-256-gcm', key.secret, iv);
      const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
      const id = Buffer.from(key.arn, 'utf8');
      const blob = Buffer.concat([Buffer.from('SIMK'), Buffer.from([id.length]), id, iv, cipher.getAuthTag(), body]);
      return { KeyId: key.arn, CiphertextBlob: new Uint8Array(blob), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
    },
    'kms:Decrypt': (input, service) => {
      const blob = Buffer.from(this.bytes(input['CiphertextBlob']));
      const key = this.keyOfCiphertext(blob);
      if (key === undefined) {
        throw this.error(service, 'InvalidCiphertextException', '', {}, 400);
      }
      if (input['KeyId'] !== undefined && this.mustFindKey(service, input['KeyId']).arn !== key.arn) {
        throw this.error(
          service,
          'IncorrectKeyException',
          'The key ID in the request does not identify a KMS key that can perform this operation.',
          {},
          400,
        );
      }
      const offset = 5 + (blob[4] ?? 0);
      const iv = blob.subarray(offset, offset + 12);
      const tag = blob.subarray(offset + 12, offset + 28);
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.secret, iv);
        decipher.setAuthTag(tag);
        const plaintext = Buffer.concat([decipher.update(blob.subarray(offset + 28)), decipher.final()]);
        return { KeyId: key.arn, Plaintext: new Uint8Array(plaintext), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' };
      } catch {
        throw this.error(service, 'InvalidCiphertextException', '', {}, 400);
      }
    },
    'lambda:ListProvisionedConcurrencyConfigs': (input, service) => {
      const fn = this.findFunction(service, input);
      const max = input['MaxItems'] === undefined ? 50 : Number(input['MaxItems']);
      const offset = this.pageOffset(service, input['Marker'], 'InvalidParameterValueException');
      const page = fn.provisioned.slice(offset, offset + max);
      const next = offset + max < fn.provisioned.length ? encodeToken(offset + max) : undefined;
      return { ProvisionedConcurrencyConfigs: page, ...(next !== undefined ? { NextMarker: next } : {}) };
    },
    'lambda:UpdateFunctionConfiguration': (input, service, fault) =>
      this.updateFunctionConfiguration(input, service, fault),
    'lambda:GetLayerVersion': (input, service) => {
      const name = String(input['LayerName'] ?? '');
      const base = name.startsWith('arn:') ? name : `arn:aws:lambda:${this.region}:${this.account}:layer:${name}`;
      return this.layerVersion(service, `${base}:${String(input['VersionNumber'])}`);
    },
    'lambda:GetLayerVersionByArn': (input, service) => this.layerVersion(service, String(input['Arn'] ?? '')),
    'lambda:PublishLayerVersion': (input, service) => this.publishLayerVersion(input, service),
    'tag:GetResources': (input, service) => this.getResources(input, service),
    'cloudwatch:GetMetricData': (input, service) => this.getMetricData(input, service),
    'ec2:DescribeRouteTables': (input, service) => this.describeRouteTables(input, service),
    'sns:Publish': (input, service) => this.publish(input, service),
    'states:DescribeExecution': (input, service) => this.describeExecution(input, service),
    's3:PutObject': (input, service) => {
      const bucket = this.bucket(service, input);
      const body = input['Body'];
      let bytes: Uint8Array;
      if (typeof body === 'string') bytes = strToU8(body);
      else if (body instanceof Uint8Array) bytes = new Uint8Array(body);
      else throw this.error(service, 'InvalidRequest', 'the simulated S3 takes string or byte bodies');
      this.objects.set(`${bucket}/${String(input['Key'])}`, bytes);
      return { ETag: `"${createHash('md5').update(bytes).digest('hex')}"` };
    },
    's3:DeleteObject': (input, service) => {
      // S3 DeleteObject succeeds (204) whether or not the key exists.
      const bucket = this.bucket(service, input);
      this.objects.delete(`${bucket}/${String(input['Key'])}`);
      return {};
    },
    's3:ListObjectsV2': (input, service) => {
      const bucket = this.bucket(service, input);
      const prefix = typeof input['Prefix'] === 'string' ? input['Prefix'] : '';
      const max = typeof input['MaxKeys'] === 'number' ? Math.min(1000, Math.max(1, input['MaxKeys'])) : 1000;
      const keys = [...this.objects.keys()]
        .filter((k) => k.startsWith(`${bucket}/`))
        .map((k) => k.slice(bucket.length + 1))
        .filter((k) => k.startsWith(prefix))
        .sort();
      const token = input['ContinuationToken'];
      const offset = typeof token === 'string' ? (decodeToken(token) ?? 0) : 0;
      const page = keys.slice(offset, offset + max);
      const truncated = offset + max < keys.length;
      return {
        Name: bucket,
        Prefix: prefix,
        KeyCount: page.length,
        MaxKeys: max,
        IsTruncated: truncated,
        Contents: page.map((Key) => ({ Key, Size: this.objects.get(`${bucket}/${Key}`)?.length ?? 0 })),
        ...(truncated ? { NextContinuationToken: encodeToken(offset + max) } : {}),
      };
    },
    's3:GetObject': (input, service) => {
      const bucket = this.bucket(service, input);
      const bytes = this.objects.get(`${bucket}/${String(input['Key'])}`);
      if (bytes === undefined) throw this.error(service, 'NoSuchKey', 'The specified key does not exist.');
      return {
        ContentLength: bytes.length,
        ETag: `"${createHash('md5').update(bytes).digest('hex')}"`,
        [RAW_BODY]: bytes,
      };
    },
    'ssm:GetParameter': (input, service) => ({
      Parameter: this.parameter(service, String(input['Name'] ?? ''), input['WithDecryption'] === true),
    }),
    'secretsmanager:GetSecretValue': (input, service) => {
      const secretId = String(input['SecretId'] ?? '');
      const secret = this.findSecret(secretId);
      if (secret === undefined) {
        throw this.error(
          service,
          'ResourceNotFoundException',
          "Secrets Manager can't find the specified secret.",
          {},
          400,
        );
      }
      return {
        ARN: secret.arn,
        Name: secret.name,
        VersionId: secret.versionId,
        SecretString: secret.value,
        VersionStages: ['AWSCURRENT'],
        CreatedDate: new Date('2025-01-01T00:00:00Z'),
      };
    },
    'ssm:GetParameters': (input, service) => {
      const names = Array.isArray(input['Names']) ? (input['Names'] as unknown[]).map(String) : [];
      const found = names.filter((n) => this.parameters.has(this.parameterName(n)));
      return {
        Parameters: found.map((n) => this.parameter(service, n, input['WithDecryption'] === true)),
        InvalidParameters: names.filter((n) => !found.includes(n)),
      };
    },
  };

  /** One page of `items` with Lambda's Marker/NextMarker and MaxItems (at most `limit`). */
  private markerPage(
    service: ServiceBinding,
    input: Record<string, unknown>,
    items: unknown[],
    field: string,
    limit: number,
  ): Record<string, unknown> {
    const max = input['MaxItems'] === undefined ? limit : Number(input['MaxItems']);
    if (!Number.isInteger(max) || max < 1 || max > 10000) {
      throw this.error(service, 'InvalidParameterValueException', 'MaxItems must be between 1 and 10000');
    }
    const size = Math.min(max, limit);
    const offset = this.pageOffset(service, input['Marker'], 'InvalidParameterValueException');
    const next = offset + size < items.length ? encodeToken(offset + size) : undefined;
    return { [field]: items.slice(offset, offset + size), ...(next !== undefined ? { NextMarker: next } : {}) };
  }

  /**
   * CloudFront ListDistributions (CloudFront API reference): a DistributionList of summaries, MaxItems per page
   * (default 100), Marker = the NextMarker of the previous page (the last distribution id of that page). Each
   * Lambda@Edge association appears in the DefaultCacheBehavior (or the CacheBehavior of its pathPattern) as a
   * LambdaFunctionAssociation of the qualified version ARN.
   */
  private listDistributions(input: Record<string, unknown>, service: ServiceBinding): Record<string, unknown> {
    type Association = { LambdaFunctionARN: string; EventType: string; IncludeBody: boolean };
    const byId = new Map<string, { default: Association[]; paths: Map<string, Association[]> }>();
    for (const name of this.order) {
      const fn = this.mustGet(name);
      for (const edge of fn.edge) {
        const distribution = byId.get(edge.distributionId) ?? { default: [], paths: new Map<string, Association[]>() };
        const association = {
          LambdaFunctionARN: `${fn.configuration.FunctionArn}:${edge.version}`,
          EventType: edge.eventType,
          IncludeBody: false,
        };
        if (edge.pathPattern === undefined) distribution.default.push(association);
        else
          distribution.paths.set(edge.pathPattern, [...(distribution.paths.get(edge.pathPattern) ?? []), association]);
        byId.set(edge.distributionId, distribution);
      }
    }
    const ids = [...byId.keys()].sort();
    const max = input['MaxItems'] === undefined ? 100 : Number(input['MaxItems']);
    if (!Number.isInteger(max) || max < 1 || max > 1000) {
      throw this.error(service, 'InvalidArgument', 'MaxItems must be between 1 and 1000', {}, 400);
    }
    const marker = typeof input['Marker'] === 'string' ? input['Marker'] : '';
    const start = marker === '' ? 0 : ids.indexOf(marker) + 1;
    if (marker !== '' && start === 0) throw this.error(service, 'InvalidArgument', 'Invalid Marker', {}, 400);
    const page = ids.slice(start, start + max);
    const truncated = start + max < ids.length;
    const associations = (items: Association[]) => ({
      Quantity: items.length,
      ...(items.length > 0 ? { Items: items } : {}),
    });
    const behavior = (items: Association[]) => ({
      TargetOriginId: 'origin-1',
      ViewerProtocolPolicy: 'redirect-to-https',
      LambdaFunctionAssociations: associations(items),
    });
    return {
      DistributionList: {
        Marker: marker,
        ...(truncated ? { NextMarker: page[page.length - 1] } : {}),
        MaxItems: max,
        IsTruncated: truncated,
        Quantity: page.length,
        ...(page.length > 0
          ? {
              Items: page.map((id) => {
                const d = byId.get(id) as { default: Association[]; paths: Map<string, Association[]> };
                const paths = [...d.paths.entries()];
                return {
                  Id: id,
                  ARN: `arn:aws:cloudfront::${this.account}:distribution/${id}`,
                  Status: 'Deployed',
                  LastModifiedTime: new Date('2024-09-01T00:00:00Z'),
                  DomainName: `d${shortHash(`cf:${id}`, 13)}.cloudfront.net`,
                  Aliases: { Quantity: 0 },
                  Origins: { Quantity: 1, Items: [{ Id: 'origin-1', DomainName: 'origin.example.com' }] },
                  DefaultCacheBehavior: behavior(d.default),
                  CacheBehaviors: {
                    Quantity: paths.length,
                    ...(paths.length > 0
                      ? { Items: paths.map(([PathPattern, items]) => ({ PathPattern, ...behavior(items) })) }
                      : {}),
                  },
                  CustomErrorResponses: { Quantity: 0 },
                  Comment: '',
                  PriceClass: 'PriceClass_All',
                  Enabled: true,
                  ViewerCertificate: { CloudFrontDefaultCertificate: true },
                  Restrictions: { GeoRestriction: { RestrictionType: 'none', Quantity: 0 } },
                  WebACLId: '',
                  HttpVersion: 'http2',
                  IsIPV6Enabled: true,
                  Staging: false,
                };
              }),
            }
          : {}),
      },
    };
  }

  private bytes(value: unknown): Uint8Array {
    if (value instanceof Uint8Array) return value;
    if (typeof value === 'string') return strToU8(value);
    return new Uint8Array();
  }

  /** A key by ARN, key id or alias (`alias/name` or its ARN). */
  private findKey(keyId: string): SimKey | undefined {
    const aliasName = /^arn:aws[a-z-]*:kms:[^:]+:\d{12}:(alias\/.+)$/.exec(keyId)?.[1] ?? keyId;
    const viaAlias = this.keyAliases.get(aliasName);
    if (viaAlias !== undefined) return this.keys.get(viaAlias);
    return this.keys.get(keyId) ?? [...this.keys.values()].find((k) => k.id === keyId);
  }

  /** KMS answers NotFoundException for a key it does not hold (KMS API reference, common to GenerateMac, Encrypt...). */
  private mustFindKey(service: ServiceBinding, keyId: unknown): SimKey {
    const key = typeof keyId === 'string' ? this.findKey(keyId) : undefined;
    if (key === undefined) {
      throw this.error(service, 'NotFoundException', `Key '${String(keyId)}' does not exist`, {}, 400);
    }
    return key;
  }

  /** GenerateMac/VerifyMac need an HMAC key and its algorithm (KMS API reference, GenerateMac: InvalidKeyUsageException). */
  private macKey(service: ServiceBinding, input: Record<string, unknown>): SimKey {
    const key = this.mustFindKey(service, input['KeyId']);
    if (key.spec !== 'HMAC_256') {
      throw this.error(
        service,
        'InvalidKeyUsageException',
        `${key.arn} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.`,
        {},
        400,
      );
    }
    if (input['MacAlgorithm'] !== 'HMAC_SHA_256') {
      throw this.error(
        service,
        'InvalidKeyUsageException',
        `Algorithm ${String(input['MacAlgorithm'])} is incompatible with key spec HMAC_256.`,
        {},
        400,
      );
    }
    return key;
  }

  private symmetricKey(service: ServiceBinding, key: SimKey): SimKey {
    if (key.spec !== 'SYMMETRIC_DEFAULT') {
      throw this.error(
        service,
        'InvalidKeyUsageException',
        `${key.arn} key usage is GENERATE_VERIFY_MAC which is not valid for Encrypt.`,
        {},
        400,
      );
    }
    return key;
  }

  private keyOfCiphertext(blob: Uint8Array): SimKey | undefined {
    const bytes = Buffer.from(blob);
    if (bytes.length < 34 || bytes.subarray(0, 4).toString('latin1') !== 'SIMK') return undefined;
    const length = bytes[4] ?? 0;
    return this.keys.get(bytes.subarray(5, 5 + length).toString('utf8'));
  }

  private pageOffset(service: ServiceBinding, token: unknown, errorName: string): number {
    if (token === undefined || token === null || token === '') return 0;
    const offset = typeof token === 'string' ? decodeToken(token) : undefined;
    if (offset === undefined) throw this.error(service, errorName, 'Invalid pagination token');
    return offset;
  }

  private updateFunctionConfiguration(
    input: Record<string, unknown>,
    service: ServiceBinding,
    fault: FaultRule | undefined,
  ): Record<string, unknown> {
    const fn = this.findFunction(service, input);
    const config = fn.configuration;
    this.settle(fn, false);
    if (config.LastUpdateStatus === 'InProgress' || config.State === 'Pending') {
      throw this.error(
        service,
        'ResourceConflictException',
        `The operation cannot be performed at this time. An update is in progress for resource: ${config.FunctionArn}`,
        { Type: 'User' },
      );
    }
    if (input['RevisionId'] !== undefined && input['RevisionId'] !== config.RevisionId) {
      throw this.error(
        service,
        'PreconditionFailedException',
        'The Revision Id provided does not match the latest Revision Id. Call the GetFunction/GetAlias API to retrieve the latest Revision Id',
        { Type: 'User' },
      );
    }
    const next = clone(config);
    if (input['Layers'] !== undefined) {
      const arns = (input['Layers'] as unknown[]).map(String);
      if (config.PackageType === 'Image' && arns.length > 0) {
        throw this.error(
          service,
          'InvalidParameterValueException',
          'Layers are not supported for container image functions',
        );
      }
      if (arns.length > MAX_LAYERS) {
        throw this.error(
          service,
          'InvalidParameterValueException',
          `1 validation error detected: Value '[${arns.join(', ')}]' at 'layers' failed to satisfy constraint: Member must have length less than or equal to 5`,
        );
      }
      const layerNames = arns.map((arn) => arn.replace(/:\d+$/, ''));
      if (new Set(layerNames).size !== layerNames.length) {
        throw this.error(
          service,
          'InvalidParameterValueException',
          'Two different versions of the same layer are not allowed.',
        );
      }
      next.Layers = arns.map((arn) => {
        const existing = config.Layers?.find((l) => l.Arn === arn);
        if (existing !== undefined) return existing;
        const known = this.layer(arn);
        if (known === undefined) {
          throw this.error(service, 'InvalidParameterValueException', `Layer version ${arn} does not exist.`);
        }
        // "When you enable code signing for a function, any layers that you add to the function must also be signed
        // by an allowed signing profile" (Lambda developer guide, configuration-codesigning); with Enforce, Lambda
        // blocks the deployment: CodeVerificationFailedException (Lambda API reference, UpdateFunctionConfiguration).
        const policy =
          fn.codeSigningConfigArn === undefined ? undefined : this.codeSigningConfigs.get(fn.codeSigningConfigArn);
        if (policy === 'Enforce' && known.signed !== true) {
          throw this.error(
            service,
            'CodeVerificationFailedException',
            `Lambda cannot deploy the function. The layer ${arn} failed the signature validation checks of code signing config ${fn.codeSigningConfigArn}: the artifact is not signed by an allowed publisher.`,
            { Type: 'User' },
            400,
          );
        }
        return { Arn: arn, CodeSize: this.layerZip(known).length };
      });
      if (next.Layers.length === 0) delete next.Layers;
    }
    if (input['Environment'] !== undefined) {
      const variables = ((input['Environment'] as { Variables?: Record<string, string> }).Variables ?? {}) as Record<
        string,
        string
      >;
      const measured = JSON.stringify(variables);
      if (Buffer.byteLength(measured, 'utf8') > ENV_VARIABLES_LIMIT_BYTES) {
        // AWS's message quotes the variables it measured: values included. Handlers must not log it verbatim.
        throw this.error(
          service,
          'InvalidParameterValueException',
          `Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${measured}`,
        );
      }
      const badKey = Object.keys(variables).find((k) => !/^[a-zA-Z]([a-zA-Z0-9_])*$/.test(k));
      if (badKey !== undefined) {
        throw this.error(service, 'InvalidParameterValueException', `Environment variable name ${badKey} is not valid`);
      }
      if (Object.keys(variables).length > 0) next.Environment = { Variables: { ...variables } };
      else delete next.Environment;
    }
    const untouched = new Set(['FunctionName', 'RevisionId', 'Layers', 'Environment']);
    for (const [key, value] of Object.entries(input)) {
      if (!untouched.has(key) && value !== undefined) (next as Record<string, unknown>)[key] = clone(value);
    }
    if (
      fn.edge.length > 0 &&
      ((next.Layers ?? []).length > 0 || Object.keys(next.Environment?.Variables ?? {}).length > 0)
    ) {
      // Lambda accepts it; the next publish of this function can no longer be associated with CloudFront.
      this.edgeBroken.add(String(config.FunctionName));
    }
    next.RevisionId = this.newId();
    next.LastModified = lastModified(this.clock.now());
    next.LastUpdateStatus = 'InProgress';
    delete next.LastUpdateStatusReason;
    delete next.LastUpdateStatusReasonCode;
    fn.configuration = next;
    fn.pendingUpdate = {
      readsLeft: this.settleReads,
      settleAt: this.settleAfterMs === undefined ? undefined : this.clock.now() + this.settleAfterMs,
      failReason: fault?.updateFails,
    };
    return { ...next };
  }

  private layerVersion(service: ServiceBinding, arn: string): Record<string, unknown> {
    const layer = this.layer(arn);
    if (layer === undefined) {
      throw this.error(service, 'ResourceNotFoundException', 'The resource you requested does not exist.', {
        Type: 'User',
      });
    }
    const zip = this.layerZip(layer);
    return {
      Content: {
        Location: `data:application/zip;base64,${Buffer.from(zip).toString('base64')}`,
        CodeSha256: createHash('sha256').update(zip).digest('base64'),
        CodeSize: zip.length,
      },
      LayerArn: arn.replace(/:\d+$/, ''),
      LayerVersionArn: arn,
      Description: layer.description,
      CreatedDate: '2024-09-01T00:00:00.000+0000',
      Version: Number(/:(\d+)$/.exec(arn)?.[1] ?? 1),
      ...(layer.compatibleRuntimes !== undefined ? { CompatibleRuntimes: layer.compatibleRuntimes } : {}),
      ...(layer.compatibleArchitectures !== undefined
        ? { CompatibleArchitectures: layer.compatibleArchitectures }
        : {}),
    };
  }

  // ----- PublishLayerVersion (issue 10; rule 19 of the module comment) ------------------------------------------

  /** `arn:aws:lambda:REGION:ACCOUNT:layer:NAME` for a layer name or layer ARN (a version suffix dropped). */
  private layerBaseArn(nameOrArn: string): string {
    const base = nameOrArn.startsWith('arn:')
      ? nameOrArn
      : `arn:aws:lambda:${this.region}:${this.account}:layer:${nameOrArn}`;
    return base.replace(/^(arn:[^:]+:lambda:[^:]+:\d{12}:layer:[^:]+):\d+$/, '$1');
  }

  private publishLayerVersion(input: Record<string, unknown>, service: ServiceBinding): Record<string, unknown> {
    // Lambda quotas: a .zip uploaded through the API, zipped and unzipped.
    const MAX_LAYER_UPLOAD_BYTES = 50 * 1024 * 1024;
    const MAX_LAYER_UNZIPPED_BYTES = 250 * 1024 * 1024;
    const invalid = (message: string): Error => this.error(service, 'InvalidParameterValueException', message);
    const constraint = (value: string, field: string, rule: string): Error =>
      invalid(`1 validation error detected: Value '${value}' at '${field}' failed to satisfy constraint: ${rule}`);
    const name = input['LayerName'];
    // API Reference: LayerName length 1-140, pattern (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+
    const LAYER_NAME = /^((arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+)$/;
    if (typeof name !== 'string' || name.length < 1 || name.length > 140 || !LAYER_NAME.test(name)) {
      throw constraint(
        String(name),
        'layerName',
        'Member must satisfy regular expression pattern: (arn:[a-zA-Z0-9-]+:lambda:[a-zA-Z0-9-]+:\\d{12}:layer:[a-zA-Z0-9-_]+)|[a-zA-Z0-9-_]+',
      );
    }
    const runtimes = input['CompatibleRuntimes'];
    const knownRuntimes = new Set<string>(Object.values(lambda.Runtime));
    if (runtimes !== undefined) {
      if (!Array.isArray(runtimes) || runtimes.length > 15) {
        throw constraint(
          `[${String(runtimes)}]`,
          'compatibleRuntimes',
          'Member must have length less than or equal to 15',
        );
      }
      const bad = runtimes.find((r) => typeof r !== 'string' || !knownRuntimes.has(r));
      if (bad !== undefined) {
        throw constraint(
          `[${runtimes.join(', ')}]`,
          'compatibleRuntimes',
          `Member must satisfy enum value set: [${[...knownRuntimes].join(', ')}]`,
        );
      }
    }
    const architectures = input['CompatibleArchitectures'];
    if (architectures !== undefined) {
      if (!Array.isArray(architectures) || architectures.length > 2) {
        throw constraint(
          `[${String(architectures)}]`,
          'compatibleArchitectures',
          'Member must have length less than or equal to 2',
        );
      }
      if (architectures.some((a) => a !== 'x86_64' && a !== 'arm64')) {
        throw constraint(
          `[${architectures.join(', ')}]`,
          'compatibleArchitectures',
          'Member must satisfy enum value set: [x86_64, arm64]',
        );
      }
    }
    const description = input['Description'];
    if (description !== undefined && (typeof description !== 'string' || description.length > 256)) {
      throw constraint('...', 'description', 'Member must have length less than or equal to 256');
    }
    const license = input['LicenseInfo'];
    if (license !== undefined && (typeof license !== 'string' || license.length > 512)) {
      throw constraint('...', 'licenseInfo', 'Member must have length less than or equal to 512');
    }
    const content = (input['Content'] ?? {}) as Record<string, unknown>;
    let zip: Uint8Array;
    if (content['ZipFile'] instanceof Uint8Array) {
      zip = new Uint8Array(content['ZipFile']);
      if (zip.length > MAX_LAYER_UPLOAD_BYTES) {
        throw this.error(
          service,
          'RequestEntityTooLargeException',
          'Request must be smaller than 69905067 bytes for the PublishLayerVersion operation',
          {},
          413,
        );
      }
    } else if (typeof content['S3Bucket'] === 'string' && typeof content['S3Key'] === 'string') {
      const object = this.objects.get(`${content['S3Bucket']}/${content['S3Key']}`);
      if (object === undefined) {
        throw invalid(
          `Error occurred while GetObject. S3 Error Code: NoSuchKey. S3 Error Message: The specified key does not exist.`,
        );
      }
      zip = new Uint8Array(object);
    } else {
      throw invalid(
        'Please provide a source for the layer content: Content.ZipFile, or Content.S3Bucket and Content.S3Key',
      );
    }
    let unzipped = 0;
    try {
      unzipSync(zip, {
        filter: (file) => {
          unzipped += file.originalSize;
          return false;
        },
      });
    } catch {
      throw invalid('Could not unzip uploaded file. Please check your file, then try to upload again.');
    }
    if (unzipped > MAX_LAYER_UNZIPPED_BYTES) {
      throw invalid(`Unzipped size must be smaller than ${MAX_LAYER_UNZIPPED_BYTES} bytes`);
    }
    const base = this.layerBaseArn(name);
    const versions = [...this.layers.keys()]
      .filter((arn) => arn.startsWith(`${base}:`))
      .map((arn) => Number(arn.slice(base.length + 1)))
      .filter((v) => Number.isInteger(v));
    const version = Math.max(0, ...versions) + 1;
    const arn = `${base}:${version}`;
    this.layers.set(arn, {
      arn,
      files: {},
      zip,
      compatibleRuntimes: runtimes === undefined ? undefined : [...(runtimes as string[])],
      compatibleArchitectures: architectures === undefined ? undefined : [...(architectures as string[])],
      description: typeof description === 'string' ? description : '',
      signed: false,
    });
    return {
      ...this.layerVersion(service, arn),
      CreatedDate: new Date(this.clock.now()).toISOString().replace('Z', '+0000'),
      ...(typeof license === 'string' ? { LicenseInfo: license } : {}),
    };
  }

  // ----- end of PublishLayerVersion ------------------------------------------------------------------------------

  private getResources(input: Record<string, unknown>, service: ServiceBinding): Record<string, unknown> {
    const types = input['ResourceTypeFilters'] as string[] | undefined;
    const filters = (input['TagFilters'] as Array<{ Key?: string; Values?: string[] }> | undefined) ?? [];
    const arns = input['ResourceARNList'] as string[] | undefined;
    const perPage = input['ResourcesPerPage'] === undefined ? 50 : Number(input['ResourcesPerPage']);
    if (!Number.isInteger(perPage) || perPage < 1 || perPage > 100) {
      throw this.error(service, 'InvalidParameterException', 'ResourcesPerPage must be between 1 and 100');
    }
    const wantsLambda =
      types === undefined || types.length === 0 || types.some((t) => t === 'lambda' || t === 'lambda:function');
    const matching = wantsLambda
      ? this.order
          .map((name) => this.mustGet(name))
          .filter((fn) => Object.keys(fn.tags).length > 0)
          .filter((fn) => arns === undefined || arns.includes(fn.configuration.FunctionArn))
          .filter((fn) =>
            filters.every((f) => {
              const value = f.Key === undefined ? undefined : fn.tags[f.Key];
              return (
                value !== undefined && (f.Values === undefined || f.Values.length === 0 || f.Values.includes(value))
              );
            }),
          )
      : [];
    const offset = this.pageOffset(service, input['PaginationToken'], 'PaginationTokenExpiredException');
    const page = matching.slice(offset, offset + perPage);
    return {
      ResourceTagMappingList: page.map((fn) => ({
        ResourceARN: fn.configuration.FunctionArn,
        Tags: Object.entries(fn.tags).map(([Key, Value]) => ({ Key, Value })),
      })),
      PaginationToken: offset + perPage < matching.length ? encodeToken(offset + perPage) : '',
    };
  }

  private getMetricData(input: Record<string, unknown>, service: ServiceBinding): Record<string, unknown> {
    type Query = {
      Id?: string;
      MetricStat?: {
        Metric?: { Namespace?: string; MetricName?: string; Dimensions?: Array<{ Name?: string; Value?: string }> };
        Period?: number;
        Stat?: string;
      };
      Expression?: string;
      ReturnData?: boolean;
    };
    const queries = (input['MetricDataQueries'] as Query[] | undefined) ?? [];
    if (queries.length === 0 || queries.length > 500) {
      throw this.error(
        service,
        'InvalidParameterValueException',
        'The collection MetricDataQueries must not be empty and must contain at most 500 elements',
      );
    }
    this.metricsRequested.count += queries.length;
    const ids = new Set<string>();
    for (const query of queries) {
      if (query.Id === undefined || !/^[a-z][a-zA-Z0-9_]*$/.test(query.Id) || query.Id.length > 255) {
        throw this.error(
          service,
          'InvalidParameterValueException',
          `The value ${String(query.Id)} for parameter MetricDataQueries.member.Id is not valid.`,
        );
      }
      if (ids.has(query.Id)) throw this.error(service, 'InvalidParameterValueException', `Duplicate Id ${query.Id}`);
      ids.add(query.Id);
      if (query.MetricStat === undefined) {
        throw this.error(
          service,
          'InvalidParameterValueException',
          'the simulated account answers MetricStat queries only',
        );
      }
    }
    const end = input['EndTime'] instanceof Date ? input['EndTime'] : new Date(String(input['EndTime']));
    return {
      MetricDataResults: queries
        .filter((q) => q.ReturnData !== false)
        .map((query) => {
          const stat = query.MetricStat;
          const metric = stat?.Metric;
          const name = metric?.Dimensions?.find((d) => d.Name === 'FunctionName')?.Value;
          const fn = name === undefined || metric?.Namespace !== 'AWS/Lambda' ? undefined : this.functions.get(name);
          let value: number | null | undefined;
          if (fn !== undefined && metric?.MetricName === 'Throttles' && stat?.Stat === 'Sum') value = fn.throttles;
          if (fn !== undefined && metric?.MetricName === 'ConcurrentExecutions' && stat?.Stat === 'Maximum')
            value = fn.peak;
          const timestamp = new Date(end.getTime() - (stat?.Period ?? 60) * 1000);
          return {
            Id: query.Id,
            Label: metric?.MetricName ?? query.Id,
            Timestamps: typeof value === 'number' ? [timestamp] : [],
            Values: typeof value === 'number' ? [value] : [],
            StatusCode: value === null ? 'InternalError' : 'Complete',
          };
        }),
      Messages: [],
    };
  }

  private describeRouteTables(input: Record<string, unknown>, service: ServiceBinding): Record<string, unknown> {
    const filters = (input['Filters'] as Array<{ Name?: string; Values?: string[] }> | undefined) ?? [];
    const ids = input['RouteTableIds'] as string[] | undefined;
    const denied = filters.some((f) =>
      (f.Values ?? []).some(
        (v) =>
          ((f.Name === 'association.subnet-id' || f.Name === 'subnet-id') && this.deniedSubnets.has(v)) ||
          (f.Name === 'vpc-id' && this.deniedVpcs.has(v)),
      ),
    );
    if (denied) {
      throw this.error(service, 'UnauthorizedOperation', 'You are not authorized to perform this operation.', {}, 403);
    }
    const tests: Record<string, (table: RouteTable, values: string[]) => boolean> = {
      'association.subnet-id': (t, v) => t.Associations.some((a) => v.includes(String(a['SubnetId']))),
      'vpc-id': (t, v) => v.includes(t.VpcId),
      'association.main': (t, v) => t.Associations.some((a) => v.includes(String(a['Main'] === true))),
      'route-table-id': (t, v) => v.includes(t.RouteTableId),
      'association.route-table-id': (t, v) => v.includes(t.RouteTableId),
    };
    for (const filter of filters) {
      if (filter.Name === undefined || tests[filter.Name] === undefined) {
        throw this.error(service, 'InvalidParameterValue', `The filter '${String(filter.Name)}' is invalid`);
      }
    }
    const tables = this.routeTables.filter(
      (table) =>
        (ids === undefined || ids.includes(table.RouteTableId)) &&
        filters.every((f) =>
          (tests[f.Name as string] as (t: RouteTable, v: string[]) => boolean)(table, f.Values ?? []),
        ),
    );
    return { RouteTables: tables };
  }

  private publish(input: Record<string, unknown>, service: ServiceBinding): Record<string, unknown> {
    const topicArn = String(input['TopicArn'] ?? input['TargetArn'] ?? '');
    if (this.topics !== undefined && !this.topics.has(topicArn)) {
      throw this.error(service, 'NotFoundException', 'Topic does not exist');
    }
    const message = input['Message'];
    if (typeof message !== 'string' || message.length === 0) {
      throw this.error(service, 'InvalidParameterException', 'Invalid parameter: Empty message');
    }
    if (Buffer.byteLength(message, 'utf8') > 262144) {
      throw this.error(service, 'InvalidParameterException', 'Invalid parameter: Message too long');
    }
    const subject = input['Subject'];
    if (
      subject !== undefined &&
      (typeof subject !== 'string' || subject.length === 0 || subject.length > 100 || !/^[\x20-\x7e]+$/.test(subject))
    ) {
      throw this.error(service, 'InvalidParameterException', 'Invalid parameter: Subject');
    }
    const attributes = (input['MessageAttributes'] as PublishedMessage['attributes'] | undefined) ?? {};
    if (Object.keys(attributes).length > 10) {
      throw this.error(
        service,
        'InvalidParameterValueException',
        `Number of message attributes [${Object.keys(attributes).length}] exceeds the allowed maximum [10].`,
      );
    }
    for (const [name, attribute] of Object.entries(attributes)) {
      if (
        attribute.DataType === undefined ||
        attribute.StringValue === undefined ||
        attribute.StringValue.length === 0
      ) {
        throw this.error(
          service,
          'InvalidParameterValueException',
          `The message attribute '${name}' must contain non-empty message attribute value for message attribute type '${String(attribute.DataType)}'.`,
        );
      }
    }
    this.published.push({
      topicArn,
      subject: typeof subject === 'string' ? subject : null,
      message,
      attributes: clone(attributes),
      publishedAt: new Date(this.clock.now()).toISOString(),
    });
    return { MessageId: this.newId() };
  }

  /** DescribeExecution's response shape (Step Functions API Reference, DescribeExecution). */
  private describeExecution(input: Record<string, unknown>, service: ServiceBinding): Record<string, unknown> {
    const arn = typeof input['executionArn'] === 'string' ? input['executionArn'] : '';
    if (!/^arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:execution:[^:]+:[^:]+$/.test(arn)) {
      throw this.error(service, 'InvalidArn', `Invalid Arn: 'Resource type not valid in this context: execution'`);
    }
    const record = this.executions.get(arn);
    if (record === undefined) throw this.error(service, 'ExecutionDoesNotExist', `Execution Does Not Exist: '${arn}'`);
    return {
      executionArn: record.executionArn,
      stateMachineArn: record.stateMachineArn,
      name: record.name,
      status: record.status,
      startDate: new Date(record.startDate),
      ...(record.stopDate !== undefined ? { stopDate: new Date(record.stopDate) } : {}),
      ...(record.input !== undefined ? { input: record.input, inputDetails: { included: true } } : {}),
      ...(record.error !== undefined ? { error: record.error } : {}),
      ...(record.cause !== undefined ? { cause: record.cause } : {}),
      redriveCount: 0,
      redriveStatus: record.status === 'RUNNING' || record.status === 'SUCCEEDED' ? 'NOT_REDRIVABLE' : 'REDRIVABLE',
    };
  }

  private bucket(service: ServiceBinding, input: Record<string, unknown>): string {
    const bucket = String(input['Bucket'] ?? '');
    if (this.buckets !== undefined && !this.buckets.has(bucket)) {
      throw this.error(service, 'NoSuchBucket', 'The specified bucket does not exist');
    }
    return bucket;
  }

  private parameterName(nameOrArn: string): string {
    const arn = /^arn:aws[a-z-]*:ssm:[^:]+:\d{12}:parameter(\/.*)$/.exec(nameOrArn);
    return arn !== null ? (arn[1] as string) : nameOrArn;
  }

  private parameter(service: ServiceBinding, nameOrArn: string, decrypt: boolean): Record<string, unknown> {
    const name = this.parameterName(nameOrArn);
    const value = this.parameters.get(name);
    if (value === undefined) throw this.error(service, 'ParameterNotFound', `Parameter ${name} not found.`);
    return {
      Name: name,
      Type: 'SecureString',
      Value: decrypt ? value : `AQICAH${Buffer.from(shortHash(`kms:${name}:${value}`, 48), 'hex').toString('base64')}`,
      Version: this.parameterVersions.get(name) ?? 1,
      LastModifiedDate: new Date('2024-09-01T00:00:00Z'),
      ARN: `arn:aws:ssm:${this.region}:${this.account}:parameter${name.startsWith('/') ? '' : '/'}${name}`,
      DataType: 'text',
    };
  }
}
