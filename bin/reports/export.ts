/**
 * `export`: the audit items of a period as compliance evidence (who, what, when, why, before, after), streamed page
 * by page to a file or stdout with backpressure, so a year of records never has to fit in memory. CSV (RFC 4180,
 * csv-stringify) or JSON Lines (the stored item, one per line). The keyed MACs of our own variables' values
 * (`ourValueMacs`, used only by rollback) are left out of both; no item holds a variable value.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import type { AuditItem, ConfigurationImage } from '../../lambdas/shared/domain/types';
import { ROLLBACK_RUN_PREFIX } from './source';

export const EXPORT_FORMATS = ['csv', 'jsonl'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export const EXPORT_CSV_HEADER = [
  'decided_at',
  'run_id',
  'mode',
  'actor',
  'account',
  'region',
  'function',
  'function_arn',
  'outcome',
  'reasons',
  'warnings',
  'owner',
  'detail',
  'before_layers',
  'before_variable_names',
  'before_variables_bytes',
  'before_handler',
  'after_layers',
  'after_variable_names',
  'after_variables_bytes',
  'after_handler',
  'engine_version',
  'config_hash',
  'repeat',
  'sort_key',
] as const;

/** Who decided: the engine (its version), or an operator's `zero-impact rollback` (the detail names them). */
export function actorOf(item: Pick<AuditItem, 'runId' | 'engineVersion'>): string {
  return item.runId.startsWith(ROLLBACK_RUN_PREFIX)
    ? 'operator (zero-impact rollback)'
    : `zero-impact engine ${item.engineVersion}`;
}

function imageColumns(image: ConfigurationImage | undefined): [string, string, string, string] {
  if (image === undefined) return ['', '', '', ''];
  return [image.layers.join('; '), image.variableNames.join('; '), String(image.variablesBytes), image.handler ?? ''];
}

export function csvRow(item: AuditItem): string[] {
  return [
    item.decidedAt,
    item.runId,
    item.mode,
    actorOf(item),
    item.account ?? '',
    item.region ?? '',
    item.functionName,
    item.functionArn ?? '',
    item.outcome,
    item.reasons.join('; '),
    item.warnings.join('; '),
    item.owner ?? '',
    item.detail ?? '',
    ...imageColumns(item.before),
    ...imageColumns(item.after),
    item.engineVersion,
    item.configHash,
    String(item.repeat),
    item.sk,
  ];
}

function withoutMacs(image: ConfigurationImage | undefined): Omit<ConfigurationImage, 'ourValueMacs'> | undefined {
  if (image === undefined) return undefined;
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { ourValueMacs, ...rest } = image;
  return rest;
}

/** The item as evidence: as stored, without the MACs. */
export function evidence(item: AuditItem): Record<string, unknown> {
  const before = withoutMacs(item.before);
  const after = withoutMacs(item.after);
  return { ...item, ...(before !== undefined ? { before } : {}), ...(after !== undefined ? { after } : {}) };
}

async function write(sink: Writable, chunk: string): Promise<void> {
  if (!sink.write(chunk)) await once(sink, 'drain');
}

/**
 * Streams the pages to `sink`, one page at a time (awaiting 'drain' when the sink is full). Returns the item count.
 * @param onPage called after each page is written (progress, memory sampling in tests)
 */
export async function exportItems(
  pages: AsyncIterable<AuditItem[]>,
  format: ExportFormat,
  sink: Writable,
  onPage: (items: number) => void = () => undefined,
): Promise<number> {
  let count = 0;
  if (format === 'csv') await write(sink, stringify([[...EXPORT_CSV_HEADER]], { record_delimiter: 'windows' }));
  for await (const page of pages) {
    const chunk =
      format === 'csv'
        ? stringify(page.map(csvRow), { record_delimiter: 'windows' })
        : page.map((item) => `${JSON.stringify(evidence(item))}\n`).join('');
    await write(sink, chunk);
    count += page.length;
    onPage(page.length);
  }
  return count;
}

/**
 * An ISO 8601 instant from `--since`/`--until`: a date (YYYY-MM-DD, midnight UTC) or a full timestamp. A date given
 * to --until includes that whole day (the period ends at the next midnight, exclusive).
 */
export function parseInstant(value: string, isUntil: boolean): string | undefined {
  const dateOnly = /^\d{4}-\d{2}-\d{2}$/.test(value);
  const instant = Date.parse(dateOnly ? `${value}T00:00:00.000Z` : value);
  if (!Number.isFinite(instant) || !/^\d{4}-\d{2}-\d{2}/.test(value)) return undefined;
  const DAY_MS = 24 * 60 * 60 * 1000;
  return new Date(dateOnly && isUntil ? instant + DAY_MS : instant).toISOString();
}
