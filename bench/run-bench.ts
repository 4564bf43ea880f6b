/**
 * `npm run bench`: this project and the naive baseline, side by side, on generated estates in the simulated account,
 * on a virtual clock (local/virtual-clock.ts), so the figures are deterministic and a long run takes little real time.
 *
 * For each size (generated estate, fixed seed, local/estate.ts `generateEstate`):
 * - `first`: protect mode, the first run on the fresh estate with the bench configuration's cap (25 a run);
 * - `steady`: protect mode, a run after the rollout finished (a second session whose first run protects everything
 *   eligible without a cap, then `afterRollout`, the run that records the new ALREADY_PROTECTED decisions in full,
 *   then the measured run in which nothing changed: the hourly steady state);
 * - `dryRunFirst`, `dryRunSteady`: dry-run mode, the first and the second run;
 * - `naiveFirst`, `naive`: the naive baseline (bench/naive.ts), its first run and its steady state (second run).
 *
 * The simulated account runs as AWS does for the benchmark: control plane 15 requests/s shared by every Lambda call
 * but invocation, GetFunction and GetPolicy; GetFunction 100/s; GetMetricData 50/s (500 metrics a call); and a
 * latency per operation (`LATENCY_MS`, typical figures, an assumption: AWS publishes none). DynamoDB (a local
 * server) takes no virtual time.
 */
import { performance } from 'node:perf_hooks';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig, type Config } from '../lib/config';
import { assess } from '../lambdas/shared/domain/funnel';
import { systemClock } from '../lambdas/shared/adapters/rate-limiter';
import { generateEstate, type Estate } from '../local/estate';
import { LocalSession } from '../local/local-runner';
import { SimulatedAccount } from '../local/simulated-account';
import { VirtualClock } from '../local/virtual-clock';
import { installSdkVirtualTime, uninstallSdkVirtualTime } from '../local/sdk-virtual-time';
import type { CfnTemplate } from '../local/asl-local';
import { costOf, DynamoMeter, type CostBreakdown, type PriceTable, type RunUsage, type TableWrites } from './meter';
import { runNaive } from './naive';

export const BENCH_DIR = __dirname;
export const DEFAULT_SIZES = [1000];
export const DEFAULT_SEED = 20261201;
const POLICY = 'twp-bench-policy-5f1c';
const WRAPPER = '/opt/twistlock/twistlock_wrapper';

/** Typical latency per operation in ms (an assumption; AWS publishes no latency figures). */
export const LATENCY_MS: Record<string, number> = {
  'lambda:ListFunctions': 150,
  'lambda:GetFunction': 50,
  'lambda:GetFunctionConfiguration': 40,
  'lambda:UpdateFunctionConfiguration': 200,
  'lambda:ListProvisionedConcurrencyConfigs': 50,
  'lambda:ListTags': 40,
  'lambda:ListAliases': 50,
  'lambda:GetFunctionConcurrency': 40,
  'lambda:GetFunctionCodeSigningConfig': 40,
  'lambda:GetLayerVersion': 60,
  'lambda:GetLayerVersionByArn': 60,
  'cloudwatch:GetMetricData': 300,
  'cloudwatch:GetMetricStatistics': 80,
  'ec2:DescribeRouteTables': 150,
  'tag:GetResources': 200,
  'sns:Publish': 30,
  's3:PutObject': 40,
  's3:GetObject': 30,
  'ssm:GetParameter': 30,
};
const DEFAULT_LATENCY_MS = 40;

/** AWS's per-operation limits the simulated account enforces in the benchmark (sources in simulated-account.ts). */
const GET_METRIC_DATA_PER_SECOND = 50;
export const OPERATION_RATE_LIMITS: Record<string, number> = {
  'lambda:GetFunction': 100,
  'cloudwatch:GetMetricData': GET_METRIC_DATA_PER_SECOND,
};

