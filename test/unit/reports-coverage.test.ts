/**
 * `coverage` on an estate with aliases on protected and unprotected versions and weighted routing: through the
 * deployed-account path (the SDK against the simulated account: read-only, asserted on its call counters) and
 * through a local run's folder (versions.json), which must agree.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { versionsJson } from '../../bin/commands/local-run';
import { run as coverageRun } from '../../bin/commands/coverage';
import { buildCoverage, type CoverageModel } from '../../bin/reports/coverage';
import { parseEstate } from '../../local/estate';
import { SimulatedAccount } from '../../local/simulated-account';
import { capture } from '../e2e/reports-fixture';

const CONFIG = join(__dirname, '..', 'fixtures', 'local-run-config.json');
const DEFENDER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32';
const OLD_DEFENDER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:31';
const OTHER = 'arn:aws:lambda:eu-west-1:123456789012:layer:deps:3';
const WRAPPED = { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper', TW_POLICY: 'policy-value-123456' };

const fn = (
  name: string,
  layers: string[],
  variables: Record<string, string>,
  extra: Record<string, unknown> = {},
) => ({
  configuration: {
    FunctionName: name,
    Runtime: 'python3.12',
    Layers: layers.map((Arn) => ({ Arn })),
    Environment: { Variables: variables },
  },
  ...extra,
});

const estate = parseEstate(
  [
    // $LATEST protected; live serves version 2 (protected, 90%) and version 1 (unprotected, 10%); prod and dev all
    // protected (prod on version 3, protected with an older Defender version: it still carries the Defender).
    fn(
      'orders-api',
      [OTHER, DEFENDER],
      { ...WRAPPED, STAGE: 'latest' },
      {
        versions: [
          { version: '1', layers: [OTHER], variables: { STAGE: 'v1' } },
          { version: '2', layers: [OTHER, DEFENDER], variables: { ...WRAPPED, STAGE: 'v2' } },
          { version: '3', layers: [OLD_DEFENDER], variables: { ...WRAPPED } },
        ],
        aliases: [
          { name: 'live', functionVersion: '2', routingConfig: { additionalVersionWeights: { '1': 0.1 } } },
          { name: 'prod', functionVersion: '3' },
          { name: 'dev', functionVersion: '$LATEST' },
        ],
      },
    ),
    // $LATEST unprotected; its only alias serves an unprotected version.
    fn(
      'billing',
      [OTHER],
      { STAGE: 'x' },
      {
        versions: [{ version: '1' }],
        aliases: [{ name: 'live', functionVersion: '1' }],
      },
    ),
    // No alias: $LATEST is all there is.
    fn('plain', [DEFENDER], { ...WRAPPED }),
  ],
  'coverage-estate.json',
);

function expectModel(model: CoverageModel): void {
  const orders = model.functions.find((f) => f.functionName === 'orders-api');
  expect(orders?.latestProtected).toBe(true);
  expect(orders?.aliases.map((a) => [a.name, a.routes.map((r) => [r.version, r.weight, r.protected])])).toEqual([
    ['dev', [['$LATEST', 1, true]]],
    [
      'live',
      [
        ['2', 0.9, true],
        ['1', 0.1, false],
      ],
    ],
    ['prod', [['3', 1, true]]],
  ]);
  expect(orders?.aliases.find((a) => a.name === 'live')?.protectedShare).toBeCloseTo(0.9);
  expect(orders?.fullyProtected).toBe(false);
  expect(orders?.actions).toEqual([
    'alias `live` serves unprotected version 1 (10%): publish a new version and move alias `live` to it',
  ]);
  const billing = model.functions.find((f) => f.functionName === 'billing');
  expect(billing?.actions).toEqual([
    '$LATEST is not protected: see `zero-impact report` for why',
    'alias `live` serves unprotected version 1 (100%): once $LATEST is protected, publish a new version and move alias `live` to it',
  ]);
  expect(model.totals).toEqual({
    functions: 3,
    latestProtected: 2,
    fullyProtected: 1,
    aliases: 4,
    aliasesProtected: 2,
    functionShare: 1 / 3,
    aliasShare: 0.5,
  });
}

describe('coverage', () => {
  let account: SimulatedAccount;
  afterEach(() => account?.uninstall());

  it('reads the live account with List calls only (never publishes a version or moves an alias)', async () => {
    account = new SimulatedAccount({ estate }).install();
    const { code, out, err } = await capture(() => coverageRun(['--config', CONFIG, '--format', 'json', '--quiet']));
    expect({ code, err }).toEqual({ code: 0, err: '' });
    expectModel(JSON.parse(out) as CoverageModel);
    // plain has no alias: no ListVersionsByFunction for it.
    expect(account.calls()).toEqual({
      'lambda:ListFunctions': 1,
      'lambda:ListAliases': 3,
      'lambda:ListVersionsByFunction': 2,
    });
    expect(out).not.toContain('policy-value-123456');
  });

  it('reads a local run folder (functions.json and versions.json) to the same model', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zi-coverage-'));
    account = new SimulatedAccount({ estate });
    writeFileSync(join(dir, 'functions.json'), JSON.stringify(account.functionConfigurations()));
    writeFileSync(join(dir, 'versions.json'), JSON.stringify(versionsJson(estate)));
    const { code, out } = await capture(() => coverageRun(['--local', dir, '--config', CONFIG, '--format', 'json']));
    expect(code).toBe(0);
    expectModel(JSON.parse(out) as CoverageModel);
    const table = await capture(() => coverageRun(['--local', dir, '--config', CONFIG]));
    expect(table.out).toContain('True coverage: 1 of 3 function(s) serve only protected code (33.3%)');
    expect(table.out).toContain('Aliases: 2 of 4 serve only protected code (50.0%)');
    expect(table.out).toContain(
      '  orders-api  live   2        90%     yes\n                     1        10%     NO\n',
    );
    expect(table.out).toContain('publish a new version and move alias `live`');
  });

  it('counts an alias whose version is unknown as unprotected', () => {
    const model = buildCoverage(
      [
        {
          functionName: 'f',
          latest: { layers: [DEFENDER], variableNames: ['AWS_LAMBDA_EXEC_WRAPPER'] },
          versions: {},
          aliases: [{ name: 'a', functionVersion: '7' }],
        },
      ],
      DEFENDER,
    );
    expect(model.functions[0]?.aliases[0]?.routes).toEqual([{ version: '7', weight: 1, protected: null }]);
    expect(model.totals.aliasesProtected).toBe(0);
  });
});
