import fc from 'fast-check';
import { BatchNumbers, FaultPlan, type CallDecision, type PlannedCall } from '../../local/fault-plan';
import { parseScenario } from '../../local/scenario';

function plan(input: unknown): FaultPlan {
  return new FaultPlan(parseScenario(input, 'test.json'));
}

function call(overrides: Partial<PlannedCall> & Pick<PlannedCall, 'operation'>): PlannedCall {
  return { run: 1, second: 0, phase: 'before', ...overrides };
}

function faultOf(decision: CallDecision): string {
  const { fault } = decision;
  if (fault.kind === 'error') return fault.error;
  if (fault.kind === 'update-fails') return `Failed:${fault.reason}`;
  return 'none';
}

describe('FaultPlan faults', () => {
  test('fires a counted fault on the named function only, `times` times', () => {
    // Prepare
    const p = plan({
      faults: [
        {
          operation: 'lambda:UpdateFunctionConfiguration',
          function: 'app-01',
          error: 'ResourceConflictException',
          times: 2,
        },
      ],
    });
    const update = (functionName: string): string =>
      faultOf(p.onCall(call({ operation: 'lambda:UpdateFunctionConfiguration', functionName })));

    // Act
    const results = [
      update('app-02'),
      update('app-01'),
      update('arn:aws:lambda:eu-west-1:123456789012:function:app-01'),
      update('app-01'),
    ];

    // Assess
    expect(results).toEqual(['none', 'ResourceConflictException', 'ResourceConflictException', 'none']);
    expect(p.records()).toEqual([
      {
        run: 1,
        second: 0,
        callIndex: 2,
        operation: 'lambda:UpdateFunctionConfiguration',
        function: 'app-01',
        fault: 'ResourceConflictException',
        rule: 0,
      },
      expect.objectContaining({ callIndex: 3, function: 'app-01' }),
    ]);
  });

  test('matches service wildcards, runs and the time window', () => {
    // Prepare
    const p = plan({
      faults: [
        { operation: 'dynamodb:*', error: 'ServiceUnavailable', fromSecond: 5, forSeconds: 25 },
        { operation: 'sns:Publish', error: 'InternalErrorException', runs: [2] },
      ],
    });

    // Act
    const results = [
      faultOf(p.onCall(call({ operation: 'dynamodb:PutItem', second: 4.9 }))),
      faultOf(p.onCall(call({ operation: 'dynamodb:Query', second: 5 }))),
      faultOf(p.onCall(call({ operation: 'dynamodb:PutItem', second: 29.9 }))),
      faultOf(p.onCall(call({ operation: 'dynamodb:PutItem', second: 30 }))),
      faultOf(p.onCall(call({ operation: 'sns:Publish', run: 1 }))),
      faultOf(p.onCall(call({ operation: 'sns:Publish', run: 2 }))),
      faultOf(p.onCall(call({ operation: 'lambda:ListFunctions', second: 10 }))),
    ];

    // Assess
    expect(results).toEqual([
      'none',
      'ServiceUnavailable',
      'ServiceUnavailable',
      'none',
      'none',
      'InternalErrorException',
      'none',
    ]);
  });

  test('arms an `after` rule per function and run, from the call after the named one', () => {
    // Prepare
    const p = plan({
      faults: [
        {
          operation: 'lambda:GetFunctionConfiguration',
          function: 'app-02',
          after: 'lambda:UpdateFunctionConfiguration',
          error: 'ServiceException',
          times: 'all',
        },
      ],
    });
    const read = (run = 1): string =>
      faultOf(p.onCall(call({ run, operation: 'lambda:GetFunctionConfiguration', functionName: 'app-02' })));

    // Act
    const before = read();
    p.onCall(call({ operation: 'lambda:UpdateFunctionConfiguration', functionName: 'app-03' }));
    const afterOtherFunction = read();
    p.onCall(call({ operation: 'lambda:UpdateFunctionConfiguration', functionName: 'app-02' }));
    const afterUpdate = [read(), read()];
    const nextRun = read(2);

    // Assess
    expect([before, afterOtherFunction, ...afterUpdate, nextRun]).toEqual([
      'none',
      'none',
      'ServiceException',
      'ServiceException',
      'none',
    ]);
  });

  test('matches a PutItem on a table by the item outcome', () => {
    // Prepare
    const p = plan({
      faults: [
        {
          operation: 'dynamodb:PutItem',
          table: 'audit',
          outcome: 'PROTECTED',
          error: 'ProvisionedThroughputExceededException',
          times: 1,
        },
      ],
    });

    // Act
    const results = [
      faultOf(p.onCall(call({ operation: 'dynamodb:PutItem', table: 'audit', outcome: 'PENDING' }))),
      faultOf(p.onCall(call({ operation: 'dynamodb:PutItem', table: 'state', outcome: 'PROTECTED' }))),
      faultOf(p.onCall(call({ operation: 'dynamodb:PutItem', table: 'audit', outcome: 'PROTECTED' }))),
      faultOf(p.onCall(call({ operation: 'dynamodb:PutItem', table: 'audit', outcome: 'PROTECTED' }))),
    ];

    // Assess
    expect(results).toEqual(['none', 'none', 'ProvisionedThroughputExceededException', 'none']);
  });

  test('lets an update end Failed with the reason', () => {
    const p = plan({
      faults: [
        {
          operation: 'lambda:UpdateFunctionConfiguration',
          function: 'app-03',
          updateEnds: 'Failed',
          reason: 'EniLimitExceeded',
        },
      ],
    });
    const decision = p.onCall(call({ operation: 'lambda:UpdateFunctionConfiguration', functionName: 'app-03' }));
    expect(decision.fault).toEqual({ kind: 'update-fails', reason: 'EniLimitExceeded', rule: 0 });
    expect(p.records()[0]).toMatchObject({ fault: 'updateEnds:Failed' });
  });

  test('draws probabilities from the seed: the same seed gives the same faults', () => {
    // Prepare
    const scenario = (seed: number): unknown => ({
      seed,
      faults: [{ operation: 'lambda:*', probability: 0.3, error: 'TooManyRequestsException' }],
    });
    const stream = (p: FaultPlan): string[] =>
      Array.from({ length: 200 }, (_, i) => faultOf(p.onCall(call({ operation: 'lambda:GetFunction', second: i }))));

    // Act
    const a = stream(plan(scenario(7)));
    const b = stream(plan(scenario(7)));
    const c = stream(plan(scenario(8)));

    // Assess
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    const rate = a.filter((f) => f !== 'none').length / a.length;
    expect(rate).toBeGreaterThan(0.15);
    expect(rate).toBeLessThan(0.45);
  });
});