export interface RunFigures {
  functions: number;
  status: string;
  outcomes: Record<string, number>;
  apiCalls: Record<string, number>;
  throttledCalls: Record<string, number>;
  controlPlaneCalls: number;
  controlPlaneCallsPerFunction: number;
  peakControlPlaneRps: number;
  meanControlPlaneRps: number;
  durationSeconds: number;
  floorSeconds: number;
  durationToFloor: number;
  standardTransitions: number;
  expressRequests: number;
  expressGbSeconds: number;
  lambdaInvocations: number;
  lambdaGbSeconds: number;
  invocationsByHandler: Record<string, { count: number; seconds: number; memoryMb: number }>;
  dynamoWriteUnits: Record<'audit' | 'state', { table: number; indexes: Record<string, number> }>;
  auditBytesPerFunctionPerMonth: number;
  snsPublishes: number;
  metricsRequested: number;
  logBytes: number;
  dollarsPerThousandFunctionsPerMonth: number;
  costPerThousandPerMonth: Record<string, number>;
  realSeconds: number;
}

export interface SizeResult {
  functions: number;
  eligible: number;
  hoursUntilAllProtected: number;
  runs: Record<string, RunFigures>;
}

export interface BenchResults {
  generatedBy: string;
  seed: number;
  prices: { source: string; retrieved: string };
  funnelThroughputPerSecond: number;
  sizes: SizeResult[];
}

export interface BenchOptions {
  sizes: number[];
  seed?: number;
  prices: PriceTable;
  progress?: (line: string) => void;
}

export function loadPrices(path = join(BENCH_DIR, 'prices.json')): PriceTable {
  return JSON.parse(readFileSync(path, 'utf8')) as PriceTable;
}

export function benchConfig(mode: 'protect' | 'dry-run', overrides: Record<string, unknown> = {}): Config {
  return parseConfig(
    {
      mode,
      defender: {
        layerArn: 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32',
        environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zero-impact/tw-policy' } },
      },
      exclusions: { functions: ['break-glass-*'], tagKey: 'zero-impact:exclude' },
      maxProtectionsPerRun: 25,
      notifications: { skips: 'changed' },
      ...overrides,
    },
    'bench configuration',
  );
}

export function benchEstate(count: number, seed: number, config: Config): Estate {
  return generateEstate({
    count,
    seed,
    protection: {
      layerArn: config.defender.layerArn,
      variables: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY },
    },
    ssmParameters: { '/zero-impact/tw-policy': POLICY },
  });
}

function simulation(): Record<string, unknown> {
  return {
    controlPlaneScope: 'quota' as const,
    operationRateLimits: OPERATION_RATE_LIMITS,
    latency: {
      sleep: (ms: number) => systemClock.sleep(ms),
      ms: (operation: string) => LATENCY_MS[operation] ?? DEFAULT_LATENCY_MS,
    },
  };
}

function sum(values: Iterable<number>): number {
  let total = 0;
  for (const v of values) total += v;
  return total;
}

function isControlPlane(account: SimulatedAccount, calls: Record<string, number>): number {
  return sum(
    Object.entries(calls)
      .filter(([op]) => account.isControlPlane(op))
      .map(([, n]) => n),
  );
}

function floorSeconds(
  calls: Record<string, number>,
  controlPlane: number,
  perSecond: number,
  getFunctionPerSecond: number,
): number {
  return Math.max(
    controlPlane / perSecond,
    (calls['lambda:GetFunction'] ?? 0) / getFunctionPerSecond,
    (calls['cloudwatch:GetMetricData'] ?? 0) / GET_METRIC_DATA_PER_SECOND,
  );
}

