/**
 * The Console client against the stand-in Console over real HTTP on 127.0.0.1: every failure kind, token reuse and
 * renewal, retries and Retry-After and the rate limit on virtual time, and no secret in any error.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { unzipSync } from 'fflate';
import {
  ConsoleError,
  jwtExpiry,
  MAX_RETRY_AFTER_MS,
  MAX_TOKEN_REUSE_MS,
  PrismaConsoleClient,
  retryAfterMs,
  type PrismaConsoleOptions,
} from '../../lambdas/shared/adapters/prisma-console';
import type { Clock } from '../../lambdas/shared/adapters/rate-limiter';
import {
  startStandInConsole,
  STANDIN_ACCESS_KEY,
  STANDIN_SECRET_KEY,
  type StandInConsole,
  type StandInFault,
  type StandInOptions,
} from '../../local/prisma-console-standin';

const START = Date.parse('2025-01-06T09:00:00.000Z');

/** Virtual time: sleep moves the clock at once and records the wait. */
function virtualClock(): Clock & { sleeps: number[]; advance(ms: number): void } {
  let now = START;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => now,
    sleep: async (ms: number) => {
      sleeps.push(ms);
      now += ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

const consoles: StandInConsole[] = [];
afterEach(async () => {
  await Promise.all(consoles.splice(0).map((c) => c.close()));
});

async function standIn(options: StandInOptions = {}): Promise<StandInConsole> {
  const c = await startStandInConsole(options);
  consoles.push(c);
  return c;
}

function client(
  url: string,
  clock: Clock,
  options: Partial<PrismaConsoleOptions> = {},
): { client: PrismaConsoleClient; credentialCalls: () => number } {
  let calls = 0;
  const c = new PrismaConsoleClient({
    console: url,
    clock,
    random: () => 0.5,
    credentials: async () => {
      calls += 1;
      return { accessKey: STANDIN_ACCESS_KEY, secretKey: STANDIN_SECRET_KEY };
    },
    ...options,
  });
  return { client: c, credentialCalls: () => calls };
}

async function failure(promise: Promise<unknown>): Promise<ConsoleError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof ConsoleError) return error;
    throw error;
  }
  throw new Error('expected a ConsoleError');
}

/** No token, key or value in the message (nor in any own property but the documented ones). */
function expectNoSecret(error: ConsoleError, secrets: string[]): void {
  const text = `${error.message} ${JSON.stringify(error)} ${String(error.stack)}`;
  for (const secret of secrets) expect(text).not.toContain(secret);
}

