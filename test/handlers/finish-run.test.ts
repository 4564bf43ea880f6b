import { PublishCommand } from '@aws-sdk/client-sns';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { countRun, handler, RunCounter, TABLE_ATTEMPTS } from '../../lambdas/finish-run/handler';
import { expandRepeats, repeatsItems } from '../../lambdas/shared/domain/repeats';
import { systemClock } from '../../lambdas/shared/adapters/rate-limiter';
import type { AuditItem } from '../../lambdas/shared/domain/types';
import { captureMetrics, mocks, prepare, useRuntime } from './gather-fixtures';

function decision(functionName: string, outcome: string, reasons: string[] = []): Partial<AuditItem> {
  return {
    functionName,
    kind: 'decision',
    outcome: outcome as AuditItem['outcome'],
    reasons,
    account: '123456789012',
    region: 'eu-west-1',
    runId: 'run-5',
  };
}

const IMAGE = { layers: [], variableNames: [], variablesBytes: 2, handler: null, revisionId: null, ourValueMacs: {} };

/** Items in time order: `sk` as the audit table sorts them; protect's final records carry a before-image. */
function inOrder(items: Array<Partial<AuditItem>>): Array<Partial<AuditItem>> {
  return items.map((item, i) => {
    const at = `2025-06-01T11:00:${String(i).padStart(2, '0')}.000Z`;
    return { ...item, sk: `${at}#run-5`, decidedAt: at, warnings: [] };
  });
}

const ITEMS = inOrder([
  decision('a', 'SKIPPED', ['MEMORY_LOW', 'RUNTIME_UNSUPPORTED']),
  decision('b', 'SKIPPED', ['MEMORY_LOW']),
  { ...decision('c', 'PENDING'), before: IMAGE },
  { ...decision('c', 'PROTECTED'), before: IMAGE },
  { ...decision('d', 'PENDING'), before: IMAGE },
  decision('e', 'WOULD_PROTECT'),
  decision('f', 'FAILED'),
  { functionName: '#run', kind: 'run', outcome: 'RUN_OVERLAP', runId: 'run-5', reasons: [] } as Partial<AuditItem>,
]);

beforeEach(() => {
  prepare();
  useRuntime();
  mocks.ddb
    .on(QueryCommand)
    .resolvesOnce({ Items: ITEMS.slice(0, 4), LastEvaluatedKey: { k: 1 } })
    .resolvesOnce({ Items: ITEMS.slice(4) });
  mocks.ddb.on(PutCommand).resolves({});
  mocks.ddb.on(DeleteCommand).resolves({});
  mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
  // The steps sent the notices their decisions owed: each digest carries the decision's decidedAt (the sent mark).
  mocks.ddb.on(BatchGetCommand).resolves({ Responses: { state: digestsOf(ITEMS) } });
  mocks.ddb.on(BatchWriteCommand).resolves({});
  mocks.ddb.on(UpdateCommand).resolves({});
});

function digestsOf(items: Array<Partial<AuditItem>>): Array<Record<string, unknown>> {
  return items
    .filter((i) => i.kind === 'decision' && i.outcome !== 'PENDING')
    .map((i) => ({
      pk: `LAST#${i.functionName}`,
      functionName: i.functionName,
      outcome: i.outcome,
      reasons: i.reasons,
      warnings: [],
      decidedAt: i.decidedAt,
    }));
}

describe('countRun', () => {
  it('counts decisions by outcome, PENDING apart, unfinished protections and top reasons', () => {
    const counts = countRun(ITEMS as AuditItem[]);

    expect(counts.counts).toEqual({ SKIPPED: 2, PROTECTED: 1, WOULD_PROTECT: 1, FAILED: 1 });
    expect(counts.pending).toBe(2);
    expect(counts.unfinished).toEqual(['d']);
    expect(counts.topReasons).toEqual([
      { code: 'MEMORY_LOW', count: 2 },
      { code: 'RUNTIME_UNSUPPORTED', count: 1 },
    ]);
  });
});

