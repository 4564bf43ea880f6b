import { Match } from 'aws-cdk-lib/assertions';
import { HandlerName } from '../../lib/constructs/house-function';
import { LAMBDA_SERVICE_ERRORS } from '../../lib/constructs/workflow';
import { allStates, definition, logicalId, synth } from './synth';

const DRY_RUN = { mode: 'dry-run' };
const PROTECT = { mode: 'protect' };

const serviceRetry = {
  ErrorEquals: LAMBDA_SERVICE_ERRORS,
  IntervalSeconds: 2,
  MaxAttempts: 6,
  BackoffRate: 2,
  MaxDelaySeconds: 60,
  JitterStrategy: 'FULL',
};
const handlerErrorRetry = {
  ErrorEquals: ['States.TaskFailed'],
  IntervalSeconds: 5,
  MaxAttempts: 2,
  BackoffRate: 2,
  JitterStrategy: 'FULL',
};

/** How the definition names a handler's function: `<LogicalId.Arn>`. */
function fnArn(overrides: Record<string, unknown>, handler: HandlerName): string {
  const synthesized = synth(overrides);
  const fn = synthesized.stack.functions[handler];
  if (fn === undefined) throw new Error(`${handler} is not deployed`);
  return `<${logicalId(synthesized.stack, fn)}.Arn>`;
}

describe('schedule', () => {
  it('starts the state machine on config.schedule', () => {
    // Prepare
    const synthesized = synth({ schedule: 'cron(15 * * * ? *)' });

    // Act
    const smId = logicalId(synthesized.stack, synthesized.stack.stateMachine);

    // Assess
    synthesized.template.hasResourceProperties('AWS::Events::Rule', {
      ScheduleExpression: 'cron(15 * * * ? *)',
      State: 'ENABLED',
      Targets: [Match.objectLike({ Arn: { Ref: smId } })],
    });
  });

  it('uses rate(1 hour) from cdk.json by default', () => {
    synth(DRY_RUN).template.hasResourceProperties('AWS::Events::Rule', { ScheduleExpression: 'rate(1 hour)' });
  });
});

