/**
 * Estates for the simulated account: loading and validating an estate file, and generating random estates.
 *
 * An estate is the Lambda functions of one simulated account and region, each as a facts document in the funnel's
 * format (AWS's own shapes, see lambdas/shared/domain/types.ts). An estate file is either
 * - a JSON array of facts documents (the same file `zero-impact assess --facts` reads), or
 * - a JSON object `{ "functions": [facts...], "ssmParameters": { "/name": "value" } }`, when the configuration reads
 *   SSM parameters (e.g. TW_POLICY as `{ "ssmParameter": "/zero-impact/tw-policy" }`) that the simulated SSM must
 *   answer.
 *
 * Unlike `assess`, which accepts any facts and skips what it cannot establish, the simulator models a real account,
 * so an estate must be something AWS could hold: valid names and ARNs, one region and account, at most 5 layers,
 * variables within 4 KB, and a subnet with one egress kind. Fields AWS always returns may be omitted; the simulator
 * fills AWS's defaults. A field given as `null` (e.g. `"Architectures": null`) and `Environment.Error` (Lambda could
 * not decrypt the variables) are kept as given: the engine must meet them as AWS would return them.
 *
 * Besides the facts, a function may say what the account holds around it:
 * - `codeSigningConfig: { arn?, untrustedArtifactOnDeployment: "Warn" | "Enforce" }`;
 * - `versions: [{ version: "1", layers?, variables?, configuration? }]`: published versions, each with its own layers,
 *   variables and configuration ($LATEST's where not given);
 * - `aliases: [{ name, functionVersion, routingConfig?: { additionalVersionWeights: { "2": 0.1 } } }]`;
 * - `cloudFront: [{ distributionId, eventType, version?, pathPattern? }]`: Lambda@Edge associations of a published
 *   version (default the highest); only in us-east-1.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { FunctionFacts } from '../lambdas/shared/domain/types';

export const DEFAULT_REGION = 'eu-west-1';
export const DEFAULT_ACCOUNT = '123456789012';

/** Lambda's limit on the environment variables map: the UTF-8 bytes of its compact JSON. */
export const ENV_VARIABLES_LIMIT_BYTES = 4096;
export const MAX_LAYERS = 5;

/** A published version of a function in an estate: its own layers, variables and other configuration. */
export interface EstateVersion {
  version: string;
  layers?: string[];
  variables?: Record<string, string>;
  configuration?: Record<string, unknown>;
}

export interface EstateAlias {
  name: string;
  functionVersion: string;
  routingConfig?: { additionalVersionWeights: Record<string, number> };
}

export interface EstateCodeSigning {
  arn?: string;
  untrustedArtifactOnDeployment: 'Warn' | 'Enforce';
}

/** A Lambda@Edge association: a CloudFront distribution runs a version of the function on an event. */
export interface EstateEdgeAssociation {
  distributionId: string;
  eventType: 'viewer-request' | 'viewer-response' | 'origin-request' | 'origin-response';
  version?: string;
  pathPattern?: string;
}

/**
 * One function of an estate: its facts document plus what the account holds around it (not facts the funnel
 * reads directly; the engine must gather them through the API).
 */
export interface EstateFunction extends FunctionFacts {
  codeSigningConfig?: EstateCodeSigning;
  versions?: EstateVersion[];
  aliases?: EstateAlias[];
  cloudFront?: EstateEdgeAssociation[];
}

export interface Estate {
  functions: EstateFunction[];
  /** Values of SSM parameters the simulated SSM answers (GetParameter), by name. */
  ssmParameters: Record<string, string>;
  region: string;
  account: string;
}

/** A problem with an estate file: one line naming the file and the JSON path. */
export class EstateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EstateError';
  }
}

const FUNCTION_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const FUNCTION_ARN = /^arn:aws[a-z-]*:lambda:([a-z0-9-]+):(\d{12}):function:([a-zA-Z0-9_-]{1,64})$/;
const LAYER_VERSION_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[a-zA-Z0-9_-]+:\d+$/;

