/**
 * The previous values of an in-place refresh (issue 8 item 7), kept so that rollback can restore them exactly.
 * They are the engine's own earlier values (a rotated `defender.environment` literal or SSM value), but a value is
 * never stored in plain text: the map is encrypted with the stack's CMK (kms:Encrypt, encryption context = function
 * and run) and kept in the state table item `RESTORE#<function>#<runId>` without TTL, as long as the change lives.
 * Rollback decrypts it with the operator's credentials (kms:Decrypt on the stack key). The key: RESTORE_KEY_ID (the
 * stack key's ARN, set by the stack on the protect function).
 */
import { DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { isRecord } from '../domain/types';
import type { RefreshRestore } from '../domain/plan';
import { dynamodb, kms } from './clients';

export function restoreKey(functionName: string, runId: string): string {
  return `RESTORE#${functionName}#${runId}`;
}

function context(functionName: string, runId: string): Record<string, string> {
  return { purpose: 'zero-impact/refresh-restore', functionName, runId };
}

/** Encrypts and stores the previous values (conditional put: one item per function and run, never replaced). */
export async function putRestore(
  table: string,
  item: { functionName: string; runId: string; createdAt: string; previous: Readonly<Record<string, string>> },
  keyId: string | undefined = process.env['RESTORE_KEY_ID'],
): Promise<void> {
  if (keyId === undefined || keyId.length === 0) throw new Error('the environment variable RESTORE_KEY_ID is not set');
  const encrypted = await kms.send(
    new EncryptCommand({
      KeyId: keyId,
      Plaintext: new TextEncoder().encode(JSON.stringify(item.previous)),
      EncryptionContext: context(item.functionName, item.runId),
    }),
  );
  if (encrypted.CiphertextBlob === undefined) throw new Error('KMS Encrypt returned no ciphertext');
  await dynamodb.send(
    new PutCommand({
      TableName: table,
      Item: {
        pk: restoreKey(item.functionName, item.runId),
        functionName: item.functionName,
        runId: item.runId,
        createdAt: item.createdAt,
        variables: Object.keys(item.previous).sort(),
        ciphertext: Buffer.from(encrypted.CiphertextBlob).toString('base64'),
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    }),
  );
}

/** The previous values of one refresh, decrypted; undefined when none were stored. */
export async function readRestore(
  table: string,
  functionName: string,
  runId: string,
): Promise<RefreshRestore | undefined> {
  const found = await dynamodb.send(
    new GetCommand({ TableName: table, Key: { pk: restoreKey(functionName, runId) }, ConsistentRead: true }),
  );
  const ciphertext: unknown = found.Item?.['ciphertext'];
  if (typeof ciphertext !== 'string') return undefined;
  const decrypted = await kms.send(
    new DecryptCommand({
      CiphertextBlob: Buffer.from(ciphertext, 'base64'),
      EncryptionContext: context(functionName, runId),
    }),
  );
  if (decrypted.Plaintext === undefined) throw new Error('KMS Decrypt returned no plaintext');
  const previous: unknown = JSON.parse(new TextDecoder().decode(decrypted.Plaintext));
  if (!isRecord(previous) || Object.values(previous).some((v) => typeof v !== 'string')) {
    throw new Error(`${restoreKey(functionName, runId)} does not hold a map of values`);
  }
  return { previous: previous as Record<string, string> };
}
