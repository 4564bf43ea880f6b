import { parseConfig } from '../../lib/config';
import { assess } from '../../lambdas/shared/domain/funnel';
import {
  candidateFacts,
  protectedWithStatus,
  screen,
  type CandidateFacts,
  type CheapFacts,
} from '../../lambdas/shared/domain/screening';

const config = parseConfig(
  {
    defender: {
      layerArn: 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32',
      environment: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper' },
    },
    funnel: { vpcWithoutNat: 'skip' },
  },
  'test',
);
const context = { config };

function cheap(overrides: Record<string, unknown> = {}): CheapFacts {
  return {
    configuration: {
      FunctionName: 'fn',
      FunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:fn',
      PackageType: 'Zip',
      Runtime: 'python3.11',
      Handler: 'app.handler',
      MemorySize: 512,
      Timeout: 30,
      ...overrides,
    },
    tags: {},
    throttles24h: 0,
    peakConcurrency: 0,
  };
}

describe('screen', () => {
  it('makes a function that passes the cheap gates a candidate, even in a VPC with vpcWithoutNat "skip"', () => {
    const screening = screen(cheap({ VpcConfig: { SubnetIds: ['subnet-1'] } }), context);

    expect(screening.candidate).toBe(true);
  });

  it('records a cheap skip with the candidate-only gates "not gathered" and no FACTS_MISSING', () => {
    const screening = screen(cheap({ MemorySize: 128, VpcConfig: { SubnetIds: ['subnet-1'] } }), context);

    expect(screening.candidate).toBe(false);
    expect(screening.assessment.reasons).toEqual(['MEMORY_LOW']);
    const notGathered = screening.assessment.checks.filter(
      (c) => c.observed === 'not gathered: skipped by other gates',
    );
    expect(notGathered.map((c) => c.gate)).toEqual([7, 9, 10, 13, 15, 21, 22]);
    expect(notGathered.every((c) => c.status === 'not_evaluated')).toBe(true);
  });

  it('makes a function without metrics a candidate before they are read (issue 11: metrics for candidates only)', () => {
    const facts = cheap();
    delete facts.throttles24h;
    delete facts.peakConcurrency;

    const screening = screen(facts, context);

    expect(screening.candidate).toBe(true);
  });

  it('keeps a metric missing after the read as FACTS_MISSING (never a candidate)', () => {
    const facts = { ...cheap(), metricsRead: true };
    delete facts.throttles24h;

    const screening = screen(facts, context);

    expect(screening.candidate).toBe(false);
    expect(screening.assessment.reasons).toEqual(['FACTS_MISSING']);
  });
});

describe('candidateFacts', () => {
  it('marks an unreadable reserved concurrency as missing, not as "none reserved"', () => {
    const facts = candidateFacts(cheap(), { provisionedConcurrencyConfigs: [], codeSigning: 'none' }, false);

    expect(facts).not.toHaveProperty('reservedConcurrency');
    expect(facts.unreadable).toEqual(['reservedConcurrency']);
    expect(assess(facts, context).reasons).toEqual(['FACTS_MISSING']);
  });

  it('marks unreadable route tables as missing, not as egress "unknown" (which would only warn)', () => {
    const facts = candidateFacts(
      { ...cheap(), configuration: { ...cheap().configuration, VpcConfig: { SubnetIds: ['subnet-1'] } } },
      { provisionedConcurrencyConfigs: [], reservedConcurrency: null, codeSigning: 'none' },
      true,
    );

    expect(facts.unreadable).toEqual(['vpcEgress']);
    expect(assess(facts, context).reasons).toEqual(['FACTS_MISSING']);
  });

  it('merges readiness from GetFunction into the configuration', () => {
    const facts = candidateFacts(
      cheap(),
      { provisionedConcurrencyConfigs: [], reservedConcurrency: null, state: 'Pending', codeSigning: 'none' },
      false,
    );

    expect(facts.configuration.State).toBe('Pending');
    expect(facts.unreadable).toBeUndefined();
    expect(assess(facts, context).reasons).toEqual(['FUNCTION_NOT_READY']);
  });
});

describe('issue 8 candidate-only facts', () => {
  const full: CandidateFacts = { provisionedConcurrencyConfigs: [], reservedConcurrency: null };

  it('item 16: marks an unreadable code signing config as missing, and Enforce as CODE_SIGNING_ENFORCED', () => {
    expect(assess(candidateFacts(cheap(), full, false), context).reasons).toEqual(['FACTS_MISSING']);
    expect(assess(candidateFacts(cheap(), { ...full, codeSigning: 'Enforce' }, false), context).reasons).toEqual([
      'CODE_SIGNING_ENFORCED',
    ]);
  });

  it('item 16: passes an active back-off as PREVIOUSLY_REJECTED, and unreadable back-off records as missing', () => {
    const rejected = candidateFacts(
      cheap(),
      {
        ...full,
        codeSigning: 'none',
        previousRejection: { reason: 'InvalidParameterValueException', nextAttemptAt: '2030-01-01T00:00:00.000Z' },
      },
      false,
    );
    const unreadable = candidateFacts(cheap(), { ...full, codeSigning: 'none', rejectionsReadable: false }, false);
    expect(assess(rejected, context).reasons).toEqual(['PREVIOUSLY_REJECTED']);
    expect(assess(unreadable, context).reasons).toEqual(['FACTS_MISSING']);
  });

  it('item 15: carries the inventory Lambda@Edge signal into the facts', () => {
    const east = { FunctionArn: 'arn:aws:lambda:us-east-1:123456789012:function:fn' };
    const edge = { ...cheap(east), lambdaEdge: true };
    const unknown = { ...cheap(east), unreadable: ['lambdaEdge'] };
    expect(screen(edge, context).assessment.reasons).toEqual(['LAMBDA_EDGE']);
    expect(screen(unknown, context).assessment.reasons).toEqual(['FACTS_MISSING']);
  });

  it('item 10: reports a protected function whose last update failed as PROTECTION_UNHEALTHY', () => {
    // Prepare
    const facts = cheap({
      Layers: [{ Arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:twistlock-defender:32' }],
      Environment: { Variables: { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper' } },
    });
    const screening = screen(facts, context);

    // Act
    const assessment = protectedWithStatus(
      facts,
      screening,
      { state: 'Active', lastUpdateStatus: 'Failed', lastUpdateStatusReason: 'EniLimitExceeded' },
      context,
    );

    // Assess
    expect(screening.assessment.verdict).toBe('ALREADY_PROTECTED');
    expect(screening.assessment.warnings).toEqual([]);
    expect(assessment).toMatchObject({ verdict: 'ALREADY_PROTECTED', warnings: ['PROTECTION_UNHEALTHY'] });
    expect(assessment.checks.find((c) => c.gate === 13)).toMatchObject({
      code: 'PROTECTION_UNHEALTHY',
      status: 'warn',
      observed: 'State Active, LastUpdateStatus Failed: EniLimitExceeded',
    });
  });
});
