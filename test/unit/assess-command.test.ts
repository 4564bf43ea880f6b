import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../bin/cli';

const ROOT = join(__dirname, '..', '..');
const FIXTURES = join(ROOT, 'test', 'fixtures', 'facts');
const SCENARIOS = join(FIXTURES, 'scenarios.json');
const SECRET = 'S3CR3T-do-not-print';

let dir: string;
let stdout: jest.SpyInstance;
let stderr: jest.SpyInstance;

function tempFile(name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

const printed = (spy: jest.SpyInstance): string[] =>
  spy.mock.calls.map((args: unknown[]) => args.map(String).join(' '));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'assess-command-'));
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  stdout = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  stderr = jest.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => {
  jest.restoreAllMocks();
});

describe('zero-impact assess', () => {
  it('prints one JSON line per function, in input order, with the documented fields, and exits 0', async () => {
    // Act
    const code = await main(['assess', '--facts', SCENARIOS]);

    // Assess
    expect(code).toBe(0);
    expect(stderr).not.toHaveBeenCalled();
    const lines = printed(stdout).map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines.map((l) => [l.functionName, l.verdict, l.reasons])).toEqual([
      ['orders-api', 'ELIGIBLE', []],
      ['nightly-data-processing', 'SKIP', ['TIMEOUT_NEAR_LIMIT']],
      ['legacy-billing', 'SKIP', ['PACKAGE_IMAGE']],
      ['hf-trader', 'SKIP', ['PROVISIONED_CONCURRENCY']],
    ]);
    expect(Object.keys(lines[0] ?? {})).toEqual([
      'functionName',
      'functionArn',
      'verdict',
      'reasons',
      'warnings',
      'checks',
    ]);
    expect(Object.keys((lines[0]?.checks as object[])[0] ?? {})).toEqual([
      'gate',
      'code',
      'status',
      'observed',
      'limit',
      'message',
      'remediation',
    ]);
  });

  it('accepts a single facts object', async () => {
    // Act
    const code = await main(['assess', '--facts', join(FIXTURES, 'legacy-container.json')]);

    // Assess
    expect(code).toBe(0);
    expect(printed(stdout)).toHaveLength(1);
    expect(JSON.parse(printed(stdout)[0] ?? '')).toMatchObject({ functionName: 'legacy-billing', verdict: 'SKIP' });
  });

  it('assesses a facts object with missing fields and skips it with FACTS_MISSING', async () => {
    // Prepare
    const path = tempFile('partial.json', JSON.stringify([{ configuration: { FunctionName: 'half-known' } }, {}]));

    // Act
    const code = await main(['assess', '--facts', path]);

    // Assess
    expect(code).toBe(0);
    expect(printed(stdout).map((line) => JSON.parse(line) as unknown)).toEqual([
      expect.objectContaining({ functionName: 'half-known', verdict: 'SKIP', reasons: ['FACTS_MISSING'] }),
      expect.objectContaining({ functionName: null, verdict: 'SKIP', reasons: ['FACTS_MISSING'] }),
    ]);
  });

  it('uses --config FILE instead of the cdk.json example', async () => {
    // Prepare
    const config = tempFile(
      'config.json',
      JSON.stringify({
        defender: {
          layerArn: 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32',
          environment: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper', TW_POLICY: 'p' },
        },
        funnel: { minMemoryMb: 1024 },
      }),
    );

    // Act
    const code = await main(['assess', '--facts', join(FIXTURES, 'standard-microservice.json'), '--config', config]);

    // Assess
    expect(code).toBe(0);
    expect(JSON.parse(printed(stdout)[0] ?? '')).toMatchObject({ verdict: 'SKIP', reasons: ['MEMORY_LOW'] });
  });

  it('prints a readable table with --human', async () => {
    // Act
    const code = await main(['assess', '--facts', SCENARIOS, '--human']);

    // Assess
    expect(code).toBe(0);
    const text = printed(stdout).join('\n');
    expect(text).toMatch(/^FUNCTION\s+VERDICT\s+REASONS\s+WARNINGS$/m);
    expect(text).toMatch(/^nightly-data-processing\s+SKIP\s+TIMEOUT_NEAR_LIMIT\s+-$/m);
    expect(text).toContain('FAIL gate 5 TIMEOUT_NEAR_LIMIT: Timeout too close to limit (observed: 900; limit: 870)');
    expect(text).toContain('-> lower Timeout to 870 s or less');
    expect(text).toContain('1 ELIGIBLE, 3 SKIP, 0 ALREADY_PROTECTED');
  });

  it('never prints an environment variable value', async () => {
    // Prepare
    const path = tempFile(
      'secret.json',
      JSON.stringify({
        configuration: {
          FunctionName: 'f',
          Environment: { Variables: { TW_POLICY: SECRET, AWS_LAMBDA_EXEC_WRAPPER: SECRET, OTHER: SECRET } },
        },
      }),
    );

    // Act
    await main(['assess', '--facts', path]);
    await main(['assess', '--facts', path, '--human']);

    // Assess
    expect(printed(stdout).join('\n')).not.toContain(SECRET);
  });
});

