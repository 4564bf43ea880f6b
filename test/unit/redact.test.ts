import { envVarsSize } from '../../lambdas/shared/domain/funnel';
import { placeholderFor, REDACTED, redactConfiguration, redactFunction } from '../../lambdas/shared/domain/redact';
import type { FunctionConfiguration } from '../../lambdas/shared/domain/types';

const OURS = { AWS_LAMBDA_EXEC_WRAPPER: '/opt/twistlock/twistlock_wrapper' };

const TRICKY: Record<string, string> = {
  QUOTES: 'say "hello" and \'bye\'',
  BACKSLASHES: 'C:\\temp\\new\\x',
  NEWLINES: 'line1\nline2\r\n\ttabbed',
  EMOJI: 'secret-🔑-💥-👩‍💻',
  ACCENTS: 'pässwörd-日本語',
  CONTROL: '\u0001\u0002\u001f',
  LONE_SURROGATE: 'x\ud800y',
  EMPTY: '',
  SEPARATORS: '\u2028\u2029',
};

function config(variables: Record<string, string>): FunctionConfiguration {
  return {
    FunctionName: 'fn',
    FunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:fn',
    Runtime: 'python3.11',
    MemorySize: 512,
    Environment: { Variables: variables },
  };
}

describe('redactConfiguration', () => {
  it.each(Object.entries(TRICKY))(
    'item 3: replaces %s by the one fixed placeholder, whatever its length',
    (name, value) => {
      const redacted = redactConfiguration(config({ [name]: value }), OURS);

      expect(redacted.Environment?.Variables?.[name]).toBe(REDACTED);
    },
  );

  it('item 3: reveals no value length, and carries the exact real size as variablesBytes instead', () => {
    const short = redactFunction(config({ PIN: '123' }), OURS);
    const long = redactFunction(config({ PIN: '1234567890'.repeat(30) }), OURS);
    const variables = { ...TRICKY, ...OURS };

    const all = redactFunction(config(variables), OURS);

    expect(short.configuration).toEqual(long.configuration);
    expect(short.variablesBytes).toBe(envVarsSize({ PIN: '123' }));
    expect(long.variablesBytes).toBe(envVarsSize({ PIN: '1234567890'.repeat(30) }));
    expect(all.variablesBytes).toBe(envVarsSize(variables));
    expect(Object.keys(all.configuration.Environment!.Variables!)).toEqual(Object.keys(variables));
  });

  it('item 3: gives no variablesBytes when the variables cannot be read (the funnel then reports them missing)', () => {
    const broken = {
      ...config({}),
      Environment: { Error: { ErrorCode: 'KMSAccessDeniedException' } },
    } as unknown as FunctionConfiguration;
    const malformed = { ...config({}), Environment: { Variables: { A: 42 } } } as unknown as FunctionConfiguration;

    expect(redactFunction(broken, OURS).variablesBytes).toBeUndefined();
    expect(redactFunction(malformed, OURS).variablesBytes).toBeUndefined();
    expect(redactFunction({ FunctionName: 'fn' }, OURS).variablesBytes).toBe(2);
  });

  it('keeps our own literal value and redacts a different value of the same variable', () => {
    const same = redactConfiguration(config({ AWS_LAMBDA_EXEC_WRAPPER: OURS.AWS_LAMBDA_EXEC_WRAPPER }), OURS);
    const other = redactConfiguration(config({ AWS_LAMBDA_EXEC_WRAPPER: '/opt/other/wrapper' }), OURS);

    expect(same.Environment?.Variables?.['AWS_LAMBDA_EXEC_WRAPPER']).toBe(OURS.AWS_LAMBDA_EXEC_WRAPPER);
    expect(other.Environment?.Variables?.['AWS_LAMBDA_EXEC_WRAPPER']).toBe(REDACTED);
  });

  it('never produces a placeholder equal to our literal', () => {
    expect(placeholderFor(REDACTED)).not.toBe(REDACTED);
    expect(redactConfiguration(config({ X: 'other' }), { X: REDACTED }).Environment?.Variables?.['X']).not.toBe(
      REDACTED,
    );
  });

  it('drops fields not needed downstream and keeps only the ErrorCode of an Environment error', () => {
    const cfg: FunctionConfiguration = {
      ...config({ A: 'x' }),
      Description: 'db password is hunter2',
      Role: 'arn:aws:iam::123456789012:role/r',
      KMSKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/k',
      Layers: [{ Arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:l:1', CodeSize: 10, SigningJobArn: 's' } as never],
      VpcConfig: {
        SubnetIds: ['subnet-1'],
        SecurityGroupIds: ['sg-1'],
        VpcId: 'vpc-1',
        Ipv6AllowedForDualStack: false,
      } as never,
    };
    const broken: FunctionConfiguration = {
      ...config({}),
      Environment: { Error: { ErrorCode: 'KMSAccessDeniedException', Message: 'cannot decrypt hunter2' } } as never,
    };

    const redacted = redactConfiguration(cfg, OURS);
    const redactedBroken = redactConfiguration(broken, OURS);

    expect(redacted).toEqual({
      FunctionName: 'fn',
      FunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:fn',
      Runtime: 'python3.11',
      MemorySize: 512,
      Environment: { Variables: { A: REDACTED } },
      Layers: [{ Arn: 'arn:aws:lambda:eu-west-1:123456789012:layer:l:1', CodeSize: 10 }],
      VpcConfig: { SubnetIds: ['subnet-1'], SecurityGroupIds: ['sg-1'], VpcId: 'vpc-1' },
    });
    expect(redactedBroken.Environment).toEqual({ Error: { ErrorCode: 'KMSAccessDeniedException' } });
    expect(JSON.stringify([redacted, redactedBroken])).not.toContain('hunter2');
  });

  it('does not modify its input', () => {
    const cfg = config({ SECRET: 'canary-value' });

    redactConfiguration(cfg, OURS);

    expect(cfg.Environment?.Variables?.['SECRET']).toBe('canary-value');
  });

  it('turns a malformed variables map into a malformed fact, never into "no variables"', () => {
    const cfg = { ...config({}), Environment: { Variables: { A: 42 } } } as unknown as FunctionConfiguration;

    const redacted = redactConfiguration(cfg, OURS);

    expect(redacted.Environment).toEqual({ Variables: { A: null } });
  });
});
