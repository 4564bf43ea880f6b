import { Match } from 'aws-cdk-lib/assertions';
import { AUDIT_TABLE, STATE_TABLE } from '../../lambdas/shared/domain/table-schema';
import { logicalId, synth } from './synth';

const DRY_RUN = { mode: 'dry-run' };

function resourceOf(id: string): { Properties: Record<string, unknown>; DeletionPolicy?: string } {
  const { template } = synth(DRY_RUN);
  return template.toJSON().Resources[id] as { Properties: Record<string, unknown>; DeletionPolicy?: string };
}

describe('customer-managed key', () => {
  it('rotates and is retained', () => {
    const { stack, template } = synth(DRY_RUN);

    template.hasResource('AWS::KMS::Key', {
      Properties: Match.objectLike({ EnableKeyRotation: true }),
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    expect(template.findResources('AWS::KMS::Key')).toHaveProperty([logicalId(stack, stack.key)]);
  });

  it('lets CloudWatch alarms publish to the encrypted alarm topic', () => {
    synth(DRY_RUN).template.hasResourceProperties('AWS::KMS::Key', {
      KeyPolicy: {
        Statement: Match.arrayWith([
          {
            Sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
            Resource: '*',
            Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
          },
        ]),
      },
    });
  });
});

describe('audit table', () => {
  it('is on-demand, encrypted with the stack key, recoverable, deletion-protected and retained', () => {
    const { stack } = synth(DRY_RUN);

    const table = resourceOf(logicalId(stack, stack.auditTable));

    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      SSESpecification: {
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: { 'Fn::GetAtt': [logicalId(stack, stack.key), 'Arn'] },
      },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      DeletionProtectionEnabled: true,
      TimeToLiveSpecification: { AttributeName: AUDIT_TABLE.timeToLiveAttribute, Enabled: true },
    });
  });

  it('has the keys and indexes of table-schema.ts', () => {
    const { stack } = synth(DRY_RUN);

    const props = resourceOf(logicalId(stack, stack.auditTable)).Properties;

    expect(props.KeySchema).toEqual([
      { AttributeName: 'functionName', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ]);
    expect(props.GlobalSecondaryIndexes).toEqual(
      AUDIT_TABLE.indexes.map((index) => ({
        IndexName: index.indexName,
        KeySchema: [
          { AttributeName: index.partitionKey.name, KeyType: 'HASH' },
          ...(index.sortKey === undefined ? [] : [{ AttributeName: index.sortKey.name, KeyType: 'RANGE' }]),
        ],
        Projection: { ProjectionType: 'ALL' },
      })),
    );
    expect((props.GlobalSecondaryIndexes as Array<{ IndexName: string }>).map((i) => i.IndexName)).toEqual([
      'byRun',
      'byChange',
      'byReason',
    ]);
    expect(props.AttributeDefinitions).toEqual(
      expect.arrayContaining([
        { AttributeName: 'functionName', AttributeType: 'S' },
        { AttributeName: 'sk', AttributeType: 'S' },
        { AttributeName: 'runId', AttributeType: 'S' },
        { AttributeName: 'changeKey', AttributeType: 'S' },
        { AttributeName: 'decidedAt', AttributeType: 'S' },
        { AttributeName: 'primaryReason', AttributeType: 'S' },
      ]),
    );
  });
});

describe('state table', () => {
  it('is on-demand, encrypted with the stack key, recoverable, with TTL, retained', () => {
    const { stack } = synth(DRY_RUN);

    const table = resourceOf(logicalId(stack, stack.stateTable));

    expect(table.DeletionPolicy).toBe('Retain');
    expect(table.Properties).toMatchObject({
      BillingMode: 'PAY_PER_REQUEST',
      KeySchema: [{ AttributeName: STATE_TABLE.partitionKey.name, KeyType: 'HASH' }],
      SSESpecification: {
        SSEEnabled: true,
        SSEType: 'KMS',
        KMSMasterKeyId: { 'Fn::GetAtt': [logicalId(stack, stack.key), 'Arn'] },
      },
      PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true },
      TimeToLiveSpecification: { AttributeName: STATE_TABLE.timeToLiveAttribute, Enabled: true },
    });
    expect(table.Properties.GlobalSecondaryIndexes).toBeUndefined();
  });

  it('issue 8 also: is deletion-protected like the audit table (it holds the persistent exclusions)', () => {
    const { stack } = synth(DRY_RUN);

    const table = resourceOf(logicalId(stack, stack.stateTable));

    expect(table.Properties.DeletionProtectionEnabled).toBe(true);
  });
});

describe('inventory bucket', () => {
  it('is KMS-encrypted, private, unversioned and expires run inventories after 7 days', () => {
    const { stack } = synth(DRY_RUN);

    const bucket = resourceOf(logicalId(stack, stack.inventoryBucket));

    expect(bucket.DeletionPolicy).toBe('Retain');
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          {
            BucketKeyEnabled: true,
            ServerSideEncryptionByDefault: {
              SSEAlgorithm: 'aws:kms',
              KMSMasterKeyID: { 'Fn::GetAtt': [logicalId(stack, stack.key), 'Arn'] },
            },
          },
        ],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: {
        Rules: expect.arrayContaining([
          { Id: 'ExpireRunInventories', Prefix: 'runs/', ExpirationInDays: 7, Status: 'Enabled' },
        ]),
      },
    });
    expect(bucket.Properties.VersioningConfiguration).toBeUndefined();
  });

  it('refuses plain HTTP', () => {
    const { stack, template } = synth(DRY_RUN);

    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: logicalId(stack, stack.inventoryBucket) },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });
});

