/**
 * Issue 13 item 3: `local-run --keep DIR` keeps the simulated account and the tables; `rollback --local DIR` and
 * `include --local DIR` act on them; `local-run --keep DIR` again resumes them.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../bin/cli';
import { readKeptSession } from '../../local/kept-session';
import { CONFIG_FILE, EXAMPLE_ESTATE_FILE } from './e2e-helpers';

describe('local-run --keep, rollback --local, include --local', () => {
  let dir: string;
  let logs: string[];
  let errors: string[];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'kept-session-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    logs = [];
    errors = [];
    jest.spyOn(console, 'log').mockImplementation((line: unknown) => void logs.push(String(line)));
    jest.spyOn(console, 'error').mockImplementation((line: unknown) => void errors.push(String(line)));
  });
  afterEach(() => jest.restoreAllMocks());

  it('protects, rolls one function back on the kept account, and the next run leaves it alone', async () => {
    // Prepare: six functions of the example estate, protect mode.
    const example = JSON.parse(readFileSync(EXAMPLE_ESTATE_FILE, 'utf8')) as { functions: unknown[] };
    const estate = join(dir, 'estate.json');
    writeFileSync(estate, JSON.stringify({ ...example, functions: example.functions.slice(0, 6) }));
    const keep = join(dir, 'account');

    // Act
    const first = await main([
      'local-run',
      '--estate',
      estate,
      '--config',
      CONFIG_FILE,
      '--mode',
      'protect',
      '--keep',
      keep,
    ]);
    const protectedLayers = readKeptSession(keep).estate.functions.find(
      (f) => f.configuration.FunctionName === 'orders-api',
    )?.configuration.Layers;
    const rolledBack = await main(['rollback', '--local', keep, '--function', 'orders-api', '--yes']);
    const afterRollback = readKeptSession(keep);
    logs = [];
    const second = await main(['local-run', '--keep', keep, '--mode', 'protect', '--json']);
    const included = await main(['include', '--local', keep, '--function', 'orders-api']);

    // Assess
    expect([first, rolledBack, second, included]).toEqual([0, 0, 0, 0]);
    expect(protectedLayers?.map((l) => l.Arn)).toEqual([expect.stringContaining(':layer:twistlock-defender:')]);
    const orders = afterRollback.estate.functions.find((f) => f.configuration.FunctionName === 'orders-api');
    expect(orders?.configuration.Layers ?? []).toEqual([]);
    expect(afterRollback.tables.audit.some((i) => i['outcome'] === 'ROLLED_BACK')).toBe(true);
    expect(afterRollback.tables.state.some((i) => i['pk'] === 'EXCLUDE#orders-api')).toBe(true);
    const summary = JSON.parse(logs[0] ?? '{}') as { runs: Array<{ runId: string }> };
    const audit = readKeptSession(keep).tables.audit;
    const secondRun = audit.filter((i) => i['runId'] === summary.runs[0]?.runId && i['functionName'] === 'orders-api');
    expect(secondRun.map((i) => i['outcome'])).not.toContain('PROTECTED');
    expect(readKeptSession(keep).tables.state.some((i) => i['pk'] === 'EXCLUDE#orders-api')).toBe(false);
  }, 150_000);

  it('says in one line when DIR holds no kept account', async () => {
    expect(await main(['rollback', '--local', join(dir, 'none'), '--function', 'orders-api'])).toBe(2);
    expect(errors).toEqual([
      expect.stringMatching(/^zero-impact rollback: --local: .*none: no kept local session \(ENOENT\)/),
    ]);
  });
});