describe('PrismaConsoleClient against the stand-in Console', () => {
  it('encodes a distinct value per function and region and sends the documented body', async () => {
    const clock = virtualClock();
    const c = await standIn({ clock });
    const { client: api } = client(c.url, clock);

    const a = await api.encodePolicy('orders-api', 'eu-west-1');
    const b = await api.encodePolicy('orders-api', 'us-east-1');
    const d = await api.encodePolicy('billing', 'eu-west-1');

    expect(a).toBe(c.policyFor('orders-api', 'eu-west-1'));
    expect(b).toBe(c.policyFor('orders-api', 'us-east-1'));
    expect(d).toBe(c.policyFor('billing', 'eu-west-1'));
    expect(new Set([a, b, d]).size).toBe(3);
    expect(a).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(c.requests.map((r) => r.operation)).toEqual([
      'prisma:Authenticate',
      'prisma:EncodeServerlessPolicy',
      'prisma:EncodeServerlessPolicy',
      'prisma:EncodeServerlessPolicy',
    ]);
    expect(c.requests.slice(1).map((r) => [r.functionName, r.region])).toEqual([
      ['orders-api', 'eu-west-1'],
      ['orders-api', 'us-east-1'],
      ['billing', 'eu-west-1'],
    ]);
  });

  it('sends consoleAddr as the host name only and keeps the URL path', async () => {
    const seen: Array<{ path: string; body: Record<string, unknown>; auth?: string }> = [];
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        seen.push({
          path: request.url ?? '',
          body,
          ...(request.headers.authorization !== undefined ? { auth: request.headers.authorization } : {}),
        });
        response.writeHead(200, { 'Content-Type': 'application/json' });
        response.end(
          JSON.stringify(request.url?.endsWith('/authenticate') ? { token: 'opaque' } : { data: 'dmFsdWU=' }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const { client: api } = client(`http://127.0.0.1:${port}/eu-123456/`, virtualClock());
      await expect(api.encodePolicy('fn-1', 'eu-west-1')).resolves.toBe('dmFsdWU=');
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(seen).toEqual([
      {
        path: '/eu-123456/api/v1/authenticate',
        body: { username: STANDIN_ACCESS_KEY, password: STANDIN_SECRET_KEY },
      },
      {
        path: '/eu-123456/api/v1/policies/runtime/serverless/encode',
        body: { consoleAddr: '127.0.0.1', function: 'fn-1', provider: 'aws', region: 'eu-west-1' },
        auth: 'Bearer opaque',
      },
    ]);
  });

  it('reuses the token: N encodes, 1 authenticate, credentials read once', async () => {
    const clock = virtualClock();
    const c = await standIn({ clock, tokenLifetimeSeconds: 3600 });
    const { client: api, credentialCalls } = client(c.url, clock, { ratePerSecond: 50 });

    await Promise.all(Array.from({ length: 8 }, (_, i) => api.encodePolicy(`fn-${i}`, 'eu-west-1')));
    for (let i = 8; i < 12; i++) await api.encodePolicy(`fn-${i}`, 'eu-west-1');

    expect(api.stats).toEqual({ authentications: 1, encodes: 12, bundles: 0, retries: 0 });
    expect(c.requests.filter((r) => r.operation === 'prisma:Authenticate')).toHaveLength(1);
    expect(credentialCalls()).toBe(1);
  });

  it('renews the token before it expires (exp minus a margin, at most 5 minutes of reuse)', async () => {
    const clock = virtualClock();
    const c = await standIn({ clock, tokenLifetimeSeconds: 120 });
    const { client: api, credentialCalls } = client(c.url, clock);

    await api.encodePolicy('fn-a', 'eu-west-1');
    clock.advance(30_000); // 90 s left: still used
    await api.encodePolicy('fn-b', 'eu-west-1');
    clock.advance(31_000); // 59 s left: inside the 60 s margin, renewed
    await api.encodePolicy('fn-c', 'eu-west-1');

    expect(api.stats.authentications).toBe(2);
    expect(c.requests.filter((r) => r.status === 401)).toHaveLength(0);

    const longLived = await standIn({ clock, tokenLifetimeSeconds: 3600 });
    const { client: second } = client(longLived.url, clock);
    await second.encodePolicy('fn-a', 'eu-west-1');
    clock.advance(MAX_TOKEN_REUSE_MS);
    await second.encodePolicy('fn-b', 'eu-west-1');
    expect(second.stats.authentications).toBe(2);
    expect(credentialCalls()).toBe(1);
  });

  it('re-authenticates once when the Console refuses a token it considers expired', async () => {
    const clock = virtualClock();
    const c = await standIn({ clock });
    const { client: api, credentialCalls } = client(c.url, clock);

    await api.encodePolicy('fn-a', 'eu-west-1');
    c.expireTokens();
    await expect(api.encodePolicy('fn-b', 'eu-west-1')).resolves.toBe(c.policyFor('fn-b', 'eu-west-1'));

    expect(c.requests.map((r) => `${r.operation} ${r.status}`)).toEqual([
      'prisma:Authenticate 200',
      'prisma:EncodeServerlessPolicy 200',
      'prisma:EncodeServerlessPolicy 401',
      'prisma:Authenticate 200',
      'prisma:EncodeServerlessPolicy 200',
    ]);
    expect(api.stats.authentications).toBe(2);
    expect(credentialCalls()).toBe(1);
  });

  it('fails unauthorized when the fresh token is refused too', async () => {
    const clock = virtualClock();
    const c = await standIn({
      clock,
      fault: (op) => (op === 'prisma:EncodeServerlessPolicy' ? { status: 401 } : undefined),
    });
    const { client: api } = client(c.url, clock);

    const error = await failure(api.encodePolicy('fn-a', 'eu-west-1'));

    expect(error).toMatchObject({ kind: 'unauthorized', status: 401, operation: 'encode' });
    expect(c.requests.map((r) => `${r.operation} ${r.status}`)).toEqual([
      'prisma:Authenticate 200',
      'prisma:EncodeServerlessPolicy 401',
      'prisma:Authenticate 200',
      'prisma:EncodeServerlessPolicy 401',
    ]);
  });

  it('wrong keys: authenticate 401 → unauthorized at once, no retry, no key in the error', async () => {
    const clock = virtualClock();
    const c = await standIn({ clock });
    const { client: api } = client(c.url, clock, {
      credentials: async () => ({ accessKey: 'AKIA-wrong-key-123', secretKey: 'wrong-secret-value-456' }),
    });

    const error = await failure(api.encodePolicy('fn-a', 'eu-west-1'));

    expect(error).toMatchObject({ kind: 'unauthorized', status: 401, operation: 'authenticate' });
    expect(error.message).toBe('Prisma Cloud Console authenticate: unauthorized (HTTP 401)');
    expect(c.requests).toHaveLength(1);
    expectNoSecret(error, ['AKIA-wrong-key-123', 'wrong-secret-value-456', 'Unauthorized']);
  });

  it('403 → forbidden, not retried', async () => {
    const clock = virtualClock();
    const c = await standIn({
      clock,
      fault: (op) => (op === 'prisma:EncodeServerlessPolicy' ? { status: 403 } : undefined),
    });
    const { client: api } = client(c.url, clock);

    const error = await failure(api.encodePolicy('fn-a', 'eu-west-1'));

    expect(error).toMatchObject({ kind: 'forbidden', status: 403, operation: 'encode' });
    expect(c.requests).toHaveLength(2);
    expect(api.stats.retries).toBe(0);
  });

  it('429 with Retry-After: waits what the Console asks on virtual time (capped), then succeeds', async () => {
    const clock = virtualClock();
    let throttled = 0;
    const c = await standIn({
      clock,
      fault: (op) => {
        if (op !== 'prisma:EncodeServerlessPolicy' || throttled >= 2) return undefined;
        throttled += 1;
        return { status: 429, retryAfterSeconds: throttled === 1 ? 3 : 600 };
      },
    });
    const { client: api } = client(c.url, clock);

    await expect(api.encodePolicy('fn-a', 'eu-west-1')).resolves.toBe(c.policyFor('fn-a', 'eu-west-1'));

    expect(clock.sleeps.filter((ms) => ms >= 1000)).toEqual([3000, MAX_RETRY_AFTER_MS]);
    expect(api.stats.retries).toBe(2);
    expect(c.requests.map((r) => r.status)).toEqual([200, 429, 429, 200]);
  });

  it('429 on every attempt → throttled after maxAttempts', async () => {
    const clock = virtualClock();
    const c = await standIn({
      clock,
      fault: (op) => (op === 'prisma:EncodeServerlessPolicy' ? { status: 429 } : undefined),
    });
    const { client: api } = client(c.url, clock, { maxAttempts: 3 });

    const error = await failure(api.encodePolicy('fn-a', 'eu-west-1'));

    expect(error).toMatchObject({ kind: 'throttled', status: 429, operation: 'encode' });
    expect(error.message).toBe('Prisma Cloud Console encode: throttled (HTTP 429, after 3 attempts)');
    expect(c.requests.filter((r) => r.status === 429)).toHaveLength(3);
  });

  it('500 then ok: retried with exponential backoff and jitter', async () => {
    const clock = virtualClock();
    let failures = 0;
    const c = await standIn({
      clock,
      fault: (op) => (op === 'prisma:EncodeServerlessPolicy' && failures++ < 2 ? { status: 500 } : undefined),
    });
    const { client: api } = client(c.url, clock, { ratePerSecond: 1000 });

    await expect(api.encodePolicy('fn-a', 'eu-west-1')).resolves.toBe(c.policyFor('fn-a', 'eu-west-1'));

    // random() = 0.5 → 75 % of 250 ms, then of 500 ms (the rate limiter's own waits are 1 ms at most here).
    expect(clock.sleeps.filter((ms) => ms > 1)).toEqual([188, 375]);
    expect(api.stats.retries).toBe(2);
  });

  it('500 forever → server, after maxAttempts', async () => {
    const clock = virtualClock();
    const c = await standIn({
      clock,
      fault: (op) => (op === 'prisma:EncodeServerlessPolicy' ? { status: 500 } : undefined),
    });
    const { client: api } = client(c.url, clock);

    const error = await failure(api.encodePolicy('fn-a', 'eu-west-1'));

    expect(error).toMatchObject({ kind: 'server', status: 500, operation: 'encode' });
    expect(c.requests.filter((r) => r.status === 500)).toHaveLength(4);
  });

  it('a slow answer → timeout (real-time transport deadline), retried maxAttempts times', async () => {
    const clock = virtualClock();
    const c = await standIn({
      clock,
      fault: (op) => (op === 'prisma:EncodeServerlessPolicy' ? { delayMs: 5_000 } : undefined),
    });
    const { client: api } = client(c.url, clock, { timeoutMs: 100, maxAttempts: 2 });

    const error = await failure(api.encodePolicy('fn-a', 'eu-west-1'));

    expect(error).toMatchObject({ kind: 'timeout', operation: 'encode' });
    expect(error.status).toBeUndefined();
    expect(api.stats.retries).toBe(1);
  });

  it('a malformed JSON answer → malformed', async () => {
    const clock = virtualClock();
    const c = await standIn({
      clock,
      fault: (op) => (op === 'prisma:EncodeServerlessPolicy' ? { malformed: true } : undefined),
    });
    const { client: api } = client(c.url, clock);

    const error = await failure(api.encodePolicy('fn-a', 'eu-west-1'));

    expect(error).toMatchObject({ kind: 'malformed', status: 200, operation: 'encode' });
    expect(api.stats.retries).toBe(0);
    expectNoSecret(error, ['trunc']);
  });

  it.each([
    ['over 4 KB', 'A'.repeat(4097)],
    ['with a control character', 'abc\u0000def'],
    ['with spaces (an error page)', '<html> Service Unavailable </html>'],
  ])('an encode answer whose data cannot be a TW_POLICY (%s) → malformed, never a value', async (_what, data) => {
    const clock = virtualClock();
    const c = await standIn({ clock, fault: (op) => (op === 'prisma:EncodeServerlessPolicy' ? { data } : undefined) });
    const { client: api } = client(c.url, clock);

    const error = await failure(api.encodePolicy('fn-a', 'eu-west-1'));

    expect(error).toMatchObject({ kind: 'malformed', status: 200, operation: 'encode' });
    expect(error.message).not.toContain(data.slice(0, 8));
  });

  it('a malformed authenticate answer and a bundle that is not a ZIP → malformed', async () => {
    const clock = virtualClock();
    const faults: Partial<Record<string, StandInFault>> = { 'prisma:Authenticate': { malformed: true } };
    const c = await standIn({ clock, fault: (op) => faults[op] });
    const first = client(c.url, clock).client;
    await expect(failure(first.encodePolicy('fn-a', 'eu-west-1'))).resolves.toMatchObject({
      kind: 'malformed',
      operation: 'authenticate',
    });

    delete faults['prisma:Authenticate'];
    faults['prisma:DownloadServerlessBundle'] = { malformed: true };
    const second = client(c.url, clock).client;
    await expect(failure(second.downloadBundle('python3.12'))).resolves.toMatchObject({
      kind: 'malformed',
      operation: 'bundle',
    });
  });

  it('a 400 from the Console (no layer for the runtime) → malformed, not retried', async () => {
    const clock = virtualClock();
    const c = await standIn({ clock });
    const { client: api } = client(c.url, clock);

    const error = await failure(api.downloadBundle('java21'));

    expect(error).toMatchObject({ kind: 'malformed', status: 400, operation: 'bundle' });
    expect(api.stats.retries).toBe(0);
  });

  it('an unreachable port → unreachable, naming the network error code only', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const clock = virtualClock();
    const { client: api, credentialCalls } = client(`http://127.0.0.1:${port}/eu-1`, clock, { maxAttempts: 2 });

    const error = await failure(api.encodePolicy('fn-a', 'eu-west-1'));

    expect(error).toMatchObject({ kind: 'unreachable', operation: 'authenticate', code: 'ECONNREFUSED' });
    expect(error.message).toBe('Prisma Cloud Console authenticate: unreachable (ECONNREFUSED, after 2 attempts)');
    expectNoSecret(error, [STANDIN_ACCESS_KEY, STANDIN_SECRET_KEY, String(port)]);
    expect(credentialCalls()).toBe(1);
  });

  it('downloads the layer bundle as a real ZIP with the handler module and the exec wrapper', async () => {
    const clock = virtualClock();
    const c = await standIn({ clock });
    const { client: api } = client(c.url, clock);

    const python = Object.keys(unzipSync(await api.downloadBundle('python3.12')));
    const node = Object.keys(unzipSync(await api.downloadBundle('nodejs20.x')));

    expect(python).toEqual(expect.arrayContaining(['python/twistlock/__init__.py', 'twistlock/twistlock_wrapper']));
    expect(node).toEqual(
      expect.arrayContaining(['nodejs/node_modules/twistlock/index.js', 'twistlock/twistlock_wrapper']),
    );
    expect(api.stats).toMatchObject({ authentications: 1, bundles: 2 });
    expect(c.requests.slice(1).map((r) => r.runtime)).toEqual(['python3.12', 'nodejs20.x']);
  });

  it('paces every call, authenticate included, at ratePerSecond on virtual time', async () => {
    // Like local/virtual-clock.ts: a sleep resolves on the next turn with the clock at its wake-up time.
    let now = START;
    const clock: Clock = {
      now: () => now,
      sleep: (ms: number) => {
        const target = now + ms;
        return new Promise((resolve) =>
          setImmediate(() => {
            now = Math.max(now, target);
            resolve();
          }),
        );
      },
    };
    const c = await standIn({ clock, tokenLifetimeSeconds: 3600 });
    const { client: api } = client(c.url, clock, { ratePerSecond: 2 });
    const sent: number[] = [];
    const original = globalThis.fetch;
    const spy = jest.spyOn(globalThis, 'fetch').mockImplementation((input, init) => {
      sent.push(now - START);
      return original(input, init);
    });
    try {
      await Promise.all(Array.from({ length: 5 }, (_, i) => api.encodePolicy(`fn-${i}`, 'eu-west-1')));
    } finally {
      spy.mockRestore();
    }

    expect(sent).toEqual([0, 500, 1000, 1500, 2000, 2500]);
    expect(c.requests).toHaveLength(6);
  });

  it('never puts the token or a value into an error', async () => {
    const clock = virtualClock();
    let encodes = 0;
    const c = await standIn({
      clock,
      fault: (op) => (op === 'prisma:EncodeServerlessPolicy' && encodes++ > 0 ? { status: 500 } : undefined),
    });
    const tokens: string[] = [];
    const { client: api } = client(c.url, clock, { maxAttempts: 1 });
    const original = globalThis.fetch;
    const spy = jest.spyOn(globalThis, 'fetch').mockImplementation(async (input, init) => {
      const response = await original(input, init);
      if (String(input).endsWith('/authenticate')) {
        const copy = response.clone();
        tokens.push(((await copy.json()) as { token: string }).token);
      }
      return response;
    });
    try {
      const value = await api.encodePolicy('fn-a', 'eu-west-1');
      const error = await failure(api.encodePolicy('fn-b', 'eu-west-1'));
      expect(error.kind).toBe('server');
      expect(tokens).toHaveLength(1);
      expectNoSecret(error, [...tokens, value, c.policyFor('fn-b', 'eu-west-1'), STANDIN_SECRET_KEY]);
    } finally {
      spy.mockRestore();
    }
  });

  it('calls credentials() at most once, even when it fails', async () => {
    const clock = virtualClock();
    const c = await standIn({ clock });
    let calls = 0;
    const api = new PrismaConsoleClient({
      console: c.url,
      clock,
      credentials: async () => {
        calls += 1;
        throw Object.assign(new Error('Secrets Manager can’t find the specified secret.'), {
          name: 'ResourceNotFoundException',
        });
      },
    });

    await expect(api.encodePolicy('fn-a', 'eu-west-1')).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    await expect(api.encodePolicy('fn-b', 'eu-west-1')).rejects.toMatchObject({
      name: 'ResourceNotFoundException',
    });
    expect(calls).toBe(1);
    expect(c.requests).toHaveLength(0);
  });

  it('refuses a console address that is not an http(s) URL or carries credentials', () => {
    const credentials = async () => ({ accessKey: 'a', secretKey: 'b' });
    expect(() => new PrismaConsoleClient({ console: 'not a url', credentials })).toThrow(RangeError);
    expect(() => new PrismaConsoleClient({ console: 'ftp://console.example', credentials })).toThrow(RangeError);
    expect(() => new PrismaConsoleClient({ console: 'https://u:p@console.example/x', credentials })).toThrow(
      'must not carry credentials',
    );
  });
});

describe('token and header helpers', () => {
  it('reads a JWT exp claim, and nothing from a token that is not a JWT', () => {
    const payload = Buffer.from(JSON.stringify({ exp: 1_700_000_000 })).toString('base64url');
    expect(jwtExpiry(`e30.${payload}.sig`)).toBe(1_700_000_000);
    expect(jwtExpiry('opaque')).toBeUndefined();
    expect(jwtExpiry('a.%%%.c')).toBeUndefined();
    expect(jwtExpiry(`e30.${Buffer.from('{"exp":"soon"}').toString('base64url')}.s`)).toBeUndefined();
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('7', 0)).toBe(7000);
    expect(retryAfterMs(new Date(START + 4000).toUTCString(), START)).toBe(4000);
    expect(retryAfterMs('soon', 0)).toBeUndefined();
    expect(retryAfterMs(null, 0)).toBeUndefined();
  });
});