describe('topics', () => {
  it('encrypts both topics with the stack key and refuses plain HTTP', () => {
    const { stack, template } = synth(DRY_RUN);
    const keyArn = { 'Fn::GetAtt': [logicalId(stack, stack.key), 'Arn'] };

    for (const topic of [stack.skipTopic, stack.alarmTopic]) {
      const id = logicalId(stack, topic);
      expect(template.toJSON().Resources[id].Properties.KmsMasterKeyId).toEqual(keyArn);
      template.hasResourceProperties('AWS::SNS::TopicPolicy', {
        Topics: [{ Ref: id }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          ]),
        },
      });
    }
  });

  it('subscribes notifications.emails to skips and notifications.alarmEmails to alarms', () => {
    const { stack, template } = synth({
      notifications: { emails: ['platform@example.com'], alarmEmails: ['oncall@example.com'] },
    });

    template.resourceCountIs('AWS::SNS::Subscription', 2);
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'platform@example.com',
      TopicArn: { Ref: logicalId(stack, stack.skipTopic) },
    });
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'oncall@example.com',
      TopicArn: { Ref: logicalId(stack, stack.alarmTopic) },
    });
  });

  it('has no subscriptions without addresses', () => {
    synth(DRY_RUN).template.resourceCountIs('AWS::SNS::Subscription', 0);
  });
});

describe('engine functions', () => {
  it('run Node.js 22 on arm64 with log retention and the environment of docs/architecture.md', () => {
    const { stack, template } = synth({ mode: 'protect', observability: { logRetentionDays: 30 } });

    for (const [name, fn] of Object.entries(stack.functions)) {
      const props = template.toJSON().Resources[logicalId(stack, fn)].Properties;
      expect({ name, runtime: props.Runtime, arch: props.Architectures, handler: props.Handler }).toEqual({
        name,
        runtime: 'nodejs22.x',
        arch: ['arm64'],
        handler: 'index.handler',
      });
      expect(props.ReservedConcurrentExecutions).toBeUndefined();
      expect(Object.keys(props.Environment.Variables).sort()).toEqual(
        [
          'ALARM_TOPIC_ARN',
          'AUDIT_TABLE_NAME',
          'ENGINE_FUNCTION_PREFIX',
          'ENGINE_VERSION',
          'INVENTORY_BUCKET',
          'NODE_OPTIONS',
          'POWERTOOLS_LOG_LEVEL',
          'POWERTOOLS_METRICS_NAMESPACE',
          'POWERTOOLS_SERVICE_NAME',
          'SKIP_TOPIC_ARN',
          'STATE_TABLE_NAME',
          'ZERO_IMPACT_CONFIG',
          // Issue 8 item 3: the functions granted kms:GenerateMac find the HMAC key; protect also the stack key.
          ...(['start-run', 'take-inventory', 'protect-function'].includes(name) ? ['MAC_KEY_ID'] : []),
          ...(name === 'protect-function' ? ['RESTORE_KEY_ID'] : []),
        ].sort(),
      );
      expect(props.Environment.Variables).toMatchObject({
        ZERO_IMPACT_CONFIG: JSON.stringify(stack.config),
        ENGINE_FUNCTION_PREFIX: 'ZeroImpactProtect-',
        ENGINE_VERSION: '0.1.0',
        POWERTOOLS_SERVICE_NAME: 'zero-impact-protect',
        POWERTOOLS_METRICS_NAMESPACE: 'ZeroImpactProtect',
        POWERTOOLS_LOG_LEVEL: 'INFO',
        AUDIT_TABLE_NAME: { Ref: logicalId(stack, stack.auditTable) },
      });
      const logGroupId = props.LoggingConfig.LogGroup.Ref as string;
      expect(template.toJSON().Resources[logGroupId].Properties.RetentionInDays).toBe(30);
    }
  });

  it('deploys protect-function in protect mode only', () => {
    expect(Object.keys(synth(DRY_RUN).stack.functions).sort()).toEqual(
      ['assess-batch', 'finish-run', 'record-failure', 'start-run', 'take-inventory'].sort(),
    );
    expect(synth({ mode: 'protect' }).stack.functions['protect-function']).toBeDefined();
  });

  it('tags every engine function with the exclusion tag key and the value "engine"', () => {
    const { template } = synth({ exclusions: { tagKey: 'acme:no-defender' } });

    const functions = Object.values(template.findResources('AWS::Lambda::Function'));
    expect(functions).toHaveLength(5);
    for (const fn of functions) {
      expect(fn.Properties.Tags).toEqual(expect.arrayContaining([{ Key: 'acme:no-defender', Value: 'engine' }]));
    }
    template.hasResourceProperties('AWS::StepFunctions::StateMachine', {
      Tags: Match.arrayWith([{ Key: 'acme:no-defender', Value: 'engine' }]),
    });
  });
});
