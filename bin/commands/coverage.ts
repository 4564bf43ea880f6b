/**
 * `zero-impact coverage [--format table|json|csv] [--function NAME] [--out FILE] [--local DIR] [--config FILE]
 *  [--region R] [--quiet]`: true coverage, not just $LATEST (bin/reports/coverage.ts): each function's aliases with
 * their routing weights, the version each serves, whether it carries the Defender, the estate's real coverage, and
 * what owners must do. Read-only and paced like the job (bin/reports/coverage-readers.ts); it never publishes a
 * version or moves an alias. The Defender layer is the configuration's (`--config`, else cdk.json).
 */
import { buildCoverage, coverageCsv, coverageTable, type CoverageModel } from '../reports/coverage';
import { accountVersions, localVersions } from '../reports/coverage-readers';
import { applyRegion, emit, EXIT, parseFormat, progressBar, reviewGuard } from '../reports/cli-support';
import { loadConfig, parseFlags } from './common';

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

export async function run(argv: string[]): Promise<number> {
  return reviewGuard(
    'coverage',
    () => 'reading the Lambda functions and aliases',
    async () => {
      const flags = parseFlags('coverage', argv, {
        local: { type: 'string' },
        config: { type: 'string' },
        function: { type: 'string' },
        format: { type: 'string' },
        out: { type: 'string' },
        region: { type: 'string' },
        quiet: { type: 'boolean' },
      });
      applyRegion('coverage', flags.region);
      return coverageCommand({
        ...(flags.local !== undefined ? { local: flags.local } : {}),
        ...(flags.config !== undefined ? { config: flags.config } : {}),
        ...(flags.function !== undefined ? { functionName: flags.function } : {}),
        ...(flags.out !== undefined ? { out: flags.out } : {}),
        format: parseFormat('coverage', flags.format, COVERAGE_FORMATS, 'table'),
        quiet: flags.quiet === true,
      });
    },
  );
}
