/**
 * The notice outbox (lambdas/shared/notices.ts, issue 9 "SNS down" and "lost message"): which decisions owe a
 * notice, that an owed notice is sent once (the digest's decidedAt is its sent mark), and that a run still owing
 * stays in the OUTBOX item until the next run's start sends it.
 */
import { PublishCommand } from '@aws-sdk/client-sns';
import { BatchGetCommand, BatchWriteCommand, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { AuditItem } from '../../lambdas/shared/domain/types';
import { drainOutbox, owesNotice, sendOwed } from '../../lambdas/shared/notices';
import { runtime } from '../../lambdas/shared/runtime';
import { systemClock } from '../../lambdas/shared/adapters/rate-limiter';
import { baseConfig, mocks, prepare, silenceLogs, useRuntime } from './gather-fixtures';

function decision(functionName: string, outcome: string, extra: Partial<AuditItem> = {}): AuditItem {
  return {
    functionName,
    functionArn: null,
    kind: 'decision',
    sk: `2025-06-01T11:00:00.000Z#run-1#1-decision`,
    runId: 'run-1',
    decidedAt: '2025-06-01T11:00:05.000Z',
    outcome,
    reasons: outcome === 'SKIPPED' ? ['MEMORY_LOW'] : [],
    warnings: [],
    checks: [],
    repeat: false,
    account: '123456789012',
    region: 'eu-west-1',
    mode: 'protect',
    ...extra,
  } as unknown as AuditItem;
}

function digest(functionName: string, decidedAt: string): Record<string, unknown> {
  return { pk: `LAST#${functionName}`, functionName, outcome: 'SKIPPED', reasons: [], warnings: [], decidedAt };
}

beforeEach(() => {
  prepare();
  useRuntime();
  silenceLogs();
  jest.spyOn(systemClock, 'sleep').mockResolvedValue(undefined);
  mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
  mocks.ddb.on(BatchGetCommand).resolves({ Responses: { state: [] } });
  mocks.ddb.on(BatchWriteCommand).resolves({});
  mocks.ddb.on(UpdateCommand).resolves({});
});

describe('owesNotice', () => {
  it.each([
    ['a FAILED', decision('f', 'FAILED'), 'changed', true],
    ['a new SKIPPED', decision('f', 'SKIPPED'), 'changed', true],
    ['a repeat SKIPPED', decision('f', 'SKIPPED', { repeat: true }), 'changed', false],
    ['a repeat SKIPPED with skips "always"', decision('f', 'SKIPPED', { repeat: true }), 'always', true],
    [
      'a reconciled SKIPPED FUNCTION_DELETED',
      decision('f', 'SKIPPED', { reconciled: true, reasons: ['FUNCTION_DELETED'] }),
      'changed',
      true,
    ],
    [
      'a reconciled "nothing was changed"',
      decision('f', 'SKIPPED', { reconciled: true, reasons: [] }),
      'changed',
      false,
    ],
    ['a PROTECTED', decision('f', 'PROTECTED'), 'always', false],
    ['a PENDING', decision('f', 'PENDING'), 'always', false],
  ] as const)('%s', (_what, item, skips, owed) => {
    expect(owesNotice(item, skips)).toBe(owed);
  });
});

describe('sendOwed', () => {
  it('sends what has no sent mark, once, marks it, and leaves marked and superseded decisions alone', async () => {
    // Prepare: a was sent (its digest has its decidedAt), b superseded by a later decision, c never sent.
    mocks.ddb.on(BatchGetCommand).resolves({
      Responses: {
        state: [
          digest('a', '2025-06-01T11:00:05.000Z'),
          digest('b', '2025-06-01T12:00:05.000Z'),
          digest('c', '2025-06-01T10:00:05.000Z'),
        ],
      },
    });
    const items = [
      decision('a', 'SKIPPED'),
      decision('b', 'FAILED'),
      decision('c', 'FAILED'),
      decision('d', 'PROTECTED'),
    ];

    // Act
    const first = await sendOwed(runtime(), items);

    // Assess
    expect(first).toEqual({ owed: 1, sent: 1, failed: 0 });
    expect(mocks.sns.commandCalls(PublishCommand).map((c) => c.args[0].input.Subject)).toEqual([
      'Zero-Impact FAILED c',
    ]);
    expect(mocks.ddb).toHaveReceivedCommandWith(BatchWriteCommand, {
      RequestItems: {
        state: [
          {
            PutRequest: {
              Item: expect.objectContaining({ pk: 'LAST#c', outcome: 'FAILED', decidedAt: '2025-06-01T11:00:05.000Z' }),
            },
          },
        ],
      },
    });
  });

  it('counts a refused publish as still owed and does not mark it', async () => {
    mocks.sns.on(PublishCommand).rejects(Object.assign(new Error('down'), { name: 'InternalErrorException' }));

    const result = await sendOwed(runtime(), [decision('a', 'SKIPPED'), decision('b', 'FAILED')]);

    expect(result).toEqual({ owed: 2, sent: 0, failed: 2 });
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 0);
  });

  it("sends only a function's newest owed notice: an older one (an earlier run that could not send) is superseded", async () => {
    const older = decision('a', 'SKIPPED', { runId: 'run-0', decidedAt: '2025-06-01T10:00:05.000Z' });
    const newer = decision('a', 'SKIPPED', { decidedAt: '2025-06-01T11:00:05.000Z' });

    const result = await sendOwed(runtime(), [newer, older]);

    expect(result).toEqual({ owed: 1, sent: 1, failed: 0 });
    expect(mocks.sns.commandCalls(PublishCommand).map((c) => c.args[0].input.Subject)).toEqual([
      'Zero-Impact SKIPPED a: MEMORY_LOW',
    ]);
  });

  it('marks without publishing a skip that repeats what the digest says was sent last', async () => {
    mocks.ddb.on(BatchGetCommand).resolves({
      Responses: { state: [{ ...digest('a', '2025-06-01T10:00:05.000Z'), reasons: ['MEMORY_LOW'] }] },
    });

    const result = await sendOwed(runtime(), [decision('a', 'SKIPPED')]);

    expect(result).toEqual({ owed: 1, sent: 0, failed: 0 });
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchWriteCommand, 1);
  });

  it('stops after three refused publishes in a row, and at its deadline: the rest counts as owed', async () => {
    mocks.sns.on(PublishCommand).rejects(new Error('down'));
    const items = ['a', 'b', 'c', 'd', 'e'].map((name) => decision(name, 'FAILED'));

    const refused = await sendOwed(runtime(), items);
    expect(refused).toEqual({ owed: 5, sent: 0, failed: 5 });
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 3);

    mocks.sns.reset();
    mocks.sns.on(PublishCommand).resolves({ MessageId: 'm' });
    const late = await sendOwed(runtime(), items, { deadline: systemClock.now() - 1 });
    expect(late).toEqual({ owed: 5, sent: 0, failed: 5 });
    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 0);
  });

  it('owes nothing for a decision without its decidedAt (it could never be told sent)', () => {
    expect(owesNotice(decision('a', 'FAILED', { decidedAt: undefined as unknown as string }), 'changed')).toBe(false);
  });

  it('reads nothing when nothing is owed (a run of repeats and protections costs no state read)', async () => {
    const result = await sendOwed(runtime(), [decision('a', 'SKIPPED', { repeat: true }), decision('b', 'PROTECTED')]);

    expect(result).toEqual({ owed: 0, sent: 0, failed: 0 });
    expect(mocks.ddb).toHaveReceivedCommandTimes(BatchGetCommand, 0);
  });
});

