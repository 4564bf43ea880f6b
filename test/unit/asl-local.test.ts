import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ExecutionError } from 'aws-local-stepfunctions';
import {
  LOCAL_DISTRIBUTED_MAP_RESOURCE,
  LOCAL_NO_TIMEOUT_SECONDS,
  batchesForDistributedMap,
  executeStateMachine,
  handlerNameFor,
  prepareStateMachine,
  resolveIntrinsics,
  resultWriterOf,
  retryWait,
  runDistributedMap,
  retryableStates,
  toLocalDefinition,
  type CfnTemplate,
  type Json,
  type LambdaHandler,
  type LocalNaming,
} from '../../local/asl-local';

const HANDLERS = ['assess-batch', 'finish-run', 'protect-function', 'record-failure', 'start-run', 'take-inventory'];
const NAMING: LocalNaming = {
  region: 'eu-west-1',
  account: '123456789012',
  stackName: 'ZeroImpactProtect',
  physicalNames: { AuditTable5E1C2B55: 'local-audit' },
};

function fixture(): CfnTemplate {
  return JSON.parse(
    readFileSync(join(__dirname, '..', 'fixtures', 'local-stack.template.json'), 'utf8'),
  ) as CfnTemplate;
}

type JsonObject = { [key: string]: Json };

describe('resolveIntrinsics', () => {
  it('resolves Fn::Join, Fn::GetAtt of a function, Ref of a topic and a renamed table to local names', () => {
    // Prepare
    const value = {
      'Fn::Join': [
        '|',
        [
          { 'Fn::GetAtt': ['StartRunFunctionA1B2C3D4', 'Arn'] },
          { Ref: 'SkipTopic1A2B3C4D' },
          { Ref: 'AuditTable5E1C2B55' },
          { Ref: 'AWS::Region' },
        ],
      ],
    };

    // Act
    const resolved = resolveIntrinsics(value, fixture(), NAMING);

    // Assess
    expect(resolved).toBe(
      'arn:aws:lambda:eu-west-1:123456789012:function:ZeroImpactProtect-StartRunFunctionA1B2C3D4|arn:aws:sns:eu-west-1:123456789012:ZeroImpactProtect-SkipTopic1A2B3C4D|local-audit|eu-west-1',
    );
  });

  it('refuses an intrinsic it does not know', () => {
    // Act
    const act = () => resolveIntrinsics({ 'Fn::ImportValue': 'x' }, fixture(), NAMING);

    // Assess
    expect(act).toThrow('the local run does not resolve Fn::ImportValue');
  });
});

describe('handlerNameFor', () => {
  it.each([
    [
      'the zero-impact:handler tag',
      'Anything',
      { Type: 'AWS::Lambda::Function', Properties: { Tags: [{ Key: 'zero-impact:handler', Value: 'finish-run' }] } },
      'finish-run',
    ],
    [
      'the construct path',
      'X',
      { Type: 'AWS::Lambda::Function', Metadata: { 'aws:cdk:path': 'Stack/AssessBatch/Function/Resource' } },
      'assess-batch',
    ],
    ['the logical id', 'ProtectFunctionFnD4E5F6A7', { Type: 'AWS::Lambda::Function' }, 'protect-function'],
    ['nothing that matches', 'LogRetentionABCDEF12', { Type: 'AWS::Lambda::Function' }, undefined],
  ])('maps a function by %s', (_how, logicalId, resource, expected) => {
    // Act
    const name = handlerNameFor(logicalId, resource, HANDLERS);

    // Assess
    expect(name).toBe(expected);
  });
});

