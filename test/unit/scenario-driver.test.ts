/**
 * The runtime of a scenario run: the virtual clock (and the SDK's retry waits on it) and the driver that applies the
 * fault plan to the simulated account.
 */
import { GetFunctionCommand, LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { systemClock } from '../../lambdas/shared/adapters/rate-limiter';
import { parseScenario } from '../../local/scenario';
import { RUN_KILLED, ScenarioDriver } from '../../local/scenario-driver';
import { installSdkVirtualTime, uninstallSdkVirtualTime } from '../../local/sdk-virtual-time';
import { SimulatedAccount } from '../../local/simulated-account';
import { VirtualClock, scheduleIntervalMs } from '../../local/virtual-clock';

const REGION = 'eu-west-1';
const credentials = { accessKeyId: 'a', secretAccessKey: 'b' };

describe('VirtualClock', () => {
  it('moves to the wake-up time instead of waiting; sleepers waking together move it once', async () => {
    // Prepare
    const clock = new VirtualClock(Date.parse('2025-01-06T09:00:00.000Z'));
    const start = clock.now();
    const real = Date.now();

    // Act
    await Promise.all([clock.sleep(3_600_000), clock.sleep(3_600_000)]);

    // Assess
    expect(clock.now() - start).toBeGreaterThanOrEqual(3_600_000);
    expect(clock.now() - start).toBeLessThan(3_600_000 + 1_000);
    expect(Date.now() - real).toBeLessThan(1_000);
  });

  it("makes the engine's systemClock read it until uninstalled, and never starts before an earlier clock ended", () => {
    // Prepare
    const clock = new VirtualClock();
    const original = systemClock.now;

    // Act
    clock.install();
    clock.advance(5 * 3_600_000);
    const seen = systemClock.now();
    clock.uninstall();
    const next = new VirtualClock();

    // Assess
    expect(seen - Date.now()).toBeGreaterThanOrEqual(5 * 3_600_000 - 1_000);
    expect(systemClock.now).toBe(original);
    expect(next.now()).toBeGreaterThanOrEqual(seen);
  });

  it.each([
    ['rate(1 hour)', 3_600_000],
    ['rate(30 minutes)', 1_800_000],
    ['rate(2 days)', 172_800_000],
    ['cron(0 * * * ? *)', 3_600_000],
  ])('reads the schedule interval of %s', (expression, ms) => {
    // Act / Assess
    expect(scheduleIntervalMs(expression)).toBe(ms);
  });
});

describe('the SDK on virtual time', () => {
  let account: SimulatedAccount;

  afterEach(() => {
    uninstallSdkVirtualTime();
    account.uninstall();
  });

  it('retries throttling as the SDK decides, moving the virtual clock by the back-off instead of waiting', async () => {
    // Prepare
    const clock = new VirtualClock();
    account = new SimulatedAccount({ estate: [{ configuration: { FunctionName: 'app-01' } }], clock }).install();
    account.injectFault({ operation: 'lambda:GetFunction', error: 'TooManyRequestsException', times: 3 });
    installSdkVirtualTime(clock);
    const client = new LambdaClient({ region: REGION, credentials, maxAttempts: 5 });
    const virtualStart = clock.now();
    const realStart = Date.now();

    // Act
    const answer = await client.send(new GetFunctionCommand({ FunctionName: 'app-01' }));

    // Assess
    expect(answer.$metadata.attempts).toBe(4);
    expect(Date.now() - realStart).toBeLessThan(1_000);
    expect(clock.now() - virtualStart).toBeGreaterThan(0);
  });
});

describe('ScenarioDriver', () => {
  let account: SimulatedAccount;
  let driver: ScenarioDriver;
  const client = new LambdaClient({ region: REGION, credentials, maxAttempts: 1 });

  afterEach(() => {
    driver.stop();
    account.uninstall();
  });

  function start(input: unknown): VirtualClock {
    const clock = new VirtualClock();
    account = new SimulatedAccount({
      estate: [{ configuration: { FunctionName: 'app-01' } }, { configuration: { FunctionName: 'app-02' } }],
      clock,
    }).install();
    driver = new ScenarioDriver({
      scenario: parseScenario(input, 'test'),
      account,
      clock,
      tables: { audit: 'audit', state: 'state' },
    });
    return clock;
  }

  it("throws a fault's SDK exception inside a run only, and records it with the run and the call", async () => {
    // Prepare
    start({ faults: [{ operation: 'lambda:GetFunction', function: 'app-02', error: 'ServiceException', times: 1 }] });
    const get = (name: string) => client.send(new GetFunctionCommand({ FunctionName: name }));

    // Act
    await get('app-02');
    const inRun = driver.runScope(
      1,
      () => undefined,
      async () => {
        await get('app-01');
        return get('app-02');
      },
    );

    // Assess
    await expect(inRun).rejects.toMatchObject({ name: 'ServiceException', $metadata: { httpStatusCode: 500 } });
    expect(driver.records()).toEqual([
      expect.objectContaining({
        run: 1,
        callIndex: 2,
        operation: 'lambda:GetFunction',
        function: 'app-02',
        fault: 'ServiceException',
      }),
    ]);
  });

  it('kills the run after the trigger call: onKill once, every later call of that run fails with RunKilled', async () => {
    // Prepare
    start({ events: [{ after: 'lambda:ListFunctions', do: 'kill' }] });
    const kills: number[] = [];

    // Act
    const run = driver.runScope(
      1,
      () => void kills.push(1),
      async () => {
        const listed = client.send(new ListFunctionsCommand({})).then(
          () => 'answered',
          (error: Error) => error.name,
        );
        const after = client.send(new GetFunctionCommand({ FunctionName: 'app-01' })).then(
          () => 'answered',
          (error: Error) => error.name,
        );
        return Promise.all([listed, after]);
      },
    );

    // Assess: the ListFunctions happened in the account, but its caller died before the answer.
    await expect(run).resolves.toEqual([RUN_KILLED, RUN_KILLED]);
    expect(kills).toEqual([1]);
    expect(driver.isKilled(1)).toBe(true);
    expect(account.calls()['lambda:ListFunctions']).toBe(1);
  });

  it('applies deploy, tag, delete and create events to the account and remembers what they changed', async () => {
    // Prepare
    start({
      events: [
        { before: 'lambda:ListFunctions', do: 'deploy', function: 'app-01', change: { MemorySize: 1024 } },
        { after: 'lambda:ListFunctions', do: 'tag', function: 'app-01', tags: { 'zero-impact:exclude': 'true' } },
        { after: 'lambda:ListFunctions', do: 'delete', function: 'app-02' },
        {
          after: 'lambda:ListFunctions',
          do: 'create',
          function: { FunctionName: 'app-new', Environment: { Variables: { TOKEN: 'tok-5f1c9a7e3b2d' } } },
        },
      ],
    });

    // Act
    await driver.runScope(
      1,
      () => undefined,
      () => client.send(new ListFunctionsCommand({})),
    );

    // Assess
    expect(account.functionConfigurations().map((c) => [c.FunctionName, c.MemorySize])).toEqual([
      ['app-01', 1024],
      ['app-new', 128],
    ]);
    expect([...driver.outOfBand]).toEqual(['app-01']);
    expect([...driver.created.keys()]).toEqual(['app-new']);
    expect(driver.createdSecrets).toEqual(['tok-5f1c9a7e3b2d']);
    expect(driver.records().map((r) => ('event' in r ? r.event : r.fault))).toEqual([
      'deploy',
      'tag',
      'delete',
      'create',
    ]);
  });

  it('crashes a task after its work with Lambda.ServiceException, once', () => {
    // Prepare
    start({ events: [{ afterTask: 'Assess batch', batch: 2, do: 'crash' }] });

    // Act / Assess: batches are numbered in the order their invocations start; a retry keeps its number.
    void driver.runScope(
      1,
      () => undefined,
      async () => {
        driver.beforeTask('Assess batch', { Items: [1] });
        driver.beforeTask('Assess batch', { Items: [2] });
        expect(() => driver.afterTask('Assess batch', { Items: [1] })).not.toThrow();
        expect(() => driver.afterTask('Assess batch', { Items: [2] })).toThrow(
          expect.objectContaining({ name: 'Lambda.ServiceException' }),
        );
        expect(() => driver.afterTask('Assess batch', { Items: [2] })).not.toThrow();
      },
    );
  });
});
