/**
 * The local HMAC key of this container (issue 8 item 3): one KMS `GenerateMac` call on the stack's HMAC key
 * (HMAC_SHA_256) over a fixed message. KMS HMAC is deterministic for a given key and message, so every container,
 * every run and the rollback command derive the same key; it lives in memory only (never stored, never logged).
 * Whoever lacks kms:GenerateMac on that key cannot derive it, so the MACs in the audit table reveal nothing.
 *
 * Key id: the argument, else the environment variable MAC_KEY_ID (set by the stack on every Lambda that has the
 * grant; the rollback command takes it from --mac-key or MAC_KEY_ID). A failed call is not cached.
 */
import { GenerateMacCommand } from '@aws-sdk/client-kms';
import { kms } from './clients';

/** The message whose MAC is the local key. A new version gets a new message (and so a new key). */
export const MAC_KEY_MESSAGE = 'zero-impact/mac-key/v1';

/** No HMAC key id is configured, or KMS did not answer with a MAC. */
export class MacKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MacKeyError';
  }
}

let cached: { keyId: string; key: Promise<Uint8Array> } | undefined;

async function derive(keyId: string): Promise<Uint8Array> {
  const out = await kms.send(
    new GenerateMacCommand({
      KeyId: keyId,
      MacAlgorithm: 'HMAC_SHA_256',
      Message: new TextEncoder().encode(MAC_KEY_MESSAGE),
    }),
  );
  if (out.Mac === undefined || out.Mac.length === 0) throw new MacKeyError(`GenerateMac on ${keyId} returned no MAC`);
  return out.Mac;
}

/** The derived HMAC key (cached per container and key id). Throws MacKeyError when no key id is known. */
export async function macKey(keyId: string | undefined = process.env['MAC_KEY_ID']): Promise<Uint8Array> {
  if (keyId === undefined || keyId.length === 0) {
    throw new MacKeyError('no HMAC key: the environment variable MAC_KEY_ID is not set');
  }
  if (cached?.keyId !== keyId) {
    const key = derive(keyId);
    cached = { keyId, key };
    key.catch(() => {
      if (cached?.key === key) cached = undefined;
    });
  }
  return cached.key;
}

/** Forgets the derived key (tests; the local run between runs). */
export function resetMacKey(): void {
  cached = undefined;
}
