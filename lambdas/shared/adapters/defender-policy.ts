/**
 * Each function's own TW_POLICY value (issue 10), for the protect Lambda only: from the cache (policy-cache.ts) while
 * it is younger than `policySource.cacheHours`, else from the Prisma Cloud Console (prisma-console.ts), then cached.
 *
 * Per container (module scope, like the SDK clients): the Console credentials are read from Secrets Manager once
 * (a failed read is not remembered: the next invocation reads again), and one PrismaConsoleClient serves every
 * invocation, so its token is reused until it expires and its rate limiter paces every call of the container. The
 * configured `ratePerSecond` is shared by the run's protect workers (the parent's protect map runs `workers`
 * functions at once), as the Lambda control-plane share is (domain/batching.ts).
 *
 * Failures never throw and never carry a value, a key, the token or an answer's body: the result names the Console's
 * failure kind and HTTP status (ConsoleError), or the AWS error name of the secret read (e.g.
 * ResourceNotFoundException, AccessDeniedException, DecryptionFailure: Secrets Manager API Reference,
 * GetSecretValue, Errors; AccessDeniedException is a Common Error, HTTP 400).
 */
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { PolicySource } from '../domain/config';
import { logger } from '../observability';
import { readCachedPolicy, putCachedPolicy, type CacheLookup } from './policy-cache';
import { ConsoleError, PrismaConsoleClient, type ConsoleCredentials } from './prisma-console';
import { systemClock, type Clock } from './rate-limiter';

/** The SDK's standard retries (bounded); the secret is read once per container. */
const secretsManager = new SecretsManagerClient({ retryMode: 'standard', maxAttempts: 3 });

/** What the protect Lambda needs of a Console client (PrismaConsoleClient; a test may pass its own). */
export interface PolicyClient {
  encodePolicy(functionName: string, region: string): Promise<string>;
}

export type PolicyResult =
  | {
      ok: true;
      value: string;
      /** `cache`: an unexpired cached value; `console`: fetched now (the cache missed, expired or was unreadable). */
      source: 'cache' | 'console';
      /** What the cache said before a fetch. */
      cache: CacheLookup['status'];
    }
  | {
      ok: false;
      /** One sentence for the audit record: the Console's failure kind and HTTP status, or the AWS error name. */
      detail: string;
      /** `console` (ConsoleError), `secret` (Secrets Manager), or `client` (anything else). */
      cause: 'console' | 'secret' | 'client';
    };

/** Counts of this container's values, for the local run's summary (and the logs). */
export interface PolicyStats {
  fetched: number;
  cached: number;
  failed: number;
}

const stats: PolicyStats = { fetched: 0, cached: 0, failed: 0 };

export function policyStats(): PolicyStats {
  return { ...stats };
}

/** The secret's content is not `{ "accessKey", "secretKey" }` (no part of it is ever repeated). */
export class CredentialsSecretError extends Error {
  constructor(
    message: string,
    /** The AWS error name, or `MalformedSecret`. */
    readonly awsError: string,
  ) {
    super(message);
    this.name = 'CredentialsSecretError';
  }
}

/**
 * Reads `{ accessKey, secretKey }` from the secret (its name, or ARN). Throws CredentialsSecretError naming the AWS
 * error (ResourceNotFoundException, AccessDeniedException, DecryptionFailure, InvalidRequestException for a secret
 * scheduled for deletion, ...) or `MalformedSecret`; the message never contains any part of the secret.
 */
export async function readConsoleCredentials(secretName: string): Promise<ConsoleCredentials> {
  let secretString: string | undefined;
  try {
    const answer = await secretsManager.send(new GetSecretValueCommand({ SecretId: secretName }));
    secretString = answer.SecretString;
  } catch (error) {
    const name = error instanceof Error ? error.name : 'Error';
    throw new CredentialsSecretError(`the credentials secret ${secretName} cannot be read (${name})`, name);
  }
  let parsed: unknown;
  try {
    parsed = secretString === undefined ? undefined : JSON.parse(secretString);
  } catch {
    parsed = undefined;
  }
  const record = typeof parsed === 'object' && parsed !== null ? (parsed as Record<string, unknown>) : {};
  const { accessKey, secretKey } = record;
  if (
    typeof accessKey !== 'string' ||
    accessKey.length === 0 ||
    typeof secretKey !== 'string' ||
    secretKey.length === 0
  ) {
    throw new CredentialsSecretError(
      `the credentials secret ${secretName} does not hold a JSON SecretString { "accessKey", "secretKey" }`,
      'MalformedSecret',
    );
  }
  return { accessKey, secretKey };
}

let credentials: { secret: string; value: Promise<ConsoleCredentials> } | undefined;
let client: { key: string; client: PolicyClient } | undefined;

/** The container's credentials (read once; a failure is forgotten so the next call reads again). */
async function containerCredentials(secretName: string): Promise<ConsoleCredentials> {
  if (credentials?.secret !== secretName) {
    const value = readConsoleCredentials(secretName);
    credentials = { secret: secretName, value };
    value.catch(() => {
      if (credentials?.value === value) credentials = undefined;
    });
  }
  return credentials.value;
}

