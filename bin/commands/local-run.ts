/**
 * `zero-impact local-run [--estate FILE] [--config FILE] [--mode dry-run|protect] [--runs N] [--out DIR] [--json]
 * [--scenario FILE] [--check-invariants] [--keep DIR] [--quiet]`: the hourly job, end to end, on a simulated account
 * (local/local-runner.ts), on a virtual clock (consecutive runs one schedule interval apart). Prints progress on
 * stderr while it runs, then a summary per run on stdout (or, with --json, summary.json). `--scenario` applies a
 * scenario file's faults and events (local/scenario.ts); `--out` then also has faults.jsonl and invariants.json.
 * Exit 0 when every run succeeded (or, with a scenario, ended as the scenario made it end: failed or killed), 1 when
 * a run failed unexpectedly or, with --check-invariants, an invariant was violated, 2 for bad input (one line, every
 * flag and file checked before anything starts). The local servers are stopped and the SDK restored on every path,
 * Ctrl-C included.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../lib/config';
import { EstateError, loadEstateFile, type Estate } from '../../local/estate';
import {
  LocalRunError,
  localRun,
  type LocalSession,
  missingParameters,
  stopAllSessions,
  type LocalRunReport,
} from '../../local/local-runner';
import {
  hasKeptSession,
  keepSession,
  KeptSessionError,
  readKeptSession,
  restoreKeptSession,
  type KeptSession,
} from '../../local/kept-session';
import type { RunSummary } from '../../local/run-summary';
import { versionsJson } from '../reports/versions';
import { loadScenarioFile, ScenarioError, type Scenario } from '../../local/scenario';
import type { Command } from 'commander';
import { progressStream, RunProgress, type ProgressStream } from './local-run-progress';
import {
  checkOutputDir,
  formatOf,
  formatOptions,
  loadConfig,
  newCommand,
  PROJECT_ROOT,
  runCommand,
  UsageError,
} from './common';

export const DEFAULT_ESTATE = join(PROJECT_ROOT, 'local', 'example-estate.json');

/** The options of `local-run` (the flags, parsed). */
export interface LocalRunOptions {
  estate?: string;
  config?: string;
  mode?: string;
  runs?: string;
  out?: string;
  format?: string;
  human?: boolean;
  json?: boolean;
  scenario?: string;
  checkInvariants?: boolean;
  keep?: string;
  quiet?: boolean;
}

export function command(): Command {
  const cmd = newCommand<LocalRunOptions>(
    {
      name: 'local-run',
      summary: 'the hourly job, end to end, on a simulated account (nothing leaves this machine)',
      details: [
        'Progress goes to stderr; the summary of each run to stdout (--format json: summary.json).',
        'Exit codes: 0 every run succeeded (with --scenario: ended as the scenario made it end), 1 a run failed or,',
        'with --check-invariants, an invariant was violated, 2 bad input (checked before anything starts).',
      ].join('\n'),
      examples: [
        'zero-impact local-run',
        'zero-impact local-run --mode protect --runs 2 --config local/example-config.json --out /tmp/zi',
        'zero-impact local-run --scenario test/scenarios/throttling-30.json --check-invariants',
        'zero-impact local-run --mode protect --keep /tmp/zi-account   # then: zero-impact rollback --local /tmp/zi-account ...',
      ],
    },
    localRunCommand,
  )
    .option('--estate <file>', "the simulated functions (default: the project's local/example-estate.json)")
    .option(
      '--config <file>',
      'configuration file, merged over the zeroImpact context of cdk.json (see `zero-impact config show`)',
    )
    .option('--mode <mode>', "dry-run or protect (default: the configuration's mode)")
    .option('--runs <n>', 'consecutive runs, one schedule interval apart (1 to 100)', '1')
    .option('--out <dir>', 'write audit.jsonl, sns.jsonl, functions.json, summary.json and logs.txt here')
    .option('--scenario <file>', 'apply a scenario file (faults and events)')
    .option('--check-invariants', 'exit 1 when an invariant of the run is violated')
    .option(
      '--keep <dir>',
      'keep the simulated account and the tables in DIR (resumed when DIR has them) for rollback/include --local DIR',
    )
    .option(
      '--quiet',
      'no progress on stderr (a bar on a terminal, plain lines otherwise); the summary still goes to stdout',
    );
  return formatOptions(cmd, 'table');
}

