/**
 * `zero-impact local-run`: bad input gives one line and exit 2 before anything starts; a run writes the four files
 * in their documented shapes and --json prints summary.json; Ctrl-C stops the local servers and exits 130.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../bin/cli';
import { exitCode } from '../../bin/commands/local-run';
import type { LocalRunReport } from '../../local/local-runner';
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
      'a scenario with a bad key (named, its value not echoed)',
      () => ['--scenario', file('s.json', '{"faults":[{"operation":"lambda:*","error":"X","times":"s3cr3t-value"}]}')],
      /^zero-impact local-run: --scenario: invalid scenario in .*s\.json: faults\[0\]\.times: expected a positive integer or "all"$/,
    ],
    [
      'a scenario that is not JSON',
      () => ['--scenario', file('s.json', '{"seed": s3cr3t')],
      /s\.json: not valid JSON \(/,
    ],
    ['a missing scenario', () => ['--scenario', join(dir, 'none.json')], /none\.json: cannot read file \(ENOENT\)/],
    [
      'an --out that is a file',
      () => ['--out', file('out.txt', 'x')],
      /--out: .*out\.txt exists and is not a directory/,
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
    expect(String(errors.mock.calls[0]?.[0])).not.toContain('s3cr3t');
  });

  it('runs a scenario, writes audit.jsonl, sns.jsonl, functions.json, summary.json, faults.jsonl and invariants.json, and prints summary.json with --json', async () => {
    // Prepare
    const example = JSON.parse(readFileSync(EXAMPLE_ESTATE_FILE, 'utf8')) as {
      functions: unknown[];
      ssmParameters: unknown;
    };
    const estate = file('small.json', JSON.stringify({ ...example, functions: example.functions.slice(0, 6) }));
    const out = join(dir, 'out');
    const scenario = file(
      'scenario.json',
      JSON.stringify({
        seed: 1,
        faults: [{ operation: 'cloudwatch:GetMetricData', error: 'InternalServiceError', times: 1 }],
        events: [{ after: 'tag:GetResources', do: 'tag', function: 'orders-api', tags: { team: 'rehearsal' } }],
      }),
    );

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
      '--scenario',
      scenario,
      '--check-invariants',
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
    const faults = readFileSync(join(out, 'faults.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(faults).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ run: 1, operation: 'tag:GetResources', event: 'tag', function: 'orders-api' }),
        expect.objectContaining({ run: 1, operation: 'cloudwatch:GetMetricData', fault: 'InternalServiceError' }),
      ]),
    );
    expect(JSON.parse(readFileSync(join(out, 'invariants.json'), 'utf8'))).toEqual({
      checked: [1, 2, 3, 4, 5, 6],
      violations: [],
    });
    expect(errors.mock.calls.map((c) => String(c[0]))).toContain(
      'zero-impact local-run: invariants 1, 2, 3, 4, 5, 6 hold',
    );
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

describe('local-run exit code', () => {
  const report = (
    status: 'SUCCEEDED' | 'FAILED' | 'KILLED',
    violations: number,
  ): Pick<LocalRunReport, 'runs' | 'invariants'> => ({
    runs: [{ runId: 'r', status } as LocalRunReport['runs'][number]],
    invariants: {
      checked: [1, 2, 3, 4, 5, 6],
      violations: Array.from({ length: violations }, () => ({ invariant: 4 as const, evidence: 'no final decision' })),
    },
  });

  it.each([
    ['a failed run without a scenario', report('FAILED', 0), { scenario: false, checkInvariants: false }, 1],
    ['a killed run of a scenario', report('KILLED', 0), { scenario: true, checkInvariants: true }, 0],
    ['a violation with --check-invariants', report('SUCCEEDED', 1), { scenario: true, checkInvariants: true }, 1],
    ['a violation without --check-invariants', report('SUCCEEDED', 1), { scenario: true, checkInvariants: false }, 0],
  ])('is right for %s', (_case, input, options, code) => {
    // Act / Assess
    expect(exitCode(input, options)).toBe(code);
  });
});
