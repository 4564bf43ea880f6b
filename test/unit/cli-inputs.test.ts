/**
 * Issue 13 items 5, 6, 11: output paths checked before any work (exit 2, one line); the estate loader never echoes
 * the file; `assess --facts -` reads standard input.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../bin/cli';

const ROOT = join(__dirname, '..', '..');
let dir: string;
let errors: string[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cli-inputs-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  errors = [];
  jest.spyOn(console, 'error').mockImplementation((line: unknown) => void errors.push(String(line)));
  jest.spyOn(console, 'log').mockImplementation(() => undefined);
});
afterEach(() => jest.restoreAllMocks());

describe('output paths are checked before any work', () => {
  it.each([
    ['--out', '/proc/zero-impact', /^zero-impact local-run: --out: \/proc\/zero-impact is on a pseudo file system/],
    ['--keep', '/sys/x', /^zero-impact local-run: --keep: \/sys\/x is on a pseudo file system/],
    ['--out', 'FILE/sub', /^zero-impact local-run: --out: cannot write to .*FILE\/sub \(ENOTDIR\)$/],
  ])('%s %s: one line, exit 2, at once', async (flag, path, line) => {
    const file = join(dir, 'FILE');
    writeFileSync(file, 'x');
    const started = process.hrtime.bigint();

    const code = await main(['local-run', flag, path.replace('FILE', file)]);

    expect(code).toBe(2);
    expect(errors).toEqual([expect.stringMatching(line)]);
    // Before the stack is synthesized (seconds): the check alone takes milliseconds.
    expect(Number(process.hrtime.bigint() - started) / 1e6).toBeLessThan(2000);
  });
});

describe('the estate loader', () => {
  it('never echoes an invalid file', async () => {
    const estate = join(dir, 'estate.json');
    writeFileSync(estate, '{"functions": [], "password=hunter2');

    expect(await main(['local-run', '--estate', estate])).toBe(2);
    expect(errors).toEqual([`zero-impact local-run: ${estate}: not valid JSON (at byte 35)`]);
    expect(errors.join('')).not.toContain('hunter2');
  });
});

describe('assess --facts -', () => {
  it('reads the facts from standard input', () => {
    const facts = readFileSync(join(ROOT, 'test', 'fixtures', 'facts', 'scenarios.json'), 'utf8');

    const result = spawnSync(process.execPath, ['bin/zero-impact.js', 'assess', '--facts', '-', '--human'], {
      cwd: ROOT,
      input: facts,
      encoding: 'utf8',
    });

    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(result.stdout).toContain('1 ELIGIBLE, 3 SKIP, 0 ALREADY_PROTECTED');
  });
});
