import { parseConfig } from '../../lib/config';
import { assess } from '../../lambdas/shared/domain/funnel';
import { candidateFacts, screen, type CheapFacts } from '../../lambdas/shared/domain/screening';

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
    expect(notGathered.map((c) => c.gate)).toEqual([7, 9, 13, 15]);
    expect(notGathered.every((c) => c.status === 'not_evaluated')).toBe(true);
  });

  it('keeps a missing metric as FACTS_MISSING (never a candidate)', () => {
    const facts = cheap();
    delete facts.throttles24h;

    const screening = screen(facts, context);

    expect(screening.candidate).toBe(false);
    expect(screening.assessment.reasons).toEqual(['FACTS_MISSING']);
  });
});

describe('candidateFacts', () => {
  it('marks an unreadable reserved concurrency as missing, not as "none reserved"', () => {
    const facts = candidateFacts(cheap(), { provisionedConcurrencyConfigs: [] }, false);

    expect(facts).not.toHaveProperty('reservedConcurrency');
    expect(facts.unreadable).toEqual(['reservedConcurrency']);
    expect(assess(facts, context).reasons).toEqual(['FACTS_MISSING']);
  });

  it('marks unreadable route tables as missing, not as egress "unknown" (which would only warn)', () => {
    const facts = candidateFacts(
      { ...cheap(), configuration: { ...cheap().configuration, VpcConfig: { SubnetIds: ['subnet-1'] } } },
      { provisionedConcurrencyConfigs: [], reservedConcurrency: null },
      true,
    );

    expect(facts.unreadable).toEqual(['vpcEgress']);
    expect(assess(facts, context).reasons).toEqual(['FACTS_MISSING']);
  });

  it('merges readiness from GetFunction into the configuration', () => {
    const facts = candidateFacts(
      cheap(),
      { provisionedConcurrencyConfigs: [], reservedConcurrency: null, state: 'Pending' },
      false,
    );

    expect(facts.configuration.State).toBe('Pending');
    expect(facts.unreadable).toBeUndefined();
    expect(assess(facts, context).reasons).toEqual(['FUNCTION_NOT_READY']);
  });
});