function figures(input: {
  functions: number;
  status: string;
  outcomes: Record<string, number>;
  apiCalls: Record<string, number>;
  account: SimulatedAccount;
  durationMs: number;
  floor: number;
  usage: RunUsage;
  cost: CostBreakdown;
  invocations: Record<string, { count: number; seconds: number; memoryMb: number }>;
  realMs: number;
}): RunFigures {
  const { functions, apiCalls, account, usage } = input;
  const controlPlane = isControlPlane(account, apiCalls);
  const seconds = input.durationMs / 1000;
  const units = (w: TableWrites) => ({ table: w.table, indexes: { ...w.indexes } });
  return {
    functions,
    status: input.status,
    outcomes: input.outcomes,
    apiCalls,
    throttledCalls: account.throttledCalls(),
    controlPlaneCalls: controlPlane,
    controlPlaneCallsPerFunction: controlPlane / Math.max(1, functions),
    peakControlPlaneRps: account.peakControlPlaneRate(),
    meanControlPlaneRps: seconds > 0 ? controlPlane / seconds : 0,
    durationSeconds: seconds,
    floorSeconds: input.floor,
    durationToFloor: input.floor > 0 ? seconds / input.floor : 0,
    standardTransitions: usage.sfn.standardTransitions,
    expressRequests: usage.sfn.expressRequests,
    expressGbSeconds: usage.sfn.expressGbSeconds,
    lambdaInvocations: usage.lambda.invocations,
    lambdaGbSeconds: usage.lambda.gbSeconds,
    invocationsByHandler: input.invocations,
    dynamoWriteUnits: { audit: units(usage.dynamo.audit), state: units(usage.dynamo.state) },
    auditBytesPerFunctionPerMonth: (usage.dynamo.audit.bytesPut * 730) / Math.max(1, functions),
    snsPublishes: apiCalls['sns:Publish'] ?? 0,
    metricsRequested: usage.metricsRequested,
    logBytes: usage.logBytes,
    dollarsPerThousandFunctionsPerMonth: input.cost.dollarsPerThousandFunctionsPerMonth,
    costPerThousandPerMonth: input.cost.perThousandPerMonth,
    realSeconds: input.realMs / 1000,
  };
}

/** One session of the engine (one mode and cap); `measure` runs it once and returns that run's figures. */
class EngineBench {
  private standardTransitions = 0;
  private batches = 0;
  private logLines = 0;
  private meter: DynamoMeter | undefined;
  private constructor(
    readonly session: LocalSession,
    private readonly config: Config,
    private readonly prices: PriceTable,
  ) {}

  static async start(estate: Estate, config: Config, template: CfnTemplate | undefined, prices: PriceTable) {
    const ref: { bench?: EngineBench } = {};
    const session = await LocalSession.start({
      estate,
      config,
      ...(template !== undefined ? { template } : {}),
      simulation: simulation(),
      logLevel: 'WARN',
      onState: (event) => {
        if (event.type === 'StateEntered' && ref.bench !== undefined) ref.bench.standardTransitions += 1;
      },
      onBatch: () => {
        if (ref.bench !== undefined) ref.bench.batches += 1;
      },
    });
    const bench = new EngineBench(session, config, prices);
    ref.bench = bench;
    const audit = session.environment['AUDIT_TABLE_NAME'];
    const state = session.environment['STATE_TABLE_NAME'];
    bench.meter = new DynamoMeter(
      (table) => (table === audit ? 'audit' : table === state ? 'state' : undefined),
      () => session.clock.now(),
    ).install();
    return bench;
  }

