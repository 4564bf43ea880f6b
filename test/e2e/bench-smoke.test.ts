/**
 * Smoke test of `npm run bench` at a small size: the harness runs end to end and writes the documented shape. No
 * timing or cost assertion (those figures are measured by the benchmark, never asserted in a test).
 */
import { loadPrices, renderTable, runBench, type BenchResults } from '../../bench/run-bench';
import { costOf } from '../../bench/meter';

const RUNS = ['first', 'steady', 'naive', 'dryRunSteady'];
const FIELDS = [
  'controlPlaneCallsPerFunction',
  'apiCalls',
  'peakControlPlaneRps',
  'durationSeconds',
  'floorSeconds',
  'dollarsPerThousandFunctionsPerMonth',
  'auditBytesPerFunctionPerMonth',
];

describe('npm run bench (smoke, 12 functions)', () => {
  let results: BenchResults;

  beforeAll(async () => {
    results = await runBench({ sizes: [12], prices: loadPrices() });
  }, 300_000);

  it('writes every run of the documented results.json shape', () => {
    expect(results.sizes.map((s) => s.functions)).toEqual([12]);
    const runs = results.sizes[0]?.runs ?? {};
    for (const name of RUNS) {
      for (const field of FIELDS)
        expect([name, field, runs[name]?.[field as keyof (typeof runs)[string]]]).toEqual([
          name,
          field,
          expect.anything(),
        ]);
    }
    expect(runs['first']?.status).toBe('SUCCEEDED');
    expect(runs['steady']?.outcomes['PROTECTED'] ?? 0).toBe(0);
  });

  it('prints the side-by-side table', () => {
    const table = renderTable(results);
    expect(table).toContain('| figure | first | steady | dryRunSteady | naive |');
    expect(table).toContain('$ / 1,000 fn / month (hourly)');
  });

  it('prices every item with a source and a date', () => {
    const prices = loadPrices();
    expect(prices.retrieved).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    for (const price of Object.values(prices.prices)) expect(price.source).toMatch(/^https:\/\/aws\.amazon\.com\//);
    const zero = costOf(
      {
        functions: 1000,
        apiCalls: {},
        lambda: { invocations: 0, gbSeconds: 0 },
        sfn: { standardTransitions: 0, expressRequests: 0, expressGbSeconds: 0 },
        dynamo: {
          audit: { table: 0, indexes: {}, items: 0, bytesPut: 0, storageGbMonths: 0, reads: 0 },
          state: { table: 0, indexes: {}, items: 0, bytesPut: 0, storageGbMonths: 0, reads: 0 },
        },
        metricsRequested: 1000,
        logBytes: 0,
      },
      prices,
    );
    // 1,000 metrics an hour, 730 hours: $0.01 per 1,000 metrics.
    expect(zero.dollarsPerThousandFunctionsPerMonth).toBeCloseTo(7.3, 6);
  });
});