describe('toLocalDefinition', () => {
  it('binds the Distributed Map to the local task with its own transitions and gives untimed tasks no 60 s limit', () => {
    // Prepare
    const prepared = prepareStateMachine(fixture(), NAMING, HANDLERS);
    const states = prepared.local.definition['States'] as JsonObject;

    // Act
    const map = states['Assess every function'] as JsonObject;

    // Assess
    expect(map).toEqual({
      Type: 'Task',
      Resource: LOCAL_DISTRIBUTED_MAP_RESOURCE,
      TimeoutSeconds: LOCAL_NO_TIMEOUT_SECONDS,
      ResultPath: null,
      Catch: [{ ErrorEquals: ['States.ALL'], ResultPath: '$.error', Next: 'Finish failed run' }],
      Next: 'Finish run',
    });
    expect(Object.keys(prepared.local.distributedMaps)).toEqual(['Assess every function']);
    expect((states['Start run'] as JsonObject)['TimeoutSeconds']).toBe(LOCAL_NO_TIMEOUT_SECONDS);
    expect(Object.keys(prepared.local.tasks).sort()).toEqual([
      'Assess batch',
      'Assess every function',
      'Finish failed run',
      'Finish run',
      'Protect function',
      'Record batch failure',
      'Record protect failure',
      'Start run',
      'Take inventory',
    ]);
  });

  it('refuses variables', () => {
    // Prepare
    const definition = { StartAt: 'A', States: { A: { Type: 'Pass', Assign: { x: 1 }, End: true } } };

    // Act
    const act = () => toLocalDefinition(definition);

    // Assess
    expect(act).toThrow('state "A" uses variables or JSONata');
  });

  it('refuses a service integration it does not bind', () => {
    // Prepare
    const template: CfnTemplate = {
      Resources: {
        Machine: {
          Type: 'AWS::StepFunctions::StateMachine',
          Properties: {
            DefinitionString: JSON.stringify({
              StartAt: 'Put',
              States: {
                Put: { Type: 'Task', Resource: 'arn:aws:states:::dynamodb:putItem', Parameters: {}, End: true },
              },
            }),
          },
        },
      },
    };

    // Act
    const act = () => prepareStateMachine(template, NAMING, HANDLERS);

    // Assess
    expect(act).toThrow('state "Put" uses arn:aws:states:::dynamodb:putItem, which the local run does not bind');
  });
});

