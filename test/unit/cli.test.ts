/**
 * The command line's conventions (issue 13 item 2): help per command with every flag, default, environment fallback
 * and an example; --version; the nearest flag or command suggested; one line and exit 2 for bad usage.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { main, nearestCommand } from '../../bin/cli';

const ROOT = join(__dirname, '..', '..');
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

let stdout: string;
let errors: string[];
let logs: string[];

beforeEach(() => {
  stdout = '';
  errors = [];
  logs = [];
  jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stdout += String(chunk);
    return true;
  });
  jest.spyOn(console, 'error').mockImplementation((line: unknown) => void errors.push(String(line)));
  jest.spyOn(console, 'log').mockImplementation((line: unknown) => void logs.push(String(line)));
});

afterEach(() => {
  jest.restoreAllMocks();
});

describe('zero-impact --help and --version', () => {
  it('prints the version of package.json', async () => {
    expect(await main(['--version'])).toBe(0);
    expect(logs).toEqual([VERSION]);
  });

  it('lists every command', async () => {
    expect(await main(['--help'])).toBe(0);
    for (const name of ['assess', 'local-run', 'rollback', 'include', 'defender', 'report', 'history', 'export']) {
      expect(logs.join('\n')).toMatch(new RegExp(`^  ${name}\\b`, 'm'));
    }
  });

  it.each([
    [
      ['assess', '--help'],
      ['--facts <file>', '--config <file>', '--format <format>', '--human', '--json'],
    ],
    [
      ['local-run', '--help'],
      ['--estate <file>', '--mode <mode>', '--runs <n>', '(default: "1")', '--out <dir>', '--scenario <file>'],
    ],
    [
      ['rollback', '--help'],
      ['--function <name>', '--run <runId>', '(env: AUDIT_TABLE_NAME)', '(env: STATE_TABLE_NAME)', '(env: MAC_KEY_ID)'],
    ],
    [
      ['include', '--help'],
      ['--function <name>', '(env: STATE_TABLE_NAME)'],
    ],
    [['help', 'include'], ['--function <name>']],
    [
      ['defender', 'publish-layer', '--help'],
      ['--runtime <runtime>', '--layer-name <name>', '(default: false)'],
    ],
    [
      ['report', '--help'],
      ['--run <runId>', '--latest', '--fail-on <outcomes>', '(default: "10")', 'ZERO_IMPACT_STACK'],
    ],
    [
      ['history', '--help'],
      ['--function <name>', '--local <dir>', '(env: AUDIT_TABLE_NAME)', '(default: "table")'],
    ],
    [
      ['export', '--help'],
      ['--since <date>', '--until <date>', '--format <format>', '(env: AUDIT_TABLE_NAME)'],
    ],
    [
      ['coverage', '--help'],
      ['--local <dir>', '--config <file>', '--function <name>', '(default: "table")'],
    ],
    [
      ['help', 'audit'],
      ['--config <file>', '--fail-on <outcomes>', '--quiet', 'AWS_REGION'],
    ],
  ])('%j shows every flag, its default or environment variable, and an example', async (argv, flags) => {
    expect(await main(argv)).toBe(0);
    expect(stdout).toMatch(/^Usage: zero-impact /);
    for (const flag of flags) expect(stdout).toContain(flag);
    expect(stdout).toMatch(/Examples:\n {2}\$ zero-impact /);
    expect(errors).toEqual([]);
  });
});

describe('zero-impact bad usage', () => {
  it('suggests the nearest flag in one line, exit 2', async () => {
    expect(await main(['assess', '--fact', 'x.json'])).toBe(2);
    expect(errors).toEqual(["zero-impact assess: Unknown option '--fact' (did you mean --facts?)"]);
  });

  it.each([
    ['report', '--lcoal', '--local'],
    ['history', '--funtion', '--function'],
    ['export', '--sinc', '--since'],
    ['coverage', '--formt', '--format'],
    ['audit', '--fail-of', '--fail-on'],
  ])('%s suggests the nearest flag in one line, exit 2', async (command, typo, near) => {
    expect(await main([command, typo, 'x'])).toBe(2);
    expect(errors).toEqual([`zero-impact ${command}: Unknown option '${typo}' (did you mean ${near}?)`]);
  });

  it('suggests the nearest command in one line, exit 2', async () => {
    expect(await main(['rollbak'])).toBe(2);
    expect(errors).toEqual(['zero-impact: unknown command "rollbak" (did you mean rollback?); see zero-impact --help']);
    expect(nearestCommand('zzzzzz')).toBeUndefined();
  });

  it('refuses a positional argument and a missing flag value in one line', async () => {
    expect(await main(['assess', 'facts.json'])).toBe(2);
    expect(await main(['rollback', '--function'])).toBe(2);
    expect(errors).toHaveLength(2);
    expect(errors[1]).toBe("zero-impact rollback: option '--function <name>' argument missing");
  });

  it('refuses --human with --format json, and an unknown format', async () => {
    expect(await main(['assess', '--facts', 'x', '--human', '--format', 'json'])).toBe(2);
    expect(await main(['assess', '--facts', 'x', '--format', 'yaml'])).toBe(2);
    expect(errors[0]).toBe('zero-impact assess: --format json contradicts --human');
    expect(errors[1]).toMatch(/^zero-impact assess: option '--format <format>' argument 'yaml' is invalid/);
  });

  it('prints the usage and exits 2 without a command', async () => {
    expect(await main([])).toBe(2);
    expect(logs.join('\n')).toContain('Usage: zero-impact <command> [options]');
  });
});
