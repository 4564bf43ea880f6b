/**
 * The cache of each function's own TW_POLICY value from the Prisma Cloud Console (issue 10): one state table item per
 * function name and region, `POLICY#<region>#<functionName>`, so that the Console is asked again only after
 * `defender.policySource.cacheHours`.
 *
 * The value is a secret: it is never stored in plain text. Like the refresh restore values (restore-store.ts) it is
 * encrypted with the stack's CMK (kms:Encrypt; the key: RESTORE_KEY_ID, the stack key's ARN) under an encryption
 * context naming the purpose, the function and the region, so a ciphertext copied to another item does not decrypt
 * there (AWS KMS Developer Guide, "Encryption context": the same context must be supplied to Decrypt). The item keeps,
 * besides the ciphertext, only the function name, the region, when the value was fetched and its size in bytes.
 *
 * KMS Encrypt takes at most 4,096 bytes of plaintext (AWS KMS API Reference, Encrypt: Plaintext, "Length
 * Constraints: Minimum length of 1. Maximum length of 4096"). A larger value could never fit Lambda's 4 KB of variables
 * anyway; it is simply not cached (`putCachedPolicy` answers 'too-large').
 *
 * Reads are best effort for the callers: a cache that cannot be read or decrypted is a miss (the protect Lambda then
 * asks the Console; assess uses the documented estimate). Expiry is decided on `fetchedAt` against the injectable
 * clock, never on DynamoDB's TTL (TTL deletes expired items within days, not at the second: DynamoDB Developer Guide,
 * "Using Time to Live"); the TTL attribute only keeps the table from collecting the values of deleted functions.
 */
