/**
 * `zero-impact coverage [--format table|json|csv] [--function NAME] [--out FILE] [--local DIR] [--config FILE]
 *  [--region R] [--quiet]`: true coverage, not just $LATEST (bin/reports/coverage.ts): each function's aliases with
 * their routing weights, the version each serves, whether it carries the Defender, the estate's real coverage, and
 * what owners must do. Read-only and paced like the job (bin/reports/coverage-readers.ts); it never publishes a
 * version or moves an alias. The Defender layer is the configuration's (`--config`, else cdk.json).
 */
import { buildCoverage, coverageCsv, coverageTable, type CoverageModel } from '../reports/coverage';
import { accountVersions, localVersions } from '../reports/coverage-readers';
import { applyRegion, emit, EXIT, parseFormat, progressBar, runReview } from '../reports/cli-support';
import type { Command } from 'commander';
import { loadConfig, newCommand } from './common';
import { COVERAGE_HELP } from './review-help';

export const COVERAGE_FORMATS = ['table', 'json', 'csv'] as const;

export interface CoverageOptions {
  local?: string;
  config?: string;
  functionName?: string;
  format: (typeof COVERAGE_FORMATS)[number];
  out?: string;
  quiet: boolean;
}

export async function loadCoverage(options: CoverageOptions): Promise<CoverageModel> {
  const config = loadConfig(options.config);
  if (options.local !== undefined) {
    return buildCoverage(localVersions(options.local, options.functionName), config.defender.layerArn);
  }
  const bar = progressBar('Reading aliases', 0, options.quiet);
  try {
    return buildCoverage(await accountVersions(config, bar, options.functionName), config.defender.layerArn);
  } finally {
    bar.stop();
  }
}

export async function coverageCommand(options: CoverageOptions): Promise<number> {
  const model = await loadCoverage(options);
  const text =
    options.format === 'json'
      ? `${JSON.stringify(model, null, 2)}\n`
      : options.format === 'csv'
        ? coverageCsv(model)
        : coverageTable(model);
  emit(text, options.out);
  return EXIT.ok;
}

/** The flags of `coverage`, as commander parses them. */
export interface CoverageFlags {
  local?: string;
  config?: string;
  function?: string;
  format: string;
  out?: string;
  region?: string;
  quiet?: boolean;
}

export function command(): Command {
  return newCommand<CoverageFlags>(COVERAGE_HELP, (flags) => {
    applyRegion('coverage', flags.region);
    return coverageCommand({
      ...(flags.local !== undefined ? { local: flags.local } : {}),
      ...(flags.config !== undefined ? { config: flags.config } : {}),
      ...(flags.function !== undefined ? { functionName: flags.function } : {}),
      ...(flags.out !== undefined ? { out: flags.out } : {}),
      format: parseFormat('coverage', flags.format, COVERAGE_FORMATS, 'table'),
      quiet: flags.quiet === true,
    });
  })
    .option(
      '--local <dir>',
      'read a local run instead of AWS: the folder `local-run --out DIR` wrote, or one `local-run --keep DIR` kept',
    )
    .option(
      '--config <file>',
      'configuration file (its defender.layerArn), merged over the zeroImpact context of cdk.json',
    )
    .option('--function <name>', 'only this function (default: every function)')
    .option('--format <format>', `output format: ${COVERAGE_FORMATS.join(', ')}`, 'table')
    .option('--out <file>', 'write to this file (default: standard output)')
    .option('--region <region>', 'AWS region (default: the environment variable AWS_REGION)')
    .option('--quiet', 'no progress bar (it shows only when stdout and stderr are terminals)');
}

export async function run(argv: string[]): Promise<number> {
  return runReview('coverage', command(), argv, () => 'reading the Lambda functions and aliases');
}
