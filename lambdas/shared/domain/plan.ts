/**
 * Planning a protection and its rollback: PURE (no AWS SDK, no process.env, no clock).
 *
 * A read-modify-write that keeps what it does not own (STYLE.md habit 9):
 * - protection appends the Defender layer (an older version of the same layer is replaced in place, never
 *   duplicated; every other layer is kept in order) and adds our variables to the existing ones (every other
 *   variable kept byte for byte; one of ours already set to another value is never overwritten). With
 *   `defender.method: "handler"` the handler becomes the Defender's and the original is kept in ORIGINAL_HANDLER.
 *   Nothing else changes: no memory, timeout, role, VPC.
 * - rollback removes exactly what protection added, judged against the before/after images of the audit record, and
 *   leaves alone everything that changed since.
 *
 * - refresh (issue 8 item 7) changes only our variables whose value the engine wrote earlier and the configuration has
 *   since rotated; everything else stays byte for byte.
 *
 * Images never carry a customer value: names and the size of the whole map; our own variables carry a keyed MAC
 * (domain/mac.ts), so that rollback can tell "still the value we set" without a hash anyone could test guesses on.
 */
import { createHash } from 'node:crypto';
import { defenderVariables, EXEC_WRAPPER_VARIABLE, ORIGINAL_HANDLER_VARIABLE, type Config } from './config';
import { envVarsSize, LAYER_SLOT_LIMIT, sameLayer } from './funnel';
import { ourValueMacs, valueMac, type MacContext } from './mac';
import type { ConfigurationImage, FunctionConfiguration, ReasonCode } from './types';

/** The `UpdateFunctionConfiguration` fields protection sends; nothing else. */
export interface ProtectionChange {
  Layers: string[];
  Environment: { Variables: Record<string, string> };
  /** Only with `defender.method: "handler"`. */
  Handler?: string;
}

export type ProtectionPlan =
  | {
      ok: true;
      change: ProtectionChange;
      /** The older Defender layer version replaced in place, if any. */
      replacedLayer: string | null;
      /** Our variables that were not set before (names only). */
      addedVariables: string[];
    }
  | { ok: false; code: ReasonCode; problem: string };

/** The fields a rollback sends; a field is present only when it changes. */
export interface RollbackChange {
  Layers?: string[];
  Environment?: { Variables: Record<string, string> };
  Handler?: string;
}

export type RollbackPlan =
  | {
      ok: true;
      /** null: nothing of ours is left to remove. */
      change: RollbackChange | null;
      /** What the rollback does, one line per change (names only). */
      steps: string[];
      /** What it leaves alone, and why. */
      notes: string[];
    }
  | { ok: false; problem: string };

function variablesOf(configuration: FunctionConfiguration): Record<string, string> | undefined {
  const env: unknown = configuration.Environment;
  if (env === undefined || env === null) return {};
  if (typeof env !== 'object') return undefined;
  // Lambda could not decrypt the variables: they are unknown, so no change may be planned on them.
  if ((env as { Error?: unknown }).Error !== undefined) return undefined;
  const vars: unknown = (env as { Variables?: unknown }).Variables;
  if (vars === undefined || vars === null) return {};
  if (typeof vars !== 'object' || Array.isArray(vars)) return undefined;
  const entries = Object.entries(vars as Record<string, unknown>);
  if (entries.some(([, v]) => typeof v !== 'string')) return undefined;
  return Object.fromEntries(entries) as Record<string, string>;
}

function layersOf(configuration: FunctionConfiguration): string[] | undefined {
  const layers: unknown = configuration.Layers;
  if (layers === undefined || layers === null) return [];
  if (!Array.isArray(layers)) return undefined;
  const arns = layers.map((layer: unknown) =>
    layer !== null && typeof layer === 'object' ? (layer as { Arn?: unknown }).Arn : undefined,
  );
  return arns.every((arn): arn is string => typeof arn === 'string' && arn.length > 0) ? arns : undefined;
}

/**
 * The before/after image of a configuration: layers, variable names, the size of the map, handler, revision, and a
 * keyed MAC of each of OUR variables present (never of any other variable).
 */
