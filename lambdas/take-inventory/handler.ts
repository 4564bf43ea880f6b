/**
 * Take inventory: every function of the account and Region (ListFunctions pages, paced), joined with the exclusion
 * and owner tags (one Tagging API query per key), the persistent exclusions and, in us-east-1, the Lambda@Edge
 * associations (CloudFront ListDistributions, once per run: adapters/cloudfront.ts), redacted, written to
 * `runs/<runId>/inventory.json` for the Distributed Map. In protect mode, checks the Defender layer once: if the
 * check fails, nothing is protected this run and the alarm topic hears about it, with the check's code: the layer
 * is wrong (DEFENDER_LAYER_INVALID) or could not be checked (FACTS_MISSING naming the AWS error, issue 9).
 *
 * Any failed read throws (the run fails loudly): without the whole inventory and the exclusions nothing is safe.
 * The one exception is the Lambda@Edge read: when it fails, every us-east-1 function carries 'lambdaEdge' in
 * `unreadable` and is skipped FACTS_MISSING, while the rest of the run goes on.
 */
import type { Context } from 'aws-lambda';
import { defenderVariables } from '../shared/domain/config';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { edgeFunctionArns } from '../shared/adapters/cloudfront';
import { s3 } from '../shared/adapters/clients';
import { listFunctions } from '../shared/adapters/inventory';
import { macKey } from '../shared/adapters/mac-key';
import { checkDefenderLayer, type LayerCheck, type LayerCheckCode } from '../shared/adapters/layer-check';
import { publishNotice } from '../shared/adapters/notifier';
import { controlPlaneLimiters, systemClock } from '../shared/adapters/rate-limiter';
import { listExclusions } from '../shared/adapters/state-store';
import { functionTags } from '../shared/adapters/tags';
import { concurrentWorkers } from '../shared/domain/batching';
import { arnRegion, LAMBDA_EDGE_REGION, ourEnvironmentLiterals } from '../shared/domain/funnel';
import { layerAlarmNotice } from '../shared/domain/notice';
import { valueMac } from '../shared/domain/mac';
import { redactFunction } from '../shared/domain/redact';
import { isRecord, type FunctionConfiguration, type InventoryItem } from '../shared/domain/types';
import { logger, startInvocation } from '../shared/observability';
import { emitMetric, errorSummary } from '../shared/recording';
import { runtime, type Runtime } from '../shared/runtime';

export interface TakeInventoryInput {
  runId: string;
  startedAt: string;
}

export interface TakeInventoryOutput {
  runId: string;
  startedAt: string;
  protectionAllowed: boolean;
  /** Why not (RunContext.protectionBlockedBy): the layer is wrong, or it could not be checked; null when allowed. */
  protectionBlockedBy: LayerCheckCode | null;
  /** Child workflows that may run at once (domain/batching.ts); each takes its share of the rate budget. */
  workers: number;
  inventory: { bucket: string; key: string; count: number };
  layerCheck: { ok: boolean; reason?: string; code?: LayerCheckCode; awsError?: string };
}

export function inventoryKey(runId: string): string {
  return `runs/${runId}/inventory.json`;
}

const inEdgeRegion = (item: InventoryItem): boolean =>
  arnRegion(item.configuration.FunctionArn ?? '') === LAMBDA_EDGE_REGION;

/** Marks the functions CloudFront associates (us-east-1 only); a failed read marks them all unreadable. */
async function markLambdaEdge(items: InventoryItem[]): Promise<Record<string, number | boolean>> {
  const east = items.filter(inEdgeRegion);
  if (east.length === 0) return { listDistributionsCalls: 0 };
  try {
    const { arns, calls } = await edgeFunctionArns();
    let marked = 0;
    for (const item of east) {
      if (arns.has(item.configuration.FunctionArn ?? '')) {
        item.lambdaEdge = true;
        marked += 1;
      }
    }
    return { listDistributionsCalls: calls, lambdaEdgeFunctions: marked };
  } catch (error) {
    logger.error('CloudFront distributions unreadable: us-east-1 functions are FACTS_MISSING this run', {
      error: error instanceof Error ? error.name : 'Error',
    });
    for (const item of east) item.unreadable = [...(item.unreadable ?? []), 'lambdaEdge'];
    return { lambdaEdgeUnreadable: true };
  }
}

/**
 * The MACs of a function's values of our variables that differ from the configured literal. Without a MAC key
 * (none configured, or KMS refused) nothing is MACed: such values are then never taken for the engine's, the safe
 * reading (assess records the conflict; nothing is overwritten).
 */
async function ourMacsOf(
  config: Runtime['config'],
  literals: Readonly<Record<string, string>>,
): Promise<(cfg: FunctionConfiguration) => Record<string, string>> {
  let key: Uint8Array;
  try {
    key = await macKey();
  } catch (error) {
    logger.warn('MAC key unavailable: older values the engine wrote are not recognised this run', {
      error: errorSummary(error),
    });
    return () => ({});
  }
  const names = Object.keys(defenderVariables(config));
  return (cfg) => {
    const variables: unknown = cfg.Environment?.Variables;
    const name = cfg.FunctionName;
    if (!isRecord(variables) || typeof name !== 'string') return {};
    const out: Record<string, string> = {};
    for (const variable of names) {
      const value = variables[variable];
      if (typeof value === 'string' && value !== literals[variable])
        out[variable] = valueMac(key, name, variable, value);
    }
    return out;
  };
}

