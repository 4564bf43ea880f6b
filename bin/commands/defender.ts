/**
 * `zero-impact defender publish-layer --runtime RUNTIME [--region R] [--yes] [--config FILE] [--layer-name NAME]`:
 * downloads the Serverless Defender layer bundle for the runtime's family from the customer's Prisma Cloud Console
 * (`defender.policySource.console`, with the access key in the Secrets Manager secret
 * `defender.policySource.credentialsSecret`, `{ "accessKey", "secretKey" }`) and publishes it as a new version of the
 * Defender layer (`lambda:PublishLayerVersion`), then prints the LayerVersionArn to put in `defender.layerArn`.
 * Without --yes it prints the plan (layer, runtimes, architecture, size) and changes nothing.
 *
 * The layer: named as in `defender.layerArn` (or --layer-name), so the new version follows the one in use;
 * CompatibleRuntimes = the runtime and the `funnel.supportedRuntimes` of the same family (the Console's layer serves
 * one family: Node.js or Python); CompatibleArchitectures = x86_64 only (Serverless Defenders are not supported on
 * ARM64: Prisma Cloud Compute admin guide, Serverless Defender). A bundle over 50 MB cannot be uploaded directly
 * (Lambda quotas) and is refused. The command never prints the keys, the token or anything from the secret.
 *
 * Region: --region / AWS_REGION. Exit codes: 0 planned or published, 1 the secret, the Console or Lambda failed,
 * 2 bad usage.
 */
import { createHash } from 'node:crypto';
import { CredentialsSecretError, readConsoleCredentials } from '../../lambdas/shared/adapters/defender-policy';
import { PublishLayerVersionCommand } from '@aws-sdk/client-lambda';
import { lambda } from '../../lambdas/shared/adapters/clients';
import { awsMessage } from '../../lambdas/shared/adapters/function-update';
import { wrapperEntry, zipEntryNames } from '../../lambdas/shared/adapters/layer-check';
import {
  ConsoleError,
  layerRuntimeFamily,
  PrismaConsoleClient,
  type ConsoleCredentials,
} from '../../lambdas/shared/adapters/prisma-console';
import { EXEC_WRAPPER_VARIABLE, type Config } from '../../lib/config';
import type { Command } from 'commander';
import { formatOf, formatOptions, guarded, loadConfig, newCommand, runCommand, UsageError } from './common';
import { applyRegion } from './rollback';

const USAGE =
  'usage: zero-impact defender publish-layer --runtime RUNTIME [--region R] [--yes] [--config FILE] [--layer-name NAME]';
/** Lambda quotas: a .zip uploaded directly through the API (PublishLayerVersion Content.ZipFile). */
export const MAX_DIRECT_UPLOAD_BYTES = 50 * 1024 * 1024;
/** PublishLayerVersion: CompatibleRuntimes has at most 15 members. */
const MAX_COMPATIBLE_RUNTIMES = 15;
const ARCHITECTURE = 'x86_64';
const LAYER_NAME_OF_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:([A-Za-z0-9_-]+):\d+$/;

/** `defender.policySource` as this command needs it (the schema is lib/config.ts). */
export interface PolicySource {
  console: string;
  credentialsSecret: string;
  ratePerSecond?: number;
}

/** `defender.policySource` of the configuration, or a UsageError naming the key. */
export function policySourceOf(config: Config): PolicySource {
  const raw = (config.defender as { policySource?: unknown }).policySource;
  const source = raw !== null && typeof raw === 'object' ? (raw as Record<string, unknown>) : undefined;
  const consoleUrl = source?.['console'];
  const secret = source?.['credentialsSecret'];
  if (typeof consoleUrl !== 'string' || typeof secret !== 'string' || secret.length === 0) {
    throw new UsageError(
      'defender publish-layer: defender.policySource (console and credentialsSecret) is required in the configuration',
    );
  }
  const rate = source?.['ratePerSecond'];
  return {
    console: consoleUrl,
    credentialsSecret: secret,
    ...(typeof rate === 'number' ? { ratePerSecond: rate } : {}),
  };
}

/**
 * The Console's keys from the secret, read by the one reader the protect Lambda uses
 * (lambdas/shared/adapters/defender-policy.ts): its errors name the secret and the AWS error (or what is wrong with
 * the secret's shape), never anything the secret holds.
 */
async function consoleCredentials(secretName: string): Promise<ConsoleCredentials> {
  try {
    return await readConsoleCredentials(secretName);
  } catch (error) {
    if (error instanceof CredentialsSecretError) throw new CommandFailure(error.message);
    throw error;
  }
}

/** A failure of the secret, the Console or Lambda: one line, exit code 1. */
class CommandFailure extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CommandFailure';
  }
}

