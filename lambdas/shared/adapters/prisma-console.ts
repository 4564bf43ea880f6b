/**
 * The Prisma Cloud Compute Console client: the three calls the engine needs, over HTTPS (Node's global fetch, no new
 * dependency), rate-limited, retried, with the token reused until it expires. Never logs, and never puts a body, the
 * token, the keys or a TW_POLICY value into an error: a ConsoleError names the operation and the HTTP status (or the
 * network error code) only.
 *
 * The API, as Palo Alto documents it (Prisma Cloud Compute API reference, pan.dev):
 * - `POST {console}/api/v1/authenticate` `{ "username": ACCESS_KEY, "password": SECRET_KEY }` → `{ "token" }`
 *   ("Get User Authentication Access Token", https://pan.dev/compute/api/30-03/post-authenticate/). SaaS: "The
 *   Prisma Cloud Compute token is valid for 60 minutes ... Internally the token contains a Prisma Cloud platform
 *   token, which is only valid for 10 minutes ... We recommend that you renew the Compute token every 5 minutes"
 *   (https://pan.dev/prisma-cloud/api/cwpp/access-api-saas). So a token is reused until its JWT `exp` minus a margin,
 *   and never longer than MAX_TOKEN_REUSE_MS; a token whose `exp` cannot be read gets that same conservative lifetime.
 * - `POST {console}/api/v1/policies/runtime/serverless/encode` `{ consoleAddr, function, provider, region }` with
 *   `Authorization: Bearer TOKEN` → `{ "data": TW_POLICY }`. `consoleAddr` is the Console's host name, not a URL
 *   (Palo Alto's serverless examples send `"consoleAddr": "northamerica-northeast1.cloud.twistlock.com"` and derive
 *   it as `new URL(consolePath).hostname`; the request model EncodeServerlessRuleOpts has ConsoleAddr, Function,
 *   Region, Proxy, UpdateIntervalMs).
 * - `POST {console}/api/v1/defenders/serverless/bundle` `{ "provider": "aws", "runtime": RUNTIME }` → the ZIP
 *   ("Generate Serverless Bundle for Defender", https://pan.dev/compute/api/post-defenders-serverless-bundle/;
 *   `provider` is a common.CloudProvider string, `runtime` a shared.LambdaRuntimeType such as `python3.12`).
 * The `{console}` base keeps its path: SaaS consoles are `https://<region>.cloud.twistlock.com/<customer-id>`
 * ("How to evaluate <CONSOLE>", https://pan.dev/compute/api/prisma-cloud-compute-api/).
 *
 * Failure handling: 429, 5xx, 408, a network error or a timeout is retried (at most `maxAttempts` attempts per call)
 * after an exponential backoff with jitter, or after the answer's Retry-After (capped at MAX_RETRY_AFTER_MS); every
 * attempt takes a token from the client's one rate limiter. A 401 on encode or bundle re-authenticates once and
 * repeats the call; a second 401 is `unauthorized`. A 401 on authenticate (wrong keys) is `unauthorized` at once,
 * 403 `forbidden`. Any other status, and a 2xx whose body is not the documented shape, is `malformed`.
 *
 * Time: backoff and rate limiting wait on the injectable clock (`systemClock` by default). The per-request timeout is
 * a transport deadline in real time (`AbortSignal.timeout`, as the layer check's download does): the network does not
 * run on the engine's virtual clock.
 */
import { retry } from '../retry';
import { systemClock, TokenBucket, type Clock } from './rate-limiter';

export interface ConsoleCredentials {
  accessKey: string;
  secretKey: string;
}

export interface PrismaConsoleOptions {
  /** Base URL, e.g. https://eu-west-1.cloud.twistlock.com/eu-123456 (path kept). */
  console: string;
  /** Called at most once per client, lazily, before the first authenticate. */
  credentials: () => Promise<ConsoleCredentials>;
  /** Console calls per second (token bucket, shared by every call of this client). @default 5 */
  ratePerSecond?: number;
  /** @default systemClock */
  clock?: Clock;
  /** Attempts per call on 429 / 5xx / network error / timeout, with exponential backoff + jitter, honouring Retry-After (capped). @default 4 */
  maxAttempts?: number;
  /** Per-request timeout. @default 10_000 */
  timeoutMs?: number;
  /** Source of the backoff jitter, in [0, 1). @default Math.random */
  random?: () => number;
}

