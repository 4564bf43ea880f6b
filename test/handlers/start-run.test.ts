import { ConditionalCheckFailedException } from '@aws-sdk/client-dynamodb';
import { DescribeExecutionCommand, ExecutionDoesNotExist, SFNServiceException } from '@aws-sdk/client-sfn';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import * as reconcile from '../../lambdas/shared/reconcile';
import * as replay from '../../lambdas/shared/replay';
import { handler, LEASE_SECONDS } from '../../lambdas/start-run/handler';
import { captureMetrics, mocks, NOW, prepare, useRuntime } from './gather-fixtures';

const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:zi:run-2';
const HOLDER = 'arn:aws:states:eu-west-1:123456789012:execution:zi:run-1';

const event = {
  executionArn: EXECUTION,
  executionName: 'run-2',
  startTime: '2025-06-01T12:00:00.000Z',
};

function heldBy(runId: string, executionArn?: string): ConditionalCheckFailedException {
  const held = new ConditionalCheckFailedException({ message: 'The conditional request failed', $metadata: {} });
  Object.assign(held, {
    Item: {
      runId: { S: runId },
      ...(executionArn !== undefined ? { executionArn: { S: executionArn } } : {}),
      leaseUntil: { N: String(NOW / 1000 + 3600) },
    },
  });
  return held;
}

/** The lease is held by run-1; takeovers (conditional on run-1) succeed; audit puts succeed. */
function leaseHeldByRun1(): void {
  mocks.ddb
    .on(PutCommand, { TableName: 'state', ConditionExpression: 'attribute_not_exists(pk) OR runId = :holder' })
    .resolves({})
    .on(PutCommand, {
      TableName: 'state',
      ConditionExpression:
        'attribute_not_exists(pk) OR runId = :run OR (leaseUntil < :now AND attribute_not_exists(executionArn))',
    })
    .rejects(heldBy('run-1', HOLDER))
    .on(PutCommand, { TableName: 'audit' })
    .resolves({});
}

function auditItems(): Array<Record<string, unknown>> {
  return mocks.ddb
    .commandCalls(PutCommand, { TableName: 'audit' })
    .map((call) => call.args[0].input.Item as Record<string, unknown>);
}

let replaySpy: jest.SpyInstance;
let reconcileSpy: jest.SpyInstance;

beforeEach(() => {
  prepare();
  useRuntime();
  replaySpy = jest
    .spyOn(replay, 'replayUnrecorded')
    .mockResolvedValue({ replayed: 0, alreadyDecided: 0, runIds: [], kept: 0 });
  reconcileSpy = jest.spyOn(reconcile, 'reconcilePending').mockResolvedValue({ reconciled: [], unfinished: [] });
});

