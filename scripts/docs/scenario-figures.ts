/**
 * The figures table of docs/testing.md ("The figures of the last complete run"), rendered from
 * test/scenarios/last-run.json (written by test/e2e/scenarios.test.ts after a complete run of the file).
 * `ts-node scripts/docs/scenario-figures.ts --write` (part of `npm run docs`) rewrites the block;
 * test/docs/safety-figures.test.ts fails when the page differs from the committed figures.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeBlock, type BlockMarkers } from './blocks';

const ROOT = join(__dirname, '..', '..');
export const TESTING_PAGE = join(ROOT, 'docs', 'testing.md');
export const FIGURES_FILE = join(ROOT, 'test', 'scenarios', 'last-run.json');
export const FIGURES_MARKERS: BlockMarkers = {
  begin:
    '<!-- scenario-figures:begin (generated from test/scenarios/last-run.json by scripts/docs/scenario-figures.ts) -->',
  end: '<!-- scenario-figures:end -->',
};

/** The cases of test/e2e/scenarios.test.ts that are not scenario files: two runs at once, an expired lease. */
const OVERLAP_CASES = 2;

export interface ScenarioFigures {
  scenarios: number;
  runs: number;
  faultsInjected: number;
  eventsApplied: number;
  functionsProcessed: number;
  violations: number;
  propertyCases: number;
}

const KEYS: ReadonlyArray<keyof ScenarioFigures> = [
  'scenarios',
  'runs',
  'faultsInjected',
  'eventsApplied',
  'functionsProcessed',
  'violations',
  'propertyCases',
];

/** Parses last-run.json; throws naming the first key that is not a non-negative integer. */
export function parseFigures(text: string): ScenarioFigures {
  const raw = JSON.parse(text) as Record<string, unknown>;
  for (const key of KEYS) {
    const value = raw[key];
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      throw new Error(`last-run.json: ${key}: expected a non-negative integer`);
    }
  }
  return raw as unknown as ScenarioFigures;
}

/** The Markdown block (markers included). */
export function renderFigures(figures: ScenarioFigures): string {
  const files = figures.scenarios - OVERLAP_CASES;
  return [
    FIGURES_MARKERS.begin,
    '',
    '| scenarios | runs | faults injected | events applied | functions processed | violations |',
    '|---|---|---|---|---|---|',
    `| ${figures.scenarios} (${files} files, ${OVERLAP_CASES} overlap cases; + ${figures.propertyCases} generated cases) | ${figures.runs} | ${figures.faultsInjected} | ${figures.eventsApplied} | ${figures.functionsProcessed} | ${figures.violations} |`,
    '',
    FIGURES_MARKERS.end,
  ].join('\n');
}

if (require.main === module && process.argv.includes('--write')) {
  writeBlock(TESTING_PAGE, FIGURES_MARKERS, renderFigures(parseFigures(readFileSync(FIGURES_FILE, 'utf8'))));
}
