/**
 * The `zero-impact` command line: argument dispatch and printing only. Each command lives in bin/commands/.
 */
import { run as assess } from './commands/assess';
import { run as defender } from './commands/defender';
import { run as include } from './commands/include';
import { run as localRun } from './commands/local-run';
import { run as report } from './commands/report';
import { run as history } from './commands/history';
import { run as exportCmd } from './commands/export';
import { run as coverage } from './commands/coverage';
import { run as audit } from './commands/audit';
import { run as rollback } from './commands/rollback';

type Command = (argv: string[]) => Promise<number>;

const COMMANDS: Record<string, { run: Command; summary: string }> = {
  assess: {
    run: assess,
    summary: 'assess --facts FILE [--config FILE] [--human]   run the safety funnel on facts documents',
  },
  rollback: {
    run: rollback,
    summary: 'rollback --function NAME | --run RUN_ID [--region R] [--yes]   remove exactly what protection added',
  },
  include: { run: include, summary: 'include --function NAME [--region R]   lift a rollback exclusion' },
  defender: {
    run: defender,
    summary:
      "defender publish-layer --runtime RUNTIME [--region R] [--yes] [--config FILE]   publish the Console's Defender layer",
  },
  report: {
    run: report,
    summary:
      'report [--run RUN_ID | --latest] [--format table|csv|json|html] [--out FILE] [--fail-on OUTCOME,...] [--local DIR | --stack NAME | --audit-table T]   the estate as of a run',
  },
  history: {
    run: history,
    summary:
      'history --function NAME [--format table|json] [--local DIR | --stack NAME | --audit-table T]   every decision for one function',
  },
  export: {
    run: exportCmd,
    summary:
      'export --since DATE [--until DATE] --format csv|jsonl [--out FILE] [--local DIR | --stack NAME | --audit-table T]   audit items as evidence',
  },
  coverage: {
    run: coverage,
    summary:
      'coverage [--format table|json|csv] [--function NAME] [--local DIR] [--config FILE] [--region R]   true coverage: aliases and the versions they serve',
  },
  audit: {
    run: audit,
    summary:
      'audit [--function NAME] [--format table|csv|json|html] [--out FILE] [--fail-on OUTCOME,...] [--config FILE]   read-only assessment of the live account',
  },
  'local-run': {
    run: localRun,
    summary:
      'local-run [--estate FILE] [--config FILE] [--mode dry-run|protect] [--runs N] [--out DIR] [--json]   the hourly job on a simulated account',
  },
};

export function usage(): string {
  return ['usage: zero-impact <command> [options]', '', ...Object.values(COMMANDS).map((c) => `  ${c.summary}`)].join(
    '\n',
  );
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    console.error(`zero-impact: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  try {
    return await command.run(rest);
  } catch (error) {
    // Commands report their own expected errors; anything else is a bug, reported in one line without a stack.
    console.error(`zero-impact ${name}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}