export function configurationImage(
  configuration: FunctionConfiguration,
  mac: MacContext,
  functionName: string,
): ConfigurationImage {
  const vars = variablesOf(configuration) ?? {};
  const names = Object.keys(vars).sort();
  return {
    layers: layersOf(configuration) ?? [],
    variableNames: names,
    variablesBytes: envVarsSize(vars),
    handler: typeof configuration.Handler === 'string' ? configuration.Handler : null,
    revisionId: typeof configuration.RevisionId === 'string' ? configuration.RevisionId : null,
    ourValueMacs: ourValueMacs(mac, functionName, vars),
  };
}

/**
 * Plans protection of one function.
 * @param configuration the function's fresh configuration, real variable values (kept in memory only)
 * @param config the validated configuration
 * @param resolvedEnv the values of our `{ ssmParameter }` variables, by variable name (literals come from config)
 * @returns the exact fields to send, or why no safe plan exists (never overwrites a variable that is not ours)
 */
export function planProtection(
  configuration: FunctionConfiguration,
  config: Config,
  resolvedEnv: Readonly<Record<string, string>>,
): ProtectionPlan {
  const existing = variablesOf(configuration);
  if (existing === undefined)
    return refuse('FACTS_MISSING', 'Environment.Variables is unreadable (Environment.Error) or not a map of strings');
  const layers = layersOf(configuration);
  if (layers === undefined) return refuse('FACTS_MISSING', 'Layers is not a list of layer ARNs');

  const ours: Array<[string, string]> = [];
  for (const [name, source] of Object.entries(defenderVariables(config))) {
    const value =
      typeof source === 'string' ? source : Object.hasOwn(resolvedEnv, name) ? resolvedEnv[name] : undefined;
    if (typeof value !== 'string') return refuse('FACTS_MISSING', `the value of ${name} was not resolved`);
    ours.push([name, value]);
  }

  const variables: Record<string, string> = { ...existing };
  const addedVariables: string[] = [];
  const add = (name: string, value: string): string | null => {
    if (!Object.hasOwn(existing, name)) {
      variables[name] = value;
      addedVariables.push(name);
      return null;
    }
    return existing[name] === value ? null : name;
  };
  for (const [name, value] of ours) {
    const conflict = add(name, value);
    if (conflict !== null) {
      return refuse(
        conflict === EXEC_WRAPPER_VARIABLE ? 'WRAPPER_CONFLICT' : 'ENV_CONFLICT',
        `${conflict} is already set to another value; it is never overwritten`,
      );
    }
  }

  let handler: string | undefined;
  if (config.defender.method === 'handler') {
    const defenderHandler = config.defender.handler;
    const current = configuration.Handler;
    if (defenderHandler === undefined) return refuse('FACTS_MISSING', 'defender.handler is not set');
    if (typeof current !== 'string' || current.length === 0) return refuse('FACTS_MISSING', 'Handler is missing');
    if (current === defenderHandler) {
      if (!Object.hasOwn(existing, ORIGINAL_HANDLER_VARIABLE)) {
        return refuse(
          'PARTIAL_PROTECTION',
          `the handler is the Defender's but ${ORIGINAL_HANDLER_VARIABLE} is not set`,
        );
      }
    } else if (add(ORIGINAL_HANDLER_VARIABLE, current) !== null) {
      return refuse('WRAPPER_CONFLICT', `${ORIGINAL_HANDLER_VARIABLE} is already set to another value`);
    }
    handler = defenderHandler;
  }

  const ourLayer = config.defender.layerArn;
  const defenders = layers.filter((arn) => sameLayer(arn, ourLayer));
  if (defenders.length > 1) {
    // Replacing one would silently drop the other: never drop a layer the plan does not name.
    return refuse(
      'PARTIAL_PROTECTION',
      `${defenders.length} versions of the Defender layer are attached (${defenders.join(', ')}): a person must choose one`,
    );
  }
  const at = layers.findIndex((arn) => sameLayer(arn, ourLayer));
  let replacedLayer: string | null = null;
  let newLayers: string[];
  if (at >= 0) {
    const attached = layers[at];
    replacedLayer = attached !== undefined && attached !== ourLayer ? attached : null;
    newLayers = layers.map((arn, i) => (i === at ? ourLayer : arn));
  } else {
    if (layers.length >= LAYER_SLOT_LIMIT) {
      return refuse('LAYER_LIMIT', `${layers.length} layers attached already (Lambda allows ${LAYER_SLOT_LIMIT})`);
    }
    newLayers = [...layers, ourLayer];
  }

  const bytes = envVarsSize(variables);
  if (bytes > config.funnel.envQuotaBytes) {
    return refuse('ENV_QUOTA', `the variables would take ${bytes} bytes (limit ${config.funnel.envQuotaBytes})`);
  }

  const change: ProtectionChange = { Layers: newLayers, Environment: { Variables: variables } };
  if (handler !== undefined) change.Handler = handler;
  return { ok: true, change, replacedLayer, addedVariables };
}

