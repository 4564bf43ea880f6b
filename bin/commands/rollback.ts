/**
 * `zero-impact rollback --function NAME | --run RUN_ID [--region R] [--yes] [--audit-table T] [--state-table T]
 *  [--mac-key KEY] [--config FILE]`: removes exactly what protection added, and nothing that changed since.
 *
 * For each function it reads the audit table for the function's latest change record (PROTECTED; a FAILED written
 * after the update was sent; or a PENDING whose protect invocation never wrote a final record: AWS may have applied
 * it). Where that record has no after-image, the same run's PENDING item supplies the planned one. It reads the
 * function as it is now (GetFunction), derives the MAC key with the operator's credentials (kms:GenerateMac on the
 * stack's HMAC key, --mac-key / MAC_KEY_ID: the stack's MacKey), and plans the rollback
 * (domain/plan.ts): our layer removed (or the older Defender version it replaced put back), our variables removed
 * where they still hold the value we set, the handler restored while it is still the Defender's. It prints the plan
 * and changes nothing without --yes. With --yes it applies the plan with the RevisionId just read as a precondition,
 * waits until AWS reports the update Successful, writes a ROLLED_BACK audit record (before/after images, who) and adds
 * a persistent exclusion so the next run does not protect the function again (`zero-impact include` lifts it).
 * A Defender the team has since upgraded or replaced is refused (the Defender is no longer the one we added). The
 * rollback of an in-place refresh (issue 8 item 7) puts back the previous values, decrypted (kms:Decrypt) from the
 * state table's `RESTORE#<function>#<runId>` item.
 *
 * Tables: --audit-table / AUDIT_TABLE_NAME and --state-table / STATE_TABLE_NAME; region: --region / AWS_REGION.
 * Exit codes: 0 done or planned, 1 a rollback failed, 2 bad usage. One line per problem, never a stack trace.
 */
import { userInfo } from 'node:os';
import { putAuditItem, functionHistory, runItems } from '../../lambdas/shared/adapters/audit-store';
import { macKey } from '../../lambdas/shared/adapters/mac-key';
import { readRestore } from '../../lambdas/shared/adapters/restore-store';
import {
  awsMessage,
  readFunction,
  updateConfiguration,
  waitForUpdate,
  type FreshFunction,
  type Pacing,
} from '../../lambdas/shared/adapters/function-update';
import { systemClock, TokenBucket } from '../../lambdas/shared/adapters/rate-limiter';
import { putExclusion } from '../../lambdas/shared/adapters/state-store';
import { decisionItem, unfinishedPending } from '../../lambdas/shared/domain/audit';
import { ourVariableNames, type MacContext } from '../../lambdas/shared/domain/mac';
import { configurationImage, planRollback, scrubValues, type RefreshRestore } from '../../lambdas/shared/domain/plan';
import type { AuditItem, ConfigurationImage, Outcome } from '../../lambdas/shared/domain/types';
import { EXEC_WRAPPER_VARIABLE, ORIGINAL_HANDLER_VARIABLE } from '../../lib/config';
import { Option, type Command } from 'commander';
import {
  formatOf,
  formatOptions,
  loadConfig,
  newCommand,
  packageVersion,
  runCommand,
  UsageError,
  type Format,
} from './common';
import { onKeptSession } from './kept';
import { outputsFor, stackOption } from './stack';

const USAGE =
  'usage: zero-impact rollback --function NAME | --run RUN_ID [--region R] [--yes] [--audit-table T] [--state-table T] [--mac-key KEY] [--config FILE]';
/** Retention of the ROLLED_BACK record when no --config is given (the schema's audit.retentionDays default). */
const DEFAULT_RETENTION_DAYS = 400;
/** Rollbacks share the customer's control-plane budget too. */
const ROLLBACK_CALLS_PER_SECOND = 5;

/** Where the command works: tables and region, from flags or the environment. */
export interface Target {
  auditTable: string;
  stateTable: string;
}

/** Points the SDK clients at `--region` (they read AWS_REGION on their first call). */
export function applyRegion(command: string, region: string | undefined): void {
  if (region === undefined) return;
  if (!/^[a-z]{2}(-[a-z]+)+-\d+$/.test(region)) {
    throw new UsageError(`${command}: --region: "${region}" is not an AWS region`);
  }
  process.env['AWS_REGION'] = region;
}

