import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarioFile, parseScenario, ScenarioError, type Scenario } from '../../local/scenario';

const SCENARIOS_DIR = join(__dirname, '..', 'scenarios');

function problemsOf(input: unknown): string[] {
  try {
    parseScenario(input, 'scenario.json');
  } catch (error) {
    if (error instanceof ScenarioError) return error.problems;
    throw error;
  }
  throw new Error('expected a ScenarioError');
}

describe('parseScenario', () => {
  test('accepts the example of issue 9 and keeps every key', () => {
    // Act
    const scenario: Scenario = loadScenarioFile(join(SCENARIOS_DIR, 'issue-example.json'));

    // Assess
    expect(scenario.seed).toBe(7);
    expect(scenario.faults).toHaveLength(7);
    expect(scenario.faults[0]).toEqual({
      operation: 'lambda:UpdateFunctionConfiguration',
      function: 'app-01',
      error: 'ResourceConflictException',
      times: 3,
    });
    expect(scenario.faults[1]).toMatchObject({ probability: 0.3, runs: [1], times: 'all' });
    expect(scenario.faults[2]).toMatchObject({ after: 'lambda:UpdateFunctionConfiguration', times: 'all' });
    expect(scenario.faults[3]).toMatchObject({ table: 'audit', outcome: 'PROTECTED', times: 1 });
    expect(scenario.faults[4]).toMatchObject({ fromSecond: 5, forSeconds: 25 });
    expect(scenario.faults[6]).toMatchObject({ updateEnds: 'Failed', reason: 'EniLimitExceeded' });
    expect(scenario.events.map((e) => e.do)).toEqual(['tag', 'deploy', 'kill', 'crash', 'delete', 'create']);
    expect(scenario.events[0]).toMatchObject({
      trigger: { kind: 'after', operation: 'tag:GetResources' },
      run: 1,
      function: 'app-04',
      tags: { 'zero-impact:exclude': 'true' },
      times: 1,
    });
    expect(scenario.events[3]).toMatchObject({ trigger: { kind: 'afterTask', state: 'Assess batch', batch: 1 } });
    expect(scenario.events[5]).toMatchObject({ function: { FunctionName: 'app-new', Runtime: 'python3.12' } });
  });

  test('defaults the seed to 1 and the lists to empty', () => {
    expect(parseScenario({}, 's.json')).toEqual({ seed: 1, faults: [], events: [] });
  });

  test('reports every problem, one line per key path', () => {
    // Prepare
    const input = {
      seed: -1,
      extra: true,
      faults: [
        { operation: 'lambda:Invoke', error: 'X', times: 0 },
        { operation: 'lambda', error: 'X' },
        { operation: 'lambda:Invoke', error: 'X', times: 'some' },
        { operation: 'sns:Publish' },
        { operation: 'lambda:Invoke', updateEnds: 'Failed', reason: 'r' },
        { operation: 'sns:Publish', error: 'X', table: 'audit' },
      ],
      events: [
        { do: 'crash', after: 'lambda:ListFunctions' },
        { before: 'lambda:X', do: 'tag', function: 'f' },
      ],
    };

    // Act
    const problems = problemsOf(input);

    // Assess
    expect(problems).toEqual([
      'seed: expected an integer from 0 to 4294967295',
      '(root): unknown key "extra"',
      'faults[0].times: expected a positive integer or "all"',
      expect.stringMatching(/^faults\[1\]\.operation: expected an IAM action/),
      'faults[2].times: expected a positive integer or "all"',
      'faults[3].error: required (or "updateEnds": "Failed" with a "reason")',
      'faults[4].updateEnds: only with "operation": "lambda:UpdateFunctionConfiguration"',
      'faults[5].table: only with a "dynamodb:" operation',
      'events[0].afterTask: required with "do": "crash"',
      'events[1].tags: required with "do": "tag"',
    ]);
  });

  test('never echoes a value of the file in its problems (unknown keys are named, values never)', () => {
    // Prepare
    const secret = 'hunter2-SECRET-value';
    const input = {
      seed: secret,
      faults: [
        { operation: secret, function: secret, error: secret, times: secret, probability: secret, table: secret },
        secret,
      ],
      events: [{ do: secret, after: secret, function: secret, tags: { a: 1 }, change: secret }],
    };

    // Act
    const problems = problemsOf(input);

    // Assess
    expect(problems.length).toBeGreaterThan(5);
    for (const problem of problems) expect(problem).not.toContain('hunter2');
  });

  test('refuses a bad JSON file with one line: the file name and the position, no content', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'scenario-'));
    const file = join(dir, 'bad.json');
    writeFileSync(file, '{ "seed": 7, "faults": [ SECRET-CONTENT ] }');

    // Act
    let error: unknown;
    try {
      loadScenarioFile(file);
    } catch (e) {
      error = e;
    }

    // Assess
    expect(error).toBeInstanceOf(ScenarioError);
    const message = (error as Error).message;
    expect(message).toContain(file);
    expect(message).toMatch(/not valid JSON \((at position \d+|at line \d+ column \d+|parse error)\)/);
    expect(message).not.toContain('SECRET');
    expect(message.split('\n')).toHaveLength(1);
  });

  test('refuses a missing file naming it', () => {
    expect(() => loadScenarioFile('/nonexistent/scenario.json')).toThrow(
      /\/nonexistent\/scenario\.json: cannot read file \(ENOENT\)/,
    );
  });
});

describe('the scenario files of test/scenarios', () => {
  const files = readdirSync(SCENARIOS_DIR).filter((f) => f.endsWith('.json') && f !== 'last-run.json');

  test('exist', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  test.each(files)('%s keeps the scenario contract', (file) => {
    expect(() => loadScenarioFile(join(SCENARIOS_DIR, file))).not.toThrow();
  });
});
