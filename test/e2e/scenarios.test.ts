/**
 * The fault-injection suite of issue 9: every scenario file under test/scenarios/ (one test each), two runs at once,
 * an expired lease under a long run, and generated estates with generated fault schedules (fast-check). Each runs
 * the synthesized state machine with the real handlers on the simulated account and a local DynamoDB, on the
 * virtual clock (two runs an hour apart cost nothing), and checks the six invariants of local/invariants.ts.
 *
 * The figures of a complete run of this file (scenarios, runs, faults injected, events applied, functions processed,
 * violations) are written to test/scenarios/last-run.json: docs/testing.md quotes them.
 */
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import type { AuditItem } from '../../lambdas/shared/domain/types';
import type { CfnTemplate } from '../../local/asl-local';
import { generateEstate, type Estate } from '../../local/estate';
import { checkInvariants, type InvariantReport } from '../../local/invariants';
import { LocalSession, localRun, type LocalRunReport } from '../../local/local-runner';
import { loadScenarioFile, parseScenario, type Scenario } from '../../local/scenario';
import { synthesizeTemplate } from '../../local/stack-template';
import type { Config } from '../../lib/config';
import { CANARY, DEFENDER, ROOT, WRAPPER, appEstate, e2eConfig, scenarioEstate } from './e2e-helpers';

const DIR = join(ROOT, 'test', 'scenarios');
const FIGURES_FILE = join(DIR, 'last-run.json');
const FILES = readdirSync(DIR)
  .filter((name) => name.endsWith('.json') && name !== 'last-run.json')
  .sort();
/** Small batches, so that a scenario's batches run as parallel child executions. */
const CONFIG = e2eConfig({ rates: { batchSize: 3 } });
const RUNS = 2;
/** The estates scenario files are written against (by function name). */
const ESTATES: Record<string, () => Estate> = { 'issue-example.json': appEstate };
/** Issue 10: the `console-*` scenarios protect with per-function values from the stand-in Prisma Cloud Console. */
const CONSOLE_CONFIG = e2eConfig({
  rates: { batchSize: 3 },
  defender: {
    layerArn: CONFIG.defender.layerArn,
    environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER },
    policySource: {
      console: 'https://eu-west-1.cloud.twistlock.com/eu-123456',
      credentialsSecret: 'zero-impact/prisma',
    },
  },
});
const configOf = (file: string): Config => (file.startsWith('console-') ? CONSOLE_CONFIG : CONFIG);
/** What start-run's lease lasts (lambdas/start-run/handler.ts LEASE_SECONDS). */
const LEASE_MS = 2 * 60 * 60 * 1000;
const PROPERTY_CASES = 16;

interface Figures {
  scenarios: number;
  runs: number;
  faultsInjected: number;
  eventsApplied: number;
  functionsProcessed: number;
  violations: number;
  propertyCases: number;
}

const figures: Figures = {
  scenarios: 0,
  runs: 0,
  faultsInjected: 0,
  eventsApplied: 0,
  functionsProcessed: 0,
  violations: 0,
  propertyCases: 0,
};
let template: CfnTemplate;
let consoleTemplate: CfnTemplate | undefined;
/** The property test ran to its end (passed or failed). */
let propertyDone = false;

/** (run, function) pairs with a decision: the functions each run processed. */
function processed(items: readonly AuditItem[]): number {
  return new Set(items.filter((i) => i.functionName !== '#run').map((i) => `${i.runId}\u0000${i.functionName}`)).size;
}

function tally(report: Pick<LocalRunReport, 'runs' | 'faults' | 'auditItems' | 'invariants'>): void {
  figures.runs += report.runs.length;
  figures.faultsInjected += report.faults.filter((r) => 'fault' in r).length;
  figures.eventsApplied += report.faults.filter((r) => 'event' in r).length;
  figures.functionsProcessed += processed(report.auditItems);
  figures.violations += report.invariants.violations.length;
}

async function runScenario(scenario: Scenario, estate: Estate, config: Config = CONFIG): Promise<LocalRunReport> {
  // The console scenarios' stack differs (the protect role reads the credentials secret): its own template.
  if (config === CONSOLE_CONFIG) consoleTemplate ??= synthesizeTemplate(CONSOLE_CONFIG);
  return localRun({
    estate,
    config,
    template: config === CONSOLE_CONFIG ? (consoleTemplate as CfnTemplate) : template,
    runs: RUNS,
    scenario,
  });
}

beforeAll(() => {
  template = synthesizeTemplate(CONFIG);
}, 120_000);

afterAll(() => {
  // Only a complete run of the file gives the figures the README quotes.
  if (figures.scenarios === FILES.length + 2 && propertyDone) {
    writeFileSync(FIGURES_FILE, `${JSON.stringify(figures, null, 2)}\n`);
  }
});

