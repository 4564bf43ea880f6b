/**
 * The hourly job: an EventBridge rule and the Step Functions state machine of docs/architecture.md. JSONPath only,
 * no variables, no JSONata (the local runner executes this very definition).
 *
 * Parent: STANDARD (one execution an hour; exactly-once steps, the 2 h run fits, history kept 90 days).
 * Children of the Distributed Map, one per batch of functions: EXPRESS in dry-run (billed by duration instead of per
 * state transition, see docs/readme/stack.md), STANDARD in protect mode, where a child changes functions one at a
 * time and waits for each update: that can outlast the 5-minute limit of an Express execution.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
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

/** EXPRESS children in dry-run (cheap, short); STANDARD in protect mode (protection may take longer than 5 min). */
export function childExecutionType(config: Config): sfn.StateMachineType {
  return config.mode === 'protect' ? sfn.StateMachineType.STANDARD : sfn.StateMachineType.EXPRESS;
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
    const { config, functions } = props;

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
      // Children return only their counts and the parent discards them: the parent's payload stays the run context
      // whatever the size of the estate (finish-run counts from the audit table, not from the map's results).
      resultPath: sfn.JsonPath.DISCARD,
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

    const definition = startRun.next(
      new sfn.Choice(this, STATE_NAMES.anotherRunActive)
        .when(
          sfn.Condition.booleanEquals('$.overlap', true),
          new sfn.Succeed(this, STATE_NAMES.skipOverlappingRun, {
            comment: 'Start run recorded RUN_OVERLAP: another execution holds the lease',
          }),
        )
        .otherwise(takeInventory.next(assessEveryFunction).next(finishRun)),
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

  /** The child workflow run for each batch of functions. */
  private batchWorkflow(props: WorkflowProps): sfn.IChainable {
    const { functions } = props;
    const protectFunction = props.config.mode === 'protect' ? functions.protectFunction : undefined;

    const assessBatch = this.invoke(STATE_NAMES.assessBatch, functions.assessBatch, {
      retryHandlerErrors: true,
      // Dry run: this is the child's last state; it returns its counts only.
      outputPath: protectFunction === undefined ? '$.counts' : undefined,
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
    assessBatch.addCatch(recordBatchFailure, { errors: ['States.ALL'], resultPath: '$.error' });
    if (protectFunction === undefined) return assessBatch;

    const protect = this.invoke(STATE_NAMES.protectFunction, protectFunction, {
      inputPath: '$.request',
      // It retries AWS's answers itself (conflicts, readiness); a second layer of retries would re-run a change.
      retryHandlerErrors: false,
    });
    const recordProtectFailure = this.invoke(STATE_NAMES.recordProtectFailure, functions.recordFailure, {
      payload: sfn.TaskInput.fromObject({
        runId: sfn.JsonPath.stringAt('$.request.runId'),
        startedAt: sfn.JsonPath.stringAt('$.request.startedAt'),
        items: sfn.JsonPath.array(sfn.JsonPath.stringAt('$.request')),
        error: sfn.JsonPath.objectAt('$.error'),
      }),
      retryHandlerErrors: true,
    });
    protect.addCatch(recordProtectFailure, { errors: ['States.ALL'], resultPath: '$.error' });

    const protectEligible = new sfn.Map(this, STATE_NAMES.protectEligibleFunctions, {
      comment: 'One function at a time: each change waits until the function is ready again',
      itemsPath: '$.eligible',
      maxConcurrency: 1,
      itemSelector: { request: sfn.JsonPath.objectAt('$$.Map.Item.Value') },
      resultPath: sfn.JsonPath.DISCARD,
      outputPath: '$.counts',
    });
    protectEligible.itemProcessor(protect);
    return assessBatch.next(protectEligible);
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