export function tableName(command: string, flag: string | undefined, variable: string, option: string): string {
  const name = flag ?? process.env[variable];
  if (name === undefined || name.length === 0) {
    throw new UsageError(`${command}: ${option} TABLE (or the environment variable ${variable}) is required`);
  }
  return name;
}

function caller(): string {
  try {
    return userInfo().username || 'cli';
  } catch {
    return 'cli';
  }
}

/**
 * The run id of the records this command writes: `rollback-<decidedAt>`; their sort key is that time, that run id and
 * stage `1-decision` (one per rollback command and function; domain/audit.ts auditSortKey).
 */
const ROLLBACK_RUN_PREFIX = 'rollback-';

/** A change record with the images a rollback judges against (the after-image possibly from the run's PENDING). */
export interface ChangeRecord {
  record: AuditItem;
  before?: ConfigurationImage;
  after?: ConfigurationImage;
}

/**
 * The audit table's order of a function's items: by run start, then run id, then stage (a run's PENDING before its
 * decision); items written before issue 9 start with their decidedAt, so old and new histories interleave by time.
 */
function bySk(a: AuditItem, b: AuditItem): number {
  return a.sk < b.sk ? -1 : a.sk > b.sk ? 1 : 0;
}

/**
 * True for a record that says the function may carry a change (issue 8 item 5): PROTECTED, ROLLED_BACK, a FAILED
 * written after the update was sent (it has a before-image; never one of a rollback run: a failed rollback is not
 * a protection), or a PENDING (with its planned after-image) whose protect invocation wrote no final record.
 */
function isChange(item: AuditItem, history: readonly AuditItem[]): boolean {
  if (item.kind !== 'decision') return false;
  if (item.outcome === 'PROTECTED' || item.outcome === 'ROLLED_BACK') return true;
  if (item.outcome === 'FAILED') {
    return item.before !== undefined && item.nothingChanged !== true && !item.runId.startsWith(ROLLBACK_RUN_PREFIX);
  }
  return item.after !== undefined && unfinishedPending(item, history);
}

/** The images of a change record; a final record without an after-image takes its run's PENDING planned one. */
function withImages(item: AuditItem, history: readonly AuditItem[]): ChangeRecord {
  const pending = history
    .filter((p) => p.kind === 'decision' && p.outcome === 'PENDING' && p.runId === item.runId && p.sk <= item.sk)
    .sort(bySk)
    .pop();
  const before = item.before ?? pending?.before;
  const after = item.after ?? pending?.after;
  return { record: item, ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) };
}

/**
 * The change record a rollback judges against: the newest change that no rollback has undone yet. A ROLLED_BACK
 * record names the change it undid (`undoes`), so after undoing a refresh or a Defender upgrade, the next rollback
 * goes on to the change before it, down to the first protection. When every change is undone (or a rollback from
 * before `undoes` existed is newest), that ROLLED_BACK record, with its images.
 */
export function latestChange(history: readonly AuditItem[]): ChangeRecord | undefined {
  const changes = history
    .filter((item) => isChange(item, history))
    .sort(bySk)
    .reverse();
  const undone = new Set<string>();
  for (const item of changes) {
    if (item.outcome === 'ROLLED_BACK') {
      if (typeof item.undoes !== 'string') return withImages(item, history);
      undone.add(item.undoes);
    } else if (!undone.has(item.sk)) {
      return withImages(item, history);
    }
  }
  const rollback = changes.find((item) => item.outcome === 'ROLLED_BACK');
  return rollback === undefined ? undefined : withImages(rollback, history);
}

interface Context {
  target: Target;
  apply: boolean;
  retentionDays: number;
  actor: string;
  version: string;
  pacing: Pacing;
  /** The MAC key, derived once on first need (kms:GenerateMac with the operator's credentials). */
  macKey: () => Promise<Uint8Array>;
  /** Our variable names from --config, if given (the record's own MACed names are always ours). */
  ourNames: readonly string[];
  /** Only a record of this run may be rolled back (--run). */
  runId?: string;
  out: RollbackOutput;
}

type Result = 'done' | 'planned' | 'nothing' | 'failed';