describe('scenario files', () => {
  it.each(FILES)(
    '%s: every invariant holds after two runs',
    async (file) => {
      // Prepare
      const scenario = loadScenarioFile(join(DIR, file));
      const estate = (ESTATES[file] ?? scenarioEstate)();

      // Act
      const report = await runScenario(scenario, estate, configOf(file));
      figures.scenarios += 1;
      tally(report);

      // Assess: the scenario did hit the runs, and nothing it did broke an invariant.
      expect(report.faults.length).toBeGreaterThan(0);
      expect(report.invariants.checked).toEqual([1, 2, 3, 4, 5, 6]);
      expect(report.invariants.violations).toEqual([]);
    },
    90_000,
  );
});

describe('overlapping runs', () => {
  let session: LocalSession | undefined;

  afterEach(async () => {
    await session?.stop();
    session = undefined;
  });

  function count(items: AuditItem[], invariants: InvariantReport, runs: number): void {
    figures.scenarios += 1;
    figures.runs += runs;
    figures.functionsProcessed += processed(items);
    figures.violations += invariants.violations.length;
  }

  it('two runs at once: one holds the lease and decides, the other records RUN_OVERLAP and changes nothing', async () => {
    // Prepare
    session = await LocalSession.start({ estate: scenarioEstate(), config: CONFIG, template, virtualTime: true });

    // Act
    const runs = await Promise.all([session.run({ now: true }), session.run({ now: true })]);
    const items = await session.auditItems();
    const invariants = checkInvariants(await session.invariantInput());
    count(items, invariants, runs.length);

    // Assess
    const overlap = items.filter((i) => i.functionName === '#run' && i.outcome === 'RUN_OVERLAP');
    expect(overlap).toHaveLength(1);
    const loser = overlap[0]?.runId;
    expect(items.filter((i) => i.runId === loser && i.functionName !== '#run')).toEqual([]);
    expect(invariants.violations).toEqual([]);
  }, 90_000);

  it('an expired lease under a long run: maxProtectionsPerRun holds across the two overlapping runs', async () => {
    // Prepare: a cap of 2 on an estate with more eligible functions; once run 1 has protected one, its lease
    // expires (the clock jumps past it) and run 2 starts while run 1 is still working.
    const cap = 2;
    let second: Promise<unknown> | undefined;
    session = await LocalSession.start({
      estate: scenarioEstate(),
      config: e2eConfig({ rates: { batchSize: 3 }, maxProtectionsPerRun: cap }),
      template,
      virtualTime: true,
      onInvoke: (event) => {
        if (second !== undefined || event.state !== 'Protect function' || session === undefined) return;
        session.advanceClock(LEASE_MS + 60_000);
        second = session.run({ now: true });
      },
    });

    // Act
    const first = await session.run();
    await second;
    const items = await session.auditItems();
    const invariants = checkInvariants(await session.invariantInput());
    count(items, invariants, 2);

    // Assess
    expect(second).toBeDefined();
    expect(first.status).toBe('SUCCEEDED');
    const protectedItems = items.filter((i) => i.outcome === 'PROTECTED' && i.functionName !== '#run');
    expect(protectedItems.length).toBeLessThanOrEqual(cap);
    expect(invariants.violations).toEqual([]);
  }, 90_000);
});

