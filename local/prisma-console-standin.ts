/**
 * A stand-in Prisma Cloud Compute Console for the local run and the tests: a real HTTP server on 127.0.0.1 (a random
 * port) answering the three endpoints the engine calls, with the Console's shapes and errors. It is NOT Palo Alto's
 * software and its values protect nothing: every TW_POLICY it hands out says "FAKE" inside, and its layer ZIP holds
 * placeholder files.
 *
 * Endpoints (under the URL's path, like a SaaS console `https://<region>.cloud.twistlock.com/<customer-id>`; `v1` or
 * a versioned `v34.03` path segment; Prisma Cloud Compute API reference, pan.dev):
 * - `POST /api/v1/authenticate` `{ username, password }` → `{ token }`: an HS256 JWT with `iat`/`exp` on the stand-in's
 *   clock (`tokenLifetimeSeconds`, @default 1800: "By default, access tokens are valid for 30 minutes",
 *   https://pan.dev/compute/api/30-03/post-authenticate/). Wrong keys: 401.
 * - `POST /api/v1/policies/runtime/serverless/encode` `{ consoleAddr, function, provider: "aws", region }` with a
 *   Bearer token → `{ data }`: a distinct deterministic value per function and region (`policyFor`), base64 of a
 *   JSON document padded with HMAC bytes from a fixed local seed (about 900 characters, the size of real values).
 *   `consoleAddr` must be a host name (not a URL): Palo Alto's examples pass the host.
 * - `POST /api/v1/defenders/serverless/bundle` `{ provider: "aws", runtime }` → `twistlock_defender_layer.zip`
 *   ("Generate Serverless Bundle for Defender", https://pan.dev/compute/api/post-defenders-serverless-bundle/). The
 *   Console serves layers for Node.js and Python only ("Prisma Cloud supports Lambda layers for Node.js and Python
 *   only", Serverless Defender as a Lambda layer, docs.paloaltonetworks.com); another runtime is 400.
 *   The ZIP (see `bundleFiles`) holds what each start method needs from /opt: the handler method's module
 *   (`python/twistlock/` on the Python path /opt/python; `nodejs/node_modules/twistlock/` on NODE_PATH) and, for the
 *   exec-wrapper method, `twistlock/twistlock_wrapper`.
 *
 * Errors, as the Console answers them (`{ "err": "..." }`): absent, bad or expired token 401; a body that is not the
 * documented JSON 400; a fault from the `fault` hook: any status (429 with `Retry-After`), a delay before answering,
 * or a malformed 200. Delays are real time: they stand for the network, and the client's timeout is real time too.
 *
 * Secrets: `requests` records the operation, status and function/region/runtime only (never a token, key or value).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as delay } from 'node:timers/promises';
import { strToU8, zipSync, type Zippable } from 'fflate';
import { layerRuntimeFamily } from '../lambdas/shared/adapters/prisma-console';
import { systemClock, type Clock } from '../lambdas/shared/adapters/rate-limiter';

export type StandInOperation =
  'prisma:Authenticate' | 'prisma:EncodeServerlessPolicy' | 'prisma:DownloadServerlessBundle';

/** What a request is about, as the fault hook sees it. */
export interface StandInRequest {
  functionName?: string;
  region?: string;
  runtime?: string;
}

/**
 * What the fault hook does to a request: answer with this status (`retryAfterSeconds` adds Retry-After), wait
 * `delayMs` (real time) and then answer normally, answer 200 with a malformed body, or nothing (undefined).
 */
export type StandInFault =
  | { status: number; retryAfterSeconds?: number }
  | { delayMs: number }
  | { malformed: true }
  | { data: string }
  | undefined;

export interface StandInOptions {
  /** The clock of token issue and expiry. @default systemClock */
  clock?: Clock;
  /** @default 1800 */
  tokenLifetimeSeconds?: number;
  /** Called for every well-formed request of the three operations, before it is answered. */
  fault?: (operation: StandInOperation, request: StandInRequest) => StandInFault;
  /** The access key the Console accepts. @default STANDIN_ACCESS_KEY */
  accessKey?: string;
  /** The secret key the Console accepts. @default STANDIN_SECRET_KEY */
  secretKey?: string;
}