describe('start-run', () => {
  it('takes the lease for two hours with its execution ARN and starts the run', async () => {
    mocks.ddb.on(PutCommand).resolves({});

    const out = await handler(event);

    expect(out).toEqual({ runId: 'run-2', startedAt: '2025-06-01T12:00:00.000Z', overlap: false });
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 1);
    expect(mocks.ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'state',
      Item: {
        pk: 'LOCK',
        runId: 'run-2',
        executionArn: EXECUTION,
        leaseUntil: NOW / 1000 + LEASE_SECONDS,
        expiresAt: NOW / 1000 + LEASE_SECONDS,
      },
    });
    expect(LEASE_SECONDS).toBe(7200);
    expect(mocks.sfn).toHaveReceivedCommandTimes(DescribeExecutionCommand, 0);
  });

  it('records RUN_OVERLAP and reports the overlap when the holder execution is RUNNING', async () => {
    leaseHeldByRun1();
    mocks.sfn.on(DescribeExecutionCommand, { executionArn: HOLDER }).resolves({ status: 'RUNNING' });

    const out = await handler(event);

    expect(out).toEqual({ runId: 'run-2', startedAt: '2025-06-01T12:00:00.000Z', overlap: true, heldBy: 'run-1' });
    expect(mocks.sfn).toHaveReceivedCommandWith(DescribeExecutionCommand, { executionArn: HOLDER });
    const audit = mocks.ddb.commandCalls(PutCommand, { TableName: 'audit' })[0]!.args[0].input;
    expect(audit.ConditionExpression).toBe('attribute_not_exists(#pk) AND attribute_not_exists(#sk)');
    expect(audit.Item).toMatchObject({
      functionName: '#run',
      kind: 'run',
      runId: 'run-2',
      outcome: 'RUN_OVERLAP',
      mode: 'dry-run',
      reasons: [],
      repeat: false,
    });
    expect(audit.Item?.['detail']).toContain('run-1');
    expect(audit.Item?.['detail']).toContain('RUNNING');
    // No takeover was tried, and nothing of earlier runs is settled by a run that does not hold the lease.
    expect(mocks.ddb.commandCalls(PutCommand, { TableName: 'state' })).toHaveLength(1);
    expect(replaySpy).not.toHaveBeenCalled();
    expect(reconcileSpy).not.toHaveBeenCalled();
  });

  it.each(['FAILED', 'ABORTED', 'TIMED_OUT', 'SUCCEEDED'])(
    'takes the lease over at once and records LEASE_TAKEN_OVER when the holder execution is %s',
    async (status) => {
      leaseHeldByRun1();
      mocks.sfn.on(DescribeExecutionCommand).resolves({ status: status as 'FAILED' });
      const metrics = captureMetrics();

      const out = await handler(event);

      expect(out).toEqual({ runId: 'run-2', startedAt: '2025-06-01T12:00:00.000Z', overlap: false });
      expect(mocks.ddb).toHaveReceivedCommandWith(PutCommand, {
        TableName: 'state',
        Item: {
          pk: 'LOCK',
          runId: 'run-2',
          executionArn: EXECUTION,
          leaseUntil: NOW / 1000 + LEASE_SECONDS,
          expiresAt: NOW / 1000 + LEASE_SECONDS,
        },
        ConditionExpression: 'attribute_not_exists(pk) OR runId = :holder',
        ExpressionAttributeValues: { ':holder': 'run-1' },
      });
      const [item] = auditItems();
      expect(auditItems()).toHaveLength(1);
      expect(item).toMatchObject({ functionName: '#run', kind: 'run', runId: 'run-2', outcome: 'LEASE_TAKEN_OVER' });
      expect(item?.['detail']).toBe(`took over the lease of run run-1: its execution is ${status}`);
      expect(metrics).toContainEqual({ name: 'LeasesTakenOver', value: 1, dimensions: {} });
      expect(replaySpy).toHaveBeenCalledWith(expect.anything(), 'run-2');
      expect(reconcileSpy).toHaveBeenCalledWith(expect.anything(), NOW);
    },
  );

  it('takes the lease over when the holder execution does not exist (ExecutionDoesNotExist)', async () => {
    leaseHeldByRun1();
    mocks.sfn.on(DescribeExecutionCommand).rejects(new ExecutionDoesNotExist({ message: 'gone', $metadata: {} }));

    const out = await handler(event);

    expect(out.overlap).toBe(false);
    expect(auditItems()[0]).toMatchObject({
      outcome: 'LEASE_TAKEN_OVER',
      detail: 'took over the lease of run run-1: its execution is DOES_NOT_EXIST',
    });
  });

  it('does not take over when DescribeExecution fails (RUN_OVERLAP naming the error)', async () => {
    leaseHeldByRun1();
    mocks.sfn.on(DescribeExecutionCommand).rejects(
      new SFNServiceException({
        name: 'ThrottlingException',
        $fault: 'client',
        message: 'Rate exceeded',
        $metadata: {},
      }),
    );

    const out = await handler(event);

    expect(out).toMatchObject({ overlap: true, heldBy: 'run-1' });
    expect(mocks.ddb.commandCalls(PutCommand, { TableName: 'state' })).toHaveLength(1);
    expect(auditItems()[0]).toMatchObject({ outcome: 'RUN_OVERLAP' });
    expect(auditItems()[0]?.['detail']).toContain('cannot be checked (ThrottlingException)');
  });

  it('records RUN_OVERLAP when another run took the lease between the check and the takeover', async () => {
    mocks.ddb
      .on(PutCommand, { TableName: 'state' })
      .rejects(heldBy('run-1', HOLDER))
      .on(PutCommand, { TableName: 'audit' })
      .resolves({});
    mocks.sfn.on(DescribeExecutionCommand).resolves({ status: 'FAILED' });

    const out = await handler(event);

    expect(out.overlap).toBe(true);
    expect(auditItems()).toHaveLength(1);
    expect(auditItems()[0]).toMatchObject({ outcome: 'RUN_OVERLAP' });
    expect(auditItems()[0]?.['detail']).toContain('another run took the lease first');
  });

  it('keeps RUN_OVERLAP for a lease without an execution ARN (written before issue 9)', async () => {
    mocks.ddb
      .on(PutCommand, { TableName: 'state' })
      .rejects(heldBy('run-1'))
      .on(PutCommand, { TableName: 'audit' })
      .resolves({});

    const out = await handler(event);

    expect(out.overlap).toBe(true);
    expect(mocks.sfn).toHaveReceivedCommandTimes(DescribeExecutionCommand, 0);
  });

  it('goes on with the run when LEASE_TAKEN_OVER cannot be recorded (the lease is its own)', async () => {
    mocks.ddb
      .on(PutCommand, { TableName: 'state', ConditionExpression: 'attribute_not_exists(pk) OR runId = :holder' })
      .resolves({})
      .on(PutCommand, {
        TableName: 'state',
        ConditionExpression:
          'attribute_not_exists(pk) OR runId = :run OR (leaseUntil < :now AND attribute_not_exists(executionArn))',
      })
      .rejects(heldBy('run-1', HOLDER))
      .on(PutCommand, { TableName: 'audit' })
      .rejects(Object.assign(new Error('down'), { name: 'ServiceUnavailable' }));
    mocks.sfn.on(DescribeExecutionCommand).resolves({ status: 'FAILED' });
    const metrics = captureMetrics();

    const out = await handler(event);

    expect(out.overlap).toBe(false);
    expect(metrics).toContainEqual({ name: 'RunMaintenanceFailed', value: 1, dimensions: {} });
  });

  it('replays unrecorded decisions and reconciles pending changes after taking the lease', async () => {
    mocks.ddb.on(PutCommand).resolves({});

    await handler(event);

    expect(replaySpy).toHaveBeenCalledTimes(1);
    expect(replaySpy).toHaveBeenCalledWith(expect.objectContaining({ auditTableName: 'audit' }), 'run-2');
    expect(reconcileSpy).toHaveBeenCalledTimes(1);
    expect(reconcileSpy).toHaveBeenCalledWith(expect.objectContaining({ stateTableName: 'state' }), NOW);
  });

  it('goes on with the run when the replay or the reconciliation fails, and alarms (RunMaintenanceFailed)', async () => {
    mocks.ddb.on(PutCommand).resolves({});
    replaySpy.mockRejectedValue(Object.assign(new Error('denied'), { name: 'AccessDenied' }));
    reconcileSpy.mockRejectedValue(Object.assign(new Error('slow'), { name: 'ThrottlingException' }));
    const metrics = captureMetrics();

    const out = await handler(event);

    expect(out).toEqual({ runId: 'run-2', startedAt: '2025-06-01T12:00:00.000Z', overlap: false });
    expect(metrics.filter((m) => m.name === 'RunMaintenanceFailed')).toHaveLength(2);
  });

  it('fails loudly when the lease cannot be read (never runs twice)', async () => {
    mocks.ddb.on(PutCommand).rejects(Object.assign(new Error('denied'), { name: 'AccessDeniedException' }));

    await expect(handler(event)).rejects.toThrow('denied');
  });
});

describe('start-run, issue 9: an expired lease of a run that still works is not taken', () => {
  it('records RUN_OVERLAP when the lease expired but its holder execution is still RUNNING', async () => {
    leaseHeldByRun1();
    mocks.sfn.on(DescribeExecutionCommand, { executionArn: HOLDER }).resolves({ status: 'RUNNING' });

    const out = await handler(event);

    expect(out).toMatchObject({ overlap: true, heldBy: 'run-1' });
    expect(mocks.ddb).toHaveReceivedCommandWith(PutCommand, {
      TableName: 'state',
      ConditionExpression: expect.stringContaining('attribute_not_exists(executionArn)'),
    });
  });
});
