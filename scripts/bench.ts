/**
 * `npm run bench [-- --sizes 1000,10000] [--seed N] [--out bench/results.json]`: runs bench/run-bench.ts, prints the
 * side-by-side table, writes bench/results.json (and the table as bench/results.md).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BENCH_DIR, DEFAULT_SEED, DEFAULT_SIZES, loadPrices, renderTable, runBench } from '../bench/run-bench';

function flag(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const value = args[i + 1];
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const sizesFlag = flag(args, '--sizes');
  const sizes = sizesFlag === undefined ? DEFAULT_SIZES : sizesFlag.split(',').map((s) => Number(s.trim()));
  if (sizes.some((n) => !Number.isInteger(n) || n < 1)) {
    process.stderr.write(`--sizes: positive integers separated by commas, got ${sizesFlag}\n`);
    return 2;
  }
  const seed = Number(flag(args, '--seed') ?? DEFAULT_SEED);
  const out = flag(args, '--out') ?? join(BENCH_DIR, 'results.json');
  const started = Date.now();
  const results = await runBench({
    sizes,
    seed,
    prices: loadPrices(),
    progress: (line) => process.stderr.write(`${line}\n`),
  });
  const table = renderTable(results);
  writeFileSync(out, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(out.replace(/\.json$/, '.md'), `${table}\n`);
  process.stdout.write(`${table}\n\nWrote ${out} (${((Date.now() - started) / 1000).toFixed(0)} s real time)\n`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