/** The most a TW_POLICY value can be: Lambda's limit on all of a function's variables together. */
export const MAX_POLICY_BYTES = 4096;
/** What an encoded policy is made of: printable ASCII without spaces (base64 and its URL-safe form, and JSON). */
const POLICY_SHAPE = /^[\x21-\x7e]+$/;

export type ConsoleFailureKind =
  'unreachable' | 'timeout' | 'unauthorized' | 'forbidden' | 'throttled' | 'server' | 'malformed';

export type ConsoleOperation = 'authenticate' | 'encode' | 'bundle';

export const DEFAULT_RATE_PER_SECOND = 5;
export const DEFAULT_MAX_ATTEMPTS = 4;
export const DEFAULT_TIMEOUT_MS = 10_000;
/** A token is dropped this long before its `exp`. */
export const TOKEN_EXPIRY_MARGIN_MS = 60_000;
/** The longest a token is reused, and the lifetime of one whose `exp` is unreadable (Palo Alto: renew every 5 min). */
export const MAX_TOKEN_REUSE_MS = 5 * 60_000;
/** First backoff; doubled per attempt up to MAX_BACKOFF_MS, then jittered to 50-100 %. */
export const BASE_BACKOFF_MS = 250;
export const MAX_BACKOFF_MS = 8_000;
/** A Retry-After longer than this is waited only this long (a run must not stall on one answer). */
export const MAX_RETRY_AFTER_MS = 30_000;
/** The largest bundle accepted (Lambda's limit on a function and its layers, unzipped). */
export const MAX_BUNDLE_BYTES = 250 * 1024 * 1024;
/** The largest JSON answer accepted (a TW_POLICY must fit Lambda's 4 KB of variables anyway). */
export const MAX_JSON_BYTES = 1024 * 1024;

const PATHS: Record<ConsoleOperation, string> = {
  authenticate: '/api/v1/authenticate',
  encode: '/api/v1/policies/runtime/serverless/encode',
  bundle: '/api/v1/defenders/serverless/bundle',
};

/** Message names the operation and the HTTP status (or network error code) only; never the body, token, keys. */
export class ConsoleError extends Error {
  readonly kind: ConsoleFailureKind;
  readonly status?: number;
  readonly operation: ConsoleOperation;
  /** The network error code (`ECONNREFUSED`, `ENOTFOUND` ...), for `unreachable`. */
  readonly code?: string;

  constructor(
    operation: ConsoleOperation,
    kind: ConsoleFailureKind,
    details: { status?: number; code?: string; attempts?: number; why?: string } = {},
  ) {
    const cause =
      details.status !== undefined ? `HTTP ${details.status}` : details.code !== undefined ? details.code : undefined;
    const parts = [
      cause,
      details.why,
      details.attempts !== undefined && details.attempts > 1 ? `after ${details.attempts} attempts` : undefined,
    ].filter((p): p is string => p !== undefined);
    super(`Prisma Cloud Console ${operation}: ${kind}${parts.length > 0 ? ` (${parts.join(', ')})` : ''}`);
    this.name = 'ConsoleError';
    this.kind = kind;
    this.operation = operation;
    if (details.status !== undefined) this.status = details.status;
    if (details.code !== undefined) this.code = details.code;
  }
}

/** One HTTP answer, read in full. */
interface Answer {
  status: number;
  headers: Headers;
  body: Uint8Array;
}

interface Token {
  value: string;
  /** Clock time after which it is not used any more. */
  usableUntil: number;
}

/**
 * The runtime family a Console layer bundle serves, or undefined when the Console has no layer for the runtime:
 * "Prisma Cloud supports Lambda layers for Node.js and Python only" (Serverless Defender as a Lambda layer,
 * https://docs.paloaltonetworks.com/prisma/prisma-cloud/21-04/prisma-cloud-compute-edition-admin/install/install_defender/install_serverless_defender_layer);
 * the bundle API's runtime values include the families themselves (`python`, `nodejs`).
 */
