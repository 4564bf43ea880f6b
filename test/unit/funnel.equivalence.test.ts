/**
 * The funnel decides exactly as it did when the snapshot was taken (issue 11: the funnel was made faster without
 * changing a single decision, reason, warning or check text). The snapshot, test/fixtures/funnel-equivalence.json,
 * holds a digest of every decision of a fixed generated estate (test/fixtures/funnel-equivalence.ts: ~2,000
 * functions, every gate and every malformed fact somewhere) and a few decisions in full; it holds no variable value.
 *
 * Each case is assessed whole (`assess`), screened as the inventory sees it (`screen`), and then, as assess-batch
 * does, either assessed again on its complete facts (a candidate, `candidateFacts`) or given its readiness (an
 * already-protected function, `protectedWithStatus`).
 *
 * Regenerate the snapshot only when changing a decision is the point (say why in the commit):
 *   UPDATE_FUNNEL_EQUIVALENCE=1 npx jest --maxWorkers=1 test/unit/funnel.equivalence.test.ts
 *   npx prettier --write test/fixtures/funnel-equivalence.json
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { assess, envVarsSize, variablesMapBytes } from '../../lambdas/shared/domain/funnel';
import { candidateFacts, hasSubnets, protectedWithStatus, screen } from '../../lambdas/shared/domain/screening';
import type { Assessment } from '../../lambdas/shared/domain/types';
import {
  EQUIVALENCE_COUNT,
  EQUIVALENCE_SEED,
  SECRET_MARK,
  equivalenceCases,
  type EquivalenceCase,
} from '../fixtures/funnel-equivalence';

const FIXTURE = join(__dirname, '..', 'fixtures', 'funnel-equivalence.json');

interface Snapshot {
  seed: number;
  count: number;
  /** Per case: the first 12 hex digits of the SHA-256 of its decisions' JSON. */
  digests: string[];
  /** A few cases' whole-facts assessments in full (one per verdict, and a facts document that is not an object). */
  full: Array<{ index: number; assessment: Assessment }>;
}

interface Decisions {
  assessment: Assessment;
  screening?: { candidate: boolean; assessment: Assessment };
  followUp?: Assessment;
}

function decide({ facts, context, cheap }: EquivalenceCase): Decisions {
  const decisions: Decisions = { assessment: assess(facts, context) };
  if (cheap === undefined) return decisions;
  const screening = screen(cheap, context);
  decisions.screening = screening;
  if (screening.candidate) {
    const read = {
      provisionedConcurrencyConfigs: [],
      reservedConcurrency: null,
      state: 'Active',
      lastUpdateStatus: 'Successful',
      vpcEgress: 'none' as const,
      codeSigning: 'none' as const,
    };
    decisions.followUp = assess(candidateFacts(cheap, read, hasSubnets(cheap.configuration)), context);
  } else if (screening.assessment.verdict === 'ALREADY_PROTECTED') {
    const status = { state: 'Active', lastUpdateStatus: 'Failed', lastUpdateStatusReason: 'Layer "x" gone' };
    decisions.followUp = protectedWithStatus(cheap, screening, status, context);
  }
  return decisions;
}

const digest = (decisions: Decisions): string =>
  createHash('sha256').update(JSON.stringify(decisions)).digest('hex').slice(0, 12);

describe('funnel equivalence with the snapshot', () => {
  const cases = equivalenceCases();
  const decisions = cases.map(decide);

  beforeAll(() => {
    if (process.env['UPDATE_FUNNEL_EQUIVALENCE'] !== '1') return;
    const fullIndexes = [
      decisions.findIndex((d) => d.assessment.verdict === 'ELIGIBLE' && d.followUp !== undefined),
      decisions.findIndex((d) => d.assessment.verdict === 'SKIP' && d.assessment.reasons.length > 2),
      decisions.findIndex((d) => d.assessment.verdict === 'ALREADY_PROTECTED' && d.followUp !== undefined),
      decisions.findIndex((d) => d.screening === undefined),
    ];
    const snapshot: Snapshot = {
      seed: EQUIVALENCE_SEED,
      count: EQUIVALENCE_COUNT,
      digests: decisions.map(digest),
      full: fullIndexes.map((index) => ({ index, assessment: (decisions[index] as Decisions).assessment })),
    };
    writeFileSync(FIXTURE, `${JSON.stringify(snapshot, null, 2)}\n`);
  });
  const snapshot = (): Snapshot => JSON.parse(readFileSync(FIXTURE, 'utf8')) as Snapshot;

  it('covers every verdict and many reasons', () => {
    const verdicts = new Set(decisions.map((d) => d.assessment.verdict));
    const reasons = new Set(decisions.flatMap((d) => d.assessment.reasons));
    const warnings = new Set(decisions.flatMap((d) => d.assessment.warnings));
    expect([...verdicts].sort()).toEqual(['ALREADY_PROTECTED', 'ELIGIBLE', 'SKIP']);
    expect(reasons.size).toBeGreaterThanOrEqual(20);
    expect(warnings.size).toBeGreaterThanOrEqual(3);
    expect(decisions.filter((d) => d.screening?.candidate === true).length).toBeGreaterThan(50);
  });

  it('decides every case exactly as the snapshot', () => {
    const { seed, digests, full } = snapshot();
    expect(seed).toBe(EQUIVALENCE_SEED);
    expect(digests).toHaveLength(cases.length);
    const differing = decisions.flatMap((d, i) => (digest(d) === digests[i] ? [] : [i]));
    expect(differing).toEqual([]);
    for (const { index, assessment } of full) expect(decisions[index]?.assessment).toEqual(assessment);
  });

  it('carries no variable value, in the decisions or in the snapshot', () => {
    expect(JSON.stringify(decisions)).not.toContain(SECRET_MARK);
    expect(readFileSync(FIXTURE, 'utf8')).not.toContain(SECRET_MARK);
  });
});

describe('counting the variables without building their JSON', () => {
  const text = fc.oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.string({ unit: 'binary' }), // lone surrogates: JSON.stringify escapes them
    fc.constantFrom('__proto__', 'constructor', '0', '', '"', '\\', '\u2028', 'x'.repeat(1024)),
  );

  it('gives envVarsSize of the same variables, whatever their text', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(text, text)), (entries) => {
        const variables = new Map(entries);
        expect(variablesMapBytes(variables)).toBe(envVarsSize(Object.fromEntries(variables)));
      }),
      { numRuns: 2000 },
    );
  });
});
