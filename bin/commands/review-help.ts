/**
 * The help of the reviewing commands (issue 12: report, history, export, coverage, audit): summary, exit codes and
 * examples. Kept apart from the commands so that `zero-impact --help` lists them without loading them (they load
 * the audit-store reader, the SDK clients and, for `audit`, the engine's handlers).
 */
import type { CommandHelp } from './common';

const EXIT_CODES =
  'Exit codes: 0 ok, 1 a --fail-on outcome occurred, 2 bad usage or input (a stack, table, run or folder that\n' +
  'does not exist), 3 AWS could not be read (no credentials, access denied, throttled, unreachable).';

const EXIT_CODES_NO_FAIL_ON =
  'Exit codes: 0 ok, 2 bad usage or input (a stack, table or folder that does not exist), 3 AWS could not be read\n' +
  '(no credentials, access denied, throttled, unreachable).';

export const REPORT_HELP: CommandHelp = {
  name: 'report',
  summary: 'the estate as of a run: outcomes, skips by reason and by team, warnings, what changed',
  details: [
    'Reads a deployed stack (the usual AWS credentials; the audit table from the stack outputs, or --audit-table)',
    'or a local run (--local DIR). Without --run, the latest run.',
    EXIT_CODES,
  ].join('\n'),
  examples: [
    'zero-impact report --local /tmp/zi',
    'zero-impact report --stack ZeroImpactProtect --format html --out report.html',
    'zero-impact report --run RUN_ID --format csv --out run.csv',
    'zero-impact report --latest --fail-on FAILED,ROLLED_BACK   # a CI gate',
  ],
};

export const HISTORY_HELP: CommandHelp = {
  name: 'history',
  summary: 'every decision for one function, newest first, with the before/after of each change',
  details: [
    'Names and sizes of what changed, never values; the run, the mode and the reasons of each decision.',
    EXIT_CODES_NO_FAIL_ON,
  ].join('\n'),
  examples: [
    'zero-impact history --local /tmp/zi --function orders-api',
    'zero-impact history --function orders-api --format json --region eu-west-1',
  ],
};

export const EXPORT_HELP: CommandHelp = {
  name: 'export',
  summary: 'the audit items of a period as compliance evidence (CSV or JSON Lines, streamed)',
  details: [
    'Items decided from --since (inclusive) to --until (exclusive; default now), read and written page by page.',
    'On a deployed stack this scans the audit table (every item is read, 1 MB a page).',
    EXIT_CODES_NO_FAIL_ON,
  ].join('\n'),
  examples: [
    'zero-impact export --local /tmp/zi --since 2026-01-01 --format csv',
    'zero-impact export --since 2026-01-01 --until 2026-04-01 --format jsonl --out q1.jsonl',
  ],
};

export const COVERAGE_HELP: CommandHelp = {
  name: 'coverage',
  summary: 'true coverage: aliases, the versions they serve and whether those carry the Defender',
  details: [
    'Updating a function changes only $LATEST: an alias on a published version keeps serving unprotected code',
    'until the owner publishes again. Read-only, paced like the job; it never publishes a version or moves an',
    "alias. The Defender layer is the configuration's (--config merged over cdk.json).",
    EXIT_CODES_NO_FAIL_ON,
  ].join('\n'),
  examples: [
    'zero-impact coverage --local /tmp/zi',
    'zero-impact coverage --config my-config.json --region eu-west-1 --format json',
    'zero-impact coverage --function orders-api --format csv --out coverage.csv',
  ],
};

export const AUDIT_HELP: CommandHelp = {
  name: 'audit',
  summary: 'read-only assessment of the live account from a laptop, printed as `report` prints a run',
  details: [
    "The deployed job's facts gathering, funnel and pacing, with the caller's credentials; it never writes to AWS",
    'and lists the facts it could not read with those permissions (those functions show FACTS_MISSING).',
    EXIT_CODES,
  ].join('\n'),
  examples: [
    'zero-impact audit --config my-config.json --region eu-west-1',
    'zero-impact audit --function orders-api --format json',
    'zero-impact audit --format html --out audit.html --fail-on FAILED',
  ],
};