describe('batchesForDistributedMap', () => {
  const items = ['a', 'b', 'c', 'd', 'e'].map((name) => ({ configuration: { FunctionName: name } }));
  const mapInput = {
    runId: 'r1',
    startedAt: '2025-01-06T09:00:00Z',
    protectionAllowed: true,
    inventory: { bucket: 'inv', key: 'runs/r1/inventory.json' },
  };
  const io = {
    readObject: (bucket: string, key: string) =>
      bucket === 'inv' && key === 'runs/r1/inventory.json' ? JSON.stringify(items) : undefined,
  };
  const reader = {
    Resource: 'arn:aws:states:::s3:getObject',
    ReaderConfig: { InputType: 'JSON' },
    Parameters: { 'Bucket.$': '$.inventory.bucket', 'Key.$': '$.inventory.key' },
  };

  it('reads the items from the S3 object and batches them by MaxItemsPerBatch with BatchInput from the map input', async () => {
    // Prepare
    const state = {
      Type: 'Map',
      ItemReader: reader,
      ItemBatcher: {
        MaxItemsPerBatch: 2,
        BatchInput: {
          'runId.$': '$.runId',
          'startedAt.$': '$.startedAt',
          'protectionAllowed.$': '$.protectionAllowed',
        },
      },
    };

    // Act
    const batches = await batchesForDistributedMap(state, mapInput, {}, io);

    // Assess
    const batchInput = { runId: 'r1', startedAt: '2025-01-06T09:00:00Z', protectionAllowed: true };
    expect(batches).toEqual([
      { Items: items.slice(0, 2), BatchInput: batchInput },
      { Items: items.slice(2, 4), BatchInput: batchInput },
      { Items: items.slice(4), BatchInput: batchInput },
    ]);
  });

  it('applies ItemSelector per item with $$.Map.Item and splits batches at MaxInputBytesPerBatch', async () => {
    // Prepare
    const state = {
      Type: 'Map',
      ItemReader: reader,
      ItemSelector: {
        'index.$': '$$.Map.Item.Index',
        'name.$': '$$.Map.Item.Value.configuration.FunctionName',
        'run.$': '$.runId',
      },
      ItemBatcher: { MaxInputBytesPerBatch: 80 },
    };

    // Act
    const batches = await batchesForDistributedMap(state, mapInput, {}, io);

    // Assess
    expect(batches).toEqual([
      {
        Items: [
          { index: 0, name: 'a', run: 'r1' },
          { index: 1, name: 'b', run: 'r1' },
        ],
      },
      {
        Items: [
          { index: 2, name: 'c', run: 'r1' },
          { index: 3, name: 'd', run: 'r1' },
        ],
      },
      { Items: [{ index: 4, name: 'e', run: 'r1' }] },
    ]);
  });

  it('gives each item as a child input without an ItemBatcher, and honours ReaderConfig.MaxItems', async () => {
    // Prepare
    const state = { Type: 'Map', ItemReader: { ...reader, ReaderConfig: { InputType: 'JSON', MaxItems: 2 } } };

    // Act
    const batches = await batchesForDistributedMap(state, mapInput, {}, io);

    // Assess
    expect(batches).toEqual(items.slice(0, 2));
  });

  it('fails with States.ItemReaderFailed when the object does not exist', async () => {
    // Prepare
    const state = { Type: 'Map', ItemReader: reader };

    // Act
    const result = batchesForDistributedMap(
      state,
      { ...mapInput, inventory: { bucket: 'inv', key: 'missing' } },
      {},
      io,
    );

    // Assess
    await expect(result).rejects.toMatchObject({ name: 'States.ItemReaderFailed' });
  });
});

describe('runDistributedMap: ResultWriter', () => {
  const items = ['a', 'b', 'c', 'd'].map((name) => ({ name }));
  const io = { readObject: () => JSON.stringify(items) };
  const base = {
    Type: 'Map',
    ItemReader: {
      Resource: 'arn:aws:states:::s3:getObject',
      ReaderConfig: { InputType: 'JSON' },
      Parameters: { Bucket: 'inv', Key: 'runs/r1/inventory.json' },
    },
    ItemBatcher: { MaxItemsPerBatch: 2 },
    ToleratedFailurePercentage: 50,
    ItemProcessor: { StartAt: 'X', States: { X: { Type: 'Pass', End: true } } },
  };
  /** A child returns its batch's item names, except a batch holding `failing`, which fails. */
  const runChild = (failing?: string) => async (_definition: JsonObject, input: Json) => {
    const names = ((input as JsonObject)['Items'] as JsonObject[]).map((item) => item['name'] as string);
    if (failing !== undefined && names.includes(failing)) {
      throw Object.assign(new Error('the child broke'), { name: 'States.TaskFailed' });
    }
    return names;
  };

  it('gives the child outputs as they are without a ResultWriter (COMPACT)', async () => {
    // Act
    const output = await runDistributedMap('M', base, {}, {}, { ...io, runChild: runChild() });

    // Assess
    expect(output).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
  });

  it('flattens the children array outputs with WriterConfig FLATTEN, and writes nothing', async () => {
    // Prepare
    const state = { ...base, ResultWriter: { WriterConfig: { Transformation: 'FLATTEN', OutputType: 'JSON' } } };
    const writeObject = jest.fn();

    // Act
    const output = await runDistributedMap('M', state, {}, {}, { ...io, writeObject, runChild: runChild() });

    // Assess
    expect(output).toEqual(['a', 'b', 'c', 'd']);
    expect(writeObject).not.toHaveBeenCalled();
  });

  it('gives a failed child unflattened as its execution record, with its input, under FLATTEN', async () => {
    // Prepare
    const state = { ...base, ResultWriter: { WriterConfig: { Transformation: 'FLATTEN', OutputType: 'JSON' } } };

    // Act
    const output = (await runDistributedMap('M', state, {}, {}, { ...io, runChild: runChild('c') })) as Json[];

    // Assess
    expect(output.slice(0, 2)).toEqual(['a', 'b']);
    expect(output).toHaveLength(3);
    expect(output[2]).toMatchObject({
      Status: 'FAILED',
      Error: 'States.TaskFailed',
      Cause: 'the child broke',
      Input: JSON.stringify({ Items: [{ name: 'c' }, { name: 'd' }] }),
    });
  });

  it('refuses a ResultWriter the local run does not model, when the machine is prepared', () => {
    // Prepare
    const machine = (resultWriter: Json): JsonObject => ({
      StartAt: 'M',
      States: { M: { ...base, ItemProcessor: { ...base.ItemProcessor }, ResultWriter: resultWriter, End: true } },
    });

    // Act / Assess
    expect(() =>
      toLocalDefinition(machine({ WriterConfig: { Transformation: 'FLATTEN', OutputType: 'JSONL' } })),
    ).toThrow('the local run models WriterConfig OutputType JSON with COMPACT, NONE or FLATTEN only');
    expect(() =>
      toLocalDefinition(
        machine({
          Resource: 'arn:aws:states:::s3:putObject',
          Parameters: { Bucket: 'b' },
          WriterConfig: { Transformation: 'FLATTEN', OutputType: 'JSON' },
        }),
      ),
    ).toThrow('does not model WriterConfig with an S3 export');
    expect(() => toLocalDefinition(machine({}))).toThrow('an empty ResultWriter');
    expect(resultWriterOf('M', base)).toEqual({ transformation: 'COMPACT', exportsToS3: false });
  });
});

