import {
  backoffDelayMs,
  MAX_DELAY_MS,
  nextRejection,
  parseRejection,
  rejectionBackoff,
  rejectionKey,
} from '../../lambdas/shared/domain/backoff';

const HOUR = 60 * 60 * 1000;
const NOW = Date.parse('2030-01-01T00:00:00.000Z');

describe('issue 8 item 16: back-off after a deterministic rejection', () => {
  it('item 16: doubles the delay from 1 h and caps it at 7 days', () => {
    expect([1, 2, 3, 4].map(backoffDelayMs)).toEqual([HOUR, 2 * HOUR, 4 * HOUR, 8 * HOUR]);
    expect(backoffDelayMs(9)).toBe(MAX_DELAY_MS);
    expect(backoffDelayMs(1000)).toBe(MAX_DELAY_MS);
    expect(backoffDelayMs(0)).toBe(HOUR);
  });

  it('item 16: counts rejections in a row and restarts after the function changed', () => {
    // Act
    const first = nextRejection('f', undefined, NOW, { reason: 'InvalidParameterValueException', revisionId: 'r1' });
    const second = nextRejection('f', first, NOW, { reason: 'InvalidParameterValueException', revisionId: 'r1' });
    const afterDeploy = nextRejection('f', second, NOW, { reason: 'InvalidParameterValueException', revisionId: 'r2' });

    // Assess
    expect(first).toMatchObject({ pk: rejectionKey('f'), attempts: 1, nextAttemptAt: '2030-01-01T01:00:00.000Z' });
    expect(second).toMatchObject({ attempts: 2, nextAttemptAt: '2030-01-01T02:00:00.000Z' });
    expect(afterDeploy.attempts).toBe(1);
  });

  it('item 16: is active until nextAttemptAt, and ends when RevisionId or CodeSha256 changed', () => {
    // Prepare
    const record = nextRejection('f', undefined, NOW, { reason: 'x', revisionId: 'r1', codeSha256: 'c1' });

    // Act & Assess
    expect(rejectionBackoff(record, NOW + HOUR / 2, { revisionId: 'r1', codeSha256: 'c1' })).toEqual({
      active: true,
      nextAttemptAt: record.nextAttemptAt,
    });
    expect(rejectionBackoff(record, NOW + HOUR, { revisionId: 'r1' }).active).toBe(false);
    expect(rejectionBackoff(record, NOW, { revisionId: 'r2' }).active).toBe(false);
    expect(rejectionBackoff(record, NOW, { codeSha256: 'c2' }).active).toBe(false);
    expect(rejectionBackoff(undefined, NOW, {}).active).toBe(false);
  });

  it('item 16: reads a stored item, and takes a malformed one as no record', () => {
    const record = nextRejection('f', undefined, NOW, { reason: 'x' });
    expect(parseRejection(record)).toEqual(record);
    expect(parseRejection({ ...record, nextAttemptAt: 'soon' })).toBeUndefined();
    expect(parseRejection(null)).toBeUndefined();
  });
});
