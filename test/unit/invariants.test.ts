import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { checkInvariants, type AuditRecord, type InvariantInput, type MessageRecord } from '../../local/invariants';
import type { FunctionConfiguration } from '../../lambdas/shared/domain/types';

const OUR_LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock:9';
const OTHER_LAYER = 'arn:aws:lambda:eu-west-1:123456789012:layer:shared-utils:7';
const SECRET = 'pa55-w0rd-of-app-01';

function item(fn: string, run: string, at: number, outcome: string, extra: Partial<AuditRecord> = {}): AuditRecord {
  const decidedAt = `2025-01-06T09:00:${String(at).padStart(2, '0')}.000Z`;
  return {
    functionName: fn,
    sk: `${decidedAt}#${run}#${outcome}`,
    kind: 'decision',
    runId: run,
    decidedAt,
    mode: 'protect',
    outcome,
    reasons: [],
    repeat: false,
    ...extra,
  };
}

function skipMessage(fn: string, run: string, reasons: string[]): MessageRecord {
  return {
    runId: run,
    subject: `Zero-Impact SKIPPED ${fn}`,
    message: JSON.stringify({ type: 'decision', outcome: 'SKIPPED', reasons: reasons.map((code) => ({ code })) }),
    attributes: {
      kind: { DataType: 'String', StringValue: 'decision' },
      outcome: { DataType: 'String', StringValue: 'SKIPPED' },
      functionName: { DataType: 'String', StringValue: fn },
    },
  };
}

