/**
 * The Defender layer check, run once before any function is changed in a run (issue 3, "Protecting a function"):
 * the layer version exists, declares x86_64 (or no architectures), declares at least one runtime of
 * `funnel.supportedRuntimes` (when it declares runtimes at all; a function of a runtime it does not declare is
 * skipped RUNTIME_UNSUPPORTED, per function), and, with the exec-wrapper method, its ZIP contains
 * the file AWS_LAMBDA_EXEC_WRAPPER points to. A wrapper variable that names a missing file breaks every invocation,
 * so every error here fails closed: `{ ok: false, code, reason }`, never an exception.
 *
 * Two kinds of failure (issue 9): the layer was read and is wrong (`DEFENDER_LAYER_INVALID`: not found, bad ARN,
 * wrong architecture or runtimes, no wrapper file; the operator must fix defender.layerArn), or the check could not
 * be done (`FACTS_MISSING` naming the AWS error: throttling, a 5xx, access denied, a network error, a failed
 * download; nothing is protected this run, the engine alarm fires, and the next run checks again). Only the first
 * may ever tell anyone to fix the layer.
 */
import { GetLayerVersionByArnCommand } from '@aws-sdk/client-lambda';
import { unzipSync } from 'fflate';
import { EXEC_WRAPPER_VARIABLE, type Config } from '../domain/config';
import type { ReasonCode } from '../domain/types';
import { lambda } from './clients';

/** What the layer version declares about itself (absent: declares nothing, AWS's "any"). */
export interface LayerDeclaration {
  arn: string;
  compatibleRuntimes?: string[];
  compatibleArchitectures?: string[];
  /** The presigned download location (real AWS) or a data: URL (the simulated account). */
  location?: string;
  codeSize?: number;
}

/** Why a layer check failed: the layer is wrong, or it could not be checked. */
export type LayerCheckCode = 'DEFENDER_LAYER_INVALID' | 'FACTS_MISSING';
export interface LayerCheckFailure {
  ok: false;
  code: LayerCheckCode;
  reason: string;
  /** The AWS error (or download failure) that kept the check from being done; FACTS_MISSING only. */
  awsError?: string;
}
/** The run-level result; `layer` is what the layer declares, without its (presigned) download location. */
export type LayerCheck = { ok: true; layer: LayerDeclaration } | LayerCheckFailure;
export type LayerLookup = { ok: true; layer: LayerDeclaration } | LayerCheckFailure;
export type LayerCompatibility = { ok: true } | { ok: false; code: ReasonCode; reason: string };

/** The largest layer ZIP the check downloads (Lambda's unzipped limit for a function and its layers). */
export const MAX_LAYER_ZIP_BYTES = 250 * 1024 * 1024;
/** How long the download may take. */
export const DOWNLOAD_TIMEOUT_MS = 60_000;
const REQUIRED_ARCHITECTURE = 'x86_64';

/**
 * Lambda's answers that mean the layer version itself is wrong: it does not exist, or the ARN is not one. Every
 * other error (throttling, 5xx, access denied, a network error, anything unknown) means it could not be checked.
 */
const LAYER_WRONG_ERRORS = new Set([
  'ResourceNotFoundException',
  'InvalidParameterValueException',
  'ValidationException',
]);

/** The AWS error's name, for the record: `ThrottlingException`, `AccessDeniedException` ... */
function errorName(error: unknown): string {
  return error instanceof Error && error.name.length > 0 ? error.name : 'Error';
}

function unchecked(layerArn: string, awsError: string, why: string): LayerCheckFailure {
  return {
    ok: false,
    code: 'FACTS_MISSING',
    awsError,
    reason: `Defender layer ${layerArn} could not be checked (${why}); nothing is protected this run, the next run checks again`,
  };
}

function message(error: unknown): string {
  if (error instanceof Error)
    return error.name && error.name !== 'Error' ? `${error.name}: ${error.message}` : error.message;
  return String(error);
}

/**
 * GetLayerVersionByArn for one layer version; fails closed.
 * @param beforeCall waits for the run's control-plane budget (GetLayerVersionByArn counts against Lambda's
 *   "remainder of the control plane" quota) @default no wait
 */
