/**
 * `zero-impact local-run`: bad input gives one line and exit 2 before anything starts; a run writes the four files
 * in their documented shapes and --json prints summary.json; Ctrl-C stops the local servers and exits 130.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../bin/cli';
import { CONFIG_FILE, EXAMPLE_ESTATE_FILE } from './e2e-helpers';

describe('zero-impact local-run', () => {
  let dir: string;
  let errors: jest.SpyInstance;
  let logs: jest.SpyInstance;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'local-run-test-'));
    errors = jest.spyOn(console, 'error').mockImplementation(() => undefined);
    logs = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  });

  afterEach(() => {
    jest.restoreAllMocks();
    rmSync(dir, { recursive: true, force: true });
  });

  function file(name: string, content: string): string {
    const path = join(dir, name);
    writeFileSync(path, content);
    return path;
  }

  it.each([
    [
      'an estate that is not JSON',
      () => ['--estate', file('e.json', '{nope')],
      /^zero-impact local-run: .*e\.json: not valid JSON/,
    ],
    [
      'an estate with a bad function name',
      () => ['--estate', file('e.json', '[{"configuration":{"FunctionName":"no spaces allowed"}}]')],
      /e\.json: \$\[0\]\.configuration\.FunctionName: a Lambda function name/,
    ],
    ['a missing estate', () => ['--estate', join(dir, 'missing.json')], /missing\.json: cannot read file \(ENOENT\)/],
    ['an unknown mode', () => ['--mode', 'yolo'], /--mode: expected "dry-run" or "protect", got "yolo"/],
    ['zero runs', () => ['--runs', '0'], /--runs: expected a whole number from 1 to 100, got "0"/],
    [
      'a bad configuration',
      () => ['--config', file('c.json', '{"maxProtectionsPerRun":-1}')],
      /c\.json: .*maxProtectionsPerRun/,
    ],
    [
      'an SSM parameter the estate does not provide',
      () => ['--estate', file('e.json', '[]')],
      /reads SSM parameter \/zero-impact\/tw-policy: give its value in the estate file/,
    ],
  ])('rejects %s with one line and exit code 2', async (_case, args, message) => {
    // Act
    const code = await main(['local-run', ...args()]);

    // Assess
    expect(code).toBe(2);
    expect(errors).toHaveBeenCalledTimes(1);
    expect(String(errors.mock.calls[0]?.[0])).toMatch(message);
    expect(String(errors.mock.calls[0]?.[0])).not.toContain('\n');
  });

  it('runs, writes audit.jsonl, sns.jsonl, functions.json and summary.json, and prints summary.json with --json', async () => {
    // Prepare
    const example = JSON.parse(readFileSync(EXAMPLE_ESTATE_FILE, 'utf8')) as {
      functions: unknown[];
      ssmParameters: unknown;
    };
    const estate = file('small.json', JSON.stringify({ ...example, functions: example.functions.slice(0, 6) }));
    const out = join(dir, 'out');

    // Act
    const code = await main([
      'local-run',
      '--estate',
      estate,
      '--config',
      CONFIG_FILE,
      '--mode',
      'dry-run',
      '--out',
      out,
      '--json',
    ]);

    // Assess
    expect(code).toBe(0);
    const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as {
      runs: Array<{ runId: string; outcomes: Record<string, number>; apiCalls: Record<string, number> }>;
    };
    expect(JSON.parse(String(logs.mock.calls[0]?.[0]))).toEqual(summary);
    expect(summary.runs).toHaveLength(1);
    expect(Object.keys(summary.runs[0] ?? {})).toEqual(['runId', 'outcomes', 'apiCalls']);
    expect(Object.values(summary.runs[0]?.outcomes ?? {}).reduce((a, b) => a + b, 0)).toBe(6);
    expect(summary.runs[0]?.apiCalls['lambda:ListFunctions']).toBe(1);
    const audit = readFileSync(join(out, 'audit.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { runId: string });
    expect(audit.filter((i) => i.runId === summary.runs[0]?.runId).length).toBeGreaterThanOrEqual(6);
    const sns = readFileSync(join(out, 'sns.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as object);
    expect(sns.length).toBeGreaterThan(0);
    for (const message of sns) expect(Object.keys(message)).toEqual(['runId', 'subject', 'message', 'attributes']);
    const functions = JSON.parse(readFileSync(join(out, 'functions.json'), 'utf8')) as Array<{ FunctionName: string }>;
    expect(functions.map((f) => f.FunctionName)).toEqual(
      (example.functions.slice(0, 6) as Array<{ configuration: { FunctionName: string } }>).map(
        (f) => f.configuration.FunctionName,
      ),
    );
  }, 60_000);
});

describe('zero-impact local-run on Ctrl-C', () => {
  it('stops the local servers and exits 130 when interrupted mid-run', async () => {
    // Prepare: the real command in its own process, interrupted once the run has started.
    const child = spawn(
      process.execPath,
      [
        join(__dirname, '..', '..', 'bin', 'zero-impact.js'),
        'local-run',
        '--estate',
        EXAMPLE_ESTATE_FILE,
        '--config',
        CONFIG_FILE,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    let interrupted = false;
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
      if (!interrupted && stderr.includes('Take inventory')) {
        interrupted = true;
        child.kill('SIGINT');
      }
    });

    // Act
    const code = await new Promise<number | null>((resolve) => child.on('exit', (exitCode) => resolve(exitCode)));

    // Assess
    expect(interrupted).toBe(true);
    expect(code).toBe(130);
    expect(stderr).toContain('zero-impact local-run: interrupted; the local servers are stopped');
  });
});