const initialApp01: FunctionConfiguration = {
  FunctionName: 'app-01',
  Handler: 'index.handler',
  Layers: [{ Arn: OTHER_LAYER }],
  Environment: { Variables: { DB_PASSWORD: SECRET, MODE: 'prod' } },
};
const finalApp01: FunctionConfiguration = {
  ...initialApp01,
  Layers: [{ Arn: OTHER_LAYER }, { Arn: OUR_LAYER }],
  Environment: { Variables: { DB_PASSWORD: SECRET, MODE: 'prod', AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/w' } },
};
const app02: FunctionConfiguration = { FunctionName: 'app-02', Handler: 'index.handler', MemorySize: 128 };

/** One protect run: app-01 protected (PENDING then PROTECTED), app-02 skipped and notified. Violates nothing. */
function passing(): InvariantInput {
  return {
    runs: [{ runId: 'run-1', inventory: ['app-01', 'app-02'], mode: 'protect' }],
    auditItems: [
      item('app-01', 'run-1', 1, 'PENDING'),
      item('app-01', 'run-1', 2, 'PROTECTED', {
        before: { layers: [OTHER_LAYER], variableNames: ['DB_PASSWORD', 'MODE'] },
        after: { layers: [OTHER_LAYER, OUR_LAYER], variableNames: ['AWS_LAMBDA_EXEC_WRAPPER', 'DB_PASSWORD', 'MODE'] },
      }),
      item('app-02', 'run-1', 3, 'SKIPPED', { reasons: ['MEMORY_LOW'] }),
    ],
    messages: [skipMessage('app-02', 'run-1', ['MEMORY_LOW'])],
    logs: ['{"level":"INFO","message":"PROTECTED: app-01"}'],
    initialConfigurations: [initialApp01, app02],
    finalConfigurations: [finalApp01, app02],
    secrets: [SECRET],
    ours: { layerArn: OUR_LAYER, variableNames: ['AWS_LAMBDA_EXEC_WRAPPER'] },
  };
}

function violations(input: InvariantInput, invariant: number): string[] {
  return checkInvariants(input)
    .violations.filter((v) => v.invariant === invariant)
    .map((v) => `${v.function ?? '-'}: ${v.evidence}`);
}

describe('checkInvariants', () => {
  test('reports the shape of invariants.json and no violation for a clean run', () => {
    expect(checkInvariants(passing())).toEqual({ checked: [1, 2, 3, 4, 5, 6], violations: [] });
  });

  describe('invariant 1: a PENDING before every change, a final item after it', () => {
    test('flags a PROTECTED without a PENDING and a change without any record', () => {
      const input = passing();
      input.auditItems = input.auditItems.filter((i) => i.outcome !== 'PENDING');
      expect(violations(input, 1)).toEqual([
        expect.stringMatching(/^app-01: item .*#PROTECTED \(PROTECTED\) has no PENDING written before it/),
        'app-01: the configuration changed (layers, variables or handler) without a PENDING item followed by a final item',
      ]);
    });

    test('flags a PENDING left unfinished, accepts it reconciled by the next run, tolerates it in a last killed run', () => {
      // Prepare: run 1 killed between PENDING and PROTECTED
      const input = passing();
      input.runs = [
        { runId: 'run-1', inventory: ['app-01', 'app-02'], mode: 'protect', killed: true },
        { runId: 'run-2', inventory: ['app-01', 'app-02'], mode: 'protect' },
      ];
      const killed = input.auditItems.filter((i) => i.outcome !== 'PROTECTED');
      const run2 = [item('app-02', 'run-2', 40, 'SKIPPED', { reasons: ['MEMORY_LOW'], repeat: true })];
      const reconciled = item('app-01', 'run-2', 41, 'PROTECTED', { reconciled: true });

      // Act / Assess
      expect(violations({ ...input, auditItems: [...killed, ...run2] }, 1)).toEqual([
        expect.stringMatching(/^app-01: item .*#PENDING \(PENDING\) has no final item in its run/),
        'app-01: the configuration changed (layers, variables or handler) without a PENDING item followed by a final item',
      ]);
      expect(violations({ ...input, auditItems: [...killed, ...run2, reconciled] }, 1)).toEqual([]);
      // The killed run is the last one: its PENDING and the change it describes are unfinished, not a violation
      // (no later run could have reconciled them yet); invariant 2 does not blame the run's skips either.
      const lastKilled = { ...input, runs: [input.runs[0]!], auditItems: killed };
      expect(violations(lastKilled, 1)).toEqual([]);
      expect(violations(lastKilled, 2)).toEqual([]);
    });
  });

  test('accepts a last-run decision kept in the S3 fallback (replayed by the next run), not an earlier one', () => {
    // Prepare: run 1 wrote app-01's PENDING and changed it; its final record went to the S3 fallback.
    const input = passing();
    const pendingOnly = input.auditItems.filter((i) => !(i.functionName === 'app-01' && i.outcome === 'PROTECTED'));
    const kept = [{ runId: 'run-1', functionName: 'app-01' }];

    // Act / Assess: the last run's kept decision is durable; the same kept decision under a later run is not.
    expect(violations({ ...input, auditItems: pendingOnly, unrecorded: kept }, 1)).toEqual([]);
    expect(violations({ ...input, auditItems: pendingOnly, unrecorded: kept }, 4)).toEqual([]);
    const later = { ...input, runs: [...input.runs, { runId: 'run-2', inventory: [], mode: 'protect' as const }] };
    expect(violations({ ...later, auditItems: pendingOnly, unrecorded: kept }, 1).length).toBeGreaterThan(0);
  });

  describe('invariant 2: no change on a failed gate, none in dry-run', () => {
    test('flags PENDING and PROTECTED in a dry-run run and a change while every run was a dry run', () => {
      const input = passing();
      input.runs = [{ ...input.runs[0]!, mode: 'dry-run' }];
      expect(violations(input, 2)).toEqual([
        expect.stringMatching(/^app-01: item .*PENDING.* in dry-run run run-1$/),
        expect.stringMatching(/^app-01: item .*PROTECTED.* in dry-run run run-1$/),
        'app-01: the configuration changed although every run was a dry run',
      ]);
    });

    test('flags a function both SKIPPED and PROTECTED in one run', () => {
      const input = passing();
      input.auditItems = [...input.auditItems, item('app-01', 'run-1', 4, 'SKIPPED', { reasons: ['MEMORY_LOW'] })];
      expect(violations(input, 2)).toEqual(['app-01: both SKIPPED and PROTECTED in run run-1']);
    });

    test('flags a changed function whose only decisions are skips', () => {
      const input = passing();
      input.finalConfigurations = [finalApp01, { ...app02, Layers: [{ Arn: OUR_LAYER }] }];
      expect(violations(input, 2)).toEqual([
        'app-02: the configuration changed although every decision on the function was SKIPPED',
      ]);
    });
  });

  describe('invariant 3: only our layer, variables and handler change', () => {
    test('flags a reordered layer, a changed, removed or added variable, and a foreign handler', () => {
      const input = passing();
      input.finalConfigurations = [
        {
          ...finalApp01,
          Handler: 'other.handler',
          Layers: [{ Arn: OUR_LAYER }, { Arn: OTHER_LAYER }, { Arn: 'arn:aws:lambda:eu-west-1:1:layer:x:1' }],
          Environment: { Variables: { DB_PASSWORD: `${SECRET} `, EXTRA: '1' } },
        },
        app02,
      ];
      const found = violations(input, 3);
      expect(found).toEqual([
        'app-01: layers other than ours were removed, added or reordered',
        'app-01: variable DB_PASSWORD changed value',
        'app-01: variable MODE was removed',
        'app-01: variable EXTRA was added and is not ours',
        'app-01: the handler changed to one that is not ours',
      ]);
      expect(found.join('\n')).not.toContain(SECRET);
    });

    test('accepts our handler in handler mode', () => {
      const input = passing();
      input.ours = { ...input.ours, handler: '/opt/twistlock/handler' };
      input.finalConfigurations = [{ ...finalApp01, Handler: '/opt/twistlock/handler' }, app02];
      expect(violations(input, 3)).toEqual([]);
    });
  });

  describe('invariant 4: exactly one final decision per function per run', () => {
    test('flags a missing decision, a duplicate, a FAILED without its error and a function outside the inventory', () => {
      const input = passing();
      input.runs = [{ ...input.runs[0]!, inventory: ['app-01', 'app-02', 'app-03', 'app-04'] }];
      input.auditItems = [
        ...input.auditItems,
        item('app-02', 'run-1', 5, 'SKIPPED', { reasons: ['MEMORY_LOW'], repeat: true }),
        item('app-04', 'run-1', 6, 'FAILED'),
        item('app-09', 'run-1', 7, 'SKIPPED', { reasons: ['EXCLUDED'] }),
      ];
      expect(violations(input, 4)).toEqual([
        expect.stringMatching(/^app-02: 2 final decisions in run run-1: /),
        'app-03: no final decision in run run-1',
        expect.stringMatching(/^app-04: item .*FAILED \(FAILED\) does not name its error$/),
        expect.stringMatching(/^app-09: item .* in run run-1 for a function outside its inventory$/),
      ]);
    });

    test('does not count PENDING, ROLLED_BACK, reconciled items, nor killed runs', () => {
      const input = passing();
      input.runs = [...input.runs, { runId: 'run-2', inventory: ['app-01', 'app-02'], mode: 'protect', killed: true }];
      input.auditItems = [
        ...input.auditItems,
        item('app-01', 'run-1', 8, 'ROLLED_BACK'),
        item('app-01', 'run-1', 9, 'PROTECTED', { reconciled: true }),
      ];
      expect(violations(input, 4)).toEqual([]);
    });
  });

  describe('invariant 5: re-running converges', () => {
    test('flags two versions of our layer', () => {
      const input = passing();
      input.finalConfigurations = [
        { ...finalApp01, Layers: [{ Arn: OTHER_LAYER }, { Arn: OUR_LAYER }, { Arn: OUR_LAYER.replace(/9$/, '8') }] },
        app02,
      ];
      expect(violations(input, 5)).toEqual(['app-01: the final configuration carries two versions of our layer']);
    });

    test('does not blame the runs for two versions of our layer the function already carried', () => {
      const input = passing();
      const twoVersions = [{ Arn: OUR_LAYER }, { Arn: OUR_LAYER.replace(/9$/, '8') }];
      input.initialConfigurations = input.initialConfigurations.map((c) =>
        c.FunctionName === 'app-01' ? { ...c, Layers: twoVersions } : c,
      );
      input.finalConfigurations = [{ ...finalApp01, Layers: twoVersions }, app02];
      expect(violations(input, 5)).toEqual([]);
    });

    test('flags a flip-flop PROTECTED, SKIPPED, PROTECTED on an unchanged function', () => {
      const input = passing();
      input.runs = ['run-1', 'run-2', 'run-3'].map((runId) => ({
        runId,
        inventory: ['app-01'],
        mode: 'protect' as const,
      }));
      const image = { layers: [OUR_LAYER], variableNames: ['AWS_LAMBDA_EXEC_WRAPPER'] };
      input.auditItems = [
        item('app-01', 'run-1', 1, 'PENDING'),
        item('app-01', 'run-1', 2, 'PROTECTED', { before: { layers: [] }, after: image }),
        item('app-01', 'run-2', 3, 'SKIPPED', { reasons: ['FACTS_MISSING'] }),
        item('app-01', 'run-3', 4, 'PENDING'),
        item('app-01', 'run-3', 5, 'PROTECTED', { before: image, after: image }),
      ];
      input.messages = [skipMessage('app-01', 'run-2', ['FACTS_MISSING'])];
      expect(violations(input, 5)).toEqual([
        expect.stringMatching(/^app-01: item .*run-3#PROTECTED .* protects again what item .*run-1#PROTECTED/),
      ]);
    });

    test('flags a skip message published twice and a lost one', () => {
      const input = passing();
      input.runs = [
        { runId: 'run-1', inventory: ['app-02', 'app-03'], mode: 'protect' },
        { runId: 'run-2', inventory: ['app-02', 'app-03'], mode: 'protect' },
      ];
      input.auditItems = [
        item('app-02', 'run-1', 1, 'SKIPPED', { reasons: ['MEMORY_LOW'] }),
        item('app-03', 'run-1', 2, 'SKIPPED', { reasons: ['EXCLUDED'] }),
        item('app-02', 'run-2', 3, 'SKIPPED', { reasons: ['MEMORY_LOW'], repeat: true }),
        item('app-03', 'run-2', 4, 'SKIPPED', { reasons: ['EXCLUDED'], repeat: true }),
      ];
      input.initialConfigurations = [];
      input.finalConfigurations = [];
      input.messages = [skipMessage('app-02', 'run-1', ['MEMORY_LOW']), skipMessage('app-02', 'run-2', ['MEMORY_LOW'])];
      expect(violations(input, 5)).toEqual([
        'app-02: skip message (MEMORY_LOW) published again in run run-2',
        expect.stringMatching(/^app-03: item .*run-1#SKIPPED \(SKIPPED\) was never published \(lost message\)$/),
      ]);
    });

    test('tells the same notice sent again (same noticeId, a run died before its sent mark) from a repeated one', () => {
      const input = passing();
      input.runs = [
        { runId: 'run-1', inventory: ['app-02'], mode: 'protect', killed: true },
        { runId: 'run-2', inventory: ['app-02'], mode: 'protect' },
      ];
      input.auditItems = [
        item('app-02', 'run-1', 1, 'SKIPPED', { reasons: ['MEMORY_LOW'] }),
        item('app-02', 'run-2', 3, 'SKIPPED', { reasons: ['MEMORY_LOW'], repeat: true }),
      ];
      input.initialConfigurations = [];
      input.finalConfigurations = [];
      const withId = (m: MessageRecord, id: string): MessageRecord => ({
        ...m,
        attributes: { ...m.attributes, noticeId: { DataType: 'String', StringValue: id } },
      });
      const first = withId(skipMessage('app-02', 'run-1', ['MEMORY_LOW']), 'app-02|run-1#1-decision');
      const again = withId(skipMessage('app-02', 'run-2', ['MEMORY_LOW']), 'app-02|run-1#1-decision');
      const repeated = withId(skipMessage('app-02', 'run-2', ['MEMORY_LOW']), 'app-02|run-2#1-decision');
      expect(violations({ ...input, messages: [first, again] }, 5)).toEqual([]);
      expect(violations({ ...input, messages: [first, repeated] }, 5)).toEqual([
        'app-02: skip message (MEMORY_LOW) published again in run run-2',
      ]);
    });

    test('accepts a message sent by a later run (an outbox drained)', () => {
      const input = passing();
      input.runs = [...input.runs, { runId: 'run-2', inventory: [], mode: 'protect' }];
      input.messages = [skipMessage('app-02', 'run-2', ['MEMORY_LOW'])];
      expect(violations(input, 5)).toEqual([]);
    });
  });

  describe('invariant 6: no secret anywhere', () => {
    test.each([
      ['the value', SECRET],
      ['its JSON-escaped form', JSON.stringify(`${SECRET}"\n`).slice(1, -1)],
      ['its SHA-256 in hex', createHash('sha256').update(SECRET).digest('hex')],
      ['its SHA-256 in base64', createHash('sha256').update(SECRET).digest('base64')],
      ['its base64', Buffer.from(SECRET).toString('base64')],
    ])('flags %s in a log line, an audit item and an SNS message, without quoting it', (_form, leaked) => {
      // Prepare
      const input = passing();
      const secret = _form === 'its JSON-escaped form' ? `${SECRET}"\n` : SECRET;
      input.secrets = [secret];
      input.logs = [...input.logs, `{"message":"update failed","error":"String measured: ${leaked}"}`];
      input.auditItems = input.auditItems.map((i) => (i.outcome === 'PROTECTED' ? { ...i, detail: `x ${leaked}` } : i));
      input.messages = [{ ...input.messages[0]!, message: `{"detail":"${leaked}"}` }];

      // Act
      const found = checkInvariants(input).violations.filter((v) => v.invariant === 6);

      // Assess
      expect(found.map((v) => v.evidence)).toEqual([
        expect.stringMatching(/^secret #1 \(.+\) appears in log line 2$/),
        expect.stringMatching(/^secret #1 \(.+\) appears in item .*PROTECTED/),
        expect.stringMatching(/^secret #1 \(.+\) appears in SNS message 1/),
      ]);
      expect(JSON.stringify(found)).not.toContain(SECRET);
      expect(JSON.stringify(found)).not.toContain(leaked);
    });
  });
});

describe('checkInvariants properties', () => {
  const fcItem = fc.record({
    functionName: fc.constantFrom('f1', 'f2', 'f3'),
    run: fc.constantFrom('run-1', 'run-2'),
    at: fc.integer({ min: 0, max: 59 }),
    outcome: fc.constantFrom('PENDING', 'PROTECTED', 'SKIPPED', 'FAILED', 'ALREADY_PROTECTED', 'ROLLED_BACK'),
    reconciled: fc.boolean(),
    detail: fc.string(),
  });

  test('never throws, and its evidence never quotes a secret, whatever the records', () => {
    fc.assert(
      fc.property(
        fc.array(fcItem, { maxLength: 20 }),
        fc.array(fc.string(), { maxLength: 5 }),
        fc.string({ maxLength: 12 }).map((s) => `S3cr!${s}`),
        (records, logs, secret) => {
          const input = passing();
          input.runs = [
            { runId: 'run-1', inventory: ['f1', 'f2'], mode: 'protect' },
            { runId: 'run-2', inventory: ['f1', 'f3'], mode: 'dry-run', killed: true },
          ];
          input.auditItems = records.map((r) =>
            item(r.functionName, r.run, r.at, r.outcome, { reconciled: r.reconciled, detail: `${r.detail}${secret}` }),
          );
          input.logs = logs.map((l) => `${l}${secret}`);
          input.secrets = [secret];
          const report = checkInvariants(input);
          expect(report.checked).toEqual([1, 2, 3, 4, 5, 6]);
          for (const v of report.violations) expect(v.evidence).not.toContain(secret);
        },
      ),
      { numRuns: 100 },
    );
  });
});
