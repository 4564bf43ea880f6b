/**
 * `zero-impact include --function NAME [--region R] [--state-table T]`: lifts the persistent exclusion that a
 * rollback added, so the next run assesses (and may protect) the function again. It changes no function.
 *
 * State table: --state-table / STATE_TABLE_NAME; region: --region / AWS_REGION.
 * Exit codes: 0 done (or nothing to lift), 1 the table could not be changed, 2 bad usage.
 */
import { awsMessage } from '../../lambdas/shared/adapters/function-update';
import { deleteExclusion } from '../../lambdas/shared/adapters/state-store';
import { Option, type Command } from 'commander';
import { formatOf, formatOptions, newCommand, runCommand, UsageError } from './common';
import { onKeptSession } from './kept';
import { outputsFor, stackOption } from './stack';
import { applyRegion, tableName } from './rollback';

/** The options of `include` (the flags, parsed; environment fallbacks applied). */
export interface IncludeOptions {
  function?: string;
  region?: string;
  stateTable?: string;
  stack?: string;
  local?: string;
  format?: string;
  human?: boolean;
  json?: boolean;
}

/** `include --format json`: one document on stdout. */
export interface IncludeDocument {
  functionName: string;
  /** True when an exclusion was lifted; false when the function was not excluded (nothing changed). */
  lifted: boolean;
}

export function command(): Command {
  const cmd = newCommand<IncludeOptions>(
    {
      name: 'include',
      summary: 'lift the persistent exclusion a rollback added (changes no function)',
      details: 'Exit codes: 0 done (or nothing to lift), 1 the table could not be changed, 2 bad usage.',
      examples: [
        'zero-impact include --function orders-api',
        'zero-impact include --function orders-api --region eu-west-1',
        'zero-impact include --function orders-api --format json',
      ],
    },
    includeCommand,
  )
    .option('--function <name>', 'the function to include again')
    .option('--region <region>', 'AWS region (default: the environment variable AWS_REGION)')
    .addOption(new Option('--state-table <table>', "the stack's state table").env('STATE_TABLE_NAME'));
  return formatOptions(
    stackOption(cmd).option(
      '--local <dir>',
      'act on the simulated account and tables `zero-impact local-run --keep DIR` kept (no AWS call)',
    ),
    'table',
  );
}

export async function run(argv: string[]): Promise<number> {
  return runCommand('include', command(), argv);
}

/** Deletes the exclusion; 0 done or nothing to lift, 1 the table could not be changed. */
export async function includeCommand(flags: IncludeOptions): Promise<number> {
  if (flags.local !== undefined) {
    const { local, region: _region, ...rest } = flags;
    return onKeptSession('include', local, (env) => includeCommand({ ...rest, stateTable: env['STATE_TABLE_NAME'] }));
  }
  const name = flags.function;
  if (name === undefined || name.length === 0) {
    throw new UsageError(
      'include: --function NAME is required (usage: zero-impact include --function NAME [--region R] [--state-table T])',
    );
  }
  const format = formatOf('include', flags, 'table');
  applyRegion('include', flags.region);
  const outputs = await outputsFor('include', flags.stack, flags.stateTable === undefined ? ['StateTableName'] : []);
  const stateTable = tableName(
    'include',
    flags.stateTable ?? outputs.StateTableName,
    'STATE_TABLE_NAME',
    '--state-table',
  );
  let lifted: boolean;
  try {
    lifted = await deleteExclusion(stateTable, name);
  } catch (error) {
    console.error(`zero-impact include: ${name}: cannot change the state table ${stateTable} (${awsMessage(error)})`);
    return 1;
  }
  if (format === 'json') {
    const document: IncludeDocument = { functionName: name, lifted };
    console.log(JSON.stringify(document, null, 2));
    return 0;
  }
  console.log(
    lifted
      ? `${name}: persistent exclusion lifted; the next run assesses it again`
      : `${name}: was not excluded; nothing changed`,
  );
  return 0;
}
