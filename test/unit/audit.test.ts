import {
  arnParts,
  decisionItem,
  type DecisionRecordInput,
  type RecordSettings,
} from '../../lambdas/shared/domain/audit';

const settings: RecordSettings = {
  engineVersion: '1.2.3',
  configHash: 'abc',
  retentionDays: 400,
  repeatRetentionDays: 30,
};
const base: DecisionRecordInput = {
  functionName: 'orders',
  functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:orders',
  runId: 'run-1',
  decidedAt: '2026-11-23T10:00:00.000Z',
  mode: 'dry-run',
  outcome: 'SKIPPED',
  reasons: ['MEMORY_LOW', 'ENV_QUOTA'],
  warnings: [],
  checks: [],
};
const decidedEpoch = Date.parse(base.decidedAt) / 1000;

describe('decisionItem', () => {
  it('keys the item by function and time, and indexes a skip under its first reason', () => {
    const item = decisionItem(base, settings);

    expect(item).toMatchObject({
      functionName: 'orders',
      sk: '2026-11-23T10:00:00.000Z#run-1#SKIPPED',
      kind: 'decision',
      account: '123456789012',
      region: 'eu-west-1',
      primaryReason: 'MEMORY_LOW',
      repeat: false,
      engineVersion: '1.2.3',
      configHash: 'abc',
    });
    expect(item.changeKey).toBeUndefined();
  });

  it('keeps a new decision for audit.retentionDays', () => {
    expect(decisionItem(base, settings).expiresAt).toBe(decidedEpoch + 400 * 86400);
  });

  it('keeps an unchanged repeat for audit.repeatRetentionDays only', () => {
    const item = decisionItem(
      { ...base, previous: { outcome: 'SKIPPED', reasons: ['MEMORY_LOW', 'ENV_QUOTA'], warnings: [] } },
      settings,
    );

    expect(item.repeat).toBe(true);
    expect(item.expiresAt).toBe(decidedEpoch + 30 * 86400);
  });

  it('treats changed reasons as a new decision', () => {
    const item = decisionItem(
      { ...base, previous: { outcome: 'SKIPPED', reasons: ['MEMORY_LOW'], warnings: [] } },
      settings,
    );

    expect(item.repeat).toBe(false);
  });

  it('never treats a change as a repeat and indexes it under byChange', () => {
    const item = decisionItem(
      { ...base, outcome: 'PROTECTED', reasons: [], previous: { outcome: 'PROTECTED', reasons: [], warnings: [] } },
      settings,
    );

    expect(item.repeat).toBe(false);
    expect(item.changeKey).toBe('CHANGE');
    expect(item.primaryReason).toBeUndefined();
  });
});

describe('arnParts', () => {
  it('reads account and region from a function ARN', () => {
    expect(arnParts('arn:aws:lambda:us-east-1:111122223333:function:f:prod')).toEqual({
      account: '111122223333',
      region: 'us-east-1',
    });
  });

  it('gives nulls for anything else', () => {
    expect(arnParts('not-an-arn')).toEqual({ account: null, region: null });
    expect(arnParts(null)).toEqual({ account: null, region: null });
  });
});