export async function describeLayer(layerArn: string, beforeCall?: () => Promise<void>): Promise<LayerLookup> {
  try {
    await beforeCall?.();
    const out = await lambda.send(new GetLayerVersionByArnCommand({ Arn: layerArn }));
    if (out.LayerVersionArn === undefined && out.Version === undefined) {
      return {
        ok: false,
        code: 'DEFENDER_LAYER_INVALID',
        reason: `Defender layer ${layerArn}: GetLayerVersionByArn returned no layer version`,
      };
    }
    const layer: LayerDeclaration = { arn: out.LayerVersionArn ?? layerArn };
    if (out.CompatibleRuntimes !== undefined && out.CompatibleRuntimes.length > 0) {
      layer.compatibleRuntimes = [...out.CompatibleRuntimes];
    }
    if (out.CompatibleArchitectures !== undefined && out.CompatibleArchitectures.length > 0) {
      layer.compatibleArchitectures = [...out.CompatibleArchitectures];
    }
    if (out.Content?.Location !== undefined) layer.location = out.Content.Location;
    if (out.Content?.CodeSize !== undefined) layer.codeSize = out.Content.CodeSize;
    return { ok: true, layer };
  } catch (error) {
    if (LAYER_WRONG_ERRORS.has(errorName(error))) {
      return {
        ok: false,
        code: 'DEFENDER_LAYER_INVALID',
        reason: `Defender layer ${layerArn} cannot be read (${message(error)})`,
      };
    }
    return unchecked(layerArn, errorName(error), `GetLayerVersionByArn failed: ${message(error)}`);
  }
}

/**
 * Whether the layer, as it declares itself, runs on a function with this runtime and these architectures.
 * A declaration that is absent means "any" (AWS's meaning); a function without Architectures is x86_64.
 * The function's fields are taken as they come (issue 8 item 11): `Architectures` that is not a non-empty list of
 * strings (null, a string, a list with a number) or a `Runtime` that is not a string is FACTS_MISSING, never a
 * TypeError.
 */
export function layerCompatibleWith(
  layer: LayerDeclaration,
  runtime: unknown,
  architectures: unknown,
): LayerCompatibility {
  const shape = (field: string, expected: string): LayerCompatibility => ({
    ok: false,
    code: 'FACTS_MISSING',
    reason: `the function's ${field} is not ${expected}`,
  });
  if (architectures !== undefined && !isStringList(architectures)) {
    return shape('Architectures', 'a list of architecture names');
  }
  if (runtime !== undefined && typeof runtime !== 'string') return shape('Runtime', 'a runtime identifier');
  const archs = architectures === undefined || architectures.length === 0 ? [REQUIRED_ARCHITECTURE] : architectures;
  const declaredArchs = layer.compatibleArchitectures;
  if (declaredArchs !== undefined) {
    const missing = archs.filter((arch) => !declaredArchs.includes(arch));
    if (missing.length > 0) {
      return {
        ok: false,
        code: missing.includes('arm64') ? 'ARCH_ARM64' : 'DEFENDER_LAYER_INVALID',
        reason: `the Defender layer declares architectures ${declaredArchs.join(', ')}, not ${missing.join(', ')}`,
      };
    }
  }
  const declaredRuntimes = layer.compatibleRuntimes;
  if (declaredRuntimes !== undefined) {
    if (runtime === undefined || !declaredRuntimes.includes(runtime)) {
      return {
        ok: false,
        code: 'RUNTIME_UNSUPPORTED',
        reason: `the Defender layer declares runtimes ${declaredRuntimes.join(', ')}, not ${runtime ?? 'none'}`,
      };
    }
  }
  return { ok: true };
}

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string');
}

/** The ZIP entry the wrapper path names: `/opt/twistlock/wrapper` → `twistlock/wrapper`. */
export function wrapperEntry(wrapperPath: string): string | undefined {
  const match = /^\/opt\/(.+)$/.exec(wrapperPath);
  const entry = match?.[1]?.replace(/^\/+/, '');
  return entry === undefined || entry.length === 0 || entry.endsWith('/') ? undefined : entry;
}

