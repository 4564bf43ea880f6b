import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { parseConfig, type Config } from '../../lib/config';
import {
  applyChange,
  changeApplied,
  configurationImage,
  planProtection,
  planRefresh,
  planRollback,
  scrubValues,
  type ProtectionChange,
} from '../../lambdas/shared/domain/plan';
import { ourVariableNames, valueMac, type MacContext } from '../../lambdas/shared/domain/mac';
import type { FunctionConfiguration } from '../../lambdas/shared/domain/types';

const DEFENDER = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32';
const DEFENDER_OLD = 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:31';
const WRAPPER = '/opt/twistlock/twistlock_wrapper';
const POLICY = 'tw-policy-secret-value';
const RESOLVED = { TW_POLICY: POLICY };
const NAME = 'orders-api';
const KEY = new Uint8Array(32).fill(7);

function wrapperConfig(): Config {
  return parseConfig(
    {
      mode: 'protect',
      defender: {
        layerArn: DEFENDER,
        environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zero-impact/tw-policy' } },
      },
    },
    'test',
  );
}

function handlerConfig(): Config {
  return parseConfig(
    {
      mode: 'protect',
      defender: {
        layerArn: DEFENDER,
        method: 'handler',
        handler: 'twistlock.handler',
        environment: { TW_POLICY: { ssmParameter: '/zero-impact/tw-policy' } },
      },
    },
    'test',
  );
}

/** The MAC context of the test: a fixed key and our names under the config. */
function macOf(config: Config = wrapperConfig()): MacContext {
  return { key: KEY, ourNames: ourVariableNames(config) };
}
const MAC = macOf();

function layer(name: string, version = 1): string {
  return `arn:aws:lambda:eu-west-1:123456789012:layer:${name}:${version}`;
}

function fn(overrides: Partial<FunctionConfiguration> = {}): FunctionConfiguration {
  return {
    FunctionName: 'orders-api',
    FunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:orders-api',
    PackageType: 'Zip',
    Runtime: 'python3.11',
    Handler: 'app.handler',
    MemorySize: 512,
    Timeout: 30,
    Role: 'arn:aws:iam::123456789012:role/orders',
    Layers: [{ Arn: layer('pandas', 4), CodeSize: 100 }, { Arn: layer('otel', 2) }],
    Environment: { Variables: { DB_URL: 'postgres://secret@db', LOG_LEVEL: 'info' } },
    RevisionId: 'rev-1',
    ...overrides,
  };
}

function planned(configuration: FunctionConfiguration, config: Config = wrapperConfig()): ProtectionChange {
  const plan = planProtection(configuration, config, RESOLVED);
  if (!plan.ok) throw new Error(`expected a plan, got ${plan.code}: ${plan.problem}`);
  return plan.change;
}

/** Protection applied, with the images an audit record would hold. */
function protectedRecord(configuration: FunctionConfiguration, config: Config = wrapperConfig()) {
  const after = applyChange(configuration, planned(configuration, config));
  const mac = macOf(config);
  return {
    after,
    record: { before: configurationImage(configuration, mac, NAME), after: configurationImage(after, mac, NAME) },
  };
}

const layerNames = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/), { maxLength: 4 });
const variableMaps = fc.dictionary(
  fc.stringMatching(/^[A-Z][A-Z0-9_]{0,11}$/).filter((n) => n !== 'TW_POLICY' && !n.startsWith('AWS_')),
  fc.string({ maxLength: 40, unit: 'binary' }),
  { maxKeys: 8 },
);

