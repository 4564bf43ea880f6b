import { HandlerName } from '../../lib/constructs/house-function';
import { logicalId, statementsOf, synth, Synthesized } from './synth';

const DRY_RUN = { mode: 'dry-run' };
const PROTECT = { mode: 'protect' };

/** The template forms of the resources the policies name. */
function refs({ stack }: Synthesized) {
  const getAtt = (construct: Parameters<typeof logicalId>[1]) => ({
    'Fn::GetAtt': [logicalId(stack, construct), 'Arn'],
  });
  const house = (name: HandlerName) => {
    const fn = stack.houseFunctions[name];
    if (fn === undefined) throw new Error(`${name} is not deployed`);
    return fn;
  };
  const arn = (service: string, resource: string) => ({
    'Fn::Join': [
      '',
      [
        'arn:',
        { Ref: 'AWS::Partition' },
        `:${service}:`,
        { Ref: 'AWS::Region' },
        ':',
        { Ref: 'AWS::AccountId' },
        resource,
      ],
    ],
  });
  return {
    house,
    logs: (name: HandlerName) => ({
      Sid: 'WriteOwnLogs',
      Effect: 'Allow',
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: getAtt(house(name).logGroup),
    }),
    key: {
      Sid: 'UseStackKey',
      Effect: 'Allow',
      Action: ['kms:Decrypt', 'kms:Encrypt', 'kms:GenerateDataKey'],
      Resource: getAtt(stack.key),
    },
    macKey: {
      Sid: 'DeriveMacKey',
      Effect: 'Allow',
      Action: 'kms:GenerateMac',
      Resource: getAtt(stack.macKey),
    },
    audit: getAtt(stack.auditTable),
    state: getAtt(stack.stateTable),
    skipTopic: { Ref: logicalId(stack, stack.skipTopic) },
    alarmTopic: { Ref: logicalId(stack, stack.alarmTopic) },
    runObjects: { 'Fn::Join': ['', [getAtt(stack.inventoryBucket), '/runs/*']] },
    allFunctions: arn('lambda', ':function:*'),
    codeSigningConfigs: arn('lambda', ':code-signing-config:*'),
    anyKey: arn('kms', ':key/*'),
    parameter: (name: string) => arn('ssm', `:parameter/${name}`),
    byRunIndex: { 'Fn::Join': ['', [getAtt(stack.auditTable), '/index/byRun']] },
    byChangeIndex: { 'Fn::Join': ['', [getAtt(stack.auditTable), '/index/byChange']] },
    bucket: getAtt(stack.inventoryBucket),
    unrecordedObjects: { 'Fn::Join': ['', [getAtt(stack.inventoryBucket), '/runs/*/unrecorded/*']] },
    executions: {
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':states:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':execution:',
          { 'Fn::GetAtt': [logicalId(stack, stack.stateMachine), 'Name'] },
          ':*',
        ],
      ],
    },
  };
}

/** ssm:GetParameter on the TW_POLICY parameter, and kms:Decrypt only through SSM. */
function defenderParameters(r: ReturnType<typeof refs>): unknown[] {
  return [
    {
      Sid: 'ReadDefenderParameters',
      Effect: 'Allow',
      Action: 'ssm:GetParameter',
      Resource: r.parameter('zero-impact/tw-policy'),
    },
    {
      Sid: 'DecryptDefenderParameters',
      Effect: 'Allow',
      Action: 'kms:Decrypt',
      Resource: r.anyKey,
      Condition: {
        StringEquals: {
          'kms:ViaService': { 'Fn::Join': ['', ['ssm.', { Ref: 'AWS::Region' }, '.amazonaws.com']] },
        },
      },
    },
  ];
}

function policyOf(synthesized: Synthesized, name: HandlerName): unknown[] {
  return statementsOf(synthesized, refs(synthesized).house(name).role);
}

