/**
 * What the reviewing commands (report, history, export, coverage, audit) share: their data-source flags, output to
 * a file or stdout, the progress bar (cli-progress, on stderr, only when stdout and stderr are terminals and not
 * --quiet), and AWS errors turned into one line that says what to do.
 *
 * Exit codes: 0 ok; 1 a `--fail-on` outcome matched; 2 bad usage or input (a missing stack, table or folder is
 * input); 3 AWS could not be read (no credentials, access denied, throttled after retries, unreachable).
 */
import { writeFileSync } from 'node:fs';
import { SingleBar } from 'cli-progress';
import { OUTCOMES } from '../../lambdas/shared/domain/types';
import { Option, type Command } from 'commander';
import { parseCommand, UsageError } from '../commands/common';
import { STACK_NAME as DEFAULT_STACK_NAME } from '../stack-name';
import type { SourceOptions } from './source';

export const EXIT = { ok: 0, failOn: 1, usage: 2, aws: 3 } as const;

/** The flags that find the data (report, history, export), parsed by commander. */
export interface SourceFlags {
  local?: string;
  stack?: string;
  auditTable?: string;
  stateMachine?: string;
  region?: string;
  quiet?: boolean;
}

/**
 * Adds the data-source flags to a reviewing command: `--local DIR`, `--stack NAME` (env ZERO_IMPACT_STACK),
 * `--audit-table T` (env AUDIT_TABLE_NAME), `--state-machine ARN` (report's run list), `--region R`, `--quiet`.
 */
export function sourceOptions(command: Command, options: { stateMachine: string }): Command {
  return command
    .option(
      '--local <dir>',
      'read a local run instead of AWS: the folder `local-run --out DIR` wrote, or one `local-run --keep DIR` kept',
    )
    .addOption(
      new Option(
        '--stack <name>',
        `find the audit table (and state machine) in this stack's outputs (default: ${DEFAULT_STACK_NAME})`,
      ).env('ZERO_IMPACT_STACK'),
    )
    .addOption(
      new Option('--audit-table <table>', "the stack's audit table (instead of the stack's output)").env(
        'AUDIT_TABLE_NAME',
      ),
    )
    .option('--state-machine <arn>', options.stateMachine)
    .option('--region <region>', 'AWS region (default: the environment variable AWS_REGION)')
    .option('--quiet', 'no progress bar (it shows only when stdout and stderr are terminals)');
}

/**
 * The source the flags name. A value that came from the environment (ZERO_IMPACT_STACK, AUDIT_TABLE_NAME) gives
 * way to `--local DIR`: only flags typed together are refused together.
 */
export function sourceFrom(command: Command, flags: SourceFlags): SourceOptions {
  const typed = (key: 'stack' | 'auditTable'): string | undefined =>
    flags.local !== undefined && command.getOptionValueSource(key) === 'env' ? undefined : flags[key];
  const stack = typed('stack');
  const auditTable = typed('auditTable');
  return {
    ...(flags.local !== undefined ? { local: flags.local } : {}),
    ...(stack !== undefined ? { stack } : {}),
    ...(auditTable !== undefined ? { auditTable } : {}),
    ...(flags.stateMachine !== undefined ? { stateMachineArn: flags.stateMachine } : {}),
  };
}

/** What the command reads, for the one line of an AWS error ("audit table T", "stack S"). */
export function sourceWhat(source: SourceOptions): string {
  return source.auditTable ?? `stack ${source.stack ?? DEFAULT_STACK_NAME}`;
}

/** A problem reading AWS, already phrased as one line. */
export class AwsReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AwsReadError';
  }
}

const REGION = /^[a-z]{2}(-[a-z]+)+-\d+$/;

export function applyRegion(command: string, region: string | undefined): void {
  if (region === undefined) return;
  if (!REGION.test(region)) throw new UsageError(`${command}: --region: "${region}" is not an AWS region`);
  process.env['AWS_REGION'] = region;
}

export function parseFormat<T extends string>(
  command: string,
  value: string | undefined,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new UsageError(`${command}: --format: expected ${allowed.join(', ')}; got "${value}"`);
}

/** `--fail-on OUTCOME[,OUTCOME]`: each must be an outcome. */
export function parseFailOn(command: string, value: string | undefined): string[] {
  if (value === undefined) return [];
  const outcomes = value
    .split(',')
    .map((o) => o.trim().toUpperCase())
    .filter((o) => o.length > 0);
  const unknown = outcomes.filter((o) => !(OUTCOMES as readonly string[]).includes(o));
  if (outcomes.length === 0 || unknown.length > 0) {
    throw new UsageError(`${command}: --fail-on: expected outcomes from ${OUTCOMES.join(', ')}; got "${value}"`);
  }
  return outcomes;
}

