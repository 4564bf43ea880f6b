/**
 * The audit table (append-only decisions, what security reviews read) and the state table (the engine's working
 * state). Both are created FROM lambdas/shared/domain/table-schema.ts, the same data the local run uses, so the
 * deployed and the local tables cannot drift.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { AUDIT_TABLE, KeyAttribute, STATE_TABLE, TableSchema } from '../../lambdas/shared/domain/table-schema';

export interface AuditTablesProps {
  /** The stack's customer-managed key (rotation on). */
  readonly key: kms.IKey;
}

function attribute(key: KeyAttribute): dynamodb.Attribute {
  return { name: key.name, type: key.type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER };
}

function createTable(
  scope: Construct,
  id: string,
  schema: TableSchema,
  key: kms.IKey,
  deletionProtection: boolean,
): dynamodb.Table {
  const table = new dynamodb.Table(scope, id, {
    partitionKey: attribute(schema.partitionKey),
    sortKey: schema.sortKey === undefined ? undefined : attribute(schema.sortKey),
    billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
    encryption: dynamodb.TableEncryption.CUSTOMER_MANAGED,
    encryptionKey: key,
    pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
    deletionProtection,
    timeToLiveAttribute: schema.timeToLiveAttribute,
    // Never DESTROY: `cdk destroy` leaves the tables (and their key) behind; see the cleanup notes.
    removalPolicy: RemovalPolicy.RETAIN,
  });
  for (const index of schema.indexes) {
    table.addGlobalSecondaryIndex({
      indexName: index.indexName,
      partitionKey: attribute(index.partitionKey),
      sortKey: index.sortKey === undefined ? undefined : attribute(index.sortKey),
      projectionType: dynamodb.ProjectionType.ALL,
    });
  }
  return table;
}

export class AuditTables extends Construct {
  /** One item per decision per run; PutItem only, nothing in the stack may update or delete an item. */
  public readonly auditTable: dynamodb.Table;
  /** Lease, per-run counters, persistent exclusions, last decisions. */
  public readonly stateTable: dynamodb.Table;

  constructor(scope: Construct, id: string, props: AuditTablesProps) {
    super(scope, id);
    this.auditTable = createTable(this, 'AuditTable', AUDIT_TABLE, props.key, true);
    // Deletion-protected too: it holds the persistent exclusions, which no deploy must lose.
    this.stateTable = createTable(this, 'StateTable', STATE_TABLE, props.key, true);
  }

  /** ARN of one of the audit table's indexes (for a Query grant on exactly that index). */
  public auditIndexArn(indexName: string): string {
    return `${this.auditTable.tableArn}/index/${indexName}`;
  }
}