export function layerRuntimeFamily(runtime: string): 'python' | 'nodejs' | undefined {
  if (/^python(3(\.\d+)?)?$/.test(runtime)) return 'python';
  if (/^nodejs(\d+\.x)?$/.test(runtime)) return 'nodejs';
  return undefined;
}

/** The host name the encode API's `consoleAddr` takes (no scheme, no port, no path). */
export function consoleAddress(consoleUrl: string): string {
  return new URL(consoleUrl).hostname;
}

/** The `exp` claim of a JWT, in epoch seconds, or undefined when it cannot be read. Never verifies anything. */
export function jwtExpiry(token: string): number | undefined {
  const payload = token.split('.')[1];
  if (payload === undefined || payload.length === 0) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as unknown;
    if (claims === null || typeof claims !== 'object') return undefined;
    const exp = (claims as Record<string, unknown>)['exp'];
    return typeof exp === 'number' && Number.isFinite(exp) ? exp : undefined;
  } catch {
    return undefined;
  }
}

/** Retry-After as milliseconds from `now`: delta-seconds or an HTTP date (RFC 9110, 10.2.3); undefined if absent/bad. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** Transport failures, read structurally (errors from undici are not `instanceof Error` across jest realms). */
function transportFailure(error: unknown): { kind: 'timeout' | 'unreachable'; code?: string } {
  const e = error as { name?: unknown; code?: unknown; cause?: { code?: unknown; name?: unknown } } | undefined;
  const name = typeof e?.name === 'string' ? e.name : '';
  const causeName = typeof e?.cause?.name === 'string' ? e.cause.name : '';
  if (name === 'TimeoutError' || name === 'AbortError' || causeName === 'TimeoutError') return { kind: 'timeout' };
  const code = typeof e?.cause?.code === 'string' ? e.cause.code : typeof e?.code === 'string' ? e.code : undefined;
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'ETIMEDOUT') {
    return { kind: 'timeout', code };
  }
  return code !== undefined && /^[A-Z][A-Z0-9_]{1,40}$/.test(code)
    ? { kind: 'unreachable', code }
    : { kind: 'unreachable' };
}

function retryable(status: number): boolean {
  return status === 429 || status === 408 || status >= 500;
}

function parseJsonObject(body: Uint8Array): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(Buffer.from(body).toString('utf8')) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A ZIP starts with a local file header (or, empty, with the end of central directory record). */
function looksLikeZip(body: Uint8Array): boolean {
  return body.length >= 22 && body[0] === 0x50 && body[1] === 0x4b && (body[2] === 0x03 || body[2] === 0x05);
}

/** See the module comment. */
export class PrismaConsoleClient {
  readonly stats = { authentications: 0, encodes: 0, bundles: 0, retries: 0 };

  private readonly base: URL;
  private readonly consoleAddr: string;
  private readonly credentialsSource: () => Promise<ConsoleCredentials>;
  private credentialsPromise: Promise<ConsoleCredentials> | undefined;
  private readonly clock: Clock;
  private readonly limiter: TokenBucket;
  private readonly maxAttempts: number;
  private readonly timeoutMs: number;
  private readonly random: () => number;
  private token: Token | undefined;
  private pendingToken: Promise<Token> | undefined;

  constructor(options: PrismaConsoleOptions) {
    let base: URL;
    try {
      base = new URL(options.console);
    } catch {
      throw new RangeError('the Prisma Cloud Console address is not a URL');
    }
    if (base.protocol !== 'https:' && base.protocol !== 'http:') {
      throw new RangeError('the Prisma Cloud Console address must be an https URL');
    }
    if (base.username !== '' || base.password !== '' || base.search !== '' || base.hash !== '') {
      throw new RangeError('the Prisma Cloud Console address must not carry credentials, a query or a fragment');
    }
    this.base = base;
    this.consoleAddr = base.hostname;
    this.credentialsSource = options.credentials;
    this.clock = options.clock ?? systemClock;
    this.limiter = new TokenBucket({
      ratePerSecond: options.ratePerSecond ?? DEFAULT_RATE_PER_SECOND,
      burst: 1,
      clock: this.clock,
    });
    this.maxAttempts = Math.max(1, Math.floor(options.maxAttempts ?? DEFAULT_MAX_ATTEMPTS));
    this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    this.random = options.random ?? Math.random;
  }