describe('issue 8 item 5: a change is unfinished until protect wrote its final record', () => {
  it("item 5: lists a PENDING whose only later item is record-failure's FAILED without images", () => {
    const items = inOrder([
      { ...decision('g', 'PENDING'), before: IMAGE, after: IMAGE },
      decision('g', 'FAILED'),
      { ...decision('h', 'PENDING'), before: IMAGE, after: IMAGE },
      { ...decision('h', 'FAILED'), before: IMAGE },
    ]);

    expect(countRun(items as AuditItem[]).unfinished).toEqual(['g']);
  });
});

describe('finish-run', () => {
  it('publishes one summary, writes no audit item, and releases the lease', async () => {
    const out = await handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z' });

    expect(out).toEqual({
      runId: 'run-5',
      status: 'SUCCEEDED',
      counts: { SKIPPED: 2, PROTECTED: 1, WOULD_PROTECT: 1, FAILED: 1 },
    });
    expect(mocks.ddb).toHaveReceivedCommandTimes(QueryCommand, 2);
    expect(mocks.ddb).toHaveReceivedCommandWith(QueryCommand, { TableName: 'audit', IndexName: 'byRun' });
    // The audit table holds one item per decision: the summary is a message, not an item.
    expect(mocks.ddb).toHaveReceivedCommandTimes(PutCommand, 0);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    const publish = mocks.sns.commandCalls(PublishCommand)[0]!.args[0].input;
    expect(publish.Subject).toBe(
      'Zero-Impact run SUCCEEDED: 5 function(s) - 2 SKIPPED, 1 PROTECTED, 1 WOULD_PROTECT, 1 FAILED',
    );
    expect(publish.MessageAttributes?.['kind']).toEqual({ DataType: 'String', StringValue: 'run-summary' });
    expect(JSON.parse(publish.Message!)).toMatchObject({ unfinished: ['d'], status: 'SUCCEEDED' });
    expect(mocks.ddb).toHaveReceivedCommandTimes(DeleteCommand, 1);
    expect(mocks.ddb).toHaveReceivedCommandWith(DeleteCommand, { TableName: 'state', Key: { pk: 'LOCK' } });
  });

  it('emits the run metrics: completion, decisions by outcome, skips by reason, unfinished, duration', async () => {
    const emitted = captureMetrics();

    await handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z' });

    expect(emitted).toEqual([
      { name: 'RunsCompleted', value: 1, dimensions: {} },
      { name: 'Decisions', value: 2, dimensions: { Outcome: 'SKIPPED' } },
      { name: 'Decisions', value: 1, dimensions: { Outcome: 'PROTECTED' } },
      { name: 'Decisions', value: 1, dimensions: { Outcome: 'WOULD_PROTECT' } },
      { name: 'Decisions', value: 1, dimensions: { Outcome: 'FAILED' } },
      { name: 'Skips', value: 2, dimensions: { Reason: 'MEMORY_LOW' } },
      { name: 'Skips', value: 1, dimensions: { Reason: 'RUNTIME_UNSUPPORTED' } },
      { name: 'UnfinishedProtections', value: 1, dimensions: {} },
      { name: 'RunDuration', value: 3600, dimensions: {} },
    ]);
  });

  it('reports a failed run with its trimmed error', async () => {
    const emitted = captureMetrics();

    const out = await handler({
      runId: 'run-5',
      startedAt: '2025-06-01T11:00:00.000Z',
      failed: true,
      error: {
        Error: 'States.ExceedToleratedFailureThreshold',
        Cause: 'The specified tolerated failure threshold was exceeded',
      },
    });

    expect(out.status).toBe('FAILED');
    const message = JSON.parse(mocks.sns.commandCalls(PublishCommand)[0]!.args[0].input.Message!) as { error: string };
    expect(message.error).toBe(
      'States.ExceedToleratedFailureThreshold: The specified tolerated failure threshold was exceeded',
    );
    expect(emitted[0]).toEqual({ name: 'RunsFailed', value: 1, dimensions: {} });
  });

  it('releases the lease even when the run cannot be counted', async () => {
    mocks.ddb.on(QueryCommand).rejects(new Error('denied'));

    await expect(handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z' })).rejects.toThrow('denied');
    expect(mocks.ddb).toHaveReceivedCommandTimes(QueryCommand, TABLE_ATTEMPTS);
    expect(mocks.ddb).toHaveReceivedCommandTimes(DeleteCommand, 1);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
  });
});

describe('issue 9: finish-run releases the lease on every path', () => {
  const unavailable = (): Error => Object.assign(new Error('unavailable'), { name: 'ServiceUnavailable' });

  it('releases the lease when the summary cannot be published', async () => {
    mocks.sns.on(PublishCommand).rejects(Object.assign(new Error('down'), { name: 'InternalErrorException' }));
    const emitted = captureMetrics();

    const out = await handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z' });

    expect(out.status).toBe('SUCCEEDED');
    expect(emitted).toContainEqual({ name: 'NotificationsFailed', value: 1, dimensions: {} });
    expect(mocks.ddb).toHaveReceivedCommandWith(DeleteCommand, {
      TableName: 'state',
      Key: { pk: 'LOCK' },
      ConditionExpression: 'runId = :run',
      ExpressionAttributeValues: { ':run': 'run-5' },
    });
  });

  it('releases the lease when the failed run cannot be counted either', async () => {
    mocks.ddb.on(QueryCommand).rejects(unavailable());

    await expect(
      handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z', failed: true, error: { Error: 'X' } }),
    ).rejects.toThrow('unavailable');
    expect(mocks.ddb).toHaveReceivedCommandTimes(DeleteCommand, 1);
  });

  it('counts and releases through a DynamoDB outage of half a minute (retries on the injected clock)', async () => {
    // Prepare: the table answers again after 25 s of virtual time.
    let now = Date.parse('2025-06-01T12:00:00.000Z');
    const backAt = now + 25_000;
    jest.spyOn(systemClock, 'now').mockImplementation(() => now);
    const waits: number[] = [];
    jest.spyOn(systemClock, 'sleep').mockImplementation(async (ms) => {
      waits.push(ms);
      now += ms;
    });
    const down = (answer: () => Promise<unknown>) => async () => {
      if (now < backAt) throw unavailable();
      return answer();
    };
    mocks.ddb.on(QueryCommand).callsFake(down(async () => ({ Items: ITEMS })));
    mocks.ddb.on(DeleteCommand).callsFake(down(async () => ({})));

    // Act
    const out = await handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z' });

    // Assess: 1 + 2 + 4 + 8 + 16 s of waiting, the summary sent, the lease released.
    expect(out.counts).toEqual({ SKIPPED: 2, PROTECTED: 1, WOULD_PROTECT: 1, FAILED: 1 });
    expect(waits).toEqual([1000, 2000, 4000, 8000, 16000]);
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
    expect(mocks.ddb).toHaveReceivedCommandTimes(DeleteCommand, 1);
  });

  it('never fails the run because the lease cannot be released (it alarms; the next run takes it over)', async () => {
    mocks.ddb.on(DeleteCommand).rejects(unavailable());
    const emitted = captureMetrics();

    const out = await handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z' });

    expect(out.status).toBe('SUCCEEDED');
    expect(mocks.ddb).toHaveReceivedCommandTimes(DeleteCommand, TABLE_ATTEMPTS);
    expect(emitted).toContainEqual({ name: 'LeaseNotReleased', value: 1, dimensions: {} });
  });

  it('releases the lease when the handler throws while counting (a malformed item)', async () => {
    mocks.ddb.on(QueryCommand).resolves({ Items: [null as unknown as Record<string, unknown>] });

    await expect(handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z' })).rejects.toThrow();
    expect(mocks.ddb).toHaveReceivedCommandTimes(DeleteCommand, 1);
  });
});

describe('issue 9: the outbox drain of the run', () => {
  it('sends a notice a step could not send (no sent mark), once, and marks it sent', async () => {
    // Prepare: f's FAILED notice was refused by SNS in record-failure: its digest is an older one.
    const digests = digestsOf(ITEMS).map((d) =>
      d['functionName'] === 'f' ? { ...d, decidedAt: '2025-06-01T10:00:00.000Z' } : d,
    );
    mocks.ddb.on(BatchGetCommand).resolves({ Responses: { state: digests } });

    // Act
    await handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z' });

    // Assess: the summary, then the FAILED notice of f; f's digest now carries the FAILED's decidedAt; the run was
    // put in the outbox before the drain and taken out after it.
    const subjects = mocks.sns.commandCalls(PublishCommand).map((c) => c.args[0].input.Subject);
    expect(subjects).toEqual([expect.stringMatching(/^Zero-Impact run /), 'Zero-Impact FAILED f']);
    const outbox = mocks.ddb.commandCalls(UpdateCommand).map((c) => c.args[0].input.UpdateExpression);
    expect(outbox).toEqual(['ADD runIds :run', 'DELETE runIds :run']);
    expect(mocks.ddb).toHaveReceivedCommandWith(BatchWriteCommand, {
      RequestItems: {
        state: [
          {
            PutRequest: {
              Item: expect.objectContaining({ pk: 'LAST#f', outcome: 'FAILED', decidedAt: ITEMS[6]!.decidedAt }),
            },
          },
        ],
      },
    });
  });

  it('keeps the run in the outbox when SNS refuses an owed notice, and still publishes the summary', async () => {
    // Prepare: nothing was sent (no digests at all); SNS refuses decision notices.
    mocks.ddb.on(BatchGetCommand).resolves({ Responses: { state: [] } });
    mocks.sns.on(PublishCommand).callsFake((input: { Subject?: string }) => {
      if (input.Subject?.startsWith('Zero-Impact run ') === true) return { MessageId: 'summary' };
      throw Object.assign(new Error('down'), { name: 'InternalErrorException' });
    });

    // Act
    await handler({ runId: 'run-5', startedAt: '2025-06-01T11:00:00.000Z' });

    // Assess
    expect(mocks.ddb).toHaveReceivedCommandWith(UpdateCommand, {
      TableName: 'state',
      Key: { pk: 'OUTBOX' },
      UpdateExpression: 'ADD runIds :run',
      ExpressionAttributeValues: { ':run': new Set(['run-5']) },
    });
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 0);
    expect(mocks.ddb).toHaveReceivedCommandTimes(DeleteCommand, 1);
  });
});

describe('RunCounter (issue 11: finish-run never holds the whole run)', () => {
  it('counts a run with compact repeats and keeps only PENDING, before-image and owed items', () => {
    const [repeats] = repeatsItems(
      {
        runId: 'r',
        runStartedAt: '2026-01-01T00:00:00.000Z',
        decidedAt: '2026-01-01T00:00:01.000Z',
        mode: 'protect',
        batchKey: 'a',
        account: '123456789012',
        region: 'eu-west-1',
        entries: ['a', 'b', 'c'].map((functionName) => ({
          functionName,
          outcome: 'ALREADY_PROTECTED' as const,
          reasons: [],
          warnings: [],
          sameAs: 'x',
        })),
      },
      { engineVersion: 'e', configHash: 'h', retentionDays: 400, repeatRetentionDays: 30 },
    );
    const owed = { ...(ITEMS[0] as AuditItem), functionName: 'owed' };
    const counter = new RunCounter((item) => item.functionName === 'owed');
    for (const item of [...expandRepeats([repeats!]), owed]) counter.add(item);

    expect(counter.result().counts).toEqual({ ALREADY_PROTECTED: 3, [owed.outcome]: 1 });
    expect(counter.kept.map((item) => item.functionName)).toEqual(['owed']);
  });
});