  async measure(functions: number): Promise<RunFigures> {
    const { session, config } = this;
    session.account.resetCounters();
    this.meter?.take();
    this.standardTransitions = 0;
    this.batches = 0;
    const invocationsBefore = new Map([...session.invocations].map(([k, v]) => [k, { ...v }]));
    this.logLines = session.logs().length;
    const real = performance.now();
    const run = await session.run();
    const realMs = performance.now() - real;
    const logBytes = sum(
      session
        .logs()
        .slice(this.logLines)
        .map((l) => Buffer.byteLength(l, 'utf8') + 1),
    );
    const invocations: Record<string, { count: number; seconds: number; memoryMb: number }> = {};
    for (const [name, stats] of session.invocations) {
      const before = invocationsBefore.get(name) ?? { count: 0, ms: 0 };
      if (stats.count === before.count) continue;
      invocations[name] = {
        count: stats.count - before.count,
        seconds: (stats.ms - before.ms) / 1000,
        memoryMb: stats.memoryMb,
      };
    }
    const gbSeconds = sum(Object.values(invocations).map((i) => (i.seconds * i.memoryMb) / 1024));
    const assess = invocations['assess-batch'] ?? { count: 0, seconds: 0, memoryMb: 0 };
    // Children: EXPRESS in both modes, assess only (billed by request and duration, 64 MB, 100 ms increments, ~half
    // a step of rounding per child). Protection runs in the parent: its inline Map's states are among the parent's
    // transitions `onState` counts.
    const expressRequests = this.batches;
    const expressGbSeconds = ((assess.seconds + 0.05 * this.batches) * 64) / 1024;
    const dynamo = this.meter?.take() ?? { audit: undefined, state: undefined };
    const usage: RunUsage = {
      functions,
      apiCalls: run.apiCalls,
      lambda: { invocations: sum(Object.values(invocations).map((i) => i.count)), gbSeconds },
      sfn: { standardTransitions: this.standardTransitions, expressRequests, expressGbSeconds },
      dynamo: dynamo as Record<'audit' | 'state', TableWrites>,
      metricsRequested: session.account.metricsRequestedCount(),
      logBytes,
    };
    const cost = costOf(usage, this.prices);
    const controlPlane = isControlPlane(session.account, run.apiCalls);
    const getFunctionShare = (100 * config.rates.controlPlanePerSecond) / 15;
    return figures({
      functions,
      status: run.status,
      outcomes: run.outcomes,
      apiCalls: run.apiCalls,
      account: session.account,
      durationMs: run.durationMs,
      floor: floorSeconds(run.apiCalls, controlPlane, config.rates.controlPlanePerSecond, getFunctionShare),
      usage,
      cost,
      invocations,
      realMs,
    });
  }

  async stop(): Promise<void> {
    this.meter?.uninstall();
    await this.session.stop();
  }
}

async function naiveRuns(estate: Estate, config: Config, prices: PriceTable): Promise<RunFigures[]> {
  const clock = new VirtualClock().install();
  installSdkVirtualTime(clock);
  const account = new SimulatedAccount({ estate, clock, ...simulation() }).install();
  const results: RunFigures[] = [];
  try {
    for (let run = 0; run < 2; run += 1) {
      if (run > 0) clock.advance(3600_000);
      account.resetCounters();
      const real = performance.now();
      const outcome = await runNaive({ config, region: estate.region, clock });
      const realMs = performance.now() - real;
      const apiCalls = account.calls();
      const functions = estate.functions.length;
      // The script runs as one 128 MB Lambda for as long as it takes (over 15 minutes it would need a container).
      const usage: RunUsage = {
        functions,
        apiCalls,
        lambda: { invocations: 1, gbSeconds: (outcome.durationMs / 1000) * (128 / 1024) },
        sfn: { standardTransitions: 0, expressRequests: 0, expressGbSeconds: 0 },
        dynamo: {
          audit: { table: 0, indexes: {}, items: 0, bytesPut: 0, storageGbMonths: 0, reads: 0 },
          state: { table: 0, indexes: {}, items: 0, bytesPut: 0, storageGbMonths: 0, reads: 0 },
        },
        metricsRequested: account.metricsRequestedCount(),
        logBytes: 0,
      };
      const controlPlane = isControlPlane(account, apiCalls);
      results.push(
        figures({
          functions,
          status: outcome.failedCalls > 0 ? `SUCCEEDED (${outcome.failedCalls} calls failed)` : 'SUCCEEDED',
          outcomes: { PROTECTED: outcome.updated, SKIPPED: outcome.skipped, EXAMINED: outcome.examined },
          apiCalls,
          account,
          durationMs: outcome.durationMs,
          floor: floorSeconds(apiCalls, controlPlane, 15, 100),
          usage,
          cost: costOf(usage, prices),
          invocations: { naive: { count: 1, seconds: outcome.durationMs / 1000, memoryMb: 128 } },
          realMs,
        }),
      );
    }
  } finally {
    account.uninstall();
    uninstallSdkVirtualTime();
    clock.uninstall();
  }
  return results;
}

