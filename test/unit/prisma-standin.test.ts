/**
 * The stand-in Console's own contract, over raw HTTP (no client): shapes, errors, token expiry on its clock,
 * deterministic distinct values, the layer ZIP's files, the fault hook, and no secret in its request log.
 */
import { unzipSync } from 'fflate';
import type { Clock } from '../../lambdas/shared/adapters/rate-limiter';
import { FaultPlan } from '../../local/fault-plan';
import {
  bundleFamily,
  standInPolicy,
  startStandInConsole,
  STANDIN_ACCESS_KEY,
  STANDIN_SECRET_KEY,
  type StandInConsole,
  type StandInOptions,
} from '../../local/prisma-console-standin';
import { consoleFaultOf, parseScenario, ScenarioError } from '../../local/scenario';

const START = Date.parse('2025-01-06T09:00:00.000Z');
const KEYS = { username: STANDIN_ACCESS_KEY, password: STANDIN_SECRET_KEY };

function manualClock(): Clock & { advance(ms: number): void } {
  let now = START;
  return {
    now: () => now,
    sleep: async (ms: number) => {
      now += ms;
    },
    advance: (ms: number) => {
      now += ms;
    },
  };
}

let current: StandInConsole | undefined;
afterEach(async () => {
  await current?.close();
  current = undefined;
});

async function start(options: StandInOptions = {}): Promise<StandInConsole> {
  current = await startStandInConsole(options);
  return current;
}