/** What would be published. */
export interface LayerPlan {
  layerName: string;
  region: string;
  family: 'python' | 'nodejs';
  compatibleRuntimes: string[];
  compatibleArchitectures: string[];
  zipBytes: number;
  sha256: string;
  entries: number;
  description: string;
  /** Lines worth reading before publishing (e.g. the layer check would refuse this layer with this config). */
  notes: string[];
}

export function planLayer(
  config: Config,
  runtime: string,
  zip: Uint8Array,
  region: string,
  layerName: string,
  consoleHost: string,
): LayerPlan {
  const family = layerRuntimeFamily(runtime) as 'python' | 'nodejs';
  const sameFamily = config.funnel.supportedRuntimes.filter((r) => layerRuntimeFamily(r) === family);
  const compatibleRuntimes = [...new Set([runtime, ...sameFamily])].filter((r) => r !== family);
  if (compatibleRuntimes.length > MAX_COMPATIBLE_RUNTIMES) {
    throw new UsageError(
      `defender publish-layer: a layer declares at most ${MAX_COMPATIBLE_RUNTIMES} runtimes; funnel.supportedRuntimes lists ${compatibleRuntimes.length} ${family} runtimes`,
    );
  }
  const notes: string[] = [];
  const others = config.funnel.supportedRuntimes.filter((r) => layerRuntimeFamily(r) !== family);
  if (others.length > 0) {
    notes.push(
      `funnel.supportedRuntimes also lists ${others.join(', ')}: this layer serves ${family} only, so functions on those runtimes are skipped RUNTIME_UNSUPPORTED (never given a ${family} Defender)`,
    );
  }
  const names = zipEntryNames(zip);
  if (config.defender.method === 'exec-wrapper') {
    const wrapper = config.defender.environment[EXEC_WRAPPER_VARIABLE];
    const entry = typeof wrapper === 'string' ? wrapperEntry(wrapper) : undefined;
    if (entry !== undefined && !names.includes(entry)) {
      notes.push(
        `the bundle has no ${entry}, the file ${EXEC_WRAPPER_VARIABLE} names: the layer check will refuse it with defender.method "exec-wrapper"`,
      );
    }
  }
  return {
    layerName,
    region,
    family,
    compatibleRuntimes,
    compatibleArchitectures: [ARCHITECTURE],
    zipBytes: zip.length,
    sha256: createHash('sha256').update(zip).digest('base64'),
    entries: names.length,
    description: `Prisma Cloud Serverless Defender (${family}) from ${consoleHost}, published by zero-impact`,
    notes,
  };
}

function printPlan(plan: LayerPlan): void {
  console.log(`layer:                    ${plan.layerName} in ${plan.region} (a new version)`);
  console.log(
    `bundle:                   ${plan.family}, ${plan.zipBytes} bytes, ${plan.entries} files, sha256 ${plan.sha256}`,
  );
  console.log(`compatible runtimes:      ${plan.compatibleRuntimes.join(', ')}`);
  console.log(`compatible architectures: ${plan.compatibleArchitectures.join(', ')}`);
  for (const note of plan.notes) console.log(`note: ${note}`);
}

/** The options of `defender publish-layer` (the flags, parsed). */
export interface PublishLayerOptions {
  runtime?: string;
  region?: string;
  yes?: boolean;
  config?: string;
  layerName?: string;
  format?: string;
  human?: boolean;
  json?: boolean;
}

/** `defender publish-layer --format json`: one document on stdout. */
export interface PublishLayerDocument {
  plan: LayerPlan;
  /** False without --yes (nothing changed). */
  published: boolean;
  layerVersionArn?: string;
}

export function publishLayerCommand(): Command {
  const cmd = newCommand<PublishLayerOptions>(
    {
      name: 'defender publish-layer',
      summary: "publish the Prisma Cloud Console's Defender layer for a runtime as a new layer version",
      details: [
        'Reads defender.policySource (console, credentialsSecret) from the configuration; prints the plan and changes',
        'nothing without --yes; with --yes prints the LayerVersionArn to put in defender.layerArn.',
        'Exit codes: 0 planned or published, 1 the secret, the Console or Lambda failed, 2 bad usage.',
      ].join('\n'),
      examples: [
        'zero-impact defender publish-layer --runtime python3.12 --config my-config.json',
        'zero-impact defender publish-layer --runtime nodejs20.x --config my-config.json --region eu-west-1 --yes',
        'zero-impact defender publish-layer --runtime python3.12 --config my-config.json --yes --format json',
      ],
    },
    publishLayer,
  )
    .option('--runtime <runtime>', 'a Lambda runtime the Console ships a layer for (e.g. python3.12, nodejs20.x)')
    .option('--region <region>', 'AWS region (default: the environment variable AWS_REGION)')
    .option('--yes', 'publish (without it nothing is changed)', false)
    .option('--config <file>', 'configuration file with defender.policySource')
    .option('--layer-name <name>', 'layer name (default: the name in defender.layerArn)');
  return formatOptions(cmd, 'table');
}