const configurationSchema = z.looseObject({
  FunctionName: z.string().regex(FUNCTION_NAME, 'a Lambda function name (1-64 letters, digits, - or _)'),
  FunctionArn: z.string().regex(FUNCTION_ARN, 'an unqualified function ARN').optional(),
  PackageType: z.enum(['Zip', 'Image']).optional(),
  // Fields AWS may return as null (or that an estate records as null, to test the engine on it) stay null.
  Runtime: z.string().min(1).nullable().optional(),
  Handler: z.string().min(1).nullable().optional(),
  Architectures: z
    .array(z.enum(['x86_64', 'arm64']))
    .length(1)
    .nullable()
    .optional(),
  MemorySize: z.number().int().min(128).max(10240).optional(),
  Timeout: z.number().int().min(1).max(900).optional(),
  Environment: z
    .looseObject({
      Variables: z.record(z.string(), z.string()).nullable().optional(),
      // GetFunction's Environment.Error when Lambda cannot decrypt the variables (EnvironmentError).
      Error: z
        .looseObject({ ErrorCode: z.string().min(1), Message: z.string() })
        .nullable()
        .optional(),
    })
    .nullable()
    .optional(),
  Layers: z
    .array(
      z.looseObject({
        Arn: z.string().regex(LAYER_VERSION_ARN, 'a layer version ARN'),
        CodeSize: z.number().optional(),
      }),
    )
    .max(MAX_LAYERS)
    .nullable()
    .optional(),
  VpcConfig: z
    .looseObject({
      SubnetIds: z.array(z.string().min(1)).optional(),
      SecurityGroupIds: z.array(z.string().min(1)).optional(),
      VpcId: z.string().optional(),
    })
    .nullable()
    .optional(),
  SnapStart: z
    .looseObject({ ApplyOn: z.enum(['None', 'PublishedVersions']).optional() })
    .nullable()
    .optional(),
  State: z.enum(['Pending', 'Active', 'Inactive', 'Failed']).optional(),
  LastUpdateStatus: z.enum(['Successful', 'Failed', 'InProgress']).optional(),
  RevisionId: z.string().min(1).optional(),
});

const VERSION = /^[1-9]\d{0,9}$/;
const ALIAS_NAME = /^(?!^[0-9]+$)[a-zA-Z0-9-_]{1,128}$/;
const CODE_SIGNING_CONFIG_ARN = /^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:code-signing-config:csc-[a-z0-9]{17}$/;

const versionSchema = z.strictObject({
  version: z.string().regex(VERSION, 'a published version number ("1", "2", ...)'),
  layers: z.array(z.string().regex(LAYER_VERSION_ARN, 'a layer version ARN')).max(MAX_LAYERS).optional(),
  variables: z.record(z.string(), z.string()).optional(),
  /** Other fields of this version's configuration (e.g. Handler, Runtime): the version's own, not $LATEST's. */
  configuration: z.record(z.string(), z.unknown()).optional(),
});

const aliasSchema = z.strictObject({
  name: z.string().regex(ALIAS_NAME, 'an alias name (letters, digits, - or _, not only digits)'),
  functionVersion: z.string().regex(/^(\$LATEST|[1-9]\d{0,9})$/, '"$LATEST" or a published version'),
  routingConfig: z
    .strictObject({ additionalVersionWeights: z.record(z.string(), z.number().min(0).max(1)) })
    .optional(),
});

const codeSigningSchema = z.strictObject({
  arn: z.string().regex(CODE_SIGNING_CONFIG_ARN, 'a code signing config ARN').optional(),
  untrustedArtifactOnDeployment: z.enum(['Warn', 'Enforce']),
});

const cloudFrontSchema = z.strictObject({
  distributionId: z.string().regex(/^E[A-Z0-9]{5,20}$/, 'a CloudFront distribution id (E...)'),
  eventType: z.enum(['viewer-request', 'viewer-response', 'origin-request', 'origin-response']),
  /** The associated version. @default the function's highest published version */
  version: z.string().regex(VERSION, 'a published version number').optional(),
  /** A cache behavior's path pattern. @default the default cache behavior */
  pathPattern: z.string().min(1).optional(),
});

