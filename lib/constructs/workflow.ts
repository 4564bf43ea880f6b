/**
 * The hourly job: an EventBridge rule and the Step Functions state machine of docs/architecture.md. JSONPath only,
 * no variables, no JSONata (the local runner executes this very definition).
 *
 * Parent: STANDARD (one execution an hour; exactly-once steps, the 2 h run fits, history kept 90 days):
 * Start run, Take inventory, Assess every function, then in protect mode Protect eligible functions, Finish run.
 *
 * Assess every function: a Distributed Map over the run inventory in S3, one child workflow per batch, EXPRESS in
 * both modes (billed by request and duration instead of per state transition, see docs/architecture.md). A child
 * only assesses: Assess batch returns its `eligible` ProtectRequests (always empty in dry-run), and a batch that
 * failed after its retries is recorded FAILED by Record batch failure and returns none. The 5-minute Express limit:
 * a batch is at most `rates.batchSize` functions and MAX_INPUT_BYTES_PER_BATCH, the assess Lambda times out at
 * 4 minutes, and the configuration refuses rates whose batch could not make its paced control-plane reads in
 * MAX_ASSESS_PACED_SECONDS (domain/batching.ts; the defaults need 100 s at most, the bench's longest batch took
 * 88 s). A child may run again (Express has no exactly-once guarantee,
 * https://docs.aws.amazon.com/step-functions/latest/dg/express-at-least-once-execution.html, and Assess batch
 * retries handler errors): assess's writes are conditional puts on the run's decision keys, so a second attempt
 * records nothing twice.
 *
 * Protect mode only: the map's ResultWriter WriterConfig `Transformation: FLATTEN` (output only, nothing written to
 * S3) joins the children's eligible arrays into one list at `$.eligible`, and the parent's inline Map Protect
 * eligible functions invokes Protect function for each, in the STANDARD parent (exactly once; a protection waits
 * until the function is ready again and can outlast an Express execution), `$.workers` at a time: each protect
 * paces its control-plane calls at `rates.controlPlanePerSecond / workers` (domain/batching.ts). A protection that
 * fails is recorded FAILED by Record protect failure. An entry that is not a ProtectRequest (AWS returns a child
 * that failed as its execution record, unflattened) is refused by protect-function before it does anything, and
 * Record protect failure records nothing for it: that batch counted against the map's tolerated failures. Such a record carries the child's input (its batch, up to MAX_INPUT_BYTES_PER_BATCH), so a few of them
 * can exceed the payload limit and fail the run (Finish failed run); a child fails only when Record batch failure
 * failed too after its retries, or the child outlasted 5 minutes. Functions that need no change never reach the parent: the parent's transitions grow with the functions
 * changed, not with the estate.
 *
 * Payloads: a child returns only its eligible list (no counts: Finish run counts from the audit table, and its
 * input stays the run context), so the parent's payload is the run context and that list: at most
 * `maxProtectionsPerRun` requests plus the run's capped in-place refreshes, each a function's identity and gathered
 * facts without its configuration (assess-batch `decide`): about 0.6 KB in the bench's estate (101 requests were
 * 57 KB), so the default 25 stay near 15 KB. The local run fails a payload over 256 KiB as AWS does
 * (local/asl-local.ts).
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as cxapi from 'aws-cdk-lib/cx-api';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';
import { MAX_INPUT_BYTES_PER_BATCH } from '../../lambdas/shared/domain/batching';
import { Config } from '../config';
import { INVENTORY_PREFIX } from './inventory-bucket';

/** Readable state names: the console, the logs and the local runner show these. */
export const STATE_NAMES = {
  startRun: 'Start run',
  anotherRunActive: 'Another run active?',
  skipOverlappingRun: 'Skip overlapping run',
  takeInventory: 'Take inventory',
  assessEveryFunction: 'Assess every function',
  assessBatch: 'Assess batch',
  recordBatchFailure: 'Record batch failure',
  noEligibleFunctions: 'No eligible functions',
  protectEligibleFunctions: 'Protect eligible functions',
  protectFunction: 'Protect function',
  recordProtectFailure: 'Record protect failure',
  finishRun: 'Finish run',
  finishFailedRun: 'Finish failed run',
  runFailed: 'Run failed',
} as const;

