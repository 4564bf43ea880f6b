/**
 * True coverage: not only $LATEST. An update changes only $LATEST; an alias that points to a published version
 * keeps serving that version's code (Lambda Developer Guide, "Function versions": a published version is immutable;
 * "Lambda function aliases": an alias points to one or two versions, with `RoutingConfig.AdditionalVersionWeights`
 * sending a share of the traffic to the second). For each function: its aliases with their routing weights, the
 * version each serves and whether that version carries the Defender; the estate's real coverage (share of
 * functions, and of aliases, serving only protected code) and what the owner must do.
 *
 * "Carries the Defender": the configured Defender layer (any version of it) among the version's layers, and our
 * wrapper variable (AWS_LAMBDA_EXEC_WRAPPER) or the handler method's ORIGINAL_HANDLER among its variable NAMES.
 * PURE; the readers (deployed account, local folder) are in coverage-readers.ts.
 */
import { EXEC_WRAPPER_VARIABLE, ORIGINAL_HANDLER_VARIABLE } from '../../lib/config';
import { sameLayer } from '../../lambdas/shared/domain/funnel';
import { csv, paragraph, percent, safe, table } from './text';

export const LATEST = '$LATEST';

/** What coverage needs of one version: layer ARNs and variable names (never values). */
export interface VersionView {
  layers: string[];
  variableNames: string[];
}

export interface AliasView {
  name: string;
  functionVersion: string;
  /** Additional versions and their weights (0..1); the primary version gets the rest. */
  additionalVersionWeights?: Record<string, number>;
}

export interface FunctionVersions {
  functionName: string;
  latest: VersionView;
  /** Published versions by number. */
  versions: Record<string, VersionView>;
  aliases: AliasView[];
}

export interface Route {
  version: string;
  weight: number;
  protected: boolean | null;
}

export interface AliasCoverage {
  name: string;
  routes: Route[];
  /** Share of the alias's traffic that reaches protected code (unknown versions count as unprotected). */
  protectedShare: number;
}

export interface FunctionCoverage {
  functionName: string;
  latestProtected: boolean;
  aliases: AliasCoverage[];
  /** $LATEST and every alias serve only protected code. */
  fullyProtected: boolean;
  /** What the owner must do, empty when nothing. */
  actions: string[];
}

export interface CoverageModel {
  functions: FunctionCoverage[];
  totals: {
    functions: number;
    latestProtected: number;
    fullyProtected: number;
    aliases: number;
    aliasesProtected: number;
    /** fullyProtected / functions */
    functionShare: number;
    /** aliasesProtected / aliases (1 when there is no alias) */
    aliasShare: number;
  };
}

export function carriesDefender(view: VersionView, defenderLayerArn: string): boolean {
  const layer = view.layers.some((arn) => sameLayer(arn, defenderLayerArn));
  const wired =
    view.variableNames.includes(EXEC_WRAPPER_VARIABLE) || view.variableNames.includes(ORIGINAL_HANDLER_VARIABLE);
  return layer && wired;
}

function routesOf(alias: AliasView): Array<{ version: string; weight: number }> {
  const extra = Object.entries(alias.additionalVersionWeights ?? {});
  const rest = 1 - extra.reduce((sum, [, w]) => sum + w, 0);
  return [
    { version: alias.functionVersion, weight: Math.max(0, rest) },
    ...extra.map(([version, weight]) => ({ version, weight })),
  ];
}

const weightText = (w: number): string => `${Math.round(w * 1000) / 10}%`;