/** One function in `rollback --format json`. */
export interface RollbackEntry {
  functionName: string;
  /** done (rolled back), planned (without --yes), nothing (nothing to do), failed. */
  result: Result;
  /** The change record the rollback judged against. */
  record?: { outcome: string; decidedAt: string; runId: string };
  /** What the plan removes or puts back (applied with --yes). */
  steps: string[];
  /** What it leaves alone, and why. */
  notes: string[];
  /** The lines the table format prints for this function (without the name). */
  messages: string[];
  /** The one-line problems (on stderr too). */
  errors: string[];
}

/** `rollback --format json`: one document on stdout. */
export interface RollbackDocument {
  apply: boolean;
  run?: string;
  functions: RollbackEntry[];
}

/**
 * What rollback says: with --format table the lines it always printed, as it goes; with json the same facts in one
 * document printed at the end. Problems go to stderr in one line with either format.
 */
class RollbackOutput {
  private readonly entries: RollbackEntry[] = [];

  constructor(
    readonly format: Format,
    private readonly document: Omit<RollbackDocument, 'functions'>,
  ) {}

  private entry(name: string): RollbackEntry {
    let entry = this.entries.find((e) => e.functionName === name);
    if (entry === undefined) {
      entry = { functionName: name, result: 'nothing', steps: [], notes: [], messages: [], errors: [] };
      this.entries.push(entry);
    }
    return entry;
  }

  say(name: string, line: string): void {
    this.entry(name).messages.push(line);
    if (this.format === 'table') console.log(`${name}: ${line}`);
  }

  plan(name: string, record: AuditItem, steps: readonly string[], notes: readonly string[], change: boolean): void {
    const entry = this.entry(name);
    entry.record = { outcome: record.outcome, decidedAt: record.decidedAt, runId: record.runId };
    entry.steps.push(...steps);
    entry.notes.push(...notes);
    if (this.format !== 'table') return;
    for (const step of steps) console.log(`  - ${step}`);
    if (!change) console.log('  - nothing of ours is left to remove');
    for (const note of notes) console.log(`  note: ${note}`);
  }

  problem(name: string, line: string): Result {
    this.entry(name).errors.push(line);
    console.error(`zero-impact rollback: ${name}: ${line}`);
    return 'failed';
  }

  result(name: string, result: Result): void {
    this.entry(name).result = result;
  }

  /** A line about the whole run (--run), table format only. */
  line(text: string): void {
    if (this.format === 'table') console.log(text);
  }

  /** With --format json, the document. */
  finish(): void {
    if (this.format !== 'json') return;
    const document: RollbackDocument = { ...this.document, functions: this.entries };
    console.log(JSON.stringify(document, null, 2));
  }
}

async function record(
  ctx: Context,
  protection: AuditItem,
  outcome: Outcome,
  images: { before: ConfigurationImage; after?: ConfigurationImage },
  detail: string,
): Promise<void> {
  const decidedAt = new Date(systemClock.now()).toISOString();
  const item = decisionItem(
    {
      functionName: protection.functionName,
      functionArn: protection.functionArn,
      runId: `${ROLLBACK_RUN_PREFIX}${decidedAt}`,
      runStartedAt: decidedAt,
      decidedAt,
      mode: 'protect',
      outcome,
      reasons: [],
      warnings: [],
      checks: [],
      before: images.before,
      ...(images.after !== undefined ? { after: images.after } : {}),
      detail,
      ...(protection.owner !== undefined ? { owner: protection.owner } : {}),
      ...(outcome === 'ROLLED_BACK' ? { undoes: protection.sk } : {}),
    },
    {
      engineVersion: ctx.version,
      configHash: protection.configHash,
      retentionDays: ctx.retentionDays,
      repeatRetentionDays: ctx.retentionDays,
    },
  );
  await putAuditItem(ctx.target.auditTable, item);
}

