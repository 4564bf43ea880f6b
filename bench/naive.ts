/**
 * The naive baseline, for the benchmark only: the design's original script. It walks `ListFunctions` and, for each
 * function that does not carry the Defender layer yet, reads `ListProvisionedConcurrencyConfigs`,
 * `GetMetricStatistics` (Throttles, Sum over the last 24 h), `GetFunctionConcurrency`, `ListAliases` and
 * `GetFunctionConfiguration`, then, if nothing speaks against it, updates the function, one function after another,
 * with the SDK's standard retries and no pacing of its own. It keeps no state and writes no record, so every hour it
 * reads every unprotected function again (the ones it skips for good reasons included).
 *
 * It runs against the same simulated account as the engine (installed by the caller) on the same virtual clock.
 */
import { CloudWatchClient, GetMetricStatisticsCommand } from '@aws-sdk/client-cloudwatch';
import {
  GetFunctionConcurrencyCommand,
  GetFunctionConfigurationCommand,
  LambdaClient,
  ListAliasesCommand,
  ListFunctionsCommand,
  ListProvisionedConcurrencyConfigsCommand,
  UpdateFunctionConfigurationCommand,
  type FunctionConfiguration,
} from '@aws-sdk/client-lambda';
import type { Config } from '../lib/config';

export interface NaiveOptions {
  config: Config;
  region: string;
  /** The clock the account and the SDK's retries run on (a virtual clock). */
  clock: { now(): number };
}

export interface NaiveResult {
  examined: number;
  updated: number;
  skipped: number;
  /** Calls that failed after the SDK's retries (throttled, conflicts): the script moves on. */
  failedCalls: number;
  durationMs: number;
}

/** The naive script's eligibility: what it can see from the five reads. */
function passes(config: Config, fn: FunctionConfiguration): boolean {
  const runtime = fn.Runtime ?? '';
  return (
    fn.PackageType !== 'Image' &&
    config.funnel.supportedRuntimes.includes(runtime) &&
    (fn.Architectures ?? ['x86_64']).includes('x86_64') &&
    (fn.Layers ?? []).length < 5
  );
}

export async function runNaive(options: NaiveOptions): Promise<NaiveResult> {
  const { config, region, clock } = options;
  const lambda = new LambdaClient({ region, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  const cloudwatch = new CloudWatchClient({ region, credentials: { accessKeyId: 'bench', secretAccessKey: 'bench' } });
  const layer = config.defender.layerArn;
  const layerName = layer.replace(/:\d+$/, '');
  const literals = Object.fromEntries(
    Object.entries(config.defender.environment).filter((e): e is [string, string] => typeof e[1] === 'string'),
  );
  const started = clock.now();
  const result: NaiveResult = { examined: 0, updated: 0, skipped: 0, failedCalls: 0, durationMs: 0 };
  const attempt = async <T>(call: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await call();
    } catch {
      result.failedCalls += 1;
      return undefined;
    }
  };
  let marker: string | undefined;
  do {
    const page = await attempt(() => lambda.send(new ListFunctionsCommand({ Marker: marker })));
    if (page === undefined) break;
    marker = page.NextMarker;
    for (const listed of page.Functions ?? []) {
      const name = listed.FunctionName ?? '';
      if ((listed.Layers ?? []).some((l) => (l.Arn ?? '').startsWith(layerName))) continue;
      result.examined += 1;
      const provisioned = await attempt(() =>
        lambda.send(new ListProvisionedConcurrencyConfigsCommand({ FunctionName: name })),
      );
      const end = new Date(clock.now());
      const throttles = await attempt(() =>
        cloudwatch.send(
          new GetMetricStatisticsCommand({
            Namespace: 'AWS/Lambda',
            MetricName: 'Throttles',
            Dimensions: [{ Name: 'FunctionName', Value: name }],
            StartTime: new Date(end.getTime() - 24 * 3600 * 1000),
            EndTime: end,
            Period: 86400,
            Statistics: ['Sum'],
          }),
        ),
      );
      const reserved = await attempt(() => lambda.send(new GetFunctionConcurrencyCommand({ FunctionName: name })));
      await attempt(() => lambda.send(new ListAliasesCommand({ FunctionName: name })));
      const fn = await attempt(() => lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name })));
      const throttled = (throttles?.Datapoints ?? []).some((d) => (d.Sum ?? 0) > 0);
      if (
        fn === undefined ||
        provisioned === undefined ||
        (provisioned.ProvisionedConcurrencyConfigs ?? []).length > 0 ||
        throttled ||
        reserved?.ReservedConcurrentExecutions !== undefined ||
        !passes(config, fn)
      ) {
        result.skipped += 1;
        continue;
      }
      const updated = await attempt(() =>
        lambda.send(
          new UpdateFunctionConfigurationCommand({
            FunctionName: name,
            Layers: [...(fn.Layers ?? []).map((l) => l.Arn ?? ''), layer],
            Environment: { Variables: { ...(fn.Environment?.Variables ?? {}), ...literals } },
          }),
        ),
      );
      if (updated !== undefined) result.updated += 1;
    }
  } while (marker !== undefined);
  lambda.destroy();
  cloudwatch.destroy();
  result.durationMs = clock.now() - started;
  return result;
}
