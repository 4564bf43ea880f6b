import { asciiSubject, decisionNotice, describeCodes, runSummaryNotice } from '../../lambdas/shared/domain/notice';
import type { AuditItem } from '../../lambdas/shared/domain/types';

const item: AuditItem = {
  functionName: 'thumbnails',
  sk: 's',
  kind: 'decision',
  functionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:thumbnails',
  account: '123456789012',
  region: 'eu-west-1',
  runId: 'run-1',
  decidedAt: '2025-06-01T12:00:00.000Z',
  mode: 'dry-run',
  outcome: 'SKIPPED',
  reasons: ['DEFENDER_LAYER_INVALID'],
  warnings: [],
  checks: [],
  engineVersion: '0.1.0',
  configHash: 'h',
  expiresAt: 1,
  repeat: false,
};

describe('asciiSubject', () => {
  it('keeps subjects printable ASCII, one line, under 100 characters, starting with a letter or digit', () => {
    const subject = asciiSubject(`  ✓ SKIPPED ${'x'.repeat(200)}\nsecond line`);

    expect(subject.length).toBeLessThan(100);
    expect(subject).toMatch(/^[A-Za-z0-9][\x20-\x7e]*$/);
  });
});

describe('describeCodes', () => {
  it('describes codes no gate produces, and funnel codes without a check', () => {
    expect(describeCodes(['DEFENDER_LAYER_INVALID', 'MEMORY_LOW'], [])).toEqual([
      expect.objectContaining({ code: 'DEFENDER_LAYER_INVALID', message: 'Defender Layer Check Failed' }),
      expect.objectContaining({ code: 'MEMORY_LOW', message: 'High Risk - OOM' }),
    ]);
  });
});

describe('decisionNotice', () => {
  it('leaves out empty attributes (SNS refuses them) and sends reasons as a String.Array', () => {
    const notice = decisionNotice({ ...item, account: null });

    expect(notice.attributes).toEqual({
      kind: 'decision',
      outcome: 'SKIPPED',
      functionName: 'thumbnails',
      region: 'eu-west-1',
      runId: 'run-1',
      noticeId: `thumbnails|${item.sk}`,
    });
    expect(notice.arrayAttributes).toEqual({ reasons: ['DEFENDER_LAYER_INVALID'] });
    expect(notice.subject).toBe('Zero-Impact SKIPPED thumbnails: DEFENDER_LAYER_INVALID');
  });
});

describe('runSummaryNotice', () => {
  it('summarises counts in the subject', () => {
    const notice = runSummaryNotice({
      runId: 'run-1',
      status: 'SUCCEEDED',
      mode: 'dry-run',
      startedAt: 'a',
      finishedAt: 'b',
      counts: {},
      unfinished: [],
      topReasons: [],
      account: null,
      region: null,
    });

    expect(notice.subject).toBe('Zero-Impact run SUCCEEDED: 0 function(s)');
    expect(notice.attributes).toEqual({ kind: 'run-summary', outcome: 'SUCCEEDED', runId: 'run-1' });
  });
});