/** summary.json: `{"runs":[{"runId","outcomes":{...},"apiCalls":{...}}]}`. */
export function summaryJson(runs: readonly RunSummary[]): {
  runs: Array<Pick<RunSummary, 'runId' | 'outcomes' | 'apiCalls' | 'policyValues'>>;
} {
  return {
    runs: runs.map(({ runId, outcomes, apiCalls, policyValues }) => ({
      runId,
      outcomes,
      apiCalls,
      // Only with defender.policySource (issue 10): TW_POLICY values fetched from the Console, cached, failed.
      ...(policyValues !== undefined ? { policyValues } : {}),
    })),
  };
}

export { versionsJson, type VersionsEntry } from '../reports/versions';

/**
 * Writes audit.jsonl, sns.jsonl, functions.json, summary.json (and logs.txt, the handlers' log lines) to `dir`;
 * with `scenario`, also faults.jsonl and invariants.json.
 */
export function writeOutputs(
  dir: string,
  report: LocalRunReport,
  options: { scenario?: boolean; estate?: Pick<Estate, 'functions'> } = {},
): string[] {
  mkdirSync(dir, { recursive: true });
  const lines = (values: readonly unknown[]): string => values.map((v) => `${JSON.stringify(v)}\n`).join('');
  const files: Array<[string, string]> = [
    ['audit.jsonl', lines(report.auditItems)],
    [
      'sns.jsonl',
      lines(
        report.messages.map(({ runId, subject, message, attributes }) => ({ runId, subject, message, attributes })),
      ),
    ],
    ['functions.json', `${JSON.stringify(report.functions, null, 2)}\n`],
    ['summary.json', `${JSON.stringify(summaryJson(report.runs), null, 2)}\n`],
    ['logs.txt', report.logs.map((l) => `${l}\n`).join('')],
  ];
  if (options.estate !== undefined)
    files.push(['versions.json', `${JSON.stringify(versionsJson(options.estate), null, 2)}\n`]);
  if (options.scenario === true) {
    files.push(['faults.jsonl', lines(report.faults)]);
    files.push(['invariants.json', `${JSON.stringify(report.invariants, null, 2)}\n`]);
  }
  for (const [name, content] of files) writeFileSync(join(dir, name), content);
  return files.map(([name]) => name);
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

/** The human summary of one run. */
export function formatRun(run: RunSummary, index: number, total: number, mode: Config['mode']): string {
  const out: string[] = [];
  const seconds = (run.durationMs / 1000).toFixed(1);
  out.push(`Run ${index + 1} of ${total}: ${run.runId} (${mode}) ${run.status} in ${seconds} s`);
  if (run.error !== undefined) out.push(`  error: ${run.error}`);
  const outcomes = Object.entries(run.outcomes).map(([outcome, count]) => `${outcome} ${count}`);
  const decided = Object.values(run.outcomes).reduce((a, b) => a + b, 0);
  out.push(`  ${plural(decided, 'decision')}: ${outcomes.join(', ') || 'none'}`);
  if (run.skips.length > 0) {
    out.push('  Skipped, by reason:');
    for (const skip of run.skips) {
      out.push(`    ${skip.reason} (${skip.functions.length}): ${skip.message}`);
      if (skip.remediation.length > 0) out.push(`      fix: ${skip.remediation}`);
      out.push(`      ${skip.functions.join(', ')}`);
    }
  }
  for (const warning of run.warnings)
    out.push(`  Warning ${warning.warning} (${warning.functions.length}): ${warning.functions.join(', ')}`);
  out.push(
    run.changed.length > 0
      ? `  Changed: ${run.changed.map((c) => (c.outcome === 'PROTECTED' ? c.functionName : `${c.functionName} (${c.outcome})`)).join(', ')}`
      : '  Changed: nothing',
  );
  if (run.policyValues !== undefined) {
    const { fetched, cached, failed } = run.policyValues;
    out.push(
      `  TW_POLICY values (Prisma Cloud Console): ${fetched} fetched, ${cached} cached, ${failed} failed${failed > 0 ? ' (DEFENDER_POLICY_UNAVAILABLE)' : ''}`,
    );
  }
  out.push(
    `  API calls: ${Object.entries(run.apiCalls)
      .map(([op, n]) => `${op} ${n}`)
      .join(', ')}`,
  );
  return out.join('\n');
}

/** One line: the invariants that hold, or every violation (names and evidence; evidence never quotes a value). */
export function formatInvariants(report: Pick<LocalRunReport, 'invariants'>): string {
  const { checked, violations } = report.invariants;
  if (violations.length === 0) return `invariants ${checked.join(', ')} hold`;
  const list = violations.map(
    (v) => `${v.invariant}${v.function !== undefined ? ` ${v.function}` : ''}: ${v.evidence}`,
  );
  return `${plural(violations.length, 'invariant violation')}: ${list.join('; ')}`;
}

/**
 * 1 when --check-invariants found a violation; else, without a scenario, 1 when a run failed. With a scenario a run
 * may fail or be killed on purpose: the invariants, not the run's status, say whether the rehearsal held.
 */
export function exitCode(
  report: Pick<LocalRunReport, 'runs' | 'invariants'>,
  options: { scenario: boolean; checkInvariants: boolean },
): number {
  if (options.checkInvariants && report.invariants.violations.length > 0) return 1;
  if (options.scenario) return 0;
  return report.runs.every((r) => r.status === 'SUCCEEDED') ? 0 : 1;
}

export async function run(argv: string[]): Promise<number> {
  return runCommand('local-run', command(), argv);
}

/**
 * Runs the hourly job on the simulated account; the exit code as the module comment says. `io.stderr`: where the
 * progress goes (a test's fake terminal) @default the terminal, else console.error
 */
export async function localRunCommand(flags: LocalRunOptions, io: { stderr?: ProgressStream } = {}): Promise<number> {
  const format = formatOf('local-run', flags, 'table');
  const mode = flags.mode;
  if (mode !== undefined && mode !== 'dry-run' && mode !== 'protect') {
    throw new UsageError(`local-run: --mode: expected "dry-run" or "protect", got "${mode}"`);
  }
  const runs = flags.runs === undefined ? 1 : Number(flags.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100) {
    throw new UsageError(`local-run: --runs: expected a whole number from 1 to 100, got "${flags.runs}"`);
  }
  if (flags.out !== undefined) checkOutputDir('local-run', '--out', flags.out);
  if (flags.keep !== undefined) checkOutputDir('local-run', '--keep', flags.keep);
  let scenario: Scenario | undefined;
  if (flags.scenario !== undefined) {
    try {
      scenario = loadScenarioFile(flags.scenario);
    } catch (error) {
      if (error instanceof ScenarioError) throw new UsageError(`local-run: --scenario: ${error.message}`);
      throw error;
    }
  }
  let kept: KeptSession | undefined;
  if (flags.keep !== undefined && hasKeptSession(flags.keep)) {
    if (flags.estate !== undefined) {
      throw new UsageError(
        `local-run: --estate: ${flags.keep} already holds a kept account; drop --estate to resume it`,
      );
    }
    try {
      kept = readKeptSession(flags.keep);
    } catch (error) {
      if (error instanceof KeptSessionError) throw new UsageError(`local-run: --keep: ${error.message}`);
      throw error;
    }
  }
  let estate: Estate;
  try {
    estate = kept !== undefined ? kept.estate : loadEstateFile(flags.estate ?? DEFAULT_ESTATE);
  } catch (error) {
    if (error instanceof EstateError) throw new UsageError(`local-run: ${error.message}`);
    throw error;
  }
  // A resumed account keeps its configuration unless --config gives another; --mode applies either way.
  const config =
    kept !== undefined && flags.config === undefined
      ? mode === undefined || mode === kept.config.mode
        ? kept.config
        : { ...kept.config, mode: mode as Config['mode'] }
      : loadConfig(flags.config, mode === undefined ? {} : { mode });
  const keepDir = flags.keep ?? '';
  const missing = missingParameters(config, estate);
  if (missing.length > 0) {
    throw new UsageError(
      `local-run: the configuration reads SSM parameter ${missing.join(', ')}: give its value in the estate file ({ "functions": [...], "ssmParameters": { "${missing[0]}": "..." } }) or use a literal in --config`,
    );
  }
  const onSigint = (): void => {
    // Work still in flight fails once the local DynamoDB server closes under it; we are exiting anyway, so those
    // late errors must not turn the interruption into a crash (exit 1 with a stack trace).
    process.on('uncaughtException', () => undefined);
    process.on('unhandledRejection', () => undefined);
    // Stop first: that also gives the terminal back its stdout/stderr (and its cursor, hidden by the bar).
    progress.stop();
    void stopAllSessions().finally(() => {
      console.error('\nzero-impact local-run: interrupted; the local servers are stopped');
      process.exit(130);
    });
  };
  const quiet = flags.quiet === true;
  const progress = new RunProgress(io.stderr ?? progressStream(), estate.functions.length, { quiet });
  const say = (line: string): void => {
    if (!quiet) console.error(line);
  };
  process.once('SIGINT', onSigint);
  let report: LocalRunReport;
  try {
    say(
      `zero-impact local-run: ${plural(estate.functions.length, 'function')} in ${estate.account}/${estate.region}, mode ${config.mode}, ${plural(runs, 'run')}`,
    );
    report = await localRun({
      estate,
      config,
      runs,
      virtualTime: true,
      ...(scenario !== undefined ? { scenario } : {}),
      progress: (line) => progress.line(line),
      onProgress: (event) => progress.event(event),
      onInvoke: (event) => progress.invoke(event),
      // The kept template only for the kept configuration (a protect stack has a function a dry-run one lacks).
      ...(kept?.template !== undefined && config === kept.config ? { template: kept.template } : {}),
      ...(kept !== undefined ? { afterStart: (session: LocalSession) => restoreKeptSession(session, kept) } : {}),
      ...(flags.keep !== undefined
        ? { beforeStop: (session: LocalSession) => keepSession(keepDir, session, estate, config) }
        : {}),
    });
  } catch (error) {
    if (error instanceof LocalRunError) throw new UsageError(`local-run: ${error.message}`);
    throw error;
  } finally {
    progress.stop();
    process.removeListener('SIGINT', onSigint);
  }
  if (flags.keep !== undefined) {
    say(
      `zero-impact local-run: kept the account and tables in ${flags.keep} (zero-impact rollback --local ${flags.keep} --function NAME)`,
    );
  }
  if (flags.out !== undefined) {
    const written = writeOutputs(flags.out, report, { scenario: scenario !== undefined, estate });
    say(`zero-impact local-run: wrote ${written.join(', ')} to ${flags.out}`);
  }
  if (format === 'json') {
    console.log(JSON.stringify(summaryJson(report.runs), null, 2));
  } else {
    console.log(report.runs.map((r, i) => formatRun(r, i, report.runs.length, config.mode)).join('\n\n'));
  }
  const checkInvariants = flags.checkInvariants === true;
  if (checkInvariants) console.error(`zero-impact local-run: ${formatInvariants(report)}`);
  return exitCode(report, { scenario: scenario !== undefined, checkInvariants });
}
