/**
 * The house defaults for the engine's own Lambdas: Node.js 22 on arm64, bundled by esbuild (no Docker), a log group
 * with retention, its own role that starts empty (no managed policy) and receives exactly the statements the
 * architecture table lists, and the environment every handler reads through lambdas/shared/runtime.ts.
 */
import * as path from 'node:path';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { NodejsFunction, OutputFormat } from 'aws-cdk-lib/aws-lambda-nodejs';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

/** The handler folders under lambdas/. */
export const HANDLER_NAMES = [
  'start-run',
  'take-inventory',
  'assess-batch',
  'protect-function',
  'record-failure',
  'finish-run',
] as const;
export type HandlerName = (typeof HANDLER_NAMES)[number];

/** The repository root (lambdas/ and package-lock.json live there). */
const PROJECT_ROOT = path.join(__dirname, '..', '..');

export interface HouseFunctionProps {
  /** The folder under lambdas/ holding handler.ts. */
  readonly handlerName: HandlerName;
  /** What the function does, shown in the console. */
  readonly description: string;
  /** @default 512 */
  readonly memorySize?: number;
  /** @default Duration.minutes(1) */
  readonly timeout?: Duration;
  /** Environment shared by every handler (tables, topics, config). */
  readonly environment: Record<string, string>;
  /** Log group retention. */
  readonly logRetention: logs.RetentionDays;
}

/** One engine Lambda with its own role and log group. */
export class HouseFunction extends Construct {
  public readonly function: NodejsFunction;
  public readonly role: iam.Role;
  public readonly logGroup: logs.LogGroup;

  constructor(scope: Construct, id: string, props: HouseFunctionProps) {
    super(scope, id);

    this.logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention,
      // Logs carry decisions and function names, never variable values; kept with the audit trail.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Zero-Impact Protect ${props.handlerName}: only the calls listed in docs/architecture.md`,
    });
    // Writing its own log streams, scoped to its own log group (instead of AWSLambdaBasicExecutionRole on "*").
    this.allow('WriteOwnLogs', ['logs:CreateLogStream', 'logs:PutLogEvents'], [this.logGroup.logGroupArn]);

    this.function = new NodejsFunction(this, 'Function', {
      entry: path.join(PROJECT_ROOT, 'lambdas', props.handlerName, 'handler.ts'),
      handler: 'handler',
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: path.join(PROJECT_ROOT, 'package-lock.json'),
      description: props.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout ?? Duration.minutes(1),
      role: this.role,
      logGroup: this.logGroup,
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      bundling: {
        minify: true,
        sourceMap: true,
        sourcesContent: false,
        target: 'node22',
        format: OutputFormat.CJS,
        // Bundle our pinned SDK v3 clients instead of the runtime's: the adapters are tested against these versions.
        bundleAwsSDK: true,
        externalModules: [],
      },
    });
  }

  /** Adds one statement to this function's role. */
  public allow(
    sid: string,
    actions: string[],
    resources: string[],
    conditions?: Record<string, Record<string, unknown>>,
  ): void {
    this.role.addToPrincipalPolicy(new iam.PolicyStatement({ sid, actions, resources, conditions }));
  }
}