describe('each role has exactly the calls of docs/architecture.md', () => {
  it.each([
    ['dry-run', DRY_RUN],
    ['protect', PROTECT],
  ])(
    'start-run (%s): the lease, run items, reconciliation and replay reads, DescribeExecution on its own executions',
    (_m, mode) => {
      const s = synth(mode);
      const r = refs(s);

      expect(policyOf(s, 'start-run')).toEqual([
        r.logs('start-run'),
        {
          Sid: 'LeaseOnStateTable',
          Effect: 'Allow',
          Action: ['dynamodb:PutItem', 'dynamodb:GetItem'],
          Resource: r.state,
        },
        { Sid: 'AppendAudit', Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: r.audit },
        { Sid: 'FindPendingChanges', Effect: 'Allow', Action: 'dynamodb:Query', Resource: r.byChangeIndex },
        { Sid: 'ReadRunDecision', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: r.audit },
        { Sid: 'ReadChangedFunctions', Effect: 'Allow', Action: 'lambda:GetFunction', Resource: r.allFunctions },
        {
          Sid: 'ListUnrecorded',
          Effect: 'Allow',
          Action: 's3:ListBucket',
          Resource: r.bucket,
          Condition: { StringLike: { 's3:prefix': ['runs/', 'runs/*'] } },
        },
        {
          Sid: 'ReplayUnrecorded',
          Effect: 'Allow',
          Action: ['s3:GetObject', 's3:DeleteObject'],
          Resource: r.unrecordedObjects,
        },
        { Sid: 'PublishSkips', Effect: 'Allow', Action: 'sns:Publish', Resource: r.skipTopic },
        {
          Sid: 'LastDecisions',
          Effect: 'Allow',
          Action: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'],
          Resource: r.state,
        },
        // Issue 9: the outbox drain reads the runs that owe notices and updates the OUTBOX item.
        { Sid: 'ReadOwingRuns', Effect: 'Allow', Action: 'dynamodb:Query', Resource: r.byRunIndex },
        {
          Sid: 'ReadRunRepeats',
          Effect: 'Allow',
          Action: 'dynamodb:Query',
          Resource: r.audit,
          Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['#run'] } },
        },
        { Sid: 'NoticeOutbox', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: r.state },
        r.key,
        r.macKey,
        // Its own policy (no circular dependency with the state machine): this state machine's executions only.
        {
          Sid: 'CheckLeaseHolder',
          Effect: 'Allow',
          Action: 'states:DescribeExecution',
          Resource: r.executions,
        },
      ]);
    },
  );

  it('start-run: DescribeExecution sits in a policy nothing depends on (no cycle with the state machine)', () => {
    // Prepare
    const s = synth(PROTECT);
    const resources = s.template.toJSON().Resources as Record<string, { Type: string; DependsOn?: string[] }>;
    const takeover = Object.entries(resources).filter(
      ([id, res]) => res.Type === 'AWS::IAM::Policy' && id.includes('LeaseTakeoverPolicy'),
    );

    // Act
    const dependents = Object.entries(resources).filter(([, res]) =>
      (res.DependsOn ?? []).some((dep) => takeover.some(([id]) => id === dep)),
    );

    // Assess
    expect(takeover).toHaveLength(1);
    expect(dependents).toEqual([]);
  });

  it.each([
    ['dry-run', DRY_RUN, false],
    ['protect', PROTECT, true],
  ])(
    'take-inventory (%s): list, tags, exclusions, inventory object, layer check in protect mode',
    (_m, mode, layer) => {
      const s = synth(mode);
      const r = refs(s);

      expect(policyOf(s, 'take-inventory')).toEqual([
        r.logs('take-inventory'),
        {
          Sid: 'SharedControlPlaneBudget',
          Effect: 'Allow',
          Action: 'dynamodb:UpdateItem',
          Resource: r.state,
          Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['BUDGET#lambda-control-plane'] } },
        },
        { Sid: 'ListFunctions', Effect: 'Allow', Action: 'lambda:ListFunctions', Resource: '*' },
        { Sid: 'FindExclusionTags', Effect: 'Allow', Action: 'tag:GetResources', Resource: '*' },
        { Sid: 'ReadExclusions', Effect: 'Allow', Action: 'dynamodb:Scan', Resource: r.state },
        { Sid: 'FindEdgeAssociations', Effect: 'Allow', Action: 'cloudfront:ListDistributions', Resource: '*' },
        { Sid: 'WriteInventory', Effect: 'Allow', Action: 's3:PutObject', Resource: r.runObjects },
        ...(layer
          ? [
              {
                Sid: 'CheckDefenderLayer',
                Effect: 'Allow',
                Action: 'lambda:GetLayerVersion',
                Resource: 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32',
              },
            ]
          : []),
        { Sid: 'RaiseAlarm', Effect: 'Allow', Action: 'sns:Publish', Resource: r.alarmTopic },
        r.key,
        r.macKey,
      ]);
    },
  );

  it('assess-batch: metrics, candidate reads, route tables, audit, last decisions, skips', () => {
    const s = synth(DRY_RUN);
    const r = refs(s);

    expect(policyOf(s, 'assess-batch')).toEqual([
      r.logs('assess-batch'),
      {
        Sid: 'SharedControlPlaneBudget',
        Effect: 'Allow',
        Action: 'dynamodb:UpdateItem',
        Resource: r.state,
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['BUDGET#lambda-control-plane'] } },
      },
      { Sid: 'ReadFunctionMetrics', Effect: 'Allow', Action: 'cloudwatch:GetMetricData', Resource: '*' },
      {
        Sid: 'ReadCandidates',
        Effect: 'Allow',
        Action: ['lambda:GetFunction', 'lambda:ListProvisionedConcurrencyConfigs'],
        Resource: r.allFunctions,
      },
      {
        Sid: 'ReadCodeSigning',
        Effect: 'Allow',
        Action: 'lambda:GetFunctionCodeSigningConfig',
        Resource: r.allFunctions,
      },
      {
        Sid: 'ReadCodeSigningPolicies',
        Effect: 'Allow',
        Action: 'lambda:GetCodeSigningConfig',
        Resource: r.codeSigningConfigs,
      },
      { Sid: 'ReadRouteTables', Effect: 'Allow', Action: 'ec2:DescribeRouteTables', Resource: '*' },
      { Sid: 'AppendAudit', Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: r.audit },
      {
        Sid: 'ReadBatchRepeats',
        Effect: 'Allow',
        Action: 'dynamodb:Query',
        Resource: r.audit,
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['#run'] } },
      },
      {
        Sid: 'ClaimProtectionSlots',
        Effect: 'Allow',
        Action: ['dynamodb:UpdateItem', 'dynamodb:GetItem'],
        Resource: r.state,
        Condition: { 'ForAllValues:StringLike': { 'dynamodb:LeadingKeys': ['LOCK', 'RUN#*'] } },
      },
      {
        Sid: 'LastDecisions',
        Effect: 'Allow',
        Action: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'],
        Resource: r.state,
      },
      { Sid: 'PublishSkips', Effect: 'Allow', Action: 'sns:Publish', Resource: r.skipTopic },
      // Issue 9: a refused notice keeps the run in the outbox.
      { Sid: 'NoticeOutbox', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: r.state },
      // Issue 8 item 9: dry-run resolves our SSM values read-only too.
      ...defenderParameters(r),
      r.key,
    ]);
  });

  it('protect-function: the update pinned to the Defender layer, the TW_POLICY parameter, audit, counters', () => {
    const s = synth(PROTECT);
    const r = refs(s);

    expect(policyOf(s, 'protect-function')).toEqual([
      r.logs('protect-function'),
      {
        Sid: 'SharedControlPlaneBudget',
        Effect: 'Allow',
        Action: 'dynamodb:UpdateItem',
        Resource: r.state,
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['BUDGET#lambda-control-plane'] } },
      },
      {
        Sid: 'ReadFunction',
        Effect: 'Allow',
        Action: ['lambda:GetFunction', 'lambda:GetFunctionConfiguration'],
        Resource: r.allFunctions,
      },
      { Sid: 'ReadFreshTags', Effect: 'Allow', Action: 'lambda:ListTags', Resource: r.allFunctions },
      {
        Sid: 'ReadLayers',
        Effect: 'Allow',
        Action: 'lambda:GetLayerVersion',
        Resource: {
          'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':lambda:', { Ref: 'AWS::Region' }, ':*:layer:*:*']],
        },
      },
      {
        Sid: 'ProtectWithDefenderLayer',
        Effect: 'Allow',
        Action: 'lambda:UpdateFunctionConfiguration',
        Resource: r.allFunctions,
        Condition: {
          'ForAnyValue:StringLike': {
            'lambda:Layer': ['arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:*'],
          },
        },
      },
      ...defenderParameters(r),
      { Sid: 'AppendAudit', Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: r.audit },
      { Sid: 'ReadRunRecords', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: r.audit },
      {
        Sid: 'CountersExclusionsAndLastDecisions',
        Effect: 'Allow',
        Action: ['dynamodb:UpdateItem', 'dynamodb:GetItem', 'dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'],
        Resource: r.state,
      },
      { Sid: 'StoreRefreshRestore', Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: r.state },
      { Sid: 'PublishSkips', Effect: 'Allow', Action: 'sns:Publish', Resource: r.skipTopic },
      r.key,
      r.macKey,
    ]);
  });

  it('protect-function reads every SSM parameter the Defender variables name, and only those', () => {
    const s = synth({
      mode: 'protect',
      defender: { environment: { TW_CONSOLE: { ssmParameter: 'zero-impact/console' } } },
    });
    const r = refs(s);

    expect(policyOf(s, 'protect-function')).toContainEqual({
      Sid: 'ReadDefenderParameters',
      Effect: 'Allow',
      Action: 'ssm:GetParameter',
      Resource: [r.parameter('zero-impact/console'), r.parameter('zero-impact/tw-policy')],
    });
  });

  it('record-failure: audit, the unrecorded-decision objects, skips and their sent marks only', () => {
    const s = synth(DRY_RUN);
    const r = refs(s);

    expect(policyOf(s, 'record-failure')).toEqual([
      r.logs('record-failure'),
      { Sid: 'AppendAudit', Effect: 'Allow', Action: 'dynamodb:PutItem', Resource: r.audit },
      { Sid: 'ReadRunPending', Effect: 'Allow', Action: 'dynamodb:GetItem', Resource: r.audit },
      {
        Sid: 'ReadRunRepeats',
        Effect: 'Allow',
        Action: 'dynamodb:Query',
        Resource: r.audit,
        Condition: { 'ForAllValues:StringEquals': { 'dynamodb:LeadingKeys': ['#run'] } },
      },
      { Sid: 'KeepUnrecorded', Effect: 'Allow', Action: 's3:PutObject', Resource: r.unrecordedObjects },
      { Sid: 'PublishSkips', Effect: 'Allow', Action: 'sns:Publish', Resource: r.skipTopic },
      // Issue 9: a FAILED notice sent is marked in the function's last-decision digest; a refused one keeps the run
      // in the outbox.
      {
        Sid: 'LastDecisions',
        Effect: 'Allow',
        Action: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'],
        Resource: r.state,
      },
      { Sid: 'NoticeOutbox', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: r.state },
      r.key,
    ]);
  });

  it('finish-run: the byRun index, the lease, the summary message, the outbox drain', () => {
    const s = synth(DRY_RUN);
    const r = refs(s);

    expect(policyOf(s, 'finish-run')).toEqual([
      r.logs('finish-run'),
      { Sid: 'ReadRunDecisions', Effect: 'Allow', Action: 'dynamodb:Query', Resource: r.byRunIndex },
      {
        Sid: 'ReleaseLease',
        Effect: 'Allow',
        Action: 'dynamodb:DeleteItem',
        Resource: r.state,
      },
      { Sid: 'PublishSummary', Effect: 'Allow', Action: 'sns:Publish', Resource: r.skipTopic },
      // Issue 9: the outbox drain of the run marks what it sends, and keeps the run in the outbox when SNS is down.
      {
        Sid: 'LastDecisions',
        Effect: 'Allow',
        Action: ['dynamodb:BatchGetItem', 'dynamodb:BatchWriteItem'],
        Resource: r.state,
      },
      { Sid: 'NoticeOutbox', Effect: 'Allow', Action: 'dynamodb:UpdateItem', Resource: r.state },
      r.key,
    ]);
  });

  it('no role has a managed policy', () => {
    const roles = Object.values(synth(PROTECT).template.findResources('AWS::IAM::Role'));

    for (const role of roles) expect(role.Properties.ManagedPolicyArns).toBeUndefined();
  });
});