const factsSchema = z.looseObject({
  configuration: configurationSchema,
  tags: z.record(z.string(), z.string()).optional(),
  provisionedConcurrencyConfigs: z.array(z.record(z.string(), z.unknown())).optional(),
  throttles24h: z.number().min(0).nullable().optional(),
  vpcEgress: z.enum(['nat', 'none', 'unknown']).optional(),
  reservedConcurrency: z.number().int().min(0).nullable().optional(),
  peakConcurrency: z.number().min(0).nullable().optional(),
  codeSigningConfig: codeSigningSchema.optional(),
  versions: z.array(versionSchema).optional(),
  aliases: z.array(aliasSchema).optional(),
  cloudFront: z.array(cloudFrontSchema).optional(),
});

const wrappedSchema = z.strictObject({
  functions: z.array(z.unknown()),
  ssmParameters: z.record(z.string().min(1), z.string()).optional(),
});

function pathOf(path: ReadonlyArray<PropertyKey>): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : `${acc}.${String(key)}`), '$');
}

function firstIssue(error: z.ZodError, prefix: ReadonlyArray<PropertyKey>): string {
  const issue = error.issues[0];
  if (issue === undefined) return `${pathOf(prefix)}: invalid`;
  const more = error.issues.length > 1 ? ` (and ${error.issues.length - 1} more)` : '';
  return `${pathOf([...prefix, ...issue.path])}: ${issue.message}${more}`;
}

/**
 * Validates a parsed estate file.
 * @param input the parsed JSON
 * @param source the file name, for the error message
 * @throws EstateError naming the file, the JSON path and what was expected
 */
