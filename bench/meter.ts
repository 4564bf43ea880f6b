/**
 * The benchmark's meters: what DynamoDB writes cost (write request units per table and index, bytes stored), and the
 * pure cost model that turns one run's counts into dollars with bench/prices.json.
 *
 * DynamoDB is a real local server (dynalite), which does not report consumed capacity, so the meter looks at every
 * document-client command the handlers send (all of the engine's DynamoDB access goes through
 * `DynamoDBDocumentClient`) and sizes the items as DynamoDB does: "the size of an item is the sum of the lengths of
 * its attribute names and values", strings UTF-8 bytes, numbers "approximately (number of UTF-8-encoded bytes of
 * attribute name) + (1 byte per two significant digits) + (1 byte)", lists and maps 3 bytes plus 1 byte per element.
 * A write costs one WRU per started KB of the item, on the table and again on every GSI the item appears in (an item
 * appears in an index when it has the index's key attributes; the audit table's indexes project ALL). Storage adds
 * 100 bytes of index overhead per item per table/index. *Sources:* DynamoDB Developer Guide, "Item sizes and
 * formats", "Read/write capacity mode" (write request units), "Global secondary indexes: provisioned throughput
 * considerations"; https://aws.amazon.com/dynamodb/pricing/on-demand/ (storage: "DynamoDB measures the size of your
 * billable data by adding the raw byte size of the data you upload plus a per-item storage overhead of 100 bytes").
 */
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { AUDIT_TABLE, STATE_TABLE, type TableSchema } from '../lambdas/shared/domain/table-schema';

/** One price of bench/prices.json. */
export interface UnitPrice {
  usd: number;
  unit: string;
  source: string;
}

export interface PriceTable {
  region: string;
  retrieved: string;
  prices: Record<PriceKey, UnitPrice>;
  hoursPerMonth: number;
}

export type PriceKey =
  | 'lambdaRequest'
  | 'lambdaGbSecond'
  | 'sfnStandardTransition'
  | 'sfnExpressRequest'
  | 'sfnExpressGbSecond'
  | 'dynamoWriteRequestUnit'
  | 'dynamoReadRequestUnit'
  | 'dynamoStorageGbMonth'
  | 'cloudwatchMetricRequested'
  | 'cloudwatchLogsIngestedGb'
  | 'snsPublish'
  | 's3Put'
  | 's3Get'
  | 'lambdaControlPlaneCall'
  | 'ec2DescribeCall';

/** DynamoDB's size of a value (see the module comment). */
export function valueSize(value: unknown): number {
  if (value === null || value === undefined || typeof value === 'boolean') return 1;
  if (typeof value === 'string') return Buffer.byteLength(value, 'utf8');
  if (typeof value === 'number' || typeof value === 'bigint') {
    const digits = String(value)
      .replace(/[^0-9]/g, '')
      .replace(/^0+/, '').length;
    return Math.ceil(Math.max(1, digits) / 2) + 1;
  }
  if (value instanceof Uint8Array) return value.byteLength;
  if (value instanceof Set) return [...(value as Set<unknown>)].reduce<number>((sum, v) => sum + valueSize(v), 0);
  if (Array.isArray(value)) return 3 + value.reduce<number>((sum, v) => sum + 1 + valueSize(v), 0);
  if (typeof value === 'object') return 3 + itemSize(value as Record<string, unknown>, 1);
  return 1;
}

/** DynamoDB's size of an item: attribute names plus values (`perAttribute` extra bytes inside a map). */
export function itemSize(item: Readonly<Record<string, unknown>>, perAttribute = 0): number {
  let size = 0;
  for (const [name, value] of Object.entries(item)) {
    if (value === undefined) continue;
    size += Buffer.byteLength(name, 'utf8') + valueSize(value) + perAttribute;
  }
  return size;
}

const KB = 1024;
const STORAGE_OVERHEAD_BYTES = 100;

export interface TableWrites {
  /** Write request units on the table itself. */
  table: number;
  /** Write request units per GSI. */
  indexes: Record<string, number>;
  /** Items written (puts, updates, deletes). */
  items: number;
  /** Bytes put (raw item sizes of PutItem / BatchWriteItem puts). */
  bytesPut: number;
  /** GB-months of storage the puts keep, as long as their TTL says (table + indexes, with the 100-byte overhead). */
  storageGbMonths: number;
  /** Read request units (GetItem and BatchGetItem keys 1 each, Query 1 per request: an estimate). */
  reads: number;
}