import { DecryptCommand, EncryptCommand } from '@aws-sdk/client-kms';
import { BatchGetCommand, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import { dynamodb, kms } from './clients';

/** KMS Encrypt's plaintext limit (AWS KMS API Reference, Encrypt). */
export const KMS_PLAINTEXT_MAX_BYTES = 4096;
/** The item outlives its expiry by this much before DynamoDB's TTL may remove it (it is never served after expiry). */
const TTL_MARGIN_SECONDS = 7 * 24 * 60 * 60;
/** BatchGetItem takes at most 100 keys per request (DynamoDB API Reference, BatchGetItem). */
const BATCH_GET_MAX_KEYS = 100;

export function policyCacheKey(functionName: string, region: string): string {
  return `POLICY#${region}#${functionName}`;
}

function encryptionContext(functionName: string, region: string): Record<string, string> {
  return { purpose: 'zero-impact/policy-cache', functionName, region };
}

export interface CachedPolicy {
  value: string;
  /** Epoch milliseconds. */
  fetchedAt: number;
}

export type CacheLookup =
  | { status: 'hit'; value: string; fetchedAt: number }
  | { status: 'miss' }
  | { status: 'expired'; fetchedAt: number }
  /** The item exists but could not be read or decrypted: `error` is the AWS error name only. */
  | { status: 'unreadable'; error: string };

function errorName(error: unknown): string {
  return error instanceof Error ? error.name : 'Error';
}

/** The item's fetch time and ciphertext, or undefined when the item is not a cache entry. */
function parseItem(item: Record<string, unknown> | undefined): { fetchedAt: number; ciphertext: string } | undefined {
  const fetchedAt = item?.['fetchedAt'];
  const ciphertext = item?.['ciphertext'];
  if (typeof fetchedAt !== 'string' || typeof ciphertext !== 'string') return undefined;
  const at = Date.parse(fetchedAt);
  return Number.isNaN(at) ? undefined : { fetchedAt: at, ciphertext };
}

async function decryptValue(ciphertext: string, functionName: string, region: string): Promise<string> {
  const decrypted = await kms.send(
    new DecryptCommand({
      CiphertextBlob: Buffer.from(ciphertext, 'base64'),
      EncryptionContext: encryptionContext(functionName, region),
    }),
  );
  if (decrypted.Plaintext === undefined) throw new Error('KMS Decrypt returned no plaintext');
  return new TextDecoder().decode(decrypted.Plaintext);
}

/**
 * One function's cached value: a hit while `now - fetchedAt < maxAgeMs`; expired after (the caller asks the Console
 * again); miss without an item; unreadable when the read or the decryption fails.
 */
export async function readCachedPolicy(
  table: string,
  functionName: string,
  region: string,
  maxAgeMs: number,
  now: number,
): Promise<CacheLookup> {
  let item: Record<string, unknown> | undefined;
  try {
    const found = await dynamodb.send(
      new GetCommand({ TableName: table, Key: { pk: policyCacheKey(functionName, region) }, ConsistentRead: true }),
    );
    item = found.Item;
  } catch (error) {
    return { status: 'unreadable', error: errorName(error) };
  }
  const entry = parseItem(item);
  if (entry === undefined) return { status: 'miss' };
  if (now - entry.fetchedAt >= maxAgeMs) return { status: 'expired', fetchedAt: entry.fetchedAt };
  try {
    return {
      status: 'hit',
      value: await decryptValue(entry.ciphertext, functionName, region),
      fetchedAt: entry.fetchedAt,
    };
  } catch (error) {
    return { status: 'unreadable', error: errorName(error) };
  }
}

/**
 * The unexpired cached values of many functions of one region (assess-batch: BatchGetItem per 100 names, one KMS
 * Decrypt per hit). Whatever cannot be read or decrypted is left out (assess then uses the estimate) and named in
 * `errors`, keys still unprocessed after 5 BatchGetItem tries included. Never throws.
 */
export async function readCachedPolicies(
  table: string,
  functionNames: readonly string[],
  region: string,
  maxAgeMs: number,
  now: number,
): Promise<{ values: Map<string, string>; errors: string[] }> {
  const values = new Map<string, string>();
  const errors: string[] = [];
  const names = [...new Set(functionNames)];
  for (let i = 0; i < names.length; i += BATCH_GET_MAX_KEYS) {
    let keys = names.slice(i, i + BATCH_GET_MAX_KEYS).map((name) => ({ pk: policyCacheKey(name, region) }));
    const items: Array<Record<string, unknown>> = [];
    try {
      // Unprocessed keys are asked again, a bounded number of times (DynamoDB API Reference, BatchGetItem).
      for (let attempt = 0; attempt < 5 && keys.length > 0; attempt += 1) {
        const answer = await dynamodb.send(
          new BatchGetCommand({ RequestItems: { [table]: { Keys: keys, ConsistentRead: true } } }),
        );
        items.push(...(answer.Responses?.[table] ?? []));
        keys = (answer.UnprocessedKeys?.[table]?.Keys ?? []) as Array<{ pk: string }>;
      }
      // Keys DynamoDB still left unprocessed are an error (those functions use the estimate), never silence.
      if (keys.length > 0) errors.push(`UnprocessedKeys (${keys.length})`);
    } catch (error) {
      errors.push(errorName(error));
      continue;
    }
    for (const item of items) {
      const name = item['functionName'];
      const entry = parseItem(item);
      if (typeof name !== 'string' || entry === undefined || now - entry.fetchedAt >= maxAgeMs) continue;
      try {
        values.set(name, await decryptValue(entry.ciphertext, name, region));
      } catch (error) {
        errors.push(errorName(error));
      }
    }
  }
  return { values, errors };
}

/**
 * Encrypts and stores one function's value (replacing an older entry). 'too-large' when KMS could not take it.
 * Throws when KMS or DynamoDB fails (the caller goes on with the value it has; the next run asks the Console again).
 */
export async function putCachedPolicy(
  table: string,
  entry: { functionName: string; region: string; value: string; fetchedAt: number; maxAgeMs: number },
  keyId: string | undefined = process.env['RESTORE_KEY_ID'],
): Promise<'stored' | 'too-large'> {
  if (keyId === undefined || keyId.length === 0) throw new Error('the environment variable RESTORE_KEY_ID is not set');
  const plaintext = new TextEncoder().encode(entry.value);
  if (plaintext.length < 1 || plaintext.length > KMS_PLAINTEXT_MAX_BYTES) return 'too-large';
  const encrypted = await kms.send(
    new EncryptCommand({
      KeyId: keyId,
      Plaintext: plaintext,
      EncryptionContext: encryptionContext(entry.functionName, entry.region),
    }),
  );
  if (encrypted.CiphertextBlob === undefined) throw new Error('KMS Encrypt returned no ciphertext');
  await dynamodb.send(
    new PutCommand({
      TableName: table,
      Item: {
        pk: policyCacheKey(entry.functionName, entry.region),
        functionName: entry.functionName,
        region: entry.region,
        fetchedAt: new Date(entry.fetchedAt).toISOString(),
        valueBytes: plaintext.length,
        ciphertext: Buffer.from(encrypted.CiphertextBlob).toString('base64'),
        expiresAt: Math.floor((entry.fetchedAt + entry.maxAgeMs) / 1000) + TTL_MARGIN_SECONDS,
      },
    }),
  );
  return 'stored';
}