/**
 * Functions assessed per second by the pure funnel on one core of this machine (the generated estate's facts, made
 * before any clock starts). Warmed up first, for a second of CPU: V8 optimises the funnel only after some thousands
 * of calls, and the first second runs 5 to 25 times slower than the rest. Then timed in this process's CPU time
 * (wall time on a shared machine counts other processes' turns too; CPU time also counts V8's GC and compiler
 * threads, so it never flatters), over 5 rounds of at least 200 ms each: the median round is the figure.
 */
export function funnelThroughput(config: Config, seed: number): number {
  const facts = benchEstate(2000, seed, config).functions;
  const pass = (): void => {
    for (const f of facts) assess(f, { config });
  };
  const cpuSeconds = (): number => {
    const { user, system } = process.cpuUsage();
    return (user + system) / 1e6;
  };
  const warmed = cpuSeconds() + 1;
  while (cpuSeconds() < warmed) pass();
  const rounds: number[] = [];
  for (let round = 0; round < 5; round += 1) {
    const started = cpuSeconds();
    let done = 0;
    while (cpuSeconds() - started < 0.2) {
      pass();
      done += facts.length;
    }
    rounds.push(done / (cpuSeconds() - started));
  }
  return rounds.sort((a, b) => a - b)[2] ?? 0;
}

export async function runBench(options: BenchOptions): Promise<BenchResults> {
  const seed = options.seed ?? DEFAULT_SEED;
  const progress = options.progress ?? (() => undefined);
  const { synthesizeTemplate } = await import('../local/stack-template');
  const protect = benchConfig('protect');
  const uncapped = benchConfig('protect', { maxProtectionsPerRun: 200 });
  const dryRun = benchConfig('dry-run');
  progress('Synthesizing the stack (protect and dry-run) ...');
  const templates = { protect: synthesizeTemplate(protect), dryRun: synthesizeTemplate(dryRun) };
  const sizes: SizeResult[] = [];
  for (const count of options.sizes) {
    const runs: Record<string, RunFigures> = {};
    const estate = (): Estate => benchEstate(count, seed, protect);
    progress(`${count} functions: protect, first run`);
    const first = await EngineBench.start(estate(), protect, templates.protect, options.prices);
    try {
      runs['first'] = await first.measure(count);
    } finally {
      await first.stop();
    }
    progress(`${count} functions: protect, rollout without a cap, then the steady state`);
    const steady = await EngineBench.start(estate(), uncapped, templates.protect, options.prices);
    try {
      // Catch up: as many runs at the largest cap (200 a run, MAX_PROTECTIONS_PER_RUN) as it takes to protect every eligible one.
      for (let i = 0; i < 60; i += 1) {
        const rollout = await steady.measure(count);
        if (i === 0) runs['rollout'] = rollout;
        if ((rollout.outcomes['DEFERRED'] ?? 0) === 0) break;
      }
      // The first run after the rollout records every new ALREADY_PROTECTED decision in full (issue 11: only an
      // unchanged repeat is compact); the one after it is the hourly steady state.
      runs['afterRollout'] = await steady.measure(count);
      runs['steady'] = await steady.measure(count);
    } finally {
      await steady.stop();
    }
    progress(`${count} functions: dry-run, first run and steady state`);
    const dry = await EngineBench.start(estate(), dryRun, templates.dryRun, options.prices);
    try {
      runs['dryRunFirst'] = await dry.measure(count);
      runs['dryRunSteady'] = await dry.measure(count);
    } finally {
      await dry.stop();
    }
    progress(`${count} functions: naive baseline, first run and steady state`);
    const [naiveFirst, naive] = await naiveRuns(estate(), protect, options.prices);
    runs['naiveFirst'] = naiveFirst as RunFigures;
    runs['naive'] = naive as RunFigures;
    const firstOutcomes = runs['first']?.outcomes ?? {};
    const eligible = (firstOutcomes['PROTECTED'] ?? 0) + (firstOutcomes['DEFERRED'] ?? 0);
    sizes.push({
      functions: count,
      eligible,
      hoursUntilAllProtected: Math.ceil(eligible / protect.maxProtectionsPerRun),
      runs,
    });
  }
  progress('Funnel throughput ...');
  return {
    generatedBy: `npm run bench -- --sizes ${options.sizes.join(',')}`,
    seed,
    prices: { source: 'bench/prices.json', retrieved: options.prices.retrieved },
    funnelThroughputPerSecond: funnelThroughput(protect, seed),
    sizes,
  };
}