/** Plans, and with --yes applies, the rollback of one function. */
async function rollbackOne(name: string, ctx: Context): Promise<Result> {
  let history: AuditItem[];
  try {
    history = await functionHistory(ctx.target.auditTable, name);
  } catch (error) {
    return ctx.out.problem(name, `cannot read the audit table ${ctx.target.auditTable} (${awsMessage(error)})`);
  }
  const change = latestChange(history);
  if (change === undefined) return ctx.out.problem(name, `no protection of this function in ${ctx.target.auditTable}`);
  const protection = change.record;
  if (protection.outcome === 'ROLLED_BACK') {
    ctx.out.say(name, `already rolled back at ${protection.decidedAt}; nothing to do`);
    return 'nothing';
  }
  if (ctx.runId !== undefined && protection.runId !== ctx.runId) {
    ctx.out.say(
      name,
      `changed again after run ${ctx.runId} (latest: ${protection.outcome} in run ${protection.runId}); skipped, use --function`,
    );
    return 'nothing';
  }

  let fresh: FreshFunction;
  try {
    fresh = await readFunction(name, ctx.pacing);
  } catch (error) {
    if (error instanceof Error && error.name === 'ResourceNotFoundException') {
      ctx.out.say(name, 'the function no longer exists; nothing to roll back');
      return 'nothing';
    }
    return ctx.out.problem(name, `GetFunction failed (${awsMessage(error)})`);
  }
  const secrets = Object.values(fresh.configuration.Environment?.Variables ?? {});
  let mac: MacContext;
  let restore: RefreshRestore | undefined;
  try {
    mac = { key: await ctx.macKey(), ourNames: namesOf(change, ctx.ourNames) };
  } catch (error) {
    return ctx.out.problem(
      name,
      `cannot derive the MAC key (${awsMessage(error)}); give --mac-key (the stack's MacKey)`,
    );
  }
  if (isRefresh(change)) {
    try {
      restore = await readRestore(ctx.target.stateTable, name, protection.runId);
    } catch (error) {
      return ctx.out.problem(
        name,
        `cannot read the values this refresh replaced (${awsMessage(error)}); nothing was changed`,
      );
    }
    if (restore === undefined) {
      return ctx.out.problem(
        name,
        `the values the refresh of run ${protection.runId} replaced are not stored; nothing was changed`,
      );
    }
    secrets.push(...Object.values(restore.previous));
  }
  const plan = planRollback(fresh.configuration, change, mac, name, restore);
  if (!plan.ok) return ctx.out.problem(name, `cannot plan the rollback: ${plan.problem}`);

  ctx.out.say(
    name,
    `rollback of the ${protection.outcome} record of ${protection.decidedAt} (run ${protection.runId})`,
  );
  ctx.out.plan(name, protection, plan.steps, plan.notes, plan.change !== null);
  if (!ctx.apply) {
    ctx.out.say(name, 'plan only: nothing was changed (add --yes to apply it)');
    return 'planned';
  }

  const before = configurationImage(fresh.configuration, mac, name);
  let after: ConfigurationImage = before;
  if (plan.change !== null) {
    const revisionId = fresh.configuration.RevisionId;
    if (revisionId === undefined)
      return ctx.out.problem(name, 'GetFunction returned no RevisionId; nothing was changed');
    const update = await updateConfiguration(name, plan.change, revisionId, ctx.pacing);
    if (update.status !== 'accepted') {
      const why =
        update.status === 'precondition-failed'
          ? 'the function changed while the rollback was planned; run the command again'
          : update.status === 'conflict'
            ? 'another update is in progress; run the command again later'
            : 'AWS refused the update';
      return ctx.out.problem(name, `${why} (${scrubValues(update.message, secrets)}); nothing was changed`);
    }
    const waited = await waitForUpdate(name, ctx.pacing);
    if (waited.status === 'deleted') return ctx.out.problem(name, 'the function was deleted during the rollback');
    if (waited.status !== 'Successful') {
      const why =
        waited.status === 'Failed'
          ? `the update failed: ${waited.reason}`
          : `the update did not complete in time${waited.lastError !== null ? ` (${waited.lastError})` : ''}`;
      const detail = scrubValues(`rollback by ${ctx.actor} failed: ${why}`, secrets);
      try {
        await record(
          ctx,
          protection,
          'FAILED',
          {
            before,
            ...(waited.configuration !== null ? { after: configurationImage(waited.configuration, mac, name) } : {}),
          },
          detail,
        );
      } catch (error) {
        ctx.out.problem(name, `the FAILED record was not written (${awsMessage(error)})`);
      }
      return ctx.out.problem(name, scrubValues(why, secrets));
    }
    after = configurationImage(waited.configuration, mac, name);
  }

  const now = new Date(systemClock.now()).toISOString();
  const detail = [
    `rolled back by ${ctx.actor}: the ${protection.outcome} record of ${protection.decidedAt} (run ${protection.runId})`,
    plan.steps.length > 0 ? `done: ${plan.steps.join('; ')}` : 'nothing of ours was left',
    `left alone: ${plan.notes.join('; ')}`,
  ].join('. ');
  let result: Result = 'done';
  try {
    await record(ctx, protection, 'ROLLED_BACK', { before, after }, detail);
  } catch (error) {
    result = ctx.out.problem(name, `rolled back, but the ROLLED_BACK record was not written (${awsMessage(error)})`);
  }
  try {
    await putExclusion(ctx.target.stateTable, {
      functionName: name,
      reason: `rolled back by ${ctx.actor}`,
      excludedAt: now,
    });
  } catch (error) {
    return ctx.out.problem(
      name,
      `rolled back, but the persistent exclusion was not written (${awsMessage(error)}): the next run may protect it again; add it to exclusions.functions`,
    );
  }
  ctx.out.say(name, `rolled back; excluded from protection until \`zero-impact include --function ${name}\``);
  return result;
}

