/**
 * Helpers every command shares: argument parsing, reading JSON files, loading the configuration.
 * Expected problems are thrown as UsageError and printed as one line with exit code 2 — never a stack trace.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, parseConfig, type Config } from '../../lib/config';

/** A problem with the user's input: printed as one line, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The repository root (where cdk.json and the example estate live). */
export const PROJECT_ROOT = join(__dirname, '..', '..');

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(
  command: string,
  argv: string[],
  options: T,
) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: false }).values;
  } catch (error) {
    // Node's own errors are not `instanceof Error` under jest's VM realm; read the message structurally.
    const message = (error as { message?: unknown }).message;
    throw new UsageError(`${command}: ${typeof message === 'string' ? message : String(error)}`);
  }
}

/** Reads and parses a JSON file; a missing file or bad JSON is a UsageError naming the file. */
export function readJsonFile(path: string): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
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

/**
 * The configuration from `--config FILE`, or else the worked example in cdk.json (context key `zeroImpact`).
 * @throws UsageError naming the file and every bad key
 */
export function loadConfig(path: string | undefined, overrides: Partial<Pick<Config, 'mode'>> = {}): Config {
  let input: unknown;
  let source: string;
  let prefix = '';
  if (path !== undefined) {
    input = readJsonFile(path);
    source = path;
  } else {
    const cdkJsonPath = join(PROJECT_ROOT, 'cdk.json');
    const cdkJson = readJsonFile(cdkJsonPath) as { context?: { zeroImpact?: unknown } };
    input = cdkJson.context?.zeroImpact;
    source = `${cdkJsonPath} (context)`;
    prefix = 'zeroImpact';
  }
  if (input !== null && typeof input === 'object' && !Array.isArray(input)) {
    input = { ...(input as Record<string, unknown>), ...overrides };
  }
  try {
    return parseConfig(input, source, prefix);
  } catch (error) {
    if (error instanceof ConfigError) throw new UsageError(`${source}: ${error.problems.join('; ')}`);
    throw error;
  }
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
