/**
 * Where coverage reads versions and aliases from, read-only:
 * - the live account (the usual credentials): ListFunctions (lambdas/shared/adapters/inventory.ts), then per
 *   function ListAliases and, only when an alias points to a published version, ListVersionsByFunction; every call
 *   paced by the job's control-plane limiter (rates.controlPlanePerSecond, one worker). Variable values are dropped
 *   as each page arrives: only names are kept. It never publishes a version or moves an alias.
 * - a local run's folder: functions.json ($LATEST) and versions.json (published versions and aliases).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  ListAliasesCommand,
  ListVersionsByFunctionCommand,
  type AliasConfiguration,
  type FunctionConfiguration as SdkConfiguration,
} from '@aws-sdk/client-lambda';
import type { Config } from '../../lib/config';
import { lambda } from '../../lambdas/shared/adapters/clients';
import { listFunctions } from '../../lambdas/shared/adapters/inventory';
import { controlPlaneLimiters } from '../../lambdas/shared/adapters/rate-limiter';
import type { FunctionConfiguration } from '../../lambdas/shared/domain/types';
import { UsageError } from '../commands/common';
import { versionsJson, type VersionsEntry } from './versions';
import { hasKeptSession, readKept } from './kept-source';
import { LATEST, type FunctionVersions, type VersionView } from './coverage';
import type { Progress } from './cli-support';

function viewOf(configuration: Pick<FunctionConfiguration, 'Layers' | 'Environment'> | SdkConfiguration): VersionView {
  return {
    layers: (configuration.Layers ?? []).flatMap((l) => (typeof l.Arn === 'string' ? [l.Arn] : [])),
    variableNames: Object.keys(configuration.Environment?.Variables ?? {}),
  };
}

const PAGE = 50;

/** Reads the live account's functions, aliases and the versions they serve. */
export async function accountVersions(config: Config, progress: Progress, only?: string): Promise<FunctionVersions[]> {
  const { controlPlane } = controlPlaneLimiters(config.rates, 1);
  const latest = await listFunctions(controlPlane, (c) => ({ name: String(c.FunctionName), view: viewOf(c) }));
  const wanted = only === undefined ? latest : latest.filter((f) => f.name === only);
  if (only !== undefined && wanted.length === 0) throw new UsageError(`coverage: no function ${only} in the account`);
  progress.setTotal(wanted.length);
  const result: FunctionVersions[] = [];
  for (const fn of wanted) {
    const aliases: AliasConfiguration[] = [];
    let Marker: string | undefined;
    do {
      const page = await controlPlane.run(() =>
        lambda.send(new ListAliasesCommand({ FunctionName: fn.name, MaxItems: PAGE, Marker })),
      );
      aliases.push(...(page.Aliases ?? []));
      Marker = page.NextMarker;
    } while (Marker !== undefined && Marker.length > 0);
    const versions: Record<string, VersionView> = {};
    const published = aliases.some(
      (a) => a.FunctionVersion !== LATEST || Object.keys(a.RoutingConfig?.AdditionalVersionWeights ?? {}).length > 0,
    );
    if (published) {
      let VersionMarker: string | undefined;
      do {
        const page = await controlPlane.run(() =>
          lambda.send(
            new ListVersionsByFunctionCommand({ FunctionName: fn.name, MaxItems: PAGE, Marker: VersionMarker }),
          ),
        );
        for (const v of page.Versions ?? [])
          if (v.Version !== undefined && v.Version !== LATEST) versions[v.Version] = viewOf(v);
        VersionMarker = page.NextMarker;
      } while (VersionMarker !== undefined && VersionMarker.length > 0);
    }
    result.push({
      functionName: fn.name,
      latest: fn.view,
      versions,
      aliases: aliases.map((a) => ({
        name: a.Name ?? '',
        functionVersion: a.FunctionVersion ?? LATEST,
        ...(a.RoutingConfig?.AdditionalVersionWeights !== undefined
          ? { additionalVersionWeights: a.RoutingConfig.AdditionalVersionWeights }
          : {}),
      })),
    });
    progress.increment();
  }
  return result;
}

function readJson(file: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch {
    throw new UsageError(`--local: ${file} is missing or not valid JSON (written by local-run --out DIR)`);
  }
}

/**
 * A local run's folder: functions.json ($LATEST after the runs) and versions.json; or a folder `local-run --keep DIR`
 * kept: its estate as the runs (and any rollback) left it, published versions as the account holds them.
 */
export function localVersions(dir: string, only?: string): FunctionVersions[] {
  let functions: FunctionConfiguration[];
  let versions: VersionsEntry[];
  if (hasKeptSession(dir)) {
    const { estate } = readKept(dir);
    functions = estate.functions.map((f) => f.configuration);
    versions = versionsJson(estate);
  } else {
    functions = readJson(join(dir, 'functions.json')) as FunctionConfiguration[];
    const file = join(dir, 'versions.json');
    if (!existsSync(file)) {
      throw new UsageError(`--local: ${dir} has no versions.json: run local-run --out DIR again with this version`);
    }
    versions = readJson(file) as VersionsEntry[];
  }
  const entries = new Map(versions.map((e) => [e.functionName, e]));
  return functions
    .filter((c) => only === undefined || c.FunctionName === only)
    .map((c) => {
      const entry = entries.get(String(c.FunctionName));
      return {
        functionName: String(c.FunctionName),
        latest: viewOf(c),
        versions: Object.fromEntries(
          (entry?.versions ?? []).map((v) => [v.version, { layers: v.layers, variableNames: v.variableNames }]),
        ),
        aliases: (entry?.aliases ?? []).map((a) => ({
          name: a.name,
          functionVersion: a.functionVersion,
          ...(a.additionalVersionWeights !== undefined ? { additionalVersionWeights: a.additionalVersionWeights } : {}),
        })),
      };
    });
}