/** The `UpdateFunctionConfiguration` fields a refresh sends: the whole variables map, nothing else. */
export interface RefreshChange {
  /** The function's layers as they are (sent unchanged, see planRefresh). */
  Layers: string[];
  Environment: { Variables: Record<string, string> };
}

export type RefreshPlan =
  | {
      ok: true;
      /** null: none of our variables is outdated. */
      change: RefreshChange | null;
      /** Our variables whose value is replaced (names only). */
      refreshed: string[];
    }
  | { ok: false; code: ReasonCode; problem: string };

/**
 * Plans an in-place refresh of our outdated variables (issue 8 item 7): each variable of ours whose current value the
 * engine wrote earlier (`engineWritten`, recognised by MAC by the caller) and which differs from the configured value
 * gets the configured value. Every other variable, every layer and the handler stay exactly as they are. A variable
 * of ours that differs but is NOT in `engineWritten` is someone else's value: never overwritten (ENV_CONFLICT).
 * @param configuration the function's fresh configuration, real values (in memory only)
 * @param config the validated configuration
 * @param resolvedEnv the values of our `{ ssmParameter }` variables, by name
 * @param engineWritten our variable names whose current value is one the engine wrote
 */
export function planRefresh(
  configuration: FunctionConfiguration,
  config: Config,
  resolvedEnv: Readonly<Record<string, string>>,
  engineWritten: ReadonlySet<string>,
): RefreshPlan {
  const existing = variablesOf(configuration);
  if (existing === undefined) {
    return {
      ok: false,
      code: 'FACTS_MISSING',
      problem: 'Environment.Variables is unreadable (Environment.Error) or not a map of strings',
    };
  }
  const variables: Record<string, string> = { ...existing };
  const refreshed: string[] = [];
  for (const [name, source] of Object.entries(defenderVariables(config))) {
    const wanted =
      typeof source === 'string' ? source : Object.hasOwn(resolvedEnv, name) ? resolvedEnv[name] : undefined;
    if (typeof wanted !== 'string') {
      return { ok: false, code: 'FACTS_MISSING', problem: `the value of ${name} was not resolved` };
    }
    if (!Object.hasOwn(existing, name) || existing[name] === wanted) continue;
    if (!engineWritten.has(name)) {
      return {
        ok: false,
        code: name === EXEC_WRAPPER_VARIABLE ? 'WRAPPER_CONFLICT' : 'ENV_CONFLICT',
        problem: `${name} is already set to a value the engine did not write; it is never overwritten`,
      };
    }
    variables[name] = wanted;
    refreshed.push(name);
  }
  if (refreshed.length === 0) return { ok: true, change: null, refreshed };
  // The layer list goes along unchanged: the protect role may only update a configuration whose request names the
  // Defender layer (IAM condition lambda:Layer, ForAnyValue:StringLike), and sending the same list changes nothing.
  const layers = layersOf(configuration);
  if (layers === undefined || !layers.some((arn) => sameLayer(arn, config.defender.layerArn))) {
    return { ok: false, code: 'PARTIAL_PROTECTION', problem: 'the Defender layer is not attached: nothing to refresh' };
  }
  const bytes = envVarsSize(variables);
  if (bytes > config.funnel.envQuotaBytes) {
    return {
      ok: false,
      code: 'ENV_QUOTA',
      problem: `the variables would take ${bytes} bytes (limit ${config.funnel.envQuotaBytes})`,
    };
  }
  return { ok: true, change: { Layers: layers, Environment: { Variables: variables } }, refreshed };
}

function refuse(code: ReasonCode, problem: string): ProtectionPlan {
  return { ok: false, code, problem };
}