  /** POST /api/v1/policies/runtime/serverless/encode {consoleAddr, function, provider:'aws', region} -> data */
  async encodePolicy(functionName: string, region: string): Promise<string> {
    const answer = await this.authorized('encode', {
      consoleAddr: this.consoleAddr,
      function: functionName,
      provider: 'aws',
      region,
    });
    const data = parseJsonObject(answer.body)?.['data'];
    if (typeof data !== 'string' || data.length === 0) {
      throw new ConsoleError('encode', 'malformed', { status: answer.status, why: 'no "data" string in the answer' });
    }
    // An answer that cannot be a TW_POLICY value is the Console's fault, never the function's: over Lambda's 4 KB
    // for all variables it would be blamed on the owner as ENV_QUOTA, and a control character or a space is not
    // part of the encoded (base64-like) policy.
    if (Buffer.byteLength(data, 'utf8') > MAX_POLICY_BYTES || !POLICY_SHAPE.test(data)) {
      throw new ConsoleError('encode', 'malformed', { status: answer.status, why: 'the "data" is not a policy value' });
    }
    this.stats.encodes += 1;
    return data;
  }

  /** POST /api/v1/defenders/serverless/bundle {provider:'aws', runtime} -> ZIP bytes */
  async downloadBundle(runtime: string): Promise<Uint8Array> {
    const answer = await this.authorized('bundle', { provider: 'aws', runtime });
    if (!looksLikeZip(answer.body)) {
      throw new ConsoleError('bundle', 'malformed', { status: answer.status, why: 'the answer is not a ZIP' });
    }
    this.stats.bundles += 1;
    return answer.body;
  }

  /** A call that needs the token: re-authenticates once on a 401. */
  private async authorized(operation: 'encode' | 'bundle', body: Record<string, unknown>): Promise<Answer> {
    let token = await this.currentToken();
    let answer = await this.send(operation, body, token.value);
    if (answer.status === 401) {
      this.forget(token);
      token = await this.currentToken();
      answer = await this.send(operation, body, token.value);
      if (answer.status === 401) {
        this.forget(token);
        throw new ConsoleError(operation, 'unauthorized', { status: 401 });
      }
    }
    return this.accepted(operation, answer);
  }

  /** A 2xx answer, or the ConsoleError its status means. */
  private accepted(operation: ConsoleOperation, answer: Answer): Answer {
    const { status } = answer;
    if (status >= 200 && status < 300) return answer;
    if (status === 401) throw new ConsoleError(operation, 'unauthorized', { status });
    if (status === 403) throw new ConsoleError(operation, 'forbidden', { status });
    throw new ConsoleError(operation, 'malformed', { status, why: 'unexpected status' });
  }

  private forget(token: Token): void {
    if (this.token === token) this.token = undefined;
  }

  /** The token in use, or a new one; concurrent callers share one authenticate. */
  private async currentToken(): Promise<Token> {
    const current = this.token;
    if (current !== undefined && this.clock.now() < current.usableUntil) return current;
    if (this.pendingToken === undefined) {
      this.pendingToken = this.authenticate().finally(() => {
        this.pendingToken = undefined;
      });
    }
    return this.pendingToken;
  }

  private async authenticate(): Promise<Token> {
    this.credentialsPromise ??= this.credentialsSource();
    const { accessKey, secretKey } = await this.credentialsPromise;
    const answer = this.accepted(
      'authenticate',
      await this.send('authenticate', { username: accessKey, password: secretKey }, undefined),
    );
    const value = parseJsonObject(answer.body)?.['token'];
    if (typeof value !== 'string' || value.length === 0) {
      throw new ConsoleError('authenticate', 'malformed', { status: answer.status, why: 'no "token" in the answer' });
    }
    const obtained = this.clock.now();
    const exp = jwtExpiry(value);
    const byExp = exp === undefined ? Number.POSITIVE_INFINITY : exp * 1000 - TOKEN_EXPIRY_MARGIN_MS;
    const token: Token = { value, usableUntil: Math.min(byExp, obtained + MAX_TOKEN_REUSE_MS) };
    this.stats.authentications += 1;
    this.token = token;
    return token;
  }