async function publishLayer(flags: PublishLayerOptions): Promise<number> {
  const runtime = flags.runtime;
  if (runtime === undefined || runtime.length === 0) {
    throw new UsageError(`defender publish-layer: --runtime RUNTIME is required (${USAGE})`);
  }
  const family = layerRuntimeFamily(runtime);
  if (family === undefined || runtime === family) {
    throw new UsageError(
      `defender publish-layer: --runtime: "${runtime}" is not a Lambda runtime the Console ships a layer for (Node.js and Python only, e.g. python3.12 or nodejs20.x)`,
    );
  }
  const format = formatOf('defender publish-layer', flags, 'table');
  applyRegion('defender publish-layer', flags.region);
  const region = process.env['AWS_REGION'];
  if (region === undefined || region.length === 0) {
    throw new UsageError('defender publish-layer: --region R (or the environment variable AWS_REGION) is required');
  }
  const config = loadConfig(flags.config);
  const source = policySourceOf(config);
  const layerName = flags.layerName ?? LAYER_NAME_OF_ARN.exec(config.defender.layerArn)?.[1];
  if (layerName === undefined || !/^[A-Za-z0-9_-]{1,140}$/.test(layerName)) {
    throw new UsageError('defender publish-layer: --layer-name: expected a layer name (letters, digits, - and _)');
  }
  let client: PrismaConsoleClient;
  try {
    client = new PrismaConsoleClient({
      console: source.console,
      credentials: () => consoleCredentials(source.credentialsSecret),
      ...(source.ratePerSecond !== undefined ? { ratePerSecond: source.ratePerSecond } : {}),
    });
  } catch (error) {
    throw new UsageError(`defender publish-layer: defender.policySource.console: ${(error as Error).message}`);
  }

  let zip: Uint8Array;
  try {
    zip = await client.downloadBundle(runtime);
  } catch (error) {
    if (error instanceof ConsoleError || error instanceof CommandFailure) {
      console.error(`zero-impact defender publish-layer: ${error.message}; nothing changed`);
      return 1;
    }
    throw error;
  }
  const plan = planLayer(config, runtime, zip, region, layerName, new URL(source.console).hostname);
  if (plan.zipBytes > MAX_DIRECT_UPLOAD_BYTES) {
    console.error(
      `zero-impact defender publish-layer: the bundle is ${plan.zipBytes} bytes, over the ${MAX_DIRECT_UPLOAD_BYTES}-byte limit of a direct upload; nothing changed`,
    );
    return 1;
  }
  const print = (document: PublishLayerDocument): void => console.log(JSON.stringify(document, null, 2));
  if (format === 'table') printPlan(plan);
  if (flags.yes !== true) {
    if (format === 'json') print({ plan, published: false });
    else console.log('plan only: nothing changed (add --yes to publish)');
    return 0;
  }
  let arn: string | undefined;
  try {
    const out = await lambda.send(
      new PublishLayerVersionCommand({
        LayerName: plan.layerName,
        Content: { ZipFile: zip },
        CompatibleRuntimes: plan.compatibleRuntimes as PublishLayerVersionCommand['input']['CompatibleRuntimes'],
        CompatibleArchitectures: [ARCHITECTURE],
        Description: plan.description,
      }),
    );
    arn = out.LayerVersionArn;
  } catch (error) {
    console.error(
      `zero-impact defender publish-layer: PublishLayerVersion failed (${awsMessage(error)}); nothing changed`,
    );
    return 1;
  }
  if (arn === undefined) {
    console.error('zero-impact defender publish-layer: PublishLayerVersion returned no LayerVersionArn');
    return 1;
  }
  if (format === 'json') {
    print({ plan, published: true, layerVersionArn: arn });
    return 0;
  }
  console.log(`published: ${arn}`);
  console.log(`set defender.layerArn to "${arn}"`);
  return 0;
}

/** `defender` groups the Defender's own commands; today `publish-layer`. */
export function command(): Command {
  return newCommand<Record<string, never>>(
    {
      name: 'defender',
      summary: "the Defender's own commands (publish-layer)",
      examples: ['zero-impact defender publish-layer --runtime python3.12 --config my-config.json'],
    },
    async () => {
      throw new UsageError(`defender: unknown or missing subcommand (${USAGE})`);
    },
  ).addCommand(publishLayerCommand());
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'publish-layer') return runCommand('defender publish-layer', publishLayerCommand(), rest);
  if (sub === '--help' || sub === '-h') return runCommand('defender', command(), argv);
  return guarded(() => Promise.reject(new UsageError(`defender: unknown or missing subcommand (${USAGE})`)));
}