export function parseEstate(input: unknown, source: string): Estate {
  const fail = (problem: string): never => {
    throw new EstateError(`${source}: ${problem}`);
  };
  let rawFunctions: unknown[];
  let ssmParameters: Record<string, string> = {};
  let prefix: Array<PropertyKey> = [];
  if (Array.isArray(input)) {
    rawFunctions = input;
  } else if (input !== null && typeof input === 'object') {
    const wrapped = wrappedSchema.safeParse(input);
    if (!wrapped.success) return fail(firstIssue(wrapped.error, []));
    rawFunctions = wrapped.data.functions;
    ssmParameters = wrapped.data.ssmParameters ?? {};
    prefix = ['functions'];
  } else {
    return fail('$: expected an array of facts documents or { "functions": [...], "ssmParameters": {...} }');
  }
  const functions: EstateFunction[] = [];
  const names = new Map<string, number>();
  const subnetEgress = new Map<string, { egress: string; index: number }>();
  let region: string | undefined;
  let account: string | undefined;
  rawFunctions.forEach((raw, index) => {
    const at = [...prefix, index];
    const parsed = factsSchema.safeParse(raw);
    if (!parsed.success) return fail(firstIssue(parsed.error, at));
    const facts = parsed.data as EstateFunction;
    const configuration = parsed.data.configuration;
    const versions = new Set<string>();
    (parsed.data.versions ?? []).forEach((v, i) => {
      if (versions.has(v.version)) fail(`${pathOf([...at, 'versions', i, 'version'])}: duplicate version ${v.version}`);
      versions.add(v.version);
    });
    const aliasNames = new Set<string>();
    (parsed.data.aliases ?? []).forEach((alias, i) => {
      const where = [...at, 'aliases', i];
      if (aliasNames.has(alias.name)) fail(`${pathOf([...where, 'name'])}: duplicate alias ${alias.name}`);
      aliasNames.add(alias.name);
      if (alias.functionVersion !== '$LATEST' && !versions.has(alias.functionVersion)) {
        fail(`${pathOf([...where, 'functionVersion'])}: version ${alias.functionVersion} is not in "versions"`);
      }
      for (const weighted of Object.keys(alias.routingConfig?.additionalVersionWeights ?? {})) {
        if (!versions.has(weighted) || weighted === alias.functionVersion) {
          fail(
            `${pathOf([...where, 'routingConfig'])}: weighted version ${weighted} must be another published version`,
          );
        }
      }
    });
    (parsed.data.cloudFront ?? []).forEach((association, i) => {
      // Lambda@Edge associates a numbered version, never $LATEST or an alias (CloudFront Developer Guide,
      // "Restrictions on Lambda@Edge": "You must use a numbered version of the Lambda function").
      const version = association.version ?? [...versions].sort((a, b) => Number(b) - Number(a))[0];
      if (version === undefined || !versions.has(version)) {
        fail(`${pathOf([...at, 'cloudFront', i])}: Lambda@Edge associates a published version; add it to "versions"`);
      }
    });
    const name = configuration.FunctionName;
    const previous = names.get(name);
    if (previous !== undefined) {
      fail(
        `${pathOf([...at, 'configuration', 'FunctionName'])}: duplicate function name "${name}" (also at index ${previous})`,
      );
    }
    names.set(name, index);
    if (configuration.FunctionArn !== undefined) {
      const match = FUNCTION_ARN.exec(configuration.FunctionArn);
      const [, arnRegion, arnAccount, arnName] = match ?? [];
      if (arnName !== name)
        fail(`${pathOf([...at, 'configuration', 'FunctionArn'])}: names a different function than FunctionName`);
      if ((region !== undefined && arnRegion !== region) || (account !== undefined && arnAccount !== account)) {
        fail(
          `${pathOf([...at, 'configuration', 'FunctionArn'])}: every function of an estate is in one account and region`,
        );
      }
      region = arnRegion;
      account = arnAccount;
    }
    const variables = configuration.Environment?.Variables;
    if (variables !== undefined && Buffer.byteLength(JSON.stringify(variables), 'utf8') > ENV_VARIABLES_LIMIT_BYTES) {
      fail(
        `${pathOf([...at, 'configuration', 'Environment', 'Variables'])}: over Lambda's 4 KB limit (AWS would not hold it)`,
      );
    }
    if (configuration.PackageType === 'Image' && (configuration.Layers ?? []).length > 0) {
      fail(`${pathOf([...at, 'configuration', 'Layers'])}: container image functions cannot have layers`);
    }
    const egress = parsed.data.vpcEgress ?? 'unknown';
    for (const subnet of configuration.VpcConfig?.SubnetIds ?? []) {
      const seen = subnetEgress.get(subnet);
      if (seen !== undefined && seen.egress !== egress) {
        fail(
          `${pathOf([...at, 'vpcEgress'])}: subnet ${subnet} is "${seen.egress}" at index ${seen.index}; one subnet has one egress`,
        );
      }
      subnetEgress.set(subnet, { egress, index });
    }
    functions.push(facts);
  });
  const edge = functions.findIndex((f) => (f.cloudFront ?? []).length > 0);
  if (edge >= 0 && region !== 'us-east-1') {
    // CloudFront Developer Guide, "Restrictions on Lambda@Edge": "The Lambda function must be in the US East
    // (N. Virginia) Region."
    fail(`${pathOf([...prefix, edge, 'cloudFront'])}: Lambda@Edge functions live in us-east-1 (give its FunctionArn)`);
  }
  return { functions, ssmParameters, region: region ?? DEFAULT_REGION, account: account ?? DEFAULT_ACCOUNT };
}

/**
 * Reads and validates an estate file.
 * @throws EstateError (one line: the file, the JSON path, what was expected)
 */
export function loadEstateFile(path: string): Estate {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new EstateError(`${path}: cannot read file (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`);
  }
  let input: unknown;
  try {
    input = JSON.parse(text) as unknown;
  } catch (error) {
    // Never echo the parser's message: it quotes the file's text, which may hold a secret (issue 13 item 6).
    const position = /position (\d+)/.exec(String((error as { message?: unknown }).message))?.[1];
    throw new EstateError(`${path}: not valid JSON${position === undefined ? '' : ` (at byte ${position})`}`);
  }
  return parseEstate(input, path);
}