async function post(
  c: StandInConsole,
  path: string,
  body: unknown,
  token?: string,
): Promise<{ status: number; json?: Record<string, unknown>; bytes: Uint8Array; headers: Headers }> {
  const response = await fetch(`${c.url}${path}`, {
    method: 'POST',
    headers: {
      'Content-Type': 'application/json',
      ...(token !== undefined ? { Authorization: `Bearer ${token}` } : {}),
    },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const bytes = new Uint8Array(await response.arrayBuffer());
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    json = undefined;
  }
  return { status: response.status, bytes, headers: response.headers, ...(json !== undefined ? { json } : {}) };
}

async function token(c: StandInConsole): Promise<string> {
  const answer = await post(c, '/api/v1/authenticate', KEYS);
  expect(answer.status).toBe(200);
  return answer.json?.['token'] as string;
}

const encodeBody = (fn: string, region = 'eu-west-1') => ({
  consoleAddr: '127.0.0.1',
  function: fn,
  provider: 'aws',
  region,
});

describe('the stand-in Prisma Cloud Console', () => {
  it('listens on 127.0.0.1 under a customer-id path', async () => {
    const c = await start();
    expect(c.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/standin-\d+$/);
    expect((await post(c, '/../api/v1/authenticate', KEYS)).status).toBe(404);
  });

  it('issues a JWT whose exp is its lifetime on the stand-in clock; wrong keys are 401', async () => {
    const clock = manualClock();
    const c = await start({ clock, tokenLifetimeSeconds: 600 });
    const jwt = await token(c);
    const claims = JSON.parse(Buffer.from(jwt.split('.')[1] as string, 'base64url').toString('utf8')) as {
      iat: number;
      exp: number;
    };
    expect(claims.exp - claims.iat).toBe(600);
    expect(claims.iat * 1000).toBe(START);

    const wrong = await post(c, '/api/v1/authenticate', { username: STANDIN_ACCESS_KEY, password: 'nope' });
    expect(wrong.status).toBe(401);
    expect(wrong.json).toEqual({ err: 'Unauthorized' });
  });

  it('refuses an absent, forged or expired token with 401', async () => {
    const clock = manualClock();
    const c = await start({ clock, tokenLifetimeSeconds: 60 });
    const jwt = await token(c);

    expect((await post(c, '/api/v1/policies/runtime/serverless/encode', encodeBody('fn'))).status).toBe(401);
    const forged = `${jwt.slice(0, -2)}xx`;
    expect((await post(c, '/api/v1/policies/runtime/serverless/encode', encodeBody('fn'), forged)).status).toBe(401);
    expect((await post(c, '/api/v1/policies/runtime/serverless/encode', encodeBody('fn'), jwt)).status).toBe(200);
    clock.advance(60_000);
    expect((await post(c, '/api/v1/policies/runtime/serverless/encode', encodeBody('fn'), jwt)).status).toBe(401);

    const fresh = await token(c);
    c.expireTokens();
    expect((await post(c, '/api/v1/policies/runtime/serverless/encode', encodeBody('fn'), fresh)).status).toBe(401);
  });

  it('returns a deterministic, distinct, base64, visibly fake value per function and region', async () => {
    const c = await start();
    const jwt = await token(c);
    const answer = await post(c, '/api/v1/policies/runtime/serverless/encode', encodeBody('orders', 'eu-west-1'), jwt);

    expect(answer.status).toBe(200);
    const data = answer.json?.['data'] as string;
    expect(data).toBe(standInPolicy('orders', 'eu-west-1'));
    expect(data).toBe(c.policyFor('orders', 'eu-west-1'));
    expect(data).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(data.length).toBeGreaterThan(600);
    expect(data.length).toBeLessThan(1500);
    expect(Buffer.from(data, 'base64').toString('utf8')).toContain('stand-in');
    const values = new Set(
      ['orders', 'billing', 'orders-2'].flatMap((fn) =>
        ['eu-west-1', 'us-east-1'].map((region) => standInPolicy(fn, region)),
      ),
    );
    expect(values.size).toBe(6);
  });

  it('answers 400 to a body that is not the documented JSON', async () => {
    const c = await start();
    const jwt = await token(c);
    const encode = '/api/v1/policies/runtime/serverless/encode';

    expect((await post(c, '/api/v1/authenticate', '{"username":')).status).toBe(400);
    expect((await post(c, '/api/v1/authenticate', { username: 1, password: 2 })).status).toBe(400);
    expect((await post(c, encode, '[]', jwt)).status).toBe(400);
    expect((await post(c, encode, { ...encodeBody('fn'), consoleAddr: 'https://host/x' }, jwt)).status).toBe(400);
    expect((await post(c, encode, { ...encodeBody('fn'), provider: 'azure' }, jwt)).status).toBe(400);
    expect((await post(c, encode, { ...encodeBody('fn'), function: '' }, jwt)).status).toBe(400);
    expect(
      (await post(c, '/api/v1/defenders/serverless/bundle', { provider: 'aws', runtime: 'java21' }, jwt)).status,
    ).toBe(400);
  });

  it('serves a real layer ZIP per runtime family, with the handler module and the exec wrapper', async () => {
    const c = await start();
    const jwt = await token(c);
    const python = await post(
      c,
      '/api/v1/defenders/serverless/bundle',
      { provider: 'aws', runtime: 'python3.12' },
      jwt,
    );
    // The API reference's curl example sends one-element arrays: accepted too.
    const node = await post(
      c,
      '/api/v34.03/defenders/serverless/bundle',
      { provider: ['aws'], runtime: ['nodejs20.x'] },
      jwt,
    );

    expect(python.status).toBe(200);
    expect(python.headers.get('content-type')).toBe('application/zip');
    expect(python.headers.get('content-disposition')).toContain('twistlock_defender_layer.zip');
    expect(Object.keys(unzipSync(python.bytes)).sort()).toEqual([
      'python/twistlock/__init__.py',
      'twistlock/README.txt',
      'twistlock/twistlock_wrapper',
    ]);
    expect(Object.keys(unzipSync(node.bytes)).sort()).toEqual([
      'nodejs/node_modules/twistlock/index.js',
      'nodejs/node_modules/twistlock/package.json',
      'twistlock/README.txt',
      'twistlock/twistlock_wrapper',
    ]);
    expect(bundleFamily('python3.9')).toBe('python');
    expect(bundleFamily('nodejs22.x')).toBe('nodejs');
    expect(bundleFamily('ruby3.3')).toBeUndefined();
  });

  it('applies the fault hook: a status with Retry-After, a malformed 200, with what the request is about', async () => {
    const seen: Array<[string, unknown]> = [];
    const c = await start({
      fault: (operation, request) => {
        seen.push([operation, request]);
        if (operation === 'prisma:EncodeServerlessPolicy' && request.functionName === 'slow-down') {
          return { status: 429, retryAfterSeconds: 7 };
        }
        if (operation === 'prisma:EncodeServerlessPolicy' && request.functionName === 'garbled')
          return { malformed: true };
        return undefined;
      },
    });
    const jwt = await token(c);
    const throttled = await post(c, '/api/v1/policies/runtime/serverless/encode', encodeBody('slow-down'), jwt);
    const garbled = await post(c, '/api/v1/policies/runtime/serverless/encode', encodeBody('garbled'), jwt);

    expect(throttled.status).toBe(429);
    expect(throttled.headers.get('retry-after')).toBe('7');
    expect(garbled.status).toBe(200);
    expect(garbled.json).toBeUndefined();
    expect(seen).toEqual([
      ['prisma:Authenticate', {}],
      ['prisma:EncodeServerlessPolicy', { functionName: 'slow-down', region: 'eu-west-1' }],
      ['prisma:EncodeServerlessPolicy', { functionName: 'garbled', region: 'eu-west-1' }],
    ]);
  });

  it('records operations, statuses and names only: never a token, key or value', async () => {
    const c = await start();
    const jwt = await token(c);
    await post(c, '/api/v1/policies/runtime/serverless/encode', encodeBody('fn-1'), jwt);

    expect(c.requests.map(({ at: _at, ...r }) => r)).toEqual([
      { operation: 'prisma:Authenticate', status: 200 },
      { operation: 'prisma:EncodeServerlessPolicy', status: 200, functionName: 'fn-1', region: 'eu-west-1' },
    ]);
    const log = JSON.stringify(c.requests);
    for (const secret of [jwt, STANDIN_ACCESS_KEY, STANDIN_SECRET_KEY, standInPolicy('fn-1', 'eu-west-1')]) {
      expect(log).not.toContain(secret);
    }
  });

  it('close() ends a delayed answer instead of waiting for it', async () => {
    const c = await start({ fault: () => ({ delayMs: 60_000 }) });
    const pending = post(c, '/api/v1/authenticate', KEYS).catch((error: unknown) => error);
    await new Promise((resolve) => setImmediate(resolve));
    await c.close();
    current = undefined;
    await expect(pending).resolves.toMatchObject({ name: 'TypeError' }); // undici's "fetch failed" (another realm)
  });
});

describe('Console faults in a scenario', () => {
  it('accepts an HTTP status, timeout or malformed on prisma: operations, with Retry-After', () => {
    const scenario = parseScenario(
      {
        faults: [
          { operation: 'prisma:EncodeServerlessPolicy', function: 'orders', error: '429', retryAfterSeconds: 3 },
          { operation: 'prisma:Authenticate', error: '401', times: 1 },
          { operation: 'prisma:DownloadServerlessBundle', error: 'timeout' },
          { operation: 'prisma:*', error: 'malformed', runs: [2] },
        ],
      },
      'inline',
    );
    expect(scenario.faults.map((f) => f.error)).toEqual(['429', '401', 'timeout', 'malformed']);
    expect(consoleFaultOf('429')).toEqual({ kind: 'status', status: 429 });
    expect(consoleFaultOf('timeout')).toEqual({ kind: 'timeout' });
    expect(consoleFaultOf('malformed')).toEqual({ kind: 'malformed' });
    expect(consoleFaultOf('ThrottlingException')).toBeUndefined();

    const plan = new FaultPlan(scenario);
    const call = { run: 1, second: 0, phase: 'before' as const };
    expect(plan.onCall({ ...call, operation: 'prisma:EncodeServerlessPolicy', functionName: 'orders' }).fault).toEqual({
      kind: 'error',
      error: '429',
      message: 'Injected fault: 429',
      rule: 0,
      retryAfterSeconds: 3,
    });
    expect(plan.onCall({ ...call, operation: 'prisma:EncodeServerlessPolicy', functionName: 'billing' }).fault).toEqual(
      {
        kind: 'none',
      },
    );
  });

  it('refuses a Console error on an AWS operation and an AWS error on a Console operation, naming the key', () => {
    expect(() =>
      parseScenario(
        {
          faults: [
            { operation: 'lambda:GetFunction', error: '500' },
            { operation: 'prisma:EncodeServerlessPolicy', error: 'ThrottlingException' },
            { operation: 'prisma:Encode', error: '500' },
            { operation: 'lambda:GetFunction', error: 'timeout' },
            { operation: 'prisma:Authenticate', error: 'timeout', retryAfterSeconds: 1 },
          ],
        },
        'inline',
      ),
    ).toThrow(
      new ScenarioError('inline', [
        'faults[0].error: an HTTP status is a Console fault: only with a "prisma:" operation',
        'faults[1].error: expected an HTTP status from "400" to "599", "timeout" or "malformed" with a "prisma:" operation',
        'faults[2].operation: expected one of prisma:Authenticate, prisma:EncodeServerlessPolicy, prisma:DownloadServerlessBundle or "prisma:*"',
        'faults[3].error: "timeout" is a Console fault: only with a "prisma:" operation',
        'faults[4].retryAfterSeconds: only with a "prisma:" operation and an HTTP status "error"',
      ]),
    );
  });

  it('"*" never matches a Console call', () => {
    const plan = new FaultPlan(parseScenario({ faults: [{ operation: '*', error: 'ServiceException' }] }, 'inline'));
    const call = { run: 1, second: 0, phase: 'before' as const };
    expect(plan.onCall({ ...call, operation: 'prisma:Authenticate' }).fault.kind).toBe('none');
    expect(plan.onCall({ ...call, operation: 'lambda:GetFunction' }).fault.kind).toBe('error');
  });
});