/** Every Allow statement of every IAM policy in the template, as [action, resource JSON] pairs. */
function grants({ template }: Synthesized): Array<{ action: string; resource: string; policy: string }> {
  const result: Array<{ action: string; resource: string; policy: string }> = [];
  for (const [policy, resource] of Object.entries(template.findResources('AWS::IAM::Policy'))) {
    for (const statement of resource.Properties.PolicyDocument.Statement as Array<Record<string, unknown>>) {
      if (statement.Effect !== 'Allow') continue;
      const actions = ([] as string[]).concat(statement.Action as string | string[]);
      const resources = ([] as unknown[]).concat(statement.Resource);
      for (const action of actions) {
        for (const r of resources) result.push({ action, resource: JSON.stringify(r), policy });
      }
    }
  }
  return result;
}

describe('stack-wide guarantees', () => {
  it('does not grant lambda:UpdateFunctionConfiguration at all in dry-run', () => {
    const actions = grants(synth(DRY_RUN)).map((g) => g.action);

    expect(actions).not.toContain('lambda:UpdateFunctionConfiguration');
    expect(actions.filter((a) => a.includes('*'))).toEqual([]);
  });

  it('grants lambda:UpdateFunctionConfiguration to the protect role only', () => {
    const s = synth(PROTECT);
    const protectPolicy = logicalId(
      s.stack,
      s.stack.houseFunctions['protect-function']!.role.node.findChild('DefaultPolicy'),
    );

    const holders = grants(s).filter((g) => g.action === 'lambda:UpdateFunctionConfiguration');

    expect(holders.map((g) => g.policy)).toEqual([protectPolicy]);
  });

  it.each([
    ['dry-run', DRY_RUN],
    ['protect', PROTECT],
  ])('lets nothing update or delete audit items (%s)', (_m, mode) => {
    const s = synth(mode);
    const auditId = logicalId(s.stack, s.stack.auditTable);

    const onAudit = grants(s).filter((g) => g.resource.includes(`"${auditId}"`));

    // Reads (GetItem: start-run's reconciliation) and appends only.
    expect([...new Set(onAudit.map((g) => g.action))].sort()).toEqual([
      'dynamodb:GetItem',
      'dynamodb:PutItem',
      'dynamodb:Query',
    ]);
  });

  it('item 9: lets only the protect and assess-batch roles read the TW_POLICY parameter', () => {
    const s = synth(PROTECT);
    const policyOfRole = (name: HandlerName) =>
      logicalId(s.stack, s.stack.houseFunctions[name]!.role.node.findChild('DefaultPolicy'));

    const readers = grants(s).filter((g) => g.action.startsWith('ssm:') || g.resource.includes(':parameter/'));

    expect(readers.map((g) => g.policy).sort()).toEqual(
      [policyOfRole('assess-batch'), policyOfRole('protect-function')].sort(),
    );
  });

  it('item 3: grants kms:GenerateMac on the HMAC key to start-run (reconciliation), take-inventory and protect-function only (never assess-batch)', () => {
    const s = synth(PROTECT);
    const policyOfRole = (name: HandlerName) =>
      logicalId(s.stack, s.stack.houseFunctions[name]!.role.node.findChild('DefaultPolicy'));

    const macs = grants(s).filter((g) => g.action.startsWith('kms:') && g.action.includes('Mac'));

    expect(macs.map((g) => [g.action, g.policy]).sort()).toEqual(
      (['start-run', 'take-inventory', 'protect-function'] as const)
        .map((name) => ['kms:GenerateMac', policyOfRole(name)])
        .sort(),
    );
    expect(new Set(macs.map((g) => g.resource))).toEqual(
      new Set([JSON.stringify({ 'Fn::GetAtt': [logicalId(s.stack, s.stack.macKey), 'Arn'] })]),
    );
  });
});

