/**
 * Every cdk-nag AwsSolutions finding this stack acknowledges, each on the one resource it concerns (the function,
 * or the one IAM policy) and, for wildcard findings (IAM5), on the one wildcard resource, with the reason.
 * Other acknowledgements live beside their resource (the inventory bucket's access logs, AwsSolutions-S1).
 */
import { CfnResource, Stack, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { HandlerName, HouseFunction } from './house-function';
import { INVENTORY_PREFIX } from './inventory-bucket';
import { UNRECORDED_OBJECTS } from './permissions';
import { Workflow } from './workflow';

export interface NagScope {
  readonly workflow: Workflow;
  readonly houseFunctions: Readonly<Partial<Record<HandlerName, HouseFunction>>>;
  readonly inventoryBucket: IConstruct;
}

/** The logical id of a construct's CloudFormation resource, as cdk-nag prints it. */
function logicalId(stack: Stack, construct: IConstruct): string {
  const resource = construct.node.defaultChild;
  if (!CfnResource.isCfnResource(resource)) throw new Error(`${construct.node.path} has no CloudFormation resource`);
  return stack.resolve(resource.logicalId) as string;
}

/** The IAM policy CDK attaches to a role (`DefaultPolicy`) or a named child policy. */
function childPolicy(construct: IConstruct, id: string): IConstruct {
  const policy = construct.node.tryFindChild(id);
  if (policy === undefined) throw new Error(`${construct.node.path} has no ${id}`);
  return policy;
}

const ALL_FUNCTIONS = 'arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:function:*';
const ANY_KEY = 'arn:<AWS::Partition>:kms:<AWS::Region>:<AWS::AccountId>:key/*';

function iam5(target: IConstruct, resource: string, reason: string): void {
  Validations.of(target).acknowledge({ id: `AwsSolutions-IAM5[Resource::${resource}]`, reason });
}

export function acknowledgeNagFindings(stack: Stack, scope: NagScope): void {
  const bucketObjects = `<${logicalId(stack, scope.inventoryBucket)}.Arn>/${INVENTORY_PREFIX}*`;

  for (const house of Object.values(scope.houseFunctions)) {
    Validations.of(house.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Pinned to Node.js 22 on purpose: the handlers, their tests and the local runner target Node 22; the ' +
        'runtime is upgraded deliberately, with the tests, not whenever a newer one appears.',
    });
  }

  const { houseFunctions: f } = scope;
  const unrecordedObjects = `<${logicalId(stack, scope.inventoryBucket)}.Arn>/${UNRECORDED_OBJECTS}`;
  if (f['start-run'] !== undefined) {
    const policy = childPolicy(f['start-run'].role, 'DefaultPolicy');
    iam5(
      policy,
      ALL_FUNCTIONS,
      'Reconciliation reads (GetFunction, read-only) the functions that earlier PENDING changes name, which may be ' +
        'any function of the account and region: names unknown at deploy time.',
    );
    iam5(
      policy,
      unrecordedObjects,
      'Replays (GetObject, then DeleteObject once written to the audit table) the decisions record-failure left ' +
        'under runs/<runId>/unrecorded/ of the engine bucket; run ids are execution names, unknown at deploy time.',
    );
    iam5(
      childPolicy(f['start-run'], 'LeaseTakeoverPolicy'),
      `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:<${logicalId(stack, scope.workflow.stateMachine)}.Name>:*`,
      'states:DescribeExecution (read-only) on the executions of this one state machine: whether the run holding ' +
        'the lease still runs; execution names are unknown at deploy time.',
    );
  }
  if (f['record-failure'] !== undefined) {
    iam5(
      childPolicy(f['record-failure'].role, 'DefaultPolicy'),
      unrecordedObjects,
      'Writes (PutObject) the decisions it could not record in the audit table under runs/<runId>/unrecorded/ of ' +
        'the engine bucket, for the next run to replay; run ids are execution names, unknown at deploy time.',
    );
  }
  if (f['take-inventory'] !== undefined) {
    const policy = childPolicy(f['take-inventory'].role, 'DefaultPolicy');
    iam5(
      policy,
      '*',
      'lambda:ListFunctions, tag:GetResources and cloudfront:ListDistributions have no resource-level permissions.',
    );
    iam5(policy, bucketObjects, 'Writes one inventory object per run under runs/<runId>/ of the engine bucket.');
  }
  if (f['assess-batch'] !== undefined) {
    const policy = childPolicy(f['assess-batch'].role, 'DefaultPolicy');
    iam5(
      policy,
      'arn:<AWS::Partition>:lambda:<AWS::Region>:<AWS::AccountId>:code-signing-config:*',
      'Reads (GetCodeSigningConfig) the code signing config a candidate names, which may be any config of the account; read-only.',
    );
    iam5(
      policy,
      '*',
      'cloudwatch:GetMetricData and ec2:DescribeRouteTables have no resource-level permissions (read-only).',
    );
    iam5(
      policy,
      ALL_FUNCTIONS,
      'Reads (GetFunction, ListProvisionedConcurrencyConfigs) any function of the account and region: the job ' +
        'assesses every function, whose names are not known at deploy time.',
    );
    iam5(
      policy,
      ANY_KEY,
      'kms:Decrypt of the SecureString parameters the Defender variables name (dry-run resolves them read-only so ' +
        "both modes decide alike); their key is the customer's (unknown at deploy time) and the grant holds only " +
        'through SSM (kms:ViaService).',
    );
  }
  if (f['protect-function'] !== undefined) {
    const policy = childPolicy(f['protect-function'].role, 'DefaultPolicy');
    iam5(
      policy,
      ALL_FUNCTIONS,
      'Protects any eligible function of the account and region (names unknown at deploy time); ' +
        'UpdateFunctionConfiguration requires a version of the Defender layer in the request (lambda:Layer).',
    );
    iam5(
      policy,
      'arn:<AWS::Partition>:lambda:<AWS::Region>:*:layer:*:*',
      'lambda:GetLayerVersion (read-only) on the layers of this region: Lambda requires it for every layer of an ' +
        "UpdateFunctionConfiguration request, and the request carries the customer's own layers, from any account.",
    );
    iam5(
      policy,
      ANY_KEY,
      "kms:Decrypt of the SecureString parameters the Defender variables name; their key is the customer's " +
        '(unknown at deploy time) and the grant holds only through SSM (kms:ViaService).',
    );
  }

  const stateMachine = scope.workflow.stateMachine;
  const smPolicy = childPolicy(stateMachine.role, 'DefaultPolicy');
  iam5(
    smPolicy,
    '*',
    'X-Ray tracing (PutTraceSegments, GetSamplingRules ...) and CloudWatch Logs delivery (CreateLogDelivery ...) ' +
      'have no resource-level permissions; CDK generates both for tracing and logging.',
  );
  iam5(smPolicy, bucketObjects, 'The Distributed Map ItemReader reads the run inventory under runs/.');
  for (const house of Object.values(scope.houseFunctions)) {
    iam5(
      smPolicy,
      `<${logicalId(stack, house.function)}.Arn>:*`,
      'lambda:InvokeFunction on this one engine function and its versions/aliases (generated by LambdaInvoke).',
    );
  }
  const executions = `arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:{"Fn::Select":[6,{"Fn::Split":[":",{"Ref":"${logicalId(stack, stateMachine)}"}]}]}`;
  const mapPolicy = childPolicy(stateMachine, 'DistributedMapPolicy');
  iam5(mapPolicy, `${executions}:*`, 'The Distributed Map manages the child executions of this state machine only.');
  iam5(mapPolicy, `${executions}/*:*`, 'The Distributed Map manages the map runs of this state machine only.');
}