describe('FaultPlan events', () => {
  test('fires `after` events on successful completions, filtered by the function when the call names one', () => {
    // Prepare
    const p = plan({
      events: [
        { after: 'tag:GetResources', run: 1, do: 'tag', function: 'app-04', tags: { 'zero-impact:exclude': 'true' } },
        { after: 'lambda:UpdateFunctionConfiguration', function: 'app-06', do: 'kill' },
      ],
    });

    // Act
    const failedList = p.onCall(call({ operation: 'tag:GetResources', phase: 'after', ok: false }));
    const tagged = p.onCall(call({ operation: 'tag:GetResources', phase: 'after' }));
    const again = p.onCall(call({ operation: 'tag:GetResources', phase: 'after' }));
    const otherUpdate = p.onCall(
      call({ operation: 'lambda:UpdateFunctionConfiguration', functionName: 'app-05', phase: 'after' }),
    );
    const killed = p.onCall(
      call({ operation: 'lambda:UpdateFunctionConfiguration', functionName: 'app-06', phase: 'after' }),
    );
    const afterKill = p.onCall(call({ operation: 'lambda:GetFunction', functionName: 'app-07' }));
    const nextRun = p.onCall(call({ run: 2, operation: 'lambda:GetFunction', functionName: 'app-07' }));

    // Assess
    expect(failedList.events).toEqual([]);
    expect(tagged.events).toEqual([expect.objectContaining({ do: 'tag', function: 'app-04', index: 0 })]);
    expect(again.events).toEqual([]);
    expect(otherUpdate.events).toEqual([]);
    expect(killed.events).toEqual([expect.objectContaining({ do: 'kill', index: 1 })]);
    expect(afterKill).toEqual({ fault: { kind: 'none' }, events: [], killed: true });
    expect(p.isKilled(1)).toBe(true);
    expect(nextRun.killed).toBe(false);
    expect(p.records().map((r) => ('event' in r ? r.event : r.fault))).toEqual(['tag', 'kill']);
  });

  test('fires `before` events ahead of the call, and a kill before a call stops it', () => {
    const p = plan({
      events: [
        {
          before: 'lambda:UpdateFunctionConfiguration',
          function: 'app-05',
          do: 'deploy',
          change: { MemorySize: 1024 },
        },
        { before: 'lambda:UpdateFunctionConfiguration', function: 'app-08', do: 'kill' },
      ],
    });
    const deploy = p.onCall(call({ operation: 'lambda:UpdateFunctionConfiguration', functionName: 'app-05' }));
    const kill = p.onCall(call({ operation: 'lambda:UpdateFunctionConfiguration', functionName: 'app-08' }));
    expect(deploy.events).toEqual([expect.objectContaining({ do: 'deploy', change: { MemorySize: 1024 } })]);
    expect(deploy.killed).toBe(false);
    expect(kill.killed).toBe(true);
  });

  test('fires a crash after the numbered batch of a task, once', () => {
    // Prepare
    const p = plan({ events: [{ afterTask: 'Assess batch', batch: 2, do: 'crash' }] });
    const batches = new BatchNumbers();
    const invoke = (key: string): number => batches.batchOf(1, 'Assess batch', key);

    // Act
    const first = p.task({ run: 1, second: 1, state: 'Assess batch', batch: invoke('["a"]') });
    const second = p.task({ run: 1, second: 2, state: 'Assess batch', batch: invoke('["b"]') });
    const retry = p.task({ run: 1, second: 3, state: 'Assess batch', batch: invoke('["b"]') });

    // Assess
    expect(first).toEqual([]);
    expect(second).toEqual([expect.objectContaining({ do: 'crash' })]);
    expect(retry).toEqual([]);
    expect(invoke('["b"]')).toBe(2);
    expect(p.records()).toEqual([
      { run: 1, second: 2, callIndex: 0, operation: 'task:Assess batch', event: 'crash', index: 0 },
    ]);
  });

  test('create and delete events carry their payloads', () => {
    const p = plan({
      events: [
        { after: 'lambda:ListFunctions', do: 'delete', function: 'app-07' },
        { after: 'lambda:ListFunctions', do: 'create', function: { FunctionName: 'app-new', Runtime: 'python3.12' } },
      ],
    });
    const { events } = p.onCall(call({ operation: 'lambda:ListFunctions', phase: 'after' }));
    expect(events).toEqual([
      expect.objectContaining({ do: 'delete', function: 'app-07' }),
      expect.objectContaining({ do: 'create', function: { FunctionName: 'app-new', Runtime: 'python3.12' } }),
    ]);
    expect(p.records().map((r) => r.function)).toEqual(['app-07', 'app-new']);
  });
});

