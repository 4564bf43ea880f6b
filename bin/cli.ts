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
import { packageVersion, type CommandHelp } from './commands/common';
import * as defender from './commands/defender';
import * as include from './commands/include';
import * as localRun from './commands/local-run';
import * as rollback from './commands/rollback';
import { AUDIT_HELP, COVERAGE_HELP, EXPORT_HELP, HISTORY_HELP, REPORT_HELP } from './commands/review-help';

interface CommandModule {
  command(): Command;
  run(argv: string[]): Promise<number>;
}

/**
 * A command loaded when it runs: the reviewing commands of issue 12 load the audit-store reader and the SDK clients,
 * and `audit` the engine's handlers (no other command should pay for that; a handler module read too early also
 * builds its logger before a local session sets the log level, local/local-runner.ts). The top-level help lists it
 * from its help text alone (bin/commands/review-help.ts); its own `--help`, flags and errors are its commander
 * definition's, like every other command's.
 */
function lazy(help: CommandHelp, load: () => Promise<CommandModule>): CommandModule {
  return {
    command: () => new Command(help.name).description(help.summary),
    run: async (argv) => (await load()).run(argv),
  };
}

const COMMANDS: Record<string, CommandModule> = {
  assess,
  'local-run': localRun,
  rollback,
  include,
  defender,
  config: configCommand,
  report: lazy(REPORT_HELP, () => import('./commands/report')),
  history: lazy(HISTORY_HELP, () => import('./commands/history')),
  export: lazy(EXPORT_HELP, () => import('./commands/export')),
  coverage: lazy(COVERAGE_HELP, () => import('./commands/coverage')),
  audit: lazy(AUDIT_HELP, () => import('./commands/audit')),
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