/** Our variable names for one record: the ones it MACed, the wrapper, ORIGINAL_HANDLER and --config's. */
function namesOf(change: ChangeRecord, configured: readonly string[]): ReadonlySet<string> {
  return new Set([
    EXEC_WRAPPER_VARIABLE,
    ORIGINAL_HANDLER_VARIABLE,
    ...configured,
    ...Object.keys(change.before?.ourValueMacs ?? {}),
    ...Object.keys(change.after?.ourValueMacs ?? {}),
  ]);
}

/**
 * An in-place refresh of our variables (issue 8 item 7): same layers, handler and variable names before and after;
 * only the MACs of our values differ.
 */
function isRefresh(change: ChangeRecord): boolean {
  const { before, after } = change;
  if (before === undefined || after === undefined || change.record.outcome === 'ROLLED_BACK') return false;
  return (
    before.layers.join('\n') === after.layers.join('\n') &&
    before.handler === after.handler &&
    before.variableNames.join('\n') === after.variableNames.join('\n') &&
    JSON.stringify(before.ourValueMacs) !== JSON.stringify(after.ourValueMacs)
  );
}

/**
 * The functions a run may have changed, in the order it changed them: a PROTECTED or FAILED-after-the-update
 * record, or a PENDING item the run never completed (issue 8 item 5).
 */
async function functionsOfRun(target: Target, runId: string): Promise<string[]> {
  const items = (await runItems(target.auditTable, runId)).sort(bySk);
  const changed = items.filter((item) => item.outcome !== 'ROLLED_BACK' && isChange(item, items));
  return [...new Set(changed.map((item) => item.functionName))];
}

/** The options of `rollback` (the flags, parsed; environment fallbacks applied). */
export interface RollbackOptions {
  function?: string;
  run?: string;
  region?: string;
  yes?: boolean;
  auditTable?: string;
  stateTable?: string;
  macKey?: string;
  config?: string;
  stack?: string;
  local?: string;
  format?: string;
  human?: boolean;
  json?: boolean;
}

export function command(): Command {
  const cmd = newCommand<RollbackOptions>(
    {
      name: 'rollback',
      summary: 'remove exactly what protection added to a function (or to every function a run changed)',
      details: [
        'Prints the plan and changes nothing without --yes. With --yes it applies the plan, records ROLLED_BACK in the',
        'audit table and excludes the function from later runs (`zero-impact include` lifts that).',
        'Exit codes: 0 done or planned, 1 a rollback failed, 2 bad usage.',
      ].join('\n'),
      examples: [
        'zero-impact rollback --function orders-api',
        'zero-impact rollback --function orders-api --yes',
        'zero-impact rollback --run 2025-03-01T10:00:00Z-abc --yes --region eu-west-1',
        'zero-impact rollback --function orders-api --stack ZeroImpactProtect-prod',
        'zero-impact rollback --run 2025-03-01T10:00:00Z-abc --format json   # the plan as one JSON document',
      ],
    },
    rollbackCommand,
  )
    .option('--function <name>', 'the function to roll back')
    .option('--run <runId>', 'roll back every function this run changed')
    .option('--region <region>', 'AWS region (default: the environment variable AWS_REGION)')
    .option('--yes', 'apply the plan (without it nothing is changed)', false)
    .addOption(new Option('--audit-table <table>', "the stack's audit table").env('AUDIT_TABLE_NAME'))
    .addOption(new Option('--state-table <table>', "the stack's state table").env('STATE_TABLE_NAME'))
    .addOption(new Option('--mac-key <key>', "the stack's MacKey (id, ARN or alias)").env('MAC_KEY_ID'))
    .option('--config <file>', 'the configuration the stack was deployed with (its variable names, retention)');
  return formatOptions(
    stackOption(cmd).option(
      '--local <dir>',
      'act on the simulated account and tables `zero-impact local-run --keep DIR` kept (no AWS call)',
    ),
    'table',
  );
}

