import {
  backoffDelayMs,
  MAX_BACKOFF_MS,
  nextRejection,
  parseRejection,
  rejectionBackoff,
  type RejectionRecord,
} from '../../lambdas/shared/domain/backoff';

const NOW = Date.parse('2025-03-01T10:00:00.000Z');
const HOUR = 3600_000;
const REVISION = { revisionId: 'rev-1', codeSha256: 'code-1' };

describe('issue 8 item 16: back-off after a deterministic rejection', () => {
  it('waits 1 h, 2 h, 4 h ... and never more than 7 days', () => {
    expect([1, 2, 3, 4].map(backoffDelayMs)).toEqual([HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR]);
    expect(backoffDelayMs(8)).toBe(128 * HOUR);
    expect(backoffDelayMs(9)).toBe(MAX_BACKOFF_MS);
    expect(backoffDelayMs(1000)).toBe(7 * 24 * HOUR);
  });

  it('counts consecutive rejections of the same revision', () => {
    const first = nextRejection(undefined, NOW, 'InvalidParameterValueException: bad', REVISION);
    const second = nextRejection(first, NOW + HOUR, 'InvalidParameterValueException: bad', REVISION);

    expect(first).toMatchObject({ attempts: 1, nextAttemptAt: '2025-03-01T11:00:00.000Z', revisionId: 'rev-1' });
    expect(second).toMatchObject({ attempts: 2, nextAttemptAt: '2025-03-01T13:00:00.000Z' });
  });

  it('holds until nextAttemptAt, then lets the function be tried', () => {
    const record = nextRejection(undefined, NOW, 'x', REVISION);

    expect(rejectionBackoff(record, NOW + HOUR - 1, REVISION)).toEqual({
      active: true,
      reason: 'x',
      nextAttemptAt: '2025-03-01T11:00:00.000Z',
    });
    expect(rejectionBackoff(record, NOW + HOUR, REVISION)).toEqual({ active: false, reset: false });
  });

  it('ends at once, and starts again at 1 h, when the function changed (RevisionId or CodeSha256)', () => {
    const record: RejectionRecord = { ...nextRejection(undefined, NOW, 'x', REVISION), attempts: 6 };

    expect(rejectionBackoff(record, NOW, { ...REVISION, revisionId: 'rev-2' })).toEqual({ active: false, reset: true });
    expect(rejectionBackoff(record, NOW, { ...REVISION, codeSha256: 'code-2' })).toEqual({
      active: false,
      reset: true,
    });
    expect(nextRejection(record, NOW, 'x', { ...REVISION, revisionId: 'rev-2' }).attempts).toBe(1);
  });

  it('treats a record without a readable time as over (never blocks forever)', () => {
    const record: RejectionRecord = { ...nextRejection(undefined, NOW, 'x', REVISION), nextAttemptAt: 'garbage' };

    expect(rejectionBackoff(record, NOW, REVISION).active).toBe(false);
  });
});

describe('issue 8 item 16: parsing a stored back-off record', () => {
  it('reads what putRejection stores, and nothing malformed', () => {
    const stored = { pk: 'REJECT#f', functionName: 'f', ...nextRejection(undefined, NOW, 'x', REVISION) };

    expect(parseRejection(stored)).toEqual(nextRejection(undefined, NOW, 'x', REVISION));
    expect(parseRejection({ ...stored, attempts: 0 })).toBeUndefined();
    expect(parseRejection({ ...stored, nextAttemptAt: 'soon' })).toBeUndefined();
    expect(parseRejection(null)).toBeUndefined();
  });
});

describe('issue 8 item 16: a new engine ends the back-off', () => {
  it('ends at once when the engine version or configuration changed (the engine side was fixed)', () => {
    const record = nextRejection(undefined, NOW, 'AccessDeniedException: x', { ...REVISION, engine: '0.1.0/aaaa' });

    expect(rejectionBackoff(record, NOW, { ...REVISION, engine: '0.1.0/aaaa' }).active).toBe(true);
    expect(rejectionBackoff(record, NOW, { ...REVISION, engine: '0.1.0/bbbb' })).toEqual({
      active: false,
      reset: true,
    });
  });
});
