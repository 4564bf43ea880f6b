/**
 * The simulated account's additions for issue 9: states:DescribeExecution (the lease takeover reads it), a call
 * hook that answers with an error, the after-call hook, and changes by others (delete, create, tag).
 */
import {
  GetFunctionCommand,
  LambdaClient,
  ListFunctionsCommand,
  ResourceNotFoundException,
} from '@aws-sdk/client-lambda';
import { DescribeExecutionCommand, ExecutionDoesNotExist, InvalidArn, SFNClient } from '@aws-sdk/client-sfn';
import { SimulatedAccount, type CallEndEvent } from '../../local/simulated-account';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const MACHINE = `arn:aws:states:${REGION}:${ACCOUNT}:stateMachine:ZeroImpactProtect-StateMachine`;
const EXECUTION = `arn:aws:states:${REGION}:${ACCOUNT}:execution:ZeroImpactProtect-StateMachine:run-1`;

describe('SimulatedAccount for the scenario runs', () => {
  let account: SimulatedAccount;
  const sfn = new SFNClient({ region: REGION, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });
  const lambda = new LambdaClient({ region: REGION, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } });

  beforeEach(() => {
    account = new SimulatedAccount({
      estate: [{ configuration: { FunctionName: 'app-01', Runtime: 'python3.12' }, tags: { team: 'a' } }],
      region: REGION,
      account: ACCOUNT,
    }).install();
  });

  afterEach(() => account.uninstall());

  it('answers DescribeExecution RUNNING for an execution in progress and ABORTED once it was killed', async () => {
    // Prepare
    const start = Date.parse('2025-01-06T09:00:00.000Z');
    account.setExecution({
      executionArn: EXECUTION,
      stateMachineArn: MACHINE,
      name: 'run-1',
      status: 'RUNNING',
      startDate: start,
    });

    // Act
    const running = await sfn.send(new DescribeExecutionCommand({ executionArn: EXECUTION }));
    account.setExecution({
      executionArn: EXECUTION,
      stateMachineArn: MACHINE,
      name: 'run-1',
      status: 'ABORTED',
      startDate: start,
      stopDate: start + 60_000,
    });
    const aborted = await sfn.send(new DescribeExecutionCommand({ executionArn: EXECUTION }));

    // Assess: AWS's shape, dates as Dates.
    expect(running).toMatchObject({
      executionArn: EXECUTION,
      stateMachineArn: MACHINE,
      name: 'run-1',
      status: 'RUNNING',
    });
    expect(running.startDate).toEqual(new Date(start));
    expect(running.stopDate).toBeUndefined();
    expect(aborted).toMatchObject({
      status: 'ABORTED',
      stopDate: new Date(start + 60_000),
      redriveStatus: 'REDRIVABLE',
    });
    expect(account.calls()['states:DescribeExecution']).toBe(2);
  });

  it('refuses an unknown execution with ExecutionDoesNotExist and a malformed ARN with InvalidArn', async () => {
    // Act / Assess
    await expect(sfn.send(new DescribeExecutionCommand({ executionArn: EXECUTION }))).rejects.toBeInstanceOf(
      ExecutionDoesNotExist,
    );
    await expect(sfn.send(new DescribeExecutionCommand({ executionArn: 'run-1' }))).rejects.toBeInstanceOf(InvalidArn);
  });

  it('answers a call with the error a call hook throws, and tells the after-call hook how it ended', async () => {
    // Prepare
    const ended: CallEndEvent[] = [];
    const detach = account.onCall(({ operation }) => {
      if (operation === 'lambda:GetFunction') throw account.error('lambda', 'ServiceException', 'injected');
    });
    account.onCallEnd((event) => void ended.push(event));
    const noRetry = new LambdaClient({
      region: REGION,
      maxAttempts: 1,
      credentials: { accessKeyId: 'a', secretAccessKey: 'b' },
    });

    // Act
    const failed = noRetry.send(new GetFunctionCommand({ FunctionName: 'app-01' }));
    await expect(failed).rejects.toMatchObject({ name: 'ServiceException' });
    detach();
    await noRetry.send(new ListFunctionsCommand({}));

    // Assess
    expect(ended.map(({ operation, ok, error }) => ({ operation, ok, error }))).toEqual([
      { operation: 'lambda:GetFunction', ok: false, error: 'ServiceException' },
      { operation: 'lambda:ListFunctions', ok: true, error: undefined },
    ]);
  });

  it('deletes, creates and tags functions as others would', async () => {
    // Act
    account.createFunction({ configuration: { FunctionName: 'app-new', Runtime: 'python3.12' }, tags: { x: '1' } });
    account.tagFunction('app-new', { 'zero-impact:exclude': 'true' });
    account.deleteFunction('app-01');
    const listed = await lambda.send(new ListFunctionsCommand({}));
    const created = await lambda.send(new GetFunctionCommand({ FunctionName: 'app-new' }));

    // Assess
    expect(listed.Functions?.map((f) => f.FunctionName)).toEqual(['app-new']);
    expect(created.Tags).toEqual({ x: '1', 'zero-impact:exclude': 'true' });
    expect(created.Configuration).toMatchObject({ Handler: 'index.handler', MemorySize: 128, State: 'Active' });
    await expect(lambda.send(new GetFunctionCommand({ FunctionName: 'app-01' }))).rejects.toBeInstanceOf(
      ResourceNotFoundException,
    );
  });
});
