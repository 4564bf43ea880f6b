/**
 * Issue 13 item 4: defaults ← cdk.json context ← --config file ← flags, one deep merge; `config show` prints the
 * effective configuration with the source of each key and never a literal variable value.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../bin/cli';
import { loadConfig } from '../../bin/commands/common';
import { keySources, mergeConfigLayers } from '../../lib/config';

let dir: string;
let logs: string[];
let errors: string[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'config-layers-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
beforeEach(() => {
  logs = [];
  errors = [];
  jest.spyOn(console, 'log').mockImplementation((line: unknown) => void logs.push(String(line)));
  jest.spyOn(console, 'error').mockImplementation((line: unknown) => void errors.push(String(line)));
});
afterEach(() => jest.restoreAllMocks());

function file(name: string, value: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(value));
  return path;
}

describe('configuration layers', () => {
  it('accepts a partial --config file: the rest comes from cdk.json and the defaults', () => {
    const config = loadConfig(file('partial.json', { funnel: { minMemoryMb: 1024 } }), { mode: 'protect' });

    expect(config.funnel.minMemoryMb).toBe(1024);
    expect(config.funnel.timeoutBufferSeconds).toBe(30);
    expect(config.mode).toBe('protect');
    expect(config.defender.layerArn).toMatch(/:layer:twistlock-defender:32$/);
    expect(config.exclusions.functions).toEqual(['break-glass-*']);
  });

  it('replaces arrays whole, merges objects (defender.environment too) key by key', () => {
    const merged = mergeConfigLayers([
      { source: 'a', value: { x: [1, 2], defender: { layerArn: 'L', environment: { A: '1', B: '2' } }, o: { p: 1 } } },
      { source: 'b', value: { x: [3], defender: { environment: { C: '3' } }, o: { q: 2 } } },
    ]);

    expect(merged).toEqual({
      x: [3],
      defender: { layerArn: 'L', environment: { A: '1', B: '2', C: '3' } },
      o: { p: 1, q: 2 },
    });
  });

  it('keeps one source of TW_POLICY: a higher policySource drops a lower TW_POLICY, and the other way round', () => {
    const ssm = { ssmParameter: '/zi/policy' };
    const console = { console: 'https://x.cloud.twistlock.com/c', credentialsSecret: 's' };
    const cdk = { source: 'cdk', value: { defender: { environment: { W: '/opt/w', TW_POLICY: ssm } } } };
    const file = { source: 'file', value: { defender: { policySource: console } } };

    expect(mergeConfigLayers([cdk, file])).toEqual({
      defender: { environment: { W: '/opt/w' }, policySource: console },
    });
    expect(mergeConfigLayers([file, cdk])).toEqual({ defender: { environment: { W: '/opt/w', TW_POLICY: ssm } } });
    expect(cdk.value.defender.environment.TW_POLICY).toBe(ssm); // the layers themselves are left alone
  });

  it('knows which layer set each key', () => {
    const sources = keySources([
      { source: 'cdk', value: { mode: 'dry-run', funnel: { minMemoryMb: 512 } } },
      { source: 'file', value: { funnel: { minMemoryMb: 1024 } } },
    ]);

    expect(Object.fromEntries(sources)).toEqual({ mode: 'cdk', 'funnel.minMemoryMb': 'file' });
  });
});

describe('zero-impact config show', () => {
  it('prints every key with its source and never a literal variable value', async () => {
    const path = file('secret.json', {
      defender: {
        environment: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper', TW_POLICY: 'S3CRET-p0licy' },
      },
      funnel: { minMemoryMb: 1024 },
    });

    expect(await main(['config', 'show', '--config', path, '--json'])).toBe(0);

    const shown = JSON.parse(logs.join('\n')) as Record<string, { value: unknown; source: string }>;
    expect(shown['funnel.minMemoryMb']).toEqual({ value: 1024, source: path });
    expect(shown['funnel.timeoutBufferSeconds']).toEqual({ value: 30, source: 'default' });
    expect(shown['schedule']?.source).toMatch(/cdk\.json \(context zeroImpact\)$/);
    expect(shown['defender.environment']?.value).toEqual({
      AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper',
      TW_POLICY: '(literal, 13 characters)',
    });
    expect(logs.join('\n')).not.toContain('S3CRET');
  });

  it('prints a table by default, and names a bad key in one line', async () => {
    expect(await main(['config', 'show', '--mode', 'protect'])).toBe(0);
    expect(logs.join('\n')).toMatch(/^mode\s+"protect"\s+--mode$/m);
    expect(await main(['config', 'show', '--config', file('bad.json', { funnel: { minMemoryMb: -1 } })])).toBe(2);
    expect(errors).toEqual([expect.stringMatching(/bad\.json: funnel\.minMemoryMb: /)]);
  });
});