export async function run(argv: string[]): Promise<number> {
  return runCommand('rollback', command(), argv);
}

/** Plans (and with --yes applies) the rollback; 0 done or planned, 1 a rollback failed, UsageError for bad usage. */
export async function rollbackCommand(flags: RollbackOptions): Promise<number> {
  if (flags.local !== undefined) {
    const { local, region: _region, ...rest } = flags;
    return onKeptSession('rollback', local, (env) =>
      rollbackCommand({
        ...rest,
        auditTable: env['AUDIT_TABLE_NAME'],
        stateTable: env['STATE_TABLE_NAME'],
        macKey: env['MAC_KEY_ID'],
      }),
    );
  }
  if ((flags.function === undefined) === (flags.run === undefined)) {
    throw new UsageError(`rollback: give exactly one of --function NAME or --run RUN_ID (${USAGE})`);
  }
  const format = formatOf('rollback', flags, 'table');
  applyRegion('rollback', flags.region);
  const outputs = await outputsFor('rollback', flags.stack, [
    ...(flags.auditTable === undefined ? (['AuditTableName'] as const) : []),
    ...(flags.stateTable === undefined ? (['StateTableName'] as const) : []),
    ...(flags.macKey === undefined ? (['MacKeyArn'] as const) : []),
  ]);
  const target: Target = {
    auditTable: tableName('rollback', flags.auditTable ?? outputs.AuditTableName, 'AUDIT_TABLE_NAME', '--audit-table'),
    stateTable: tableName('rollback', flags.stateTable ?? outputs.StateTableName, 'STATE_TABLE_NAME', '--state-table'),
  };
  const bucket = new TokenBucket({ ratePerSecond: ROLLBACK_CALLS_PER_SECOND, clock: systemClock });
  const macKeyId = flags.macKey ?? outputs.MacKeyArn;
  if (macKeyId === undefined || macKeyId.length === 0) {
    throw new UsageError(
      "rollback: --mac-key KEY (or the environment variable MAC_KEY_ID) is required: the stack's MacKey",
    );
  }
  const config = flags.config !== undefined ? loadConfig(flags.config) : undefined;
  const retentionDays = config?.audit.retentionDays ?? DEFAULT_RETENTION_DAYS;
  let derived: Promise<Uint8Array> | undefined;
  const ctx: Context = {
    target,
    apply: flags.yes === true,
    retentionDays,
    actor: caller(),
    version: packageVersion(),
    pacing: { beforeCall: () => bucket.take(), sleep: (ms) => systemClock.sleep(ms) },
    macKey: () =>
      (derived ??= macKey(macKeyId)).catch((error: unknown) => {
        derived = undefined;
        throw error;
      }),
    ourNames: config !== undefined ? [...ourVariableNames(config)] : [],
    ...(flags.run !== undefined ? { runId: flags.run } : {}),
    out: new RollbackOutput(format, {
      apply: flags.yes === true,
      ...(flags.run !== undefined ? { run: flags.run } : {}),
    }),
  };

  let names: string[];
  if (flags.function !== undefined) {
    names = [flags.function];
  } else {
    const runId = flags.run ?? '';
    try {
      names = await functionsOfRun(target, runId);
    } catch (error) {
      console.error(`zero-impact rollback: cannot read run ${runId} from ${target.auditTable} (${awsMessage(error)})`);
      return 1;
    }
    if (names.length === 0) {
      ctx.out.line(`run ${runId}: changed no function; nothing to roll back`);
      ctx.out.finish();
      return 0;
    }
    ctx.out.line(`run ${runId}: ${names.length} function(s) to roll back`);
  }

  const results: Result[] = [];
  for (const name of names) {
    const result = await rollbackOne(name, ctx);
    ctx.out.result(name, result);
    results.push(result);
  }
  ctx.out.finish();
  return results.includes('failed') ? 1 : 0;
}