/** The configuration a change would leave (the fields it sets replaced, everything else as it is). */
export function applyChange(
  configuration: FunctionConfiguration,
  change: ProtectionChange | RollbackChange,
): FunctionConfiguration {
  const next: FunctionConfiguration = { ...configuration };
  if (change.Layers !== undefined) {
    const sizes = new Map((configuration.Layers ?? []).map((layer) => [layer.Arn, layer.CodeSize]));
    next.Layers = change.Layers.map((Arn) => {
      const CodeSize = sizes.get(Arn);
      return CodeSize === undefined ? { Arn } : { Arn, CodeSize };
    });
  }
  if (change.Environment !== undefined) next.Environment = { Variables: { ...change.Environment.Variables } };
  if (change.Handler !== undefined) next.Handler = change.Handler;
  return next;
}

/**
 * True when the configuration carries the change: exactly its layers, in order, each of its variables with its
 * value, and its handler. Used when an update's answer was lost, to tell "applied" from "nothing changed".
 */
export function changeApplied(
  configuration: FunctionConfiguration,
  change: ProtectionChange | RollbackChange,
): boolean {
  if (change.Layers !== undefined && (layersOf(configuration) ?? []).join('\n') !== change.Layers.join('\n')) {
    return false;
  }
  if (change.Environment !== undefined) {
    const vars = variablesOf(configuration);
    if (vars === undefined) return false;
    const wanted = Object.entries(change.Environment.Variables);
    if (!wanted.every(([name, value]) => Object.hasOwn(vars, name) && vars[name] === value)) return false;
  }
  return change.Handler === undefined || configuration.Handler === change.Handler;
}

/** The MACs of an image; a record written before MACs existed has none (its values are then never "ours"). */
function macsOf(image: ConfigurationImage): Readonly<Record<string, string>> {
  const macs: unknown = (image as Partial<ConfigurationImage>).ourValueMacs;
  return macs !== null && typeof macs === 'object' ? (macs as Record<string, string>) : {};
}

/**
 * The unkeyed SHA-256 a record written before issue 8 kept for a variable (`variableHashes`). Such records exist and
 * cannot be rewritten (the audit table is append-only); the engine never writes one again. They are only READ, to
 * recognise our own value when rolling back a protection made before keyed MACs, so that those stay undoable.
 */
function legacyHashOf(image: ConfigurationImage, name: string): string | undefined {
  const hashes: unknown = (image as { variableHashes?: unknown }).variableHashes;
  if (hashes === null || typeof hashes !== 'object') return undefined;
  const hash: unknown = (hashes as Record<string, unknown>)[name];
  return typeof hash === 'string' ? hash : undefined;
}

function sha256Hex(value: string): string {
  return createHash('sha256').update(value, 'utf8').digest('hex');
}

/** What a refresh record adds to a rollback: the exact previous values of the variables it replaced. */
export interface RefreshRestore {
  /** Variable name → the value it held before the refresh (the engine's own older value). */
  previous: Readonly<Record<string, string>>;
}

/**
 * Plans the rollback of one protection (or of one in-place refresh, with `restore`).
 * @param current the function as it is now, real variable values (kept in memory only)
 * @param record the audit record of the change: its before-image (as found) and after-image (as left)
 * @param mac the derived MAC key and our variable names (domain/mac.ts)
 * @param functionName the function the images were MACed for
 * @param restore for a refresh: the previous values (decrypted from the state table), to be put back exactly
 * @returns the exact fields to send (only those that change), the steps, and notes for what is left alone
 */