export interface PolicyContext {
  source: PolicySource;
  stateTableName: string;
  /** How many protect workers share `source.ratePerSecond` (the request's `workers`). */
  workers: number;
  /** @default systemClock */
  clock?: Clock;
  /** Builds the Console client (tests). @default a PrismaConsoleClient on the container's credentials */
  makeClient?: (options: { console: string; ratePerSecond: number; clock: Clock; secretName: string }) => PolicyClient;
}

function containerClient(context: PolicyContext, clock: Clock): PolicyClient {
  const { source } = context;
  const ratePerSecond = source.ratePerSecond / Math.max(1, context.workers);
  const key = `${source.console}\0${source.credentialsSecret}\0${ratePerSecond}`;
  if (client?.key !== key) {
    const made =
      context.makeClient?.({ console: source.console, ratePerSecond, clock, secretName: source.credentialsSecret }) ??
      new PrismaConsoleClient({
        console: source.console,
        credentials: () => containerCredentials(source.credentialsSecret),
        ratePerSecond,
        clock,
        ...consoleTimeout(),
      });
    client = { key, client: made };
  }
  return client.client;
}

/**
 * The per-request Console timeout, from CONSOLE_TIMEOUT_MS when set (the local run sets a short one so that a
 * scenario's "timeout" fault costs a second of real time, not the default 10 s per attempt); else the client's.
 */
function consoleTimeout(): { timeoutMs?: number } {
  const value = Number(process.env['CONSOLE_TIMEOUT_MS']);
  return Number.isInteger(value) && value > 0 ? { timeoutMs: value } : {};
}

/** The audit sentence of a Console failure: kind and HTTP status, never the body. */
export function consoleFailureDetail(error: ConsoleError): string {
  const status =
    error.status !== undefined
      ? `HTTP ${error.status}`
      : `no HTTP answer${error.code !== undefined ? `: ${error.code}` : ''}`;
  return `the Prisma Cloud Console's ${error.operation} call failed: ${error.kind} (${status})`;
}

/**
 * The function's own TW_POLICY: cached, or fetched from the Console and cached. Never throws; the value is returned
 * in memory only.
 */
export async function defenderPolicy(
  functionName: string,
  region: string,
  context: PolicyContext,
): Promise<PolicyResult> {
  const clock = context.clock ?? systemClock;
  const maxAgeMs = context.source.cacheHours * 60 * 60 * 1000;
  const lookup = await readCachedPolicy(context.stateTableName, functionName, region, maxAgeMs, clock.now());
  if (lookup.status === 'hit') {
    stats.cached += 1;
    return { ok: true, value: lookup.value, source: 'cache', cache: 'hit' };
  }
  if (lookup.status === 'unreadable') {
    logger.warn('TW_POLICY cache unreadable; asking the Console', { functionName, error: lookup.error });
  }
  let value: string;
  try {
    // The secret first, so that its AWS error is named as such (the client calls the same memoized read).
    await containerCredentials(context.source.credentialsSecret);
    value = await containerClient(context, clock).encodePolicy(functionName, region);
  } catch (error) {
    stats.failed += 1;
    if (error instanceof CredentialsSecretError) return { ok: false, cause: 'secret', detail: error.message };
    if (error instanceof ConsoleError) {
      // The keys were refused: the customer may have rotated them in the secret. Forget this container's copy and
      // its client, so the next function reads the secret again instead of failing until the container is recycled.
      if (error.operation === 'authenticate' && (error.kind === 'unauthorized' || error.kind === 'forbidden')) {
        credentials = undefined;
        client = undefined;
      }
      return { ok: false, cause: 'console', detail: consoleFailureDetail(error) };
    }
    const name = error instanceof Error ? error.name : 'Error';
    return { ok: false, cause: 'client', detail: `the Prisma Cloud Console client failed (${name})` };
  }
  if (typeof value !== 'string' || value.length === 0) {
    stats.failed += 1;
    return {
      ok: false,
      cause: 'console',
      detail: "the Prisma Cloud Console's encode call answered no value (malformed)",
    };
  }
  stats.fetched += 1;
  try {
    const stored = await putCachedPolicy(context.stateTableName, {
      functionName,
      region,
      value,
      fetchedAt: clock.now(),
      maxAgeMs,
    });
    if (stored === 'too-large') logger.warn('TW_POLICY larger than KMS Encrypt takes: not cached', { functionName });
  } catch (error) {
    logger.warn('TW_POLICY not cached; the next run asks the Console again', {
      functionName,
      error: error instanceof Error ? error.name : 'Error',
    });
  }
  return { ok: true, value, source: 'console', cache: lookup.status };
}

/** Forgets the container's credentials, client and counts (tests; the local run between estates). */
export function resetDefenderPolicy(): void {
  credentials = undefined;
  client = undefined;
  stats.fetched = 0;
  stats.cached = 0;
  stats.failed = 0;
}