describe('planProtection', () => {
  it('appends the Defender layer and keeps every other layer in order', () => {
    const change = planned(fn());

    expect(change.Layers).toEqual([layer('pandas', 4), layer('otel', 2), DEFENDER]);
  });

  it('keeps the order of any layers and appends ours last (property)', () => {
    fc.assert(
      fc.property(layerNames, (names) => {
        const layers = names.map((n) => layer(`l-${n}`));
        const change = planned(fn({ Layers: layers.map((Arn) => ({ Arn })) }));
        expect(change.Layers).toEqual([...layers, DEFENDER]);
      }),
    );
  });

  it('replaces an older Defender version in place, never duplicating it', () => {
    const configuration = fn({ Layers: [{ Arn: layer('a') }, { Arn: DEFENDER_OLD }, { Arn: layer('b') }] });

    const plan = planProtection(configuration, wrapperConfig(), RESOLVED);

    expect(plan).toMatchObject({ ok: true, replacedLayer: DEFENDER_OLD });
    expect(plan.ok && plan.change.Layers).toEqual([layer('a'), DEFENDER, layer('b')]);
  });

  it('replaces an older Defender version at any position (property)', () => {
    fc.assert(
      fc.property(layerNames, fc.nat(), (names, seed) => {
        const layers = names.map((n) => layer(`l-${n}`));
        const at = seed % (layers.length + 1);
        const withOld = [...layers.slice(0, at), DEFENDER_OLD, ...layers.slice(at)];
        const change = planned(fn({ Layers: withOld.map((Arn) => ({ Arn })) }));
        expect(change.Layers).toEqual([...layers.slice(0, at), DEFENDER, ...layers.slice(at)]);
        expect(change.Layers.filter((arn) => arn.includes('twistlock-defender'))).toHaveLength(1);
      }),
    );
  });

  it('adds our variables and keeps every other variable byte for byte, in order (property)', () => {
    fc.assert(
      fc.property(variableMaps, (vars) => {
        const change = planned(fn({ Environment: { Variables: vars } }));
        const after = change.Environment.Variables;
        expect(Object.keys(after)).toEqual([...Object.keys(vars), 'AWS_LAMBDA_EXEC_WRAPPER', 'TW_POLICY']);
        for (const [name, value] of Object.entries(vars)) expect(after[name]).toBe(value);
        expect(after['AWS_LAMBDA_EXEC_WRAPPER']).toBe(WRAPPER);
        expect(after['TW_POLICY']).toBe(POLICY);
      }),
    );
  });

  it('sends only layers and variables with the exec-wrapper method: no handler, memory, timeout, role or VPC', () => {
    const change = planned(fn({ VpcConfig: { SubnetIds: ['subnet-1'], SecurityGroupIds: ['sg-1'] } }));

    expect(Object.keys(change).sort()).toEqual(['Environment', 'Layers']);
  });

  it('is idempotent: planning again on the protected function plans the same configuration (property)', () => {
    fc.assert(
      fc.property(layerNames, variableMaps, fc.boolean(), (names, vars, old) => {
        const layers = names.map((n) => ({ Arn: layer(`l-${n}`) }));
        const configuration = fn({
          Layers: old ? [...layers, { Arn: DEFENDER_OLD }] : layers,
          Environment: { Variables: vars },
        });
        const first = planned(configuration);
        const once = applyChange(configuration, first);
        const second = planned(once);
        expect(second).toEqual(first);
        expect(applyChange(once, second)).toEqual(once);
      }),
    );
  });

  it('sets the Defender handler and keeps the original in ORIGINAL_HANDLER with the handler method', () => {
    const change = planned(fn(), handlerConfig());

    expect(change).toEqual({
      Layers: [layer('pandas', 4), layer('otel', 2), DEFENDER],
      Environment: {
        Variables: {
          DB_URL: 'postgres://secret@db',
          LOG_LEVEL: 'info',
          TW_POLICY: POLICY,
          ORIGINAL_HANDLER: 'app.handler',
        },
      },
      Handler: 'twistlock.handler',
    });
  });

  it('is idempotent with the handler method', () => {
    const config = handlerConfig();
    const first = planned(fn(), config);
    const once = applyChange(fn(), first);

    expect(planned(once, config)).toEqual(first);
  });

  it('never overwrites a variable that is set to another value', () => {
    const plan = planProtection(fn({ Environment: { Variables: { TW_POLICY: 'theirs' } } }), wrapperConfig(), RESOLVED);

    expect(plan).toEqual({ ok: false, code: 'ENV_CONFLICT', problem: expect.stringContaining('TW_POLICY') });
  });

  it('refuses another exec wrapper', () => {
    const plan = planProtection(
      fn({ Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/other' } } }),
      wrapperConfig(),
      RESOLVED,
    );

    expect(plan).toMatchObject({ ok: false, code: 'WRAPPER_CONFLICT' });
  });

  it('refuses a sixth layer', () => {
    const layers = [1, 2, 3, 4, 5].map((i) => ({ Arn: layer(`l${i}`) }));

    expect(planProtection(fn({ Layers: layers }), wrapperConfig(), RESOLVED)).toMatchObject({
      ok: false,
      code: 'LAYER_LIMIT',
    });
  });

  it('refuses when a value of ours is not resolved', () => {
    expect(planProtection(fn(), wrapperConfig(), {})).toMatchObject({ ok: false, code: 'FACTS_MISSING' });
  });

  it('refuses when Lambda could not decrypt the variables (they would be wiped)', () => {
    const plan = planProtection(
      fn({ Environment: { Error: { ErrorCode: 'KMSAccessDeniedException' } } as FunctionConfiguration['Environment'] }),
      wrapperConfig(),
      RESOLVED,
    );

    expect(plan).toMatchObject({ ok: false, code: 'FACTS_MISSING' });
  });

  it('refuses when the variables would exceed the quota', () => {
    const plan = planProtection(
      fn({ Environment: { Variables: { BIG: 'x'.repeat(4000) } } }),
      wrapperConfig(),
      RESOLVED,
    );

    expect(plan).toMatchObject({ ok: false, code: 'ENV_QUOTA' });
  });
});

describe('configurationImage', () => {
  it('item 3: keeps names and the total size, and keyed MACs of our variables only, never a value or a hash', () => {
    const configuration = fn({
      Environment: { Variables: { DB_URL: 'postgres://secret@db', LOG_LEVEL: 'info', TW_POLICY: POLICY } },
    });
    const image = configurationImage(configuration, MAC, NAME);

    expect(image).toEqual({
      layers: [layer('pandas', 4), layer('otel', 2)],
      variableNames: ['DB_URL', 'LOG_LEVEL', 'TW_POLICY'],
      variablesBytes: JSON.stringify(configuration.Environment?.Variables).length,
      handler: 'app.handler',
      revisionId: 'rev-1',
      ourValueMacs: { TW_POLICY: valueMac(KEY, NAME, 'TW_POLICY', POLICY) },
    });
    const text = JSON.stringify(image);
    for (const value of ['postgres://secret@db', 'info', POLICY]) {
      expect(text).not.toContain(value);
      expect(text).not.toContain(createHash('sha256').update(value).digest('hex'));
      expect(text).not.toContain(createHash('sha256').update(value).digest('base64'));
    }
  });

  it('item 3: a MAC depends on the key, the function and the variable, not on the value alone', () => {
    const mac = valueMac(KEY, NAME, 'TW_POLICY', POLICY);

    expect(valueMac(new Uint8Array(32).fill(8), NAME, 'TW_POLICY', POLICY)).not.toBe(mac);
    expect(valueMac(KEY, 'other-fn', 'TW_POLICY', POLICY)).not.toBe(mac);
    expect(valueMac(KEY, NAME, 'TW_OTHER', POLICY)).not.toBe(mac);
    expect(mac).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});

describe('planRollback', () => {
  it('removes exactly what protection added', () => {
    const { after, record } = protectedRecord(fn());

    const plan = planRollback(after, record, MAC, NAME);

    expect(plan).toMatchObject({
      ok: true,
      change: {
        Layers: [layer('pandas', 4), layer('otel', 2)],
        Environment: { Variables: { DB_URL: 'postgres://secret@db', LOG_LEVEL: 'info' } },
      },
      steps: [`remove layer ${DEFENDER}`, 'remove variable AWS_LAMBDA_EXEC_WRAPPER', 'remove variable TW_POLICY'],
    });
  });

  it('restores the original layers and variables exactly (property)', () => {
    fc.assert(
      fc.property(layerNames, variableMaps, fc.boolean(), (names, vars, old) => {
        const layers = names.map((n) => ({ Arn: layer(`l-${n}`) }));
        const original = fn({
          Layers: old ? [{ Arn: DEFENDER_OLD }, ...layers] : layers,
          Environment: { Variables: vars },
        });
        const { after, record } = protectedRecord(original);
        const plan = planRollback(after, record, MAC, NAME);
        if (!plan.ok || plan.change === null) throw new Error('expected a rollback change');
        const restored = applyChange(after, plan.change);
        expect(restored.Layers?.map((l) => l.Arn)).toEqual(original.Layers?.map((l) => l.Arn));
        expect(restored.Environment?.Variables).toEqual(vars);
        expect(Object.keys(restored.Environment?.Variables ?? {})).toEqual(Object.keys(vars));
      }),
    );
  });

  it('puts back the older Defender version it replaced, in place', () => {
    const original = fn({ Layers: [{ Arn: layer('a') }, { Arn: DEFENDER_OLD }, { Arn: layer('b') }] });
    const { after, record } = protectedRecord(original);

    const plan = planRollback(after, record, MAC, NAME);

    expect(plan.ok && plan.change?.Layers).toEqual([layer('a'), DEFENDER_OLD, layer('b')]);
    expect(plan.ok && plan.steps[0]).toBe(`restore layer ${DEFENDER_OLD} in place of ${DEFENDER}`);
  });

  it('keeps a later unrelated change: a new variable, a new layer and a memory change', () => {
    const { after, record } = protectedRecord(fn());
    const later: FunctionConfiguration = {
      ...after,
      MemorySize: 1024,
      Layers: [...(after.Layers ?? []), { Arn: layer('datadog', 7) }],
      Environment: { Variables: { ...after.Environment?.Variables, FEATURE_FLAG: 'on' } },
      RevisionId: 'rev-3',
    };

    const plan = planRollback(later, record, MAC, NAME);
    if (!plan.ok || plan.change === null) throw new Error('expected a rollback change');
    const restored = applyChange(later, plan.change);

    expect(plan.change).toEqual({
      Layers: [layer('pandas', 4), layer('otel', 2), layer('datadog', 7)],
      Environment: { Variables: { DB_URL: 'postgres://secret@db', LOG_LEVEL: 'info', FEATURE_FLAG: 'on' } },
    });
    expect(restored.MemorySize).toBe(1024);
  });

  it('leaves alone a variable of ours that was changed since, and says so', () => {
    const { after, record } = protectedRecord(fn());
    const later = { ...after, Environment: { Variables: { ...after.Environment?.Variables, TW_POLICY: 'rotated' } } };

    const plan = planRollback(later, record, MAC, NAME);

    expect(plan.ok && plan.change?.Environment?.Variables).toEqual({
      DB_URL: 'postgres://secret@db',
      LOG_LEVEL: 'info',
      TW_POLICY: 'rotated',
    });
    expect(plan.ok && plan.notes).toContain('variable TW_POLICY was changed since protection: left alone');
  });

  it('item 6: refuses when the team has since upgraded the Defender to another version of our layer', () => {
    const { after, record } = protectedRecord(fn());
    const newer = layer('twistlock-defender', 33);
    const later = { ...after, Layers: (after.Layers ?? []).map((l) => (l.Arn === DEFENDER ? { Arn: newer } : l)) };

    const plan = planRollback(later, record, MAC, NAME);

    expect(plan).toEqual({ ok: false, problem: expect.stringContaining('the Defender is no longer the one we added') });
    expect(!plan.ok && plan.problem).toContain(newer);
  });

  it('item 6: refuses when our layer was replaced by a different Defender layer while our variables remain', () => {
    const { after, record } = protectedRecord(fn());
    const other = layer('prisma-defender-v2', 1);
    const later = { ...after, Layers: (after.Layers ?? []).map((l) => (l.Arn === DEFENDER ? { Arn: other } : l)) };

    const plan = planRollback(later, record, MAC, NAME);

    expect(plan).toEqual({ ok: false, problem: expect.stringContaining('the Defender is no longer the one we added') });
  });

  it('item 6: still removes our leftover variables when our layer was removed and nothing replaced it', () => {
    const { after, record } = protectedRecord(fn());
    const later = { ...after, Layers: (after.Layers ?? []).filter((l) => l.Arn !== DEFENDER) };

    const plan = planRollback(later, record, MAC, NAME);

    expect(plan).toMatchObject({
      ok: true,
      change: { Environment: { Variables: { DB_URL: 'postgres://secret@db', LOG_LEVEL: 'info' } } },
    });
  });

  it('item 3: a record without MACs (written before them) never takes a variable for ours', () => {
    const { after, record } = protectedRecord(fn());
    const legacy = {
      before: record.before,
      after: { ...record.after, ourValueMacs: undefined } as unknown as typeof record.after,
    };

    const plan = planRollback(after, legacy, MAC, NAME);

    expect(plan).toEqual({ ok: false, problem: expect.stringContaining('AWS_LAMBDA_EXEC_WRAPPER') });
  });

  it('item 4: a record written before keyed MACs (legacy variableHashes) is still rolled back exactly', () => {
    const original = fn();
    const { after, record } = protectedRecord(original);
    const sha = (value: string) => createHash('sha256').update(value, 'utf8').digest('hex');
    const vars = after.Environment?.Variables ?? {};
    const legacyImage = (image: typeof record.after) => {
      const { ourValueMacs: _macs, ...rest } = image;
      return {
        ...rest,
        variableHashes: Object.fromEntries(image.variableNames.map((n) => [n, sha(vars[n] ?? '')])),
      } as unknown as typeof record.after;
    };

    const plan = planRollback(
      after,
      { before: legacyImage(record.before), after: legacyImage(record.after) },
      MAC,
      NAME,
    );

    expect(plan).toMatchObject({ ok: true });
    expect(plan.ok && plan.change?.Environment?.Variables).toEqual(original.Environment?.Variables);
    expect(plan.ok && plan.change?.Layers).toEqual((original.Layers ?? []).map((l) => l.Arn));
  });

  it('plans nothing when nothing of ours is left', () => {
    const original = fn();
    const { record } = protectedRecord(original);

    expect(planRollback(original, record, MAC, NAME)).toMatchObject({ ok: true, change: null, steps: [] });
  });

  it('restores the handler only while it is still the Defender’s', () => {
    const config = handlerConfig();
    const { after, record } = protectedRecord(fn(), config);

    const mac = macOf(config);
    const restoring = planRollback(after, record, mac, NAME);
    const redeployed = planRollback({ ...after, Handler: 'app.v2' }, record, mac, NAME);

    expect(restoring.ok && restoring.change?.Handler).toBe('app.handler');
    expect(restoring.ok && restoring.change?.Environment?.Variables).toEqual({
      DB_URL: 'postgres://secret@db',
      LOG_LEVEL: 'info',
    });
    expect(redeployed.ok && redeployed.change?.Handler).toBeUndefined();
    expect(redeployed.ok && redeployed.notes).toContain(
      'the handler was changed since protection (now app.v2): left alone',
    );
  });

  it('cannot plan from a record without images', () => {
    expect(planRollback(fn(), {}, MAC, NAME)).toEqual({ ok: false, problem: expect.stringContaining('before/after') });
  });
});

describe('scrubValues', () => {
  it('removes every known value from a message', () => {
    expect(scrubValues('bad value postgres://secret@db in DB_URL', ['postgres://secret@db', 'on'])).toBe(
      'bad value [redacted] in DB_URL',
    );
  });
});

describe('scrubValues: the forms AWS echoes a value in', () => {
  it('removes a value that AWS echoes JSON-escaped (env quota error "String measured")', () => {
    const secret = '{"user":"admin","password":"hunter2-canary"}';
    const message = `InvalidParameterValueException: Lambda was unable to configure your environment variables because the environment variables you have provided exceeded the 4KB limit. String measured: ${JSON.stringify({ APP_CONFIG: secret })}`;

    const scrubbed = scrubValues(message, [secret]);

    expect(scrubbed).not.toContain('hunter2-canary');
    expect(scrubbed).toContain('exceeded the 4KB limit');
  });

  it('drops the echoed variables map even when AWS truncated a value in it', () => {
    const secret = 'CANARY-7f3a9e21-do-not-leak';
    const message = `InvalidParameterValueException: ... exceeded the 4KB limit. String measured: {"A":"${secret.slice(0, 12)}`;

    const scrubbed = scrubValues(message, [secret]);

    expect(scrubbed).not.toContain(secret.slice(0, 12));
    expect(scrubbed).toBe('InvalidParameterValueException: ... exceeded the 4KB limit. String measured: [redacted]');
    expect(scrubValues(scrubbed, [secret])).toBe(scrubbed);
  });

  it('removes a value with non-ASCII characters echoed as \\u escapes', () => {
    const secret = 'pässwörd-canary';
    const escaped = secret.replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);

    expect(scrubValues(`bad value ${escaped}`, [secret])).toBe('bad value [redacted]');
  });
});

describe('planRollback: never leaves a wrapper naming a file in a removed layer', () => {
  it('refuses to remove our layer while AWS_LAMBDA_EXEC_WRAPPER, changed since, stays set', () => {
    const { after, record } = protectedRecord(fn());
    const chained = '/opt/chain/wrapper.sh';
    const later = {
      ...after,
      Environment: { Variables: { ...after.Environment?.Variables, AWS_LAMBDA_EXEC_WRAPPER: chained } },
    };

    const plan = planRollback(later, record, MAC, NAME);

    expect(plan).toEqual({ ok: false, problem: expect.stringContaining('AWS_LAMBDA_EXEC_WRAPPER') });
  });

  it('still restores an older Defender version when the wrapper was already set before protection', () => {
    const original = fn({
      Layers: [{ Arn: DEFENDER_OLD }],
      Environment: { Variables: { LOG_LEVEL: 'info', AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
    });
    const { after, record } = protectedRecord(original);

    const plan = planRollback(after, record, MAC, NAME);

    expect(plan).toMatchObject({
      ok: true,
      change: {
        Layers: [DEFENDER_OLD],
        Environment: { Variables: { LOG_LEVEL: 'info', AWS_LAMBDA_EXEC_WRAPPER: WRAPPER } },
      },
    });
  });
});

describe('changeApplied', () => {
  it('tells a configuration that carries the change from one that does not', () => {
    const change = planned(fn());
    const applied = applyChange(fn(), change);

    expect(changeApplied(applied, change)).toBe(true);
    expect(changeApplied(fn(), change)).toBe(false);
    expect(changeApplied({ ...applied, Layers: [...(applied.Layers ?? [])].reverse() }, change)).toBe(false);
    expect(
      changeApplied({ ...applied, Environment: { Error: { ErrorCode: 'KMSAccessDenied' } } } as never, change),
    ).toBe(false);
  });
});

describe('issue 8 item 12: never drops a layer the plan does not name', () => {
  it('item 12: refuses PARTIAL_PROTECTION when two versions of the Defender layer are attached', () => {
    const configuration = fn({ Layers: [{ Arn: DEFENDER_OLD }, { Arn: layer('a') }, { Arn: DEFENDER }] });

    const plan = planProtection(configuration, wrapperConfig(), RESOLVED);

    expect(plan).toEqual({ ok: false, code: 'PARTIAL_PROTECTION', problem: expect.stringContaining(DEFENDER_OLD) });
  });

  it('item 12: keeps every layer it does not replace, in order', () => {
    const configuration = fn({ Layers: [{ Arn: layer('a') }, { Arn: DEFENDER_OLD }, { Arn: layer('b') }] });

    expect(planned(configuration).Layers).toEqual([layer('a'), DEFENDER, layer('b')]);
  });
});

describe('issue 8 item 7: planRefresh and the rollback of a refresh', () => {
  const OLD_WRAPPER = '/opt/twistlock/old_wrapper';
  function rotatedConfig(): Config {
    return parseConfig(
      {
        mode: 'protect',
        defender: {
          layerArn: DEFENDER,
          environment: { AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: { ssmParameter: '/zero-impact/tw-policy' } },
        },
      },
      'test',
    );
  }
  function outdated(): FunctionConfiguration {
    return fn({
      Layers: [{ Arn: layer('pandas', 4) }, { Arn: DEFENDER }],
      Environment: {
        Variables: { DB_URL: 'postgres://secret@db', AWS_LAMBDA_EXEC_WRAPPER: OLD_WRAPPER, TW_POLICY: 'old-policy' },
      },
    });
  }

  it('item 7: changes only our outdated variables, everything else byte for byte', () => {
    const plan = planRefresh(outdated(), rotatedConfig(), RESOLVED, new Set(['AWS_LAMBDA_EXEC_WRAPPER', 'TW_POLICY']));

    expect(plan).toEqual({
      ok: true,
      refreshed: ['AWS_LAMBDA_EXEC_WRAPPER', 'TW_POLICY'],
      change: {
        // The layers go along unchanged: the protect role's lambda:Layer condition needs the Defender in the request.
        Layers: [layer('pandas', 4), DEFENDER],
        Environment: {
          Variables: { DB_URL: 'postgres://secret@db', AWS_LAMBDA_EXEC_WRAPPER: WRAPPER, TW_POLICY: POLICY },
        },
      },
    });
    expect(Object.keys(plan.ok && plan.change ? plan.change : {}).sort()).toEqual(['Environment', 'Layers']);
  });

  it('item 7: never overwrites one of our variables whose value the engine did not write', () => {
    const plan = planRefresh(outdated(), rotatedConfig(), RESOLVED, new Set(['AWS_LAMBDA_EXEC_WRAPPER']));

    expect(plan).toMatchObject({ ok: false, code: 'ENV_CONFLICT' });
  });

  it('item 7: a refresh rolls back to the exact previous value, and only while ours is still set', () => {
    const current = outdated();
    const plan = planRefresh(current, rotatedConfig(), RESOLVED, new Set(['TW_POLICY', 'AWS_LAMBDA_EXEC_WRAPPER']));
    if (!plan.ok || plan.change === null) throw new Error('expected a refresh');
    const refreshed = applyChange(current, plan.change);
    const record = { before: configurationImage(current, MAC, NAME), after: configurationImage(refreshed, MAC, NAME) };
    const restore = { previous: { TW_POLICY: 'old-policy', AWS_LAMBDA_EXEC_WRAPPER: OLD_WRAPPER } };

    const rollback = planRollback(refreshed, record, MAC, NAME, restore);
    const edited = planRollback(
      { ...refreshed, Environment: { Variables: { ...refreshed.Environment?.Variables, TW_POLICY: 'hand-set' } } },
      record,
      MAC,
      NAME,
      restore,
    );

    expect(rollback.ok && rollback.change).toEqual({ Environment: current.Environment });
    expect(edited.ok && edited.change?.Environment?.Variables['TW_POLICY']).toBe('hand-set');
    expect(edited.ok && edited.notes).toContain('variable TW_POLICY was changed since the refresh: left alone');
  });
});
