import { latestChange } from '../../bin/commands/rollback';
import { auditSortKey } from '../../lambdas/shared/domain/audit';
import type { AuditItem, ConfigurationImage } from '../../lambdas/shared/domain/types';

const NAME = 'orders-api';
const image = (layers: string[], macs: Record<string, string> = {}): ConfigurationImage => ({
  layers,
  variableNames: Object.keys(macs),
  variablesBytes: 10,
  handler: 'app.handler',
  revisionId: null,
  ourValueMacs: macs,
});

function item(runId: string, startedAt: string, outcome: AuditItem['outcome'], extra: Partial<AuditItem> = {}) {
  const stage = outcome === 'PENDING' ? '0-pending' : '1-decision';
  return {
    functionName: NAME,
    sk: auditSortKey(startedAt, runId, stage),
    kind: 'decision',
    functionArn: null,
    account: null,
    region: null,
    runId,
    decidedAt: startedAt,
    mode: 'protect',
    outcome,
    reasons: [],
    warnings: [],
    checks: [],
    engineVersion: '0.1.0',
    configHash: 'h',
    repeat: false,
    ...extra,
  } as AuditItem;
}

describe('issue 8 review: rollback walks the chain of changes', () => {
  const first = item('run-1', '2026-01-01T00:00:00.000Z', 'PROTECTED', {
    before: image([]),
    after: image(['defender:31'], { TW_POLICY: 'm1' }),
  });
  const upgrade = item('run-2', '2026-01-02T00:00:00.000Z', 'PROTECTED', {
    before: image(['defender:31'], { TW_POLICY: 'm1' }),
    after: image(['defender:32'], { TW_POLICY: 'm1' }),
  });

  it('judges the newest change first', () => {
    expect(latestChange([first, upgrade])?.record.sk).toBe(upgrade.sk);
  });

  it('after the upgrade was rolled back, the next rollback goes on to the first protection', () => {
    const undone = item('rollback-2026-01-03T00:00:00.000Z', '2026-01-03T00:00:00.000Z', 'ROLLED_BACK', {
      before: upgrade.after!,
      after: upgrade.before!,
      undoes: upgrade.sk,
    });

    expect(latestChange([first, upgrade, undone])?.record.sk).toBe(first.sk);
  });

  it('says "rolled back" once every change is undone', () => {
    const undoUpgrade = item('rollback-2026-01-03T00:00:00.000Z', '2026-01-03T00:00:00.000Z', 'ROLLED_BACK', {
      before: image([]),
      undoes: upgrade.sk,
    });
    const undoFirst = item('rollback-2026-01-04T00:00:00.000Z', '2026-01-04T00:00:00.000Z', 'ROLLED_BACK', {
      before: image([]),
      undoes: first.sk,
    });

    expect(latestChange([first, upgrade, undoUpgrade, undoFirst])?.record.outcome).toBe('ROLLED_BACK');
  });

  it('a FAILED whose update AWS refused is no change to roll back (rollback --run leaves the function alone)', () => {
    const pending = item('run-3', '2026-01-05T00:00:00.000Z', 'PENDING', { before: image([]), after: image(['d:32']) });
    const refused = item('run-3', '2026-01-05T00:00:00.000Z', 'FAILED', { before: image([]), nothingChanged: true });

    expect(latestChange([pending, refused])).toBeUndefined();
  });
});
