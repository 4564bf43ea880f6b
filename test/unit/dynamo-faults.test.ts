import {
  DynamoDBClient,
  DynamoDBServiceException,
  InternalServerError,
  ProvisionedThroughputExceededException,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { describeDynamoCall, dynamoError, DynamoFaultInjector } from '../../local/dynamo-faults';
import { startLocalDynamo, type LocalDynamo } from '../../local/dynamo-local';
import { FaultPlan } from '../../local/fault-plan';
import { parseScenario } from '../../local/scenario';
import { AUDIT_TABLE, STATE_TABLE } from '../../lambdas/shared/domain/table-schema';

const TABLES = { audit: 'test-AuditTable', state: 'test-StateTable' };

describe('dynamoError', () => {
  test('builds the SDK exception classes with $metadata', () => {
    const throttled = dynamoError('ProvisionedThroughputExceededException');
    expect(throttled).toBeInstanceOf(ProvisionedThroughputExceededException);
    expect(throttled).toMatchObject({ name: 'ProvisionedThroughputExceededException', $fault: 'client' });
    expect(dynamoError('InternalServerError')).toBeInstanceOf(InternalServerError);
  });

  test('builds ServiceUnavailable as the base exception, a server fault with HTTP 503', () => {
    const error = dynamoError('ServiceUnavailable');
    expect(error).toBeInstanceOf(DynamoDBServiceException);
    expect(error).toMatchObject({
      name: 'ServiceUnavailable',
      $fault: 'server',
      $metadata: { httpStatusCode: 503 },
    });
  });
});

describe('describeDynamoCall', () => {
  test('names the table kind, the item outcome and the function from the marshalled input', () => {
    expect(
      describeDynamoCall(
        { TableName: TABLES.audit, Item: { functionName: { S: 'app-01' }, outcome: { S: 'PROTECTED' } } },
        TABLES,
      ),
    ).toEqual({ table: 'audit', outcome: 'PROTECTED', functionName: 'app-01' });
    expect(describeDynamoCall({ TableName: TABLES.state, Key: { functionName: { S: 'x' } } }, TABLES)).toEqual({
      table: 'state',
      functionName: 'x',
    });
    expect(describeDynamoCall({ TableName: 'other' }, TABLES)).toEqual({});
  });
});

describe('DynamoFaultInjector against a local DynamoDB', () => {
  let dynamo: LocalDynamo;
  let client: DynamoDBClient;
  let documents: DynamoDBDocumentClient;
  let injector: DynamoFaultInjector | undefined;

  beforeAll(async () => {
    dynamo = await startLocalDynamo([
      { name: TABLES.audit, schema: AUDIT_TABLE },
      { name: TABLES.state, schema: STATE_TABLE },
    ]);
  });

  beforeEach(() => {
    client = new DynamoDBClient({
      endpoint: dynamo.endpoint,
      region: 'local',
      credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
      maxAttempts: 3,
    });
    documents = DynamoDBDocumentClient.from(client);
  });

  afterEach(() => {
    injector?.uninstall();
    injector = undefined;
    client.destroy();
  });

  afterAll(async () => {
    await dynamo.stop();
  });

  const item = (functionName: string, outcome: string): Record<string, unknown> => ({
    functionName,
    sk: `2025-01-06T09:00:00.000Z#run-1#${outcome}`,
    outcome,
  });

  test('lets calls through to the server when the decider says nothing, and counts them', async () => {
    // Prepare
    const seen: string[] = [];
    injector = new DynamoFaultInjector((operation) => {
      seen.push(operation);
      return undefined;
    }).install();

    // Act
    await documents.send(new PutCommand({ TableName: TABLES.audit, Item: item('app-01', 'PENDING') }));
    const read = await documents.send(
      new GetCommand({ TableName: TABLES.audit, Key: { functionName: 'app-01', sk: item('app-01', 'PENDING')['sk'] } }),
    );

    // Assess
    expect(read.Item).toMatchObject({ outcome: 'PENDING' });
    expect(seen).toEqual(['dynamodb:PutItem', 'dynamodb:GetItem']);
    expect(injector.attempts()).toEqual({ 'dynamodb:GetItem': 1, 'dynamodb:PutItem': 1 });
    expect(injector.faults()).toEqual({});
  });

  test('fails a matching call before it reaches the server; the SDK retries every attempt', async () => {
    // Prepare: the fault plan decides, as the local run will wire it
    const plan = new FaultPlan(
      parseScenario(
        {
          faults: [
            { operation: 'dynamodb:PutItem', table: 'audit', outcome: 'PROTECTED', error: 'InternalServerError' },
          ],
        },
        'test.json',
      ),
    );
    injector = new DynamoFaultInjector((operation, input) => {
      const facts = describeDynamoCall(input, TABLES);
      const decision = plan.onCall({ run: 1, second: 0, operation, phase: 'before', ...facts });
      return decision.fault.kind === 'error' ? dynamoError(decision.fault.error, decision.fault.message) : undefined;
    }).install();
    const before = dynamo.requests()['dynamodb:PutItem'] ?? 0;

    // Act
    const failure = await documents
      .send(new PutCommand({ TableName: TABLES.audit, Item: item('app-02', 'PROTECTED') }))
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    await documents.send(new PutCommand({ TableName: TABLES.audit, Item: item('app-02', 'PENDING') }));

    // Assess
    expect(failure).toBeInstanceOf(InternalServerError);
    expect(failure).toMatchObject({ $metadata: { attempts: 3 } });
    expect(injector.attempts()).toEqual({ 'dynamodb:PutItem': 4 });
    expect(injector.faults()).toEqual({ 'dynamodb:PutItem': 3 });
    expect((dynamo.requests()['dynamodb:PutItem'] ?? 0) - before).toBe(1);
    expect(plan.records()).toHaveLength(3);
    expect(plan.records()[0]).toMatchObject({ operation: 'dynamodb:PutItem', function: 'app-02' });
  });

  test('uninstall restores the prototypes and removes the middleware from every stack', async () => {
    // Prepare
    const clientSend = Object.getOwnPropertyDescriptor(DynamoDBClient.prototype, 'send');
    const documentSend = Object.getOwnPropertyDescriptor(DynamoDBDocumentClient.prototype, 'send');
    const local = new DynamoFaultInjector(() => dynamoError('ServiceUnavailable')).install();
    const rejected = await documents.send(new GetCommand({ TableName: TABLES.state, Key: { pk: 'x' } })).then(
      () => 'ok',
      (error: unknown) => (error as Error).name,
    );

    // Act
    local.uninstall();
    local.uninstall();
    const after = await documents.send(new GetCommand({ TableName: TABLES.state, Key: { pk: 'x' } }));

    // Assess
    expect(rejected).toBe('ServiceUnavailable');
    expect(after.$metadata.httpStatusCode).toBe(200);
    expect(Object.getOwnPropertyDescriptor(DynamoDBClient.prototype, 'send')).toEqual(clientSend);
    expect(Object.getOwnPropertyDescriptor(DynamoDBDocumentClient.prototype, 'send')).toEqual(documentSend);
    expect(client.middlewareStack.identify().some((m) => m.includes('zeroImpactDynamoFaults'))).toBe(false);
    expect(local.isInstalled).toBe(false);
  });

  test('refuses a second injector while one is installed', () => {
    injector = new DynamoFaultInjector(() => undefined).install();
    expect(() => new DynamoFaultInjector(() => undefined).install()).toThrow(/another DynamoFaultInjector/);
  });
});