export function functionCoverage(fn: FunctionVersions, defenderLayerArn: string): FunctionCoverage {
  const latestProtected = carriesDefender(fn.latest, defenderLayerArn);
  const isProtected = (version: string): boolean | null => {
    if (version === LATEST) return latestProtected;
    const view = fn.versions[version];
    return view === undefined ? null : carriesDefender(view, defenderLayerArn);
  };
  const aliases = fn.aliases
    .map((alias): AliasCoverage => {
      const routes = routesOf(alias).map((r) => ({ ...r, protected: isProtected(r.version) }));
      return {
        name: alias.name,
        routes,
        protectedShare: routes.reduce((sum, r) => sum + (r.protected === true ? r.weight : 0), 0),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
  const actions: string[] = [];
  if (!latestProtected) actions.push('$LATEST is not protected: see `zero-impact report` for why');
  for (const alias of aliases) {
    const unprotected = alias.routes.filter((r) => r.protected !== true && r.weight > 0);
    if (unprotected.length === 0) continue;
    const served = unprotected.map((r) => `version ${r.version} (${weightText(r.weight)})`).join(' and ');
    actions.push(
      latestProtected
        ? `alias \`${alias.name}\` serves unprotected ${served}: publish a new version and move alias \`${alias.name}\` to it`
        : `alias \`${alias.name}\` serves unprotected ${served}: once $LATEST is protected, publish a new version and move alias \`${alias.name}\` to it`,
    );
  }
  return {
    functionName: fn.functionName,
    latestProtected,
    aliases,
    fullyProtected: latestProtected && aliases.every((a) => a.protectedShare >= 1 - 1e-9),
    actions,
  };
}

export function buildCoverage(functions: readonly FunctionVersions[], defenderLayerArn: string): CoverageModel {
  const rows = functions
    .map((fn) => functionCoverage(fn, defenderLayerArn))
    .sort((a, b) => a.functionName.localeCompare(b.functionName));
  const aliases = rows.flatMap((r) => r.aliases);
  const fully = rows.filter((r) => r.fullyProtected).length;
  const aliasesProtected = aliases.filter((a) => a.protectedShare >= 1 - 1e-9).length;
  return {
    functions: rows,
    totals: {
      functions: rows.length,
      latestProtected: rows.filter((r) => r.latestProtected).length,
      fullyProtected: fully,
      aliases: aliases.length,
      aliasesProtected,
      functionShare: rows.length === 0 ? 0 : fully / rows.length,
      aliasShare: aliases.length === 0 ? 1 : aliasesProtected / aliases.length,
    },
  };
}

const yesNo = (p: boolean | null): string => (p === null ? 'unknown' : p ? 'yes' : 'NO');

export function coverageTable(model: CoverageModel): string {
  const t = model.totals;
  const out = [
    `True coverage: ${t.fullyProtected} of ${t.functions} function(s) serve only protected code (${percent(t.functionShare)}); $LATEST protected on ${t.latestProtected}`,
    `Aliases: ${t.aliasesProtected} of ${t.aliases} serve only protected code (${percent(t.aliasShare)})`,
    '',
  ];
  const withAliases = model.functions.filter((f) => f.aliases.length > 0);
  if (withAliases.length > 0) {
    out.push('Aliases');
    out.push(
      ...table(
        ['Function', 'Alias', 'Version', 'Weight', 'Defender'],
        withAliases.flatMap((f) =>
          f.aliases.flatMap((a) =>
            a.routes.map((r, i) => [
              i === 0 ? f.functionName : '',
              i === 0 ? a.name : '',
              r.version,
              weightText(r.weight),
              yesNo(r.protected),
            ]),
          ),
        ),
        2,
      ),
    );
    out.push('');
  }
  const todo = model.functions.filter((f) => f.aliases.some((a) => a.protectedShare < 1 - 1e-9));
  out.push(todo.length === 0 ? 'What owners must do: nothing' : 'What owners must do');
  for (const f of todo) {
    out.push(`  - ${safe(f.functionName)}`);
    for (const action of f.actions) out.push(...paragraph(action, 6, 2));
  }
  return `${out.join('\n')}\n`;
}

export function coverageCsv(model: CoverageModel): string {
  return csv(
    ['function', 'latest_protected', 'alias', 'version', 'weight', 'version_protected', 'action'],
    model.functions.flatMap((f) =>
      f.aliases.length === 0
        ? [[f.functionName, String(f.latestProtected), '', '', '', '', f.actions.join('\n')]]
        : f.aliases.flatMap((a) =>
            a.routes.map((r) => [
              f.functionName,
              String(f.latestProtected),
              a.name,
              r.version,
              String(r.weight),
              yesNo(r.protected),
              f.actions.join('\n'),
            ]),
          ),
    ),
  );
}