function emptyWrites(schema: TableSchema): TableWrites {
  return {
    table: 0,
    indexes: Object.fromEntries(schema.indexes.map((i) => [i.indexName, 0])),
    items: 0,
    bytesPut: 0,
    storageGbMonths: 0,
    reads: 0,
  };
}

interface CommandLike {
  constructor: { name: string };
  input?: Record<string, unknown>;
}

/** Meters every DynamoDB document-client command sent while installed, per table kind (audit, state). */
export class DynamoMeter {
  private totals: Record<'audit' | 'state', TableWrites> = {
    audit: emptyWrites(AUDIT_TABLE),
    state: emptyWrites(STATE_TABLE),
  };
  private original: ((this: unknown, ...args: unknown[]) => unknown) | undefined;

  constructor(
    private readonly tableKind: (tableName: string) => 'audit' | 'state' | undefined,
    private readonly now: () => number,
  ) {}

  install(): this {
    if (this.original !== undefined) return this;
    const proto = DynamoDBDocumentClient.prototype as unknown as { send: (...args: unknown[]) => unknown };
    const original = proto.send;
    this.original = original;
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the send patch needs the meter and the client
    const meter = this;
    proto.send = function send(this: unknown, ...args: unknown[]): unknown {
      meter.record(args[0] as CommandLike);
      return original.apply(this, args);
    };
    return this;
  }

  uninstall(): void {
    if (this.original === undefined) return;
    (DynamoDBDocumentClient.prototype as unknown as { send: unknown }).send = this.original;
    this.original = undefined;
  }

  /** The counts so far, and starts again from zero. */
  take(): Record<'audit' | 'state', TableWrites> {
    const totals = this.totals;
    this.totals = { audit: emptyWrites(AUDIT_TABLE), state: emptyWrites(STATE_TABLE) };
    return totals;
  }

  private put(kind: 'audit' | 'state', item: Record<string, unknown>): void {
    const schema = kind === 'audit' ? AUDIT_TABLE : STATE_TABLE;
    const totals = this.totals[kind];
    const size = itemSize(item);
    const units = Math.max(1, Math.ceil(size / KB));
    totals.table += units;
    totals.items += 1;
    totals.bytesPut += size;
    let copies = 1;
    for (const index of schema.indexes) {
      const keys = [index.partitionKey.name, ...(index.sortKey !== undefined ? [index.sortKey.name] : [])];
      if (keys.every((k) => item[k] !== undefined && item[k] !== null)) {
        totals.indexes[index.indexName] = (totals.indexes[index.indexName] ?? 0) + units;
        copies += 1;
      }
    }
    const ttlName = schema.timeToLiveAttribute;
    const expires = ttlName !== undefined ? item[ttlName] : undefined;
    const heldMonths =
      typeof expires === 'number' ? Math.max(0, expires * 1000 - this.now()) / (30.4 * 24 * 3600 * 1000) : 12;
    totals.storageGbMonths += ((size + STORAGE_OVERHEAD_BYTES) * copies * heldMonths) / KB ** 3;
  }

  private small(kind: 'audit' | 'state'): void {
    this.totals[kind].table += 1;
    this.totals[kind].items += 1;
  }

