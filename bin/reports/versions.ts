/**
 * versions.json of a local run (`local-run --out DIR`) and the published versions of a kept session
 * (`local-run --keep DIR`): what `zero-impact coverage --local DIR` reads. Pure: no import of the local runner.
 */
import type { Estate } from '../../local/estate';

/** One function's published versions and aliases in versions.json (names and layers only, never a value). */
export interface VersionsEntry {
  functionName: string;
  versions: Array<{ version: string; layers: string[]; variableNames: string[] }>;
  aliases: Array<{ name: string; functionVersion: string; additionalVersionWeights?: Record<string, number> }>;
}

/**
 * versions.json: the estate's published versions and aliases (what `zero-impact coverage --local DIR` reads). The
 * engine never publishes a version or moves an alias (an update changes only $LATEST, Lambda Developer Guide,
 * "Function versions"), so the estate's are still the account's after the runs; $LATEST is in functions.json.
 */
export function versionsJson(estate: Pick<Estate, 'functions'>): VersionsEntry[] {
  return estate.functions
    .filter((fn) => (fn.versions ?? []).length > 0 || (fn.aliases ?? []).length > 0)
    .map((fn) => {
      const latestLayers = (fn.configuration.Layers ?? []).flatMap((l) => (typeof l.Arn === 'string' ? [l.Arn] : []));
      const latestNames = Object.keys(fn.configuration.Environment?.Variables ?? {});
      return {
        functionName: String(fn.configuration.FunctionName),
        versions: (fn.versions ?? []).map((v) => ({
          version: v.version,
          layers: v.layers ?? latestLayers,
          variableNames: v.variables !== undefined ? Object.keys(v.variables) : latestNames,
        })),
        aliases: (fn.aliases ?? []).map((a) => ({
          name: a.name,
          functionVersion: a.functionVersion,
          ...(a.routingConfig !== undefined
            ? { additionalVersionWeights: a.routingConfig.additionalVersionWeights }
            : {}),
        })),
      };
    });
}
