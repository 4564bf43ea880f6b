/**
 * Helpers every command shares: argument parsing (commander), reading JSON files, loading the configuration.
 * Expected problems are thrown as UsageError and printed as one line with exit code 2 — never a stack trace.
 *
 * Every command module exports `command()` (a fresh commander Command: flags, defaults, environment fallbacks and
 * examples, all shown by `--help`), a typed options object and the function that does the work on it, and
 * `run(argv)`, which parses argv with the command and calls that function. bin/cli.ts only dispatches.
 */
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { Command, Option } from 'commander';
import { ConfigError, mergeConfigLayers, parseConfig, type Config, type ConfigLayer } from '../../lib/config';

/** A problem with the user's input: printed as one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The repository root (where cdk.json and the example estate live). */
export const PROJECT_ROOT = join(__dirname, '..', '..');

/** The version in package.json (`zero-impact --version`, the engine version on records the CLI writes). */
export function packageVersion(): string {
  const pkg = readJsonFile(join(PROJECT_ROOT, 'package.json')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

/** What `--help` shows besides the flags: the examples (each a full command line). */
export interface CommandHelp {
  /** e.g. "assess" or "defender publish-layer" (errors are prefixed with it). */
  name: string;
  summary: string;
  /** Paragraphs after the flags: exit codes, where values come from. */
  details?: string;
  examples: readonly string[];
}

/** The result an action leaves for `run` (commander's actions return nothing to parseAsync's caller). */
const results = new WeakMap<Command, number>();

/**
 * A commander Command with this project's conventions: no process.exit (exitOverride), errors collected into one
 * line (UsageError, exit 2) with the nearest flag suggested, help on stdout with defaults, environment fallbacks and
 * examples.
 */
export function newCommand<O>(help: CommandHelp, action: (options: O) => Promise<number>): Command {
  const words = help.name.split(' ');
  const command = new Command(words[words.length - 1])
    .description(help.summary)
    .exitOverride()
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .allowUnknownOption(false)
    .configureOutput({
      writeOut: (text) => process.stdout.write(text),
      // Errors are rethrown as one line by parseCommand; commander's own two-line message is not printed.
      writeErr: () => undefined,
      outputError: () => undefined,
    })
    .action(async (_options: unknown, self: Command) => {
      results.set(command, await action(self.opts() as O));
    });
  const after = [
    help.details !== undefined ? `\n${help.details}` : '',
    '',
    'Examples:',
    ...help.examples.map((example) => `  $ ${example}`),
  ].join('\n');
  command.addHelpText('after', after);
  return command;
}

/** One line from commander's message: "error: unknown option '--fast'\n(Did you mean --facts?)". */
function commanderLine(message: string): string {
  return message
    .replace(/^error: /, '')
    .replace(/^unknown option/, 'Unknown option')
    .split('\n')
    .map((part) => part.trim().replace(/^\(Did you mean/, '(did you mean'))
    .filter((part) => part.length > 0)
    .join(' ');
}

/**
 * Parses argv with `command` and runs its action: 0 for --help, the action's code otherwise; a bad flag is a
 * UsageError (one line, exit 2), prefixed with the command's name.
 */
export async function parseCommand(name: string, command: Command, argv: readonly string[]): Promise<number> {
  // Parents only for the help's "Usage: zero-impact defender publish-layer [options]" line.
  if (command.parent === null) {
    let parent = new Command('zero-impact');
    for (const word of name.split(' ').slice(0, -1)) {
      const child = new Command(word);
      parent.addCommand(child);
      parent = child;
    }
    parent.addCommand(command);
  }
  try {
    await command.parseAsync([...argv], { from: 'user' });
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'commander.helpDisplayed' || code === 'commander.help' || code === 'commander.version') return 0;
    if (typeof code === 'string' && code.startsWith('commander.')) {
      throw new UsageError(`${name}: ${commanderLine((error as Error).message)}`);
    }
    throw error;
  }
  return results.get(command) ?? 0;
}

/** `newCommand` then `parseCommand` inside `guarded`: the whole `run(argv)` of a command module. */
export function runCommand(name: string, command: Command, argv: readonly string[]): Promise<number> {
  return guarded(() => parseCommand(name, command, argv));
}

/** Output format shared by every command: `--format table|json`, `--human` and `--json` its aliases. */
export type Format = 'table' | 'json';

export interface FormatFlags {
  format?: string;
  human?: boolean;
  json?: boolean;
}

/** Adds --format, --human, --json to a command (`fallback`: the command's default format). */
export function formatOptions(command: Command, fallback: Format): Command {
  return command
    .addOption(
      new Option(
        '--format <format>',
        `output format: table (for people) or json (for scripts) (default: ${fallback})`,
      ).choices(['table', 'json']),
    )
    .addOption(new Option('--human', 'same as --format table'))
    .addOption(new Option('--json', 'same as --format json'));
}

/** The format the flags ask for; --human and --json together (or with a different --format) are refused. */
export function formatOf(name: string, flags: FormatFlags, fallback: Format): Format {
  if (flags.human === true && flags.json === true) throw new UsageError(`${name}: give --human or --json, not both`);
  const alias: Format | undefined = flags.human === true ? 'table' : flags.json === true ? 'json' : undefined;
  const format = (flags.format ?? fallback) as Format;
  if (alias !== undefined && flags.format !== undefined && format !== alias) {
    throw new UsageError(`${name}: --format ${format} contradicts --${alias === 'table' ? 'human' : 'json'}`);
  }
  return alias ?? format;
}

/**
 * Checks an output directory before any work (issue 13 item 5): it exists or can be created, is a directory and
 * writable; pseudo file systems (/proc, /sys, /dev) are refused at once. A UsageError (one line, exit 2) otherwise.
 */
export function checkOutputDir(command: string, flag: string, dir: string): void {
  const absolute = resolvePath(dir);
  if (/^\/(proc|sys|dev)(\/|$)/.test(absolute)) {
    throw new UsageError(`${command}: ${flag}: ${dir} is on a pseudo file system; give a directory to write to`);
  }
  if (existsSync(dir) && !statSync(dir).isDirectory()) {
    throw new UsageError(`${command}: ${flag}: ${dir} exists and is not a directory`);
  }
  try {
    mkdirSync(dir, { recursive: true });
    accessSync(dir, constants.W_OK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unwritable';
    throw new UsageError(`${command}: ${flag}: cannot write to ${dir} (${code})`);
  }
}

/** Reads and parses a JSON file; a missing file or bad JSON is a UsageError naming the file. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    // "-" is standard input (file descriptor 0), as for most command-line tools.
    text = readFileSync(path === '-' ? 0 : path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new UsageError(`${path}: cannot read file (${code})`);
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    // Never echo the parser's message: on some Node versions it quotes the file's text, which may hold secrets.
    const position = /position (\d+)/.exec(String((error as { message?: unknown }).message))?.[1];
    throw new UsageError(`${path}: not valid JSON${position === undefined ? '' : ` (at byte ${position})`}`);
  }
}

/** Where the layered configuration came from (`config show` prints the source of each key). */
export interface LoadedConfig {
  config: Config;
  layers: ConfigLayer[];
}

/** The cdk.json of the project this command runs in: the current directory's, else the project's own. */
function cdkJsonPath(): string {
  const here = join(process.cwd(), 'cdk.json');
  return existsSync(here) ? here : join(PROJECT_ROOT, 'cdk.json');
}

/**
 * The configuration, layered (issue 13 item 4): the schema's defaults ← cdk.json context `zeroImpact` ← `--config
 * FILE` ← flags (`--mode`), one deep merge (lib/config.ts mergeConfigLayers). A partial file is enough.
 * @throws UsageError naming the file (the --config file when given, else cdk.json) and every bad key
 */
export function loadConfigLayers(
  path: string | undefined,
  overrides: Partial<Pick<Config, 'mode'>> = {},
): LoadedConfig {
  const cdkJsonFile = cdkJsonPath();
  const cdkJson = readJsonFile(cdkJsonFile) as { context?: { zeroImpact?: unknown } } | null;
  const layers: ConfigLayer[] = [
    { source: `${cdkJsonFile} (context zeroImpact)`, value: cdkJson?.context?.zeroImpact },
  ];
  let source = layers[0]?.source ?? 'cdk.json';
  let prefix = 'zeroImpact';
  if (path !== undefined) {
    const file = readJsonFile(path);
    if (file === null || typeof file !== 'object' || Array.isArray(file)) {
      throw new UsageError(`${path}: (root): expected a configuration object`);
    }
    layers.push({ source: path, value: file });
    source = path;
    prefix = '';
  }
  if (Object.keys(overrides).length > 0) {
    layers.push({
      source: Object.keys(overrides)
        .map((k) => `--${k}`)
        .join(', '),
      value: overrides,
    });
  }
  try {
    return { config: parseConfig(mergeConfigLayers(layers), source, prefix), layers };
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(`${source}: ${error.problems.join('; ')}`);
    throw error;
  }
}

/** The layered configuration (see loadConfigLayers). */
export function loadConfig(path: string | undefined, overrides: Partial<Pick<Config, 'mode'>> = {}): Config {
  return loadConfigLayers(path, overrides).config;
}

/** Runs a command body, turning UsageError into one line on stderr and exit code 2. */
export async function guarded(body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`zero-impact ${error.message}`);
      return 2;
    }
    throw error;
  }
}