/** Transient Lambda service errors: retried on every task, with backoff and full jitter. */
export const LAMBDA_SERVICE_ERRORS = [
  'Lambda.TooManyRequestsException',
  'Lambda.ServiceException',
  'Lambda.AWSLambdaException',
  'Lambda.SdkClientException',
  'Lambda.ClientExecutionTimeoutException',
];

/** Share of child workflows (batches) that may fail before the whole map fails. */
export const TOLERATED_FAILURE_PERCENTAGE = 5;

/**
 * EXPRESS children in both modes: a child only assesses its batch (under the 5-minute Express limit); the changes
 * run in the STANDARD parent. Kept as a function of the configuration for the callers that ask.
 */
export function childExecutionType(_config: Config): sfn.StateMachineType {
  return sfn.StateMachineType.EXPRESS;
}

export interface WorkflowFunctions {
  readonly startRun: lambda.IFunction;
  readonly takeInventory: lambda.IFunction;
  readonly assessBatch: lambda.IFunction;
  readonly recordFailure: lambda.IFunction;
  readonly finishRun: lambda.IFunction;
  /** Present in protect mode only. */
  readonly protectFunction?: lambda.IFunction;
}

export interface WorkflowProps {
  readonly config: Config;
  readonly functions: WorkflowFunctions;
  readonly inventoryBucket: s3.IBucket;
  readonly key: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  /** @default Duration.hours(2) */
  readonly timeout?: Duration;
}

interface InvokeOptions {
  /** The Lambda's event; omitted: the state's (InputPath-filtered) input. */
  readonly payload?: sfn.TaskInput;
  /** Also retry any error the handler raised (States.TaskFailed). Not for steps that change functions. */
  readonly retryHandlerErrors: boolean;
  readonly inputPath?: string;
  readonly outputPath?: string;
}