  private record(command: CommandLike): void {
    const input = command?.input ?? {};
    const name = command?.constructor?.name ?? '';
    const tableName = typeof input['TableName'] === 'string' ? input['TableName'] : undefined;
    const kind = tableName !== undefined ? this.tableKind(tableName) : undefined;
    switch (name) {
      case 'PutCommand':
        if (kind !== undefined) this.put(kind, (input['Item'] as Record<string, unknown>) ?? {});
        return;
      case 'UpdateCommand':
      case 'DeleteCommand':
        if (kind !== undefined) this.small(kind);
        return;
      case 'GetCommand':
      case 'QueryCommand':
      case 'ScanCommand':
        if (kind !== undefined) this.totals[kind].reads += 1;
        return;
      case 'BatchWriteCommand': {
        const requests = (input['RequestItems'] as Record<string, Array<Record<string, unknown>>>) ?? {};
        for (const [table, list] of Object.entries(requests)) {
          const batchKind = this.tableKind(table);
          if (batchKind === undefined) continue;
          for (const request of list) {
            const put = request['PutRequest'] as { Item?: Record<string, unknown> } | undefined;
            if (put?.Item !== undefined) this.put(batchKind, put.Item);
            else this.small(batchKind);
          }
        }
        return;
      }
      case 'BatchGetCommand': {
        const requests = (input['RequestItems'] as Record<string, { Keys?: unknown[] }>) ?? {};
        for (const [table, request] of Object.entries(requests)) {
          const batchKind = this.tableKind(table);
          if (batchKind !== undefined) this.totals[batchKind].reads += request.Keys?.length ?? 0;
        }
        return;
      }
      case 'TransactWriteCommand': {
        const items = (input['TransactItems'] as Array<Record<string, { TableName?: string }>>) ?? [];
        for (const entry of items) {
          const op = Object.values(entry)[0];
          const transactKind = op?.TableName !== undefined ? this.tableKind(op.TableName) : undefined;
          if (transactKind === undefined) continue;
          // Transactional writes cost two units per KB.
          this.small(transactKind);
          this.small(transactKind);
        }
        return;
      }
      default:
        return;
    }
  }
}

/** What one run used, the input of the cost model. */
export interface RunUsage {
  functions: number;
  apiCalls: Record<string, number>;
  lambda: { invocations: number; gbSeconds: number };
  sfn: { standardTransitions: number; expressRequests: number; expressGbSeconds: number };
  dynamo: Record<'audit' | 'state', TableWrites>;
  metricsRequested: number;
  logBytes: number;
}

export interface CostBreakdown {
  /** Dollars for this one run, by item. */
  perRun: Record<string, number>;
  perRunTotal: number;
  /** Dollars a month (hourly runs) per 1,000 functions, by item and in all. */
  perThousandPerMonth: Record<string, number>;
  dollarsPerThousandFunctionsPerMonth: number;
}

/** The cost of one run, and of running it hourly for a month, per 1,000 functions. Pure. */
export function costOf(usage: RunUsage, prices: PriceTable): CostBreakdown {
  const p = (key: PriceKey): number => prices.prices[key].usd;
  const calls = (op: string): number => usage.apiCalls[op] ?? 0;
  const writeUnits = (w: TableWrites): number => w.table + Object.values(w.indexes).reduce((a, b) => a + b, 0);
  const perRun: Record<string, number> = {
    'Lambda requests': usage.lambda.invocations * p('lambdaRequest'),
    'Lambda duration': usage.lambda.gbSeconds * p('lambdaGbSecond'),
    'Step Functions Standard transitions': usage.sfn.standardTransitions * p('sfnStandardTransition'),
    'Step Functions Express':
      usage.sfn.expressRequests * p('sfnExpressRequest') + usage.sfn.expressGbSeconds * p('sfnExpressGbSecond'),
    'DynamoDB writes': (writeUnits(usage.dynamo.audit) + writeUnits(usage.dynamo.state)) * p('dynamoWriteRequestUnit'),
    'DynamoDB reads': (usage.dynamo.audit.reads + usage.dynamo.state.reads) * p('dynamoReadRequestUnit'),
    'DynamoDB storage':
      (usage.dynamo.audit.storageGbMonths + usage.dynamo.state.storageGbMonths) * p('dynamoStorageGbMonth'),
    'CloudWatch metrics': usage.metricsRequested * p('cloudwatchMetricRequested'),
    'CloudWatch Logs': (usage.logBytes / 1024 ** 3) * p('cloudwatchLogsIngestedGb'),
    'SNS publishes': calls('sns:Publish') * p('snsPublish'),
    S3:
      (calls('s3:PutObject') + calls('s3:ListObjectsV2') + calls('s3:DeleteObject')) * p('s3Put') +
      calls('s3:GetObject') * p('s3Get'),
  };
  const perRunTotal = Object.values(perRun).reduce((a, b) => a + b, 0);
  const scale = (prices.hoursPerMonth * 1000) / Math.max(1, usage.functions);
  const perThousandPerMonth = Object.fromEntries(Object.entries(perRun).map(([k, v]) => [k, v * scale]));
  return { perRun, perRunTotal, perThousandPerMonth, dollarsPerThousandFunctionsPerMonth: perRunTotal * scale };
}