describe('the state machine and the schedule have exactly the calls they make', () => {
  /** Statements of the policies attached to `role`, by policy construct id. */
  function policiesOf(
    { stack, template }: Synthesized,
    role: Parameters<typeof logicalId>[1],
  ): Record<string, unknown[]> {
    const roleId = logicalId(stack, role);
    const result: Record<string, unknown[]> = {};
    for (const [id, policy] of Object.entries(template.findResources('AWS::IAM::Policy'))) {
      if (JSON.stringify(policy.Properties.Roles) !== JSON.stringify([{ Ref: roleId }])) continue;
      result[id] = policy.Properties.PolicyDocument.Statement as unknown[];
    }
    return result;
  }

  it('state machine (dry-run): invoke its own functions, read run inventories, manage its own map runs, logs and X-Ray', () => {
    // Prepare
    const s = synth(DRY_RUN);
    const r = refs(s);
    const sm = s.stack.stateMachine;
    const smRef = { Ref: logicalId(s.stack, sm) };
    const invoke = (name: HandlerName) => {
      const arn = { 'Fn::GetAtt': [logicalId(s.stack, r.house(name).function), 'Arn'] };
      return {
        Action: 'lambda:InvokeFunction',
        Effect: 'Allow',
        Resource: [arn, { 'Fn::Join': ['', [arn, ':*']] }],
      };
    };
    const executions = (suffix: string) => ({
      'Fn::Join': [
        '',
        [
          'arn:',
          { Ref: 'AWS::Partition' },
          ':states:',
          { Ref: 'AWS::Region' },
          ':',
          { Ref: 'AWS::AccountId' },
          ':execution:',
          { 'Fn::Select': [6, { 'Fn::Split': [':', smRef] }] },
          suffix,
        ],
      ],
    });

    // Act
    const policies = policiesOf(s, sm.role);

    // Assess
    expect(policies).toEqual({
      [logicalId(s.stack, sm.role.node.findChild('DefaultPolicy'))]: [
        invoke('start-run'),
        invoke('take-inventory'),
        invoke('finish-run'),
        invoke('assess-batch'),
        invoke('record-failure'),
        {
          Action: [
            'logs:CreateLogDelivery',
            'logs:GetLogDelivery',
            'logs:UpdateLogDelivery',
            'logs:DeleteLogDelivery',
            'logs:ListLogDeliveries',
            'logs:PutResourcePolicy',
            'logs:DescribeResourcePolicies',
            'logs:DescribeLogGroups',
          ],
          Effect: 'Allow',
          Resource: '*',
        },
        {
          Action: [
            'xray:PutTraceSegments',
            'xray:PutTelemetryRecords',
            'xray:GetSamplingRules',
            'xray:GetSamplingTargets',
          ],
          Effect: 'Allow',
          Resource: '*',
        },
        { Sid: 'ReadRunInventory', Action: 's3:GetObject', Effect: 'Allow', Resource: r.runObjects },
        {
          Sid: 'DecryptRunInventory',
          Action: 'kms:Decrypt',
          Effect: 'Allow',
          Resource: { 'Fn::GetAtt': [logicalId(s.stack, s.stack.key), 'Arn'] },
        },
      ],
      [logicalId(s.stack, sm.node.findChild('DistributedMapPolicy'))]: [
        { Action: 'states:StartExecution', Effect: 'Allow', Resource: smRef },
        { Action: ['states:DescribeExecution', 'states:StopExecution'], Effect: 'Allow', Resource: executions(':*') },
        { Action: 'states:RedriveExecution', Effect: 'Allow', Resource: executions('/*:*') },
      ],
    });
  });

  it('state machine (protect): also invokes protect-function, and nothing else changes', () => {
    // Prepare
    const s = synth(PROTECT);
    const sm = s.stack.stateMachine;

    // Act
    const statements = policiesOf(s, sm.role)[logicalId(s.stack, sm.role.node.findChild('DefaultPolicy'))] as Array<{
      Action: unknown;
      Resource: unknown;
    }>;

    // Assess
    const invoked = statements
      .filter((st) => st.Action === 'lambda:InvokeFunction')
      .map((st) => (st.Resource as Array<{ 'Fn::GetAtt'?: [string, string] }>)[0]?.['Fn::GetAtt']?.[0])
      .sort();
    expect(invoked).toEqual(
      Object.values(s.stack.functions)
        .map((fn) => logicalId(s.stack, fn))
        .sort(),
    );
    expect(statements.flatMap((st) => ([] as unknown[]).concat(st.Action)).sort()).toEqual(
      [
        ...Object.values(s.stack.functions).map(() => 'lambda:InvokeFunction'),
        'logs:CreateLogDelivery',
        'logs:GetLogDelivery',
        'logs:UpdateLogDelivery',
        'logs:DeleteLogDelivery',
        'logs:ListLogDeliveries',
        'logs:PutResourcePolicy',
        'logs:DescribeResourcePolicies',
        'logs:DescribeLogGroups',
        'xray:PutTraceSegments',
        'xray:PutTelemetryRecords',
        'xray:GetSamplingRules',
        'xray:GetSamplingTargets',
        's3:GetObject',
        'kms:Decrypt',
      ].sort(),
    );
  });

  it('schedule: the EventBridge role may only start this state machine', () => {
    // Prepare
    const s = synth(DRY_RUN);
    const smId = logicalId(s.stack, s.stack.stateMachine);
    const rules = Object.values(s.template.findResources('AWS::Events::Rule'));
    const roleId = (rules[0]?.Properties.Targets as Array<{ RoleArn: { 'Fn::GetAtt': [string, string] } }>)[0]?.RoleArn[
      'Fn::GetAtt'
    ][0];

    // Act
    const policies = Object.values(s.template.findResources('AWS::IAM::Policy')).filter(
      (p) => JSON.stringify(p.Properties.Roles) === JSON.stringify([{ Ref: roleId }]),
    );

    // Assess
    expect(rules).toHaveLength(1);
    expect(policies.map((p) => p.Properties.PolicyDocument.Statement)).toEqual([
      [{ Action: 'states:StartExecution', Effect: 'Allow', Resource: { Ref: smId } }],
    ]);
  });

  it('has no other roles than the engine functions, the state machine and the schedule', () => {
    // Prepare
    const s = synth(PROTECT);
    const rules = Object.values(s.template.findResources('AWS::Events::Rule'));
    const scheduleRole = (rules[0]?.Properties.Targets as Array<{ RoleArn: { 'Fn::GetAtt': [string, string] } }>)[0]
      ?.RoleArn['Fn::GetAtt'][0];

    // Act
    const roles = Object.keys(s.template.findResources('AWS::IAM::Role')).sort();

    // Assess
    expect(roles).toEqual(
      [
        ...Object.values(s.stack.houseFunctions).map((h) => logicalId(s.stack, h.role)),
        logicalId(s.stack, s.stack.stateMachine.role),
        scheduleRole,
      ].sort(),
    );
  });
});

