import {
  arnParts,
  auditSortKey,
  decisionItem,
  decisionKeyOf,
  pendingLanding,
  runStartOf,
  nextDigest,
  unfinishedPending,
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
  runStartedAt: '2026-11-23T09:59:00.000Z',
  decidedAt: '2026-11-23T10:00:00.000Z',
  mode: 'dry-run',
  outcome: 'SKIPPED',
  reasons: ['MEMORY_LOW', 'ENV_QUOTA'],
  warnings: [],
  checks: [],
};
const decidedEpoch = Date.parse(base.decidedAt) / 1000;

describe('decisionItem', () => {
  it('keys the item by function, run start, run and stage, and indexes a skip under its first reason', () => {
    const item = decisionItem(base, settings);

    expect(item).toMatchObject({
      functionName: 'orders',
      sk: '2026-11-23T09:59:00.000Z#run-1#1-decision',
      decidedAt: '2026-11-23T10:00:00.000Z',
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

describe('issue 9: one deterministic key per (run, function, stage)', () => {
  it('gives every final decision of a run the same key, whatever its outcome or time', () => {
    const skipped = decisionItem(base, settings);
    const failed = decisionItem(
      { ...base, outcome: 'FAILED', reasons: [], decidedAt: '2026-11-23T10:30:00.000Z' },
      settings,
    );

    expect(failed.sk).toBe(skipped.sk);
    expect(skipped.sk).toBe(auditSortKey(base.runStartedAt, 'run-1', '1-decision'));
  });

  it("sorts a run's PENDING before its decision, and derives the decision key and run start from the PENDING", () => {
    const pending = decisionItem({ ...base, mode: 'protect', outcome: 'PENDING', reasons: [] }, settings);
    const decision = decisionItem({ ...base, mode: 'protect', outcome: 'PROTECTED', reasons: [] }, settings);

    expect(pending.sk).toBe('2026-11-23T09:59:00.000Z#run-1#0-pending');
    expect(pending.sk < decision.sk).toBe(true);
    expect(decisionKeyOf(pending)).toBe(decision.sk);
    expect(runStartOf(pending)).toBe(base.runStartedAt);
  });

  it('finds no decision key for a PENDING written before issue 9', () => {
    const legacy = { sk: '2025-01-01T00:00:00.000Z#run-0#PENDING', runId: 'run-0' };

    expect(decisionKeyOf(legacy)).toBeUndefined();
    expect(runStartOf(legacy)).toBeUndefined();
  });

  it('marks a reconciled decision', () => {
    expect(decisionItem({ ...base, reconciled: true }, settings).reconciled).toBe(true);
    expect(decisionItem(base, settings)).not.toHaveProperty('reconciled');
  });
});

describe('issue 9: pendingLanding', () => {
  const before = {
    layers: ['arn:team:layer:1'],
    variableNames: ['DB_HOST'],
    variablesBytes: 10,
    handler: 'app.handler',
    revisionId: 'r1',
    ourValueMacs: {},
  };
  const planned = {
    layers: ['arn:team:layer:1', 'arn:defender:32'],
    variableNames: ['AWS_LAMBDA_EXEC_WRAPPER', 'DB_HOST'],
    variablesBytes: 60,
    handler: 'app.handler',
    revisionId: null,
    ourValueMacs: { AWS_LAMBDA_EXEC_WRAPPER: 'mac-w' },
  };

  it('finds a change that landed (layers in order, our MACs, handler)', () => {
    expect(pendingLanding({ ...planned, revisionId: 'r2' }, planned, before)).toBe('landed');
  });

  it('finds a change that did not land (nothing of what it added is there)', () => {
    expect(pendingLanding(before, planned, before)).toBe('not-landed');
  });

  it('calls anything else partial', () => {
    expect(pendingLanding({ ...planned, ourValueMacs: { AWS_LAMBDA_EXEC_WRAPPER: 'other' } }, planned, before)).toBe(
      'partial',
    );
    expect(pendingLanding({ ...before, layers: planned.layers }, planned, before)).toBe('partial');
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

describe('issue 8 item 4: the record a rollback needs lives as long as the change', () => {
  const image = {
    layers: [],
    variableNames: [],
    variablesBytes: 2,
    handler: null,
    revisionId: 'rev-1',
    ourValueMacs: {},
  };

  it.each(['PENDING', 'PROTECTED', 'ROLLED_BACK'] as const)(
    'item 4: a %s item has no expiresAt at all (even with retentionDays 1)',
    (outcome) => {
      const item = decisionItem(
        { ...base, mode: 'protect', outcome, reasons: [], before: image, after: image },
        { ...settings, retentionDays: 1, repeatRetentionDays: 1 },
      );

      expect(item).not.toHaveProperty('expiresAt');
      expect(item.changeKey).toBe('CHANGE');
    },
  );

  it('item 4: a FAILED written after the update was sent (it has a before-image) never expires', () => {
    const item = decisionItem({ ...base, mode: 'protect', outcome: 'FAILED', reasons: [], before: image }, settings);

    expect(item).not.toHaveProperty('expiresAt');
  });

  it('item 4: a FAILED without images (record-failure) and every other decision still expire', () => {
    const failed = decisionItem({ ...base, outcome: 'FAILED', reasons: [] }, settings);

    expect(failed.expiresAt).toBe(decidedEpoch + 400 * 86400);
    expect(decisionItem({ ...base, outcome: 'ALREADY_PROTECTED', reasons: [] }, settings).expiresAt).toBe(
      decidedEpoch + 400 * 86400,
    );
  });
});

describe('issue 8 item 5: unfinishedPending', () => {
  const pending = decisionItem(
    {
      ...base,
      mode: 'protect',
      outcome: 'PENDING',
      reasons: [],
      before: { layers: [], variableNames: [], variablesBytes: 2, handler: null, revisionId: null, ourValueMacs: {} },
    },
    settings,
  );
  const later = (outcome: 'FAILED' | 'PROTECTED', withImages: boolean) =>
    decisionItem(
      {
        ...base,
        decidedAt: '2026-11-23T10:05:00.000Z',
        mode: 'protect',
        outcome,
        reasons: [],
        ...(withImages && pending.before !== undefined ? { before: pending.before } : {}),
      },
      settings,
    );

  it('item 5: a PENDING followed only by a FAILED without images (written before issue 9) stays unfinished', () => {
    expect(unfinishedPending(pending, [pending, later('FAILED', false)])).toBe(true);
  });

  it("item 5: a PENDING completed by protect's own final record is finished", () => {
    expect(unfinishedPending(pending, [pending, later('PROTECTED', true)])).toBe(false);
    expect(unfinishedPending(pending, [pending, later('FAILED', true)])).toBe(false);
  });
});

describe('issue 8 item 7: nextDigest', () => {
  it('item 7: keeps the MACs of what the engine wrote from one decision to the next', () => {
    const previous = { outcome: 'PROTECTED', reasons: [], warnings: [], ourValueMacs: { TW_POLICY: 'mac' } };

    expect(nextDigest(previous, { outcome: 'ALREADY_PROTECTED', reasons: [], warnings: [] })).toEqual({
      outcome: 'ALREADY_PROTECTED',
      reasons: [],
      warnings: [],
      ourValueMacs: { TW_POLICY: 'mac' },
    });
    expect(nextDigest(previous, { ...previous, ourValueMacs: { TW_POLICY: 'new' } }).ourValueMacs).toEqual({
      TW_POLICY: 'new',
    });
  });
});
