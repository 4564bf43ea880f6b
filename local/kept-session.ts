/**
 * `local-run --keep DIR` (issue 13 item 3): the simulated account and the local tables outlive the command. DIR holds
 * `session.json`: the estate as the runs left it (each function's configuration as it is now), the configuration the
 * runs used, every item of the audit and state tables, and the virtual clock. `local-run --keep DIR` on a DIR that
 * has one resumes it; `rollback --local DIR` and `include --local DIR` act on it and keep it again.
 *
 * What survives: function configurations (layers, handler, variables; a RevisionId is derived from the name again),
 * tags, metrics and the rest of each function's facts as the estate gave them, table items, the clock. The
 * simulated KMS keys are derived from account, key ARN and seed, so MACs recorded before still verify.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import type { Config } from '../lib/config';
import type { Estate, EstateFunction, EstateVersion } from './estate';
import type { LocalSession } from './local-runner';
import type { CfnTemplate } from './asl-local';
import { systemClock } from '../lambdas/shared/adapters/rate-limiter';

export const KEPT_FILE = 'session.json';
const FORMAT = 'zero-impact-local-session/1';

export interface KeptSession {
  format: typeof FORMAT;
  estate: Estate;
  config: Config;
  /** The stack template the session ran (a resumed session does not synthesize it again). */
  template?: CfnTemplate;
  /** The virtual clock when the session was kept (ms since the epoch). */
  clock: number;
  tables: { audit: Array<Record<string, unknown>>; state: Array<Record<string, unknown>> };
}

/** A DIR that holds no kept session, or one this version cannot read: one line, never the file's content. */
export class KeptSessionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeptSessionError';
  }
}

export function hasKeptSession(dir: string): boolean {
  return existsSync(join(dir, KEPT_FILE));
}

export function readKeptSession(dir: string): KeptSession {
  const path = join(dir, KEPT_FILE);
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8')) as unknown;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new KeptSessionError(
      code !== undefined
        ? `${dir}: no kept local session (${code}); create one with \`zero-impact local-run --keep ${dir}\``
        : `${path}: not valid JSON`,
    );
  }
  const kept = value as Partial<KeptSession> | null;
  if (kept === null || typeof kept !== 'object' || kept.format !== FORMAT) {
    throw new KeptSessionError(`${path}: not a session kept by this version of local-run (format ${FORMAT})`);
  }
  return kept as KeptSession;
}

function documentClient(session: LocalSession): DynamoDBDocumentClient {
  const endpoint = session.environment['AWS_ENDPOINT_URL_DYNAMODB'];
  return DynamoDBDocumentClient.from(
    new DynamoDBClient({ ...(endpoint !== undefined ? { endpoint } : {}), region: session.environment['AWS_REGION'] }),
  );
}

/** Loads a kept session's tables into a fresh session and moves its virtual clock past the kept one. */
export async function restoreKeptSession(session: LocalSession, kept: KeptSession): Promise<void> {
  const client = documentClient(session);
  const tables: Array<[string | undefined, Array<Record<string, unknown>>]> = [
    [session.environment['AUDIT_TABLE_NAME'], kept.tables.audit],
    [session.environment['STATE_TABLE_NAME'], kept.tables.state],
  ];
  try {
    for (const [table, items] of tables) {
      for (const item of items) await client.send(new PutCommand({ TableName: table, Item: item }));
    }
  } finally {
    client.destroy();
  }
  const behind = kept.clock - systemClock.now();
  if (behind > 0) session.advanceClock(behind + 1000);
}

/**
 * A published version as the account holds it, with its layers, variables and handler made explicit: an estate's
 * version without them inherits them from $LATEST as the estate gave it, and $LATEST is kept as the runs changed it
 * (a version keeps its own: Lambda Developer Guide, "Function versions"). Without this, a resumed session, and
 * `coverage --local DIR`, would show unprotected versions carrying the Defender that protection put on $LATEST.
 */
function publishedAsHeld(session: LocalSession, fn: EstateFunction, version: EstateVersion): EstateVersion {
  const held = session.account.versionConfiguration(String(fn.configuration.FunctionName), version.version);
  if (held === undefined) return version;
  return {
    ...version,
    layers: (held.Layers ?? []).flatMap((l) => (typeof l.Arn === 'string' ? [l.Arn] : [])),
    variables: { ...(held.Environment?.Variables ?? {}) },
    configuration: {
      ...(version.configuration ?? {}),
      ...(held.Handler !== undefined ? { Handler: held.Handler } : {}),
    },
  };
}

/** Writes DIR/session.json (through a temporary file, so an interruption leaves the previous one whole). */
export async function keepSession(dir: string, session: LocalSession, estate: Estate, config: Config): Promise<void> {
  const now = new Map(session.account.functionConfigurations().map((c) => [c.FunctionName, c]));
  const functions = estate.functions
    .filter((f) => now.has(f.configuration.FunctionName))
    .map((f) => ({
      ...f,
      configuration: now.get(f.configuration.FunctionName) ?? f.configuration,
      ...(f.versions !== undefined ? { versions: f.versions.map((v) => publishedAsHeld(session, f, v)) } : {}),
    }));
  const kept: KeptSession = {
    format: FORMAT,
    estate: { ...estate, functions: functions as Estate['functions'] },
    config,
    ...(session.template !== undefined ? { template: session.template } : {}),
    clock: systemClock.now(),
    tables: {
      audit: await session.dynamoScan('AUDIT_TABLE_NAME'),
      state: await session.dynamoScan('STATE_TABLE_NAME'),
    },
  };
  mkdirSync(dir, { recursive: true });
  const path = join(dir, KEPT_FILE);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(kept)}\n`);
  renameSync(`${path}.tmp`, path);
}

/**
 * Runs `body` on the account and tables kept in `dir` (with the session's table names, MAC key and region in
 * process.env), then keeps them again; the session is always stopped.
 */
export async function withKeptSession(
  dir: string,
  body: (environment: Record<string, string>) => Promise<number>,
): Promise<number> {
  const kept = readKeptSession(dir);
  const { LocalSession } = await import('./local-runner');
  const session = await LocalSession.start({
    estate: kept.estate,
    config: kept.config,
    ...(kept.template !== undefined ? { template: kept.template } : {}),
    virtualTime: true,
    captureLogs: false,
  });
  try {
    await restoreKeptSession(session, kept);
    const code = await body(session.environment);
    await keepSession(dir, session, kept.estate, kept.config);
    return code;
  } finally {
    await session.stop();
  }
}
