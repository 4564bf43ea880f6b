/**
 * One local run of the example estate for the reviewing commands' tests: protect mode, two runs (the first protects,
 * the second finds them protected), written to a temporary folder as `local-run --out DIR` writes it.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeOutputs } from '../../bin/commands/local-run';
import { localRun, type LocalRunReport } from '../../local/local-runner';
import { e2eConfig, exampleEstate } from './e2e-helpers';

export interface ReportsFixture {
  dir: string;
  report: LocalRunReport;
}

export async function protectTwice(): Promise<ReportsFixture> {
  const estate = exampleEstate();
  const report = await localRun({ estate, config: e2eConfig(), runs: 2, virtualTime: true });
  const dir = mkdtempSync(join(tmpdir(), 'zi-reports-'));
  writeOutputs(dir, report, { estate });
  return { dir, report };
}

/** Captures what a command prints (stdout, stderr) while it runs. */
export async function capture(body: () => Promise<number>): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const write = process.stdout.write.bind(process.stdout);
  const log = console.log;
  const error = console.error;
  process.stdout.write = ((chunk: unknown) => {
    out += String(chunk);
    return true;
  }) as typeof process.stdout.write;
  console.log = (...args: unknown[]) => {
    out += `${args.map(String).join(' ')}\n`;
  };
  console.error = (...args: unknown[]) => {
    err += `${args.map(String).join(' ')}\n`;
  };
  try {
    const code = await body();
    return { code, out, err };
  } finally {
    process.stdout.write = write;
    console.log = log;
    console.error = error;
  }
}