export interface StandInRecord {
  operation: string;
  status: number;
  functionName?: string;
  region?: string;
  runtime?: string;
  /** The stand-in's clock when the answer was sent. */
  at: number;
}

export interface StandInConsole {
  /** The Console's base URL, with a customer-id path like a SaaS console: `http://127.0.0.1:PORT/standin-000001`. */
  url: string;
  close(): Promise<void>;
  /** Every request answered, in order. */
  requests: StandInRecord[];
  /** The TW_POLICY the encode endpoint returns for this function and region. */
  policyFor(functionName: string, region: string): string;
  /** Ends every session: tokens issued so far are refused with 401 (e.g. the platform token inside expired). */
  expireTokens(): void;
  /**
   * The customer changed the runtime policy in the Console: from now on every function's encoded value is a new
   * one (what the Console does when its rules change).
   */
  rotatePolicies(): void;
}

/** Obviously fake keys (the stand-in's defaults). */
export const STANDIN_ACCESS_KEY = 'standin-access-key-00000000';
export const STANDIN_SECRET_KEY = 'standin-secret-key-not-a-real-secret';
/** The customer-id path segment of the stand-in's URL. */
export const STANDIN_CUSTOMER_PATH = '/standin-000001';

/** The fixed local seed of the stand-in's values and token signatures (public, in the repository, fake). */
const SEED = 'zero-impact-standin-console-seed-v1';
const MAX_BODY_BYTES = 64 * 1024;
const ROUTE =
  /^\/api\/v(?:1|\d+\.\d+)\/(authenticate|policies\/runtime\/serverless\/encode|defenders\/serverless\/bundle)$/;
const OPERATIONS: Record<string, StandInOperation> = {
  authenticate: 'prisma:Authenticate',
  'policies/runtime/serverless/encode': 'prisma:EncodeServerlessPolicy',
  'defenders/serverless/bundle': 'prisma:DownloadServerlessBundle',
};
const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;

/** The TW_POLICY the stand-in gives a function in a region: deterministic, distinct, base64, visibly fake. */
export function standInPolicy(functionName: string, region: string, generation = 0): string {
  const mac = (label: string): Buffer =>
    createHmac('sha256', SEED)
      .update(`${label}\u0000${functionName}\u0000${region}${generation > 0 ? `\u0000${generation}` : ''}`)
      .digest();
  const rules = Buffer.concat(Array.from({ length: 16 }, (_, i) => mac(`rules-${i}`))).toString('base64');
  const document = {
    fake: 'zero-impact stand-in Console value, not a Prisma Cloud policy',
    function: functionName,
    region,
    provider: 'aws',
    id: mac('id').toString('hex').slice(0, 24),
    rules,
  };
  return Buffer.from(JSON.stringify(document), 'utf8').toString('base64');
}

/** The runtime family a bundle serves, or undefined when the Console has no layer for it (the client's rule). */
export const bundleFamily = layerRuntimeFamily;

/** The files of the stand-in's layer ZIP for a runtime family (paths relative to /opt). */
export function bundleFiles(family: 'python' | 'nodejs'): Record<string, string> {
  const notice = 'Stand-in Prisma Cloud Serverless Defender layer (zero-impact local run). Not Palo Alto software.\n';
  const wrapper = '#!/bin/bash\n# stand-in Defender exec wrapper: starts the runtime unchanged\nexec "$@"\n';
  const files: Record<string, string> = {
    'twistlock/README.txt': notice,
    'twistlock/twistlock_wrapper': wrapper,
  };
  if (family === 'python') {
    files['python/twistlock/__init__.py'] =
      '"""Stand-in Defender: handler method (Handler: twistlock.handler, original in ORIGINAL_HANDLER)."""\n' +
      'import importlib, os\n\n\ndef handler(event, context):\n' +
      '    module, _, name = os.environ["ORIGINAL_HANDLER"].rpartition(".")\n' +
      '    return getattr(importlib.import_module(module), name)(event, context)\n';
  } else {
    files['nodejs/node_modules/twistlock/package.json'] =
      '{ "name": "twistlock", "version": "0.0.0-standin", "main": "index.js" }\n';
    files['nodejs/node_modules/twistlock/index.js'] =
      '// Stand-in Defender: handler method (Handler: twistlock.handler, original in ORIGINAL_HANDLER).\n' +
      "exports.handler = async (event, context) => {\n  const [file, name] = process.env.ORIGINAL_HANDLER.split('.');\n" +
      '  return require(`${process.env.LAMBDA_TASK_ROOT}/${file}`)[name](event, context);\n};\n';
  }
  return files;
}

