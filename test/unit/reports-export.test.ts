/**
 * `export` of a generated audit table of 200,000 items (deployed-stack path, Scan pages generated on demand) runs in
 * a child process whose V8 old space is capped at 96 MB: an export that kept the items (about 140 MB as strings)
 * would die there. The child's peak RSS must stay under a fixed budget, and every item must be in the file.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { parseInstant, csvRow, actorOf } from '../../bin/reports/export';

const ROOT = join(__dirname, '..', '..');
const SCRIPT = join(ROOT, 'test', 'fixtures', 'export-generated.ts');
const ITEMS = 200_000;
const HEAP_CAP_MB = 96;
/**
 * The process's peak RSS: node, ts-node and the SDK take ~200 MB before the first item (measured 199 MB alone,
 * 292 MB while the rest of the suite ran on 2 cores). Holding the 200,000 items (their JSON alone is larger than the
 * heap cap) would exceed both this and HEAP_CAP_MB; streaming stays well under.
 */
const RSS_BUDGET_BYTES = 384 * 1024 * 1024;

async function lines(file: string): Promise<number> {
  let count = 0;
  for await (const line of createInterface({ input: createReadStream(file) })) if (line.length > 0) count += 1;
  return count;
}

describe('export of 200,000 items', () => {
  it('streams page by page with a bounded heap and RSS', async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'zi-export-')), 'evidence.csv');
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [
        `--max-old-space-size=${HEAP_CAP_MB}`,
        '-r',
        'ts-node/register/transpile-only',
        SCRIPT,
        String(ITEMS),
        'csv',
        out,
      ],
      { cwd: ROOT, env: { ...process.env, TS_NODE_PROJECT: join(ROOT, 'tsconfig.json') }, maxBuffer: 1024 * 1024 },
    );
    const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}') as {
      written: number;
      peakHeap: number;
      maxRss: number;
    };
    expect(result.written).toBe(ITEMS);
    expect(result.peakHeap).toBeLessThan(HEAP_CAP_MB * 1024 * 1024);
    expect(result.maxRss).toBeLessThan(RSS_BUDGET_BYTES);
    expect(await lines(out)).toBe(ITEMS + 1);
  }, 120_000);
});

describe('export helpers', () => {
  it('reads --since/--until as dates (UTC midnight; --until includes its day) or ISO 8601 times', () => {
    expect(parseInstant('2026-03-01', false)).toBe('2026-03-01T00:00:00.000Z');
    expect(parseInstant('2026-03-01', true)).toBe('2026-03-02T00:00:00.000Z');
    expect(parseInstant('2026-03-01T10:00:00+02:00', true)).toBe('2026-03-01T08:00:00.000Z');
    expect(parseInstant('yesterday', false)).toBeUndefined();
    expect(parseInstant('2026-13-45', false)).toBeUndefined();
  });

  it('names the actor: the engine with its version, or an operator rollback', () => {
    expect(actorOf({ runId: 'run-1', engineVersion: '0.1.0' })).toBe('zero-impact engine 0.1.0');
    expect(actorOf({ runId: 'rollback-2026-01-01T00:00:00.000Z', engineVersion: '0.1.0' })).toBe(
      'operator (zero-impact rollback)',
    );
  });

  it('puts names and sizes in the CSV row, never a MAC', () => {
    const row = csvRow({
      functionName: 'f',
      sk: 's',
      kind: 'decision',
      functionArn: null,
      account: null,
      region: null,
      runId: 'r',
      decidedAt: 't',
      mode: 'protect',
      outcome: 'PROTECTED',
      reasons: [],
      warnings: [],
      checks: [],
      before: { layers: [], variableNames: ['A'], variablesBytes: 9, handler: 'h', revisionId: null, ourValueMacs: {} },
      after: {
        layers: ['L'],
        variableNames: ['A', 'AWS_LAMBDA_EXEC_WRAPPER'],
        variablesBytes: 60,
        handler: 'h',
        revisionId: null,
        ourValueMacs: { AWS_LAMBDA_EXEC_WRAPPER: 'mac-value' },
      },
      engineVersion: '0.1.0',
      configHash: 'c',
      repeat: false,
    });
    expect(row.join('|')).toContain('A; AWS_LAMBDA_EXEC_WRAPPER|60|h');
    expect(row.join('|')).not.toContain('mac-value');
  });
});