describe('generated estates and fault schedules (fast-check)', () => {
  const POLICY = 'twp-property-policy-7c1d';
  const LAMBDA_ERRORS = ['TooManyRequestsException', 'ServiceException', 'ResourceConflictException'];
  const faultArb = fc.oneof(
    fc.record({
      operation: fc.constantFrom(
        'lambda:*',
        'lambda:UpdateFunctionConfiguration',
        'lambda:GetFunctionConfiguration',
        'lambda:GetFunction',
      ),
      error: fc.constantFrom(...LAMBDA_ERRORS),
      probability: fc.double({ min: 0.05, max: 0.5, noNaN: true }),
    }),
    fc.record({
      operation: fc.constantFrom('tag:GetResources', 'cloudwatch:GetMetricData', 'ec2:DescribeRouteTables'),
      error: fc.constantFrom('ThrottlingException', 'InternalFailure'),
      times: fc.integer({ min: 1, max: 3 }),
    }),
    // A DynamoDB outage somewhere in a run (every call to both tables fails while it lasts).
    fc.record({
      operation: fc.constantFrom('dynamodb:*', 'dynamodb:PutItem', 'dynamodb:BatchWriteItem'),
      error: fc.constantFrom('ServiceUnavailable', 'ProvisionedThroughputExceededException'),
      fromSecond: fc.integer({ min: 0, max: 20 }),
      forSeconds: fc.integer({ min: 1, max: 40 }),
    }),
    // SNS refusing publishes in one run, or at random.
    fc.oneof(
      fc.record({
        operation: fc.constant('sns:Publish'),
        error: fc.constant('InternalErrorException'),
        runs: fc.constantFrom([1], [2]),
      }),
      fc.record({
        operation: fc.constant('sns:Publish'),
        error: fc.constant('ThrottledException'),
        probability: fc.double({ min: 0.1, max: 0.9, noNaN: true }),
      }),
    ),
  );
  const eventArb = fc.oneof(
    fc.record({
      afterTask: fc.constantFrom('Assess batch', 'Protect function'),
      batch: fc.integer({ min: 1, max: 2 }),
      do: fc.constant('crash'),
    }),
    // A kill before or after an update, in run 1 (run 2 must settle it) or run 2 (left unfinished).
    fc.record({
      before: fc.constant('lambda:UpdateFunctionConfiguration'),
      run: fc.constantFrom(1, 2),
      do: fc.constant('kill'),
    }),
    fc.record({
      after: fc.constantFrom('lambda:UpdateFunctionConfiguration', 'dynamodb:PutItem', 'sns:Publish'),
      run: fc.constantFrom(1, 2),
      do: fc.constant('kill'),
    }),
  );
  // Hostile configurations created mid-run: null or missing fields anywhere, unicode and control characters,
  // unknown runtimes and package types, up to 5 layers with an old Defender among them.
  const text = fc.oneof(
    fc.string({ unit: 'grapheme', maxLength: 12 }),
    fc.string({ unit: 'binary', maxLength: 12 }),
    fc.constantFrom('\u0000', '\u202eevil\u202c', '\ud83d\ude80', '"\'`${x}', 'a\nb\tc'),
  );
  const orNull = <T>(arb: fc.Arbitrary<T>): fc.Arbitrary<T | null> => fc.oneof(fc.constant(null), arb);
  const oldDefender = DEFENDER.replace(/:\d+$/, ':1');
  const hostileFunctionArb = fc.record(
    {
      FunctionName: fc.constantFrom('hostile-a', 'hostile-b'),
      Runtime: orNull(fc.oneof(fc.constantFrom('python3.12', 'nodejs22.x', 'cobol85.x', 'provided.al2023'), text)),
      Handler: orNull(text),
      PackageType: orNull(fc.constantFrom('Zip', 'Image', 'Wasm')),
      MemorySize: orNull(fc.integer({ min: 128, max: 10240 })),
      Timeout: orNull(fc.integer({ min: 1, max: 900 })),
      Architectures: orNull(fc.constantFrom(['x86_64'], ['arm64'], [])),
      Environment: orNull(
        fc.record({
          Variables: orNull(fc.dictionary(fc.stringMatching(/^[A-Z][A-Z0-9_]{0,8}$/), text, { maxKeys: 4 })),
        }),
      ),
      Layers: orNull(
        fc
          .uniqueArray(fc.constantFrom('shared-utils:7', 'otel:3', 'logging:2', 'metrics:9', 'auth:4'), {
            maxLength: 4,
          })
          .map((names) => [
            ...names.map((n) => ({ Arn: `arn:aws:lambda:eu-west-1:123456789012:layer:${n}` })),
            { Arn: oldDefender },
          ]),
      ),
    },
    { requiredKeys: ['FunctionName'] },
  );
  const createArb = fc.record({
    after: fc.constant('lambda:ListFunctions'),
    run: fc.constantFrom(1, 2),
    do: fc.constant('create'),
    function: hostileFunctionArb,
  });
  const caseArb = fc.record({
    seed: fc.integer({ min: 1, max: 1_000_000 }),
    count: fc.integer({ min: 3, max: 6 }),
    faults: fc.array(faultArb, { maxLength: 3 }),
    events: fc.array(fc.oneof(eventArb, createArb), { maxLength: 3 }),
  });

  it('every invariant holds on small generated estates under generated faults', async () => {
    try {
      await fc.assert(
        fc.asyncProperty(caseArb, async ({ seed, count, faults, events }) => {
          const estate = generateEstate({
            count,
            seed,
            protection: { layerArn: DEFENDER, variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY } },
            ssmParameters: { '/zero-impact/tw-policy': POLICY },
            canaryValue: CANARY,
          });
          const scenario = parseScenario({ seed, faults, events }, 'generated');
          const result = await runScenario(scenario, estate);
          figures.propertyCases += 1;
          tally(result);
          expect(result.invariants.violations).toEqual([]);
        }),
        {
          numRuns: Number(process.env['ZI_PROPERTY_CASES'] ?? PROPERTY_CASES),
          endOnFailure: true,
          seed: Number(process.env['ZI_PROPERTY_SEED'] ?? 20261201),
        },
      );
    } finally {
      propertyDone = true;
    }
  }, 240_000);
});
