/**
 * The `zero-impact` command line: dispatch and the top-level help only. Each command lives in bin/commands/ and
 * exports `command()` (its commander definition: flags, defaults, environment fallbacks, examples) and `run(argv)`.
 *
 * `zero-impact --help` lists the commands, `zero-impact <command> --help` (or `zero-impact help <command>`) shows
 * one command's flags; `--version` prints package.json's version. No command: the usage on stdout, exit 2. An unknown
 * command: one line with the nearest command, exit 2.
 */
import { Command } from 'commander';
import * as assess from './commands/assess';
import * as configCommand from './commands/config';
import { packageVersion } from './commands/common';
import * as defender from './commands/defender';
import * as include from './commands/include';
import * as localRun from './commands/local-run';
import * as rollback from './commands/rollback';

interface CommandModule {
  command(): Command;
  run(argv: string[]): Promise<number>;
}

/**
 * The reviewing commands (issue 12) parse their own flags (each prints its usage on a bad flag, exit 2); commander
 * only lists them in the top-level help and hands them their arguments untouched. They are loaded when run (`audit`
 * loads the engine's handlers and their SDK clients: no other command should pay for that).
 */
function ownParser(name: string, summary: string, run: (argv: string[]) => Promise<number>): CommandModule {
  return {
    command: () =>
      new Command(name).description(summary).helpOption(false).allowUnknownOption(true).allowExcessArguments(true),
    run,
  };
}

const COMMANDS: Record<string, CommandModule> = {
  assess,
  'local-run': localRun,
  rollback,
  include,
  defender,
  config: configCommand,
  report: ownParser(
    'report',
    'report [--run RUN_ID | --latest] [--format table|csv|json|html] [--out FILE] [--fail-on OUTCOME,...] [--local DIR | --stack NAME | --audit-table T]   the estate as of a run',
    (argv) => import('./commands/report').then((m) => m.run(argv)),
  ),
  history: ownParser(
    'history',
    'history --function NAME [--format table|json] [--local DIR | --stack NAME | --audit-table T]   every decision for one function',
    (argv) => import('./commands/history').then((m) => m.run(argv)),
  ),
  export: ownParser(
    'export',
    'export --since DATE [--until DATE] --format csv|jsonl [--out FILE] [--local DIR | --stack NAME | --audit-table T]   audit items as evidence',
    (argv) => import('./commands/export').then((m) => m.run(argv)),
  ),
  coverage: ownParser(
    'coverage',
    'coverage [--format table|json|csv] [--function NAME] [--local DIR] [--config FILE] [--region R]   true coverage: aliases and the versions they serve',
    (argv) => import('./commands/coverage').then((m) => m.run(argv)),
  ),
  audit: ownParser(
    'audit',
    'audit [--function NAME] [--format table|csv|json|html] [--out FILE] [--fail-on OUTCOME,...] [--config FILE]   read-only assessment of the live account',
    (argv) => import('./commands/audit').then((m) => m.run(argv)),
  ),
};

/** The top-level program: every command with its summary (for `--help`). */
export function program(): Command {
  const root = new Command('zero-impact')
    .description(
      'Roll the Prisma Cloud Defender onto every Lambda function of an account without breaking any of them.',
    )
    .version(packageVersion(), '-V, --version', 'print the version')
    .usage('<command> [options]')
    .configureOutput({ writeOut: (text) => process.stdout.write(text) })
    .addHelpText('after', '\nRun `zero-impact <command> --help` for the flags of one command, with examples.');
  for (const module of Object.values(COMMANDS)) root.addCommand(module.command());
  return root;
}

export function usage(): string {
  return program().helpInformation().trimEnd();
}

/** The command nearest to a mistyped name (edit distance at most 2), as commander suggests flags. */
export function nearestCommand(name: string): string | undefined {
  const distance = (a: string, b: string): number => {
    const row = Array.from({ length: b.length + 1 }, (_, i) => i);
    for (let i = 1; i <= a.length; i += 1) {
      let previous = row[0] ?? 0;
      row[0] = i;
      for (let j = 1; j <= b.length; j += 1) {
        const current = row[j] ?? 0;
        row[j] = Math.min(current + 1, (row[j - 1] ?? 0) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
        previous = current;
      }
    }
    return row[b.length] ?? Number.MAX_SAFE_INTEGER;
  };
  const ranked = Object.keys(COMMANDS)
    .map((candidate) => ({ candidate, d: distance(name, candidate) }))
    .filter(({ d }) => d <= 2)
    .sort((a, b) => a.d - b.d);
  return ranked[0]?.candidate;
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === '--version' || name === '-V') {
    console.log(packageVersion());
    return 0;
  }
  if (name === 'help') {
    const target = rest[0] === undefined ? undefined : COMMANDS[rest[0]];
    if (target === undefined) {
      console.log(usage());
      return rest[0] === undefined ? 0 : 2;
    }
    return target.run([...rest.slice(1), '--help']);
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    const near = nearestCommand(name);
    console.error(
      `zero-impact: unknown command "${name}"${near !== undefined ? ` (did you mean ${near}?)` : ''}; see zero-impact --help`,
    );
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
