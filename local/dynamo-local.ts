/**
 * A real DynamoDB-compatible server for the local run: dynalite, in memory, on 127.0.0.1 at a random port, with the
 * tables created from the same key schemas as the CDK tables (lambdas/shared/domain/table-schema.ts). The handlers
 * reach it through their normal SDK client: the local run sets AWS_ENDPOINT_URL_DYNAMODB (which SDK v3 honours for
 * DynamoDB clients built without an explicit endpoint) before it loads them.
 *
 * dynalite rejects UpdateTimeToLive, so the tables are created without TTL (items still carry the attribute).
 *
 * SDK clients resolve their endpoint once, on first use, and the handlers build theirs at module scope. So within
 * one process every later server listens on the port the first one got (the handlers' clients keep talking to it).
 */
import type { AddressInfo } from 'node:net';
import {
  CreateTableCommand,
  DescribeTableCommand,
  DynamoDBClient,
  type AttributeDefinition,
  type CreateTableCommandInput,
  type KeySchemaElement,
} from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient, paginateScan } from '@aws-sdk/lib-dynamodb';
import dynalite from 'dynalite';
import type { KeyAttribute, TableSchema } from '../lambdas/shared/domain/table-schema';

export interface LocalTable {
  name: string;
  schema: TableSchema;
}

export interface LocalDynamo {
  /** e.g. http://127.0.0.1:41234 */
  readonly endpoint: string;
  /** Requests the server received, per `dynamodb:Operation` (from the X-Amz-Target header). */
  requests(): Record<string, number>;
  /** Every item of a table, unmarshalled to plain JSON. */
  scan(table: string): Promise<Array<Record<string, unknown>>>;
  /** Stops the server (idempotent). */
  stop(): Promise<void>;
}

function keySchema(partition: KeyAttribute, sort: KeyAttribute | undefined): KeySchemaElement[] {
  return [
    { AttributeName: partition.name, KeyType: 'HASH' },
    ...(sort !== undefined ? [{ AttributeName: sort.name, KeyType: 'RANGE' as const }] : []),
  ];
}

/** The CreateTable request for a table schema: on-demand, keys and GSIs as the CDK table has them. */
export function createTableInput(name: string, schema: TableSchema): CreateTableCommandInput {
  const attributes = new Map<string, AttributeDefinition>();
  const define = (attribute: KeyAttribute | undefined): void => {
    if (attribute !== undefined) {
      attributes.set(attribute.name, { AttributeName: attribute.name, AttributeType: attribute.type });
    }
  };
  define(schema.partitionKey);
  define(schema.sortKey);
  for (const index of schema.indexes) {
    define(index.partitionKey);
    define(index.sortKey);
  }
  return {
    TableName: name,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [...attributes.values()],
    KeySchema: keySchema(schema.partitionKey, schema.sortKey),
    ...(schema.indexes.length > 0
      ? {
          GlobalSecondaryIndexes: schema.indexes.map((index) => ({
            IndexName: index.indexName,
            KeySchema: keySchema(index.partitionKey, index.sortKey),
            Projection: { ProjectionType: index.projection },
          })),
        }
      : {}),
  };
}

/** The port of the first server this process started; later servers reuse it. */
let processPort: number | undefined;

function listen(server: ReturnType<typeof dynalite>, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (error: Error): void => reject(error);
    server.once('error', onError);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', onError);
      resolve();
    });
  });
}

/** Starts dynalite on 127.0.0.1 (random port) and creates the tables. Stop it with `stop()`, also on failure. */
export async function startLocalDynamo(tables: LocalTable[]): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  const counts = new Map<string, number>();
  server.on('request', (request: { headers: Record<string, string | string[] | undefined> }) => {
    const target = request.headers['x-amz-target'];
    const operation = typeof target === 'string' ? target.split('.').pop() : undefined;
    if (operation !== undefined) counts.set(`dynamodb:${operation}`, (counts.get(`dynamodb:${operation}`) ?? 0) + 1);
  });
  if (processPort !== undefined) {
    await listen(server, processPort).catch(() => listen(server, 0));
  } else {
    await listen(server, 0);
  }
  const { port } = server.address() as AddressInfo;
  processPort ??= port;
  const endpoint = `http://127.0.0.1:${port}`;
  let stopped = false;
  const client = new DynamoDBClient({
    endpoint,
    region: 'local',
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 2,
  });
  const documents = DynamoDBDocumentClient.from(client);
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    client.destroy();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  };
  try {
    for (const table of tables) {
      await client.send(new CreateTableCommand(createTableInput(table.name, table.schema)));
      const described = await client.send(new DescribeTableCommand({ TableName: table.name }));
      if (described.Table?.TableStatus !== 'ACTIVE') {
        throw new Error(`local table ${table.name} is ${String(described.Table?.TableStatus)}, expected ACTIVE`);
      }
    }
  } catch (error) {
    await stop();
    throw error;
  }
  counts.clear();
  return {
    endpoint,
    requests: () => Object.fromEntries([...counts.entries()].sort(([a], [b]) => a.localeCompare(b))),
    scan: async (table: string) => {
      const items: Array<Record<string, unknown>> = [];
      for await (const page of paginateScan({ client: documents }, { TableName: table })) {
        items.push(...((page.Items ?? []) as Array<Record<string, unknown>>));
      }
      return items;
    },
    stop,
  };
}
