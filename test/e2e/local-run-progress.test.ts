/**
 * local-run's progress on a real local run (issue 13 item 7): ten functions in batches of two, four at a time, so
 * batches end out of order. Without a terminal the batch lines come in order; on a (fake) terminal a bar counts the
 * functions assessed and protected; with --quiet nothing is printed on stderr. Progress never lands in logs.txt
 * (the handlers' captured output).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localRunCommand } from '../../bin/commands/local-run';
import type { ProgressStream } from '../../bin/commands/local-run-progress';
import { CONFIG_FILE, EXAMPLE_ESTATE_FILE } from './e2e-helpers';

function fakeStream(isTTY: boolean): ProgressStream & { text: () => string } {
  const chunks: string[] = [];
  return {
    isTTY,
    columns: 120,
    write: (chunk: string) => {
      chunks.push(String(chunk));
      return true;
    },
    text: () => chunks.join(''),
  };
}

describe('zero-impact local-run progress', () => {
  let dir: string;
  let estate: string;
  let config: string;
  let errors: string[];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'local-run-progress-'));
    const example = JSON.parse(readFileSync(EXAMPLE_ESTATE_FILE, 'utf8')) as { functions: unknown[] };
    estate = join(dir, 'estate.json');
    writeFileSync(estate, JSON.stringify({ ...example, functions: example.functions.slice(0, 10) }));
    const base = JSON.parse(readFileSync(CONFIG_FILE, 'utf8')) as { rates?: Record<string, unknown> };
    config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ ...base, rates: { ...base.rates, batchSize: 2, maxConcurrency: 4 } }));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  beforeEach(() => {
    errors = [];
    jest.spyOn(console, 'log').mockImplementation(() => undefined);
    jest.spyOn(console, 'error').mockImplementation((line: unknown) => void errors.push(String(line)));
  });
  afterEach(() => jest.restoreAllMocks());

  const flags = (out: string, extra: Record<string, unknown> = {}) => ({
    estate,
    config,
    mode: 'protect',
    runs: '1',
    out,
    ...extra,
  });

  it('without a terminal: plain lines, batch 1 of 5 to 5 of 5 in order, none in logs.txt', async () => {
    // stderr is not a terminal (whatever runs the tests): the lines go through console.error.
    const isTTY = Object.getOwnPropertyDescriptor(process.stderr, 'isTTY');
    Object.defineProperty(process.stderr, 'isTTY', { value: false, configurable: true });
    const out = join(dir, 'plain');
    let code: number;
    try {
      code = await localRunCommand(flags(out));
    } finally {
      if (isTTY !== undefined) Object.defineProperty(process.stderr, 'isTTY', isTTY);
      else delete (process.stderr as { isTTY?: boolean }).isTTY;
    }

    expect(code).toBe(0);
    const batches = errors.filter((l) => /^ {4}batch /.test(l)).map((l) => l.trim().split(' (')[0]);
    expect(batches).toEqual([1, 2, 3, 4, 5].map((i) => `batch ${i} of 5 done`));
    expect(errors).toContain('  Assess every function');
    expect(errors.findIndex((l) => l.startsWith('Run 1: local-'))).toBeLessThan(errors.indexOf('  Take inventory'));
    expect(errors.find((l) => l.includes('batch 5 of 5'))).toMatch(/so far 10 of 10 functions assessed, \d+ protected/);
    expect(errors[0]).toMatch(/^zero-impact local-run: 10 functions in /);
    const logs = readFileSync(join(out, 'logs.txt'), 'utf8');
    expect(logs).not.toContain('batch 1 of 5');
    expect(logs).not.toContain('Take inventory\n');
  }, 120_000);

  it('on a terminal: a bar with the functions assessed and protected; --quiet: nothing on stderr', async () => {
    const tty = fakeStream(true);
    const out = join(dir, 'tty');
    expect(await localRunCommand(flags(out), { stderr: tty })).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      runs: Array<{ outcomes: Record<string, number> }>;
    };
    const protectedCount = summary.runs[0]?.outcomes['PROTECTED'] ?? 0;
    expect(protectedCount).toBeGreaterThan(0);
    expect(tty.text()).toContain(`10/10 functions assessed, ${protectedCount} protected | batches 5/5 | Finish run`);
    expect(tty.text()).not.toMatch(/batch \d of 5/);
    expect(readFileSync(join(out, 'logs.txt'), 'utf8')).not.toContain('functions assessed');

    errors = [];
    const quiet = fakeStream(false);
    expect(await localRunCommand(flags(join(dir, 'quiet'), { quiet: true }), { stderr: quiet })).toBe(0);
    expect({ progress: quiet.text(), errors }).toEqual({ progress: '', errors: [] });
  }, 120_000);
});