describe('executeStateMachine', () => {
  const inventory = ['a', 'b', 'c'].map((name) => ({ configuration: { FunctionName: name }, tags: {} }));
  const objects = new Map<string, string>();
  const io = {
    readObject: (bucket: string, key: string) => objects.get(`${bucket}/${key}`),
    writeObject: (bucket: string, key: string, body: string) => void objects.set(`${bucket}/${key}`, body),
  };
  const context = {
    Execution: {
      Id: 'arn:aws:states:eu-west-1:123456789012:execution:m:run-1',
      Name: 'run-1',
      StartTime: '2025-01-06T09:00:00.000Z',
    },
  };

  function handlers(overrides: Partial<Record<string, jest.Mock>> = {}): Record<string, jest.Mock & LambdaHandler> {
    const base: Record<string, jest.Mock> = {
      'start-run': jest.fn(async (event: { executionName: string }) => ({
        runId: event.executionName,
        startedAt: '2025-01-06T09:00:00.000Z',
        overlap: false,
      })),
      'take-inventory': jest.fn(async (event: { runId: string; startedAt: string }) => {
        objects.set(`inv/runs/${event.runId}/inventory.json`, JSON.stringify(inventory));
        return {
          ...event,
          protectionAllowed: true,
          inventory: { bucket: 'inv', key: `runs/${event.runId}/inventory.json`, count: 3 },
          layerCheck: { ok: true },
        };
      }),
      'assess-batch': jest.fn(
        async (event: {
          Items: Array<{ configuration: { FunctionName: string } }>;
          BatchInput: { runId: string; startedAt: string };
        }) => ({
          eligible: event.Items.map((item) => ({
            ...event.BatchInput,
            protectionAllowed: true,
            functionName: item.configuration.FunctionName,
          })),
          counts: {},
        }),
      ),
      'protect-function': jest.fn(async (event: { functionName: string }) => ({
        functionName: event.functionName,
        outcome: 'PROTECTED',
        reasons: [],
      })),
      'record-failure': jest.fn(async () => ({ recorded: 1 })),
      'finish-run': jest.fn(async (event: { runId: string }) => ({
        runId: event.runId,
        counts: {},
        status: 'SUCCEEDED',
      })),
    };
    return { ...base, ...overrides } as Record<string, jest.Mock & LambdaHandler>;
  }

  beforeEach(() => objects.clear());

  it('runs every state with the real payloads: batches of MaxItemsPerBatch with BatchInput, then protect per eligible function', async () => {
    // Prepare
    const prepared = prepareStateMachine(fixture(), NAMING, HANDLERS);
    const bound = handlers();

    // Act
    const output = await executeStateMachine(prepared, {}, { handlers: bound, io, context });

    // Assess
    expect(output).toEqual({ runId: 'run-1', counts: {}, status: 'SUCCEEDED' });
    expect(bound['start-run']).toHaveBeenCalledWith(
      // The interpreter sets $$.Execution.StartTime to the time the execution starts, as AWS does.
      {
        executionArn: context.Execution.Id,
        executionName: 'run-1',
        startTime: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      },
      expect.objectContaining({ functionName: 'ZeroImpactProtect-StartRunFunctionA1B2C3D4' }),
    );
    const batchInput = { runId: 'run-1', startedAt: '2025-01-06T09:00:00.000Z', protectionAllowed: true };
    expect(bound['assess-batch']?.mock.calls.map(([event]) => event)).toEqual(
      expect.arrayContaining([
        { Items: inventory.slice(0, 2), BatchInput: batchInput },
        { Items: inventory.slice(2), BatchInput: batchInput },
      ]),
    );
    expect(
      bound['protect-function']?.mock.calls.map(([event]) => (event as { functionName: string }).functionName).sort(),
    ).toEqual(['a', 'b', 'c']);
    expect(bound['finish-run']).toHaveBeenCalledWith(
      { runId: 'run-1', startedAt: '2025-01-06T09:00:00.000Z' },
      expect.anything(),
    );
  });

  it('catches a handler error into Record protect failure with AWS error shape', async () => {
    // Prepare
    const prepared = prepareStateMachine(fixture(), NAMING, HANDLERS);
    class ConflictError extends Error {
      name = 'ConflictError';
    }
    const bound = handlers({
      'protect-function': jest.fn(async (event: { functionName: string }) => {
        if (event.functionName === 'b') throw new ConflictError('boom');
        return { functionName: event.functionName, outcome: 'PROTECTED', reasons: [] };
      }),
    });

    // Act
    await executeStateMachine(prepared, {}, { handlers: bound, io, context });

    // Assess
    expect(bound['record-failure']).toHaveBeenCalledTimes(1);
    expect(bound['record-failure']?.mock.calls[0]?.[0]).toEqual({
      runId: 'run-1',
      startedAt: '2025-01-06T09:00:00.000Z',
      items: [expect.objectContaining({ functionName: 'b' })],
      error: {
        Error: 'ConflictError',
        Cause: JSON.stringify({ errorType: 'ConflictError', errorMessage: 'boom', trace: [] }),
      },
    });
  });

  it('fails the run through its Catch when more children fail than the map tolerates', async () => {
    // Prepare
    const prepared = prepareStateMachine(fixture(), NAMING, HANDLERS);
    const bound = handlers({
      'assess-batch': jest.fn(async () => {
        throw new Error('assess broke');
      }),
      'record-failure': jest.fn(async () => {
        throw new Error('record broke too');
      }),
    });

    // Act
    const result = executeStateMachine(prepared, {}, { handlers: bound, io, context });

    // Assess
    await expect(result).rejects.toBeInstanceOf(ExecutionError);
    expect(bound['finish-run']).toHaveBeenCalledWith(
      expect.objectContaining({
        runId: 'run-1',
        failed: true,
        error: expect.objectContaining({ Error: 'States.ExceedToleratedFailureThreshold' }),
      }),
      expect.anything(),
    );
  });

  it('retries a task whose afterTask hook throws (its answer lost) by its Retry, at once with retryIntervalMs, and reports the wait', async () => {
    // Prepare
    const prepared = prepareStateMachine(fixture(), NAMING, HANDLERS);
    const bound = handlers();
    let crashed = false;
    const waits: Array<{ state: string; error: string; waitMs: number }> = [];

    // Act
    await executeStateMachine(
      prepared,
      {},
      {
        handlers: bound,
        io,
        context,
        retryIntervalMs: 0,
        hooks: {
          afterTask: ({ state, output }) => {
            if (state !== 'Protect function' || crashed || (output as JsonObject)['functionName'] !== 'b') return;
            crashed = true;
            const error = new Error('answer lost');
            error.name = 'Lambda.ServiceException';
            throw error;
          },
          onRetryWait: (event) => void waits.push(event),
        },
      },
    );

    // Assess: b's protect ran twice (the work was done, then retried), the others once; no record-failure.
    const protectedNames = bound['protect-function']?.mock.calls.map(
      ([e]) => (e as { functionName: string }).functionName,
    );
    expect(protectedNames?.sort()).toEqual(['a', 'b', 'b', 'c']);
    expect(bound['record-failure']).not.toHaveBeenCalled();
    expect(waits).toEqual([{ state: 'Protect function', error: 'Lambda.ServiceException', waitMs: 2000 }]);
  });

  it('aborts the execution and its children when the signal aborts: no task invokes its handler afterwards', async () => {
    // Prepare
    const prepared = prepareStateMachine(fixture(), NAMING, HANDLERS);
    const controller = new AbortController();
    const bound = handlers({
      'assess-batch': jest.fn(async () => {
        controller.abort();
        return { eligible: [], counts: {} };
      }),
    });

    // Act
    const execution = executeStateMachine(prepared, {}, { handlers: bound, io, context, signal: controller.signal });

    // Assess
    await expect(execution).rejects.toThrow();
    expect(bound['protect-function']).not.toHaveBeenCalled();
    expect(bound['finish-run']).not.toHaveBeenCalled();
  });
});

