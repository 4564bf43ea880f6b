/**
 * Each handler's IAM policy: the table "AWS calls per handler" of docs/architecture.md, as code. One function per
 * handler, one statement per purpose, resources as narrow as the API allows. `Resource: *` appears only where the
 * action has no resource-level permission, each with a comment.
 */
import { ArnFormat, Aws, Stack } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { budgetKeys } from '../../lambdas/shared/domain/budget';
import { Config } from '../config';
import { AuditTables } from './audit-tables';
import { HouseFunction } from './house-function';
import { INVENTORY_PREFIX } from './inventory-bucket';
import { RUN_ITEMS_PARTITION } from '../../lambdas/shared/domain/table-schema';

export interface EngineResources {
  readonly config: Config;
  readonly key: kms.IKey;
  /** The HMAC key the engine derives its MAC key from (kms:GenerateMac only). */
  readonly macKey: kms.IKey;
  readonly tables: AuditTables;
  readonly skipTopic: sns.ITopic;
  readonly alarmTopic: sns.ITopic;
  readonly inventoryBucket: s3.IBucket;
}

/** Actions on the stack's key that DynamoDB, SNS and S3 need on the caller's behalf to write/read encrypted data. */
const KEY_ACTIONS = ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'];

/** `arn:PARTITION:lambda:REGION:ACCOUNT:function:*`: every function of this account and region. */
export function allFunctionsArn(stack: Stack): string {
  return stack.formatArn({
    service: 'lambda',
    resource: 'function',
    resourceName: '*',
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/** The Defender layer without its version, with `:*`: any version of that one layer. */
export function defenderLayerAnyVersion(layerVersionArn: string): string {
  return `${layerVersionArn.slice(0, layerVersionArn.lastIndexOf(':'))}:*`;
}

/** The ARNs of the SSM parameters named in defender.environment (`{ ssmParameter }` values). */
export function ssmParameterArns(stack: Stack, config: Config): string[] {
  // "/a/b" and "a/b" name the same parameter; its ARN is ...:parameter/a/b.
  const names = Object.values(config.defender.environment).flatMap((value) =>
    typeof value === 'object' ? [value.ssmParameter.replace(/^\//, '')] : [],
  );
  return [...new Set(names)].sort().map((name) =>
    stack.formatArn({
      service: 'ssm',
      resource: 'parameter',
      resourceName: name,
      arnFormat: ArnFormat.SLASH_RESOURCE_NAME,
    }),
  );
}

/**
 * `arn:PARTITION:secretsmanager:REGION:ACCOUNT:secret:NAME-??????`: exactly the one secret `defender.policySource`
 * names. Secrets Manager appends a hyphen and six random characters to a secret's ARN (API Reference, CreateSecret:
 * ARN), and IAM authorizes GetSecretValue on that full ARN; `??????` matches those six characters only, so neither a
 * later secret with a longer name (`NAME-old-abcdef`) nor any other secret is covered (Secrets Manager User Guide,
 * "Permissions policy examples": "-??????" in the resource ARN).
 */
export function consoleSecretArn(stack: Stack, secretName: string): string {
  return stack.formatArn({
    service: 'secretsmanager',
    resource: 'secret',
    resourceName: `${secretName}-??????`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/**
 * secretsmanager:GetSecretValue on the Console credentials secret (issue 10), nothing else. The secret's key is the
 * customer's choice: with the default aws/secretsmanager key, Secrets Manager decrypts on the caller's behalf and no
 * KMS grant is needed; a secret under a customer managed key needs that key's policy to allow this role kms:Decrypt
 * via secretsmanager (documented in the deploy section, not granted here).
 */
function allowConsoleCredentials(fn: HouseFunction, r: EngineResources, stack: Stack): void {
  const source = r.config.defender.policySource;
  if (source === undefined || r.config.mode !== 'protect') return;
  fn.allow(
    'ReadConsoleCredentials',
    ['secretsmanager:GetSecretValue'],
    [consoleSecretArn(stack, source.credentialsSecret)],
  );
}

function allowKey(fn: HouseFunction, r: EngineResources): void {
  fn.allow('UseStackKey', KEY_ACTIONS, [r.key.keyArn]);
}

/**
 * The run's shared control-plane budget (lambdas/shared/adapters/control-plane-budget.ts): UpdateItem on the state
 * table's one schedule item only. `dynamodb:LeadingKeys` is the partition key of the request; `ForAllValues:` with a
 * single value limits the statement to that item. *Source:* DynamoDB Developer Guide, "Using IAM policy conditions
 * for fine-grained access control" (dynamodb:LeadingKeys).
 */
function allowControlPlaneBudget(fn: HouseFunction, r: EngineResources): void {
  fn.allow('SharedControlPlaneBudget', ['dynamodb:UpdateItem'], [r.tables.stateTable.tableArn], {
    'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [budgetKeys.controlPlane()] },
  });
}

/** kms:GenerateMac on the HMAC key: derives the MAC key of our own values (adapters/mac-key.ts). Nothing else. */
function allowMacKey(fn: HouseFunction, r: EngineResources): void {
  fn.allow('DeriveMacKey', ['kms:GenerateMac'], [r.macKey.keyArn]);
}

/** ssm:GetParameter on the Defender's parameters, and kms:Decrypt only through SSM (their key is the customer's). */
function allowDefenderParameters(fn: HouseFunction, r: EngineResources, stack: Stack): void {
  const parameters = ssmParameterArns(stack, r.config);
  if (parameters.length === 0) return;
  fn.allow('ReadDefenderParameters', ['ssm:GetParameter'], parameters);
  // The SecureString's key is the customer's (often aws/ssm) and unknown at synth time: any key of this account,
  // but only when SSM calls KMS on this role's behalf.
  fn.allow(
    'DecryptDefenderParameters',
    ['kms:Decrypt'],
    [stack.formatArn({ service: 'kms', resource: 'key', resourceName: '*' })],
    { StringEquals: { 'kms:ViaService': `ssm.${Aws.REGION}.amazonaws.com` } },
  );
}

/** Where record-failure leaves the decisions it could not write: `runs/<runId>/unrecorded/<fn>.json` (issue 9). */
export const UNRECORDED_OBJECTS = `${INVENTORY_PREFIX}*/unrecorded/*`;

/**
 * The compact repeats items of a run (lambdas/shared/domain/repeats.ts) live in the audit table's `#run` partition:
 * a Query of that partition only (dynamodb:LeadingKeys), never of a function's own items.
 */
function allowReadRepeats(fn: HouseFunction, r: EngineResources, why: string): void {
  fn.allow(why, ['dynamodb:Query'], [r.tables.auditTable.tableArn], {
    'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': [RUN_ITEMS_PARTITION] },
  });
}

export function grantStartRun(fn: HouseFunction, r: EngineResources, stack: Stack): void {
  // The lease: acquired, or taken over from an ended holder (both conditional puts on the one LOCK item).
  // GetItem: names the holder where a refused put does not return it.
  fn.allow('LeaseOnStateTable', ['dynamodb:PutItem', 'dynamodb:GetItem'], [r.tables.stateTable.tableArn]);
  // RUN_OVERLAP, LEASE_TAKEN_OVER, and the decisions replayed or reconciled (conditional puts, never overwrites).
  fn.allow('AppendAudit', ['dynamodb:PutItem'], [r.tables.auditTable.tableArn]);
  // Reconciliation (lambdas/shared/reconcile.ts): earlier PENDING changes (index byChange), whether their run has a
  // decision (one GetItem on its deterministic key), and the function as it is now.
  fn.allow('FindPendingChanges', ['dynamodb:Query'], [r.tables.auditIndexArn('byChange')]);
  fn.allow('ReadRunDecision', ['dynamodb:GetItem'], [r.tables.auditTable.tableArn]);
  fn.allow('ReadChangedFunctions', ['lambda:GetFunction'], [allFunctionsArn(stack)]);
  // Replay (lambdas/shared/replay.ts): list the run prefixes, read each unrecorded decision, delete it once written.
  fn.allow('ListUnrecorded', ['s3:ListBucket'], [r.inventoryBucket.bucketArn], {
    StringLike: { 's3:prefix': [INVENTORY_PREFIX, `${INVENTORY_PREFIX}*`] },
  });
  fn.allow(
    'ReplayUnrecorded',
    ['s3:GetObject', 's3:DeleteObject'],
    [r.inventoryBucket.arnForObjects(UNRECORDED_OBJECTS)],
  );
  // A reconciled or replayed decision is notified like any other and remembered in the last-decision digest; the
  // reconciliation compares our values by keyed MAC (the function's landed change against the PENDING's plan).
  fn.allow('PublishSkips', ['sns:Publish'], [r.skipTopic.topicArn]);
  fn.allow('LastDecisions', ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'], [r.tables.stateTable.tableArn]);
  // The outbox drain: the decisions of the runs that still owe notices (index byRun).
  fn.allow('ReadOwingRuns', ['dynamodb:Query'], [r.tables.auditIndexArn('byRun')]);
  // Replay: a function a failed batch recorded as a repeat is decided (no FAILED over it).
  allowReadRepeats(fn, r, 'ReadRunRepeats');
  allowOutbox(fn, r);
  allowKey(fn, r);
  allowMacKey(fn, r);
}

/**
 * The notice outbox (lambdas/shared/notices.ts): UpdateItem ADD/DELETE on the state table's OUTBOX item, the set of
 * runs whose decisions still owe notices. (The digests that mark a notice sent are the LastDecisions statements.)
 */
function allowOutbox(fn: HouseFunction, r: EngineResources): void {
  fn.allow('NoticeOutbox', ['dynamodb:UpdateItem'], [r.tables.stateTable.tableArn]);
}

/**
 * states:DescribeExecution on the executions of this state machine only: start-run asks whether the lease holder
 * still runs (issue 9). In its own policy, not the role's default one: the state machine's definition names the
 * start-run function, which depends on its role's default policy, so a statement there naming the state machine
 * would close a circular dependency (policy -> state machine -> function -> policy). This policy depends on the role
 * and the state machine and nothing depends on it; the resource is exact (`execution:<its name>:*`), no name
 * pattern guessed. Until CloudFormation creates it (first deploy only), DescribeExecution fails: no takeover, the
 * safe reading.
 */
export function grantLeaseTakeover(fn: HouseFunction, stateMachine: sfn.StateMachine, stack: Stack): iam.Policy {
  return new iam.Policy(fn, 'LeaseTakeoverPolicy', {
    roles: [fn.role],
    statements: [
      new iam.PolicyStatement({
        sid: 'CheckLeaseHolder',
        actions: ['states:DescribeExecution'],
        resources: [executionsArn(stack, stateMachine)],
      }),
    ],
  });
}

/** `arn:PARTITION:states:REGION:ACCOUNT:execution:<state machine name>:*`: every execution of that one machine. */
export function executionsArn(stack: Stack, stateMachine: sfn.StateMachine): string {
  return stack.formatArn({
    service: 'states',
    resource: 'execution',
    resourceName: `${stateMachine.stateMachineName}:*`,
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

export function grantTakeInventory(fn: HouseFunction, r: EngineResources): void {
  allowControlPlaneBudget(fn, r);
  // lambda:ListFunctions has no resource-level permission.
  fn.allow('ListFunctions', ['lambda:ListFunctions'], ['*']);
  // tag:GetResources has no resource-level permission.
  fn.allow('FindExclusionTags', ['tag:GetResources'], ['*']);
  fn.allow('ReadExclusions', ['dynamodb:Scan'], [r.tables.stateTable.tableArn]);
  // Lambda@Edge associations (issue 8 item 15), read once per run and only in us-east-1 (the only Region where
  // Lambda@Edge functions can live). cloudfront:ListDistributions has no resource-level permission.
  fn.allow('FindEdgeAssociations', ['cloudfront:ListDistributions'], ['*']);
  fn.allow('WriteInventory', ['s3:PutObject'], [r.inventoryBucket.arnForObjects(`${INVENTORY_PREFIX}*`)]);
  if (r.config.mode === 'protect') {
    fn.allow('CheckDefenderLayer', ['lambda:GetLayerVersion'], [r.config.defender.layerArn]);
  }
  fn.allow('RaiseAlarm', ['sns:Publish'], [r.alarmTopic.topicArn]);
  allowKey(fn, r);
  allowMacKey(fn, r);
}

export function grantAssessBatch(fn: HouseFunction, r: EngineResources, stack: Stack): void {
  allowControlPlaneBudget(fn, r);
  // cloudwatch:GetMetricData has no resource-level permission.
  fn.allow('ReadFunctionMetrics', ['cloudwatch:GetMetricData'], ['*']);
  fn.allow(
    'ReadCandidates',
    ['lambda:GetFunction', 'lambda:ListProvisionedConcurrencyConfigs'],
    [allFunctionsArn(stack)],
  );
  // Code signing (issue 8 item 16, candidates only): the function's config, then the config's policy.
  fn.allow('ReadCodeSigning', ['lambda:GetFunctionCodeSigningConfig'], [allFunctionsArn(stack)]);
  fn.allow('ReadCodeSigningPolicies', ['lambda:GetCodeSigningConfig'], [codeSigningConfigsArn(stack)]);
  // ec2:DescribeRouteTables has no resource-level permission.
  fn.allow('ReadRouteTables', ['ec2:DescribeRouteTables'], ['*']);
  fn.allow('AppendAudit', ['dynamodb:PutItem'], [r.tables.auditTable.tableArn]);
  // A retried batch reads back the repeats item its first attempt wrote (issue 11).
  allowReadRepeats(fn, r, 'ReadBatchRepeats');
  // Deferral is decided here (issue 11): a candidate claims one of the run's protection slots (the lease renewed,
  // the run counter updated; a refused claim read back once) before its expensive reads.
  fn.allow('ClaimProtectionSlots', ['dynamodb:UpdateItem', 'dynamodb:GetItem'], [r.tables.stateTable.tableArn], {
    'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['LOCK', 'RUN#*'] },
  });
  fn.allow('LastDecisions', ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'], [r.tables.stateTable.tableArn]);
  fn.allow('PublishSkips', ['sns:Publish'], [r.skipTopic.topicArn]);
  // A notice SNS refused puts the run in the outbox (lambdas/shared/notices.ts).
  allowOutbox(fn, r);
  // Dry-run resolves our SSM values read-only too (issue 8 item 9), so both modes decide alike.
  allowDefenderParameters(fn, r, stack);
  allowKey(fn, r);
  // No kms:GenerateMac: assess-batch compares the MACs take-inventory computed with the recorded ones, and a role
  // that could derive the MAC key could test guesses against every MAC in the audit table.
}

/** Every code signing config of this account and region (`...:code-signing-config:csc-...`). */
export function codeSigningConfigsArn(stack: Stack): string {
  return stack.formatArn({
    service: 'lambda',
    resource: 'code-signing-config',
    resourceName: '*',
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

/** Every layer version of this region, in any account: a function's layers must be in its own region. */
export function regionLayersArn(stack: Stack): string {
  return stack.formatArn({
    service: 'lambda',
    account: '*',
    resource: 'layer',
    resourceName: '*:*',
    arnFormat: ArnFormat.COLON_RESOURCE_NAME,
  });
}

export function grantProtectFunction(fn: HouseFunction, r: EngineResources, stack: Stack): void {
  allowControlPlaneBudget(fn, r);
  fn.allow('ReadFunction', ['lambda:GetFunction', 'lambda:GetFunctionConfiguration'], [allFunctionsArn(stack)]);
  // Fresh tags before any change (a late exclusion tag must hold). GetFunction returns Tags only to a caller allowed
  // lambda:ListTags (Lambda API reference, GetFunction), so the tags are read with ListTags itself.
  fn.allow('ReadFreshTags', ['lambda:ListTags'], [allFunctionsArn(stack)]);
  if (r.config.mode === 'protect') {
    // "To add a layer to a function you must have permission to call GetLayerVersion on the layer version"
    // (Lambda developer guide, adding-layers.html). UpdateFunctionConfiguration sends the function's whole layer
    // list, the customer's own layers (possibly shared from another account) included, so the role may read any
    // layer version of this region. GetLayerVersion is read-only; the Defender's own declaration is read too.
    fn.allow('ReadLayers', ['lambda:GetLayerVersion'], [regionLayersArn(stack)]);
    // lambda:Layer holds every layer ARN of the request, and UpdateFunctionConfiguration replaces the layer list
    // wholesale, so the request always carries the customer's own layers too. ForAllValues pinned to the Defender
    // would therefore refuse any function that already has another layer. ForAnyValue instead requires that the
    // request include a version of the Defender layer: this role cannot change a function's configuration
    // without adding (or keeping) the Defender, and cannot strip layers to an empty list.
    fn.allow('ProtectWithDefenderLayer', ['lambda:UpdateFunctionConfiguration'], [allFunctionsArn(stack)], {
      'ForAnyValue:StringLike': { 'lambda:Layer': [defenderLayerAnyVersion(r.config.defender.layerArn)] },
    });
  }
  allowDefenderParameters(fn, r, stack);
  allowConsoleCredentials(fn, r, stack);
  fn.allow('AppendAudit', ['dynamodb:PutItem'], [r.tables.auditTable.tableArn]);
  // A retried invocation first reads this run's PENDING and decision of the function (issue 9: one decision a run).
  fn.allow('ReadRunRecords', ['dynamodb:GetItem'], [r.tables.auditTable.tableArn]);
  fn.allow(
    'CountersExclusionsAndLastDecisions',
    ['dynamodb:UpdateItem', 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'],
    [r.tables.stateTable.tableArn],
  );
  // The encrypted previous values of an in-place refresh (RESTORE#<function>#<runId>; conditional put, no TTL).
  fn.allow('StoreRefreshRestore', ['dynamodb:PutItem'], [r.tables.stateTable.tableArn]);
  fn.allow('PublishSkips', ['sns:Publish'], [r.skipTopic.topicArn]);
  allowKey(fn, r);
  allowMacKey(fn, r);
}

export function grantRecordFailure(fn: HouseFunction, r: EngineResources): void {
  fn.allow('AppendAudit', ['dynamodb:PutItem'], [r.tables.auditTable.tableArn]);
  // The run's PENDING of a failed protection (its images go into the FAILED record): one consistent GetItem.
  fn.allow('ReadRunPending', ['dynamodb:GetItem'], [r.tables.auditTable.tableArn]);
  // A function the failed batch recorded as a repeat before it died is decided (no FAILED over it).
  allowReadRepeats(fn, r, 'ReadRunRepeats');
  // When the audit table stays unreachable: the decisions, for the next run's start-run to replay (issue 9).
  fn.allow('KeepUnrecorded', ['s3:PutObject'], [r.inventoryBucket.arnForObjects(UNRECORDED_OBJECTS)]);
  fn.allow('PublishSkips', ['sns:Publish'], [r.skipTopic.topicArn]);
  // A FAILED notice sent is marked in the function's last-decision digest; one SNS refused puts the run in the
  // outbox (lambdas/shared/notices.ts).
  fn.allow('LastDecisions', ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'], [r.tables.stateTable.tableArn]);
  allowOutbox(fn, r);
  allowKey(fn, r);
}

export function grantFinishRun(fn: HouseFunction, r: EngineResources): void {
  fn.allow('ReadRunDecisions', ['dynamodb:Query'], [r.tables.auditIndexArn('byRun')]);
  fn.allow('ReleaseLease', ['dynamodb:DeleteItem'], [r.tables.stateTable.tableArn]);
  // The summary, and the outbox drain's owed notices (marked sent in the last-decision digests).
  fn.allow('PublishSummary', ['sns:Publish'], [r.skipTopic.topicArn]);
  fn.allow('LastDecisions', ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'], [r.tables.stateTable.tableArn]);
  allowOutbox(fn, r);
  allowKey(fn, r);
}