const ROWS: Array<[string, (r: RunFigures) => string]> = [
  ['control-plane calls / function', (r) => r.controlPlaneCallsPerFunction.toFixed(3)],
  ['peak control-plane rps', (r) => String(r.peakControlPlaneRps)],
  ['mean control-plane rps', (r) => r.meanControlPlaneRps.toFixed(2)],
  ['duration s (virtual)', (r) => r.durationSeconds.toFixed(0)],
  ['rate-limit floor s', (r) => r.floorSeconds.toFixed(0)],
  ['duration / floor', (r) => r.durationToFloor.toFixed(2)],
  ['Lambda invocations', (r) => String(r.lambdaInvocations)],
  ['Lambda GB-s', (r) => r.lambdaGbSeconds.toFixed(1)],
  ['SFN Standard transitions', (r) => String(r.standardTransitions)],
  ['SFN Express requests / GB-s', (r) => `${r.expressRequests} / ${r.expressGbSeconds.toFixed(2)}`],
  [
    'DynamoDB WRU (audit+GSIs / state)',
    (r) =>
      `${r.dynamoWriteUnits.audit.table + sum(Object.values(r.dynamoWriteUnits.audit.indexes))} / ${r.dynamoWriteUnits.state.table}`,
  ],
  ['audit bytes / function / month', (r) => r.auditBytesPerFunctionPerMonth.toFixed(0)],
  ['SNS publishes', (r) => String(r.snsPublishes)],
  ['CloudWatch metrics requested', (r) => String(r.metricsRequested)],
  ['$ / 1,000 fn / month (hourly)', (r) => r.dollarsPerThousandFunctionsPerMonth.toFixed(2)],
];

export const TABLE_RUNS = ['first', 'steady', 'dryRunSteady', 'naive'];

/** The side-by-side table (Markdown). */
export function renderTable(results: BenchResults): string {
  const lines: string[] = [];
  for (const size of results.sizes) {
    const runs = TABLE_RUNS.filter((name) => size.runs[name] !== undefined);
    lines.push(`**${size.functions.toLocaleString('en-US')} functions**`, '');
    lines.push(`| figure | ${runs.join(' | ')} |`, `|---|${runs.map(() => '---:').join('|')}|`);
    for (const [label, value] of ROWS) {
      lines.push(`| ${label} | ${runs.map((name) => value(size.runs[name] as RunFigures)).join(' | ')} |`);
    }
    lines.push(
      '',
      `Eligible functions: ${size.eligible}; hours until all are protected (cap 25 a run, hourly): ${size.hoursUntilAllProtected}.`,
      '',
    );
  }
  lines.push(
    `Funnel throughput: ${Math.round(results.funnelThroughputPerSecond).toLocaleString('en-US')} functions/s on this machine.`,
  );
  return lines.join('\n');
}