describe('retryWait and retryableStates', () => {
  const task = {
    Type: 'Task',
    Retry: [
      {
        ErrorEquals: ['Lambda.ServiceException'],
        IntervalSeconds: 2,
        BackoffRate: 2,
        MaxAttempts: 2,
        JitterStrategy: 'FULL',
      },
      { ErrorEquals: ['States.TaskFailed'], IntervalSeconds: 5, BackoffRate: 2, MaxAttempts: 1, MaxDelaySeconds: 4 },
    ],
  } as JsonObject;
  const named = (name: string): Error => Object.assign(new Error('x'), { name });

  it('gives the matching retrier and its average wait, until its attempts are used up', () => {
    // Act / Assess
    expect(retryWait(task, named('Lambda.ServiceException'), [])).toEqual({ index: 0, waitMs: 1000 });
    expect(retryWait(task, named('Lambda.ServiceException'), [1])).toEqual({ index: 0, waitMs: 2000 });
    expect(retryWait(task, named('Lambda.ServiceException'), [2])).toBeUndefined();
    expect(retryWait(task, named('SomeHandlerError'), [])).toEqual({ index: 1, waitMs: 4000 });
    expect(retryWait(task, named('Sandbox.Timedout'), [])).toBeUndefined();
  });

  it('lists every state with a Retry, nested definitions included', () => {
    // Act / Assess
    expect(
      retryableStates({
        States: {
          A: { Type: 'Task', Retry: [] },
          M: { Type: 'Map', ItemProcessor: { States: { B: { Type: 'Task', Retry: [] }, C: { Type: 'Pass' } } } },
        },
      }),
    ).toEqual(['A', 'B']);
  });
});