export const handler = async (event: TakeInventoryInput, context?: Context): Promise<TakeInventoryOutput> => {
  const rt = runtime();
  const { config } = rt;
  const { runId, startedAt } = event;
  startInvocation({ runId }, context);
  // A single sequential worker on the run's shared control-plane budget (it is alone then: the whole limit).
  const { controlPlane } = controlPlaneLimiters(config.rates, 1, systemClock, { stateTableName: rt.stateTableName });
  const literals = ourEnvironmentLiterals(config);
  // MACs of our variables' values that are not the configured literal (an older value the engine wrote, or an SSM
  // value): assess compares them with the MACs the engine recorded, never seeing the value (issue 8 item 7).
  const macs = await ourMacsOf(config, literals);
  const redacted = await listFunctions(controlPlane, (cfg) => ({
    ...redactFunction(cfg, literals),
    ourValueMacs: macs(cfg),
  }));
  const tags = await functionTags([config.exclusions.tagKey, config.audit.ownerTagKey]);
  const excluded = new Set((await listExclusions(rt.stateTableName)).map((e) => e.functionName));

  const items: InventoryItem[] = redacted.map(({ configuration, variablesBytes, ourValueMacs }) => {
    const item: InventoryItem = { configuration, tags: tags.get(configuration.FunctionArn ?? '') ?? {} };
    if (variablesBytes !== undefined) item.variablesBytes = variablesBytes;
    if (Object.keys(ourValueMacs).length > 0) item.ourValueMacs = ourValueMacs;
    if (configuration.FunctionName !== undefined && excluded.has(configuration.FunctionName)) {
      item.persistentlyExcluded = true;
    }
    return item;
  });
  const edge = await markLambdaEdge(items);

  const key = inventoryKey(runId);
  const body = JSON.stringify(items);
  const workers = concurrentWorkers(items.length, Buffer.byteLength(body), config.rates);
  // Encrypted by the bucket's default encryption (no per-object SSE parameters).
  await s3.send(
    new PutObjectCommand({
      Bucket: rt.inventoryBucket,
      Key: key,
      Body: body,
      ContentType: 'application/json',
    }),
  );
  emitMetric('FunctionsInventoried', items.length);
  logger.info('inventory written', {
    functions: items.length,
    listFunctionsCalls: controlPlane.taken,
    persistentExclusions: excluded.size,
    ...edge,
  });

  let layerCheck: TakeInventoryOutput['layerCheck'] = { ok: true, reason: 'not checked in dry-run mode' };
  let protectionAllowed = false;
  let protectionBlockedBy: LayerCheckCode | null = null;
  if (config.mode === 'protect') {
    // checkDefenderLayer never throws; should it, the check was not done: FACTS_MISSING, never "the layer is wrong".
    const check: LayerCheck = await checkDefenderLayer(config, () => controlPlane.take()).catch((error: unknown) => ({
      ok: false as const,
      code: 'FACTS_MISSING' as const,
      awsError: error instanceof Error ? error.name : 'Error',
      reason: `Defender layer ${config.defender.layerArn} could not be checked (${errorSummary(error)})`,
    }));
    protectionAllowed = check.ok;
    emitMetric('LayerCheckFailed', check.ok ? 0 : 1);
    if (check.ok) {
      layerCheck = { ok: true };
    } else {
      protectionBlockedBy = check.code;
      layerCheck = {
        ok: false,
        code: check.code,
        reason: check.reason,
        ...(check.awsError !== undefined ? { awsError: check.awsError } : {}),
      };
      logger.error(
        check.code === 'FACTS_MISSING'
          ? 'Defender layer could not be checked: nothing is protected this run'
          : 'Defender layer check failed: nothing is protected this run',
        { code: check.code, reason: check.reason, awsError: check.awsError },
      );
      // The engine's alarm topic only: owners hear FACTS_MISSING or DEFENDER_LAYER_INVALID on their skips, never a
      // request to fix the layer when it merely could not be read.
      await publishNotice(
        rt.alarmTopicArn,
        layerAlarmNotice({
          runId,
          layerArn: config.defender.layerArn,
          reason: check.reason,
          raisedAt: new Date(systemClock.now()).toISOString(),
          code: check.code,
          ...(check.awsError !== undefined ? { awsError: check.awsError } : {}),
        }),
      ).catch((error: unknown) =>
        logger.error('alarm topic publish failed', { error: error instanceof Error ? error.name : 'Error' }),
      );
    }
  }
  return {
    runId,
    startedAt,
    protectionAllowed,
    protectionBlockedBy,
    workers,
    inventory: { bucket: rt.inventoryBucket, key, count: items.length },
    layerCheck,
  };
};