/** The names of the entries of a ZIP, without inflating any of them. */
export function zipEntryNames(zip: Uint8Array): string[] {
  const names: string[] = [];
  unzipSync(zip, {
    filter: (file) => {
      names.push(file.name.replace(/^\.\//, ''));
      return false;
    },
  });
  return names;
}

/** The ZIP, or why it is wrong (`wrong`), or why it could not be fetched (`unchecked`: HTTP error, network). */
type Download = { zip: Uint8Array } | { wrong: string } | { unchecked: string; awsError: string };

async function download(location: string, declaredSize: number | undefined): Promise<Download> {
  if (declaredSize !== undefined && declaredSize > MAX_LAYER_ZIP_BYTES) {
    return { wrong: `its ZIP is ${declaredSize} bytes, over the ${MAX_LAYER_ZIP_BYTES}-byte limit of the check` };
  }
  let response: Response;
  let body: Uint8Array;
  try {
    response = await fetch(location, { signal: AbortSignal.timeout(DOWNLOAD_TIMEOUT_MS) });
    if (!response.ok) {
      return {
        unchecked: `its ZIP cannot be downloaded (HTTP ${response.status})`,
        awsError: `HTTP ${response.status}`,
      };
    }
    const length = Number(response.headers.get('content-length') ?? '0');
    if (length > MAX_LAYER_ZIP_BYTES) {
      return { wrong: `its ZIP is ${length} bytes, over the ${MAX_LAYER_ZIP_BYTES}-byte limit` };
    }
    body = new Uint8Array(await response.arrayBuffer());
  } catch (error) {
    return { unchecked: `its ZIP cannot be downloaded (${message(error)})`, awsError: errorName(error) };
  }
  if (body.byteLength > MAX_LAYER_ZIP_BYTES) return { wrong: `its ZIP is over the ${MAX_LAYER_ZIP_BYTES}-byte limit` };
  return { zip: body };
}

/**
 * Checks the Defender layer once per run. Never throws: any error is `{ ok: false, code, reason }`.
 * @param beforeCall waits for the run's control-plane budget before GetLayerVersionByArn @default no wait
 * @returns ok with what the layer declares (no download location), or why protection must not run: the layer is
 *   wrong (DEFENDER_LAYER_INVALID) or could not be checked (FACTS_MISSING, with the AWS error)
 */
export async function checkDefenderLayer(config: Config, beforeCall?: () => Promise<void>): Promise<LayerCheck> {
  const arn = config.defender.layerArn;
  const found = await describeLayer(arn, beforeCall);
  if (!found.ok) return found;
  const { layer } = found;
  const fail = (why: string): LayerCheck => ({
    ok: false,
    code: 'DEFENDER_LAYER_INVALID',
    reason: `Defender layer ${arn}: ${why}`,
  });

  if (layer.compatibleArchitectures !== undefined && !layer.compatibleArchitectures.includes(REQUIRED_ARCHITECTURE)) {
    return fail(`declares architectures ${layer.compatibleArchitectures.join(', ')}, not ${REQUIRED_ARCHITECTURE}`);
  }
  // A Defender layer serves one runtime family (the Console's bundle is per runtime: Palo Alto's Serverless
  // Defender layer for Python, or for Node.js). The run goes on when it declares at least one supported runtime;
  // each function whose runtime it does not declare is skipped RUNTIME_UNSUPPORTED at protect time
  // (`layerCompatibleWith`), never given a Defender for another language.
  const declared = layer.compatibleRuntimes;
  if (declared !== undefined && !config.funnel.supportedRuntimes.some((runtime) => declared.includes(runtime))) {
    return fail(
      `declares runtimes ${declared.join(', ')}, none of funnel.supportedRuntimes (${config.funnel.supportedRuntimes.join(', ')}); use a Defender layer for a supported runtime`,
    );
  }

  if (config.defender.method === 'exec-wrapper') {
    const wrapper = config.defender.environment[EXEC_WRAPPER_VARIABLE];
    const entry = typeof wrapper === 'string' ? wrapperEntry(wrapper) : undefined;
    if (entry === undefined) return fail(`${EXEC_WRAPPER_VARIABLE} does not name a file under /opt/`);
    if (layer.location === undefined) return fail('GetLayerVersionByArn gave no download location');
    const fetched = await download(layer.location, layer.codeSize);
    if ('unchecked' in fetched) return unchecked(arn, fetched.awsError, fetched.unchecked);
    if ('wrong' in fetched) return fail(fetched.wrong);
    try {
      const names = zipEntryNames(fetched.zip);
      if (!names.includes(entry)) {
        return fail(`its ZIP has no ${entry}, the file ${EXEC_WRAPPER_VARIABLE} points to (${String(wrapper)})`);
      }
    } catch (error) {
      return fail(`its ZIP cannot be read (${message(error)})`);
    }
  }
  const { location: _location, codeSize: _codeSize, ...declaration } = layer;
  return { ok: true, layer: declaration };
}
