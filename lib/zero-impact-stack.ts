/**
 * The Zero-Impact Protect stack: wires the constructs together. No business rules here: the configuration is parsed
 * and validated before (bin/app.ts), the gates live in the Lambdas.
 */
import { Aws, CfnOutput, CfnRule, Duration, Fn, RemovalPolicy, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import { NodejsFunction } from 'aws-cdk-lib/aws-lambda-nodejs';
import { Construct } from 'constructs';
import { Config } from './config';
import { EngineAlarms, POLICY_UNAVAILABLE_ALARM_THRESHOLD } from './constructs/alarms';
import { AuditTables } from './constructs/audit-tables';
import { EngineDashboard } from './constructs/dashboard';
import { HandlerName, HouseFunction } from './constructs/house-function';
import { InventoryBucket } from './constructs/inventory-bucket';
import { METRICS_NAMESPACE, SERVICE_NAME } from './constructs/metrics';
import { Notifications } from './constructs/notifications';
import { acknowledgeNagFindings } from './constructs/nag-acknowledgements';
import {
  EngineResources,
  grantAssessBatch,
  grantFinishRun,
  grantLeaseTakeover,
  grantProtectFunction,
  grantRecordFailure,
  grantStartRun,
  grantTakeInventory,
} from './constructs/permissions';
import { Workflow } from './constructs/workflow';
import packageJson from '../package.json';

/**
 * The stack's outputs (CloudFormation `Outputs`, each exported as `<stack name>-<key>`): what the README's steps and
 * the commands need (`zero-impact rollback --stack NAME` reads them with DescribeStacks). The keys are a contract.
 */
export const STACK_OUTPUTS = {
  StateMachineArn: 'the state machine of the hourly run (start a run: aws stepfunctions start-execution)',
  AuditTableName: 'the audit table (--audit-table)',
  StateTableName: 'the state table (--state-table)',
  SkipTopicArn: 'the SNS topic of skip notices',
  AlarmTopicArn: 'the SNS topic of the alarms',
  DashboardUrl: 'the CloudWatch dashboard',
  Mode: 'the mode the stack was deployed in (dry-run or protect)',
  MacKeyArn: 'the HMAC key of the audit images (--mac-key)',
} as const;
export type StackOutputKey = keyof typeof STACK_OUTPUTS;

/** The tag value marking the engine's own resources (under the configured exclusion tag key). */
export const ENGINE_TAG_VALUE = 'engine';

/** Retention values CloudWatch Logs accepts. */
const VALID_RETENTION_DAYS = new Set<number>(
  Object.values(logs.RetentionDays).filter((v): v is number => typeof v === 'number' && v > 0),
);

/** Lambda allows 4 KB of environment variables per function; the other variables take under 1 KB. */
const MAX_CONFIG_BYTES = 3072;

/**
 * Problems with a valid configuration that this stack cannot deploy. Checked by bin/app.ts together with
 * `deployProblems`, so synth fails with the key's name instead of CloudFormation failing later.
 */
export function stackProblems(config: Config, prefix = ''): string[] {
  const key = (path: string): string => (prefix.length > 0 ? `${prefix}.${path}` : path);
  const problems: string[] = [];
  if (!VALID_RETENTION_DAYS.has(config.observability.logRetentionDays)) {
    const allowed = [...VALID_RETENTION_DAYS].sort((a, b) => a - b).join(', ');
    problems.push(`${key('observability.logRetentionDays')}: CloudWatch Logs accepts only ${allowed}`);
  }
  const configBytes = Buffer.byteLength(JSON.stringify(config), 'utf8');
  if (configBytes > MAX_CONFIG_BYTES) {
    problems.push(
      `${prefix.length > 0 ? prefix : '(root)'}: the configuration is ${configBytes} bytes as JSON; the Lambdas receive it in ` +
        `ZERO_IMPACT_CONFIG and Lambda allows 4 KB of variables in all, so keep it under ${MAX_CONFIG_BYTES} ` +
        '(shorten exclusions.functions with patterns such as "team-*")',
    );
  }
  return problems;
}

export interface ZeroImpactStackProps extends StackProps {
  /** The validated configuration (lib/config.ts `parseConfig`, plus `deployProblems`). */
  readonly config: Config;
}

export type EngineFunctions = Readonly<Record<Exclude<HandlerName, 'protect-function'>, NodejsFunction>> & {
  /** Deployed in protect mode only. */
  readonly 'protect-function'?: NodejsFunction;
};

export class ZeroImpactStack extends Stack {
  public readonly config: Config;
  /** Customer-managed key of the tables, topics and inventory bucket (rotation on, retained). */
  public readonly key: kms.Key;
  /**
   * HMAC key (HMAC_256, GENERATE_VERIFY_MAC, retained): the engine derives its MAC key from it with kms:GenerateMac
   * and keeps only keyed MACs of its own variable values (never a bare hash). KMS does not rotate HMAC keys; a
   * rotated key would make every recorded MAC unrecognisable, so it is kept as it is.
   */
  public readonly macKey: kms.Key;
  public readonly auditTable: AuditTables['auditTable'];
  public readonly stateTable: AuditTables['stateTable'];
  public readonly skipTopic: Notifications['skipTopic'];
  public readonly alarmTopic: Notifications['alarmTopic'];
  public readonly inventoryBucket: InventoryBucket['bucket'];
  public readonly stateMachine: Workflow['stateMachine'];
  public readonly functions: EngineFunctions;
  /** The house constructs behind `functions` (role, log group). */
  public readonly houseFunctions: Readonly<Partial<Record<HandlerName, HouseFunction>>>;

  constructor(scope: Construct, id: string, props: ZeroImpactStackProps) {
    super(scope, id, {
      description: 'Zero-Impact Protect: rolls the Prisma Cloud Defender onto Lambda functions without harm',
      ...props,
    });
    const config = props.config;
    this.config = config;
    const logRetention = config.observability.logRetentionDays as logs.RetentionDays;

    this.key = new kms.Key(this, 'Key', {
      description: 'Zero-Impact Protect: audit and state tables, SNS topics, run inventories',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    // CloudWatch alarms publish to the encrypted alarm topic.
    this.key.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'CloudWatchAlarmsPublishToEncryptedTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: { StringEquals: { 'aws:SourceAccount': this.account } },
      }),
    );

    this.macKey = new kms.Key(this, 'MacKey', {
      description: 'Zero-Impact Protect: keyed MACs of the values the engine writes (never stored in plain text)',
      keySpec: kms.KeySpec.HMAC_256,
      keyUsage: kms.KeyUsage.GENERATE_VERIFY_MAC,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    const tables = new AuditTables(this, 'Tables', { key: this.key });
    const notifications = new Notifications(this, 'Notifications', {
      key: this.key,
      emails: config.notifications.emails,
      alarmEmails: config.notifications.alarmEmails,
    });
    const inventory = new InventoryBucket(this, 'Inventory', { key: this.key });
    this.auditTable = tables.auditTable;
    this.stateTable = tables.stateTable;
    this.skipTopic = notifications.skipTopic;
    this.alarmTopic = notifications.alarmTopic;
    this.inventoryBucket = inventory.bucket;

    const environment: Record<string, string> = {
      ZERO_IMPACT_CONFIG: JSON.stringify(config),
      AUDIT_TABLE_NAME: this.auditTable.tableName,
      STATE_TABLE_NAME: this.stateTable.tableName,
      SKIP_TOPIC_ARN: this.skipTopic.topicArn,
      ALARM_TOPIC_ARN: this.alarmTopic.topicArn,
      INVENTORY_BUCKET: this.inventoryBucket.bucketName,
      ENGINE_FUNCTION_PREFIX: `${this.stackName}-`,
      ENGINE_VERSION: packageJson.version,
      POWERTOOLS_SERVICE_NAME: SERVICE_NAME,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      POWERTOOLS_LOG_LEVEL: 'INFO',
    };
    const house = (
      id: string,
      handlerName: HandlerName,
      description: string,
      memorySize: number,
      timeout: Duration,
    ): HouseFunction =>
      new HouseFunction(this, id, { handlerName, description, memorySize, timeout, environment, logRetention });

    // Minutes, not seconds: after the lease it replays unrecorded decisions and reconciles pending changes.
    const startRun = house(
      'StartRun',
      'start-run',
      'Takes the run lease, replays and reconciles what earlier runs left',
      256,
      Duration.minutes(5),
    );
    const takeInventory = house(
      'TakeInventory',
      'take-inventory',
      'Lists every function into the run inventory (S3)',
      1024,
      Duration.minutes(15),
    );
    // Under 5 minutes: in dry-run it runs inside an Express child workflow.
    const assessBatch = house(
      'AssessBatch',
      'assess-batch',
      'Gathers facts and runs the funnel on a batch',
      1024,
      Duration.minutes(4),
    );
    const recordFailure = house(
      'RecordFailure',
      'record-failure',
      'Records FAILED decisions',
      256,
      Duration.minutes(1),
    );
    const finishRun = house(
      'FinishRun',
      'finish-run',
      'Counts outcomes, publishes the summary, releases the lease',
      512,
      Duration.minutes(5),
    );
    const protect =
      config.mode === 'protect'
        ? house(
            'ProtectFunction',
            'protect-function',
            'Adds the Defender to one function and waits until it is ready',
            512,
            Duration.minutes(15),
          )
        : undefined;

    const resources: EngineResources = {
      config,
      key: this.key,
      macKey: this.macKey,
      tables,
      skipTopic: this.skipTopic,
      alarmTopic: this.alarmTopic,
      inventoryBucket: this.inventoryBucket,
    };
    grantStartRun(startRun, resources, this);
    grantTakeInventory(takeInventory, resources);
    grantAssessBatch(assessBatch, resources, this);
    grantRecordFailure(recordFailure, resources);
    grantFinishRun(finishRun, resources);
    if (protect !== undefined) grantProtectFunction(protect, resources, this);
    // The functions granted kms:GenerateMac (permissions.ts) find the HMAC key here.
    for (const fn of [startRun, takeInventory, protect]) fn?.function.addEnvironment('MAC_KEY_ID', this.macKey.keyArn);
    // The previous values of an in-place refresh are encrypted with the stack key (kms:Encrypt: UseStackKey).
    protect?.function.addEnvironment('RESTORE_KEY_ID', this.key.keyArn);

    this.houseFunctions = {
      'start-run': startRun,
      'take-inventory': takeInventory,
      'assess-batch': assessBatch,
      'record-failure': recordFailure,
      'finish-run': finishRun,
      ...(protect === undefined ? {} : { 'protect-function': protect }),
    };
    this.functions = {
      'start-run': startRun.function,
      'take-inventory': takeInventory.function,
      'assess-batch': assessBatch.function,
      'record-failure': recordFailure.function,
      'finish-run': finishRun.function,
      ...(protect === undefined ? {} : { 'protect-function': protect.function }),
    };

    const workflow = new Workflow(this, 'Workflow', {
      config,
      functions: {
        startRun: startRun.function,
        takeInventory: takeInventory.function,
        assessBatch: assessBatch.function,
        recordFailure: recordFailure.function,
        finishRun: finishRun.function,
        protectFunction: protect?.function,
      },
      inventoryBucket: this.inventoryBucket,
      key: this.key,
      logRetention,
    });
    this.stateMachine = workflow.stateMachine;
    grantLeaseTakeover(startRun, this.stateMachine, this);

    new EngineAlarms(this, 'Alarms', {
      stateMachine: this.stateMachine,
      alarmTopic: this.alarmTopic,
      noSuccessAlarmHours: config.observability.noSuccessAlarmHours,
      ...(config.defender.policySource !== undefined && config.mode === 'protect'
        ? { policyUnavailableThreshold: POLICY_UNAVAILABLE_ALARM_THRESHOLD }
        : {}),
    });
    const dashboard = new EngineDashboard(this, 'Dashboard', { stateMachine: this.stateMachine });

    const values: Record<StackOutputKey, string> = {
      StateMachineArn: this.stateMachine.stateMachineArn,
      AuditTableName: this.auditTable.tableName,
      StateTableName: this.stateTable.tableName,
      SkipTopicArn: this.skipTopic.topicArn,
      AlarmTopicArn: this.alarmTopic.topicArn,
      DashboardUrl: `https://${this.region}.console.aws.amazon.com/cloudwatch/home?region=${this.region}#dashboards/dashboard/${dashboard.dashboard.dashboardName}`,
      Mode: config.mode,
      MacKeyArn: this.macKey.keyArn,
    };
    for (const [key, value] of Object.entries(values)) {
      new CfnOutput(this, key, {
        value,
        description: STACK_OUTPUTS[key as StackOutputKey],
        exportName: `${this.stackName}-${key}`,
      });
    }

    refuseWrongLayerAtDeploy(this, config.defender.layerArn);

    // The engine never touches its own functions: they carry the exclusion tag (and the name prefix).
    Tags.of(this).add(config.exclusions.tagKey, ENGINE_TAG_VALUE);

    acknowledgeNagFindings(this, {
      workflow,
      houseFunctions: this.houseFunctions,
      inventoryBucket: this.inventoryBucket,
    });
  }
}

/** The account id of AWS's documentation examples (and of this project's example configuration and local run). */
export const PLACEHOLDER_ACCOUNT = '123456789012';

/**
 * CloudFormation Rules that refuse the deploy (before any resource is created) when `defender.layerArn` is the
 * example's placeholder account, or a layer in another region than the stack's (Lambda attaches only layers of the
 * function's own region: "Layers must be in the same Region as the function", Lambda Developer Guide, Adding layers).
 * At deploy, not at synth: the stack is environment-agnostic (its region is known only then), and `cdk synth`, the
 * tests and the local run keep working with the example configuration. Template Rules: AWS CloudFormation User
 * Guide, "Rules" (Fn::Equals, Fn::Not, the pseudo parameter AWS::Region).
 */
function refuseWrongLayerAtDeploy(stack: Stack, layerArn: string): void {
  const [, , , region = '', account = ''] = layerArn.split(':');
  new CfnRule(stack, 'DefenderLayerRule', {
    assertions: [
      {
        assert: Fn.conditionNot(Fn.conditionEquals(account, PLACEHOLDER_ACCOUNT)),
        assertDescription: `defender.layerArn names the placeholder account ${PLACEHOLDER_ACCOUNT}: set the ARN of your Defender layer (npx zero-impact defender publish-layer prints it)`,
      },
      {
        assert: Fn.conditionEquals(region, Aws.REGION),
        assertDescription: `defender.layerArn is a layer of ${region}: deploy the stack in ${region}, or publish the Defender layer in the stack's region`,
      },
    ],
  });
}