describe('zero-impact assess on the issue 8 facts', () => {
  it('item 15/16/11/2: decides on lambdaEdge, codeSigning, previousRejection, Architectures null and a foreign Defender', async () => {
    // Prepare
    const [orders] = JSON.parse(readFileSync(SCENARIOS, 'utf8')) as Array<{ configuration: Record<string, unknown> }>;
    const base = orders!;
    const variant = (name: string, configuration: Record<string, unknown>, rest: Record<string, unknown> = {}) => ({
      ...base,
      ...rest,
      configuration: { ...base.configuration, FunctionName: name, ...configuration },
    });
    const path = tempFile(
      'issue8.json',
      JSON.stringify([
        variant('edge', { FunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:edge' }, { lambdaEdge: true }),
        variant('signed', {}, { codeSigning: 'Enforce' }),
        variant(
          'rejected',
          {},
          { previousRejection: { reason: 'InvalidParameterValueException', nextAttemptAt: '2030-01-01T00:00:00Z' } },
        ),
        variant('no-arch', { Architectures: null }),
        variant('by-hand', {
          Handler: 'twistlock.handler',
          Layers: [{ Arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:my-defender:3' }],
          Environment: { Variables: { ORIGINAL_HANDLER: 'app.handler' } },
        }),
      ]),
    );

    // Act
    const code = await main(['assess', '--facts', path]);

    // Assess
    expect(code).toBe(0);
    const lines = printed(stdout).map((line) => JSON.parse(line) as { functionName: string; reasons: string[] });
    expect(lines.map((l) => [l.functionName, l.reasons])).toEqual([
      ['edge', ['LAMBDA_EDGE']],
      ['signed', ['CODE_SIGNING_ENFORCED']],
      ['rejected', ['PREVIOUSLY_REJECTED']],
      ['no-arch', ['FACTS_MISSING']],
      ['by-hand', ['DEFENDER_PRESENT']],
    ]);
  });
});

describe('zero-impact assess with bad input', () => {
  async function expectBadInput(argv: string[], line: string | RegExp): Promise<void> {
    // Act
    const code = await main(['assess', ...argv]);

    // Assess
    expect(code).toBe(2);
    expect(stdout).not.toHaveBeenCalled();
    const errors = printed(stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).not.toContain('\n');
    expect(errors[0]).not.toMatch(/\bat .*:\d+:\d+/);
    if (typeof line === 'string') expect(errors[0]).toBe(line);
    else expect(errors[0]).toMatch(line);
  }

  it('names the entry that is not a facts object', async () => {
    // Prepare
    const path = tempFile('entries.json', JSON.stringify([{}, {}, {}, 'orders-api']));

    // Act & Assess
    await expectBadInput(['--facts', path], `zero-impact ${path}: [3]: expected a facts object`);
  });

  it.each([
    ['a number', '42'],
    ['null', 'null'],
  ])('rejects a file holding %s', async (_label, content) => {
    // Prepare
    const path = tempFile('root.json', content);

    // Act & Assess
    await expectBadInput(['--facts', path], `zero-impact ${path}: (root): expected a facts object or an array of them`);
  });

  it('rejects a file that is not JSON', async () => {
    // Prepare
    const path = tempFile('broken.json', '{"configuration": ');

    // Act & Assess
    await expectBadInput(['--facts', path], new RegExp(`^zero-impact ${path}: not valid JSON`));
  });

  it('rejects an unreadable file', async () => {
    // Prepare
    const path = join(dir, 'absent.json');

    // Act & Assess
    await expectBadInput(['--facts', path], `zero-impact ${path}: cannot read file (ENOENT)`);
  });

  it('rejects a bad config, naming the file and the key', async () => {
    // Prepare
    const config = tempFile('bad-config.json', JSON.stringify({ defender: { layerArn: 'nope', environment: {} } }));

    // Act & Assess
    await expectBadInput(
      ['--facts', SCENARIOS, '--config', config],
      new RegExp(`^zero-impact ${config}: defender\\.layerArn: `),
    );
  });

  it('requires --facts', async () => {
    // Act & Assess
    await expectBadInput([], 'zero-impact assess: --facts FILE is required');
  });

  it('rejects an unknown flag', async () => {
    // Act & Assess
    await expectBadInput(['--facts', SCENARIOS, '--fast'], /^zero-impact assess: .*Unknown option '--fast'/);
  });
});

describe('the real binary', () => {
  it('runs node bin/zero-impact.js assess', () => {
    // Act
    const result = spawnSync(process.execPath, ['bin/zero-impact.js', 'assess', '--facts', SCENARIOS], {
      cwd: ROOT,
      encoding: 'utf8',
    });

    // Assess
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const verdicts = result.stdout
      .trim()
      .split('\n')
      .map((line) => (JSON.parse(line) as { verdict: string }).verdict);
    expect(verdicts).toEqual(['ELIGIBLE', 'SKIP', 'SKIP', 'SKIP']);
  });
});