describe('state machine', () => {
  it('is a STANDARD workflow with a 2 h timeout, X-Ray tracing and lean ALL-level logs', () => {
    const { template } = synth(DRY_RUN);

    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      StateMachineType: 'STANDARD',
      TracingConfiguration: { Enabled: true },
      LoggingConfiguration: {
        Level: 'ALL',
        IncludeExecutionData: false,
        Destinations: [Match.objectLike({ CloudWatchLogsLogGroup: Match.anyValue() })],
      },
    });
    expect(definition(synth(DRY_RUN)).TimeoutSeconds).toBe(7200);
  });

  it('uses JSONPath only: no JSONata, no variables', () => {
    const text = JSON.stringify(definition(synth(PROTECT)));

    expect(text).not.toMatch(/JSONata|"Assign"|"Arguments"|"Output"/);
  });

  it('has the readable state names of docs/architecture.md in dry-run', () => {
    const def = definition(synth(DRY_RUN));

    expect(def.StartAt).toBe('Start run');
    expect(Object.keys(allStates(def)).sort()).toEqual(
      [
        'Another run active?',
        'Assess batch',
        'Assess every function',
        'Finish failed run',
        'Finish run',
        'No eligible functions',
        'Record batch failure',
        'Run failed',
        'Skip overlapping run',
        'Start run',
        'Take inventory',
      ].sort(),
    );
  });

  it('adds the protect states in protect mode only', () => {
    const dryRun = allStates(definition(synth(DRY_RUN)));
    const protect = allStates(definition(synth(PROTECT)));

    for (const name of ['Protect eligible functions', 'Protect function', 'Record protect failure']) {
      expect(dryRun[name]).toBeUndefined();
      expect(protect[name]).toBeDefined();
    }
  });

  it('starts the run with the execution fields and skips an overlapping run', () => {
    const states = definition(synth(DRY_RUN)).States;

    expect(states['Start run']).toMatchObject({
      Type: 'Task',
      Resource: fnArn(DRY_RUN, 'start-run'),
      Parameters: {
        'executionArn.$': '$$.Execution.Id',
        'executionName.$': '$$.Execution.Name',
        'startTime.$': '$$.Execution.StartTime',
      },
      Next: 'Another run active?',
    });
    expect(states['Another run active?']).toEqual({
      Type: 'Choice',
      Choices: [{ Variable: '$.overlap', BooleanEquals: true, Next: 'Skip overlapping run' }],
      Default: 'Take inventory',
    });
    expect(states['Skip overlapping run']?.Type).toBe('Succeed');
  });

  it('passes the run context to Take inventory and Finish run, and returns only handler results', () => {
    const states = definition(synth(DRY_RUN)).States;

    const runContext = { 'runId.$': '$.runId', 'startedAt.$': '$.startedAt' };
    expect(states['Take inventory']).toMatchObject({
      Resource: fnArn(DRY_RUN, 'take-inventory'),
      Parameters: runContext,
      Next: 'Assess every function',
    });
    expect(states['Finish run']).toMatchObject({
      Resource: fnArn(DRY_RUN, 'finish-run'),
      Parameters: runContext,
      End: true,
    });
    // payloadResponseOnly: the function ARN itself is the resource, so no {StatusCode, Payload} envelope.
    expect(JSON.stringify(states)).not.toContain('lambda:invoke');
  });

  it('records a failed run and then fails the execution', () => {
    const states = definition(synth(DRY_RUN)).States;

    expect(states['Finish failed run']).toMatchObject({
      Resource: fnArn(DRY_RUN, 'finish-run'),
      Parameters: { 'runId.$': '$.runId', 'startedAt.$': '$.startedAt', failed: true, 'error.$': '$.error' },
      Next: 'Run failed',
    });
    expect(states['Run failed']).toMatchObject({ Type: 'Fail', Error: 'RunFailed' });
    for (const name of ['Take inventory', 'Assess every function']) {
      expect(states[name]?.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Finish failed run' },
      ]);
    }
  });

  it('in protect mode, also fails the run through Finish failed run when a protection could not be recorded', () => {
    const states = definition(synth(PROTECT)).States;

    for (const name of ['Take inventory', 'Assess every function', 'Protect eligible functions']) {
      expect(states[name]?.Catch).toEqual([
        { ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Finish failed run' },
      ]);
    }
  });
});

