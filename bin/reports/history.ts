/**
 * One function's decisions, newest first, with the before/after of each change: layer ARNs, variable NAMES and the
 * byte size of the variables map, the handler. Never a value (the images hold none; the MACs are left out). PURE.
 */
import type { AuditItem, ConfigurationImage } from '../../lambdas/shared/domain/types';
import { paragraph, safe } from './text';

export interface ImageView {
  layers: string[];
  variableNames: string[];
  variablesBytes: number;
  handler: string | null;
}

export interface ChangeView {
  layersAdded: string[];
  layersRemoved: string[];
  variablesAdded: string[];
  variablesRemoved: string[];
  variablesBytes: { before: number; after: number };
  handler: { before: string | null; after: string | null } | null;
}

export interface HistoryEntry {
  decidedAt: string;
  runId: string;
  mode: string;
  outcome: string;
  reasons: string[];
  warnings: string[];
  detail?: string;
  repeat: boolean;
  before?: ImageView;
  after?: ImageView;
  change?: ChangeView;
}

function view(image: ConfigurationImage): ImageView {
  return {
    layers: [...image.layers],
    variableNames: [...image.variableNames],
    variablesBytes: image.variablesBytes,
    handler: image.handler,
  };
}

function diff(before: ConfigurationImage, after: ConfigurationImage): ChangeView {
  const minus = (a: readonly string[], b: readonly string[]): string[] => a.filter((x) => !b.includes(x));
  return {
    layersAdded: minus(after.layers, before.layers),
    layersRemoved: minus(before.layers, after.layers),
    variablesAdded: minus(after.variableNames, before.variableNames),
    variablesRemoved: minus(before.variableNames, after.variableNames),
    variablesBytes: { before: before.variablesBytes, after: after.variablesBytes },
    handler: before.handler === after.handler ? null : { before: before.handler, after: after.handler },
  };
}

/** The function's decision items (PENDING included: an unfinished change shows), newest first. */
export function historyOf(items: readonly AuditItem[]): HistoryEntry[] {
  return items
    .filter((item) => item.kind === 'decision')
    .sort((a, b) => b.sk.localeCompare(a.sk))
    .map((item) => ({
      decidedAt: item.decidedAt,
      runId: item.runId,
      mode: item.mode,
      outcome: item.outcome,
      reasons: [...item.reasons],
      warnings: [...item.warnings],
      ...(item.detail !== undefined ? { detail: item.detail } : {}),
      repeat: item.repeat,
      ...(item.before !== undefined ? { before: view(item.before) } : {}),
      ...(item.after !== undefined ? { after: view(item.after) } : {}),
      ...(item.before !== undefined && item.after !== undefined ? { change: diff(item.before, item.after) } : {}),
    }));
}

const list = (names: readonly string[]): string => names.map(safe).join(', ');

export function historyTable(functionName: string, entries: readonly HistoryEntry[]): string {
  const out = [`${safe(functionName)}: ${entries.length} decision(s), newest first`];
  for (const entry of entries) {
    out.push('');
    out.push(
      `${entry.decidedAt}  ${entry.outcome}${entry.repeat ? ' (repeat)' : ''}  ${entry.mode}  run ${safe(entry.runId)}`,
    );
    if (entry.reasons.length > 0) out.push(...paragraph(`reasons: ${entry.reasons.join(', ')}`, 2, 2));
    if (entry.warnings.length > 0) out.push(...paragraph(`warnings: ${entry.warnings.join(', ')}`, 2, 2));
    if (entry.detail !== undefined) out.push(...paragraph(`detail: ${entry.detail}`, 2, 2));
    const c = entry.change;
    if (c !== undefined) {
      if (c.layersAdded.length > 0) out.push(...paragraph(`layers added: ${list(c.layersAdded)}`, 2, 4));
      if (c.layersRemoved.length > 0) out.push(...paragraph(`layers removed: ${list(c.layersRemoved)}`, 2, 4));
      if (c.variablesAdded.length > 0) out.push(...paragraph(`variables added: ${list(c.variablesAdded)}`, 2, 4));
      if (c.variablesRemoved.length > 0) {
        out.push(...paragraph(`variables removed: ${list(c.variablesRemoved)}`, 2, 4));
      }
      out.push(`  variables size: ${c.variablesBytes.before} -> ${c.variablesBytes.after} bytes`);
      if (c.handler !== null)
        out.push(...paragraph(`handler: ${safe(c.handler.before ?? '-')} -> ${safe(c.handler.after ?? '-')}`, 2, 4));
      if (
        c.layersAdded.length + c.layersRemoved.length + c.variablesAdded.length + c.variablesRemoved.length === 0 &&
        c.handler === null
      ) {
        out.push('  same layers, variable names and handler (values of our variables refreshed or unchanged)');
      }
    } else if (entry.before !== undefined) {
      out.push(
        ...paragraph(
          `configuration: layers ${list(entry.before.layers) || 'none'}; ${entry.before.variableNames.length} variable(s), ${entry.before.variablesBytes} bytes`,
          2,
          4,
        ),
      );
    }
  }
  return `${out.join('\n')}\n`;
}