describe('FaultPlan properties', () => {
  const operations = [
    'lambda:ListFunctions',
    'lambda:GetFunctionConfiguration',
    'lambda:UpdateFunctionConfiguration',
    'tag:GetResources',
    'dynamodb:PutItem',
    'sns:Publish',
  ] as const;
  const faultArb = fc.record(
    {
      operation: fc.constantFrom('*', 'lambda:*', 'dynamodb:*', ...operations),
      function: fc.constantFrom('f1', 'f2'),
      error: fc.constantFrom('ServiceException', 'TooManyRequestsException'),
      times: fc.oneof(fc.integer({ min: 1, max: 5 }), fc.constant('all' as const)),
      probability: fc.double({ min: 0.01, max: 1, noNaN: true }),
      runs: fc.uniqueArray(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 3 }),
      after: fc.constantFrom(...operations),
      fromSecond: fc.integer({ min: 0, max: 30 }),
      forSeconds: fc.integer({ min: 1, max: 30 }),
    },
    { requiredKeys: ['operation', 'error'] },
  );
  const callArb = fc.record({
    run: fc.integer({ min: 1, max: 3 }),
    second: fc.integer({ min: 0, max: 60 }),
    operation: fc.constantFrom(...operations),
    functionName: fc.option(fc.constantFrom('f1', 'f2', 'f3'), { nil: undefined }),
    phase: fc.constantFrom('before' as const, 'after' as const),
  });

  test('a generated schedule never makes the plan throw, is deterministic per seed and respects `times`', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 1000 }),
        fc.array(faultArb, { maxLength: 5 }),
        fc.array(callArb, { maxLength: 60 }),
        (seed, faults, calls) => {
          const scenario = parseScenario({ seed, faults }, 'generated.json');
          const a = new FaultPlan(scenario);
          const b = new FaultPlan(scenario);
          const decisionsA = calls.map((c) => a.onCall(c));
          const decisionsB = calls.map((c) => b.onCall(c));
          expect(decisionsA).toEqual(decisionsB);
          expect(a.records()).toEqual(b.records());
          a.firedPerRule().forEach((fired, i) => {
            const times = scenario.faults[i]?.times;
            if (typeof times === 'number') expect(fired).toBeLessThanOrEqual(times);
          });
          expect(a.records()).toHaveLength(decisionsA.filter((d) => d.fault.kind !== 'none').length);
        },
      ),
      { numRuns: 150 },
    );
  });
});
