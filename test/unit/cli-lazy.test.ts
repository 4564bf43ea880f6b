/**
 * The reviewing commands (issue 12) are loaded only when they run: `zero-impact --help` lists them from their help
 * text, and `audit`, which loads the engine's handlers, is not loaded by another command.
 */
const mockLoaded: string[] = [];

jest.mock('../../bin/commands/audit', () => {
  mockLoaded.push('audit');
  return jest.requireActual('../../bin/commands/audit');
});
jest.mock('../../bin/commands/report', () => {
  mockLoaded.push('report');
  return jest.requireActual('../../bin/commands/report');
});

import { main } from '../../bin/cli';

beforeEach(() => {
  jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
  jest.spyOn(console, 'log').mockImplementation(() => undefined);
  jest.spyOn(console, 'error').mockImplementation(() => undefined);
});

afterEach(() => jest.restoreAllMocks());

it('lists the reviewing commands without loading them, and loads one when it runs', async () => {
  expect(await main(['--help'])).toBe(0);
  expect(await main(['include', '--help'])).toBe(0);
  expect(mockLoaded).toEqual([]);
  expect(await main(['report', '--help'])).toBe(0);
  expect(mockLoaded).toEqual(['report']);
});