/** The stand-in's layer ZIP (deterministic bytes for a family). */
export function standInBundle(family: 'python' | 'nodejs'): Uint8Array {
  const entries: Zippable = {};
  for (const [path, content] of Object.entries(bundleFiles(family))) entries[path] = strToU8(content);
  return zipSync(entries, { level: 6, mtime: new Date('2024-01-01T00:00:00Z') });
}

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString('base64url');
}

function sign(data: string): string {
  return createHmac('sha256', SEED).update(data).digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function readBody(request: IncomingMessage): Promise<Buffer | 'too-large'> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    request.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    request.on('end', () => resolve(size > MAX_BODY_BYTES ? 'too-large' : Buffer.concat(chunks)));
    request.on('error', reject);
  });
}

function parseObject(body: Buffer): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(body.toString('utf8')) as unknown;
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A string field, or the one string of a one-element array (the API reference's curl example sends arrays). */
function text(body: Record<string, unknown>, key: string): string | undefined {
  const value = body[key];
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && value.length === 1 && typeof value[0] === 'string') return value[0];
  return undefined;
}

/** Starts the stand-in Console. See the module comment. */
export async function startStandInConsole(options: StandInOptions = {}): Promise<StandInConsole> {
  const clock = options.clock ?? systemClock;
  const lifetime = options.tokenLifetimeSeconds ?? 1800;
  const accessKey = options.accessKey ?? STANDIN_ACCESS_KEY;
  const secretKey = options.secretKey ?? STANDIN_SECRET_KEY;
  const requests: StandInRecord[] = [];
  const aborts = new Set<AbortController>();
  let issued = 0;
  /** Tokens with a serial at or below this are refused. */
  let revokedThrough = 0;
  /** Bumped by rotatePolicies: the Console's runtime policy changed, every encoded value with it. */
  let generation = 0;
  const bundles = new Map<string, Uint8Array>();

  const issueToken = (): string => {
    issued += 1;
    const iat = Math.floor(clock.now() / 1000);
    const header = base64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
    const payload = base64url(
      JSON.stringify({ sub: 'standin-service-account', iat, exp: iat + lifetime, jti: issued }),
    );
    return `${header}.${payload}.${sign(`${header}.${payload}`)}`;
  };

  const tokenValid = (authorization: string | undefined): boolean => {
    const match = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(authorization ?? '');
    if (match === null) return false;
    const [, header, payload, signature] = match as unknown as [string, string, string, string];
    if (!safeEqual(signature, sign(`${header}.${payload}`))) return false;
    const claims = parseObject(Buffer.from(payload, 'base64url'));
    const exp = claims?.['exp'];
    const jti = claims?.['jti'];
    if (typeof exp !== 'number' || typeof jti !== 'number') return false;
    return exp * 1000 > clock.now() && jti > revokedThrough;
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const record: Omit<StandInRecord, 'status' | 'at'> = { operation: 'unknown' };
    const send = (status: number, body: string | Uint8Array, headers: Record<string, string> = {}): void => {
      requests.push({ ...record, status, at: clock.now() });
      const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
      response.writeHead(status, {
        'Content-Type': typeof body === 'string' ? 'application/json' : 'application/zip',
        'Content-Length': String(bytes.length),
        ...headers,
      });
      response.end(bytes);
    };
    const fail = (status: number, err: string, headers: Record<string, string> = {}): void =>
      send(status, JSON.stringify({ err }), headers);

    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    const path = url.pathname.startsWith(`${STANDIN_CUSTOMER_PATH}/`)
      ? url.pathname.slice(STANDIN_CUSTOMER_PATH.length)
      : undefined;
    const route = path === undefined ? null : ROUTE.exec(path);
    if (route === null) return fail(404, 'not found');
    const operation = OPERATIONS[route[1] as string] as StandInOperation;
    record.operation = operation;
    if (request.method !== 'POST') return fail(405, 'method not allowed');
    const raw = await readBody(request);
    if (raw === 'too-large') return fail(413, 'request body too large');
    const body = parseObject(raw);
    if (body === undefined) return fail(400, 'invalid request body');

    const about: StandInRequest = {};
    if (operation === 'prisma:EncodeServerlessPolicy') {
      const fn = text(body, 'function');
      const region = text(body, 'region');
      if (fn !== undefined) about.functionName = fn;
      if (region !== undefined) about.region = region;
    }
    if (operation === 'prisma:DownloadServerlessBundle') {
      const runtime = text(body, 'runtime');
      if (runtime !== undefined) about.runtime = runtime;
    }
    Object.assign(record, about);

    const fault = options.fault?.(operation, about);
    if (fault !== undefined && 'delayMs' in fault) {
      const abort = new AbortController();
      aborts.add(abort);
      try {
        await delay(Math.max(0, fault.delayMs), undefined, { signal: abort.signal });
      } catch {
        return; // the stand-in is closing
      } finally {
        aborts.delete(abort);
      }
    } else if (fault !== undefined && 'status' in fault) {
      const headers: Record<string, string> =
        fault.retryAfterSeconds !== undefined ? { 'Retry-After': String(fault.retryAfterSeconds) } : {};
      const message =
        fault.status === 429 ? 'too many requests' : fault.status === 401 ? 'Unauthorized' : 'injected fault';
      return fail(fault.status, message, headers);
    } else if (fault !== undefined && 'malformed' in fault) {
      return send(200, operation === 'prisma:DownloadServerlessBundle' ? 'not a zip' : '{"data": "trunc');
    } else if (fault !== undefined && 'data' in fault) {
      return send(200, JSON.stringify({ data: fault.data })); // a well-formed answer with a value of the test's choosing
    }

    switch (operation) {
      case 'prisma:Authenticate': {
        const username = body['username'];
        const password = body['password'];
        if (typeof username !== 'string' || typeof password !== 'string') return fail(400, 'invalid request body');
        if (!safeEqual(username, accessKey) || !safeEqual(password, secretKey)) return fail(401, 'Unauthorized');
        return send(200, JSON.stringify({ token: issueToken() }));
      }
      case 'prisma:EncodeServerlessPolicy': {
        if (!tokenValid(request.headers.authorization)) return fail(401, 'Unauthorized');
        const consoleAddr = text(body, 'consoleAddr');
        const provider = text(body, 'provider');
        const fn = about.functionName;
        if (consoleAddr === undefined || consoleAddr.length === 0 || /[/:]/.test(consoleAddr)) {
          return fail(400, 'consoleAddr must be the Console host name');
        }
        if (provider !== 'aws') return fail(400, 'unsupported provider');
        if (fn === undefined || !FUNCTION_NAME.test(fn)) return fail(400, 'invalid function name');
        return send(200, JSON.stringify({ data: standInPolicy(fn, about.region ?? '', generation) }));
      }
      case 'prisma:DownloadServerlessBundle': {
        if (!tokenValid(request.headers.authorization)) return fail(401, 'Unauthorized');
        if (text(body, 'provider') !== 'aws') return fail(400, 'unsupported provider');
        const family = about.runtime === undefined ? undefined : bundleFamily(about.runtime);
        if (family === undefined) return fail(400, 'no serverless layer bundle for this runtime');
        const zip = bundles.get(family) ?? standInBundle(family);
        bundles.set(family, zip);
        return send(200, zip, { 'Content-Disposition': 'attachment; filename="twistlock_defender_layer.zip"' });
      }
    }
  };

  const server = createServer((request, response) => {
    handle(request, response).catch(() => {
      if (!response.headersSent) {
        response.writeHead(500, { 'Content-Type': 'application/json' });
        response.end(JSON.stringify({ err: 'internal error' }));
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}${STANDIN_CUSTOMER_PATH}`,
    requests,
    policyFor: (functionName: string, region: string) => standInPolicy(functionName, region, generation),
    rotatePolicies: () => {
      generation += 1;
    },
    expireTokens: () => {
      revokedThrough = issued;
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        for (const abort of aborts) abort.abort();
        server.close((error) => (error ? reject(error) : resolve()));
        server.closeAllConnections();
      }),
  };
}