describe('Assess every function (Distributed Map)', () => {
  it('reads the inventory from S3 in batches carrying the run context', () => {
    const map = definition(synth(DRY_RUN)).States['Assess every function'];

    expect(map).toMatchObject({
      Type: 'Map',
      ItemReader: {
        Resource: 'arn:<AWS::Partition>:states:::s3:getObject',
        ReaderConfig: { InputType: 'JSON' },
        Parameters: { 'Bucket.$': '$.inventory.bucket', 'Key.$': '$.inventory.key' },
      },
      ItemBatcher: {
        MaxItemsPerBatch: 50,
        MaxInputBytesPerBatch: 204800,
        BatchInput: {
          'runId.$': '$.runId',
          'startedAt.$': '$.startedAt',
          'protectionAllowed.$': '$.protectionAllowed',
          'protectionBlockedBy.$': '$.protectionBlockedBy',
          'workers.$': '$.workers',
        },
      },
      MaxConcurrency: 5,
      ToleratedFailurePercentage: 5,
      ResultPath: null,
      Next: 'Finish run',
    });
    expect(map?.ItemProcessor?.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' });
    expect(map?.ResultWriter).toBeUndefined();
  });

  it('takes batch size and concurrency from rates', () => {
    const map = definition(synth({ rates: { batchSize: 20, maxConcurrency: 3 } })).States['Assess every function'];

    expect(map?.ItemBatcher?.MaxItemsPerBatch).toBe(20);
    expect(map?.MaxConcurrency).toBe(3);
  });

  it('runs EXPRESS children in protect mode too, and flattens their eligible lists into $.eligible', () => {
    const map = definition(synth(PROTECT)).States['Assess every function'];

    expect(map?.ItemProcessor?.ProcessorConfig).toEqual({ Mode: 'DISTRIBUTED', ExecutionType: 'EXPRESS' });
    // WriterConfig alone: the flattened list is the state's output, nothing is written to S3.
    expect(map?.ResultWriter).toEqual({ WriterConfig: { OutputType: 'JSON', Transformation: 'FLATTEN' } });
    expect(map).toMatchObject({ ResultPath: '$.eligible', Next: 'Protect eligible functions' });
  });

  it('lets the state machine read only run inventories of its bucket', () => {
    const synthesized = synth(DRY_RUN);
    const bucketId = logicalId(synthesized.stack, synthesized.stack.inventoryBucket);

    synthesized.template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          {
            Sid: 'ReadRunInventory',
            Effect: 'Allow',
            Action: 's3:GetObject',
            Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/runs/*']] },
          },
        ]),
      },
    });
  });
});

describe('batch child workflow', () => {
  for (const [mode, overrides] of [
    ['dry-run', DRY_RUN],
    ['protect', PROTECT],
  ] as const) {
    it(`assesses the batch, records a failed batch, and returns only its eligible list (${mode})`, () => {
      const states = allStates(definition(synth(overrides)));
      const map = definition(synth(overrides)).States['Assess every function'];

      expect(Object.keys(map?.ItemProcessor?.States ?? {}).sort()).toEqual(
        ['Assess batch', 'No eligible functions', 'Record batch failure'].sort(),
      );
      expect(states['Assess batch']).toMatchObject({
        Resource: fnArn(overrides, 'assess-batch'),
        OutputPath: '$.eligible',
        End: true,
        Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Record batch failure' }],
      });
      expect(states['Assess batch']?.Parameters).toBeUndefined();
      expect(states['Record batch failure']).toMatchObject({
        Resource: fnArn(overrides, 'record-failure'),
        Parameters: {
          'runId.$': '$.BatchInput.runId',
          'startedAt.$': '$.BatchInput.startedAt',
          'items.$': '$.Items',
          'error.$': '$.error',
        },
        Next: 'No eligible functions',
      });
      expect(states['No eligible functions']).toEqual({ Type: 'Pass', Result: [], End: true });
    });
  }
});

describe('Protect eligible functions (protect mode, in the parent)', () => {
  it('protects every eligible function of the run, $.workers at a time, and records a failed protection', () => {
    const top = definition(synth(PROTECT)).States;
    const states = allStates(definition(synth(PROTECT)));

    expect(top['Protect eligible functions']).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.eligible',
      MaxConcurrencyPath: '$.workers',
      ItemSelector: { 'runId.$': '$.runId', 'startedAt.$': '$.startedAt', 'request.$': '$$.Map.Item.Value' },
      ResultPath: null,
      Next: 'Finish run',
    });
    expect(top['Protect eligible functions']?.MaxConcurrency).toBeUndefined();
    expect(top['Protect eligible functions']?.ItemProcessor?.ProcessorConfig).toEqual({ Mode: 'INLINE' });
    // One state per function: Protect function (and Record protect failure when it failed).
    expect(Object.keys(top['Protect eligible functions']?.ItemProcessor?.States ?? {}).sort()).toEqual([
      'Protect function',
      'Record protect failure',
    ]);
    expect(top['Protect eligible functions']?.ItemProcessor?.StartAt).toBe('Protect function');
    expect(states['Protect function']).toMatchObject({
      Resource: fnArn(PROTECT, 'protect-function'),
      InputPath: '$.request',
      End: true,
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Record protect failure' }],
    });
    expect(states['Record protect failure']).toMatchObject({
      Resource: fnArn(PROTECT, 'record-failure'),
      Parameters: {
        'runId.$': '$.runId',
        'startedAt.$': '$.startedAt',
        'items.$': 'States.Array($.request)',
        'error.$': '$.error',
      },
      End: true,
    });
  });
});

describe('retries', () => {
  it('retries service errors and handler errors with backoff and full jitter on the read-only steps', () => {
    const states = allStates(definition(synth(PROTECT)));

    for (const name of [
      'Start run',
      'Take inventory',
      'Assess batch',
      'Record batch failure',
      'Record protect failure',
      'Finish run',
      'Finish failed run',
    ]) {
      expect({ name, retry: states[name]?.Retry }).toEqual({ name, retry: [serviceRetry, handlerErrorRetry] });
    }
  });

  it('retries only Lambda service errors on Protect function (it retries AWS answers itself)', () => {
    const states = allStates(definition(synth(PROTECT)));

    expect(states['Protect function']?.Retry).toEqual([serviceRetry]);
  });
});
