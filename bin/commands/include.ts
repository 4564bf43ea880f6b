/**
 * `zero-impact include --function NAME [--region R] [--state-table T]`: lifts the persistent exclusion that a
 * rollback added, so the next run assesses (and may protect) the function again. It changes no function.
 *
 * State table: --state-table / STATE_TABLE_NAME; region: --region / AWS_REGION.
 * Exit codes: 0 done (or nothing to lift), 1 the table could not be changed, 2 bad usage.
 */
import { awsMessage } from '../../lambdas/shared/adapters/function-update';
import { deleteExclusion } from '../../lambdas/shared/adapters/state-store';
import { guarded, parseFlags, UsageError } from './common';
import { applyRegion, tableName } from './rollback';

export async function run(argv: string[]): Promise<number> {
  return guarded(async () => {
    const flags = parseFlags('include', argv, {
      function: { type: 'string' },
      region: { type: 'string' },
      'state-table': { type: 'string' },
    });
    const name = flags.function;
    if (name === undefined || name.length === 0) {
      throw new UsageError(
        'include: --function NAME is required (usage: zero-impact include --function NAME [--region R] [--state-table T])',
      );
    }
    applyRegion('include', flags.region);
    const stateTable = tableName('include', flags['state-table'], 'STATE_TABLE_NAME', '--state-table');
    let lifted: boolean;
    try {
      lifted = await deleteExclusion(stateTable, name);
    } catch (error) {
      console.error(`zero-impact include: ${name}: cannot change the state table ${stateTable} (${awsMessage(error)})`);
      return 1;
    }
    console.log(
      lifted
        ? `${name}: persistent exclusion lifted; the next run assesses it again`
        : `${name}: was not excluded; nothing changed`,
    );
    return 0;
  });
}