export function functionArn(region: string, account: string, name: string): string {
  return `arn:aws:lambda:${region}:${account}:function:${name}`;
}

/** A small, fast, seedable PRNG (mulberry32): the same seed gives the same sequence on every machine. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenerateEstateOptions {
  /** Number of functions. */
  count: number;
  /** The same seed gives the same estate. */
  seed: number;
  /** @default DEFAULT_REGION */
  region?: string;
  /** @default DEFAULT_ACCOUNT */
  account?: string;
  /**
   * Plant already-protected (and outdated, half-protected) functions: the Defender layer version ARN and the literal
   * variables protection adds. Without it, no function carries the Defender.
   */
  protection?: { layerArn: string; variables: Record<string, string> };
  /** Values of SSM parameters the estate provides. @default {} */
  ssmParameters?: Record<string, string>;
  /** A secret-looking value planted in one customer variable (DB_PASSWORD) of some functions. */
  canaryValue?: string;
}

/**
 * Generates a random but realistic estate: mostly protectable functions, with every gate failing somewhere and VPC
 * functions on shared subnets. Deterministic for a seed.
 */
export function generateEstate(options: GenerateEstateOptions): Estate {
  const region = options.region ?? DEFAULT_REGION;
  const account = options.account ?? DEFAULT_ACCOUNT;
  const random = seededRandom(options.seed);
  const chance = (p: number): boolean => random() < p;
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const hex = (length: number): string => Array.from({ length }, () => Math.floor(random() * 16).toString(16)).join('');
  const layerPool = [
    `arn:aws:lambda:${region}:${account}:layer:shared-utils:7`,
    `arn:aws:lambda:${region}:${account}:layer:otel-collector:3`,
    `arn:aws:lambda:${region}:${account}:layer:pandas:12`,
    `arn:aws:lambda:${region}:${account}:layer:secrets-extension:4`,
    `arn:aws:lambda:${region}:${account}:layer:powertools:52`,
    `arn:aws:lambda:${region}:${account}:layer:sharp:2`,
  ];
  const teams = ['payments', 'search', 'identity', 'platform', 'data', 'growth'];
  const words = ['orders', 'users', 'events', 'billing', 'reports', 'sync', 'ingest', 'notify', 'auth', 'catalog'];
  const subnets = {
    nat: { vpc: 'vpc-0a1b2c3d4e5f60001', ids: ['subnet-0aa0000000000001', 'subnet-0aa0000000000002'] },
    none: { vpc: 'vpc-0a1b2c3d4e5f60002', ids: ['subnet-0bb0000000000001'] },
    unknown: { vpc: 'vpc-0a1b2c3d4e5f60003', ids: ['subnet-0cc0000000000001'] },
  } as const;
  const functions: FunctionFacts[] = [];
  for (let i = 0; i < options.count; i += 1) {
    const name = `gen-${String(i).padStart(5, '0')}-${pick(words)}-${pick(words)}`;
    const image = chance(0.04);
    const runtime = chance(0.85)
      ? pick(['python3.9', 'python3.11', 'python3.12', 'python3.13', 'nodejs18.x', 'nodejs20.x', 'nodejs22.x'])
      : pick(['java21', 'provided.al2023', 'dotnet8', 'ruby3.3', 'python3.8']);
    const variables: Record<string, string> = {};
    const varCount = Math.floor(random() * 6);
    for (let v = 0; v < varCount; v += 1)
      variables[`VAR_${v}_${pick(words).toUpperCase()}`] = hex(8 + Math.floor(random() * 40));
    if (options.canaryValue !== undefined && chance(0.1)) variables['DB_PASSWORD'] = options.canaryValue;
    if (chance(0.02)) variables['AWS_LAMBDA_EXEC_WRAPPER'] = '/opt/otel-instrument';
    const layers: Array<{ Arn: string; CodeSize: number }> = [];
    const layerCount = image ? 0 : chance(0.02) ? 5 : Math.floor(random() * 3);
    const shuffled = [...layerPool].sort(() => random() - 0.5);
    for (let l = 0; l < layerCount; l += 1)
      layers.push({ Arn: shuffled[l % shuffled.length] as string, CodeSize: 100000 + l });
    const protection = options.protection;
    if (protection !== undefined && !image && layers.length < MAX_LAYERS && chance(0.05)) {
      const outdated = chance(0.3);
      const arn = outdated
        ? protection.layerArn.replace(/:(\d+)$/, (_m, v: string) => `:${Math.max(1, Number(v) - 1)}`)
        : protection.layerArn;
      const partial = chance(0.15);
      layers.push({ Arn: arn, CodeSize: 30000000 });
      if (!partial) Object.assign(variables, protection.variables);
    }
    if (chance(0.02)) {
      // Near the 4 KB limit: there is no room left for the variables protection adds.
      const room = ENV_VARIABLES_LIMIT_BYTES - Buffer.byteLength(JSON.stringify(variables), 'utf8') - 40;
      if (room > 0) variables['FEATURE_FLAGS'] = 'x'.repeat(room);
    }
    const vpcRoll = random();
    const egress: 'nat' | 'none' | 'unknown' | undefined =
      vpcRoll < 0.09 ? 'nat' : vpcRoll < 0.12 ? 'none' : vpcRoll < 0.14 ? 'unknown' : undefined;
    const configuration: FunctionFacts['configuration'] = {
      FunctionName: name,
      FunctionArn: functionArn(region, account, name),
      PackageType: image ? 'Image' : 'Zip',
      ...(image ? {} : { Runtime: runtime, Handler: runtime.startsWith('python') ? 'app.handler' : 'index.handler' }),
      Architectures: [chance(0.08) ? 'arm64' : 'x86_64'],
      MemorySize: pick([128, 128, 256, 512, 512, 1024, 1769, 3008, 10240]),
      Timeout: pick([3, 10, 30, 30, 60, 300, 870, 871, 900]),
      ...(Object.keys(variables).length > 0 ? { Environment: { Variables: variables } } : {}),
      ...(layers.length > 0 ? { Layers: layers } : {}),
      ...(egress !== undefined
        ? {
            VpcConfig: {
              SubnetIds: [pick(subnets[egress].ids)],
              SecurityGroupIds: [`sg-0${hex(16)}`],
              VpcId: subnets[egress].vpc,
            },
          }
        : {}),
      SnapStart: { ApplyOn: runtime === 'java21' && chance(0.3) ? 'PublishedVersions' : 'None' },
      State: 'Active',
      LastUpdateStatus: chance(0.01) ? 'InProgress' : 'Successful',
    };
    const tags: Record<string, string> = { team: pick(teams) };
    if (chance(0.03)) tags['zero-impact:exclude'] = 'true';
    const reserved = chance(0.1) ? pick([5, 10, 50, 100]) : undefined;
    const facts: FunctionFacts = {
      configuration,
      tags,
      provisionedConcurrencyConfigs: chance(0.03)
        ? [
            {
              FunctionArn: `${functionArn(region, account, name)}:live`,
              RequestedProvisionedConcurrentExecutions: 10,
              AvailableProvisionedConcurrentExecutions: 10,
              AllocatedProvisionedConcurrentExecutions: 10,
              Status: 'READY',
              LastModified: '2024-11-02T09:00:00+0000',
            },
          ]
        : [],
      ...(chance(0.75) ? { throttles24h: chance(0.07) ? 1 + Math.floor(random() * 50) : 0 } : {}),
      ...(egress !== undefined ? { vpcEgress: egress } : {}),
      ...(reserved !== undefined ? { reservedConcurrency: reserved } : {}),
      ...(chance(0.8) ? { peakConcurrency: Math.floor(random() * (reserved ?? 20)) } : {}),
    };
    functions.push(facts);
  }
  return { functions, ssmParameters: options.ssmParameters ?? {}, region, account };
}