export function planRollback(
  current: FunctionConfiguration,
  record: { before?: ConfigurationImage; after?: ConfigurationImage },
  mac: MacContext,
  functionName: string,
  restore?: RefreshRestore,
): RollbackPlan {
  const { before, after } = record;
  if (before === undefined || after === undefined) {
    return { ok: false, problem: 'the audit record has no before/after image to roll back from' };
  }
  const vars = variablesOf(current);
  if (vars === undefined)
    return { ok: false, problem: 'Environment.Variables is unreadable (Environment.Error) or not a map of strings' };
  const layers = layersOf(current);
  if (layers === undefined) return { ok: false, problem: 'Layers is not a list of layer ARNs' };

  const ours = (image: ConfigurationImage, name: string, value: string): boolean =>
    macsOf(image)[name] !== undefined
      ? macsOf(image)[name] === valueMac(mac.key, functionName, name, value)
      : legacyHashOf(image, name) === sha256Hex(value);
  const steps: string[] = [];
  const notes: string[] = [];
  const change: RollbackChange = {};
  const legacy = Object.keys(macsOf(after)).length === 0 && after.variableNames.some((n) => mac.ourNames.has(n));
  if (legacy && after.variableNames.every((n) => !mac.ourNames.has(n) || legacyHashOf(after, n) === undefined)) {
    notes.push('the record predates keyed MACs: none of its variables can be recognised as ours');
  }

  if (restore !== undefined) return planRefreshRollback(vars, before, after, restore, ours, { steps, notes, change });

  // Variables: ours are removed only where we added them and they still hold the value we set.
  const removed: string[] = [];
  const changedSince: string[] = [];
  let handlerStaysDefenders = false;
  const handlerIsOurs = after.handler !== null && before.handler !== after.handler && current.Handler === after.handler;
  for (const name of after.variableNames.filter((n) => !before.variableNames.includes(n))) {
    const value = vars[name];
    if (value === undefined) continue;
    if (ours(after, name, value)) removed.push(name);
    else changedSince.push(name);
  }

  // The Defender must still be the one we added (issue 8 item 6): if our layer was replaced by another version of
  // the same layer, or by layers added since, removing our variables would leave half a Defender, silently off.
  const addedLayers = after.layers.filter((arn) => !before.layers.includes(arn));
  const newSince = layers.filter((arn) => !after.layers.includes(arn));
  for (const added of addedLayers) {
    if (layers.includes(added)) continue;
    const upgraded = layers.find((arn) => sameLayer(arn, added));
    if (upgraded !== undefined || (newSince.length > 0 && (removed.length > 0 || handlerIsOurs))) {
      return {
        ok: false,
        problem: `the Defender is no longer the one we added: layer ${added} was replaced since by ${
          upgraded ?? newSince.join(', ')
        }; removing our variables would leave that Defender half installed and silently switched off. Remove the Defender by hand (layer and variables together), or leave it as it is`,
      };
    }
  }

  // Layers: remove the one we added, or put back the older Defender version it replaced.
  const newLayers = [...layers];
  for (const added of addedLayers) {
    const replaced = before.layers.find((arn) => sameLayer(arn, added) && !after.layers.includes(arn));
    const at = newLayers.indexOf(added);
    if (at >= 0) {
      if (replaced !== undefined) {
        newLayers[at] = replaced;
        steps.push(`restore layer ${replaced} in place of ${added}`);
      } else {
        newLayers.splice(at, 1);
        steps.push(`remove layer ${added}`);
      }
    } else {
      notes.push(`layer ${added} is no longer attached: nothing to remove`);
    }
  }
  if (newLayers.join('\n') !== layers.join('\n')) change.Layers = newLayers;

  // Handler (handler method): restored only while it is still the Defender's.
  if (after.handler !== null && before.handler !== after.handler) {
    if (handlerIsOurs) {
      const kept = vars[ORIGINAL_HANDLER_VARIABLE];
      const target = kept !== undefined && kept.length > 0 ? kept : before.handler;
      if (target === null) {
        handlerStaysDefenders = true;
        notes.push(`the handler before protection is not recorded: handler left as ${after.handler}`);
      } else {
        change.Handler = target;
        steps.push(`restore handler ${target} (was ${after.handler})`);
        if (target !== before.handler) {
          notes.push(
            `${ORIGINAL_HANDLER_VARIABLE} was changed since protection: the handler is set to its current value`,
          );
        }
      }
    } else {
      notes.push(`the handler was changed since protection (now ${String(current.Handler ?? 'none')}): left alone`);
    }
  }

  for (const name of after.variableNames.filter((n) => !before.variableNames.includes(n))) {
    if (vars[name] === undefined) notes.push(`variable ${name} is no longer set: nothing to remove`);
  }
  for (const name of changedSince) notes.push(`variable ${name} was changed since protection: left alone`);
  const removing = removed.filter((name) => {
    if (name === ORIGINAL_HANDLER_VARIABLE && handlerStaysDefenders) {
      notes.push(`variable ${name} is kept: the Defender's handler still needs it`);
      return false;
    }
    steps.push(`remove variable ${name}`);
    return true;
  });
  if (removing.length > 0) {
    change.Environment = {
      Variables: Object.fromEntries(Object.entries(vars).filter(([name]) => !removing.includes(name))),
    };
  }
  const wrapper = vars[EXEC_WRAPPER_VARIABLE];
  if (change.Layers !== undefined && wrapper !== undefined && !removing.includes(EXEC_WRAPPER_VARIABLE)) {
    // A wrapper that stays set may name a file in the layer being removed: every invocation would fail. Only one
    // that was already set, to this same value, before protection is known not to depend on our layer.
    const setBefore =
      before.variableNames.includes(EXEC_WRAPPER_VARIABLE) && ours(before, EXEC_WRAPPER_VARIABLE, wrapper);
    if (!setBefore) {
      return {
        ok: false,
        problem: `${EXEC_WRAPPER_VARIABLE} was changed since protection and stays set: removing the Defender layer could leave it naming a missing file and break every invocation; remove or restore ${EXEC_WRAPPER_VARIABLE} first, then run the rollback again`,
      };
    }
    notes.push(`${EXEC_WRAPPER_VARIABLE} stays set: check that the wrapper it names is not in a removed layer`);
  }

  const changed = change.Layers !== undefined || change.Environment !== undefined || change.Handler !== undefined;
  notes.push('everything else (memory, timeout, role, VPC, other layers and variables) is left as it is now');
  return { ok: true, change: changed ? change : null, steps, notes };
}