  /**
   * One call with its retries: returns the first answer that is not retryable (any status), or throws the
   * ConsoleError of the last retryable failure once the attempts are used up.
   */
  private async send(
    operation: ConsoleOperation,
    body: Record<string, unknown>,
    token: string | undefined,
  ): Promise<Answer> {
    // The failures worth another attempt (a ConsoleError thrown by `request` itself is final).
    const transient = new WeakSet<ConsoleError>();
    let retryAfter: number | undefined;
    return retry(
      async (attempt) => {
        if (attempt > 1) this.stats.retries += 1;
        await this.limiter.take();
        retryAfter = undefined;
        let failure: ConsoleError;
        try {
          const answer = await this.request(operation, body, token);
          if (!retryable(answer.status)) return answer;
          const kind = answer.status === 429 ? 'throttled' : answer.status === 408 ? 'timeout' : 'server';
          failure = new ConsoleError(operation, kind, { status: answer.status, attempts: attempt });
          retryAfter = retryAfterMs(answer.headers.get('retry-after'), this.clock.now());
        } catch (error) {
          if (error instanceof ConsoleError) throw error;
          const { kind, code } = transportFailure(error);
          failure = new ConsoleError(operation, kind, { ...(code !== undefined ? { code } : {}), attempts: attempt });
        }
        transient.add(failure);
        throw failure;
      },
      {
        attempts: this.maxAttempts,
        retryable: (error) => error instanceof ConsoleError && transient.has(error),
        delayMs: (attempt) => this.backoff(attempt, retryAfter),
        sleep: (ms) => this.clock.sleep(ms),
      },
    );
  }

  /** Retry-After (capped) when the Console gave one, else exponential backoff with jitter (50-100 %). */
  private backoff(attempt: number, retryAfter: number | undefined): number {
    if (retryAfter !== undefined) return Math.min(retryAfter, MAX_RETRY_AFTER_MS);
    const exponential = Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (attempt - 1));
    return Math.round(exponential * (0.5 + 0.5 * this.random()));
  }

  /** One HTTP exchange, read in full within the timeout. */
  private async request(
    operation: ConsoleOperation,
    body: Record<string, unknown>,
    token: string | undefined,
  ): Promise<Answer> {
    const url = new URL(this.base.toString());
    url.pathname = `${this.base.pathname.replace(/\/+$/, '')}${PATHS[operation]}`;
    const headers: Record<string, string> = {
      'Content-Type': 'application/json',
      Accept: operation === 'bundle' ? 'application/zip, application/octet-stream' : 'application/json',
    };
    if (token !== undefined) headers['Authorization'] = `Bearer ${token}`;
    const signal = AbortSignal.timeout(this.timeoutMs);
    const response = await fetch(url, {
      method: 'POST',
      headers,
      body: JSON.stringify(body),
      signal,
      // A redirect would send the token elsewhere (or drop it): answered as the 3xx it is, then `malformed`.
      redirect: 'manual',
    });
    const limit = operation === 'bundle' ? MAX_BUNDLE_BYTES : MAX_JSON_BYTES;
    const declared = Number(response.headers.get('content-length') ?? '0');
    if (declared > limit) {
      await response.body?.cancel().catch(() => undefined);
      throw new ConsoleError(operation, 'malformed', { status: response.status, why: 'the answer is too large' });
    }
    const bytes = new Uint8Array(await response.arrayBuffer());
    if (bytes.length > limit) {
      throw new ConsoleError(operation, 'malformed', { status: response.status, why: 'the answer is too large' });
    }
    return { status: response.status, headers: response.headers, body: bytes };
  }
}