describe('TW_POLICY in dry-run', () => {
  it('item 9: lets only assess-batch read the SSM parameters in dry-run (there is no protect role)', () => {
    // Prepare
    const s = synth(DRY_RUN);
    const assessPolicy = logicalId(
      s.stack,
      s.stack.houseFunctions['assess-batch']!.role.node.findChild('DefaultPolicy'),
    );

    // Act
    const readers = grants(s).filter((g) => g.action.startsWith('ssm:') || g.resource.includes(':parameter/'));

    // Assess
    expect(readers.map((g) => g.policy)).toEqual([assessPolicy]);
  });
});

describe('issue 8 item 3: the HMAC key', () => {
  it('item 3: is one retained HMAC_256 key for GENERATE_VERIFY_MAC, named by MAC_KEY_ID on the functions granted it', () => {
    const s = synth(PROTECT);
    const macKey = { 'Fn::GetAtt': [logicalId(s.stack, s.stack.macKey), 'Arn'] };

    s.template.hasResource('AWS::KMS::Key', {
      Properties: { KeySpec: 'HMAC_256', KeyUsage: 'GENERATE_VERIFY_MAC' },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    for (const [name, fn] of Object.entries(s.stack.houseFunctions)) {
      const variables = s.template.toJSON().Resources[logicalId(s.stack, fn.function)].Properties.Environment
        .Variables as Record<string, unknown>;
      const granted = ['start-run', 'take-inventory', 'protect-function'].includes(name);
      expect([name, variables['MAC_KEY_ID']]).toEqual([name, granted ? macKey : undefined]);
    }
  });
});