/** Writes the output to `--out FILE`, or to stdout. */
export function emit(text: string, out: string | undefined): void {
  if (out === undefined) {
    process.stdout.write(text);
    return;
  }
  try {
    writeFileSync(out, text);
  } catch (error) {
    throw new UsageError(`--out: cannot write ${out} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
}

/** The names AWS (and the SDK) give to a failure, mapped to what the operator should do. */
export function awsLine(error: unknown, what: string): string {
  const name = error instanceof Error ? error.name : '';
  const message = error instanceof Error ? error.message : String(error);
  const region = process.env['AWS_REGION'] ?? process.env['AWS_DEFAULT_REGION'] ?? 'the default region';
  if (name === 'CredentialsProviderError' || /credential/i.test(message)) {
    return `no AWS credentials for ${what}: set AWS_PROFILE, run "aws sso login", or export AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY`;
  }
  if (/AccessDenied|UnauthorizedOperation|AuthorizationError|NotAuthorized/i.test(name)) {
    return `access denied for ${what} (${name}): ask for read permission on it (see docs/iam.md, "People running the commands")`;
  }
  if (/Throttl|TooManyRequests|ProvisionedThroughputExceeded|RequestLimitExceeded/i.test(name)) {
    return `AWS throttled ${what} after retries (${name}): run the command again later`;
  }
  if (name === 'ExpiredTokenException' || name === 'ExpiredToken') {
    return `the AWS session for ${what} has expired: log in again (e.g. "aws sso login")`;
  }
  if (/ENOTFOUND|ECONNREFUSED|ETIMEDOUT|EAI_AGAIN/.test(message)) {
    return `AWS is unreachable for ${what} in ${region}: check the network and --region`;
  }
  return `${what} failed (${name.length > 0 ? name : 'Error'}): check the credentials, --region and the names given`;
}

/** True for AWS's "this does not exist" answers (a wrong name or region: an input problem). */
function notFound(error: unknown): boolean {
  if (!(error instanceof Error)) return false;
  return (
    error.name === 'ResourceNotFoundException' ||
    error.name === 'StateMachineDoesNotExist' ||
    (error.name === 'ValidationError' && /does not exist/.test(error.message))
  );
}

/**
 * Runs a reviewing command body: UsageError → one line, exit 2; an AWS error → one line that says what to do
 * (exit 2 when something named does not exist, else 3); never a stack trace.
 */
export async function reviewGuard(command: string, what: () => string, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`zero-impact ${error.message.startsWith(`${command}:`) ? '' : `${command}: `}${error.message}`);
      return EXIT.usage;
    }
    if (error instanceof AwsReadError) {
      console.error(`zero-impact ${command}: ${error.message}`);
      return EXIT.aws;
    }
    const region = process.env['AWS_REGION'] ?? 'the default region';
    if (notFound(error)) {
      console.error(`zero-impact ${command}: ${what()} was not found in ${region}: check the name and --region`);
      return EXIT.usage;
    }
    if (error instanceof Error && error.name !== 'Error' && error.name !== 'TypeError') {
      console.error(`zero-impact ${command}: ${awsLine(error, what())}`);
      return EXIT.aws;
    }
    throw error;
  }
}

/** What an AWS error line names, set by the command's action once the flags are known. */
export interface ReviewTarget {
  what: string;
}

/**
 * The whole `run(argv)` of a reviewing command: commander parses argv (help, unknown flags with the nearest one
 * suggested, a missing value: one line, exit 2) and runs the action inside reviewGuard. `what` names what the
 * command reads once the flags are known (for the one line of an AWS error).
 */
export function runReview(
  name: string,
  command: Command,
  argv: readonly string[],
  what: () => string,
): Promise<number> {
  return reviewGuard(name, what, () => parseCommand(name, command, argv));
}

export interface Progress {
  increment(by?: number): void;
  setTotal(total: number): void;
  stop(): void;
}

const SILENT: Progress = { increment: () => undefined, setTotal: () => undefined, stop: () => undefined };

/** A progress bar on stderr, or nothing when stdout/stderr is not a terminal or with --quiet. */
export function progressBar(label: string, total: number, quiet: boolean): Progress {
  if (quiet || process.stdout.isTTY !== true || process.stderr.isTTY !== true) return SILENT;
  const bar = new SingleBar({
    format: `${label} [{bar}] {value}/{total} {eta_formatted}`,
    stream: process.stderr,
    hideCursor: true,
    clearOnComplete: true,
  });
  bar.start(total, 0);
  return {
    increment: (by = 1) => bar.increment(by),
    setTotal: (t) => bar.setTotal(t),
    stop: () => bar.stop(),
  };
}