describe('drainOutbox', () => {
  it('sends what the outbox runs and a killed run owe, then takes each run out of the outbox', async () => {
    // Prepare: run-1 in the outbox, run-2 killed (its lease taken over).
    mocks.ddb.on(GetCommand).resolves({ Item: { pk: 'OUTBOX', runIds: new Set(['run-1']) } });
    mocks.ddb
      .on(QueryCommand, { ExpressionAttributeValues: { ':r': 'run-1' } })
      .resolves({ Items: [decision('a', 'FAILED')] });
    mocks.ddb
      .on(QueryCommand, { ExpressionAttributeValues: { ':r': 'run-2' } })
      .resolves({ Items: [decision('b', 'SKIPPED', { runId: 'run-2' })] });

    // Act
    const result = await drainOutbox(runtime(), ['run-2']);

    // Assess
    expect(result).toEqual({ runs: 2, owed: 2, sent: 2, failed: 0 });
    for (const run of ['run-1', 'run-2']) {
      expect(mocks.ddb).toHaveReceivedCommandWith(UpdateCommand, {
        Key: { pk: 'OUTBOX' },
        UpdateExpression: 'DELETE runIds :run',
        ExpressionAttributeValues: { ':run': new Set([run]) },
      });
    }
  });

  it('keeps a run in the outbox while SNS still refuses', async () => {
    mocks.ddb.on(GetCommand).resolves({ Item: { pk: 'OUTBOX', runIds: new Set(['run-1']) } });
    mocks.ddb.on(QueryCommand).resolves({ Items: [decision('a', 'FAILED')] });
    mocks.sns.on(PublishCommand).rejects(new Error('down'));

    const result = await drainOutbox(runtime(), []);

    expect(result).toEqual({ runs: 1, owed: 1, sent: 0, failed: 1 });
    expect(mocks.ddb).toHaveReceivedCommandWith(UpdateCommand, { UpdateExpression: 'ADD runIds :run' });
  });

  it('with notifications.skips "always", sends a repeat skip once (not once per drain)', async () => {
    useRuntime(baseConfig({ notifications: { skips: 'always' } }));
    mocks.ddb.on(GetCommand).resolves({});
    mocks.ddb.on(QueryCommand).resolves({ Items: [decision('a', 'SKIPPED', { repeat: true })] });
    mocks.ddb
      .on(BatchGetCommand)
      .resolvesOnce({ Responses: { state: [] } })
      .resolves({ Responses: { state: [digest('a', '2025-06-01T11:00:05.000Z')] } });

    await drainOutbox(runtime(), ['run-1']);
    await drainOutbox(runtime(), ['run-1']);

    expect(mocks.sns).toHaveReceivedCommandTimes(PublishCommand, 1);
  });
});
