/**
 * Issue 10: the simulated account's Secrets Manager is as strict as AWS (rule 18 in local/simulated-account.ts).
 */
import {
  GetSecretValueCommand,
  ResourceNotFoundException,
  SecretsManagerClient,
} from '@aws-sdk/client-secrets-manager';
import type { CallerPolicy } from '../../local/iam-policy';
import { ManualClock, SimulatedAccount, runAsCaller } from '../../local/simulated-account';

const REGION = 'eu-west-1';
const ACCOUNT = '123456789012';
const NAME = 'zero-impact/prisma-compute';
const VALUE = JSON.stringify({ accessKey: 'ak', secretKey: 'sk' });

describe('simulated Secrets Manager', () => {
  let account: SimulatedAccount | undefined;
  const client = new SecretsManagerClient({ region: REGION, maxAttempts: 1 });
  const protectRole: CallerPolicy = {
    role: 'protect-role',
    statements: [
      {
        effect: 'Allow',
        actions: ['secretsmanager:GetSecretValue'],
        resources: [`arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${NAME}-??????`],
      },
    ],
  };

  function install(): SimulatedAccount {
    account = new SimulatedAccount({
      estate: { functions: [], ssmParameters: {}, region: REGION, account: ACCOUNT },
      clock: new ManualClock(),
      secrets: { [NAME]: VALUE },
      permissions: { 'protect-function': protectRole },
    });
    return account.install();
  }

  afterEach(() => {
    account?.uninstall();
    account = undefined;
  });

  it('answers by name, full ARN and partial ARN; the ARN ends in a hyphen and six characters', async () => {
    // Prepare
    install();

    // Act
    const byName = await client.send(new GetSecretValueCommand({ SecretId: NAME }));
    const arn = byName.ARN ?? '';
    const byArn = await client.send(new GetSecretValueCommand({ SecretId: arn }));
    const byPartial = await client.send(new GetSecretValueCommand({ SecretId: arn.slice(0, -7) }));

    // Assert
    expect(arn).toMatch(new RegExp(`^arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${NAME}-[A-Za-z0-9]{6}$`));
    expect([byName.SecretString, byArn.SecretString, byPartial.SecretString]).toEqual([VALUE, VALUE, VALUE]);
    expect(byName.VersionStages).toEqual(['AWSCURRENT']);
  });

  it('lets the protect role read its one secret through the NAME-?????? grant', async () => {
    // Prepare
    install();

    // Act
    const answer = await runAsCaller('protect-function', () =>
      client.send(new GetSecretValueCommand({ SecretId: NAME })),
    );

    // Assert
    expect(answer.SecretString).toBe(VALUE);
  });

  it('refuses another secret to the protect role with AccessDeniedException, and a missing one likewise', async () => {
    // Prepare
    const sim = install();
    sim.putSecret('other/secret', '{}');

    // Act
    const other = runAsCaller('protect-function', () =>
      client.send(new GetSecretValueCommand({ SecretId: 'other/secret' })),
    );
    sim.deleteSecret(NAME);
    const missing = runAsCaller('protect-function', () => client.send(new GetSecretValueCommand({ SecretId: NAME })));

    // Assert
    await expect(other).rejects.toMatchObject({ name: 'AccessDeniedException' });
    await expect(missing).rejects.toMatchObject({ name: 'AccessDeniedException' });
  });

  it('answers ResourceNotFoundException for a missing secret to a caller allowed on it', async () => {
    // Prepare
    const sim = install();
    sim.deleteSecret(NAME);

    // Act
    const missing = client.send(new GetSecretValueCommand({ SecretId: NAME }));

    // Assert
    await expect(missing).rejects.toBeInstanceOf(ResourceNotFoundException);
  });
});