export class Workflow extends Construct {
  public readonly stateMachine: sfn.StateMachine;
  public readonly rule: events.Rule;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: WorkflowProps) {
    super(scope, id);
    // ResultWriterV2 (the WriterConfig below) is rendered only under this feature flag; set here, before any child
    // construct, so the workflow does not depend on the app's cdk.json.
    this.node.setContext(cxapi.STEPFUNCTIONS_USE_DISTRIBUTED_MAP_RESULT_WRITER_V2, true);
    const { config, functions } = props;
    const protectFunction = config.mode === 'protect' ? functions.protectFunction : undefined;

    const startRun = this.invoke(STATE_NAMES.startRun, functions.startRun, {
      payload: sfn.TaskInput.fromObject({
        executionArn: sfn.JsonPath.stringAt('$$.Execution.Id'),
        executionName: sfn.JsonPath.stringAt('$$.Execution.Name'),
        startTime: sfn.JsonPath.stringAt('$$.Execution.StartTime'),
      }),
      retryHandlerErrors: true,
    });

    const runContext = {
      runId: sfn.JsonPath.stringAt('$.runId'),
      startedAt: sfn.JsonPath.stringAt('$.startedAt'),
    };
    const takeInventory = this.invoke(STATE_NAMES.takeInventory, functions.takeInventory, {
      payload: sfn.TaskInput.fromObject(runContext),
      retryHandlerErrors: true,
    });

    const assessEveryFunction = new sfn.DistributedMap(this, STATE_NAMES.assessEveryFunction, {
      comment: 'Every function of the account and region, read from the run inventory in S3, in batches',
      itemReader: new sfn.S3JsonItemReader({
        bucketNamePath: sfn.JsonPath.stringAt('$.inventory.bucket'),
        key: sfn.JsonPath.stringAt('$.inventory.key'),
      }),
      itemBatcher: new sfn.ItemBatcher({
        maxItemsPerBatch: config.rates.batchSize,
        maxInputBytesPerBatch: MAX_INPUT_BYTES_PER_BATCH,
        // The RunContext of every child (rendered as-is, so the JSONPath keys end in ".$").
        batchInput: {
          'runId.$': '$.runId',
          'startedAt.$': '$.startedAt',
          'protectionAllowed.$': '$.protectionAllowed',
          // Why not, when the layer check failed: the layer is wrong, or it could not be checked (issue 9).
          'protectionBlockedBy.$': '$.protectionBlockedBy',
          'workers.$': '$.workers',
        },
      }),
      maxConcurrency: config.rates.maxConcurrency,
      toleratedFailurePercentage: TOLERATED_FAILURE_PERCENTAGE,
      mapExecutionType: childExecutionType(config),
      // Children return only their eligible lists (finish-run counts from the audit table, not from the map's
      // results). Dry-run: none, and the map's result is discarded. Protect: FLATTEN joins them into one list, the
      // map's state output (WriterConfig alone writes nothing to S3; "FLATTEN - returns the output of the child
      // workflow executions. If a child workflow execution returns an array, this option flattens the array, prior
      // to returning the result to a state output", and a failed child is returned as with NONE:
      // https://docs.aws.amazon.com/step-functions/latest/dg/input-output-resultwriter.html).
      ...(protectFunction === undefined
        ? { resultPath: sfn.JsonPath.DISCARD }
        : {
            resultWriterV2: new sfn.ResultWriterV2({
              writerConfig: new sfn.WriterConfig({
                transformation: sfn.Transformation.FLATTEN,
                outputType: sfn.OutputType.JSON,
              }),
            }),
            resultPath: '$.eligible',
          }),
    });
    assessEveryFunction.itemProcessor(this.batchWorkflow(props));

    const finishRun = this.invoke(STATE_NAMES.finishRun, functions.finishRun, {
      payload: sfn.TaskInput.fromObject(runContext),
      retryHandlerErrors: true,
    });
    const finishFailedRun = this.invoke(STATE_NAMES.finishFailedRun, functions.finishRun, {
      payload: sfn.TaskInput.fromObject({
        ...runContext,
        failed: true,
        error: sfn.JsonPath.objectAt('$.error'),
      }),
      retryHandlerErrors: true,
    });
    const runFailed = new sfn.Fail(this, STATE_NAMES.runFailed, {
      error: 'RunFailed',
      cause: 'The run failed; Finish run recorded it (see the audit table and the execution history)',
    });
    finishFailedRun.next(runFailed);

    takeInventory.addCatch(finishFailedRun, { errors: ['States.ALL'], resultPath: '$.error' });
    assessEveryFunction.addCatch(finishFailedRun, { errors: ['States.ALL'], resultPath: '$.error' });
    // Protect mode: after the map, the parent protects the eligible functions; a protection whose failure could not
    // be recorded either fails the run (recorded by Finish failed run, the lease released), as a failed child did.
    const protectEligible =
      protectFunction === undefined ? undefined : this.protectEligible(protectFunction, functions.recordFailure);
    protectEligible?.addCatch(finishFailedRun, { errors: ['States.ALL'], resultPath: '$.error' });
    protectEligible?.next(finishRun);

    const definition = startRun.next(
      new sfn.Choice(this, STATE_NAMES.anotherRunActive)
        .when(
          sfn.Condition.booleanEquals('$.overlap', true),
          new sfn.Succeed(this, STATE_NAMES.skipOverlappingRun, {
            comment: 'Start run recorded RUN_OVERLAP: another execution holds the lease',
          }),
        )
        .otherwise(takeInventory.next(assessEveryFunction).next(protectEligible ?? finishRun)),
    );

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.stateMachine = new sfn.StateMachine(this, 'StateMachine', {
      comment: 'Zero-Impact Protect: assess every Lambda function and protect the eligible ones',
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(definition),
      timeout: props.timeout ?? Duration.hours(2),
      tracingEnabled: true,
      logs: {
        destination: this.logGroup,
        level: sfn.LogLevel.ALL,
        // Payloads are redacted already, but the events stay lean: names and errors, not inventories.
        includeExecutionData: false,
      },
    });

    // The ItemReader reads the run's inventory object (bucket and key come from Take inventory's output, so CDK
    // cannot scope this itself): only run inventories of the one bucket, and the key that encrypts them.
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({
        sid: 'ReadRunInventory',
        actions: ['s3:GetObject'],
        resources: [props.inventoryBucket.arnForObjects(`${INVENTORY_PREFIX}*`)],
      }),
    );
    this.stateMachine.addToRolePolicy(
      new iam.PolicyStatement({ sid: 'DecryptRunInventory', actions: ['kms:Decrypt'], resources: [props.key.keyArn] }),
    );

    this.rule = new events.Rule(this, 'Schedule', {
      description: 'Starts a Zero-Impact Protect run',
      schedule: events.Schedule.expression(config.schedule),
      targets: [new targets.SfnStateMachine(this.stateMachine)],
    });
  }

  /** The child workflow run for each batch of functions (EXPRESS): assess only; returns the eligible list. */
  private batchWorkflow(props: WorkflowProps): sfn.IChainable {
    const { functions } = props;
    const assessBatch = this.invoke(STATE_NAMES.assessBatch, functions.assessBatch, {
      retryHandlerErrors: true,
      // The child's output: the ProtectRequests only (empty in dry-run), never the counts or the batch.
      outputPath: '$.eligible',
    });
    const recordBatchFailure = this.invoke(STATE_NAMES.recordBatchFailure, functions.recordFailure, {
      payload: sfn.TaskInput.fromObject({
        runId: sfn.JsonPath.stringAt('$.BatchInput.runId'),
        startedAt: sfn.JsonPath.stringAt('$.BatchInput.startedAt'),
        items: sfn.JsonPath.listAt('$.Items'),
        error: sfn.JsonPath.objectAt('$.error'),
      }),
      retryHandlerErrors: true,
    });
    // Its functions are recorded FAILED: nothing of this batch is protected, and the child returns an empty list.
    const noEligible = new sfn.Pass(this, STATE_NAMES.noEligibleFunctions, { result: sfn.Result.fromArray([]) });
    assessBatch.addCatch(recordBatchFailure, { errors: ['States.ALL'], resultPath: '$.error' });
    recordBatchFailure.next(noEligible);
    return assessBatch;
  }

  /** Protect mode, in the parent: one Protect function per eligible function of the whole run. */
  private protectEligible(protectFunction: lambda.IFunction, recordFailure: lambda.IFunction): sfn.Map {
    const protect = this.invoke(STATE_NAMES.protectFunction, protectFunction, {
      inputPath: '$.request',
      // It retries AWS's answers itself (conflicts, readiness); a second layer of retries would re-run a change.
      retryHandlerErrors: false,
    });
    const recordProtectFailure = this.invoke(STATE_NAMES.recordProtectFailure, recordFailure, {
      payload: sfn.TaskInput.fromObject({
        // From the parent's run context (ItemSelector), not from the item: this holds for any item.
        runId: sfn.JsonPath.stringAt('$.runId'),
        startedAt: sfn.JsonPath.stringAt('$.startedAt'),
        items: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.request')),
        error: sfn.JsonPath.objectAt('$.error'),
      }),
      retryHandlerErrors: true,
    });
    protect.addCatch(recordProtectFailure, { errors: ['States.ALL'], resultPath: '$.error' });

    const protectEligible = new sfn.Map(this, STATE_NAMES.protectEligibleFunctions, {
      comment: 'Every function assess found eligible, $.workers at a time: each waits until its function is ready',
      itemsPath: '$.eligible',
      // The run's worker count (1 when the inventory was one batch, else rates.maxConcurrency): each protect paces
      // itself at rates.controlPlanePerSecond / workers, so the run stays within its control-plane budget.
      maxConcurrencyPath: '$.workers',
      itemSelector: {
        runId: sfn.JsonPath.stringAt('$.runId'),
        startedAt: sfn.JsonPath.stringAt('$.startedAt'),
        request: sfn.JsonPath.objectAt('$$.Map.Item.Value'),
      },
      resultPath: sfn.JsonPath.DISCARD,
    });
    // No Choice before Protect function (it would cost a transition per function): an item that is not a
    // ProtectRequest (a failed child's record) is refused by protect-function's parseProtectRequest before it does
    // anything, and Record protect failure, finding no function in it, records nothing.
    protectEligible.itemProcessor(protect);
    return protectEligible;
  }

  private invoke(name: string, fn: lambda.IFunction, options: InvokeOptions): tasks.LambdaInvoke {
    const task = new tasks.LambdaInvoke(this, name, {
      lambdaFunction: fn,
      payload: options.payload,
      // The handler's return value is the state's result (no StatusCode/Payload envelope).
      payloadResponseOnly: true,
      retryOnServiceExceptions: false,
      inputPath: options.inputPath,
      outputPath: options.outputPath,
    });
    task.addRetry({
      errors: LAMBDA_SERVICE_ERRORS,
      interval: Duration.seconds(2),
      backoffRate: 2,
      maxAttempts: 6,
      maxDelay: Duration.seconds(60),
      jitterStrategy: sfn.JitterType.FULL,
    });
    if (options.retryHandlerErrors) {
      task.addRetry({
        errors: ['States.TaskFailed'],
        interval: Duration.seconds(5),
        backoffRate: 2,
        maxAttempts: 2,
        jitterStrategy: sfn.JitterType.FULL,
      });
    }
    return task;
  }
}
