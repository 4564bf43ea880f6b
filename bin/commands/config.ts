/**
 * `zero-impact config show [--config FILE] [--mode M] [--format table|json]`: the effective configuration, every key
 * with its value and the layer it came from (schema default, cdk.json context, --config file, flag). Literal values
 * of `defender.environment` are never printed (TW_POLICY may be one): only their length; the wrapper path, an SSM
 * parameter name or a Console URL are not secrets and are shown.
 */
import type { Command } from 'commander';
import { EXEC_WRAPPER_VARIABLE, keySources, type Config } from '../../lib/config';
import {
  formatOf,
  formatOptions,
  guarded,
  loadConfigLayers,
  newCommand,
  runCommand,
  UsageError,
  type FormatFlags,
} from './common';

export interface ConfigShowOptions extends FormatFlags {
  config?: string;
  mode?: string;
}

/** Every leaf of the configuration as [dotted key, value]; arrays and the environment map are one leaf each. */
function leaves(value: unknown, path = ''): Array<[string, unknown]> {
  if (value === null || typeof value !== 'object' || Array.isArray(value) || path === 'defender.environment') {
    return [[path, value]];
  }
  return Object.entries(value as Record<string, unknown>).flatMap(([key, child]) =>
    leaves(child, path === '' ? key : `${path}.${key}`),
  );
}

/** The environment map with each literal value other than the wrapper path replaced by its length. */
function maskedEnvironment(environment: Config['defender']['environment']): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(environment).map(([name, value]) => [
      name,
      typeof value !== 'string' || name === EXEC_WRAPPER_VARIABLE ? value : `(literal, ${value.length} characters)`,
    ]),
  );
}

/** Rows of `config show`: key, value (as JSON), source; in the schema's order. */
export function configRows(
  config: Config,
  sources: Map<string, string>,
): Array<{ key: string; value: unknown; source: string }> {
  const shown = {
    ...config,
    defender: { ...config.defender, environment: maskedEnvironment(config.defender.environment) },
  };
  return leaves(shown).map(([key, value]) => {
    let source = 'default';
    for (let path = key; path.length > 0; path = path.slice(0, Math.max(0, path.lastIndexOf('.')))) {
      const found = sources.get(path);
      if (found !== undefined) {
        source = found;
        break;
      }
      if (!path.includes('.')) break;
    }
    return { key, value, source };
  });
}

export async function configShowCommand(options: ConfigShowOptions): Promise<number> {
  const format = formatOf('config show', options, 'table');
  const mode = options.mode;
  if (mode !== undefined && mode !== 'dry-run' && mode !== 'protect') {
    throw new UsageError(`config show: --mode: expected "dry-run" or "protect", got "${mode}"`);
  }
  const { config, layers } = loadConfigLayers(options.config, mode === undefined ? {} : { mode });
  const rows = configRows(config, keySources(layers));
  if (format === 'json') {
    console.log(
      JSON.stringify(Object.fromEntries(rows.map(({ key, value, source }) => [key, { value, source }])), null, 2),
    );
    return 0;
  }
  const cells = rows.map((r) => [r.key, JSON.stringify(r.value), r.source]);
  const header = ['KEY', 'VALUE', 'SOURCE'];
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (row: string[]): string =>
    row
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  console.log([line(header), ...cells.map(line)].join('\n'));
  return 0;
}

export function showCommand(): Command {
  const cmd = newCommand<ConfigShowOptions>(
    {
      name: 'config show',
      summary: 'print the effective configuration and the source of each key',
      details:
        'Layers, lowest first: the schema defaults, cdk.json context zeroImpact, --config FILE, flags. Objects merge key by key; arrays and defender.environment are replaced whole. Literal variable values are never printed.',
      examples: ['zero-impact config show', 'zero-impact config show --config my-config.json --mode protect --json'],
    },
    configShowCommand,
  )
    .option('--config <file>', 'configuration file, merged over the zeroImpact context of cdk.json')
    .option('--mode <mode>', 'dry-run or protect, over the files');
  return formatOptions(cmd, 'table');
}

export function command(): Command {
  return newCommand<Record<string, never>>(
    { name: 'config', summary: 'the configuration (show)', examples: ['zero-impact config show'] },
    () => Promise.reject(new UsageError('config: unknown or missing subcommand (usage: zero-impact config show)')),
  ).addCommand(showCommand());
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'show') return runCommand('config show', showCommand(), rest);
  if (sub === '--help' || sub === '-h') return runCommand('config', command(), argv);
  return guarded(() =>
    Promise.reject(new UsageError('config: unknown or missing subcommand (usage: zero-impact config show)')),
  );
}