/** The rollback of a refresh: each refreshed variable that still holds the value we set gets its previous value. */
function planRefreshRollback(
  vars: Readonly<Record<string, string>>,
  before: ConfigurationImage,
  after: ConfigurationImage,
  restore: RefreshRestore,
  ours: (image: ConfigurationImage, name: string, value: string) => boolean,
  out: { steps: string[]; notes: string[]; change: RollbackChange },
): RollbackPlan {
  const { steps, notes, change } = out;
  const next: Record<string, string> = { ...vars };
  for (const [name, value] of Object.entries(restore.previous)) {
    const now = vars[name];
    if (now === undefined) {
      notes.push(`variable ${name} is no longer set: left alone`);
    } else if (!ours(after, name, now)) {
      notes.push(`variable ${name} was changed since the refresh: left alone`);
    } else if (!ours(before, name, value)) {
      return { ok: false, problem: `the stored previous value of ${name} does not match the record: nothing changed` };
    } else {
      next[name] = value;
      steps.push(`restore the previous value of variable ${name}`);
    }
  }
  if (steps.length > 0) change.Environment = { Variables: next };
  notes.push('everything else (layers, handler, other variables, memory, timeout, role, VPC) is left as it is now');
  return { ok: true, change: steps.length > 0 ? change : null, steps, notes };
}

/** Shortest value scrubbed from free text (shorter ones would blank out ordinary words). */
export const SCRUB_MIN_LENGTH = 4;

/** What follows this in Lambda's env-quota error is the whole variables map, JSON-encoded and possibly truncated. */
const ECHOED_VARIABLES = /(String measured:)(?! \[redacted\])[\s\S]*$/;

/** JSON string body of a value (quotes and backslashes escaped), as an AWS message that echoes JSON shows it. */
function jsonBody(value: string): string {
  return JSON.stringify(value).slice(1, -1);
}

/** The same with every non-ASCII character as a \uXXXX escape. */
function asciiJsonBody(value: string): string {
  return jsonBody(value).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Removes every occurrence of the given variable values from a free-text message (an AWS error, a failure reason)
 * before it is logged, stored or published: the raw value and the escaped forms an AWS message echoing JSON shows
 * (once and twice JSON-escaped, non-ASCII as \u escapes). Lambda's env-quota error echoes the whole variables map
 * after "String measured:", possibly cut inside a value, so everything after that marker is dropped. Values shorter
 * than SCRUB_MIN_LENGTH are left (they cannot be told from ordinary words, and carry no secret).
 */
export function scrubValues(text: string, values: Iterable<string>): string {
  const forms = [...new Set(values)]
    .filter((value): value is string => typeof value === 'string' && value.length >= SCRUB_MIN_LENGTH)
    .flatMap((value) => [value, jsonBody(value), jsonBody(jsonBody(value)), asciiJsonBody(value)]);
  const candidates = [...new Set(forms)].sort((a, b) => b.length - a.length);
  const scrubbed = candidates.reduce((out, value) => out.split(value).join('[redacted]'), text);
  return scrubbed.replace(ECHOED_VARIABLES, '$1 [redacted]');
}
