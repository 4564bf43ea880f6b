/**
 * The reviewing commands on a folder `local-run --keep DIR` kept (issue 13 item 3): `report`, `history`, `export`
 * and `coverage --local DIR` read the kept audit table and account, including what `rollback --local DIR` added.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../bin/cli';
import type { CoverageModel } from '../../bin/reports/coverage';
import type { HistoryEntry } from '../../bin/reports/history';
import type { ReportModel } from '../../bin/reports/report-model';
import { readKeptSession } from '../../local/kept-session';
import { capture } from './reports-fixture';
import { CONFIG_FILE, DEFENDER, EXAMPLE_ESTATE_FILE } from './e2e-helpers';

interface EstateFile {
  functions: Array<{ configuration: { FunctionName: string }; versions?: unknown[]; aliases?: unknown[] }>;
}

describe('report, history, export, coverage --local on a kept session', () => {
  let dir: string;
  let keep: string;
  let runId: string;

  beforeAll(async () => {
    // Six functions of the example estate and aliased-service, with a version 3 that inherits $LATEST's layers as
    // the estate gives them (no Defender) behind alias "canary".
    dir = mkdtempSync(join(tmpdir(), 'reports-kept-'));
    const example = JSON.parse(readFileSync(EXAMPLE_ESTATE_FILE, 'utf8')) as EstateFile;
    const aliased = example.functions.find((f) => f.configuration.FunctionName === 'aliased-service');
    if (aliased === undefined) throw new Error('the example estate has no aliased-service');
    const withCanary = {
      ...aliased,
      versions: [...(aliased.versions ?? []), { version: '3' }],
      aliases: [...(aliased.aliases ?? []), { name: 'canary', functionVersion: '3' }],
    };
    const estate = join(dir, 'estate.json');
    writeFileSync(estate, JSON.stringify({ ...example, functions: [...example.functions.slice(0, 6), withCanary] }));
    keep = join(dir, 'account');
    const ran = await capture(() =>
      main(['local-run', '--estate', estate, '--config', CONFIG_FILE, '--mode', 'protect', '--keep', keep, '--json']),
    );
    expect(ran.code).toBe(0);
    runId = (JSON.parse(ran.out) as { runs: Array<{ runId: string }> }).runs[0]?.runId ?? '';
    const rolledBack = await capture(() => main(['rollback', '--local', keep, '--function', 'orders-api', '--yes']));
    expect(rolledBack.code).toBe(0);
  }, 150_000);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('report: the kept run, its counts as the kept audit table has them', async () => {
    const { code, out, err } = await capture(() => main(['report', '--local', keep, '--format', 'json']));
    expect({ code, err }).toEqual({ code: 0, err: '' });
    const model = JSON.parse(out) as ReportModel;
    expect(model.runId).toBe(runId);
    const decisions = readKeptSession(keep).tables.audit.filter(
      (i) => i['runId'] === runId && i['kind'] === 'decision' && i['outcome'] !== 'PENDING',
    );
    const counts: Record<string, number> = {};
    for (const d of decisions) counts[String(d['outcome'])] = (counts[String(d['outcome'])] ?? 0) + 1;
    expect(model.outcomes).toEqual(counts);
    expect(model.total).toBe(7);
    expect(model.outcomes['PROTECTED']).toBeGreaterThanOrEqual(2);
  });

  it('history: the rollback the kept session recorded, newest first', async () => {
    const { code, out, err } = await capture(() =>
      main(['history', '--local', keep, '--function', 'orders-api', '--format', 'json']),
    );
    expect({ code, err }).toEqual({ code: 0, err: '' });
    const { decisions } = JSON.parse(out) as { decisions: HistoryEntry[] };
    expect(decisions[0]?.outcome).toBe('ROLLED_BACK');
    expect(decisions.map((d) => d.outcome)).toContain('PROTECTED');
    const unknown = await capture(() => main(['history', '--local', keep, '--function', 'nobody']));
    expect(unknown).toMatchObject({
      code: 2,
      err: `zero-impact history: no decision about nobody in kept local session ${keep}\n`,
    });
  });

  it('export: every kept audit item of the period, one JSON line each', async () => {
    const file = join(dir, 'export.jsonl');
    const { code } = await capture(() =>
      main(['export', '--local', keep, '--since', '2000-01-01', '--format', 'jsonl', '--out', file, '--quiet']),
    );
    expect(code).toBe(0);
    const lines = readFileSync(file, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(readKeptSession(keep).tables.audit.length);
    expect(lines.some((l) => (JSON.parse(l) as { outcome?: string }).outcome === 'ROLLED_BACK')).toBe(true);
  });

  it('coverage: $LATEST as the runs left it, published versions as the account holds them', async () => {
    const { code, out, err } = await capture(() =>
      main(['coverage', '--local', keep, '--config', CONFIG_FILE, '--format', 'json']),
    );
    expect({ code, err }).toEqual({ code: 0, err: '' });
    const model = JSON.parse(out) as CoverageModel;
    const aliased = model.functions.find((f) => f.functionName === 'aliased-service');
    expect(aliased?.latestProtected).toBe(true);
    // Version 3 was published before protection: it serves the estate's layers, not the Defender $LATEST now has.
    const canary = aliased?.aliases.find((a) => a.name === 'canary');
    expect(canary?.routes).toEqual([{ version: '3', weight: 1, protected: false }]);
    expect(model.functions.find((f) => f.functionName === 'orders-api')?.latestProtected).toBe(false);
    const kept = readKeptSession(keep).estate.functions.find((f) => f.configuration.FunctionName === 'aliased-service');
    expect(kept?.configuration.Layers?.map((l) => l.Arn)).toContain(DEFENDER);
    expect(kept?.versions?.find((v) => v.version === '3')?.layers).not.toContain(DEFENDER);
  });

  it('a value from the environment gives way to --local; a typed --stack with --local is refused', async () => {
    process.env['ZERO_IMPACT_STACK'] = 'SomeStack';
    process.env['AUDIT_TABLE_NAME'] = 'some-table';
    try {
      expect((await capture(() => main(['report', '--local', keep, '--quiet']))).code).toBe(0);
    } finally {
      delete process.env['ZERO_IMPACT_STACK'];
      delete process.env['AUDIT_TABLE_NAME'];
    }
    const both = await capture(() => main(['report', '--local', keep, '--stack', 'S']));
    expect(both).toMatchObject({
      code: 2,
      err: 'zero-impact report: give either --local DIR or --stack/--audit-table, not both\n',
    });
  });
});
